//! Node and cluster identity (docs/membership.md), on real processes: a
//! wiped node is a new node — it never votes, is never replicated to and
//! never rejoins as the member it was until that member is removed; a
//! wiped seed does not found a new cluster; a node of another cluster is
//! refused on the bus; and every member has a client address, so redirects
//! and CLUSTER replies never show an empty one.

mod common;

use std::time::{Duration, Instant};

use common::{role, wait_for, Cluster, Node};
use redis::Commands;

fn myid(node: &Node) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut node.conn())
        .unwrap()
}

/// First line of the reply to a raw inline command (up to 10 s; "" if
/// the node closes or stays silent that long).
fn reply(node: &Node, line: &str) -> String {
    use std::io::{BufRead, BufReader, Write};
    let Ok(mut s) = std::net::TcpStream::connect(node.addr()) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    if s.write_all(format!("{line}\r\n").as_bytes()).is_err() {
        return String::new();
    }
    let mut first = String::new();
    let _ = BufReader::new(s).read_line(&mut first);
    first.trim_end().to_string()
}

/// SET through whichever of `nodes` leads, retrying across elections (a
/// loaded machine can lose a heartbeat or two).
fn write(nodes: &[&Node], key: &str, value: &str) {
    let line = format!("SET {key} {value}");
    wait_for(
        &format!("{line} to be acknowledged"),
        Duration::from_secs(60),
        || nodes.iter().any(|n| reply(n, &line) == "+OK").then_some(()),
    );
}

/// `cluster-id` of `RAFTCACHE STATUS` (None on a node not yet added).
fn cluster_id(node: &Node) -> Option<String> {
    let status: Vec<redis::Value> = redis::cmd("RAFTCACHE")
        .arg("STATUS")
        .query(&mut node.conn())
        .unwrap();
    let at = status
        .chunks(2)
        .find(|kv| text_of(&kv[0]) == "cluster-id")
        .expect("cluster-id in RAFTCACHE STATUS");
    redis::from_redis_value(&at[1]).unwrap()
}

fn cmd_ok(node: &Node, args: &[&str]) -> Result<(), String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let mut con = node.conn();
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    cmd.query::<()>(&mut con).map_err(|e| e.to_string())
}

/// An admin command run on whichever of `nodes` leads (followers refuse
/// membership changes), retried across elections.
fn on_leader(nodes: &[&Node], args: &[&str]) {
    wait_for(
        &format!("{args:?} on the leader"),
        Duration::from_secs(60),
        || nodes.iter().any(|n| cmd_ok(n, args).is_ok()).then_some(()),
    );
}

fn wait_log(node: &Node, what: &str, needle: &str) {
    wait_log_or_dump(node, what, needle, &[]);
}

