//! Bus authentication (docs/membership.md, "Bus authentication"), on real
//! processes and sockets: with a cluster secret, the raft bus refuses
//! (logs and counts) garbage, raft messages sent without a handshake, a
//! replayed handshake, a wrong secret, oversize handshake frames, a
//! connection that never finishes its handshake and a flood of
//! unauthenticated connections, and keeps serving and replicating through
//! all of them. A cluster with the secret forms, fails over and takes a
//! restarted node back; a node without it, or with another one, cannot
//! join; a node never joins an impostor that does not know the secret.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{converged_digest, wait_for, wait_leader_on, Cluster, Node};
use raftcache::raft::auth::{ClusterSecret, Side, Transcript};
use raftcache::raft::identity::GuestHello;
use raftcache::raft::network::{write_frame, BusRequest, BusResponse, BUS_VERSION};
use raftcache::raft::types::{decode, SnapshotMeta, Vote};

const SECRET: &str = "correct horse battery staple";

fn bus(node: &Node) -> String {
    format!("127.0.0.1:{}", node.bus_port)
}

/// A bus frame as the nodes write it.
fn frame<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let mut out = Vec::new();
    futures::executor::block_on(write_frame(&mut out, msg)).unwrap();
    out
}

/// Read one bus frame's body (None: closed, reset or silent for 5 s).
fn read_body(s: &mut TcpStream) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn read_response(s: &mut TcpStream) -> Option<BusResponse> {
    decode(&read_body(s)?).ok()
}

/// Whether the node closed `s` (EOF or reset) within 10 s.
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn guest_hello() -> BusRequest {
    BusRequest::GuestHello(GuestHello {
        version: BUS_VERSION,
        from: 99,
        from_name: "f".repeat(40),
        cluster: None,
    })
}

/// What a dialer knowing `secret` sends, as recorded bytes: its hello and
/// its proof for the challenge the node sent. Returns the bytes sent and
/// the node's answer to the proof.
fn handshake(addr: &str, secret: &str) -> (TcpStream, Vec<u8>, Option<BusResponse>) {
    let mut s = TcpStream::connect(addr).unwrap();
    let hello = guest_hello();
    let hello_body = postcard::to_stdvec(&hello).unwrap();
    let mut sent = frame(&hello);
    s.write_all(&sent).unwrap();
    let Some(BusResponse::Challenge { nonce: listener }) = read_response(&mut s) else {
        panic!("no challenge from a node with a cluster secret")
    };
    let dialer = [7u8; 32];
    let t = Transcript {
        hello: &hello_body,
        listener_nonce: &listener,
        dialer_nonce: &dialer,
    };
    let proof = BusRequest::Proof {
        nonce: dialer,
        mac: ClusterSecret::new(secret).prove(Side::Dialer, &t),
    };
    let proof = frame(&proof);
    s.write_all(&proof).unwrap();
    sent.extend(proof);
    let answer = read_response(&mut s);
    (s, sent, answer)
}

/// SET through whichever node leads, retried across elections.
fn write(nodes: &[Node], key: &str, value: &str) {
    wait_for(&format!("SET {key}"), Duration::from_secs(60), || {
        nodes.iter().filter(|n| n.is_running()).find_map(|n| {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query::<()>(&mut n.try_conn()?)
                .ok()
        })
    });
}

/// The node still serves clients and the cluster still replicates.
fn still_serving(c: &Cluster, key: &str) {
    for n in c.nodes.iter().filter(|n| n.is_running()) {
        let pong: String = redis::cmd("PING").query(&mut n.conn()).unwrap();
        assert_eq!(pong, "PONG");
    }
    write(&c.nodes, key, "v");
    converged_digest(&c.nodes, Duration::from_secs(30));
}

fn wait_log(node: &Node, what: &str) {
    wait_for(
        &format!("node {} to log {what:?}", node.id),
        Duration::from_secs(10),
        || node.log_text().contains(what).then_some(()),
    );
}

