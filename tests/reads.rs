//! Reads and what is reported about them, on real processes:
//!
//! * replies are bounded while they are built (`client-output-buffer-limit`
//!   is enforced as each reply is encoded, so a pipeline of `GET big` cannot
//!   make the server build gigabytes);
//! * follower reads are linearizable (a read index from the leader, then
//!   local apply up to it), and a follower cut off from the leader answers
//!   `-CLUSTERDOWN`, never stale data;
//! * INFO replication reflects live links (a dead or isolated follower is
//!   not a connected replica);
//! * RESP3 replies have the shapes Redis gives them, byte for byte.

#![allow(clippy::needless_range_loop)]

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{resp_command, wait_for, Cluster, Node};
use proxy::Proxy;
use redis::Commands;

/// `field` of `INFO section` on `node` (short timeouts: polled by callers).
fn info_field(node: &Node, section: &str, field: &str) -> Option<String> {
    let mut c = redis::Client::open(node.url())
        .ok()?
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let info: String = redis::cmd("INFO").arg(section).query(&mut c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// The whole `INFO replication` text of `node`.
fn replication(node: &Node) -> String {
    let mut c = node.conn();
    redis::cmd("INFO").arg("replication").query(&mut c).unwrap()
}

/// Wait until `node`'s INFO replication `field` reads `want`.
fn wait_info(node: &Node, field: &str, want: &str) {
    wait_for(
        &format!("node {} to report {field}:{want}", node.id),
        Duration::from_secs(30),
        || (info_field(node, "replication", field).as_deref() == Some(want)).then_some(()),
    );
}

/// `VmHWM` of process `pid`, bytes.
fn vm_hwm(pid: u32) -> u64 {
    common::proc_status_bytes(pid, "VmHWM")
}

/// A connection with long timeouts (a follower read may wait for the
/// read-index timeout before answering).
fn patient_conn(node: &Node) -> redis::Connection {
    let c = node.conn();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c
}

fn readonly_conn(node: &Node) -> redis::Connection {
    let mut c = patient_conn(node);
    let _: () = redis::cmd("READONLY").query(&mut c).unwrap();
    c
}

fn dbsize(c: &mut redis::Connection) -> redis::RedisResult<i64> {
    redis::cmd("DBSIZE").query(c)
}

use common::CALM_ELECTIONS as CALM;

/// `op` until it succeeds. An error (an election on a loaded machine, a
/// read index that timed out) is retried; a wrong answer never is, since
/// the caller checks every value `op` returns.
fn until_ok<T>(what: &str, mut op: impl FnMut() -> redis::RedisResult<T>) -> T {
    wait_for(what, Duration::from_secs(60), || op().ok())
}

/// SET through whoever leads (found again after any error), as a cluster
/// client would.
fn set_via_leader(c: &Cluster, lc: &mut redis::Connection, key: &str, value: &str) {
    until_ok(&format!("SET {key} through the leader"), || {
        let r = lc.set(key, value);
        if r.is_err() {
            if let Some(l) = c.try_leader() {
                *lc = patient_conn(&c.nodes[l]);
            }
        }
        r
    })
}

// ---- item 3: replies bounded while they are built --------------------------

const MB: usize = 1 << 20;

/// Send `request` on a fresh connection without reading, then read until
/// the server closes it; returns how many reply bytes arrived.
fn send_and_drain(addr: &str, request: &[u8]) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request).unwrap();
    drain(&mut s)
}

/// Read until the server closes the connection; how many bytes came.
fn drain(s: &mut TcpStream) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got += n,
            // Closed with our request still unread: a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server neither answered nor closed: {e} after {got} bytes"),
        }
    }
}

