//! Fault campaigns over real processes (docs/testing.md): nodes talk to
//! each other only through per-link TCP proxies (`--bus-route`), so a test
//! can cut links one way or both without root; clients record every
//! operation with invoke/return times and an outcome, and a per-key
//! linearizability checker judges the history.
//!
//! Every fault proves its own effect (a new term, per-link proof that a cut
//! held, a snapshot install counted by the follower, ...), the workload must
//! succeed again after every healed fault, and any reply the client does not
//! expect fails the run. Negative controls construct a stale read, a lost
//! write and a lost increment on real processes and require the checkers to
//! name exactly those keys. See docs/testing.md.
//!
//! CI runs short campaigns (fixed seeds). A long one:
//!   RAFTCACHE_CAMPAIGN_SECS=1800 cargo test --release --test faults -- --ignored long_campaign --nocapture

// Node indexes are identities (n1, n2, ...), not just positions.
#![allow(clippy::needless_range_loop)]

#[path = "common/checker.rs"]
mod checker;
mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use checker::{
    check_counter, check_counter_final, check_register, CheckResult, CounterInput, CounterOp,
    CounterOutput, Op, Outcome, RegisterInput, RegisterOp, RegisterOutput,
};
use common::{libfaketime, libfaketime_or_skip, set_clock_offset, wait_for, Node};
use proxy::{Proxy, ProxyStats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REGISTERS: usize = 5;
/// Registers always written with `PX TTL_MS`. The TTL is far longer than a
/// campaign (asserted), so no key can expire during the run and the register
/// model stays exact for them; what they add is the TTL path through the log
/// (relative TTL -> absolute deadline on the leader, replicated, restored
/// from snapshots) under every fault, and the digest comparison covers their
/// deadlines on every replica.
const TTL_REGISTERS: usize = 3;
const TTL_MS: u64 = 600_000;
const COUNTERS: usize = 5;
const CLIENTS: usize = 8;
/// Client id of the operations the nemesis itself issues (see PauseLeader).
const NEMESIS: usize = CLIENTS;
/// Client id of the final reads after healing.
const FINAL: usize = usize::MAX;
/// Successful reads and writes (each) required before the first fault and
/// after every healed fault.
const PROGRESS: usize = 20;
/// At most this share of all operations may end unknown: a cluster that
/// times out on everything must not pass for one that works.
const MAX_UNKNOWN_SHARE: f64 = 0.2;
/// Checker search time per key. A correct history is checked in well under a
/// second; the margin is for a debug build on a busy 2-core machine.
const CHECK_BUDGET: Duration = Duration::from_secs(60);

/// `--read-index-timeout` of every campaign node (milliseconds).
const READ_INDEX_TIMEOUT_MS: u64 = 1000;
/// Read timeout of the workload's connections. Above the read-index timeout,
/// so a follower read that cannot be confirmed is answered (CLUSTERDOWN)
/// before the client gives up on it.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1500);
const RO_TIMEOUT: Duration = Duration::from_millis(2500);
/// Share of the workload's GETs sent as follower reads (`READONLY`
/// connection, node chosen at random, MOVED not followed).
const FOLLOWER_READ_SHARE: f64 = 0.5;

type Link = (usize, usize);

/// Every directed link between a node of `a` and a node of `b`.
fn links_between(a: &[usize], b: &[usize]) -> Vec<Link> {
    a.iter()
        .flat_map(|&i| b.iter().flat_map(move |&j| [(i, j), (j, i)]))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CutKind {
    /// Both directions: a partition.
    Both,
    /// Only the sender's bytes (i -> j data) are lost.
    Forward,
}

/// A cut in force: which links, and their counters right after cutting.
struct Cut {
    kind: CutKind,
    links: Vec<Link>,
    at_cut: Vec<ProxyStats>,
}

impl Cut {
    fn blocked(&self, s: &ProxyStats, s0: &ProxyStats) -> u64 {
        match self.kind {
            CutKind::Both => {
                (s.blackholed + s.dropped_forward + s.dropped_backward)
                    - (s0.blackholed + s0.dropped_forward + s0.dropped_backward)
            }
            CutKind::Forward => s.dropped_forward - s0.dropped_forward,
        }
    }

    fn delivered(&self, s: &ProxyStats, s0: &ProxyStats) -> u64 {
        match self.kind {
            CutKind::Both => {
                (s.bytes_forward + s.bytes_backward) - (s0.bytes_forward + s0.bytes_backward)
            }
            CutKind::Forward => s.bytes_forward - s0.bytes_forward,
        }
    }
}

/// N nodes, every directed bus link (i -> j) through its own proxy.
struct FaultCluster {
    nodes: Vec<Node>,
    links: BTreeMap<Link, Proxy>,
    /// Each node's libfaketime offset file, when the campaign moves clocks.
    fake_clocks: Option<Vec<PathBuf>>,
    kept: bool,
    _root: tempfile::TempDir,
}

impl Drop for FaultCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep();
        }
    }
}

impl FaultCluster {
    fn start(n: usize, extra: &[&str]) -> FaultCluster {
        FaultCluster::start_with(n, extra, None)
    }