fn refused_total(metrics_port: u16) -> u64 {
    let (out, _) = common::raw_exchange_closed(
        &format!("127.0.0.1:{metrics_port}"),
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    );
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("raftcache_bus_refused_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

#[test]
fn unauthenticated_bus_traffic_is_refused_and_the_cluster_keeps_going() {
    let metrics = common::free_port();
    let c = Cluster::start_with(3, &["--cluster-secret", SECRET], |n| {
        if n.id == 1 {
            n.extra
                .extend(["--metrics-port".into(), metrics.to_string()]);
        }
    });
    let target = &c.nodes[0];
    let addr = bus(target);
    let term = || target.raft_u64("raft_term").unwrap();
    let term_before = term();
    still_serving(&c, "k0");

    // Garbage.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"\x00\x00\x00\x05hello").unwrap();
    assert!(closed(&mut s));
    wait_log(target, "garbage");
    still_serving(&c, "k1");

    // A well-formed raft message (a vote with a far higher term) without
    // any hello: refused, and the term does not move.
    let vote = BusRequest::Vote(openraft::raft::VoteRequest::new(Vote::new(1000, 2), None));
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&frame(&vote)).unwrap();
    assert!(matches!(read_response(&mut s), Some(BusResponse::Error(_))));
    assert!(closed(&mut s));
    wait_log(target, "first bus frame was not a hello (a vote request");
    // The same after a hello, in place of the proof.
    let mut s = challenged(&addr);
    s.write_all(&frame(&vote)).unwrap();
    assert!(closed(&mut s));
    wait_log(
        target,
        "no proof of the cluster secret (a vote request instead)",
    );
    assert!(term() < 1000, "an unauthenticated vote moved the term");
    // A snapshot chunk, first or in place of the proof: refused before it
    // reaches the disk.
    let chunk = BusRequest::SnapshotChunk {
        vote: Vote::new_committed(1000, 2),
        meta: SnapshotMeta {
            last_log_id: None,
            last_membership: Default::default(),
        },
        offset: 0,
        data: bytes::Bytes::from_static(b"not a snapshot"),
        done: false,
    };
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&frame(&chunk)).unwrap();
    assert!(closed(&mut s));
    wait_log(
        target,
        "first bus frame was not a hello (a snapshot chunk request",
    );
    let mut s = challenged(&addr);
    s.write_all(&frame(&chunk)).unwrap();
    assert!(closed(&mut s));
    wait_log(target, "(a snapshot chunk request instead)");
    let received: Vec<_> = std::fs::read_dir(target.dir.join("snapshots"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("recv-"))
        .collect();
    assert!(received.is_empty(), "{received:?}");
    still_serving(&c, "k2");

    // A legitimate handshake (the right secret) is admitted: the node
    // proves the secret back and answers a request...
    let (mut s, recorded, answer) = handshake(&addr, SECRET);
    let Some(BusResponse::Proof { .. }) = answer else {
        panic!("a correct proof was not accepted: {answer:?}")
    };
    s.write_all(&frame(&BusRequest::WhoAreYou)).unwrap();
    assert!(matches!(
        read_response(&mut s),
        Some(BusResponse::Identity { id: 1, .. })
    ));
    drop(s);
    // ...but the same bytes replayed are not: the challenge is fresh.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&recorded).unwrap();
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut got);
    let replies = frames(&got);
    assert!(
        matches!(replies.first(), Some(BusResponse::Challenge { .. })),
        "{replies:?}"
    );
    assert!(
        matches!(replies.get(1), Some(BusResponse::Error(e)) if e.contains("bad MAC")),
        "a replayed handshake was not refused: {replies:?}"
    );
    wait_log(target, "bad MAC");
    still_serving(&c, "k3");

    // A wrong secret.
    let (mut s, _, answer) = handshake(&addr, "not the secret");
    assert!(
        matches!(&answer, Some(BusResponse::Error(e)) if e.contains("bad MAC")),
        "a wrong secret was not refused: {answer:?}"
    );
    assert!(closed(&mut s));
    still_serving(&c, "k4");

    // An oversize handshake frame is refused on its length alone.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&(64u32 << 20).to_be_bytes()).unwrap();
    assert!(closed(&mut s));
    wait_log(target, "exceeds the limit of 4096");

    // A connection that never completes its handshake is dropped.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"\x00\x00\x00\x10abc").unwrap();
    let at = Instant::now();
    assert!(closed(&mut s));
    assert!(at.elapsed() >= Duration::from_secs(4), "{:?}", at.elapsed());
    wait_log(target, "timeout: no complete handshake");

    // A flood of idle connections: beyond 64 in their handshake, more are
    // closed at once.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = TcpStream::connect(&addr).unwrap();
    let at = Instant::now();
    assert!(closed(&mut extra));
    assert!(at.elapsed() < Duration::from_secs(3), "{:?}", at.elapsed());
    wait_log(target, "bus connections are already in their handshake");
    drop(idle);

    // Counted, and the cluster never noticed any of it.
    assert!(refused_total(metrics) >= 8, "{}", refused_total(metrics));
    still_serving(&c, "k5");
    assert!(term() < 1000);
    assert!(term() >= term_before);
    let leader = wait_leader_on(&c.nodes);
    assert!(c.nodes[leader].is_running());
}

