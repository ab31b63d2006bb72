//! Crash points inside storage (docs/testing.md): a real `raftcache` built with
//! `--features failpoints` is started with `FAILPOINTS=<point>=...` so it
//! `abort()`s at one exact place in the log store or the state machine while
//! clients write to it. It is then restarted without the fail point, and must
//! start cleanly and hold every write it acknowledged.
//!
//! The same build also has *hold points* (a thread parks while a gate file
//! exists, see `src/failpoints.rs`) and a *durable image* (a copy of the log
//! as of the last completed sync, `src/raft/log_store/image.rs`): the tests
//! below use them to show that nothing is acknowledged while the sync is
//! held, that a simulated power loss keeps every acknowledged write (and
//! loses them with `--unsafe-no-fsync`), and that a snapshot build finishing
//! after a newer install is discarded.
//!
//! Run with `cargo test --features failpoints --test crashpoints`.

#![cfg(feature = "failpoints")]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{wait_for, wait_leader_on, Cluster, Node, BIN};
use redis::Commands;

const SIGABRT: i32 = 6;
/// Writer threads of the workload: several appends in flight at once, so
/// the crash lands inside a group commit, not between single writes.
const WRITERS: usize = 4;
/// Snapshot knobs that make a few hundred writes build snapshots and purge.
const SNAPSHOT_OFTEN: &[&str] = &[
    "--snapshot-logs-since-last",
    "50",
    "--max-in-snapshot-log-to-keep",
    "5",
];

/// A `raftcache` process started by this file (not by the harness) so it can
/// carry `FAILPOINTS` in its environment; same arguments as `Node::start`.
struct Armed {
    child: Child,
    log: PathBuf,
}