    /// Like `start`; with `faketime` (the path of libfaketimeMT.so.1) every
    /// node runs with it preloaded and its own offset file, at +0.
    fn start_with(n: usize, extra: &[&str], faketime: Option<&Path>) -> FaultCluster {
        let root = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| Node::new(i as u64 + 1, root.path()))
            .collect();
        let fake_clocks = faketime.map(|lib| {
            nodes
                .iter_mut()
                .map(|node| {
                    let file = root.path().join(format!("faketime-{}", node.id));
                    node.fake_wall_clock(lib, &file);
                    file
                })
                .collect()
        });
        let mut links = BTreeMap::new();
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    let target = format!("127.0.0.1:{}", nodes[j].bus_port).parse().unwrap();
                    links.insert((i, j), Proxy::start(target));
                }
            }
        }
        for i in 0..n {
            let routes: Vec<String> = (0..n)
                .filter(|j| *j != i)
                .map(|j| format!("{}={}", j + 1, links[&(i, j)].addr()))
                .collect();
            let node = &mut nodes[i];
            // Follower reads give up after this (CLUSTERDOWN); the clients'
            // READONLY timeout (`RO_TIMEOUT`) is longer, so a follower that
            // cannot confirm a read says so instead of looking like a timeout.
            node.extra = vec![
                "--read-index-timeout".into(),
                READ_INDEX_TIMEOUT_MS.to_string(),
            ];
            node.extra.extend(extra.iter().map(|s| s.to_string()));
            node.extra.push("--bus-route".into());
            node.extra.push(routes.join(","));
        }
        let seed = nodes[0].join_addr();
        for i in 0..n {
            if i > 0 {
                nodes[i].join = Some(seed.clone());
            }
            nodes[i].start();
            if i == 0 {
                wait_for("bootstrap", Duration::from_secs(20), || {
                    (common::role(&nodes[0]).as_deref() == Some("master")).then_some(())
                });
            }
        }
        let c = FaultCluster {
            nodes,
            links,
            fake_clocks,
            kept: false,
            _root: root,
        };
        c.wait_voters(n);
        c
    }

    fn leader(&self) -> Option<usize> {
        common::try_leader_on(&self.nodes)
    }

    /// Keep the nodes' logs and data dirs after the test (a failed run).
    fn keep(&mut self) {
        if !self.kept {
            self.kept = true;
            self._root.disable_cleanup(true);
            eprintln!(
                "node logs and data dirs of this run kept in {}",
                self._root.path().display()
            );
        }
    }

    fn wait_leader(&self) -> usize {
        common::wait_leader_on(&self.nodes)
    }

    /// Wait for a leader among `among` (e.g. the majority side of a cut).
    fn wait_leader_among(&self, what: &str, among: &[usize]) -> usize {
        wait_for(what, Duration::from_secs(30), || {
            among
                .iter()
                .copied()
                .find(|i| common::role(&self.nodes[*i]).as_deref() == Some("master"))
        })
    }

    fn wait_voters(&self, n: usize) {
        common::wait_members_on(&self.nodes, n)
    }

    fn term(&self, i: usize) -> Option<u64> {
        self.nodes[i].raft_u64("raft_term")
    }

    fn max_term(&self) -> u64 {
        (0..self.nodes.len())
            .filter_map(|i| self.term(i))
            .max()
            .unwrap_or(0)
    }

    fn others(&self, i: usize) -> Vec<usize> {
        (0..self.nodes.len()).filter(|j| *j != i).collect()
    }

    /// Cut `links` (`kind` says which directions) until [`heal`](Self::heal).
    fn cut(&self, links: Vec<Link>, kind: CutKind) -> Cut {
        for l in &links {
            match kind {
                CutKind::Both => self.links[l].cut(),
                CutKind::Forward => self.links[l].cut_forward(),
            }
        }
        let at_cut = links.iter().map(|l| self.links[l].stats()).collect();
        Cut {
            kind,
            links,
            at_cut,
        }
    }

    /// Isolate node `i` from every other node (both directions).
    fn isolate(&self, i: usize) -> Cut {
        self.cut(links_between(&[i], &self.others(i)), CutKind::Both)
    }

    /// Prove, link by link and before healing, that `cut` held: no cut link
    /// delivered a byte in a cut direction since the cut, and every link of
    /// `must_block` (links that must carry traffic during this cut: the
    /// leader's heartbeats, a cut-off node's elections) turned some away.
    fn verify_cut(&self, cut: &Cut, must_block: &[Link]) -> String {
        let index = |l: &Link| {
            cut.links
                .iter()
                .position(|x| x == l)
                .unwrap_or_else(|| panic!("link n{}->n{} is not part of the cut", l.0 + 1, l.1 + 1))
        };
        let silent = || -> Vec<String> {
            must_block
                .iter()
                .filter(|l| cut.blocked(&self.links[l].stats(), &cut.at_cut[index(l)]) == 0)
                .map(|l| format!("n{}->n{}", l.0 + 1, l.1 + 1))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !silent().is_empty() {
            assert!(
                Instant::now() < deadline,
                "cut links that should have turned traffic away did not: {:?}; stats {:?}",
                silent(),
                must_block
                    .iter()
                    .map(|l| self.links[l].stats())
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for (i, l) in cut.links.iter().enumerate() {
            let delivered = cut.delivered(&self.links[l].stats(), &cut.at_cut[i]);
            assert_eq!(
                delivered,
                0,
                "link n{}->n{} delivered {delivered} bytes while cut ({:?})",
                l.0 + 1,
                l.1 + 1,
                cut.kind
            );
        }
        format!(
            "{} links cut ({:?}), none delivered a byte; {} turned traffic away",
            cut.links.len(),
            cut.kind,
            must_block.len()
        )
    }

    fn heal(&self) {
        for p in self.links.values() {
            p.heal();
        }
    }

    /// `[applied index, digest]` of every running node once all agree.
    fn converged_digest(&self) -> (i64, String) {
        wait_for("replicas to converge", Duration::from_secs(60), || {
            let mut seen = Vec::new();
            for n in self.nodes.iter().filter(|n| n.is_running()) {
                let (applied, digest): (i64, String) = redis::cmd("RAFTCACHE")
                    .arg("DIGEST")
                    .query(&mut n.try_conn()?)
                    .ok()?;
                seen.push((applied, digest));
            }
            let first = seen.first()?.clone();
            seen.iter().all(|s| *s == first).then_some(first)
        })
    }

    /// Wait until node `i` has applied at least `index`.
    fn wait_applied(&self, i: usize, index: u64) {
        wait_for(
            &format!("n{} to apply index {index}", i + 1),
            Duration::from_secs(60),
            || (self.nodes[i].raft_u64("raft_last_applied_index")? >= index).then_some(()),
        );
    }
}

/// Which node a client should talk to next, learned from MOVED.
fn node_index(nodes: &[String], addr: &str) -> Option<usize> {
    nodes.iter().position(|n| n == addr)
}

/// What one request's reply means for the history.
enum Reply<T> {
    Ok(T),
    /// Certainly not applied: refused before anything was proposed (MOVED,
    /// CLUSTERDOWN, READONLY) or nothing was sent (no connection). Carries
    /// the node a MOVED pointed to.
    Failed(Option<usize>),
    /// May or may not have been applied: `TRYAGAIN` (the leader changed
    /// while the write was in flight) or a connection error (timeout, reset,
    /// refused mid-request) while faults are injected.
    Unknown,
    /// A reply no correct node gives under faults (`ERR raft: ...`, a reply
    /// of the wrong type, any other error). Fails the run; the operation is
    /// kept in the history as unknown, so it cannot cause a false violation.
    Surprise(String),
}

/// The one list of errors the campaign expects, and what each means.
///
/// On a `READONLY` connection (`follower_read`) a keyed read is served by
/// any node after a read index from the leader, so `MOVED` there is a
/// surprise; `CLUSTERDOWN` (no reachable leader to confirm the read) means
/// the read was refused.
fn classify<T>(
    r: redis::RedisResult<T>,
    addrs: &[String],
    what: &str,
    follower_read: bool,
) -> Reply<T> {
    let e = match r {
        Ok(v) => return Reply::Ok(v),
        Err(e) => e,
    };
    match e.kind() {
        redis::ErrorKind::Moved if follower_read => {
            Reply::Surprise(format!("{what} (follower read): {e}"))
        }
        redis::ErrorKind::Moved => {
            Reply::Failed(e.redirect_node().and_then(|(a, _)| node_index(addrs, a)))
        }
        redis::ErrorKind::ClusterDown | redis::ErrorKind::ReadOnly => Reply::Failed(None),
        // The raft log is full (MapPressure): refused before anything was
        // proposed (docs/log-bounds.md).
        _ if e.code() == Some("OOM") => Reply::Failed(None),
        redis::ErrorKind::TryAgain => Reply::Unknown,
        _ if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() => Reply::Unknown,
        _ => Reply::Surprise(format!("{what}: {e}")),
    }
}

/// Record `reply` (to a request sent at `t0`, answered at `t1`) in `rec`.
/// Surprises are reported to `surprises`. Returns (ok?, MOVED target).
#[allow(clippy::too_many_arguments)] // one op: who, what, when, and the reply
fn record_reply<T, I, O>(
    rec: &checker::Recorder<I, O>,
    surprises: &Mutex<Vec<String>>,
    client: usize,
    key: &str,
    times: (u64, u64),
    input: I,
    reply: Reply<T>,
    output: impl FnOnce(T) -> O,
) -> (bool, Option<usize>) {
    match reply {
        Reply::Ok(v) => {
            rec.push(Op::ok(client, key, times.0, times.1, input, output(v)));
            return (true, None);
        }
        Reply::Failed(next) => {
            rec.push(Op::failed(client, key, times.0, times.1, input));
            return (false, next);
        }
        Reply::Unknown => {}
        Reply::Surprise(s) => surprises.lock().unwrap().push(s),
    }
    rec.push(Op::unknown(client, key, times.0, input));
    (false, None)
}

struct Client {
    id: usize,
    addrs: Vec<String>,
    conns: HashMap<usize, redis::Connection>,
    /// A second connection per node, `READONLY` after every (re)connect.
    ro_conns: HashMap<usize, redis::Connection>,
    target: usize,
    /// The next request is a follower read on this node's READONLY
    /// connection (set by [`Client::follower`], used once).
    ro_target: Option<usize>,
    /// Follower reads answered with a value, refused, and unknown.
    ro_outcomes: [u64; 3],
    rng: StdRng,
}

impl Client {
    fn new(id: usize, addrs: Vec<String>, target: usize, seed: u64) -> Client {
        Client {
            id,
            addrs,
            conns: HashMap::new(),
            ro_conns: HashMap::new(),
            target,
            ro_target: None,
            ro_outcomes: [0; 3],
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Send the next request to node `i`.
    fn at(&mut self, i: usize) -> &mut Client {
        self.target = i;
        self
    }

    /// Send the next request (a keyed read) as a follower read: on node
    /// `i`'s READONLY connection, without following MOVED.
    fn follower(&mut self, i: usize) -> &mut Client {
        self.ro_target = Some(i);
        self
    }

    fn open(&self, i: usize, timeout: Duration) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}/", self.addrs[i])).ok()?;
        let c = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        c.set_read_timeout(Some(timeout)).ok()?;
        c.set_write_timeout(Some(timeout)).ok()?;
        Some(c)
    }

    fn conn(&mut self, i: usize) -> Option<&mut redis::Connection> {
        if !self.conns.contains_key(&i) {
            let c = self.open(i, CLIENT_TIMEOUT)?;
            self.conns.insert(i, c);
        }
        self.conns.get_mut(&i)
    }

    /// Node `i`'s READONLY connection; None if it cannot be (re)opened, in
    /// which case nothing of the next request is sent.
    fn ro_conn(&mut self, i: usize) -> Option<&mut redis::Connection> {
        if !self.ro_conns.contains_key(&i) {
            let mut c = self.open(i, RO_TIMEOUT)?;
            redis::cmd("READONLY").query::<()>(&mut c).ok()?;
            self.ro_conns.insert(i, c);
        }
        self.ro_conns.get_mut(&i)
    }

    fn call<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Reply<T> {
        let ro = self.ro_target.take();
        let target = ro.unwrap_or(self.target);
        let con = match ro {
            Some(i) => self.ro_conn(i),
            None => self.conn(target),
        };
        let Some(con) = con else {
            return Reply::Failed(None); // could not connect: nothing was sent
        };
        let r = cmd.query::<T>(con);
        if r.as_ref()
            .is_err_and(|e| e.is_io_error() || e.is_timeout() || e.is_unrecoverable_error())
        {
            match ro {
                Some(i) => self.ro_conns.remove(&i),
                None => self.conns.remove(&target),
            };
        }
        let what = format!(
            "n{}{} {:?}",
            target + 1,
            if ro.is_some() { " READONLY" } else { "" },
            String::from_utf8_lossy(&cmd.get_packed_command())
        );
        classify(r, &self.addrs, &what, ro.is_some())
    }

    /// Issue `cmd` on `key` and record its outcome in `rec`, reads as well
    /// as writes (a failed or unknown read constrains nothing, but it counts
    /// towards the unknown share). Retargets after anything but success.
    #[allow(clippy::too_many_arguments)] // one op: what, where it goes, how it is recorded
    fn record<T: redis::FromRedisValue, I, O>(
        &mut self,
        rec: &checker::Recorder<I, O>,
        surprises: &Mutex<Vec<String>>,
        key: &str,
        cmd: &redis::Cmd,
        input: I,
        output: impl FnOnce(T) -> O,
    ) -> bool {
        let follower_read = self.ro_target.is_some();
        let t0 = rec.now();
        let r: Reply<T> = self.call(cmd);
        let t1 = rec.now();
        let outcome = match &r {
            Reply::Ok(_) => 0,
            Reply::Failed(_) => 1,
            _ => 2,
        };
        let (ok, next) = record_reply(rec, surprises, self.id, key, (t0, t1), input, r, output);
        if follower_read {
            self.ro_outcomes[outcome] += 1;
        }
        if !ok && follower_read {
            // A follower read says nothing about where the leader is.
            std::thread::sleep(Duration::from_millis(10));
        } else if !ok {
            self.target = next.unwrap_or_else(|| {
                // No idea where the leader is (node down, no leader yet):
                // back off a little, as real clients do, instead of spinning
                // on a 2-core machine the nodes need.
                std::thread::sleep(Duration::from_millis(10));
                self.rng.random_range(0..self.addrs.len())
            });
        }
        ok
    }
}

struct Histories {
    registers: checker::Recorder<RegisterInput, RegisterOutput>,
    counters: checker::Recorder<CounterInput, CounterOutput>,
    /// Replies nobody expects: each fails the run.
    surprises: Mutex<Vec<String>>,
    /// Unique register values.
    seq: AtomicU64,
}

impl Histories {
    fn new() -> Histories {
        Histories {
            registers: checker::Recorder::new(),
            counters: checker::Recorder::new(),
            surprises: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
        }
    }

    /// `SET key <unique value>` (with `PX TTL_MS` on `t*` keys); the value
    /// if acknowledged.
    fn set(&self, c: &mut Client, key: &str) -> Option<String> {
        let value = format!("c{}-{}", c.id, self.seq.fetch_add(1, Ordering::Relaxed));
        let mut set = redis::cmd("SET");
        set.arg(key).arg(&value);
        if key.starts_with('t') {
            set.arg("PX").arg(TTL_MS);
        }
        let input = RegisterInput::Set(value.clone());
        c.record(&self.registers, &self.surprises, key, &set, input, |()| {
            RegisterOutput::Ok
        })
        .then_some(value)
    }

    /// `GET key` on a register; what it read, if it answered.
    fn get(&self, c: &mut Client, key: &str) -> Option<Option<String>> {
        let get = redis::cmd("GET").arg(key).to_owned();
        let mut seen = None;
        let out = |v: Option<String>| {
            seen = Some(v.clone());
            RegisterOutput::Value(v)
        };
        c.record(
            &self.registers,
            &self.surprises,
            key,
            &get,
            RegisterInput::Get,
            out,
        );
        seen
    }

    /// `INCR key`; the new value if acknowledged.
    fn incr(&self, c: &mut Client, key: &str) -> Option<i64> {
        let incr = redis::cmd("INCR").arg(key).to_owned();
        let mut seen = None;
        let out = |v: i64| {
            seen = Some(v);
            CounterOutput::Value(v)
        };
        c.record(
            &self.counters,
            &self.surprises,
            key,
            &incr,
            CounterInput::Incr,
            out,
        );
        seen
    }

    /// `GET key` on a counter; what it read, if it answered.
    fn read_counter(&self, c: &mut Client, key: &str) -> Option<Option<i64>> {
        let get = redis::cmd("GET").arg(key).to_owned();
        let mut seen = None;
        let out = |v: Option<i64>| {
            seen = Some(v);
            CounterOutput::Read(v)
        };
        c.record(
            &self.counters,
            &self.surprises,
            key,
            &get,
            CounterInput::Get,
            out,
        );
        seen
    }

    /// Wait until the workload's clients (not the nemesis) have completed
    /// [`PROGRESS`] writes and as many reads invoked after this call: the
    /// cluster serves again (one lucky reply is not enough).
    fn await_progress(&self, after: &str) -> Duration {
        let started = Instant::now();
        let (since_r, since_c) = (self.registers.now(), self.counters.now());
        let worker_ok = |client: usize, invoke: u64, since: u64, outcome: Outcome| {
            client < CLIENTS && invoke >= since && outcome == Outcome::Ok
        };
        wait_for(
            &format!("{PROGRESS} successful reads and writes after {after}"),
            Duration::from_secs(60),
            || {
                let writes = self.registers.count(|o| {
                    worker_ok(o.client, o.invoke, since_r, o.outcome)
                        && matches!(o.input, RegisterInput::Set(_))
                }) + self.counters.count(|o| {
                    worker_ok(o.client, o.invoke, since_c, o.outcome)
                        && o.input == CounterInput::Incr
                });
                let reads = self.registers.count(|o| {
                    worker_ok(o.client, o.invoke, since_r, o.outcome)
                        && o.input == RegisterInput::Get
                }) + self.counters.count(|o| {
                    worker_ok(o.client, o.invoke, since_c, o.outcome)
                        && o.input == CounterInput::Get
                });
                (writes >= PROGRESS && reads >= PROGRESS).then_some(())
            },
        );
        started.elapsed()
    }
}

/// Run the workload until `stop`; every op recorded. Returns how the
/// client's follower reads ended (value, refused, unknown).
fn run_client(mut c: Client, h: Arc<Histories>, stop: Arc<AtomicBool>) -> [u64; 3] {
    while !stop.load(Ordering::Relaxed) {
        let kind = c.rng.random_range(0..10);
        let read = c.rng.random_bool(0.4);
        if read && c.rng.random_bool(FOLLOWER_READ_SHARE) {
            let node = c.rng.random_range(0..c.addrs.len());
            c.follower(node);
        }
        if kind < 6 {
            let key = if kind < 4 {
                format!("r{}", c.rng.random_range(0..REGISTERS))
            } else {
                format!("t{}", c.rng.random_range(0..TTL_REGISTERS))
            };
            if read {
                h.get(&mut c, &key);
            } else {
                h.set(&mut c, &key);
            }
        } else {
            let key = format!("n{}", c.rng.random_range(0..COUNTERS));
            if read {
                h.read_counter(&mut c, &key);
            } else {
                h.incr(&mut c, &key);
            }
        }
    }
    c.ro_outcomes
}

/// One fault the nemesis can inject; each proves that it happened.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    KillAll,
    /// SIGSTOP the leader until another node leads, write through the new
    /// leader, then send a GET to the paused one and record its answer
    /// after SIGCONT: a paused leader that trusts its stale lease or
    /// leadership shows up as a stale read.
    PauseLeader,
    LeaderInMinority,
    LeaderInMajority,
    IsolateFollowerThenHeal,
    Ring,
    /// The leader's outgoing links drop everything (it still hears others).
    LeaderOutboundOneWay,
    /// Every link delayed and a fraction of its chunks dropped (connection
    /// broken, as lost TCP traffic looks to the application).
    Flaky,
    /// CLUSTER FORGET a follower, wipe it, re-join it; then the same for the
    /// leader (it hands over by stepping down after the change commits).
    MembershipChurn,
    /// A follower cut off until the leader has purged past its log: it must
    /// install a snapshot to catch up (needs small snapshot thresholds).
    SnapshotCatchUp,
    /// kill -9 a follower, wipe its data dir, restart it with the same id
    /// and --join: its JOIN must be refused (it is not the member it was)
    /// until the old member is forgotten; then it joins as a fresh node.
    WipeAndRejoin,
    /// Wall clocks step (libfaketime): +1 h on the leader, -5 s on another
    /// node, then back. TTL keys must not expire early (needs faketime on
    /// the nodes; `campaign` arranges it).
    ClockJump,
    /// A side writer floods large values on keys of its own until the raft
    /// log is compacted or refuses writes (-OOM); needs a small
    /// lmdb-map-size (`campaign` arranges it).
    MapPressure,
    /// `CLUSTER FAILOVER FORCE` and `TAKEOVER` in a loop to every node for
    /// at least 5 s: forced elections must not keep the cluster leaderless
    /// (they are refused while the leader is alive, and limited to one per
    /// election timeout per node).
    FailoverStorm,
}

/// `lmdb-map-size` of campaigns with [`Fault::MapPressure`].
const PRESSURE_MAP_SIZE: &str = "64mb";
/// And its `lmdb-map-write-percent`: a write limit (6.4 MB) below the
/// snapshot byte threshold (map / 8), so the flood reaches the limit and
/// the -OOM refusal path is exercised, not only compaction.
const PRESSURE_WRITE_PERCENT: &str = "10";

/// Node `node`'s `TIME` minus real time, in seconds.
fn time_offset(node: &Node) -> Option<i64> {
    let (secs, _): (String, String) = redis::cmd("TIME").query(&mut node.try_conn()?).ok()?;
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Some(secs.parse::<i64>().ok()? - real)
}

/// Wait until `node`'s TIME says real time + `want` seconds (within 2 s).
fn wait_time_offset(node: &Node, want: i64) -> i64 {
    wait_for(
        &format!("n{} TIME to be {want:+} s off", node.id),
        Duration::from_secs(20),
        || time_offset(node).filter(|off| off.abs_diff(want) <= 2),
    )
}

#[derive(Default, Debug)]
struct Summary {
    ops_ok: usize,
    ops_failed: usize,
    ops_unknown: usize,
    faults: Vec<String>,
    violations: Vec<String>,
}

fn snapshots_installed(node: &Node) -> Option<u64> {
    node.raft_u64("raft_snapshots_installed")
}

fn inject(c: &mut FaultCluster, fault: Fault, hold: Duration, h: &Histories) -> String {
    let n = c.nodes.len();
    let l = c.wait_leader();
    let term0 = c.max_term();
    match fault {
        Fault::KillLeader => {
            c.nodes[l].kill9();
            let nl = c.wait_leader_among("a new leader", &c.others(l));
            std::thread::sleep(hold); // the fault's duration
            c.nodes[l].join = None;
            c.nodes[l].start();
            let term1 = c.max_term();
            assert!(
                term1 > term0,
                "leader kill did not start a new term ({term0} -> {term1})"
            );
            format!(
                "kill -9 leader n{} -> new leader n{} term {term0}->{term1}",
                l + 1,
                nl + 1
            )
        }
        Fault::KillFollower => {
            let f = (l + 1) % n;
            c.nodes[f].kill9();
            std::thread::sleep(hold); // the fault's duration
            c.nodes[f].join = None;
            c.nodes[f].start();
            let committed = c.nodes[l].raft_u64("raft_committed_index").unwrap_or(0);
            c.wait_applied(f, committed);
            format!(
                "kill -9 follower n{}; restarted, applied {committed}",
                f + 1
            )
        }
        Fault::KillAll => {
            let pids: Vec<u32> = c.nodes.iter().filter_map(|n| n.pid()).collect();
            for node in c.nodes.iter_mut() {
                node.kill9();
            }
            for node in c.nodes.iter_mut() {
                node.join = None;
                node.start();
            }
            assert!(
                c.nodes.iter().all(|x| !pids.contains(&x.pid().unwrap())),
                "every node is a new process"
            );
            let nl = c.wait_leader();
            format!("kill -9 all; restarted, leader n{}", nl + 1)
        }
        Fault::PauseLeader => pause_leader(c, l, hold, h),
        Fault::LeaderInMinority => {
            let rest = c.others(l);
            let cut = c.cut(links_between(&[l], &rest), CutKind::Both);
            let nl = c.wait_leader_among("a leader in the majority", &rest);
            std::thread::sleep(hold); // the fault's duration
                                      // The old leader's heartbeats, and the new leader's to it.
            let mut must: Vec<Link> = rest.iter().map(|&r| (l, r)).collect();
            must.push((nl, l));
            let proof = c.verify_cut(&cut, &must);
            c.heal();
            format!(
                "leader n{} alone in minority; majority elected n{}; {proof}",
                l + 1,
                nl + 1
            )
        }
        Fault::LeaderInMajority | Fault::IsolateFollowerThenHeal => {
            let f = (l + 1) % n;
            let rest = c.others(f);
            let cut = c.isolate(f);
            std::thread::sleep(match fault {
                Fault::IsolateFollowerThenHeal => hold.max(Duration::from_secs(2)),
                _ => hold,
            }); // the fault's duration
                // The leader's heartbeats to f, and f's (pre-)vote requests.
            let mut must: Vec<Link> = vec![(l, f)];
            must.extend(rest.iter().map(|&r| (f, r)));
            let proof = c.verify_cut(&cut, &must);
            let during = c.wait_leader_among("a leader in the majority", &rest);
            let f_term = c
                .term(f)
                .expect("the cut-off node answers on its client port");
            assert!(
                f_term <= term0,
                "PreVote: cut-off n{} raised its term {term0} -> {f_term}",
                f + 1
            );
            c.heal();
            let committed = c.nodes[during]
                .raft_u64("raft_committed_index")
                .unwrap_or(0);
            c.wait_applied(f, committed);
            format!(
                "n{} cut off ({fault:?}); n{} led the majority; its term stayed {f_term} <= {term0}; caught up to {committed} after heal; {proof}",
                f + 1,
                during + 1
            )
        }
        Fault::Ring if n < 5 => {
            // On 3 nodes every pair is neighbours: the ring cuts nothing.
            "majorities ring skipped: needs 5 nodes".into()
        }
        Fault::Ring => {
            // Each node only reaches its two ring neighbours: every node sees a
            // majority, but no two nodes see the same one.
            let far: Vec<Link> = (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .filter(|&(i, j)| {
                    let d = (i + n - j) % n;
                    i != j && d != 1 && d != n - 1
                })
                .collect();
            let cut = c.cut(far, CutKind::Both);
            std::thread::sleep(hold); // the fault's duration
                                      // At least the leader's heartbeats to its far nodes were refused.
            let must: Vec<Link> = cut.links.iter().copied().filter(|x| x.0 == l).collect();
            let proof = c.verify_cut(&cut, &must);
            c.heal();
            format!("majorities ring on {n} nodes for {hold:?}; {proof}")
        }
        Fault::LeaderOutboundOneWay => {
            let out: Vec<Link> = c.others(l).into_iter().map(|j| (l, j)).collect();
            let cut = c.cut(out, CutKind::Forward);
            let nl = c.wait_leader_among("a new leader", &c.others(l));
            std::thread::sleep(hold); // the fault's duration
            let proof = c.verify_cut(&cut, &cut.links.clone());
            c.heal();
            format!(
                "one-way: n{} could not send for {hold:?}; n{} led; {proof}",
                l + 1,
                nl + 1
            )
        }
        Fault::Flaky => {
            let before: Vec<ProxyStats> = c.links.values().map(|p| p.stats()).collect();
            for p in c.links.values() {
                p.set_delay(Duration::from_millis(15));
                p.set_drop_probability(0.02);
            }
            std::thread::sleep(hold); // the fault's duration
                                      // Keep the fault on until it has broken a connection (the loss
                                      // really happened) and still delivered traffic (it was flaky,
                                      // not a partition).
            let (killed, moved) = wait_for(
                "the flaky links to break a connection",
                Duration::from_secs(30),
                || {
                    let (mut killed, mut moved) = (0, 0);
                    for (p, b) in c.links.values().zip(&before) {
                        let s = p.stats();
                        killed += s.killed - b.killed;
                        moved += (s.bytes_forward + s.bytes_backward)
                            - (b.bytes_forward + b.bytes_backward);
                    }
                    (killed > 0 && moved > 0).then_some((killed, moved))
                },
            );
            for p in c.links.values() {
                p.set_delay(Duration::ZERO);
                p.set_drop_probability(0.0);
            }
            format!("flaky links (15 ms delay, 2% chunk loss) for >= {hold:?}: {killed} connections broken, {moved} bytes delivered")
        }
        Fault::MembershipChurn => {
            let mut proof = Vec::new();
            for victim in [(l + 1) % n, l] {
                let leader = c.wait_leader();
                let name: String = redis::cmd("CLUSTER")
                    .arg("MYID")
                    .query(&mut c.nodes[victim].conn())
                    .unwrap();
                // With a read timeout: a membership change that never
                // completes must fail the run, not hang it (a long-campaign
                // run once waited here for ever).
                let mut con = c.nodes[leader].conn();
                con.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let _: () = redis::cmd("CLUSTER")
                    .arg("FORGET")
                    .arg(&name)
                    .query(&mut con)
                    .unwrap_or_else(|e| panic!("CLUSTER FORGET n{}: {e}", victim + 1));
                c.wait_voters(n - 1);
                c.nodes[victim].kill9();
                std::fs::remove_dir_all(&c.nodes[victim].dir).unwrap();
                let seed = c.nodes[c.wait_leader()].join_addr();
                c.nodes[victim].join = Some(seed);
                c.nodes[victim].start();
                c.wait_voters(n);
                proof.push(format!(
                    "removed n{} (leader: {}), wiped it and re-added it",
                    victim + 1,
                    victim == leader
                ));
            }
            proof.join("; ")
        }
        Fault::SnapshotCatchUp => snapshot_catch_up(c, l),
        Fault::WipeAndRejoin => wipe_and_rejoin(c, l),
        Fault::ClockJump => clock_jump(c, l, hold),
        Fault::MapPressure => map_pressure(c, hold),
        Fault::FailoverStorm => failover_storm(c, hold),
    }
}

/// See [`Fault::FailoverStorm`].
fn failover_storm(c: &mut FaultCluster, hold: Duration) -> String {
    let hold = hold.max(Duration::from_secs(5));
    let term0 = raft_max(c, "raft_term");
    let deadline = Instant::now() + hold;
    let mut cons: Vec<Option<redis::Connection>> = c.nodes.iter().map(|_| None).collect();
    let (mut sent, mut started, mut refused) = (0u64, 0u64, 0u64);
    let mut i = 0usize;
    while Instant::now() < deadline {
        let target = i % cons.len();
        let mode = if i % 2 == 0 { "FORCE" } else { "TAKEOVER" };
        i += 1;
        if cons[target].is_none() {
            cons[target] = c.nodes[target].try_conn();
        }
        let Some(con) = cons[target].as_mut() else {
            continue;
        };
        sent += 1;
        match redis::cmd("CLUSTER")
            .arg("FAILOVER")
            .arg(mode)
            .query::<()>(con)
        {
            Ok(()) => started += 1,
            Err(e) if e.kind() == redis::ErrorKind::IoError => cons[target] = None,
            Err(_) => refused += 1,
        }
    }
    assert!(
        sent >= 20,
        "only {sent} CLUSTER FAILOVER FORCE/TAKEOVER could be sent in {hold:?}"
    );
    // Elections the storm could cause at most: one per node per election
    // timeout (200 ms at least, the default minimum), plus slack for the
    // ones a loaded machine holds anyway. Unguarded, every FORCE is one.
    let terms = raft_max(c, "raft_term") - term0;
    let bound = c.nodes.len() as u64 * (hold.as_millis() as u64 / 200 + 1) + 5;
    assert!(
        terms <= bound,
        "the term rose by {terms} during a {hold:?} failover storm ({started} forced elections started): forced failovers kept deposing leaders"
    );
    format!("{sent} CLUSTER FAILOVER FORCE/TAKEOVER in {hold:?}: {started} started an election, {refused} refused; term +{terms}")
}

/// `CLUSTER MYID` of node `i`.
fn node_name(c: &FaultCluster, i: usize) -> Option<String> {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c.nodes[i].try_conn()?)
        .ok()
}

/// See [`Fault::WipeAndRejoin`].
fn wipe_and_rejoin(c: &mut FaultCluster, l: usize) -> String {
    let n = c.nodes.len();
    let f = (l + 1) % n;
    let old = node_name(c, f).expect("CLUSTER MYID of the follower");
    let log_before = c.nodes[f].log_text().len();
    c.nodes[f].kill9();
    std::fs::remove_dir_all(&c.nodes[f].dir).unwrap();
    c.nodes[f].join = Some(c.nodes[l].join_addr());
    c.nodes[f].start();
    let new = node_name(c, f).expect("CLUSTER MYID of the wiped node");
    assert_ne!(new, old, "the wiped n{} kept its old name", f + 1);
    // Refused: the leader knows raft id f+1 as `old`.
    let refusal = format!("is a member as {old}");
    wait_for(
        &format!("n{}'s JOIN to be refused ({refusal})", f + 1),
        Duration::from_secs(60),
        || {
            c.nodes[f].log_text()[log_before..]
                .contains(&refusal)
                .then_some(())
        },
    );
    // Still refused, and not a voter under its old identity: the leader's
    // membership still lists the old name, not the new one.
    let nodes_before: String = wait_for(
        "CLUSTER NODES on the leader",
        Duration::from_secs(30),
        || {
            redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut c.nodes[c.leader()?].try_conn()?)
                .ok()
        },
    );
    assert!(
        nodes_before.contains(&old) && !nodes_before.contains(&new),
        "before FORGET the leader's membership must hold the old name only:\n{nodes_before}"
    );
    // FORGET the old member on whoever leads (retried across elections).
    wait_for(
        "CLUSTER FORGET of the old member",
        Duration::from_secs(60),
        || {
            let mut con = c.nodes[c.leader()?].try_conn()?;
            con.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
            redis::cmd("CLUSTER")
                .arg("FORGET")
                .arg(&old)
                .query::<()>(&mut con)
                .ok()
        },
    );
    // It rejoins as a fresh learner and is promoted: n voters, its new name
    // among them, and it applies the leader's commit index.
    wait_for(
        &format!("n{} to be a voter under its new name", f + 1),
        Duration::from_secs(90),
        || {
            let l = c.leader()?;
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut c.nodes[l].try_conn()?)
                .ok()?;
            let voters = c.nodes[l].info("raft", "raft_voters")?;
            let settled = c.nodes[l].raft_u64("raft_joint_config")? == 0;
            (settled
                && voters.split(',').count() == n
                && voters.split(',').any(|v| v.trim() == (f + 1).to_string())
                && nodes.contains(&new)
                && !nodes.contains(&old))
            .then_some(())
        },
    );
    c.wait_voters(n);
    let l = c.wait_leader();
    let committed = c.nodes[l].raft_u64("raft_committed_index").unwrap_or(0);
    c.wait_applied(f, committed);
    format!(
        "wiped follower n{} restarted with --join: JOIN refused ({refusal}); FORGET {}.. then it \
         rejoined as {}.. and was promoted ({n} voters), applied {committed}",
        f + 1,
        &old[..8],
        &new[..8]
    )
}

