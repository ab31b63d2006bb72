//! TTLs survive clocks: one node's wall clock is moved with libfaketime
//! (Debian's `faketime` package) while its monotonic clock runs on, as an
//! NTP step does. A +1 h jump on the leader, then a failover to a node whose
//! clock is 5 s slow: no key expires early, none reappears, and none that
//! was acknowledged is missing (docs/time.md).
//!
//! Needs `libfaketimeMT.so.1` (`apt-get install faketime`, done by .ci/run;
//! `RAFTCACHE_LIBFAKETIME` overrides the path). Without it the test is
//! skipped locally with a printed reason, and fails when `CI` is set.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    converged_digest, libfaketime_or_skip, role, set_clock_offset, wait_for, Cluster, Node,
};

/// Lifetimes may be shortened by at most the skew bound (1 s by default)
/// plus read latency; keys must be visible until then.
const EARLY_MARGIN: Duration = Duration::from_millis(1500);
/// And gone by this much after their lifetime (replication and failover
/// delays make the replicated clock lag a little, never run ahead).
const LATE_MARGIN: Duration = Duration::from_secs(4);
/// How long a new leader may take to accept writes.
const SETTLE: Duration = Duration::from_secs(30);
use common::CALM_ELECTIONS as CALM;

fn fake_file(node: &Node) -> PathBuf {
    node.dir
        .parent()
        .unwrap()
        .join(format!("faketime-{}", node.id))
}

fn real_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Wait until `node`'s TIME says real time + `offset_s` (the fault is real).
fn wait_time_offset(node: &Node, offset_s: i64) {
    wait_for(
        &format!("node {} TIME to be {offset_s:+} s off", node.id),
        Duration::from_secs(20),
        || {
            let (secs, _): (String, String) = redis::cmd("TIME").query(&mut node.conn()).ok()?;
            let off = secs.parse::<i64>().ok()? - real_secs();
            (off.abs_diff(offset_s) <= 2).then_some(())
        },
    );
}

/// A key and what the client asked for: live for `ttl` after `sent`
/// (None: no TTL, must always be there).
struct Tracked {
    ttl: Option<Duration>,
    sent: Instant,
    seen_gone: bool,
}

#[derive(Default)]
struct Keys(HashMap<String, Tracked>);

impl Keys {
    /// SET with PX (or none) and, in the same pipeline, GET and PTTL: an
    /// acknowledged write must be readable at once with a sane TTL.
    fn write(&mut self, leader: &Node, key: String, ttl_ms: Option<u64>) {
        let mut c = leader.conn();
        let mut p = redis::pipe();
        p.cmd("SET").arg(&key).arg("v");
        if let Some(ms) = ttl_ms {
            p.arg("PX").arg(ms);
        }
        p.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let sent = Instant::now();
        let (ok, got, pttl): (String, Option<String>, i64) = p.query(&mut c).unwrap();
        assert_eq!(ok, "OK");
        assert_eq!(got.as_deref(), Some("v"), "{key} acknowledged but missing");
        match ttl_ms {
            Some(ms) => assert!(
                pttl > 0 && pttl as u64 <= ms,
                "{key}: PTTL {pttl} for PX {ms}"
            ),
            None => assert_eq!(pttl, -1, "{key}"),
        }
        let ttl = ttl_ms.map(Duration::from_millis);
        self.0.insert(
            key,
            Tracked {
                ttl,
                sent,
                seen_gone: false,
            },
        );
    }

    /// Keys with 3-10 s lifetimes, and as many without a TTL.
    fn write_batch(&mut self, leader: &Node, prefix: &str) {
        for i in 0..8u64 {
            self.write(leader, format!("{prefix}:ttl:{i}"), Some(3000 + i * 1000));
            self.write(leader, format!("{prefix}:plain:{i}"), None);
        }
    }

    /// One linearizable read of every key on the leader, checked against
    /// what the client asked for.
    fn check(&mut self, leader: &Node) {
        let mut c = leader.conn();
        for (key, t) in self.0.iter_mut() {
            let before = t.sent.elapsed();
            let got: Option<String> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
            let after = t.sent.elapsed();
            match (t.ttl, got.is_some()) {
                (None, present) => assert!(present, "{key} (no TTL) is missing"),
                (Some(ttl), false) => {
                    assert!(
                        after + EARLY_MARGIN >= ttl,
                        "{key} expired early: gone {after:?} after SET PX {ttl:?}"
                    );
                    t.seen_gone = true;
                }
                (Some(ttl), true) => {
                    assert!(!t.seen_gone, "{key} reappeared after it expired");
                    assert!(
                        before <= ttl + LATE_MARGIN,
                        "{key} still there {before:?} after SET PX {ttl:?}"
                    );
                }
            }
        }
    }

