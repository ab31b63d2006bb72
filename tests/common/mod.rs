//! Test harness: real `raftcache` processes on free loopback ports, in temp
//! dirs, killed by PID when the test ends (even on panic).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_raftcache");

/// Sockets that hold the ports handed out by [`free_port`] for the life of
/// the test process.
static RESERVED: Mutex<Vec<socket2::Socket>> = Mutex::new(Vec::new());

/// A free loopback port that stays ours until the test process exits.
///
/// Binding `:0` and releasing the port (the usual trick) races with every
/// other process on a busy machine: another test's `bind(0)` or an outgoing
/// connection's ephemeral port can take it before the node binds it. So the
/// port stays bound by a socket with `SO_REUSEADDR` that never listens: the
/// kernel gives it to no other `bind(0)` and to no outgoing connection, while
/// a listener that also sets `SO_REUSEADDR` (std's and tokio's `bind` do) may
/// bind it, again after every restart.
pub fn free_port() -> u16 {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind 127.0.0.1:0");
    let port = s
        .local_addr()
        .expect("local addr")
        .as_socket()
        .expect("an inet address")
        .port();
    RESERVED.lock().unwrap().push(s);
    port
}

/// Whether the external tool `tool` (e.g. `redis-cli`) runs here. When it
/// does not: with `RAFTCACHE_REQUIRE_TOOLS=1` or `CI` set (as `.ci/run` does)
/// the test fails; locally it is skipped with a printed reason, and the skip
/// is appended to `$RAFTCACHE_SKIP_LOG` so `scripts/test` can list it.
pub fn tool_available(tool: &str, test: &str) -> bool {
    if Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return true;
    }
    skip_missing(test, &format!("`{tool}`"), "redis-tools");
    false
}

/// Like [`tool_available`], for a tool that answers `version_args`
/// instead of `--version` (`openssl version`), from Debian package `package`.
pub fn tool_available_as(tool: &str, version_args: &[&str], package: &str, test: &str) -> bool {
    if Command::new(tool)
        .args(version_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return true;
    }
    skip_missing(test, &format!("`{tool}`"), package);
    false
}

/// `test` cannot run because `what` (Debian package `package`) is missing.
fn skip_missing(test: &str, what: &str, package: &str) {
    skip(
        test,
        &format!("{what} not installed (apt-get install {package}; .ci/run installs it)"),
    );
}

/// `test` cannot run here, for `reason`: fail where everything is required
/// (`RAFTCACHE_REQUIRE_TOOLS=1` or `CI`), else print the skip and add it to
/// the list `scripts/test` shows at the end.
pub fn skip(test: &str, reason: &str) {
    let required = std::env::var("RAFTCACHE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty());
    assert!(
        !required,
        "{test}: {reason} (RAFTCACHE_REQUIRE_TOOLS/CI is set)"
    );
    let line = format!("{test}: {reason}");
    eprintln!("SKIP {line}");
    if let Ok(log) = std::env::var("RAFTCACHE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// One command as a RESP multibulk request.
pub fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A connection to `addr` that has been answered `+PONG`: it holds a
/// client slot (`maxclients`). `None` if it was refused or not answered.
pub fn pinged_conn(addr: &str) -> Option<std::net::TcpStream> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"PING\r\n").ok()?;
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).ok()?;
    (&buf == b"+PONG\r\n").then_some(s)
}

/// A byte count from `/proc/<pid>/status` (`field`: `VmRSS`, `VmHWM`, ...).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    kb * 1024
}

/// A non-loopback IPv4 address of this machine (`hostname -I`), to reach a
/// node bound to 0.0.0.0 the way a remote client would; `None` (a recorded
/// skip, a failure in CI) if it has none.
pub fn non_loopback_ip(test: &str) -> Option<std::net::IpAddr> {
    let out = Command::new("hostname").arg("-I").output();
    let found = out.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|w| w.parse::<std::net::IpAddr>().ok())
            .find(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
    });
    if found.is_none() {
        skip(
            test,
            "no non-loopback IPv4 address (`hostname -I`) to probe",
        );
    }
    found
}

