//! Node health in CLUSTER NODES/SHARDS/SLOTS: a follower that stops
//! answering is flagged `fail?` then `fail` (and `disconnected`) by the
//! leader, its SHARDS health turns `fail`, CLUSTER SLOTS leaves it out, and
//! all of it clears once it answers again.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{wait_for, Cluster, Node};

/// The reply of a CLUSTER subcommand on `node`, if it answers.
fn cluster(node: &Node, sub: &str) -> Option<redis::Value> {
    redis::cmd("CLUSTER")
        .arg(sub)
        .query(&mut node.try_conn()?)
        .ok()
}

fn text(v: &redis::Value) -> String {
    redis::from_redis_value(v).unwrap_or_else(|e| panic!("not text: {v:?}: {e}"))
}

fn array(v: &redis::Value) -> &[redis::Value] {
    match v {
        redis::Value::Array(a) => a,
        v => panic!("not an array: {v:?}"),
    }
}

/// The CLUSTER NODES line of the node listening on `port`, split in fields.
fn nodes_line(nodes: &str, port: u16) -> Vec<String> {
    let needle = format!(":{port}@");
    let line = nodes
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no line for port {port} in\n{nodes}"));
    line.split(' ').map(str::to_string).collect()
}

/// `(port, health)` of every node in CLUSTER SHARDS (RESP2: flat maps).
fn shards_health(v: &redis::Value) -> Vec<(u16, String)> {
    let field = |pairs: &[redis::Value], name: &str| -> String {
        pairs
            .chunks(2)
            .find(|kv| text(&kv[0]) == name)
            .map(|kv| text(&kv[1]))
            .unwrap_or_else(|| panic!("no {name} in {pairs:?}"))
    };
    let mut out = Vec::new();
    for shard in array(v) {
        let pairs = array(shard);
        let nodes = pairs
            .chunks(2)
            .find(|kv| text(&kv[0]) == "nodes")
            .map(|kv| array(&kv[1]))
            .expect("nodes in shard");
        for n in nodes {
            let p = array(n);
            out.push((field(p, "port").parse().unwrap(), field(p, "health")));
        }
    }
    out
}

/// Ports listed by CLUSTER SLOTS, in order.
fn slots_ports(v: &redis::Value) -> Vec<u16> {
    let ranges = array(v);
    assert_eq!(ranges.len(), 1, "{v:?}");
    array(&ranges[0])[2..]
        .iter()
        .map(|n| text(&array(n)[1]).parse().unwrap())
        .collect()
}

