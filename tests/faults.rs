//! Fault campaigns over real processes (TESTING.md layer 6): nodes talk to
//! each other only through per-link TCP proxies (`--bus-route`), so a test
//! can cut links one way or both without root; clients record every
//! operation with invoke/return times and an outcome, and a per-key
//! linearizability checker judges the history.
//!
//! CI runs a short campaign (fixed seeds). A long one:
//!   RAFTCACHE_CAMPAIGN_SECS=1800 cargo test --release --test faults -- --ignored long_campaign --nocapture

// Node indexes are identities (n1, n2, ...), not just positions.
#![allow(clippy::needless_range_loop)]

#[path = "common/checker.rs"]
mod checker;
mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::{
    check_counter, check_register, CheckResult, CounterInput, CounterOp, CounterOutput, Op,
    RegisterInput, RegisterOp, RegisterOutput,
};
use common::{wait_for, Node};
use proxy::Proxy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const REGISTERS: usize = 5;
const COUNTERS: usize = 5;
const CLIENTS: usize = 8;

/// N nodes, every directed bus link (i -> j) through its own proxy.
struct FaultCluster {
    nodes: Vec<Node>,
    links: BTreeMap<(usize, usize), Proxy>,
    _root: tempfile::TempDir,
}

impl FaultCluster {
    fn start(n: usize, extra: &[&str]) -> FaultCluster {
        let root = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (0..n)
            .map(|i| Node::new(i as u64 + 1, root.path()))
            .collect();
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
            node.extra = extra.iter().map(|s| s.to_string()).collect();
            node.extra.push("--bus-route".into());
            node.extra.push(routes.join(","));
        }
        let seed = nodes[0].addr();
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
            _root: root,
        };
        c.wait_voters(n);
        c
    }

    fn leader(&self) -> Option<usize> {
        common::try_leader_on(&self.nodes)
    }

    fn wait_leader(&self) -> usize {
        common::wait_leader_on(&self.nodes)
    }

    fn wait_voters(&self, n: usize) {
        common::wait_members_on(&self.nodes, n)
    }

    fn term(&self, i: usize) -> Option<u64> {
        let mut c = redis::Client::open(self.nodes[i].url())
            .ok()?
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        let info: String = redis::cmd("INFO").arg("raft").query(&mut c).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("raft_term:"))?
            .trim()
            .parse()
            .ok()
    }

    fn max_term(&self) -> u64 {
        (0..self.nodes.len())
            .filter_map(|i| self.term(i))
            .max()
            .unwrap_or(0)
    }

    /// Cut every link between `a` and `b` (both directions).
    fn cut_between(&self, a: &[usize], b: &[usize]) {
        for &i in a {
            for &j in b {
                self.links[&(i, j)].cut();
                self.links[&(j, i)].cut();
            }
        }
    }

    fn isolate(&self, i: usize) {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|j| *j != i).collect();
        self.cut_between(&[i], &others);
    }

    fn heal(&self) {
        for p in self.links.values() {
            p.heal();
        }
    }

    fn blackholed(&self) -> u64 {
        self.links
            .values()
            .map(|p| p.stats().blackholed + p.stats().dropped_forward + p.stats().dropped_backward)
            .sum()
    }

    /// `[applied index, digest]` of every running node once all agree.
    fn converged_digest(&self) -> (i64, String) {
        wait_for("replicas to converge", Duration::from_secs(60), || {
            let mut seen = Vec::new();
            for n in self.nodes.iter().filter(|n| n.is_running()) {
                let mut c = redis::Client::open(n.url())
                    .ok()?
                    .get_connection_with_timeout(Duration::from_secs(1))
                    .ok()?;
                let (applied, digest): (i64, String) =
                    redis::cmd("RAFTCACHE").arg("DIGEST").query(&mut c).ok()?;
                seen.push((applied, digest));
            }
            let first = seen.first()?.clone();
            seen.iter().all(|s| *s == first).then_some(first)
        })
    }
}