impl Armed {
    fn start(node: &Node, failpoints: &str) -> Armed {
        let log = node.dir.with_extension("failpoints.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--node-id")
            .arg(node.id.to_string())
            .arg("--port")
            .arg(node.port.to_string())
            .arg("--bus-port")
            .arg(node.bus_port.to_string())
            .args(["--metrics-port", "0"])
            .arg("--dir")
            .arg(&node.dir)
            .args(&node.extra)
            .env("FAILPOINTS", failpoints)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd.spawn().expect("spawn raftcache");
        Armed { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until it accepts connections (true) or has died (false).
    fn wait_up(&mut self, addr: &str) -> bool {
        wait_for(
            "the armed node to accept or die",
            Duration::from_secs(30),
            || {
                if self.child.try_wait().unwrap().is_some() {
                    return Some(false);
                }
                std::net::TcpStream::connect(addr).ok().map(|_| true)
            },
        )
    }

    /// Wait for the process to die at the crash point `point`.
    fn wait_crash(&mut self, point: &str, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "crash point {point} never fired within {timeout:?}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_crashed_at(status, &self.log_text(), point);
        status
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_crashed_at(status: ExitStatus, log: &str, point: &str) {
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "expected an abort at {point}, got {status:?}; log:\n{log}"
    );
    assert!(
        log.contains(&format!("crash point {point} hit")),
        "the process aborted, but not at {point}; log:\n{log}"
    );
}

/// What the clients saw while the node was dying.
#[derive(Debug, Default)]
struct Seen {
    /// Keys whose SET was acknowledged, with their value.
    acked_sets: Vec<(String, String)>,
    /// INCRs acknowledged / sent (sent includes the ones whose reply was lost).
    acked_incrs: i64,
    sent_incrs: i64,
    /// The largest INCR reply: the counter reached at least this.
    max_incr: i64,
}

/// Write from `WRITERS` connections (SET a fresh key, INCR `ctr`, repeat)
/// until each connection fails (the process died) or `stop` is set.
fn drive(url: &str, tag: &str, stop: &AtomicBool) -> Seen {
    let seen = Mutex::new(Seen::default());
    std::thread::scope(|s| {
        for t in 0..WRITERS {
            let seen = &seen;
            s.spawn(move || {
                let Ok(client) = redis::Client::open(url) else {
                    return;
                };
                let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
                    return;
                };
                con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let (k, v) = (format!("{tag}:{t}:{i}"), format!("v{i}"));
                    if con.set::<_, _, ()>(&k, &v).is_err() {
                        return;
                    }
                    seen.lock().unwrap().acked_sets.push((k, v));
                    seen.lock().unwrap().sent_incrs += 1;
                    match con.incr::<_, _, i64>("ctr", 1) {
                        Ok(n) => {
                            let mut g = seen.lock().unwrap();
                            g.acked_incrs += 1;
                            g.max_incr = g.max_incr.max(n);
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    seen.into_inner().unwrap()
}

/// Keys written (and acknowledged) before the crash run, by a clean node.
fn write_before(node: &Node, n: usize) -> Vec<(String, String)> {
    let mut con = node.conn();
    (0..n)
        .map(|i| {
            let (k, v) = (format!("before:{i}"), format!("b{i}"));
            let _: () = con.set(&k, &v).unwrap();
            (k, v)
        })
        .collect()
}

/// Every acknowledged write is there, the counter is within what was sent.
fn assert_durable(node: &Node, before: &[(String, String)], seen: &Seen) {
    let mut con = node.conn();
    for (k, v) in before.iter().chain(&seen.acked_sets) {
        let got: Option<String> = con.get(k).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(v.as_str()),
            "acknowledged SET {k} lost"
        );
    }
    let ctr: i64 = con.get::<_, Option<i64>>("ctr").unwrap().unwrap_or(0);
    assert!(
        ctr >= seen.acked_incrs && ctr >= seen.max_incr,
        "counter {ctr} lost acknowledged INCRs: {seen:?}"
    );
    assert!(
        ctr <= seen.sent_incrs,
        "counter {ctr} counts INCRs never sent: {seen:?}"
    );
}

/// `common::role` only asks nodes the harness started; ask by address.
fn is_master(url: &str) -> bool {
    let role = || -> Option<bool> {
        let mut c = redis::Client::open(url)
            .ok()?
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        let info: String = redis::cmd("INFO").arg("replication").query(&mut c).ok()?;
        Some(info.lines().any(|l| l.trim() == "role:master"))
    };
    role().unwrap_or(false)
}

fn raft_info(node: &Node, field: &str) -> String {
    let info: String = redis::cmd("INFO")
        .arg("raft")
        .query(&mut node.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO raft:\n{info}"))
        .trim()
        .to_string()
}

/// One node: bootstrap and write cleanly, restart it armed with `failpoints`,
/// write until it aborts at `point`, restart it clean, check every
/// acknowledged write. Returns what the clients saw.
fn single_node_crash(extra: &[&str], point: &str, failpoints: &str) -> Seen {
    let mut c = Cluster::single(extra);
    let before = write_before(&c.nodes[0], 100);
    c.nodes[0].kill9();

    let mut armed = Armed::start(&c.nodes[0], failpoints);
    let stop = AtomicBool::new(false);
    let seen = if armed.wait_up(&c.nodes[0].addr()) {
        // The node may still be electing itself: writes answered with an
        // error before it leads would end a writer early, so wait for it.
        wait_for("the armed node to lead", Duration::from_secs(20), || {
            (is_master(&c.nodes[0].url()) || armed.child.try_wait().unwrap().is_some())
                .then_some(())
        });
        let url = c.nodes[0].url();
        std::thread::scope(|s| {
            let h = s.spawn(|| drive(&url, "crash", &stop));
            // Writers stop by themselves when the process dies; if it never
            // does, wait_crash panics after stopping them via the kill.
            armed.wait_crash(point, Duration::from_secs(60));
            stop.store(true, Ordering::Relaxed);
            h.join().unwrap()
        })
    } else {
        armed.wait_crash(point, Duration::from_secs(1));
        Seen::default()
    };
    drop(armed);

    c.nodes[0].start();
    c.leader();
    assert_durable(&c.nodes[0], &before, &seen);
    assert!(
        !c.nodes[0].log_text().contains("panicked"),
        "the clean restart panicked:\n{}",
        c.nodes[0].log_text()
    );
    seen
}

#[test]
fn crash_before_commit_keeps_acked_writes() {
    let seen = single_node_crash(
        &[],
        "log::before_commit",
        "log::before_commit=40*off->return",
    );
    assert!(seen.acked_incrs > 0, "crashed before any write: {seen:?}");
}

#[test]
fn crash_before_sync_keeps_acked_writes() {
    let seen = single_node_crash(&[], "log::before_sync", "log::before_sync=40*off->return");
    assert!(seen.acked_incrs > 0, "crashed before any write: {seen:?}");
}

#[test]
fn crash_after_commit_before_sync_keeps_acked_writes() {
    let seen = single_node_crash(&[], "log::after_commit", "log::after_commit=40*off->return");
    assert!(seen.acked_incrs > 0, "crashed before any write: {seen:?}");
}

#[test]
fn crash_after_sync_before_callbacks_keeps_acked_writes() {
    let seen = single_node_crash(&[], "log::after_sync", "log::after_sync=40*off->return");
    assert!(seen.acked_incrs > 0, "crashed before any write: {seen:?}");
}

#[test]
fn crash_during_purge_keeps_acked_writes() {
    single_node_crash(
        SNAPSHOT_OFTEN,
        "log::during_purge",
        "log::during_purge=return",
    );
}

#[test]
fn crash_before_snapshot_rename_keeps_acked_writes() {
    single_node_crash(
        SNAPSHOT_OFTEN,
        "snapshot::before_rename",
        "snapshot::before_rename=return",
    );
}

#[test]
fn crash_after_snapshot_rename_keeps_acked_writes() {
    single_node_crash(
        SNAPSHOT_OFTEN,
        "snapshot::after_rename",
        "snapshot::after_rename=return",
    );
}

/// The vote a follower saved right before it crashed is the one it finds on
/// restart. Its old leader is killed so it votes in a new election (the first
/// `save_vote` of the armed process is where it aborts).
#[test]
fn crash_after_save_vote_keeps_the_vote() {
    let mut c = Cluster::start(3, &[]);
    settle(&c);
    let l = c.leader();
    let f = (l + 1) % 3;
    let before = write_before(&c.nodes[l], 100);
    settle(&c);
    c.nodes[f].kill9();

    let mut armed = Armed::start(&c.nodes[f], "log::after_save_vote=return");
    if armed.wait_up(&c.nodes[f].addr()) {
        std::thread::sleep(Duration::from_millis(500));
        c.nodes[l].kill9();
    }
    armed.wait_crash("log::after_save_vote", Duration::from_secs(30));
    let armed_log = armed.log_text();
    drop(armed);
    let saved = armed_log
        .lines()
        .find_map(|l| l.split_once("vote is changing from ")?.1.split_once(" to "))
        .map(|(_, to)| to.trim().to_string())
        .unwrap_or_else(|| panic!("no vote change logged before the crash:\n{armed_log}"));

    // The harness log holds the first boot, then the clean restart.
    c.nodes[f].start();
    let loaded = wait_for(
        "the restart to log its initial state",
        Duration::from_secs(20),
        || {
            let votes: Vec<String> = c.nodes[f]
                .log_text()
                .lines()
                .filter_map(|l| l.split_once("get_initial_state: vote: ")?.1.split_once(','))
                .map(|(v, _)| v.trim().to_string())
                .collect();
            (votes.len() >= 2).then(|| votes[votes.len() - 1].clone())
        },
    );
    assert_eq!(loaded, saved, "the vote saved before the crash was lost");

    if !c.nodes[l].is_running() {
        c.nodes[l].start();
    }
    settle(&c);
    let l = c.leader();
    assert_durable(&c.nodes[l], &before, &Seen::default());
}

/// Wait until every node runs the same applied state and the leader has no
/// uncommitted entry (in particular no membership change half done: killing
/// a node in the middle of a joint config can stall the cluster).
fn settle(c: &Cluster) {
    wait_for("the cluster to settle", Duration::from_secs(60), || {
        let l = c.try_leader()?;
        let committed = raft_info(&c.nodes[l], "raft_committed_index");
        let last = raft_info(&c.nodes[l], "raft_last_log_index");
        if committed != last || !raft_info(&c.nodes[l], "raft_learners").is_empty() {
            return None;
        }
        let d = digests(c);
        d.iter().all(|x| *x == d[0]).then_some(())
    })
}

fn digests(c: &Cluster) -> Vec<(i64, String)> {
    common::digests_on(&c.nodes)
}

/// A follower far behind gets a snapshot and aborts while installing it
/// (file in place, state not swapped); restarted, it catches up and every
/// replica has the same keyspace.
#[test]
fn crash_during_snapshot_install_then_catch_up() {
    let mut c = Cluster::start(3, SNAPSHOT_OFTEN);
    settle(&c);
    let l = c.leader();
    let f = (l + 1) % 3;
    c.nodes[f].kill9();
    {
        let mut con = c.nodes[l].conn();
        for i in 0..300 {
            let _: () = con.set(format!("a{i}"), i).unwrap();
        }
    }

    let mut armed = Armed::start(&c.nodes[f], "snapshot::install_before_swap=return");
    armed.wait_crash("snapshot::install_before_swap", Duration::from_secs(60));
    drop(armed);

    {
        let mut con = c.nodes[l].conn();
        for i in 0..100 {
            let _: () = con.set(format!("b{i}"), i).unwrap();
        }
    }
    c.nodes[f].start();
    settle(&c);
    let mut ro = c.nodes[f].conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    assert_eq!(ro.get::<_, Option<i64>>("a299").unwrap(), Some(299));
    assert_eq!(ro.get::<_, Option<i64>>("b99").unwrap(), Some(99));
    let n: i64 = redis::cmd("DBSIZE").query(&mut ro).unwrap();
    assert_eq!(n, 400);
    assert_ne!(raft_info(&c.nodes[f], "raft_snapshot_index"), "0");
    assert!(
        !c.nodes[f].log_text().contains("panicked"),
        "the clean restart panicked:\n{}",
        c.nodes[f].log_text()
    );
    c.wait_members(3);
}

/// Poll until `path` exists (a hold point creates its `held-*` file when a
/// thread parks there).
fn wait_file(what: &str, path: &std::path::Path) {
    wait_for(what, Duration::from_secs(60), || {
        path.exists().then_some(())
    });
}

/// Acknowledged means synced: while the log store's forced sync is held, a SET on a
/// single node gets no reply at all (its entry is committed to LMDB but not
/// synced, so it is not acknowledged); once the sync runs, `+OK`.
#[test]
fn held_sync_acknowledges_no_write() {
    let c = Cluster::single(&[]);
    let env = c.nodes[0].dir.join("raft-log");
    let gate = env.join("hold-log-sync");
    std::fs::write(&gate, b"").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let url = c.nodes[0].url();
    let writer = std::thread::spawn(move || {
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        con.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let r: redis::RedisResult<String> = redis::cmd("SET").arg("held").arg("v").query(&mut con);
        tx.send(r.map_err(|e| e.to_string())).unwrap();
    });
    wait_file("the syncer to park at the gate", &env.join("held-log-sync"));
    // Observation window while the syncer is parked.
    let early = rx.recv_timeout(Duration::from_secs(2));
    assert!(
        early.is_err(),
        "the client got {early:?} while the sync was held"
    );
    std::fs::remove_file(&gate).unwrap();
    let reply = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no reply after the sync was released");
    assert_eq!(reply.as_deref(), Ok("OK"));
    writer.join().unwrap();
    let got: Option<String> = c.nodes[0].conn().get("held").unwrap();
    assert_eq!(got.as_deref(), Some("v"));
}

/// Write `n` fresh keys `{tag}:{i}`, each acknowledged.
fn write_acked(node: &Node, tag: &str, n: usize) -> Vec<(String, String)> {
    let mut con = node.conn();
    (0..n)
        .map(|i| {
            let (k, v) = (format!("{tag}:{i}"), format!("{tag}{i}"));
            let _: () = con.set(&k, &v).unwrap();
            (k, v)
        })
        .collect()
}

/// A simulated power loss on one node (see `src/raft/log_store/image.rs`):
/// the node runs with a durable image, writes `before` (normal fsync), is
/// restarted (with `--unsafe-no-fsync` if `unsafe_phase`), writes `after`,
/// is killed, and restarts from the image, i.e. from what its disk holds if
/// the page cache is lost. Returns the acknowledged `after` writes that are
/// gone; every `before` write must be there.
fn power_loss_loses(unsafe_phase: bool) -> (usize, usize) {
    let mut c = Cluster::single(&[]);
    let n = &mut c.nodes[0];
    n.kill9();
    let env = n.dir.join("raft-log");
    let image = n.dir.join("raft-log.durable-image");
    std::fs::create_dir(&image).unwrap();
    n.start();
    wait_leader_on(std::slice::from_ref(&*n));
    let before = write_acked(n, "before", 50);

    n.kill9();
    if unsafe_phase {
        n.extra.push("--unsafe-no-fsync".into());
    }
    n.start();
    wait_leader_on(std::slice::from_ref(&*n));
    let after = write_acked(n, "after", 50);
    n.kill9();

    // Power loss: the disk holds what the last completed sync wrote.
    std::fs::copy(image.join("data.mdb"), env.join("data.mdb")).unwrap();
    let _ = std::fs::remove_file(env.join("lock.mdb"));
    n.extra.clear();
    n.start();
    wait_leader_on(std::slice::from_ref(&*n));
    let mut con = n.conn();
    for (k, v) in &before {
        let got: Option<String> = con.get(k).unwrap();
        assert_eq!(got.as_deref(), Some(v.as_str()), "synced write {k} lost");
    }
    let lost = after
        .iter()
        .filter(|(k, v)| con.get::<_, Option<String>>(k).unwrap().as_deref() != Some(v.as_str()))
        .count();
    (after.len(), lost)
}

/// Every write acknowledged before a power loss is there after it.
#[test]
fn power_loss_keeps_every_acknowledged_write() {
    let (acked, lost) = power_loss_loses(false);
    assert_eq!(
        lost, 0,
        "{lost} of {acked} acknowledged writes lost in a power loss"
    );
}

/// Negative control: with `--unsafe-no-fsync` the same power loss loses the
/// acknowledged writes, so the test above can see a missing sync.
#[test]
fn power_loss_negative_control_unsafe_no_fsync_loses_acknowledged_writes() {
    let (acked, lost) = power_loss_loses(true);
    assert_eq!(
        lost, acked,
        "without fsync every write since the last real sync must be gone"
    );
}

/// A follower's snapshot build that finishes after a newer
/// snapshot was installed from the leader (and the log purged past it) is
/// discarded: the node keeps the newer snapshot and restarts cleanly.
///
/// The interleaving is forced: the follower's build parks at the
/// `snapshot-build` hold point; the follower is stopped (SIGSTOP) while the
/// leader writes, snapshots and purges past it; resumed, it installs the
/// leader's snapshot; only then is its build let through.
#[test]
fn snapshot_build_finishing_after_a_newer_install_is_discarded() {
    let mut c = Cluster::start(3, SNAPSHOT_OFTEN);
    settle(&c);
    let l = c.leader();
    let f = (l + 1) % 3;
    let snaps = c.nodes[f].dir.join("snapshots");
    let gate = snaps.join("hold-snapshot-build");
    std::fs::write(&gate, b"").unwrap();
    let written = write_acked(&c.nodes[l], "a", 80);
    wait_file(
        "the follower's build to park",
        &snaps.join("held-snapshot-build"),
    );
    let builds_done = || c.nodes[f].log_text().matches("BuildSnapshotDone").count();
    let done_before = builds_done();

    let applied: u64 = raft_info(&c.nodes[f], "raft_last_applied_index")
        .parse()
        .unwrap();
    c.nodes[f].signal("STOP");
    let mut written2 = write_acked(&c.nodes[l], "b", 300);
    wait_for(
        "the leader to purge past the follower",
        Duration::from_secs(60),
        || {
            let purged: u64 = raft_info(&c.nodes[l], "raft_purged_index").parse().ok()?;
            (purged > applied + 10).then_some(())
        },
    );
    c.nodes[f].signal("CONT");
    wait_for(
        "the follower to install the leader's snapshot",
        Duration::from_secs(60),
        || {
            c.nodes[f]
                .log_text()
                .contains("snapshot installed")
                .then_some(())
        },
    );

    std::fs::remove_file(&gate).unwrap();
    wait_for(
        "the parked build to finish",
        Duration::from_secs(60),
        || (builds_done() > done_before).then_some(()),
    );
    assert!(
        c.nodes[f]
            .log_text()
            .contains("snapshot superseded by a newer one"),
        "the parked build was not discarded:\n{}",
        c.nodes[f].log_text()
    );

    c.nodes[f].kill9();
    c.nodes[f].start();
    settle(&c);
    written2.extend(written);
    let mut ro = c.nodes[f].conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    for (k, v) in &written2 {
        let got: Option<String> = ro.get(k).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(v.as_str()),
            "{k} missing on the restarted follower"
        );
    }
    assert!(
        !c.nodes[f].log_text().contains("panicked"),
        "the restarted follower panicked:\n{}",
        c.nodes[f].log_text()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&snaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "snapshot temp files left: {leftovers:?}"
    );
}