/// See [`Fault::ClockJump`].
fn clock_jump(c: &FaultCluster, l: usize, hold: Duration) -> String {
    let files = c
        .fake_clocks
        .as_ref()
        .expect("ClockJump needs libfaketime on the nodes (campaign arranges it)");
    let other = (l + 1) % c.nodes.len();
    let (l0, o0) = (
        wait_time_offset(&c.nodes[l], 0),
        wait_time_offset(&c.nodes[other], 0),
    );
    set_clock_offset(&files[l], "+3600");
    set_clock_offset(&files[other], "-5");
    // Evidence: the nodes' own TIME replies moved.
    let l1 = wait_time_offset(&c.nodes[l], 3600);
    let o1 = wait_time_offset(&c.nodes[other], -5);
    let hold = hold.max(Duration::from_secs(2));
    std::thread::sleep(hold); // the fault's duration
    set_clock_offset(&files[l], "+0");
    set_clock_offset(&files[other], "+0");
    wait_time_offset(&c.nodes[l], 0);
    wait_time_offset(&c.nodes[other], 0);
    let warned = c.nodes[l]
        .log_text()
        .contains("wall clock is ahead of the replicated clock");
    format!(
        "clock jump: n{} TIME {l0:+} -> {l1:+} s, n{} TIME {o0:+} -> {o1:+} s for >= {hold:?}, \
         then both +0; n{} logged the skew warning: {warned}",
        l + 1,
        other + 1,
        l + 1
    )
}

