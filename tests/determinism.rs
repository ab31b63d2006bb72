//! Apply is deterministic: nodes configured with different limits
//! (`proto-max-bulk-len`) still hold identical state at the same log index,
//! and a node with a smaller limit installs the leader's snapshot. The
//! limits a write is applied under travel in the log entry (see
//! docs/time.md, "Deterministic apply").

mod common;

use std::time::Duration;

use common::{converged_digest, info_field, wait_for, wait_members_on, Cluster, Node};

const MB: usize = 1 << 20;
use common::CALM_ELECTIONS as CALM;

fn limit_flag(node: &mut Node, bytes: usize) {
    node.extra
        .extend(["--proto-max-bulk-len".to_string(), bytes.to_string()]);
}

fn too_big(r: redis::RedisResult<i64>) -> bool {
    matches!(&r, Err(e) if e.to_string().contains("string exceeds maximum allowed size (proto-max-bulk-len)"))
}

/// APPEND and SETRANGE right at and just past the leader's 2 MB limit, on
/// a leader whose followers only allow 1 MB. Returns the leader connection.
fn grow_near_limit(leader: &Node) {
    let mut c = leader.conn();
    let chunk = vec![b'a'; MB / 2];
    for i in 1..=4 {
        let n: i64 = redis::cmd("APPEND")
            .arg("grown")
            .arg(&chunk[..])
            .query(&mut c)
            .unwrap();
        assert_eq!(n as usize, i * MB / 2);
    }
    assert!(
        too_big(redis::cmd("APPEND").arg("grown").arg("x").query(&mut c)),
        "APPEND past the leader's limit must fail"
    );
    let n: i64 = redis::cmd("SETRANGE")
        .arg("ranged")
        .arg(2 * MB - 1)
        .arg("z")
        .query(&mut c)
        .unwrap();
    assert_eq!(n as usize, 2 * MB);
    assert!(too_big(
        redis::cmd("SETRANGE")
            .arg("ranged")
            .arg(2 * MB)
            .arg("z")
            .query(&mut c)
    ));
    let n: i64 = redis::cmd("SETRANGE")
        .arg("mid")
        .arg(MB + MB / 2)
        .arg("y")
        .query(&mut c)
        .unwrap();
    assert_eq!(n as usize, MB + MB / 2 + 1);
}

#[test]
fn replicas_with_smaller_limits_stay_identical() {
    let cluster = Cluster::start_with(3, CALM, |n| {
        limit_flag(n, if n.id == 1 { 2 * MB } else { MB })
    });
    assert_eq!(cluster.leader(), 0, "node 1 (2 MB limit) must lead");
    grow_near_limit(&cluster.nodes[0]);
    let (applied, _) = converged_digest(&cluster.nodes, Duration::from_secs(60));
    assert!(applied > 0);
    // The followers hold the 2 MB value their own limit would not accept.
    let mut c = cluster.nodes[1].conn();
    redis::cmd("READONLY").query::<()>(&mut c).unwrap();
    let len: i64 = redis::cmd("STRLEN").arg("grown").query(&mut c).unwrap();
    assert_eq!(len as usize, 2 * MB);
}

#[test]
fn smaller_limit_node_installs_the_leaders_snapshot() {
    let mut cluster = Cluster::start_with(1, CALM, |n| {
        limit_flag(n, 2 * MB);
        n.extra.extend(
            [
                "--snapshot-logs-since-last",
                "5",
                "--max-in-snapshot-log-to-keep",
                "0",
            ]
            .map(String::from),
        );
    });
    grow_near_limit(&cluster.nodes[0]);
    let mut c = cluster.nodes[0].conn();
    for i in 0..20 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
    }
    // The big values are behind a snapshot and their entries are purged, so
    // a new member can only get them from the snapshot.
    wait_for("a snapshot and a purge", Duration::from_secs(60), || {
        let purged: u64 = info_field(&cluster.nodes[0], "raft", "raft_purged_index")?
            .parse()
            .ok()?;
        (purged > 10).then_some(())
    });
    let mut joiner = Node::new(2, cluster.root.path());
    joiner.extra = CALM.iter().map(|s| s.to_string()).collect();
    limit_flag(&mut joiner, MB);
    // Never builds a snapshot of its own, so one it has was installed.
    joiner
        .extra
        .extend(["--snapshot-logs-since-last", "1000000"].map(String::from));
    joiner.join = Some(cluster.nodes[0].join_addr());
    joiner.start();
    cluster.nodes.push(joiner);
    wait_members_on(&cluster.nodes, 2);
    converged_digest(&cluster.nodes, Duration::from_secs(60));
    let installed: u64 = info_field(&cluster.nodes[1], "raft", "raft_snapshot_index")
        .unwrap()
        .parse()
        .unwrap();
    assert!(installed > 0, "node 2 must have installed the snapshot");
}
