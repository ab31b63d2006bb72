//! Lease reads (`--read-consistency lease`) on a leader that was paused
//! (SIGSTOP) long enough for another leader to be elected and to acknowledge
//! a newer write. When the old leader resumes, reads that reached it while
//! it was stopped must not be answered from its (now stale) state: its
//! lease ran out during the pause, by real monotonic time.
//!
//! The race this pins down: the reads are already in the socket buffers
//! when the process resumes, so they are handled at once, before anything
//! else the resumed process has queued (the new leader's appends, the
//! heartbeat replies that depose it). Many reads on several connections,
//! pipelined, make sure some of them land in that window every round.
//!
//! What these tests prove and what they do not: a server that trusts its
//! local "I am leader" flag for lease reads fails them in the first round.
//! The stale read the fault campaign saw (about one run in ten under heavy
//! load) has not been reproduced here against the unfixed server (124
//! rounds of the first test, 16 of the second, none stale); the mechanism
//! suspected in openraft is described in `src/raft/lease.rs`. Each run
//! prints how many lease grants the server's own check refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{role, wait_for, Cluster, Node};

/// Connections to the leader opened before each pause, and GETs pipelined
/// on each while it is stopped.
const CONNECTIONS: usize = 8;
const GETS_PER_CONNECTION: usize = 64;
/// Connections keeping writes in flight on the leader when it is stopped.
const WRITERS: usize = 4;
/// Log entries the leader appends while a follower is stopped.
const BACKLOG: u64 = 300;

/// Pipelined SETs on `s` until `stop` (or until the node stops answering
/// with anything but errors, e.g. once it is deposed).
fn write_load(s: &mut TcpStream, w: usize, stop: &AtomicBool) {
    let batch = 32;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut req = String::new();
        for _ in 0..batch {
            req.push_str(&format!("SET w{w} {n}\r\n"));
            n += 1;
        }
        if s.write_all(req.as_bytes()).is_err() {
            return;
        }
        let replies = read_replies(s, batch, Duration::from_secs(300));
        if replies.iter().all(|r| matches!(r, Reply::Error(_))) {
            return;
        }
    }
}

/// One RESP reply, as far as this test cares.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Bulk(Option<String>),
    Error(String),
    Other(String),
}

/// Parse one complete reply at the start of `buf`: the reply and its length.
fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = String::from_utf8_lossy(&buf[1..line_end]).into_owned();
    let after = line_end + 2;
    match buf.first()? {
        b'-' => Some((Reply::Error(line), after)),
        b'$' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some((Reply::Bulk(None), after));
            }
            let end = after + n as usize;
            if buf.len() < end + 2 {
                return None;
            }
            let s = String::from_utf8_lossy(&buf[after..end]).into_owned();
            Some((Reply::Bulk(Some(s)), end + 2))
        }
        _ => Some((Reply::Other(line), after)),
    }
}

/// Read `n` replies from `s`, waiting at most `timeout` in all.
fn read_replies(s: &mut TcpStream, n: usize, timeout: Duration) -> Vec<Reply> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while out.len() < n {
        while let Some((r, used)) = parse_reply(&buf) {
            buf.drain(..used);
            out.push(r);
            if out.len() == n {
                return out;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {} of {n} replies within {timeout:?}: {out:?}",
            out.len()
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => panic!("connection closed after {} of {n} replies", out.len()),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read failed after {} of {n} replies: {e}", out.len()),
        }
    }
    out
}

/// A SET through `node`; `true` once it answered OK.
fn try_set(node: &Node, key: &str, value: &str) -> bool {
    let Some(mut c) = node.try_conn() else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    matches!(
        redis::cmd("SET").arg(key).arg(value).query::<String>(&mut c),
        Ok(ref s) if s == "OK"
    )
}

fn leader_among(nodes: &[Node], among: &[usize]) -> Option<usize> {
    among
        .iter()
        .copied()
        .find(|&i| role(&nodes[i]).as_deref() == Some("master"))
}

/// Resumes the paused node even if an assertion fails, so the cluster's
/// teardown never leaves a stopped process behind.
struct Resume<'a>(&'a Node, bool);

impl Resume<'_> {
    fn now(&mut self) {
        if !self.1 {
            self.0.signal("CONT");
            self.1 = true;
        }
    }
}

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.now();
    }
}

#[test]
fn lease_reads_queued_on_a_paused_leader_are_never_stale() {
    paused_leader_rounds(false);
}

/// The same, with a follower stopped first while the leader keeps
/// writing: when the follower resumes (the leader now stopped) it answers
/// a long backlog of appends, which the old leader finds in its socket when
/// it resumes. It processes those answers one by one while commits advance
/// and commit-only appends go out on the same stream: the case where
/// openraft credits an old answer with a new append's sending time
/// (`src/raft/lease.rs`).
#[test]
fn lease_reads_after_a_follower_backlog_are_never_stale() {
    paused_leader_rounds(true);
}