/// The flood's value for `key`: `size` bytes, checkable on read.
fn flood_value(key: &str, size: usize) -> Vec<u8> {
    let mut v = format!("{key}:").into_bytes();
    let fill = b'a' + (key.len() + size) as u8 % 26;
    v.resize(size, fill);
    v
}

fn raft_sum(c: &FaultCluster, field: &str) -> u64 {
    c.nodes.iter().filter_map(|n| n.raft_u64(field)).sum()
}

fn raft_max(c: &FaultCluster, field: &str) -> u64 {
    c.nodes
        .iter()
        .filter_map(|n| n.raft_u64(field))
        .max()
        .unwrap_or(0)
}

/// See [`Fault::MapPressure`].
fn map_pressure(c: &mut FaultCluster, hold: Duration) -> String {
    static FLOODS: AtomicU64 = AtomicU64::new(0);
    let round = FLOODS.fetch_add(1, Ordering::Relaxed);
    let refusals0 = raft_sum(c, "raft_log_full_refusals");
    let snapshot0 = raft_max(c, "raft_snapshot_index");
    let mut rng = StdRng::seed_from_u64(round);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let (mut acked, mut unknown, mut oom, mut bytes) = (Vec::new(), Vec::new(), 0u64, 0u64);
    let mut con: Option<(usize, redis::Connection)> = None;
    let evidence = |c: &FaultCluster, oom: u64| {
        oom > 0
            || raft_sum(c, "raft_log_full_refusals") > refusals0
            || raft_max(c, "raft_snapshot_index") > snapshot0
    };
    // At least the byte threshold of a snapshot (`snapshot-log-bytes-since-last`
    // defaults to lmdb-map-size / 8): the byte rule must have had to act.
    const MIN_FLOOD_BYTES: u64 = 8 << 20;
    let mut i = 0;
    while started.elapsed() < hold || bytes < MIN_FLOOD_BYTES || !evidence(c, oom) {
        assert!(
            Instant::now() < deadline,
            "map pressure: no -OOM refusal and no compaction after 60 s of flooding \
             ({} values, {bytes} bytes acknowledged)",
            acked.len()
        );
        if con.is_none() {
            con = c
                .leader()
                .and_then(|l| Some((l, c.nodes[l].try_conn()?)))
                .map(|(l, k)| {
                    let _ = k.set_read_timeout(Some(Duration::from_secs(10)));
                    (l, k)
                });
            if con.is_none() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let key = format!("flood{round}-{i}");
        i += 1;
        let size = rng.random_range(64 * 1024..=1024 * 1024);
        let value = flood_value(&key, size);
        let (_, k) = con.as_mut().unwrap();
        match redis::cmd("SET").arg(&key).arg(&value).query::<()>(k) {
            Ok(()) => {
                bytes += size as u64;
                acked.push((key, size));
            }
            Err(e) if e.code() == Some("OOM") => oom += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    redis::ErrorKind::Moved | redis::ErrorKind::ClusterDown
                ) =>
            {
                con = None
            }
            Err(e)
                if e.kind() == redis::ErrorKind::TryAgain || e.is_io_error() || e.is_timeout() =>
            {
                unknown.push(key);
                con = None;
            }
            Err(e) => panic!("map pressure: unexpected reply to SET {key} ({size} bytes): {e}"),
        }
    }
    let refusals = raft_sum(c, "raft_log_full_refusals") - refusals0;
    let snapshot1 = raft_max(c, "raft_snapshot_index");
    // Every node stayed up.
    for node in c.nodes.iter_mut() {
        node.assert_alive();
    }
    // Every acknowledged flood value is readable (linearizable read on the
    // leader); then the flood's keys are deleted so memory stays bounded.
    for (key, size) in &acked {
        let got: Vec<u8> = wait_for(
            &format!("a read of flood key {key}"),
            Duration::from_secs(30),
            || {
                redis::cmd("GET")
                    .arg(key)
                    .query::<Option<Vec<u8>>>(&mut c.nodes[c.leader()?].try_conn()?)
                    .ok()
            },
        )
        .unwrap_or_else(|| panic!("map pressure: acknowledged flood key {key} is missing"));
        assert!(
            got == flood_value(key, *size),
            "map pressure: flood key {key} read back {} bytes, wrote {size}",
            got.len()
        );
    }
    for chunk in acked
        .iter()
        .map(|(k, _)| k.clone())
        .chain(unknown.iter().cloned())
        .collect::<Vec<_>>()
        .chunks(50)
    {
        wait_for("DEL of the flood keys", Duration::from_secs(30), || {
            let mut del = redis::cmd("DEL");
            for k in chunk {
                del.arg(k);
            }
            del.query::<i64>(&mut c.nodes[c.leader()?].try_conn()?).ok()
        });
    }
    format!(
        "map pressure ({PRESSURE_MAP_SIZE} map): {} values ({bytes} bytes) acknowledged and read back, \
         {oom} -OOM to the flood, {refusals} log-full refusals (INFO raft), snapshot index \
         {snapshot0} -> {snapshot1}, {} unknown; all nodes up",
        acked.len(),
        unknown.len()
    )
}