/// Debian's multi-threaded libfaketime (package `faketime`), wherever the
/// architecture puts it; `RAFTCACHE_LIBFAKETIME` overrides the path.
pub fn libfaketime() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RAFTCACHE_LIBFAKETIME") {
        return Some(PathBuf::from(p));
    }
    std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketimeMT.so.1")])
        .find(|p| p.exists())
}

/// libfaketime, or None after recording a skip (fatal where tools are
/// required, as for [`tool_available`]).
pub fn libfaketime_or_skip(test: &str) -> Option<PathBuf> {
    let lib = libfaketime();
    if lib.is_none() {
        skip_missing(test, "libfaketimeMT.so.1", "faketime");
    }
    lib
}

/// Set a libfaketime offset file to real time + `offset` ("+3600", "-5");
/// renamed into place so the node never reads it half-written.
pub fn set_clock_offset(file: &Path, offset: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n")).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Poll `f` until it returns Some or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Node {
    pub id: u64,
    pub port: u16,
    pub bus_port: u16,
    pub dir: PathBuf,
    pub extra: Vec<String>,
    /// Extra environment for the process (e.g. `LD_PRELOAD` for libfaketime).
    pub env: Vec<(String, String)>,
    pub join: Option<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// Preload libfaketime (`lib`) with its offset in `file`, set to +0:
    /// writing another offset there steps this node's wall clock while its
    /// monotonic clock runs on, as an NTP step does.
    pub fn fake_wall_clock(&mut self, lib: &Path, file: &Path) {
        set_clock_offset(file, "+0");
        self.env.extend([
            ("LD_PRELOAD".to_string(), lib.display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), file.display().to_string()),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]);
    }

    pub fn new(id: u64, root: &std::path::Path) -> Node {
        let dir = root.join(format!("node{id}"));
        Node {
            id,
            port: free_port(),
            bus_port: free_port(),
            log: root.join(format!("node{id}.log")),
            dir,
            extra: Vec::new(),
            env: Vec::new(),
            join: None,
            child: None,
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// This node as `--join` and `RAFTCACHE ADD-LEARNER` take it:
    /// `host:port@busport` (the harness's bus ports are not port + 10000).
    pub fn join_addr(&self) -> String {
        format!("127.0.0.1:{}@{}", self.port, self.bus_port)
    }

    pub fn url(&self) -> String {
        let pass = self
            .extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra.get(i + 1));
        match pass {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--node-id")
            .arg(self.id.to_string())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bus-port")
            .arg(self.bus_port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("RAFTCACHE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if !self.extra.iter().any(|a| a.starts_with("--metrics-port")) {
            // The default (port + 20000) may be another test's free port,
            // or above 65535: a test that wants /metrics asks for a port.
            cmd.arg("--metrics-port").arg("0");
        }
        if let Some(j) = &self.join {
            cmd.arg("--join").arg(j);
        } else if !self
            .extra
            .iter()
            .any(|a| a.starts_with("--cluster-bootstrap"))
        {
            // A node the harness starts without a seed founds the cluster, as
            // `scripts/cluster` does for node 1 (a node given --node-id does
            // not bootstrap unless told to; docs/membership.md).
            cmd.arg("--cluster-bootstrap").arg("yes");
        }
        self.child = Some(cmd.spawn().expect("spawn raftcache"));
        // The node is up when *it* answers on its port: INFO's process_id
        // must be our child's pid (another process listening there, or a
        // child that died on "address in use", must not pass for it).
        let pid = self.pid().unwrap().to_string();
        wait_for(
            &format!("node {} (pid {pid}) to answer on {}", self.id, self.addr()),
            Duration::from_secs(20),
            || {
                self.assert_alive();
                let seen = self.info("server", "process_id")?;
                assert_eq!(
                    seen, pid,
                    "another process (pid {seen}) answers on node {}'s port {}",
                    self.id, self.port
                );
                Some(())
            },
        );
    }

    /// Panic with the end of the node's log if its process has exited.
    pub fn assert_alive(&mut self) {
        let Some(child) = self.child.as_mut() else {
            panic!("node {} is not started", self.id)
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.child = None;
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "node {} exited ({status}) instead of serving; last log lines:\n{}",
                self.id,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// `kill -9`: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let ok = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status()
                .unwrap();
            assert!(ok.success());
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A synchronous client connection.
    pub fn conn(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).unwrap();
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    /// A connection with short timeouts, or None: for polling loops, where
    /// a node that is down, paused or busy must mean "try again", not panic.
    pub fn try_conn(&self) -> Option<redis::Connection> {
        self.try_conn_within(Duration::from_secs(1))
    }

    /// Like [`Node::try_conn`], with `timeout` for connecting, reading and
    /// writing (a node busy with a flood or a big snapshot answers slowly).
    pub fn try_conn_within(&self, timeout: Duration) -> Option<redis::Connection> {
        if !self.is_running() {
            return None;
        }
        let c = redis::Client::open(self.url())
            .ok()?
            .get_connection_with_timeout(timeout)
            .ok()?;
        c.set_read_timeout(Some(timeout)).ok()?;
        c.set_write_timeout(Some(timeout)).ok()?;
        Some(c)
    }

    /// One field of `INFO <section>`, if the node answers.
    pub fn info(&self, section: &str, field: &str) -> Option<String> {
        let info: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut self.try_conn()?)
            .ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    /// A numeric field of `INFO raft`, if the node answers.
    pub fn raft_u64(&self, field: &str) -> Option<u64> {
        self.info("raft", field)?.parse().ok()
    }

    /// Send a raw request and read whatever comes back within a short time.
    pub fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        raw_exchange(&self.addr(), bytes, Duration::from_millis(300))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill9();
    }
}

/// Write `bytes`, then read until the peer closes or stays silent for `quiet`.
pub fn raw_exchange(addr: &str, bytes: &[u8], quiet: Duration) -> Vec<u8> {
    raw_exchange_closed(addr, bytes, quiet).0
}

/// Like [`raw_exchange`], and whether the peer closed the connection (EOF or
/// reset) rather than just falling silent for `quiet`.
pub fn raw_exchange_closed(addr: &str, bytes: &[u8], quiet: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    // The server may close while we still write (it stops reading after a
    // fatal protocol error): what it answered is still readable.
    let _ = s.write_all(bytes);
    s.set_read_timeout(Some(quiet)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (out, false)
            }
            Err(_) => return (out, true),
        }
    }
}

/// Read exactly the reply bytes expected (for pipelined exact comparisons).
pub fn raw_expect(addr: &str, bytes: &[u8], expected: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = vec![0u8; expected.len()];
    let mut got = 0;
    while got < expected.len() {
        match s.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => panic!(
                "read failed after {got} bytes: {e}; got so far {:?}",
                String::from_utf8_lossy(&out[..got])
            ),
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&out[..got]),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(bytes)
    );
}