/// `SET big <20 MB>`, then 200 pipelined `GET big` and one `MGET` of 200
/// × big: 4 GB of replies if built before the limit (32 MB) is checked.
/// The server closes those clients with Redis's log line, its peak memory
/// stays far below that, and another client is answered throughout.
#[test]
fn output_buffer_limit_is_enforced_while_replies_are_built() {
    let c = Cluster::single(&["--client-output-buffer-limit", "32mb 0 0"]);
    let n = &c.nodes[0];
    let pid = n.pid().unwrap();
    let mut con = patient_conn(n);
    let _: () = con.set("big", vec![b'x'; 20 * MB]).unwrap();
    let _: () = con.set("small", "ok").unwrap();
    let before = vm_hwm(pid);

    // A second client keeps getting answers while the big pipelines run.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        let mut other = patient_conn(n);
        std::thread::spawn(move || {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let v: String = other.get("small").expect("second client answered");
                assert_eq!(v, "ok");
                answered += 1;
            }
            answered
        })
    };

    let get = resp_command(&[b"GET", b"big"]);
    let pipeline: Vec<u8> = get.repeat(200);
    let mut mget: Vec<&[u8]> = vec![b"MGET"];
    mget.extend(std::iter::repeat_n(&b"big"[..], 200));
    for request in [pipeline, resp_command(&mget)] {
        let got = send_and_drain(&n.addr(), &request);
        assert!(
            got <= 32 * MB,
            "{got} reply bytes were sent past a 32 MB output limit"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(pinger.join().unwrap() > 0);

    let after = vm_hwm(pid);
    assert!(
        after < before + 200 * MB as u64,
        "peak RSS grew from {} MB to {} MB: replies were built past the limit",
        before / MB as u64,
        after / MB as u64
    );
    let closed = n.log_text().matches(CLOSED_LINE).count();
    assert_eq!(closed, 2, "Redis's log line once per closed client");
    // The node is healthy and serves the value to a client that reads it.
    let v: Vec<u8> = con.get("big").unwrap();
    assert_eq!(v.len(), 20 * MB);
}

const CLOSED_LINE: &str = "scheduled to be closed ASAP for overcoming of output buffer limits.";

/// The soft limit: a client that stops reading while more than the soft
/// limit of its replies is pending is closed after soft-seconds, with the
/// same log line; a client that reads along keeps working.
#[test]
fn slow_reader_over_the_soft_limit_is_closed() {
    let c = Cluster::single(&["--client-output-buffer-limit", "256mb 8mb 2"]);
    let n = &c.nodes[0];
    let mut con = patient_conn(n);
    let _: () = con.set("big", vec![b'x'; 32 * MB]).unwrap();
    let _: () = con.set("medium", vec![b'y'; 4 * MB]).unwrap();
    let mut slow = TcpStream::connect(n.addr()).unwrap();
    slow.write_all(&resp_command(&[b"GET", b"big"])).unwrap();
    // Be the slow client: read nothing until the server gives up on us.
    wait_for(
        "the slow reader to be closed",
        Duration::from_secs(60),
        || n.log_text().contains(CLOSED_LINE).then_some(()),
    );
    let got = drain(&mut slow);
    assert!(got < 32 * MB, "the whole reply was delivered ({got} bytes)");
    let v: Vec<u8> = con.get("medium").unwrap();
    assert_eq!(v.len(), 4 * MB);
    assert_eq!(n.log_text().matches(CLOSED_LINE).count(), 1);
}

// ---- item 10: linearizable follower reads ----------------------------------

/// Write through the leader, then read on a follower at once: a READONLY
/// GET and a DBSIZE there must see the write every time.
fn follower_reads_see_every_write(extra: &[&str], rounds: usize) {
    let c = Cluster::start(3, &[CALM, extra].concat());
    let l = c.leader();
    let f = (l + 1) % 3;
    let mut lc = patient_conn(&c.nodes[l]);
    let mut ro = readonly_conn(&c.nodes[f]);
    let mut plain = patient_conn(&c.nodes[f]);
    for i in 0..rounds {
        let key = format!("fr{i}");
        set_via_leader(&c, &mut lc, &key, &i.to_string());
        let got: Option<String> = until_ok("READONLY GET", || ro.get(&key));
        assert_eq!(
            got,
            Some(i.to_string()),
            "READONLY GET on the follower, round {i}"
        );
        let n = until_ok("DBSIZE", || dbsize(&mut plain));
        assert_eq!(n, i as i64 + 1, "DBSIZE on the follower, round {i}");
    }
    // Keyed reads without READONLY are still redirected.
    let e = plain.get::<_, String>("fr0").unwrap_err();
    assert_eq!(e.kind(), redis::ErrorKind::Moved);
}

#[test]
fn follower_reads_are_linearizable() {
    follower_reads_see_every_write(&[], 300);
}

#[test]
fn follower_reads_under_lease_see_every_write() {
    follower_reads_see_every_write(&["--read-consistency", "lease"], 100);
}

/// Three nodes; every bus link to and from node `watched` (an index) goes
/// through its own proxy, so the test can cut that node off.
struct ProxiedCluster {
    c: Cluster,
    proxies: Vec<Proxy>,
}

impl ProxiedCluster {
    fn start(watched: usize, extra: &[&str]) -> ProxiedCluster {
        let root = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (1..=3).map(|id| Node::new(id, root.path())).collect();
        let mut proxies = Vec::new();
        let mut routes: Vec<Vec<String>> = vec![Vec::new(); 3];
        for i in 0..3 {
            for j in 0..3 {
                if i != j && (i == watched || j == watched) {
                    let p =
                        Proxy::start(format!("127.0.0.1:{}", nodes[j].bus_port).parse().unwrap());
                    routes[i].push(format!("{}={}", j + 1, p.addr()));
                    proxies.push(p);
                }
            }
        }
        let seed = nodes[0].join_addr();
        for (i, node) in nodes.iter_mut().enumerate() {
            node.extra = extra.iter().map(|s| s.to_string()).collect();
            node.extra
                .extend(["--bus-route".to_string(), routes[i].join(",")]);
            if i > 0 {
                node.join = Some(seed.clone());
            }
            node.start();
            if i == 0 {
                common::wait_leader_on(std::slice::from_ref(node));
            }
        }
        let c = Cluster { nodes, root };
        c.wait_members(3);
        ProxiedCluster { c, proxies }
    }

    fn cut(&self) {
        self.proxies.iter().for_each(Proxy::cut);
    }

    fn heal(&self) {
        self.proxies.iter().for_each(Proxy::heal);
    }
}

/// The leader, once it is not `avoid` (moved away with RAFTCACHE TRANSFER).
fn leader_other_than(c: &Cluster, avoid: usize) -> usize {
    wait_for(
        "a leader other than the watched node",
        Duration::from_secs(30),
        || {
            let l = c.try_leader()?;
            if l != avoid {
                return Some(l);
            }
            let target = (avoid + 1) % c.nodes.len() + 1;
            let _: redis::RedisResult<()> = redis::cmd("RAFTCACHE")
                .arg("TRANSFER")
                .arg(target)
                .query(&mut c.nodes[l].conn());
            None
        },
    )
}

fn assert_clusterdown<T: std::fmt::Debug>(what: &str, r: redis::RedisResult<T>) {
    match r {
        Err(e) if e.kind() == redis::ErrorKind::ClusterDown => {}
        other => panic!("{what} on a cut-off follower: want CLUSTERDOWN, got {other:?}"),
    }
}

/// A follower cut off from the leader answers reads with an error, not
/// its stale state; INFO shows the link down on both sides; after healing
/// it serves the newer value.
#[test]
fn cut_off_follower_answers_clusterdown_not_stale_data() {
    let w = 2;
    let pc = ProxiedCluster::start(w, &[CALM, &["--read-index-timeout", "1500"]].concat());
    let c = &pc.c;
    let l = leader_other_than(c, w);
    let mut lc = patient_conn(&c.nodes[l]);
    set_via_leader(c, &mut lc, "k", "old");
    let mut ro = readonly_conn(&c.nodes[w]);
    let mut plain = patient_conn(&c.nodes[w]);
    assert_eq!(until_ok("GET", || ro.get::<_, String>("k")), "old");
    assert_eq!(until_ok("DBSIZE", || dbsize(&mut plain)), 1);
    wait_info(&c.nodes[l], "connected_slaves", "2");
    wait_info(&c.nodes[w], "master_link_status", "up");

    pc.cut();
    set_via_leader(c, &mut lc, "k", "new");
    set_via_leader(c, &mut lc, "k2", "new");
    for _ in 0..3 {
        assert_clusterdown("READONLY GET", ro.get::<_, String>("k"));
        assert_clusterdown("DBSIZE", dbsize(&mut plain));
        assert_clusterdown("KEYS", plain.keys::<_, Vec<String>>("*"));
    }
    // Observability: both ends see the dead link.
    wait_info(&c.nodes[w], "master_link_status", "down");
    wait_info(&c.nodes[l], "connected_slaves", "1");
    let port = format!("port={},", c.nodes[w].port);
    assert!(
        !replication(&c.nodes[l]).contains(&port),
        "the cut-off follower is still listed:\n{}",
        replication(&c.nodes[l])
    );

    pc.heal();
    wait_for(
        "the healed follower to serve the new value",
        Duration::from_secs(30),
        || (ro.get::<_, String>("k").ok()? == "new").then_some(()),
    );
    assert_eq!(until_ok("DBSIZE", || dbsize(&mut plain)), 2);
    wait_info(&c.nodes[w], "master_link_status", "up");
    wait_info(&c.nodes[l], "connected_slaves", "2");
}

// ---- INFO replication and RESP3 shapes --------------------------------------

/// A follower killed with `kill -9` stops counting as a connected replica
/// on the leader, and counts again once it is back.
#[test]
fn dead_follower_is_not_a_connected_replica() {
    let mut c = Cluster::start(3, CALM);
    let l = c.leader();
    let f = (l + 1) % 3;
    wait_info(&c.nodes[l], "connected_slaves", "2");
    let port = format!("port={},", c.nodes[f].port);
    assert!(replication(&c.nodes[l]).contains(&port));
    c.nodes[f].kill9();
    wait_info(&c.nodes[l], "connected_slaves", "1");
    let text = replication(&c.nodes[l]);
    assert!(!text.contains(&port), "dead follower listed:\n{text}");
    assert!(
        text.contains("slave0:") && !text.contains("slave1:"),
        "{text}"
    );
    c.nodes[f].join = None;
    c.nodes[f].start();
    wait_info(&c.nodes[l], "connected_slaves", "2");
    wait_info(&c.nodes[f], "master_link_status", "up");
}

/// Read one RESP2/RESP3 frame and return its raw bytes.
fn read_frame(r: &mut impl BufRead) -> Vec<u8> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).unwrap();
    assert!(line.ends_with(b"\r\n"), "truncated frame: {line:?}");
    let n = || -> i64 {
        std::str::from_utf8(&line[1..line.len() - 2])
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut out = line.clone();
    match line[0] {
        b'$' | b'=' | b'!' if n() >= 0 => {
            let mut body = vec![0u8; n() as usize + 2];
            r.read_exact(&mut body).unwrap();
            out.extend(body);
        }
        b'*' | b'~' | b'>' if n() > 0 => (0..n()).for_each(|_| out.extend(read_frame(r))),
        b'%' | b'|' => (0..2 * n()).for_each(|_| out.extend(read_frame(r))),
        _ => {}
    }
    out
}