/// Every whole frame in `bytes`, decoded.
fn frames(mut bytes: &[u8]) -> Vec<BusResponse> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let Some(body) = bytes.get(4..4 + len) else {
            break;
        };
        out.push(decode(body).unwrap());
        bytes = &bytes[4 + len..];
    }
    out
}

#[test]
fn a_cluster_with_a_secret_fails_over_rejoins_and_keeps_strangers_out() {
    let mut c = Cluster::start(3, &["--cluster-secret", SECRET]);
    write(&c.nodes, "before", "1");
    converged_digest(&c.nodes, Duration::from_secs(30));

    // kill -9 the leader: another is elected and takes writes.
    let old = c.leader();
    c.nodes[old].kill9();
    let others: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    wait_for("a new leader", Duration::from_secs(30), || {
        others
            .iter()
            .find(|i| common::role(&c.nodes[**i]).as_deref() == Some("master"))
    });
    write(&c.nodes, "after", "2");
    // The old leader comes back (same data dir, same secret) and catches up.
    c.nodes[old].start();
    // Same applied index and keyspace digest on all three: it holds the
    // write made while it was down.
    converged_digest(&c.nodes, Duration::from_secs(60));
    let status: String = redis::cmd("INFO")
        .arg("raft")
        .query(&mut c.nodes[old].conn())
        .unwrap();
    assert!(status.contains("raft_state:Follower"), "{status}");

    // A node without the secret cannot join, and says why.
    let seed_node = c.leader();
    let seed = c.nodes[seed_node].join_addr();
    let mut plain = Node::new(4, c.root.path());
    plain.join = Some(seed.clone());
    plain.start();
    wait_log(&plain, "the peer requires the cluster secret");
    let leader = c.leader();
    wait_log(
        &c.nodes[leader],
        "closed instead of proving the cluster secret",
    );
    // One with another secret neither.
    let mut wrong = Node::new(5, c.root.path());
    wrong.extra = vec!["--cluster-secret".into(), "another secret".into()];
    wrong.join = Some(seed);
    wrong.start();
    wait_log(&wrong, "bad MAC");
    // Still three voters, still replicating.
    c.wait_members(3);
    write(&c.nodes, "end", "3");
    converged_digest(&c.nodes, Duration::from_secs(30));
}

/// The dialer checks the listener too: a node never joins (so never
/// replicates to, or takes appends from) an impostor that answers the
/// handshake without knowing the secret.
#[test]
fn a_node_does_not_join_an_impostor() {
    let impostor = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = impostor.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let mut asked = 0;
        for s in impostor.incoming().take(3) {
            let Ok(mut s) = s else { continue };
            let (Some(_hello), true) = (
                read_body(&mut s),
                s.write_all(&frame(&BusResponse::Challenge { nonce: [1; 32] }))
                    .is_ok(),
            ) else {
                continue;
            };
            if read_body(&mut s).is_some() {
                // A proof made up without the secret.
                let _ = s.write_all(&frame(&BusResponse::Proof { mac: [2; 32] }));
                asked += 1;
            }
            // A join request after this would be a failure of the test.
            if let Some(body) = read_body(&mut s) {
                panic!("the node sent a request to an impostor: {body:?}");
            }
        }
        asked
    });
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(1, root.path());
    n.extra = vec!["--cluster-secret".into(), SECRET.into()];
    n.join = Some(format!("127.0.0.1:1@{port}"));
    n.start();
    wait_log(&n, "the peer's proof of the cluster secret is wrong");
    assert!(fake.join().unwrap() >= 1);
}

/// A TCP relay to `target` (set once known) that records what each
/// connection's dialer sent and what it got back.
struct Relay {
    port: u16,
    target: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// Per connection: (dialer → listener bytes, listener → dialer bytes).
    seen: std::sync::Arc<std::sync::Mutex<Vec<SeenConn>>>,
}

type SeenConn = (
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
);