/// See [`Fault::PauseLeader`].
fn pause_leader(c: &FaultCluster, l: usize, hold: Duration, h: &Histories) -> String {
    let key = "r0";
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr()).collect();
    // Opened before the pause (a paused process cannot answer a handshake),
    // with a timeout far beyond the pause.
    let mut probe = c.nodes[l].conn();
    probe
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let term0 = c.max_term();
    c.nodes[l].signal("STOP");
    let rest = c.others(l);
    let nl = c.wait_leader_among("a new leader while paused", &rest);
    // A write acknowledged by the new leader while the old one is paused.
    // Sent to whoever leads among the others at each try: leadership may
    // move again on a loaded machine (one long-campaign run timed out
    // writing to a node that had led once).
    let mut nemesis = Client::new(NEMESIS, addrs.clone(), nl, 0);
    let nl = wait_for(
        "a write through the new leader",
        Duration::from_secs(30),
        || {
            let now = rest
                .iter()
                .copied()
                .find(|i| common::role(&c.nodes[*i]).as_deref() == Some("master"))?;
            h.set(nemesis.at(now), key).map(|_| now)
        },
    );
    // Then a read sent to the paused leader: it waits in the socket buffer.
    let (t0, reply) = std::thread::scope(|s| {
        let read = s.spawn(|| {
            let t0 = h.registers.now();
            let r = redis::cmd("GET")
                .arg(key)
                .query::<Option<String>>(&mut probe);
            (t0, r)
        });
        std::thread::sleep(hold); // the fault's duration
        c.nodes[l].signal("CONT");
        read.join().unwrap()
    });
    let t1 = h.registers.now();
    let shown = match &reply {
        Ok(v) => format!("{v:?}"),
        Err(e) => e.to_string(),
    };
    assert!(
        !(reply.as_ref().is_err_and(|e| e.is_timeout())),
        "the GET sent to paused n{} got no reply within 120 s",
        l + 1
    );
    let reply = classify(reply, &addrs, "GET on the resumed leader", false);
    let s = &h.surprises;
    let input = RegisterInput::Get;
    record_reply(
        &h.registers,
        s,
        NEMESIS,
        key,
        (t0, t1),
        input,
        reply,
        RegisterOutput::Value,
    );
    format!(
        "SIGSTOP leader n{} for >{hold:?}; n{} took over (term {term0}->{}) and acked a write of {key}; \
         the GET sent to paused n{} afterwards answered {shown}",
        l + 1,
        nl + 1,
        c.max_term(),
        l + 1
    )
}