fn paused_leader_rounds(follower_backlog: bool) {
    // The default election timing (200-400 ms, so a 400 ms lease), as in
    // the fault campaigns: the pause is many leases long.
    let c = Cluster::start_with(3, &[], |n| {
        n.extra = vec!["--read-consistency".into(), "lease".into()];
    });
    let key = "r0";
    let rounds = 4;
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    let mut fresh = 0usize;
    for round in 0..rounds {
        let old = format!("old-{round}");
        let new = format!("new-{round}");
        wait_for(
            "a write through the leader",
            Duration::from_secs(60),
            || {
                let l = c.try_leader()?;
                try_set(&c.nodes[l], key, &old).then_some(())
            },
        );
        // The write may have gone to a leader elected meanwhile.
        let l = c.leader();
        // Opened before the pause: a stopped process cannot accept.
        let mut conns: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| {
                let s = TcpStream::connect(c.nodes[l].addr()).unwrap();
                s.set_nodelay(true).unwrap();
                s
            })
            .collect();
        // Each connection has served a read already (so its task is parked
        // on the socket, ready to run the moment the process resumes).
        for s in conns.iter_mut() {
            s.write_all(format!("GET {key}\r\n").as_bytes()).unwrap();
            let r = read_replies(s, 1, Duration::from_secs(30));
            assert_eq!(r, vec![Reply::Bulk(Some(old.clone()))], "warm-up read");
        }
        // Writes in flight when the leader stops: appends it sent whose
        // answers wait in its sockets, so it resumes with replication
        // progress (and commits) still to process.
        let stop = AtomicBool::new(false);
        let writers: Vec<TcpStream> = (0..WRITERS)
            .map(|_| TcpStream::connect(c.nodes[l].addr()).unwrap())
            .collect();
        std::thread::scope(|scope| {
            for (w, mut s) in writers.into_iter().enumerate() {
                let stop = &stop;
                scope.spawn(move || write_load(&mut s, w, stop));
            }
            let f = (l + 1) % c.nodes.len();
            let mut follower = Resume(&c.nodes[f], true);
            if follower_backlog {
                // Stop a follower and let the leader append a backlog to it.
                let from = c.nodes[l].raft_u64("raft_last_log_index").unwrap();
                c.nodes[f].signal("STOP");
                follower.1 = false;
                wait_for("a backlog of appends", Duration::from_secs(60), || {
                    let last = c.nodes[l].raft_u64("raft_last_log_index")?;
                    (last >= from + BACKLOG).then_some(())
                });
            }
            c.nodes[l].signal("STOP");
            let mut paused = Resume(&c.nodes[l], false);
            // The follower answers its backlog into the stopped leader's
            // socket.
            follower.now();
            let others: Vec<usize> = (0..c.nodes.len()).filter(|&i| i != l).collect();
            let nl = wait_for(
                "a new leader while the old one is stopped",
                Duration::from_secs(60),
                || leader_among(&c.nodes, &others),
            );
            wait_for(
                "a write through the new leader",
                Duration::from_secs(60),
                || {
                    let nl = leader_among(&c.nodes, &others)?;
                    try_set(&c.nodes[nl], key, &new).then_some(())
                },
            );
            // The new value is acknowledged: from now on, any read that starts
            // must see it. These start now (they are in the stopped leader's
            // socket buffers when it resumes).
            let pipeline = format!("GET {key}\r\n").repeat(GETS_PER_CONNECTION);
            for s in conns.iter_mut() {
                s.write_all(pipeline.as_bytes()).unwrap();
            }
            paused.now();
            let mut stale = Vec::new();
            for (i, s) in conns.iter_mut().enumerate() {
                for (j, r) in read_replies(s, GETS_PER_CONNECTION, Duration::from_secs(120))
                    .into_iter()
                    .enumerate()
                {
                    match r {
                        Reply::Bulk(Some(v)) if v == new => fresh += 1,
                        Reply::Error(e)
                            if e.starts_with("MOVED")
                                || e.starts_with("CLUSTERDOWN")
                                || e.starts_with("TRYAGAIN") =>
                        {
                            *errors
                                .entry(e.split(' ').next().unwrap().to_string())
                                .or_insert(0) += 1
                        }
                        other => stale.push((i, j, other)),
                    }
                }
            }
            assert!(
                stale.is_empty(),
                "round {round}: n{} (paused; n{} took over and acknowledged {key}={new}) \
             answered {} of {} reads queued during the pause with something else \
             (connection, position, reply): {:?}",
                l + 1,
                nl + 1,
                stale.len(),
                CONNECTIONS * GETS_PER_CONNECTION,
                &stale[..stale.len().min(10)]
            );
            stop.store(true, Ordering::Relaxed);
        });
        // The cluster settles before the next round.
        c.wait_members(3);
    }
    let unconfirmed: usize = c
        .nodes
        .iter()
        .map(|n| {
            n.log_text()
                .matches("lease read granted by openraft but not confirmed")
                .count()
        })
        .sum();
    eprintln!(
        "{rounds} rounds: {fresh} reads saw the new value, refused: {errors:?}; \
         lease grants the server's own check refused: {unconfirmed}"
    );
}