/// Which node a client should talk to next, learned from MOVED.
fn node_index(nodes: &[String], addr: &str) -> Option<usize> {
    nodes.iter().position(|n| n == addr)
}

enum Reply<T> {
    Ok(T),
    /// Certainly not applied (MOVED, CLUSTERDOWN, READONLY).
    Failed(Option<usize>),
    /// May or may not have been applied.
    Unknown,
}

struct Client {
    id: usize,
    addrs: Vec<String>,
    conns: HashMap<usize, redis::Connection>,
    target: usize,
    rng: StdRng,
}

impl Client {
    fn conn(&mut self, i: usize) -> Option<&mut redis::Connection> {
        if !self.conns.contains_key(&i) {
            let client = redis::Client::open(format!("redis://{}/", self.addrs[i])).ok()?;
            let c = client
                .get_connection_with_timeout(Duration::from_millis(500))
                .ok()?;
            c.set_read_timeout(Some(Duration::from_millis(1500))).ok()?;
            c.set_write_timeout(Some(Duration::from_millis(1500)))
                .ok()?;
            self.conns.insert(i, c);
        }
        self.conns.get_mut(&i)
    }

    fn call<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Reply<T> {
        let target = self.target;
        let Some(con) = self.conn(target) else {
            self.target = self.rng.random_range(0..self.addrs.len());
            return Reply::Failed(None); // could not connect: nothing was sent
        };
        match cmd.query::<T>(con) {
            Ok(v) => Reply::Ok(v),
            Err(e) => {
                let next = match e.redirect_node() {
                    Some((addr, _)) => node_index(&self.addrs, addr),
                    None => None,
                };
                match e.kind() {
                    redis::ErrorKind::Moved => Reply::Failed(next),
                    redis::ErrorKind::ClusterDown => Reply::Failed(None),
                    redis::ErrorKind::ReadOnly => Reply::Failed(None),
                    _ => {
                        self.conns.remove(&target);
                        Reply::Unknown
                    }
                }
            }
        }
    }

    fn retarget(&mut self, next: Option<usize>) {
        self.target = next.unwrap_or_else(|| self.rng.random_range(0..self.addrs.len()));
    }