/// `node`'s last log index once it read the same three times in a row,
/// 200 ms apart.
fn stable_last_log_index(node: &Node) -> u64 {
    let mut seen = Vec::new();
    wait_for(
        "the cut-off node's log to settle",
        Duration::from_secs(30),
        || {
            seen.push(node.raft_u64("raft_last_log_index"));
            std::thread::sleep(Duration::from_millis(200));
            let n = seen.len();
            (n >= 3
                && seen[n - 3..]
                    .iter()
                    .all(|v| v.is_some() && *v == seen[n - 1]))
            .then(|| seen[n - 1].unwrap())
        },
    )
}

/// See [`Fault::SnapshotCatchUp`].
fn snapshot_catch_up(c: &FaultCluster, l: usize) -> String {
    let f = (l + 1) % c.nodes.len();
    let installed0 = snapshots_installed(&c.nodes[f]).expect("INFO raft_snapshots_installed");
    let cut = c.isolate(f);
    // Measured once f's log has settled after the cut: an append already
    // in f's socket or its log writer when the cut came is still written
    // (and the metric behind INFO lags a little), but nothing new can reach
    // f any more. Seen once in a long campaign: 2141 read, 2142 later.
    let last_f = stable_last_log_index(&c.nodes[f]);
    let purged = wait_for(
        "the leader to purge past the cut-off follower's log",
        Duration::from_secs(60),
        || {
            let l = c.leader()?;
            let p = c.nodes[l].raft_u64("raft_purged_index")?;
            (p > last_f).then_some(p)
        },
    );
    let proof = c.verify_cut(&cut, &[(l, f)]);
    assert_eq!(
        c.nodes[f].raft_u64("raft_last_log_index"),
        Some(last_f),
        "the cut-off follower's log moved while cut"
    );
    c.heal();
    let installed = wait_for(
        "the follower to install a snapshot from the leader",
        Duration::from_secs(60),
        || snapshots_installed(&c.nodes[f]).filter(|i| *i > installed0),
    );
    c.wait_applied(f, purged);
    format!(
        "n{} cut off at log index {last_f}; leader purged to {purged}; n{} installed a snapshot \
         (installs {installed0} -> {installed}) and applied past {purged}; {proof}",
        f + 1,
        f + 1
    )
}

/// Run one campaign: workload + faults, then heal and check everything.
fn campaign(nodes: usize, extra: &[&str], faults: &[Fault], seed: u64, hold: Duration) -> Summary {
    let started = Instant::now();
    // Faults that need something of every node: libfaketime for clock
    // jumps, a small LMDB map for map pressure.
    let faketime = faults
        .iter()
        .any(|f| matches!(f, Fault::ClockJump))
        .then(|| {
            libfaketime().expect("ClockJump needs libfaketimeMT.so.1 (apt-get install faketime)")
        });
    let mut extra = extra.to_vec();
    if faults.iter().any(|f| matches!(f, Fault::MapPressure)) {
        extra.extend([
            "--lmdb-map-size",
            PRESSURE_MAP_SIZE,
            "--lmdb-map-write-percent",
            PRESSURE_WRITE_PERCENT,
        ]);
    }
    let mut c = FaultCluster::start_with(nodes, &extra, faketime.as_deref());
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr()).collect();
    let h = Arc::new(Histories::new());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let client = Client::new(id, addrs.clone(), id % addrs.len(), seed * 1000 + id as u64);
            let (h, stop) = (h.clone(), stop.clone());
            std::thread::spawn(move || run_client(client, h, stop))
        })
        .collect();
    let mut summary = Summary::default();
    let warm = h.await_progress("start");
    summary
        .faults
        .push(format!("workload serving after {warm:?}"));
    for f in faults {
        let proof = inject(&mut c, *f, hold, &h);
        let back = h.await_progress(&format!("{f:?}"));
        summary
            .faults
            .push(format!("{proof}; workload ok again after {back:?}"));
    }
    stop.store(true, Ordering::Relaxed);
    let mut ro = [0u64; 3];
    for w in workers {
        for (t, n) in ro.iter_mut().zip(w.join().unwrap()) {
            *t += n;
        }
    }
    summary.faults.push(format!(
        "follower reads (READONLY, random node): {} answered, {} refused (CLUSTERDOWN or no connection), {} unknown",
        ro[0], ro[1], ro[2]
    ));
    assert!(ro[0] > 0, "no follower read was answered");
    c.heal();
    let (applied, digest) = c.converged_digest();
    summary.faults.push(format!(
        "converged: all replicas at index {applied} digest {digest}"
    ));

    // Final reads on the leader become part of the history.
    let h = Arc::try_unwrap(h).ok().expect("workers joined");
    // A leadership change may still be settling after the heal: retry a
    // final read on whoever leads until it answers (each try is a new op
    // whose invoke time is taken when it is sent).
    let final_get = |key: &str, now: &dyn Fn() -> u64| -> (u64, redis::Value, u64) {
        wait_for("a final read", Duration::from_secs(30), || {
            let mut con = c.nodes[c.leader()?].try_conn()?;
            let t0 = now();
            let v: redis::Value = redis::cmd("GET").arg(key).query(&mut con).ok()?;
            Some((t0, v, now()))
        })
    };
    let mut finals = BTreeMap::new();
    for k in 0..COUNTERS {
        let key = format!("n{k}");
        let (t0, v, t1) = final_get(&key, &|| h.counters.now());
        let v: Option<i64> = redis::from_redis_value(&v).unwrap();
        let out = CounterOutput::Read(v);
        h.counters
            .push(Op::ok(FINAL, &key, t0, t1, CounterInput::Get, out));
        finals.insert(key, v);
    }
    let registers = (0..REGISTERS)
        .map(|k| format!("r{k}"))
        .chain((0..TTL_REGISTERS).map(|k| format!("t{k}")));
    for key in registers {
        let (t0, v, t1) = final_get(&key, &|| h.registers.now());
        let v: Option<String> = redis::from_redis_value(&v).unwrap();
        let out = RegisterOutput::Value(v);
        h.registers
            .push(Op::ok(FINAL, &key, t0, t1, RegisterInput::Get, out));
    }
    assert!(
        started.elapsed() < Duration::from_millis(TTL_MS) / 2,
        "the campaign outlived half the TTL of its TTL keys: the register model no longer holds for them"
    );
    let surprises = h.surprises.into_inner().unwrap();
    const SHOWN: usize = 10;
    summary.violations.extend(
        surprises
            .iter()
            .take(SHOWN)
            .map(|s| format!("unexpected reply: {s}")),
    );
    if surprises.len() > SHOWN {
        summary.violations.push(format!(
            "... and {} more unexpected replies",
            surprises.len() - SHOWN
        ));
    }
    let registers: Vec<RegisterOp> = h.registers.into_history();
    let counters: Vec<CounterOp> = h.counters.into_history();
    for o in registers
        .iter()
        .map(|o| o.outcome)
        .chain(counters.iter().map(|o| o.outcome))
    {
        match o {
            Outcome::Ok => summary.ops_ok += 1,
            Outcome::Failed => summary.ops_failed += 1,
            Outcome::Unknown => summary.ops_unknown += 1,
        }
    }
    for (key, fin) in &finals {
        if let Err(e) = check_counter_final(&counters, key, *fin) {
            summary.violations.push(e);
        }
    }
    for r in [
        check_register(&registers, CHECK_BUDGET),
        check_counter(&counters, CHECK_BUDGET),
    ] {
        if let Some(v) = violation_text(&r) {
            summary.violations.push(v);
        }
    }
    if !summary.violations.is_empty() {
        c.keep();
    }
    summary
}