impl Relay {
    fn start() -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let target: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
        let seen: std::sync::Arc<std::sync::Mutex<Vec<SeenConn>>> = Default::default();
        let (t, sn) = (target.clone(), seen.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(down) = c else { continue };
                let Some(addr) = t.lock().unwrap().clone() else {
                    continue;
                };
                let Ok(up) = TcpStream::connect(addr) else {
                    continue;
                };
                let conn: SeenConn = Default::default();
                sn.lock().unwrap().push(conn.clone());
                let pump =
                    |mut from: TcpStream,
                     mut to: TcpStream,
                     log: std::sync::Arc<std::sync::Mutex<Vec<u8>>>| {
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 65536];
                            while let Ok(n) = from.read(&mut buf) {
                                if n == 0 || to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                                let mut log = log.lock().unwrap();
                                if log.len() < 1 << 16 {
                                    log.extend_from_slice(&buf[..n]);
                                }
                            }
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    };
                pump(down.try_clone().unwrap(), up.try_clone().unwrap(), conn.0);
                pump(up, down, conn.1);
            }
        });
        Relay { port, target, seen }
    }

    /// The first two frames a dialer sent (its hello and its proof) on a
    /// connection whose handshake the listener accepted (a `Challenge`,
    /// then a `Proof`).
    fn accepted_handshake(&self) -> Option<Vec<u8>> {
        let seen = self.seen.lock().unwrap();
        seen.iter().find_map(|(sent, got)| {
            let got = got.lock().unwrap();
            let replies = frames(&got);
            let ok = matches!(replies.first(), Some(BusResponse::Challenge { .. }))
                && matches!(replies.get(1), Some(BusResponse::Proof { .. }));
            let sent = sent.lock().unwrap();
            let two = frame_prefix(&sent, 2)?;
            ok.then(|| sent[..two].to_vec())
        })
    }
}

/// Length of the first `n` whole frames of `bytes`.
fn frame_prefix(bytes: &[u8], n: usize) -> Option<usize> {
    let mut at = 0;
    for _ in 0..n {
        let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().unwrap()) as usize;
        at += 4 + len;
        if at > bytes.len() {
            return None;
        }
    }
    Some(at)
}

/// A real node's handshake, captured on the wire and replayed to the node
/// it was meant for, is refused: the node's challenge is fresh each time.
#[test]
fn a_captured_handshake_replayed_is_refused() {
    let relay = Relay::start();
    let relay_port = relay.port;
    let target = relay.target.clone();
    // Node 1 (the leader) reaches node 2's bus through the relay.
    let c = Cluster::start_with(2, &["--cluster-secret", SECRET], |n| match n.id {
        1 => n
            .extra
            .extend(["--bus-route".into(), format!("2=127.0.0.1:{relay_port}")]),
        _ => *target.lock().unwrap() = Some(bus(n)),
    });
    write(&c.nodes, "k", "v");
    converged_digest(&c.nodes, Duration::from_secs(30));
    let recorded = wait_for(
        "a handshake through the relay",
        Duration::from_secs(10),
        || relay.accepted_handshake(),
    );
    let mut s = TcpStream::connect(bus(&c.nodes[1])).unwrap();
    s.write_all(&recorded).unwrap();
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut got);
    let replies = frames(&got);
    assert!(
        matches!(replies.get(1), Some(BusResponse::Error(e)) if e.contains("bad MAC")),
        "a replayed real handshake was not refused: {replies:?}"
    );
    wait_log(&c.nodes[1], "bad MAC");
    still_serving(&c, "after-replay");
}

/// A connection to the bus at `addr` that sent a guest hello and was
/// answered with a challenge (the next frame should be the proof).
fn challenged(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&frame(&guest_hello())).unwrap();
    assert!(matches!(
        read_response(&mut s),
        Some(BusResponse::Challenge { .. })
    ));
    s
}

/// A node bound to a non-loopback address without a cluster secret does
/// not start: exit 2, naming both knobs. With the secret it starts.
#[test]
fn a_non_loopback_bind_without_a_secret_does_not_start() {
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--bind", "0.0.0.0", "--metrics-port", "0", "--port"])
        .arg(common::free_port().to_string())
        .arg("--dir")
        .arg(root.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cluster-secret") && err.contains("cluster-secret-file"),
        "{err}"
    );
    // With a secret it starts (and answers clients on all interfaces).
    let mut n = Node::new(1, root.path());
    n.extra = vec![
        "--bind".into(),
        "0.0.0.0".into(),
        "--cluster-secret".into(),
        SECRET.into(),
    ];
    n.start();
    wait_leader_on(std::slice::from_ref(&n));
}