/// `wait_log`, and on timeout show the end of `node`'s log and of `also`'s.
fn wait_log_or_dump(node: &Node, what: &str, needle: &str, also: &[&Node]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !node.log_text().contains(needle) {
        if Instant::now() > deadline {
            let tails: Vec<String> = std::iter::once(node)
                .chain(also.iter().copied())
                .map(|n| {
                    let log = n.log_text();
                    let tail = &log[log.len().saturating_sub(6000)..];
                    format!("--- node {} log ends:\n{tail}", n.id)
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", tails.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// For `window`, check at every poll that `bad` does not hold.
fn never_during(window: Duration, what: &str, mut bad: impl FnMut() -> bool) {
    let end = Instant::now() + window;
    while Instant::now() < end {
        assert!(!bad(), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Read `key` on `node` (READONLY), polling until it has applied it.
fn wait_value(node: &Node, key: &str, want: &str) {
    let mut ro = node.conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    wait_for(
        &format!("{key}={want} on node {}", node.id),
        Duration::from_secs(60),
        || {
            ro.get::<_, Option<String>>(key)
                .ok()
                .flatten()
                .filter(|v| v == want)
        },
    );
}

/// The audit scenario: k is committed on A and C while B is stopped; C is
/// wiped and restarted with the same id; A goes down; B comes back. B lacks
/// k, so B must not win an election with C's vote — and k survives.
#[test]
fn wiped_voter_cannot_elect_a_leader_that_lacks_a_committed_write() {
    let mut c = Cluster::start(3, &[]);
    let a = c.leader();
    let (b, cc) = ((a + 1) % 3, (a + 2) % 3);
    let c_name = myid(&c.nodes[cc]);
    let a_addr = c.nodes[a].join_addr();

    // B must know itself a voter before it is stopped (on a loaded machine
    // it may not have applied its promotion yet, and a learner never
    // campaigns, which would make the check below vacuous).
    for node in &c.nodes {
        wait_for(
            "every node to see 3 voters",
            Duration::from_secs(60),
            || {
                let info: String = redis::cmd("INFO")
                    .arg("raft")
                    .query(&mut node.conn())
                    .ok()?;
                let voters = info.lines().find_map(|l| l.strip_prefix("raft_voters:"))?;
                let settled = info.lines().any(|l| l.trim() == "raft_joint_config:0");
                (voters.trim().split(',').count() == 3 && settled).then_some(())
            },
        );
    }
    c.nodes[b].signal("STOP");
    // B is stopped, so an acknowledgement means k is on A and on C.
    write(&[&c.nodes[a], &c.nodes[cc]], "k", "committed-on-a-and-c");

    c.nodes[a].kill9();
    c.nodes[cc].kill9();
    std::fs::remove_dir_all(&c.nodes[cc].dir).unwrap();
    c.nodes[cc].join = Some(a_addr);
    c.nodes[cc].start();
    c.nodes[b].signal("CONT");

    // B (term and log of before the write) asks the wiped C for votes; C
    // has a new name, so it refuses B's bus connection outright.
    let b_id = c.nodes[b].id;
    never_during(
        Duration::from_secs(8),
        "B won an election with the wiped node's vote",
        || role(&c.nodes[b]).as_deref() == Some("master"),
    );
    wait_log_or_dump(
        &c.nodes[cc],
        "the wiped node to refuse B on the bus",
        &format!("refusing bus peer node {b_id}:"),
        &[&c.nodes[b]],
    );
    assert!(
        c.nodes[cc]
            .log_text()
            .contains(&format!("knows node {} as {c_name}", c.nodes[cc].id)),
        "the refusal names the old identity"
    );

    // A returns: it leads (B lacks k) and k is there. The first answer from
    // a leader decides; errors (no leader yet, MOVED) are retried.
    c.nodes[a].start();
    let got = wait_for(
        "a leader among A and B to answer GET k",
        Duration::from_secs(60),
        || {
            [a, b]
                .into_iter()
                .find_map(|i| c.nodes[i].conn().get::<_, Option<String>>("k").ok())
        },
    );
    assert_eq!(got.as_deref(), Some("committed-on-a-and-c"));

    // The wiped node's JOIN is refused while the old member exists ...
    wait_log(
        &c.nodes[cc],
        "the leader to refuse the wiped node's JOIN",
        &format!("is a member as {c_name}"),
    );
    // ... and accepted once it is removed: a fresh learner, then a voter.
    on_leader(&[&c.nodes[a], &c.nodes[b]], &["CLUSTER", "FORGET", &c_name]);
    c.wait_members(3);
    wait_value(&c.nodes[cc], "k", "committed-on-a-and-c");
    assert_ne!(myid(&c.nodes[cc]), c_name, "the wiped node has a new name");
}

/// A node that lost its raft log but kept its name files (a partial wipe)
/// is a new node too: new name, and the members' connections, made to the
/// old name, are refused.
#[test]
fn node_that_lost_only_its_raft_log_gets_a_new_name() {
    let mut c = Cluster::start(3, &[]);
    let l = c.leader();
    let f = (l + 1) % 3;
    let old = myid(&c.nodes[f]);
    c.nodes[f].kill9();
    std::fs::remove_dir_all(c.nodes[f].dir.join("raft-log")).unwrap();
    c.nodes[f].start();
    let new = myid(&c.nodes[f]);
    assert_ne!(new, old, "a node without its raft log kept its name");
    wait_log(
        &c.nodes[f],
        "the partially wiped node to refuse the leader",
        &format!("knows node {} as {old}", c.nodes[f].id),
    );
    write(&[&c.nodes[l], &c.nodes[(l + 2) % 3]], "still", "serving");
}

/// A wiped seed restarted without --join (and without choosing to
/// bootstrap) must not found a one-node cluster that acknowledges writes.
#[test]
fn wiped_seed_without_join_does_not_found_a_new_cluster() {
    let mut c = Cluster::start(3, &[]);
    let old = myid(&c.nodes[0]);
    c.nodes[0].kill9();
    std::fs::remove_dir_all(&c.nodes[0].dir).unwrap();
    // The seed's command line minus the once-only `--cluster-bootstrap
    // yes` that created the cluster: `auto`, the default.
    c.nodes[0].extra = vec!["--cluster-bootstrap".into(), "auto".into()];
    c.nodes[0].start();
    never_during(
        Duration::from_secs(5),
        "the wiped seed acknowledged a write",
        || reply(&c.nodes[0], "SET lost 1").starts_with('+'),
    );
    wait_log(
        &c.nodes[0],
        "the wiped seed to say why it is not bootstrapping",
        "NOT creating a new cluster",
    );
    assert_eq!(
        reply(&c.nodes[0], "SET lost 1"),
        "-CLUSTERDOWN The cluster is down"
    );

    // The other two keep serving, and refuse nothing of theirs to it: the
    // wiped seed refuses their leader, which knows node 1 by its old name.
    write(&[&c.nodes[1], &c.nodes[2]], "after-wipe", "yes");
    wait_log(
        &c.nodes[0],
        "the wiped seed to refuse the old membership's leader",
        &format!("knows node 1 as {old}"),
    );

    assert_eq!(
        cluster_id(&c.nodes[0]),
        None,
        "the wiped seed has no cluster"
    );
    // Recovery, as documented: forget the old member, meet the new one.
    let rest = [&c.nodes[1], &c.nodes[2]];
    on_leader(&rest, &["CLUSTER", "FORGET", &old]);
    let port = c.nodes[0].port.to_string();
    let bus_port = c.nodes[0].bus_port.to_string();
    on_leader(&rest, &["CLUSTER", "MEET", "127.0.0.1", &port, &bus_port]);
    c.wait_members(3);
    wait_value(&c.nodes[0], "after-wipe", "yes");
    assert_eq!(cluster_id(&c.nodes[0]), cluster_id(&c.nodes[1]));
}

/// A node of another cluster that reaches this cluster's bus (here: the
/// other cluster's leader was told to add one of ours as a learner, so it
/// replicates to it with the same raft ids and terms) is refused, and
/// this cluster's data and service are untouched.
#[test]
fn node_of_another_cluster_is_refused_on_the_bus() {
    let c = Cluster::start(3, &[]);
    let l = c.leader();
    let victim = (l + 1) % 3;
    let ours: Vec<&Node> = c.nodes.iter().collect();
    write(&ours, "mine", "before");

    let other = Cluster::single(&[]);
    // One cluster id per cluster: created by the seed, adopted on joining.
    let ids: Vec<Option<String>> = c.nodes.iter().map(cluster_id).collect();
    assert!(
        ids[0].is_some() && ids.iter().all(|i| *i == ids[0]),
        "{ids:?}"
    );
    let theirs = cluster_id(&other.nodes[0]);
    assert!(
        theirs.is_some() && theirs != ids[0],
        "{theirs:?} vs {ids:?}"
    );
    let victim_addr = c.nodes[victim].join_addr();
    let victim_id = c.nodes[victim].id.to_string();
    cmd_ok(
        &other.nodes[0],
        &["RAFTCACHE", "ADD-LEARNER", &victim_id, &victim_addr],
    )
    .unwrap();
    assert_eq!(reply(&other.nodes[0], "SET theirs x"), "+OK");
    wait_log(
        &c.nodes[victim],
        "the victim to refuse the other cluster's leader",
        "is of another cluster",
    );

    write(&ours, "mine", "after");
    wait_value(&c.nodes[victim], "mine", "after");
    // Same data on every node of this cluster at the same applied index.
    wait_for("identical digests", Duration::from_secs(60), || {
        let d = common::digests_on(&c.nodes);
        d.windows(2).all(|w| w[0] == w[1]).then_some(())
    });
    let mut ro = c.nodes[victim].conn();
    let _: () = redis::cmd("READONLY").query(&mut ro).unwrap();
    let theirs: Option<String> = ro.get("theirs").unwrap();
    assert_eq!(theirs, None, "the other cluster's write reached this one");
}

fn array<'a>(v: &'a redis::Value, what: &str) -> &'a [redis::Value] {
    match v {
        redis::Value::Array(items) => items,
        other => panic!("{what}: expected an array, got {other:?}"),
    }
}

fn text_of(v: &redis::Value) -> String {
    redis::from_redis_value(v).unwrap()
}

/// "host:port" of every node in a CLUSTER SLOTS reply.
fn slots_addrs(v: &redis::Value) -> Vec<String> {
    let mut out = Vec::new();
    for range in array(v, "CLUSTER SLOTS") {
        for node in &array(range, "slot range")[2..] {
            let f = array(node, "slot range node");
            out.push(format!("{}:{}", text_of(&f[0]), text_of(&f[1])));
        }
    }
    out
}

/// "ip:port" of every node in a CLUSTER SHARDS reply (RESP2: maps are
/// flat key/value arrays); `endpoint` must equal `ip`.
fn shards_addrs(v: &redis::Value) -> Vec<String> {
    let field = |pairs: &[redis::Value], name: &str| -> String {
        pairs
            .chunks(2)
            .find(|kv| text_of(&kv[0]) == name)
            .map(|kv| match &kv[1] {
                redis::Value::Array(_) => String::new(),
                v => text_of(v),
            })
            .unwrap_or_else(|| panic!("no {name} in {pairs:?}"))
    };
    let mut out = Vec::new();
    for shard in array(v, "CLUSTER SHARDS") {
        let pairs = array(shard, "shard");
        let nodes = pairs
            .chunks(2)
            .find(|kv| text_of(&kv[0]) == "nodes")
            .map(|kv| array(&kv[1], "shard nodes"))
            .expect("nodes in shard");
        for node in nodes {
            let p = array(node, "shard node");
            assert_eq!(field(p, "ip"), field(p, "endpoint"));
            out.push(format!("{}:{}", field(p, "ip"), field(p, "port")));
        }
    }
    out
}

/// A learner added with RAFTCACHE ADD-LEARNER and then promoted has a
/// client address: when it leads, followers redirect to it, and no CLUSTER
/// reply shows an empty address.
#[test]
fn learner_added_by_address_is_redirectable_when_it_leads() {
    let c = Cluster::single(&[]);
    let root = tempfile::tempdir().unwrap();
    let mut n2 = Node::new(2, root.path());
    n2.extra = vec!["--cluster-bootstrap".into(), "no".into()];
    n2.start();
    let n1 = &c.nodes[0];
    cmd_ok(n1, &["RAFTCACHE", "ADD-LEARNER", "2", &n2.join_addr()]).unwrap();
    wait_for("node 2 to be promoted", Duration::from_secs(60), || {
        cmd_ok(n1, &["RAFTCACHE", "PROMOTE", "2"]).ok()
    });
    let nodes = [c.nodes.first().unwrap(), &n2];
    wait_for("node 2 to lead", Duration::from_secs(60), || {
        if role(&n2).as_deref() == Some("master") {
            return Some(());
        }
        let _ = cmd_ok(n1, &["RAFTCACHE", "TRANSFER", "2"]);
        None
    });
    wait_for("node 1 to follow node 2", Duration::from_secs(30), || {
        (role(n1).as_deref() == Some("slave")).then_some(())
    });
    assert!(cluster_id(n1).is_some());
    assert_eq!(
        cluster_id(&n2),
        cluster_id(n1),
        "the learner adopted the cluster id"
    );

    let mut expected = vec![n1.addr(), n2.addr()];
    expected.sort();
    // CLUSTER KEYSLOT k = 7629. (CLUSTERDOWN while an election caused by
    // load settles is retried; any redirect must name node 2.)
    let moved = wait_for("node 1 to redirect", Duration::from_secs(60), || {
        Some(reply(n1, "SET k v")).filter(|r| !r.starts_with("-CLUSTERDOWN"))
    });
    assert_eq!(moved, format!("-MOVED 7629 {}", n2.addr()));
    for node in nodes {
        let mut con = node.conn();
        // Empty while a node knows no leader; then it must list both.
        let slots = wait_for(
            "CLUSTER SLOTS with a leader",
            Duration::from_secs(60),
            || {
                let v: redis::Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut con).unwrap();
                (!array(&v, "CLUSTER SLOTS").is_empty()).then_some(v)
            },
        );
        let mut got = slots_addrs(&slots);
        got.sort();
        assert_eq!(got, expected, "CLUSTER SLOTS on node {}", node.id);
        let shards: redis::Value = redis::cmd("CLUSTER").arg("SHARDS").query(&mut con).unwrap();
        let mut got = shards_addrs(&shards);
        got.sort();
        assert_eq!(got, expected, "CLUSTER SHARDS on node {}", node.id);
        let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut con).unwrap();
        let mut got: Vec<String> = text
            .lines()
            .map(|l| {
                let addr = l.split(' ').nth(1).unwrap();
                addr.split('@').next().unwrap().to_string()
            })
            .collect();
        got.sort();
        assert_eq!(got, expected, "CLUSTER NODES on node {}:\n{text}", node.id);
    }
}