fn violation_text(r: &CheckResult) -> Option<String> {
    match r {
        CheckResult::Ok => None,
        CheckResult::Violation { key, explanation } => Some(format!("{key}: {explanation}")),
        CheckResult::Timeout { key } => Some(format!("{key}: checker gave up (counts as failure)")),
    }
}

fn report(name: &str, s: &Summary) {
    eprintln!(
        "== {name}: ops ok={} failed={} unknown={}; faults: {}; violations: {}",
        s.ops_ok,
        s.ops_failed,
        s.ops_unknown,
        s.faults.len(),
        s.violations.len()
    );
    for f in &s.faults {
        eprintln!("   fault: {f}");
    }
    for v in &s.violations {
        eprintln!("   VIOLATION: {v}");
    }
}

fn assert_clean(name: &str, s: &Summary) {
    report(name, s);
    assert!(
        s.violations.is_empty(),
        "{name}: {} violations",
        s.violations.len()
    );
    let total = s.ops_ok + s.ops_failed + s.ops_unknown;
    assert!(
        s.ops_unknown as f64 <= MAX_UNKNOWN_SHARE * total as f64,
        "{name}: {} of {total} operations ended unknown (cap {MAX_UNKNOWN_SHARE})",
        s.ops_unknown
    );
    assert!(
        s.ops_ok > 100,
        "{name}: too few successful operations ({})",
        s.ops_ok
    );
}

#[test]
fn crashes_and_pauses_3_nodes() {
    let s = campaign(
        3,
        &[],
        &[
            Fault::KillLeader,
            Fault::PauseLeader,
            Fault::KillFollower,
            Fault::KillAll,
        ],
        1,
        Duration::from_secs(1),
    );
    assert_clean("crashes_and_pauses_3_nodes", &s);
}

#[test]
fn partitions_3_nodes() {
    let s = campaign(
        3,
        &[],
        &[
            Fault::LeaderInMinority,
            Fault::LeaderInMajority,
            Fault::IsolateFollowerThenHeal,
        ],
        2,
        Duration::from_secs(2),
    );
    assert_clean("partitions_3_nodes", &s);
}

#[test]
fn ring_and_partitions_5_nodes() {
    let s = campaign(
        5,
        &[],
        &[Fault::Ring, Fault::LeaderInMinority, Fault::KillLeader],
        3,
        Duration::from_secs(2),
    );
    assert_clean("ring_and_partitions_5_nodes", &s);
}

#[test]
fn membership_one_way_flaky_and_snapshots_3_nodes() {
    let s = campaign(
        3,
        &[
            "--snapshot-logs-since-last",
            "100",
            "--max-in-snapshot-log-to-keep",
            "10",
        ],
        &[
            Fault::MembershipChurn,
            Fault::LeaderOutboundOneWay,
            Fault::Flaky,
            Fault::SnapshotCatchUp,
        ],
        5,
        Duration::from_secs(2),
    );
    assert_clean("membership_one_way_flaky_and_snapshots_3_nodes", &s);
}

/// The identity, clock and log-bound faults on 3 nodes: a wiped follower refused until its old
/// member is forgotten, wall-clock steps under TTL keys, and a flood that
/// fills a small LMDB map. Skipped locally without libfaketime (fails in CI).
#[test]
fn wipe_clock_and_map_pressure_3_nodes() {
    const NAME: &str = "wipe_clock_and_map_pressure_3_nodes";
    if libfaketime_or_skip(NAME).is_none() {
        return;
    }
    let s = campaign(
        3,
        &[],
        &[Fault::WipeAndRejoin, Fault::ClockJump, Fault::MapPressure],
        7,
        Duration::from_secs(2),
    );
    assert_clean(NAME, &s);
}

/// Forced failovers in a loop (an operator's script gone wrong, or an
/// attacker with `@admin`), around a leader kill: the workload stays
/// linearizable and the cluster keeps a leader and makes progress.
#[test]
fn failover_storm_3_nodes() {
    let s = campaign(
        3,
        &[],
        &[
            Fault::FailoverStorm,
            Fault::KillLeader,
            Fault::FailoverStorm,
        ],
        8,
        Duration::from_secs(2),
    );
    assert_clean("failover_storm_3_nodes", &s);
}

#[test]
fn lease_reads_under_pauses_and_partitions_3_nodes() {
    let s = campaign(
        3,
        &["--read-consistency", "lease"],
        &[
            Fault::PauseLeader,
            Fault::LeaderInMinority,
            Fault::PauseLeader,
        ],
        6,
        Duration::from_secs(2),
    );
    assert_clean("lease_reads_under_pauses_and_partitions_3_nodes", &s);
}

/// Lease reads on a leader resumed after SIGSTOP: once another leader has
/// acknowledged a newer value, the resumed one must not serve the old one
/// (its lease ran out while it was stopped). The PauseLeader probe alone,
/// three times, without the workload around it.
#[test]
fn lease_read_on_a_resumed_leader_is_not_stale() {
    let c = FaultCluster::start(3, &["--read-consistency", "lease"]);
    let h = Histories::new();
    let mut evidence = Vec::new();
    for _ in 0..3 {
        let l = c.wait_leader();
        evidence.push(pause_leader(&c, l, Duration::from_secs(2), &h));
        c.converged_digest();
    }
    let surprises = h.surprises.lock().unwrap().clone();
    assert!(surprises.is_empty(), "unexpected replies: {surprises:?}");
    let r = check_register(&h.registers.into_history(), CHECK_BUDGET);
    assert!(
        r.is_ok(),
        "{:#?}\n{}",
        evidence,
        violation_text(&r).unwrap()
    );
}

/// PreVote: a follower cut off for many election timeouts must not depose
/// the healthy leader when it comes back, nor raise the term.
#[test]
fn prevote_keeps_the_healthy_leader() {
    // Generous timeouts so a loaded CI machine cannot make the leader miss
    // heartbeats on its own: only PreVote is under test here.
    let c = FaultCluster::start(
        3,
        &[
            "--heartbeat-interval",
            "100",
            "--election-timeout-min",
            "800",
            "--election-timeout-max",
            "1600",
        ],
    );
    let l = c.wait_leader();
    let f = (l + 1) % 3;
    let term0 = c.term(l).unwrap();
    let cut = c.isolate(f);
    std::thread::sleep(Duration::from_secs(4)); // the fault: >> election timeout
                                                // The leader's heartbeats were refused. (Not required: that f tried a
                                                // pre-vote. With these timeouts one run saw f open no connection at all
                                                // in 34 s of isolation, while with the defaults it always did; reported
                                                // for investigation.)
    eprintln!("{}", c.verify_cut(&cut, &[(l, f)]));
    let tried: Vec<u64> = c
        .others(f)
        .into_iter()
        .map(|r| c.links[&(f, r)].stats().connections)
        .collect();
    eprintln!("connections the isolated node opened to each peer: {tried:?}");
    let isolated_term = c.term(f).unwrap();
    c.heal();
    // Back in contact: once f has applied a write made after the heal, it
    // has exchanged appends with the leader, so a higher term would have
    // deposed the leader by now.
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut c.nodes[l].conn())
        .unwrap();
    c.wait_applied(f, c.nodes[l].raft_u64("raft_committed_index").unwrap());
    assert_eq!(isolated_term, term0, "the isolated node inflated its term");
    assert_eq!(c.leader(), Some(l), "the healthy leader was deposed");
    assert_eq!(c.term(l).unwrap(), term0, "the term moved");
}

/// A leader cut off from its quorum stops acknowledging writes, says so,
/// and the write it refused is nowhere after the partition heals.
#[test]
fn leader_without_quorum_stops_acking() {
    let c = FaultCluster::start(3, &[]);
    let l = c.wait_leader();
    let cut = c.isolate(l);
    let mut con = std::net::TcpStream::connect(c.nodes[l].addr()).unwrap();
    con.write_all(b"SET x 1\r\n").unwrap();
    // No reply while cut off (the write waits for a quorum)...
    con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 512];
    let early = con.read(&mut buf);
    assert!(
        early
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "an isolated leader answered a write: {early:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    c.verify_cut(&cut, &[]);
    c.heal();
    // ...and after healing, the answer to it is not +OK.
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let n = con.read(&mut buf).unwrap();
    let late = String::from_utf8_lossy(&buf[..n]);
    eprintln!("late reply: {late:?}");
    assert!(
        late.starts_with("-TRYAGAIN "),
        "the deposed leader's late answer to the write: {late:?}"
    );
    c.converged_digest();
    let x: Option<String> = wait_for("a read of x on the leader", Duration::from_secs(30), || {
        redis::cmd("GET")
            .arg("x")
            .query(&mut c.nodes[c.leader()?].try_conn()?)
            .ok()
    });
    assert_eq!(
        x, None,
        "the write refused by the isolated leader was applied"
    );
}

