//! Three real raftcache processes: formation by --join, redirects, real
//! cluster clients, failover, restarts, re-adding a wiped node, snapshot
//! catch-up and membership commands.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{raw_exchange, role, wait_for, Cluster};
use redis::Commands;

fn term(node: &common::Node) -> u64 {
    node.raft_u64("raft_term").unwrap()
}

#[test]
fn formation_redirects_and_cluster_replies() {
    let c = Cluster::start(3, &[]);
    let l = c.leader();
    let f = (l + 1) % 3;
    let leader = &c.nodes[l];
    let follower = &c.nodes[f];
    // A keyed command on a follower: MOVED with the key's real slot.
    let out = raw_exchange(
        &follower.addr(),
        b"SET somekey v\r\n",
        Duration::from_millis(300),
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("-MOVED 11058 {}\r\n", leader.addr())
    );
    // Keyless commands are answered by anyone.
    assert_eq!(
        raw_exchange(&follower.addr(), b"PING\r\n", Duration::from_millis(300)),
        b"+PONG\r\n"
    );
    // CLUSTER SLOTS: one range, leader first, then the two replicas.
    let mut con = follower.conn();
    type SlotRange = (i64, i64, Vec<(String, i64, String)>);
    let slots: Vec<SlotRange> = {
        let v: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).unwrap();
        let redis::Value::Array(ranges) = v else {
            panic!("{v:?}")
        };
        ranges
            .into_iter()
            .map(|r| {
                let redis::Value::Array(items) = r else {
                    panic!()
                };
                let start: i64 = redis::from_redis_value(&items[0]).unwrap();
                let end: i64 = redis::from_redis_value(&items[1]).unwrap();
                let nodes = items[2..]
                    .iter()
                    .map(|n| {
                        let redis::Value::Array(f) = n else { panic!() };
                        (
                            redis::from_redis_value(&f[0]).unwrap(),
                            redis::from_redis_value(&f[1]).unwrap(),
                            redis::from_redis_value(&f[2]).unwrap(),
                        )
                    })
                    .collect();
                (start, end, nodes)
            })
            .collect()
    };
    assert_eq!(slots.len(), 1);
    assert_eq!((slots[0].0, slots[0].1), (0, 16383));
    assert_eq!(slots[0].2.len(), 3);
    assert_eq!(slots[0].2[0].1, i64::from(leader.port), "leader first");
    assert!(slots[0].2.iter().all(|(_, _, id)| id.len() == 40));
    // CLUSTER NODES: one master with all slots, two slaves pointing at it.
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut con).unwrap();
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("master") && l.ends_with("0-16383"))
            .count(),
        1,
        "{nodes}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("slave")).count(),
        2,
        "{nodes}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("myself")).count(),
        1,
        "{nodes}"
    );
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap();
    assert!(
        info.contains("cluster_state:ok") && info.contains("cluster_size:3"),
        "{info}"
    );
    assert_eq!(
        follower.info("replication", "role").as_deref(),
        Some("slave")
    );
    assert_eq!(
        follower.info("replication", "master_port"),
        Some(leader.port.to_string())
    );
    assert_eq!(
        follower
            .info("replication", "master_link_status")
            .as_deref(),
        Some("up")
    );
    assert_eq!(
        leader.info("replication", "connected_slaves").as_deref(),
        Some("2")
    );
    assert_eq!(
        follower.info("cluster", "cluster_enabled").as_deref(),
        Some("1")
    );
    // A write on the leader is readable on a follower after READONLY.
    let _: () = leader.conn().set("rk", "rv").unwrap();
    let mut ro = follower.conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    wait_for("follower to apply", Duration::from_secs(30), || {
        ro.get::<_, Option<String>>("rk")
            .ok()?
            .filter(|v| v == "rv")
    });
    let _: () = redis::cmd("READWRITE").query(&mut ro).unwrap();
    let e = ro.get::<_, String>("rk").unwrap_err();
    assert_eq!(e.kind(), redis::ErrorKind::Moved);
}