/// One connection speaking raw RESP.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn new(node: &Node) -> Raw {
        let w = TcpStream::connect(node.addr()).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Raw { w, r }
    }

    fn call(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.w.write_all(&resp_command(&args)).unwrap();
        read_frame(&mut self.r)
    }

    fn text(&mut self, args: &[&str]) -> String {
        String::from_utf8(self.call(args)).unwrap()
    }
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// After HELLO 3 every command whose reply has a RESP3 type (map, set,
/// verbatim; no command here answers a double or a boolean) sends exactly
/// Redis's bytes; RESP2 gets the downgraded forms.
#[test]
fn resp3_reply_shapes_byte_for_byte() {
    let c = Cluster::single(&[]);
    let n = &c.nodes[0];
    let mut v2 = Raw::new(n);
    let mut v3 = Raw::new(n);
    let id = v3.text(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end();
    let name = v2.text(&["CLUSTER", "MYID"]);
    let name = name.lines().nth(1).unwrap().to_string();
    let port = n.port;

    // HELLO 3: a map, answered in RESP3.
    let hello = |proto: u8| {
        [
            bulk("server"),
            bulk("redis"),
            bulk("version"),
            bulk("7.2.4"),
            bulk("proto"),
            format!(":{proto}\r\n"),
            bulk("id"),
            format!(":{id}\r\n"),
            bulk("mode"),
            bulk("cluster"),
            bulk("role"),
            bulk("master"),
            bulk("modules"),
            "*0\r\n".into(),
        ]
        .concat()
    };
    assert_eq!(v3.text(&["HELLO", "3"]), format!("%7\r\n{}", hello(3)));
    assert_eq!(v3.text(&["HELLO", "2"]), format!("*14\r\n{}", hello(2)));
    assert_eq!(v3.text(&["HELLO", "3"]), format!("%7\r\n{}", hello(3)));

    // CONFIG GET: a map.
    let cfg = [bulk("maxclients"), bulk("10000")].concat();
    assert_eq!(
        v3.text(&["CONFIG", "GET", "maxclients"]),
        format!("%1\r\n{cfg}")
    );
    assert_eq!(
        v2.text(&["CONFIG", "GET", "maxclients"]),
        format!("*2\r\n{cfg}")
    );

    // CLUSTER SLOTS: node metadata is a map in RESP3, an array in RESP2.
    let slots = |meta: &str| {
        format!(
            "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n{}:{port}\r\n{}{meta}",
            bulk("127.0.0.1"),
            bulk(&name)
        )
    };
    assert_eq!(v3.text(&["CLUSTER", "SLOTS"]), slots("%0\r\n"));
    assert_eq!(v2.text(&["CLUSTER", "SLOTS"]), slots("*0\r\n"));

    // CLUSTER SHARDS: maps.
    let applied = info_field(n, "raft", "raft_last_applied_index").unwrap();
    let shard_node = [
        bulk("id"),
        bulk(&name),
        bulk("port"),
        format!(":{port}\r\n"),
        bulk("ip"),
        bulk("127.0.0.1"),
        bulk("endpoint"),
        bulk("127.0.0.1"),
        bulk("role"),
        bulk("master"),
        bulk("replication-offset"),
        format!(":{applied}\r\n"),
        bulk("health"),
        bulk("online"),
    ]
    .concat();
    let shards = |map: &dyn Fn(usize) -> String| {
        format!(
            "*1\r\n{}{}*2\r\n:0\r\n:16383\r\n{}*1\r\n{}{shard_node}",
            map(2),
            bulk("slots"),
            bulk("nodes"),
            map(7)
        )
    };
    assert_eq!(
        v3.text(&["CLUSTER", "SHARDS"]),
        shards(&|n| format!("%{n}\r\n"))
    );
    assert_eq!(
        v2.text(&["CLUSTER", "SHARDS"]),
        shards(&|n| format!("*{}\r\n", 2 * n))
    );

    // Text replies: verbatim `txt` in RESP3, the same text as a bulk in RESP2.
    for cmd in [
        &["CLUSTER", "NODES"][..],
        &["CLUSTER", "INFO"],
        &["INFO", "cluster"],
    ] {
        let body = v2.text(cmd);
        let body = body.split_once("\r\n").unwrap().1;
        let body = &body[..body.len() - 2];
        assert_eq!(
            v3.text(cmd),
            format!("={}\r\ntxt:{body}\r\n", body.len() + 4),
            "{cmd:?}"
        );
    }
    for cmd in [&["INFO"][..], &["CLIENT", "INFO"], &["CLIENT", "LIST"]] {
        let reply = v3.text(cmd);
        let (len, body) = reply.strip_prefix('=').unwrap().split_once("\r\n").unwrap();
        assert!(body.starts_with("txt:"), "{cmd:?}: {reply:?}");
        assert_eq!(len.parse::<usize>().unwrap() + 2, body.len(), "{cmd:?}");
    }

    // COMMAND INFO: flags, ACL categories and tips are sets.
    let get_info = |set: char| {
        format!(
            "*1\r\n*10\r\n{}:2\r\n{set}2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n{set}3\r\n+@read\r\n+@string\r\n+@fast\r\n{set}0\r\n",
            bulk("get")
        )
    };
    let got = v3.text(&["COMMAND", "INFO", "get"]);
    assert!(got.starts_with(&get_info('~')), "{got:?}");
    let got = v2.text(&["COMMAND", "INFO", "get"]);
    assert!(got.starts_with(&get_info('*')), "{got:?}");

    // COMMAND DOCS and RAFTCACHE STATUS: maps.
    let docs = v3.text(&["COMMAND", "DOCS", "get"]);
    assert!(
        docs.starts_with(&format!("%1\r\n{}%", bulk("get"))),
        "{docs:?}"
    );
    let docs = v2.text(&["COMMAND", "DOCS", "get"]);
    assert!(
        docs.starts_with(&format!("*2\r\n{}*", bulk("get"))),
        "{docs:?}"
    );
    let status = v3.text(&["RAFTCACHE", "STATUS"]);
    assert!(status.starts_with('%'), "{status:?}");
    assert!(
        status.contains(&format!("{}:{}\r\n", bulk("id"), 1)),
        "{status:?}"
    );

    // Nulls.
    assert_eq!(v3.text(&["GET", "missing"]), "_\r\n");
    assert_eq!(v2.text(&["GET", "missing"]), "$-1\r\n");
}