/// Per-key verdicts of `check` over `history`.
fn verdicts<I: Clone, O: Clone>(
    history: &[Op<I, O>],
    check: fn(&[Op<I, O>], Duration) -> CheckResult,
) -> BTreeMap<String, CheckResult> {
    checker::by_key(history)
        .into_iter()
        .map(|(k, ops)| {
            let r = check(&ops, CHECK_BUDGET);
            (k, r)
        })
        .collect()
}

/// A negative control must see a real violation on exactly the keys it
/// broke ("checker gave up" is not one), and none on its control keys.
fn assert_flags_exactly(
    what: &str,
    verdicts: &BTreeMap<String, CheckResult>,
    broken: &[&str],
    evidence: &str,
) {
    for (key, r) in verdicts {
        let flagged = matches!(r, CheckResult::Violation { .. });
        eprintln!("{what}: {key}: {r:?}");
        assert_eq!(
            flagged,
            broken.contains(&key.as_str()),
            "{what}: key {key}: expected {}, got {r:?}",
            if broken.contains(&key.as_str()) {
                "a violation"
            } else {
                "no violation"
            }
        );
        if flagged {
            let text = violation_text(r).unwrap();
            assert!(
                text.contains(evidence),
                "{what}: {text} does not mention {evidence}"
            );
        }
    }
    for key in broken {
        assert!(verdicts.contains_key(*key), "{what}: no history for {key}");
    }
}

/// Negative control (stale read), built step by step so it fails the system
/// every time: write, cut the leader off, write through the new leader,
/// read the old value from the cut-off node in `stale` mode. The register
/// checker must flag exactly that key.
#[test]
fn negative_control_stale_read_is_caught() {
    let c = FaultCluster::start(3, &["--read-consistency", "stale"]);
    let h = Histories::new();
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr()).collect();
    let mut client = Client::new(NEMESIS, addrs, 0, 0);
    let l = c.wait_leader();
    let old = h
        .set(client.at(l), "stale")
        .expect("a write through the leader");
    h.set(client.at(l), "fresh")
        .expect("a write through the leader");
    let cut = c.isolate(l);
    let nl = c.wait_leader_among("a new leader", &c.others(l));
    let new = wait_for(
        "a write through the new leader",
        Duration::from_secs(30),
        || h.set(client.at(nl), "stale"),
    );
    let fresh = wait_for(
        "a write through the new leader",
        Duration::from_secs(30),
        || h.set(client.at(nl), "fresh"),
    );
    // Evidence that the fault produced the stale read.
    let seen = h
        .get(client.at(l), "stale")
        .expect("the cut-off node answers a stale read");
    assert_eq!(
        seen,
        Some(old.clone()),
        "the cut-off old leader did not serve its old value"
    );
    // The workload's follower-read path (READONLY connection) is local in
    // `stale` mode too: the same stale value, recorded the same way.
    let seen = h
        .get(client.follower(l), "stale")
        .expect("the cut-off node answers a stale READONLY read");
    assert_eq!(
        seen,
        Some(old.clone()),
        "the cut-off old leader's READONLY read"
    );
    let seen = h
        .get(client.at(nl), "fresh")
        .expect("the new leader answers");
    assert_eq!(seen, Some(fresh), "the new leader's own read");
    let leader_links: Vec<Link> = c.others(l).into_iter().map(|r| (l, r)).collect();
    c.verify_cut(&cut, &leader_links);
    c.heal();
    wait_for(
        "the old leader to catch up after healing",
        Duration::from_secs(30),
        || {
            let v: Option<String> = redis::cmd("GET")
                .arg("stale")
                .query(&mut c.nodes[l].try_conn()?)
                .ok()?;
            (v.as_deref() == Some(new.as_str())).then_some(())
        },
    );
    let history = h.registers.into_history();
    let v = verdicts(&history, check_register);
    assert_flags_exactly("stale-read control", &v, &["stale"], &old);
}

/// Negative controls (lost write, lost increments) on real histories: a
/// node loses its data dir (kill -9, wipe, restart: it bootstraps an empty
/// cluster), so acknowledged writes are gone. The register checker, the
/// counter checker and the final counter bound must each flag exactly the
/// keys written before the loss, and pass the keys written after it.
#[test]
fn negative_control_lost_write_and_lost_increments_are_caught() {
    let mut c = common::Cluster::single(&[]);
    let h = Histories::new();
    let mut client = Client::new(NEMESIS, vec![c.nodes[0].addr()], 0, 0);
    let lost = h.set(&mut client, "lost").expect("SET before the loss");
    for _ in 0..5 {
        h.incr(&mut client, "lost_n").expect("INCR before the loss");
    }
    c.nodes[0].kill9();
    std::fs::remove_dir_all(&c.nodes[0].dir).unwrap();
    c.nodes[0].start();
    c.leader();
    client.conns.clear(); // connections to the killed process are dead
    let kept = h.set(&mut client, "kept").expect("SET after the loss");
    for _ in 0..3 {
        h.incr(&mut client, "kept_n").expect("INCR after the loss");
    }
    // Evidence that the fault lost the writes.
    assert_eq!(
        h.get(&mut client, "lost"),
        Some(None),
        "the wipe kept {lost}"
    );
    assert_eq!(h.get(&mut client, "kept"), Some(Some(kept)));
    let lost_n = h
        .read_counter(&mut client, "lost_n")
        .expect("a counter read");
    assert_eq!(lost_n, None, "the wipe kept the counter");
    let kept_n = h
        .read_counter(&mut client, "kept_n")
        .expect("a counter read");
    assert_eq!(kept_n, Some(3));

    let registers = h.registers.into_history();
    let v = verdicts(&registers, check_register);
    assert_flags_exactly("lost-write control", &v, &["lost"], &lost);
    let counters = h.counters.into_history();
    let v = verdicts(&counters, check_counter);
    assert_flags_exactly("lost-increment control", &v, &["lost_n"], "Read(None)");
    let bound = check_counter_final(&counters, "lost_n", lost_n);
    assert!(
        bound.as_ref().is_err_and(|e| e.contains("acked 5")),
        "the final-value bound must flag lost_n: {bound:?}"
    );
    check_counter_final(&counters, "kept_n", kept_n).unwrap();
}

/// An extra, random version of the stale-read control: stale reads inside
/// random partition windows. Whether one happens depends on timing, so it
/// is not a CI test (the constructed control above is); run it with
/// `cargo test --test faults -- --ignored random_negative_control`.
#[test]
#[ignore]
fn random_negative_control_stale_reads() {
    let s = campaign(
        3,
        &["--read-consistency", "stale"],
        &[Fault::LeaderInMinority; 5],
        4,
        Duration::from_secs(3),
    );
    report("random_negative_control", &s);
    assert!(
        s.violations.iter().any(|v| !v.contains("checker gave up")),
        "the checker saw no violation with stale reads under partitions"
    );
}

/// The long campaign: many seeds, all faults, for RAFTCACHE_CAMPAIGN_SECS.
#[test]
#[ignore]
fn long_campaign() {
    let secs: u64 = std::env::var("RAFTCACHE_CAMPAIGN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let all = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::LeaderInMinority,
        Fault::LeaderInMajority,
        Fault::IsolateFollowerThenHeal,
        Fault::Ring,
        Fault::KillAll,
        Fault::LeaderOutboundOneWay,
        Fault::Flaky,
        Fault::MembershipChurn,
        Fault::SnapshotCatchUp,
        Fault::WipeAndRejoin,
        Fault::ClockJump,
        Fault::MapPressure,
        Fault::FailoverStorm,
    ];
    // Without libfaketime (skipped and recorded locally, fatal in CI) the
    // clock jumps are left out.
    let faketime = libfaketime_or_skip("long_campaign: ClockJump").is_some();
    let all: Vec<Fault> = all
        .into_iter()
        .filter(|f| faketime || !matches!(f, Fault::ClockJump))
        .collect();
    let mut total = Summary::default();
    // RAFTCACHE_CAMPAIGN_SEED replays a run (each run prints its seed).
    let first: u64 = std::env::var("RAFTCACHE_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut seed = first;
    while Instant::now() < deadline {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes = if rng.random_bool(0.5) { 3 } else { 5 };
        let faults: Vec<Fault> = (0..6)
            .map(|_| all[rng.random_range(0..all.len())])
            .collect();
        // Lease reads in a third of the runs; small snapshot thresholds
        // always, so snapshots are built, sent and installed under faults.
        let reads = if rng.random_bool(0.3) {
            "lease"
        } else {
            "linearizable"
        };
        let extra = [
            "--read-consistency",
            reads,
            "--snapshot-logs-since-last",
            "100",
            "--max-in-snapshot-log-to-keep",
            "10",
        ];
        eprintln!("== seed {seed}: {nodes} nodes, {reads} reads, faults {faults:?}");
        let s = campaign(
            nodes,
            &extra,
            &faults,
            seed,
            Duration::from_millis(rng.random_range(500..3000)),
        );
        assert_clean(&format!("seed {seed} ({nodes} nodes, {reads} reads)"), &s);
        total.ops_ok += s.ops_ok;
        total.ops_failed += s.ops_failed;
        total.ops_unknown += s.ops_unknown;
        total.faults.extend(s.faults);
        total.violations.extend(s.violations);
        seed += 1;
    }
    eprintln!(
        "== LONG CAMPAIGN SUMMARY: {} runs; ops ok={} failed={} unknown={}; faults injected={}; violations={}",
        seed - first,
        total.ops_ok,
        total.ops_failed,
        total.ops_unknown,
        total.faults.len(),
        total.violations.len()
    );
    assert!(total.violations.is_empty());
}