#[test]
fn cluster_clients_and_redis_cli_follow_moved() {
    let c = Cluster::start(3, &[]);
    let l = c.leader();
    let f = (l + 1) % 3;
    // redis-cli -c against a follower lands the write on the leader.
    if common::tool_available(
        "redis-cli",
        "cluster::cluster_clients_and_redis_cli_follow_moved",
    ) {
        let out = Command::new("redis-cli")
            .args([
                "-c",
                "-p",
                &c.nodes[f].port.to_string(),
                "SET",
                "clikey",
                "v1",
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
        let got: String = c.nodes[l].conn().get("clikey").unwrap();
        assert_eq!(got, "v1");
    }
    // The redis crate's cluster client, seeded with a follower only.
    let client = redis::cluster::ClusterClient::new(vec![c.nodes[f].url()]).unwrap();
    let mut cc = client.get_connection().unwrap();
    for i in 0..200 {
        let _: () = cc.set(format!("ck{i}"), i).unwrap();
    }
    for i in 0..200 {
        assert_eq!(cc.get::<_, i64>(format!("ck{i}")).unwrap(), i);
    }
    let v: Vec<Option<i64>> = cc.mget(&["{t}a", "{t}b"]).unwrap();
    assert_eq!(v, vec![None, None]);
}

#[test]
fn redis_benchmark_against_the_leader_runs_clean() {
    if !common::tool_available(
        "redis-benchmark",
        "cluster::redis_benchmark_against_the_leader_runs_clean",
    ) {
        return;
    }
    let c = Cluster::start(3, &[]);
    let l = c.leader();
    let out = Command::new("redis-benchmark")
        .args([
            "-p",
            &c.nodes[l].port.to_string(),
            "-t",
            "set,get",
            "-n",
            "5000",
            "-c",
            "10",
            "-r",
            "1000",
            "-q",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    assert!(!text.to_lowercase().contains("error"), "{text}");
}

#[test]
fn leader_kill_9_then_new_leader_and_no_acked_write_lost() {
    let mut c = Cluster::start(3, &[]);
    let l = c.leader();
    let t0 = term(&c.nodes[l]);
    {
        let mut con = c.nodes[l].conn();
        for i in 0..500 {
            let _: () = con.set(format!("k{i}"), i).unwrap();
            let _: i64 = con.incr("ctr", 1).unwrap();
        }
    }
    c.nodes[l].kill9();
    let started = Instant::now();
    // The first write that a new leader acknowledges (a loaded machine may
    // hold a second election first: retry on whoever leads, as clients do).
    let nl = wait_for("a write on a new leader", Duration::from_secs(30), || {
        let nl = c.try_leader().filter(|n| *n != l)?;
        let _: () = c.nodes[nl].try_conn()?.set("after", "failover").ok()?;
        Some(nl)
    });
    eprintln!("failover took {:?}", started.elapsed());
    assert!(term(&c.nodes[nl]) > t0, "a new term was started");
    let (ctr, k499) = wait_for("reads on the leader", Duration::from_secs(30), || {
        let mut con = c.nodes[c.try_leader()?].try_conn()?;
        Some((
            con.get::<_, i64>("ctr").ok()?,
            con.get::<_, i64>("k499").ok()?,
        ))
    });
    assert_eq!(ctr, 500);
    assert_eq!(k499, 499);
    // The old leader comes back as a follower and catches up.
    c.nodes[l].start();
    wait_for(
        "old leader to rejoin as follower",
        Duration::from_secs(30),
        || (role(&c.nodes[l]).as_deref() == Some("slave")).then_some(()),
    );
    let mut ro = c.nodes[l].conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    wait_for("old leader to catch up", Duration::from_secs(30), || {
        ro.get::<_, Option<String>>("after")
            .ok()?
            .filter(|v| v == "failover")
    });
}

#[test]
fn kill_all_and_restart_keeps_every_acked_write() {
    let mut c = Cluster::start(3, &[]);
    let l = c.leader();
    {
        let mut con = c.nodes[l].conn();
        let mut pipe = redis::pipe();
        for i in 0..2000 {
            pipe.incr("ctr", 1).ignore();
            pipe.set(format!("k{i}"), i).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    for n in c.nodes.iter_mut() {
        n.kill9();
    }
    for n in c.nodes.iter_mut() {
        n.join = None;
        n.start();
    }
    // Right after a full restart leadership may still move once (each node
    // started at a different moment): read from whoever leads when asked,
    // as a cluster client would after -MOVED / -CLUSTERDOWN.
    let (ctr, n) = wait_for(
        "a read on the settled leader",
        Duration::from_secs(30),
        || {
            let mut con = c.nodes[c.try_leader()?].try_conn()?;
            let ctr: i64 = con.get("ctr").ok()?;
            let n: i64 = redis::cmd("DBSIZE").query(&mut con).ok()?;
            Some((ctr, n))
        },
    );
    assert_eq!(ctr, 2000);
    assert_eq!(n, 2001);
}

#[test]
fn wiped_node_is_re_added_and_catches_up_by_snapshot() {
    let mut c = Cluster::start(
        3,
        &[
            "--snapshot-logs-since-last",
            "200",
            "--max-in-snapshot-log-to-keep",
            "20",
        ],
    );
    let l = c.leader();
    let f = (l + 1) % 3;
    let old_name: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c.nodes[f].conn())
        .unwrap();
    c.nodes[f].kill9();
    // A wiped node is a new node: it may join only once the member it was
    // is removed (docs/membership.md; tests/identity.rs checks the refusal).
    let _: () = redis::cmd("CLUSTER")
        .arg("FORGET")
        .arg(&old_name)
        .query(&mut c.nodes[l].conn())
        .unwrap();
    {
        let mut con = c.nodes[l].conn();
        for i in 0..1000 {
            let _: () = con.set(format!("w{i}"), i).unwrap();
        }
    }
    std::fs::remove_dir_all(&c.nodes[f].dir).unwrap();
    c.nodes[f].join = Some(c.nodes[l].join_addr());
    c.nodes[f].start();
    let mut ro = c.nodes[f].conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    wait_for(
        "the wiped node to catch up",
        Duration::from_secs(30),
        || ro.get::<_, Option<i64>>("w999").ok()?.filter(|v| *v == 999),
    );
    let n: i64 = redis::cmd("DBSIZE").query(&mut ro).unwrap();
    assert_eq!(n, 1000);
    // Proof of the path taken: the leader's log no longer reached back to
    // the wiped node's empty log, so it installed a snapshot (a snapshot it
    // built itself would not count here).
    let installed = c.nodes[f].raft_u64("raft_snapshots_installed").unwrap();
    assert!(
        installed >= 1,
        "the wiped node caught up without installing a snapshot"
    );
    assert!(
        c.nodes[l].raft_u64("raft_purged_index").unwrap() > 0,
        "the leader never purged"
    );
    c.wait_members(3);
}

#[test]
fn cluster_failover_and_forget() {
    let c = Cluster::start(3, &[]);
    let l = c.leader();
    let f = (l + 1) % 3;
    // A transfer can be lost to an election on a loaded machine: ask again
    // every few seconds until f leads.
    let mut asked: Option<Instant> = None;
    wait_for("the follower to take over", Duration::from_secs(60), || {
        if role(&c.nodes[f]).as_deref() == Some("master") {
            return Some(());
        }
        if asked.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            asked = Some(Instant::now());
            let _: Option<()> = redis::cmd("CLUSTER")
                .arg("FAILOVER")
                .query(&mut c.nodes[f].try_conn()?)
                .ok();
        }
        None
    });
    // Forget the old leader (now a follower): the cluster shrinks to 2.
    let old_name: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c.nodes[l].conn())
        .unwrap();
    // Leadership may move again on a loaded machine: retry on whoever
    // leads, as an operator would. "Unknown node" after a retry means an
    // earlier try went through.
    wait_for(
        "CLUSTER FORGET to be accepted",
        Duration::from_secs(30),
        || {
            let leader = c.try_leader()?;
            let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
                .arg("FORGET")
                .arg(&old_name)
                .query(&mut c.nodes[leader].try_conn()?);
            match r {
                Ok(()) => Some(()),
                Err(e) if e.to_string().contains("Unknown node") => Some(()),
                Err(e) => {
                    eprintln!("CLUSTER FORGET on n{}: {e}", leader + 1);
                    None
                }
            }
        },
    );
    c.wait_members(2);
    // The removed node never acknowledges a write again.
    let out = raw_exchange(
        &c.nodes[l].addr(),
        b"SET gone 1\r\n",
        Duration::from_secs(2),
    );
    let text = String::from_utf8_lossy(&out);
    eprintln!("removed node answered {text:?}");
    // It points at the leader it last knew, or knows none any more.
    let moved = format!("-MOVED 11139 {}\r\n", c.nodes[f].addr()); // CLUSTER KEYSLOT gone
    assert!(
        text == moved || text == "-CLUSTERDOWN The cluster is down\r\n",
        "a removed node must refuse a write with {moved:?} or -CLUSTERDOWN: {text:?}"
    );
    let _: () = c.nodes[f].conn().set("still", "works").unwrap();
    // And the refused write is nowhere in the cluster.
    let gone: Option<String> = c.nodes[f].conn().get("gone").unwrap();
    assert_eq!(gone, None, "the write a removed node refused was applied");
}

#[test]
fn cluster_meet_adds_a_waiting_node() {
    let c = Cluster::start(1, &[]);
    let root = tempfile::tempdir().unwrap();
    let mut n2 = common::Node::new(2, root.path());
    n2.extra = vec!["--cluster-bootstrap".into(), "no".into()];
    n2.start();
    // Not a member of anything yet: no leader, keyed commands are refused.
    let out = wait_for("n2 to answer", Duration::from_secs(30), || {
        let out = raw_exchange(&n2.addr(), b"SET k v\r\n", Duration::from_millis(300));
        (!out.is_empty()).then_some(out)
    });
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-CLUSTERDOWN The cluster is down\r\n"
    );
    let mut con = c.nodes[0].conn();
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A wrong bus port is a clear error, soon: nothing listens there, or
    // what listens is not a raftcache bus (here: n2's client port).
    let nothing = common::free_port();
    for (bus, want) in [
        (
            nothing,
            format!("cannot reach the cluster bus at 127.0.0.1:{nothing}"),
        ),
        (n2.port, format!("127.0.0.1:{}", n2.port)),
    ] {
        let started = Instant::now();
        let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(n2.port)
            .arg(bus)
            .query(&mut con);
        let e = r
            .expect_err("CLUSTER MEET with a wrong bus port")
            .to_string();
        assert!(e.contains(&want), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "MEET with a wrong bus port took {:?}",
            started.elapsed()
        );
    }
    let _: () = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(n2.port)
        .arg(n2.bus_port)
        .query(&mut con)
        .unwrap();
    wait_for("n2 to follow the leader", Duration::from_secs(30), || {
        (role(&n2).as_deref() == Some("slave")).then_some(())
    });
    let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap();
    assert!(info.contains("cluster_size:2"), "{info}");
    let _: () = con.set("met", "yes").unwrap();
    let mut ro = n2.conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    wait_for("n2 to apply", Duration::from_secs(30), || {
        ro.get::<_, Option<String>>("met").ok()?
    });
}

/// CLUSTER FORGET sent to a leader the moment it is elected answers OK or
/// a Redis-style error (MOVED, CLUSTERDOWN, ERR in our words), never
/// openraft's text (it used to answer "-ERR has to forward request to:
/// None, None" while the new leader's first entry was not committed).
#[test]
fn cluster_forget_right_after_a_leader_change() {
    let mut c = Cluster::start(3, &[]);
    let l = c.leader();
    let old_name: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c.nodes[l].conn())
        .unwrap();
    c.nodes[l].kill9();
    let mut replies = Vec::new();
    wait_for(
        "CLUSTER FORGET on the new leader",
        Duration::from_secs(60),
        || {
            let nl = c.try_leader().filter(|n| *n != l)?;
            let mut con = c.nodes[nl].try_conn_within(Duration::from_secs(20))?;
            let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
                .arg("FORGET")
                .arg(&old_name)
                .query(&mut con);
            match r {
                Ok(()) => Some(()),
                Err(e) => {
                    let text = e.to_string();
                    replies.push(text.clone());
                    // Retried after a success that did not reach us.
                    text.contains("Unknown node").then_some(())
                }
            }
        },
    );
    for r in &replies {
        eprintln!("CLUSTER FORGET answered: {r}");
        for raw in [
            "forward request",
            "ForwardToLeader",
            "undergoing",
            "is not committed",
        ] {
            assert!(!r.contains(raw), "openraft text in a reply: {r}");
        }
        assert!(
            [
                "Moved",
                "MOVED",
                "ClusterDown",
                "CLUSTERDOWN",
                "ERR",
                "An error was signalled"
            ]
            .iter()
            .any(|k| r.contains(k)),
            "not a Redis-style error: {r}"
        );
    }
    c.wait_members(2);
}

/// A cluster whose clients need a password still forms, replicates and
/// fails over: nodes talk to each other on the bus, never through the
/// client port's AUTH (a node-to-node helper on the client port, without
/// AUTH, once kept such a cluster from forming at all).
#[test]
fn a_cluster_with_requirepass_forms_and_fails_over() {
    let mut c = Cluster::start(3, &["--requirepass", "cluster-pw"]);
    // Without the password: NOAUTH, even on the leader.
    let l = c.leader();
    assert_eq!(
        String::from_utf8_lossy(&raw_exchange(
            &c.nodes[l].addr(),
            b"SET k v\r\n",
            Duration::from_secs(2)
        )),
        "-NOAUTH Authentication required.\r\n"
    );
    let _: () = c.nodes[l].conn().set("before", "kill").unwrap();
    c.nodes[l].kill9();
    let nl = wait_for("a write on a new leader", Duration::from_secs(30), || {
        let nl = c.try_leader().filter(|n| *n != l)?;
        let _: () = c.nodes[nl].try_conn()?.set("after", "kill").ok()?;
        Some(nl)
    });
    let before: String = c.nodes[nl].conn().get("before").unwrap();
    assert_eq!(before, "kill");
    c.nodes[l].start();
    let mut ro = c.nodes[l].conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    wait_for(
        "the old leader to catch up",
        Duration::from_secs(30),
        || ro.get::<_, Option<String>>("after").ok()?,
    );
}