/// Slower still, for tests that decide themselves who leads (CLUSTER
/// FAILOVER, a leader that must stay put): late heartbeats on a loaded
/// machine must not depose the leader in the middle of such a test.
pub const CALM_ELECTIONS: &[&str] = &[
    "--heartbeat-interval",
    "100",
    "--election-timeout-min",
    "1500",
    "--election-timeout-max",
    "3000",
];

/// Election timing for tests where a leader change would be noise, not the
/// subject: heartbeats every 100 ms, elections after 1-2 s of silence.
pub const STEADY_ELECTIONS: &[&str] = &[
    "--heartbeat-interval",
    "100",
    "--election-timeout-min",
    "1000",
    "--election-timeout-max",
    "2000",
];

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub root: tempfile::TempDir,
}

impl Cluster {
    /// A single bootstrapped node, ready to accept writes.
    pub fn single(extra: &[&str]) -> Cluster {
        Cluster::start(1, extra)
    }

    /// `n` nodes: node 1 bootstraps, the others join through node 1.
    ///
    /// Several nodes get [`STEADY_ELECTIONS`]: with the default 200-400 ms
    /// election timeout a debug build on a busy 2-core machine loses its
    /// leader now and then (observed: `-MOVED` and `-CLUSTERDOWN` in the
    /// middle of a redis-benchmark run), and these tests are not about
    /// elections. The fault campaigns (tests/faults.rs) keep the defaults.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(n, extra, |_| {})
    }

    /// Like `start`, with `setup` called on each node before it starts
    /// (per-node flags or environment).
    pub fn start_with(n: usize, extra: &[&str], mut setup: impl FnMut(&mut Node)) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut node = Node::new(i as u64 + 1, root.path());
            if n > 1 {
                node.extra = STEADY_ELECTIONS.iter().map(|s| s.to_string()).collect();
            }
            node.extra.extend(extra.iter().map(|s| s.to_string()));
            setup(&mut node);
            nodes.push(node);
        }
        let seed = nodes[0].join_addr();
        for (i, node) in nodes.iter_mut().enumerate() {
            if i > 0 {
                node.join = Some(seed.clone());
            }
            node.start();
            if i == 0 {
                wait_leader_on(std::slice::from_ref(node));
            }
        }
        let c = Cluster { nodes, root };
        if n > 1 {
            c.wait_members(n);
        }
        c
    }

    /// Index of the node that reports itself leader.
    pub fn leader(&self) -> usize {
        wait_leader_on(&self.nodes)
    }

    /// Wait until the leader reports `n` voters.
    pub fn wait_members(&self, n: usize) {
        wait_members_on(&self.nodes, n)
    }

    pub fn try_leader(&self) -> Option<usize> {
        try_leader_on(&self.nodes)
    }
}