    /// Issue `cmd` on `key`, record the outcome in `rec` and retarget after
    /// a failure. A read that fails or may have failed is not recorded (it
    /// changed nothing); a write is recorded as failed or unknown.
    fn record<T: redis::FromRedisValue, I, O>(
        &mut self,
        rec: &checker::Recorder<I, O>,
        key: &str,
        cmd: &redis::Cmd,
        kind: Kind,
        input: I,
        output: impl FnOnce(T) -> O,
    ) {
        let t0 = rec.now();
        let r: Reply<T> = self.call(cmd);
        let t1 = rec.now();
        match r {
            Reply::Ok(v) => rec.push(Op::ok(self.id, key, t0, t1, input, output(v))),
            Reply::Failed(next) => {
                if kind == Kind::Write {
                    rec.push(Op::failed(self.id, key, t0, t1, input));
                }
                self.retarget(next)
            }
            Reply::Unknown => {
                if kind == Kind::Write {
                    rec.push(Op::unknown(self.id, key, t0, input));
                }
                self.retarget(None)
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

struct Histories {
    registers: checker::Recorder<RegisterInput, RegisterOutput>,
    counters: checker::Recorder<CounterInput, CounterOutput>,
}

/// Run the workload until `stop`; every op recorded.
fn run_client(mut c: Client, h: Arc<Histories>, stop: Arc<AtomicBool>, seq: Arc<AtomicU64>) {
    use Kind::{Read, Write};
    while !stop.load(Ordering::Relaxed) {
        let reg = c.rng.random_bool(0.6);
        let read = c.rng.random_bool(0.4);
        if reg {
            let key = format!("r{}", c.rng.random_range(0..REGISTERS));
            let rec = &h.registers;
            if read {
                let get = redis::cmd("GET").arg(&key).to_owned();
                c.record(
                    rec,
                    &key,
                    &get,
                    Read,
                    RegisterInput::Get,
                    RegisterOutput::Value,
                );
            } else {
                let value = format!("c{}-{}", c.id, seq.fetch_add(1, Ordering::Relaxed));
                let set = redis::cmd("SET").arg(&key).arg(&value).to_owned();
                let input = RegisterInput::Set(value);
                c.record(rec, &key, &set, Write, input, |()| RegisterOutput::Ok);
            }
        } else {
            let key = format!("n{}", c.rng.random_range(0..COUNTERS));
            let rec = &h.counters;
            if read {
                let get = redis::cmd("GET").arg(&key).to_owned();
                c.record(
                    rec,
                    &key,
                    &get,
                    Read,
                    CounterInput::Get,
                    CounterOutput::Read,
                );
            } else {
                let incr = redis::cmd("INCR").arg(&key).to_owned();
                c.record(
                    rec,
                    &key,
                    &incr,
                    Write,
                    CounterInput::Incr,
                    CounterOutput::Value,
                );
            }
        }
    }
}

/// One fault the nemesis can inject; each returns evidence that it happened.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    KillAll,
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
    /// A follower cut off until the leader has purged past it: it must
    /// install a snapshot to catch up (needs small snapshot thresholds).
    SnapshotCatchUp,
}

#[derive(Default, Debug)]
struct Summary {
    ops_ok: usize,
    ops_failed: usize,
    ops_unknown: usize,
    faults: Vec<String>,
    violations: Vec<String>,
}

fn inject(c: &mut FaultCluster, fault: Fault, hold: Duration, evidence: &mut Vec<String>) {
    let n = c.nodes.len();
    let l = c.wait_leader();
    let term0 = c.max_term();
    let cut0 = c.blackholed();
    match fault {
        Fault::KillLeader => {
            c.nodes[l].kill9();
            let nl = wait_for("a new leader", Duration::from_secs(30), || {
                c.leader().filter(|x| *x != l)
            });
            std::thread::sleep(hold);
            c.nodes[l].join = None;
            c.nodes[l].start();
            let term1 = c.max_term();
            assert!(
                term1 > term0,
                "leader kill did not start a new term ({term0} -> {term1})"
            );
            evidence.push(format!(
                "kill -9 leader n{} -> new leader n{} term {term0}->{term1}",
                l + 1,
                nl + 1
            ));
        }
        Fault::KillFollower => {
            let f = (l + 1) % n;
            c.nodes[f].kill9();
            std::thread::sleep(hold);
            c.nodes[f].join = None;
            c.nodes[f].start();
            evidence.push(format!("kill -9 follower n{}", f + 1));
        }
        Fault::KillAll => {
            for node in c.nodes.iter_mut() {
                node.kill9();
            }
            for node in c.nodes.iter_mut() {
                node.join = None;
                node.start();
            }
            let nl = c.wait_leader();
            evidence.push(format!("kill -9 all; restarted, leader n{}", nl + 1));
        }
        Fault::PauseLeader => {
            c.nodes[l].signal("STOP");
            let nl = wait_for("a new leader while paused", Duration::from_secs(30), || {
                (0..n)
                    .filter(|i| *i != l)
                    .find(|i| common::role(&c.nodes[*i]).as_deref() == Some("master"))
            });
            std::thread::sleep(hold);
            c.nodes[l].signal("CONT");
            evidence.push(format!(
                "SIGSTOP leader n{} for >{hold:?}; n{} took over",
                l + 1,
                nl + 1
            ));
        }
        Fault::LeaderInMinority => {
            let rest: Vec<usize> = (0..n).filter(|i| *i != l).collect();
            c.cut_between(&[l], &rest);
            let nl = wait_for("a leader in the majority", Duration::from_secs(30), || {
                rest.iter()
                    .copied()
                    .find(|i| common::role(&c.nodes[*i]).as_deref() == Some("master"))
            });
            std::thread::sleep(hold);
            c.heal();
            assert!(c.blackholed() > cut0, "the partition dropped nothing");
            evidence.push(format!(
                "leader n{} alone in minority; majority elected n{}",
                l + 1,
                nl + 1
            ));
        }
        Fault::LeaderInMajority => {
            let f = (l + 1) % n;
            let rest: Vec<usize> = (0..n).filter(|i| *i != f).collect();
            c.cut_between(&[f], &rest);
            std::thread::sleep(hold);
            let still = c.leader();
            c.heal();
            assert!(c.blackholed() > cut0, "the partition dropped nothing");
            evidence.push(format!(
                "follower n{} cut off, leader n{} in majority (leader during cut: {:?})",
                f + 1,
                l + 1,
                still.map(|x| x + 1)
            ));
        }
        Fault::IsolateFollowerThenHeal => {
            let f = (l + 1) % n;
            c.isolate(f);
            std::thread::sleep(hold.max(Duration::from_secs(2)));
            c.heal();
            std::thread::sleep(Duration::from_millis(500));
            let after = c.leader();
            evidence.push(format!(
                "isolated n{} for {:?} then healed; leader before n{}, after {:?}; term {term0}->{}",
                f + 1,
                hold.max(Duration::from_secs(2)),
                l + 1,
                after.map(|x| x + 1),
                c.max_term()
            ));
        }
        Fault::Ring if n < 5 => {
            // On 3 nodes every pair is neighbours: the ring cuts nothing.
            evidence.push("majorities ring skipped: needs 5 nodes".into());
        }
        Fault::Ring => {
            // Each node only reaches its two ring neighbours: every node sees a
            // majority, but no two nodes see the same one.
            for i in 0..n {
                for j in 0..n {
                    let d = (i + n - j) % n;
                    if i != j && d != 1 && d != n - 1 {
                        c.links[&(i, j)].cut();
                    }
                }
            }
            std::thread::sleep(hold);
            c.heal();
            assert!(c.blackholed() > cut0, "the ring partition dropped nothing");
            evidence.push(format!("majorities ring on {n} nodes for {hold:?}"));
        }
        Fault::LeaderOutboundOneWay => {
            for j in (0..n).filter(|j| *j != l) {
                c.links[&(l, j)].cut_forward();
            }
            let nl = wait_for("a new leader", Duration::from_secs(30), || {
                (0..n)
                    .filter(|i| *i != l)
                    .find(|i| common::role(&c.nodes[*i]).as_deref() == Some("master"))
            });
            std::thread::sleep(hold);
            let dropped: u64 = (0..n)
                .filter(|j| *j != l)
                .map(|j| c.links[&(l, j)].stats().dropped_forward)
                .sum();
            c.heal();
            assert!(dropped > 0, "the one-way cut dropped nothing");
            evidence.push(format!(
                "one-way: n{} could not send for {hold:?} ({dropped} bytes dropped); n{} led",
                l + 1,
                nl + 1
            ));
        }
        Fault::Flaky => {
            for p in c.links.values() {
                p.set_delay(Duration::from_millis(15));
                p.set_drop_probability(0.02);
            }
            std::thread::sleep(hold);
            let killed: u64 = c.links.values().map(|p| p.stats().killed).sum();
            for p in c.links.values() {
                p.set_delay(Duration::ZERO);
                p.set_drop_probability(0.0);
            }
            evidence.push(format!("flaky links (15 ms delay, 2% chunk loss) for {hold:?}: {killed} connections broken"));
        }
        Fault::MembershipChurn => {
            for victim in [(l + 1) % n, l] {
                let leader = c.wait_leader();
                let name: String = redis::cmd("CLUSTER")
                    .arg("MYID")
                    .query(&mut c.nodes[victim].conn())
                    .unwrap();
                let _: () = redis::cmd("CLUSTER")
                    .arg("FORGET")
                    .arg(&name)
                    .query(&mut c.nodes[leader].conn())
                    .unwrap();
                c.wait_voters(n - 1);
                c.nodes[victim].kill9();
                std::fs::remove_dir_all(&c.nodes[victim].dir).unwrap();
                let seed = c.nodes[c.wait_leader()].addr();
                c.nodes[victim].join = Some(seed);
                c.nodes[victim].start();
                c.wait_voters(n);
                evidence.push(format!(
                    "removed n{} (leader: {}), wiped it and re-added it",
                    victim + 1,
                    victim == leader
                ));
            }
        }
        Fault::SnapshotCatchUp => {
            let f = (l + 1) % n;
            let snap =
                |i: usize| -> u64 { info_u64(&c.nodes[i], "raft_snapshot_index").unwrap_or(0) };
            let before = snap(f);
            let applied_f = info_u64(&c.nodes[f], "raft_last_applied_index").unwrap_or(0);
            c.isolate(f);
            wait_for(
                "the leader to purge past the cut-off follower",
                Duration::from_secs(60),
                || {
                    let l = c.leader()?;
                    (info_u64(&c.nodes[l], "raft_purged_index")? > applied_f).then_some(())
                },
            );
            c.heal();
            wait_for(
                "the follower to install a snapshot",
                Duration::from_secs(60),
                || (snap(f) > before).then_some(()),
            );
            evidence.push(format!(
                "n{} cut off past the purge point; installed snapshot {} (was {before})",
                f + 1,
                snap(f)
            ));
        }
    }
}

fn info_u64(node: &Node, field: &str) -> Option<u64> {
    let mut c = redis::Client::open(node.url())
        .ok()?
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    c.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let info: String = redis::cmd("INFO").arg("raft").query(&mut c).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))?
        .trim()
        .parse()
        .ok()
}

/// Run one campaign: workload + faults, then heal and check everything.
fn campaign(nodes: usize, extra: &[&str], faults: &[Fault], seed: u64, hold: Duration) -> Summary {
    let mut c = FaultCluster::start(nodes, extra);
    let addrs: Vec<String> = c.nodes.iter().map(|n| n.addr()).collect();
    let h = Arc::new(Histories {
        registers: checker::Recorder::new(),
        counters: checker::Recorder::new(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let client = Client {
                id,
                addrs: addrs.clone(),
                conns: HashMap::new(),
                target: id % addrs.len(),
                rng: StdRng::seed_from_u64(seed * 1000 + id as u64),
            };
            let (h, stop, seq) = (h.clone(), stop.clone(), seq.clone());
            std::thread::spawn(move || run_client(client, h, stop, seq))
        })
        .collect();
    let mut summary = Summary::default();
    std::thread::sleep(Duration::from_millis(500));
    for f in faults {
        inject(&mut c, *f, hold, &mut summary.faults);
        std::thread::sleep(Duration::from_millis(700));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
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
            let l = c.leader()?;
            let mut con = c.nodes[l].conn();
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
        h.counters.push(Op::ok(
            usize::MAX,
            &key,
            t0,
            t1,
            CounterInput::Get,
            CounterOutput::Read(v),
        ));
        finals.insert(key, v.unwrap_or(0));
    }
    for k in 0..REGISTERS {
        let key = format!("r{k}");
        let (t0, v, t1) = final_get(&key, &|| h.registers.now());
        let v: Option<String> = redis::from_redis_value(&v).unwrap();
        h.registers.push(Op::ok(
            usize::MAX,
            &key,
            t0,
            t1,
            RegisterInput::Get,
            RegisterOutput::Value(v),
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
            checker::Outcome::Ok => summary.ops_ok += 1,
            checker::Outcome::Failed => summary.ops_failed += 1,
            checker::Outcome::Unknown => summary.ops_unknown += 1,
        }
    }
    // Counters: acked <= final <= acked + unknown.
    for (key, fin) in &finals {
        let incrs = counters
            .iter()
            .filter(|o| &o.key == key && matches!(o.input, CounterInput::Incr));
        let (mut acked, mut unknown) = (0i64, 0i64);
        for o in incrs {
            match o.outcome {
                checker::Outcome::Ok => acked += 1,
                checker::Outcome::Unknown => unknown += 1,
                checker::Outcome::Failed => {}
            }
        }
        if !(acked <= *fin && *fin <= acked + unknown) {
            summary.violations.push(format!(
                "counter {key}: final {fin} not within acked {acked} .. acked+unknown {}",
                acked + unknown
            ));
        }
    }
    let budget = Duration::from_secs(20);
    for r in [
        check_register(&registers, budget),
        check_counter(&counters, budget),
    ] {
        match r {
            CheckResult::Ok => {}
            CheckResult::Violation { key, explanation } => {
                summary.violations.push(format!("{key}: {explanation}"))
            }
            CheckResult::Timeout { key } => summary
                .violations
                .push(format!("{key}: checker gave up (counts as failure)")),
        }
    }
    summary
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
    let cut0 = c.blackholed();
    c.isolate(f);
    std::thread::sleep(Duration::from_secs(4)); // >> election timeout (300-600 ms)
    assert!(c.blackholed() > cut0, "the isolation dropped nothing");
    let isolated_term = c.term(f).unwrap();
    c.heal();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.leader(), Some(l), "the healthy leader was deposed");
    assert_eq!(c.term(l).unwrap(), term0, "the term moved");
    assert_eq!(isolated_term, term0, "the isolated node inflated its term");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut c.nodes[l].conn())
        .unwrap();
}

/// A leader cut off from its quorum stops acknowledging writes.
#[test]
fn leader_without_quorum_stops_acking() {
    let c = FaultCluster::start(3, &[]);
    let l = c.wait_leader();
    c.isolate(l);
    let mut con = c.nodes[l].conn();
    con.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let r: redis::RedisResult<()> = redis::cmd("SET").arg("x").arg("1").query(&mut con);
    assert!(r.is_err(), "an isolated leader acknowledged a write");
    c.heal();
}

/// Negative control: with stale reads allowed, partitioning the leader
/// away must produce violations the checker sees. If this ever passes
/// clean, the checker (or the fault) is blind.
#[test]
fn negative_control_stale_reads_are_caught() {
    let s = campaign(
        3,
        &["--read-consistency", "stale"],
        &[
            Fault::LeaderInMinority,
            Fault::LeaderInMinority,
            Fault::LeaderInMinority,
            Fault::LeaderInMinority,
            Fault::LeaderInMinority,
        ],
        4,
        Duration::from_secs(3),
    );
    report("negative_control", &s);
    assert!(
        !s.violations.is_empty(),
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
    ];
    let mut total = Summary::default();
    let mut seed = 100;
    while Instant::now() < deadline {
        let mut rng = StdRng::seed_from_u64(seed);
        let nodes = if rng.random_bool(0.5) { 3 } else { 5 };
        let faults: Vec<Fault> = (0..6)
            .map(|_| all[rng.random_range(0..all.len())])
            .collect();
        let s = campaign(
            nodes,
            &[],
            &faults,
            seed,
            Duration::from_millis(rng.random_range(500..3000)),
        );
        report(&format!("seed {seed} ({nodes} nodes)"), &s);
        total.ops_ok += s.ops_ok;
        total.ops_failed += s.ops_failed;
        total.ops_unknown += s.ops_unknown;
        total.faults.extend(s.faults);
        total.violations.extend(s.violations);
        seed += 1;
    }
    eprintln!(
        "== LONG CAMPAIGN SUMMARY: {} runs; ops ok={} failed={} unknown={}; faults injected={}; violations={}",
        seed - 100,
        total.ops_ok,
        total.ops_failed,
        total.ops_unknown,
        total.faults.len(),
        total.violations.len()
    );
    assert!(total.violations.is_empty());
}