    /// Check repeatedly until every TTL key's lifetime (and margin) is over.
    fn check_until_all_expired(&mut self, leader: &Node) {
        let end = self
            .0
            .values()
            .filter_map(|t| Some(t.sent + t.ttl? + LATE_MARGIN))
            .max()
            .unwrap();
        while Instant::now() < end + Duration::from_millis(500) {
            self.check(leader);
            std::thread::sleep(Duration::from_millis(200));
        }
        self.check(leader);
        assert!(
            self.0.values().all(|t| t.ttl.is_none() || t.seen_gone),
            "every TTL key must have expired"
        );
    }

    /// Keys with over `slack` of their lifetime left are visible in a
    /// READONLY (local) read on `node`, once it has applied them.
    fn live_on_follower(&self, node: &Node, slack: Duration) {
        let mut c = node.conn();
        redis::cmd("READONLY").query::<()>(&mut c).unwrap();
        for (key, t) in &self.0 {
            let live = t.ttl.is_none_or(|ttl| t.sent.elapsed() + slack < ttl);
            if live {
                let got: Option<String> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
                assert!(got.is_some(), "{key} hidden on node {}", node.id);
            }
        }
    }
}

/// `CLUSTER FAILOVER` on node `want` (leader transfer), until it leads and
/// accepts writes (a leader elected a moment ago may answer CLUSTERDOWN
/// until its term settles).
fn hand_over(cluster: &Cluster, want: usize) {
    let node = &cluster.nodes[want];
    redis::cmd("CLUSTER")
        .arg("FAILOVER")
        .query::<()>(&mut node.conn())
        .unwrap();
    wait_for(&format!("node {} to lead", node.id), SETTLE, || {
        (role(node).as_deref() == Some("master")).then_some(())
    });
    let mut c = node.conn();
    wait_for(
        &format!("node {} to accept writes", node.id),
        SETTLE,
        || {
            redis::cmd("SET")
                .arg("settled")
                .arg(node.id)
                .query::<()>(&mut c)
                .ok()
        },
    );
}

/// Three nodes, each with libfaketime preloaded and its clock file at +0;
/// None (skip) when the library is missing outside CI.
fn faked_cluster(test: &str) -> Option<Cluster> {
    let lib = libfaketime_or_skip(test)?;
    let cluster = Cluster::start_with(3, CALM, |n| {
        let file = fake_file(n);
        n.fake_wall_clock(&lib, &file);
    });
    wait_time_offset(&cluster.nodes[cluster.leader()], 0);
    Some(cluster)
}

fn assert_logged(node: &Node, what: &str) {
    assert!(
        node.log_text().contains(what),
        "node {} must log {what:?} (and ignore its clock)",
        node.id
    );
}

#[test]
fn leader_clock_jump_expires_nothing_early() {
    let Some(cluster) = faked_cluster("leader_clock_jump_expires_nothing_early") else {
        return;
    };
    let first = cluster.leader();
    let leader = &cluster.nodes[first];
    let mut keys = Keys::default();
    keys.write_batch(leader, "before");
    // +1 h on the leader: its wall clock must not move the replicated one.
    set_clock_offset(&fake_file(leader), "+3600");
    wait_time_offset(leader, 3600);
    keys.write_batch(leader, "jumped");
    keys.check(leader);
    assert_logged(leader, "wall clock is ahead of the replicated clock");
    // Still an hour ahead, it hands over and follows: its local (READONLY)
    // reads must still show every live key.
    let next = (first + 1) % 3;
    hand_over(&cluster, next);
    converged_digest(&cluster.nodes, Duration::from_secs(60));
    keys.live_on_follower(leader, Duration::from_secs(2));
    keys.check_until_all_expired(&cluster.nodes[next]);
    converged_digest(&cluster.nodes, Duration::from_secs(60));
}

#[test]
fn failover_to_a_slow_clock_loses_and_revives_nothing() {
    let Some(cluster) = faked_cluster("failover_to_a_slow_clock_loses_and_revives_nothing") else {
        return;
    };
    let first = cluster.leader();
    let next = (first + 1) % 3;
    let (leader, successor) = (&cluster.nodes[first], &cluster.nodes[next]);
    set_clock_offset(&fake_file(successor), "-5");
    wait_time_offset(successor, -5);
    let mut keys = Keys::default();
    keys.write_batch(leader, "before");
    // Some keys expire under the old leader: they must stay gone.
    while !keys.0.values().any(|t| t.seen_gone) {
        keys.check(leader);
        std::thread::sleep(Duration::from_millis(200));
    }
    hand_over(&cluster, next);
    keys.write_batch(successor, "slow");
    keys.check(successor);
    // The old leader now follows: its local reads show every live key.
    converged_digest(&cluster.nodes, Duration::from_secs(60));
    keys.live_on_follower(leader, Duration::from_secs(2));
    keys.check_until_all_expired(successor);
    assert_logged(successor, "wall clock is behind the replicated clock");
    converged_digest(&cluster.nodes, Duration::from_secs(60));
}