fn flags(line: &[String]) -> Vec<&str> {
    line[2].split(',').collect()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Everything healthy on the leader: no failure flags, every link
/// `connected`, a recent pong-recv for each follower, all three in SLOTS
/// and `online` in SHARDS. `Some(leader index)` once so.
fn all_healthy(c: &Cluster) -> Option<usize> {
    let l = c.try_leader()?;
    let leader = &c.nodes[l];
    let nodes = text(&cluster(leader, "NODES")?);
    for n in &c.nodes {
        let line = nodes_line(&nodes, n.port);
        let fl = flags(&line);
        if fl.iter().any(|f| f.starts_with("fail")) || line[7] != "connected" {
            return None;
        }
        let (ping, pong): (u64, u64) = (line[4].parse().unwrap(), line[5].parse().unwrap());
        if n.port == leader.port {
            assert!(fl.contains(&"myself") && fl.contains(&"master"), "{nodes}");
            assert_eq!((ping, pong), (0, 0), "myself: {nodes}");
        } else {
            // A live follower: no ping outstanding, a pong within the
            // last minute (unix ms; wall clock).
            assert_eq!(ping, 0, "{nodes}");
            assert!(
                pong.abs_diff(unix_ms()) < 60_000,
                "pong-recv {pong} is not a recent unix ms: {nodes}"
            );
        }
    }
    let health = shards_health(&cluster(leader, "SHARDS")?);
    if health.len() != 3 || health.iter().any(|(_, h)| h != "online") {
        return None;
    }
    let ports = slots_ports(&cluster(leader, "SLOTS")?);
    (ports.len() == 3 && ports[0] == leader.port).then_some(l)
}

#[test]
fn a_silent_follower_is_flagged_left_out_of_slots_and_recovers() {
    let c = Cluster::start(3, &[]);
    let l = wait_for("a healthy cluster", Duration::from_secs(30), || {
        all_healthy(&c)
    });
    // Live followers stay healthy for longer than link_timeout (4 s here):
    // heartbeat acks keep their ack times fresh, not just log appends.
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let nodes = text(&cluster(&c.nodes[l], "NODES").expect("leader answers"));
        assert!(!nodes.contains("fail"), "a live follower flagged:\n{nodes}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let f = (l + 1) % 3;
    let g = (l + 2) % 3;
    let fport = c.nodes[f].port;

    // Pause the follower: the leader stops hearing from it. With the test
    // cluster's 2 s election timeout it is `fail?` after 2 s and `fail`
    // after 4 s (link_timeout); the leader is not affected.
    c.nodes[f].signal("STOP");
    let paused = std::time::Instant::now();
    let mut saw_pfail = false;
    let (l, line) = wait_for(
        "the leader to flag the paused follower `fail`",
        Duration::from_secs(30),
        || {
            let l = c.try_leader()?;
            let nodes = text(&cluster(&c.nodes[l], "NODES")?);
            let line = nodes_line(&nodes, fport);
            let fl = flags(&line);
            if fl.contains(&"fail?") {
                saw_pfail = true;
                // PFAIL: still connected (the link is down at link_timeout).
                assert!(!fl.contains(&"fail"), "{nodes}");
            }
            fl.contains(&"fail").then_some((l, line))
        },
    );
    assert!(saw_pfail, "`fail?` was never shown before `fail`");
    assert!(
        // link_timeout (4 s) after the last ack, which came shortly before
        // the pause.
        paused.elapsed() >= Duration::from_secs(3),
        "`fail` after {:?}, well before link_timeout",
        paused.elapsed()
    );
    assert_eq!(line[7], "disconnected", "{line:?}");
    let (ping, pong): (u64, u64) = (line[4].parse().unwrap(), line[5].parse().unwrap());
    assert!(
        pong > 0 && ping == pong,
        "ping outstanding since the last pong: {line:?}"
    );
    assert!(
        unix_ms().saturating_sub(pong) >= 3_000,
        "pong-recv must be the last ack, seconds ago: {line:?}"
    );
    let leader = &c.nodes[l];
    // SHARDS: failed node listed with health `fail`, the others online.
    let health = shards_health(&cluster(leader, "SHARDS").unwrap());
    assert_eq!(health.len(), 3, "{health:?}");
    for (port, h) in &health {
        let want = if *port == fport { "fail" } else { "online" };
        assert_eq!(h, want, "{health:?}");
    }
    // SLOTS: the failed replica is left out; the leader is first.
    let ports = slots_ports(&cluster(leader, "SLOTS").unwrap());
    assert_eq!(ports, vec![leader.port, c.nodes[g].port], "CLUSTER SLOTS");
    // CLUSTER INFO: one shard whose master is the live leader: ok.
    let info = text(&cluster(leader, "INFO").unwrap());
    for want in [
        "cluster_state:ok",
        "cluster_slots_ok:16384",
        "cluster_slots_pfail:0",
        "cluster_slots_fail:0",
        "cluster_known_nodes:3",
        "cluster_size:3",
    ] {
        assert!(info.contains(want), "{want} in\n{info}");
    }
    // The other follower has no link to the paused one: no failure flag
    // from it, and it still hears the leader.
    if l != g {
        let nodes = text(&cluster(&c.nodes[g], "NODES").unwrap());
        for port in [fport, leader.port] {
            let line = nodes_line(&nodes, port);
            assert!(
                !flags(&line).iter().any(|f| f.starts_with("fail")),
                "{nodes}"
            );
        }
    }

    // Resume it: it acks again, the flags clear and SLOTS lists it again.
    c.nodes[f].signal("CONT");
    wait_for(
        "the resumed follower to be healthy again",
        Duration::from_secs(30),
        || all_healthy(&c),
    );
}

#[test]
fn a_killed_follower_is_flagged_and_listed_again_after_restart() {
    let mut c = Cluster::start(3, &[]);
    let l = wait_for("a healthy cluster", Duration::from_secs(30), || {
        all_healthy(&c)
    });
    let f = (l + 1) % 3;
    let fport = c.nodes[f].port;
    c.nodes[f].kill9();
    wait_for(
        "the leader to flag the killed follower `fail`, out of SLOTS",
        Duration::from_secs(30),
        || {
            let leader = &c.nodes[c.try_leader()?];
            let nodes = text(&cluster(leader, "NODES")?);
            let line = nodes_line(&nodes, fport);
            let failed = flags(&line).contains(&"fail") && line[7] == "disconnected";
            let shard_fail = shards_health(&cluster(leader, "SHARDS")?)
                .iter()
                .any(|(p, h)| *p == fport && h == "fail");
            let ports = slots_ports(&cluster(leader, "SLOTS")?);
            (failed && shard_fail && ports.len() == 2 && !ports.contains(&fport)).then_some(())
        },
    );
    c.nodes[f].start();
    wait_for(
        "the restarted follower to be healthy again",
        Duration::from_secs(60),
        || all_healthy(&c),
    );
}