pub fn role(node: &Node) -> Option<String> {
    node.info("replication", "role")
}

/// Index of the node among `nodes` that reports itself leader, if any.
pub fn try_leader_on(nodes: &[Node]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| role(n).as_deref() == Some("master"))
}

/// Wait until one of `nodes` reports itself leader; its index.
pub fn wait_leader_on(nodes: &[Node]) -> usize {
    wait_for("a leader", Duration::from_secs(30), || try_leader_on(nodes))
}

/// Wait until the leader among `nodes` reports `n` voters (`cluster_size`
/// in CLUSTER INFO).
pub fn wait_members_on(nodes: &[Node], n: usize) {
    wait_for(&format!("{n} voters"), Duration::from_secs(60), || {
        let l = try_leader_on(nodes)?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query(&mut nodes[l].try_conn()?)
            .ok()?;
        let known = info
            .lines()
            .find_map(|l| l.strip_prefix("cluster_size:"))?
            .trim()
            .parse::<usize>()
            .ok()?;
        // Not while a membership change is still joint: killing a node then
        // could leave the old configuration without a quorum.
        let settled = nodes[l].raft_u64("raft_joint_config")? == 0;
        (known == n && settled).then_some(())
    })
}

/// One field of `INFO <section>` on `node`, if it answers.
pub fn info_field(node: &Node, section: &str, field: &str) -> Option<String> {
    node.info(section, field)
}

/// `(applied index, digest)` from `RAFTCACHE DIGEST` once every running node
/// in `nodes` reports the same pair (replicas identical at the same index).
pub fn converged_digest(nodes: &[Node], timeout: Duration) -> (i64, String) {
    wait_for("replicas to converge", timeout, || {
        let mut seen = Vec::new();
        for n in nodes.iter().filter(|n| n.is_running()) {
            let mut c = redis::Client::open(n.url())
                .ok()?
                .get_connection_with_timeout(Duration::from_secs(1))
                .ok()?;
            let pair: (i64, String) = redis::cmd("RAFTCACHE").arg("DIGEST").query(&mut c).ok()?;
            seen.push(pair);
        }
        let first = seen.first()?.clone();
        seen.iter().all(|s| *s == first).then_some(first)
    })
}

/// `RAFTCACHE DIGEST` (applied index, keyspace digest) of every node.
pub fn digests_on(nodes: &[Node]) -> Vec<(i64, String)> {
    nodes
        .iter()
        .map(|n| {
            redis::cmd("RAFTCACHE")
                .arg("DIGEST")
                .query(&mut n.conn())
                .unwrap()
        })
        .collect()
}
