//! A single real node driven by real clients: the Rust `redis` crate and
//! `redis-cli`; expiry; restart durability after `kill -9`; snapshots.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{wait_for, Cluster};
use redis::Commands;

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[test]
fn strings_keys_and_expiry_with_the_redis_crate() {
    let c = Cluster::single(&[]);
    let mut con = c.nodes[0].conn();
    let _: () = con.set("a", "1").unwrap();
    assert_eq!(con.get::<_, String>("a").unwrap(), "1");
    assert_eq!(con.incr::<_, _, i64>("a", 41).unwrap(), 42);
    assert_eq!(con.append::<_, _, i64>("s", "hello").unwrap(), 5);
    assert_eq!(con.append::<_, _, i64>("s", " world").unwrap(), 11);
    assert_eq!(con.getrange::<_, String>("s", 0, 4).unwrap(), "hello");
    assert_eq!(con.setrange::<_, _, i64>("s", 6, "WORLD").unwrap(), 11);
    assert_eq!(con.get::<_, String>("s").unwrap(), "hello WORLD");
    let _: () = redis::cmd("MSET")
        .arg("m1")
        .arg("x")
        .arg("m2")
        .arg("y")
        .query(&mut con)
        .unwrap();
    let v: Vec<Option<String>> = con.mget(&["m1", "m2", "nope"]).unwrap();
    assert_eq!(v, vec![Some("x".into()), Some("y".into()), None]);
    assert_eq!(con.exists::<_, i64>(&["m1", "m2", "nope"]).unwrap(), 2);
    assert_eq!(con.del::<_, i64>(&["m1", "nope"]).unwrap(), 1);
    let _: () = con.rename("m2", "m3").unwrap();
    let t: String = redis::cmd("TYPE").arg("m3").query(&mut con).unwrap();
    assert_eq!(t, "string");
    let incr: f64 = redis::cmd("INCRBYFLOAT")
        .arg("f")
        .arg("10.5")
        .query(&mut con)
        .unwrap();
    assert_eq!(incr, 10.5);

    // Expiry: TTL set, visible, then gone (lazily hidden and actively deleted).
    let _: () = redis::cmd("SET")
        .arg("tmp")
        .arg("v")
        .arg("PX")
        .arg(300)
        .query(&mut con)
        .unwrap();
    let pttl: i64 = con.pttl("tmp").unwrap();
    assert!(pttl > 0 && pttl <= 300, "pttl {pttl}");
    assert_eq!(con.ttl::<_, i64>("a").unwrap(), -1);
    assert_eq!(con.ttl::<_, i64>("nope").unwrap(), -2);
    wait_for("tmp to expire", Duration::from_secs(5), || {
        con.get::<_, Option<String>>("tmp")
            .unwrap()
            .is_none()
            .then_some(())
    });
    // Active expiry removes keys nobody reads.
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("e{i}"))
            .arg("v")
            .arg("PX")
            .arg(1500)
            .query(&mut con)
            .unwrap();
    }
    let before: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(before >= 200);
    wait_for(
        "active expiry to delete keys",
        Duration::from_secs(10),
        || {
            let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
            (n <= before - 200).then_some(())
        },
    );
    // EXPIRE options.
    let _: () = con.set("x", "1").unwrap();
    let r: i64 = redis::cmd("EXPIRE")
        .arg("x")
        .arg(100)
        .arg("XX")
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 0, "XX on a key without TTL");
    let r: i64 = redis::cmd("EXPIRE")
        .arg("x")
        .arg(100)
        .arg("NX")
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 1);
    let r: i64 = redis::cmd("EXPIRE")
        .arg("x")
        .arg(50)
        .arg("GT")
        .query(&mut con)
        .unwrap();
    assert_eq!(r, 0);
    let at: i64 = redis::cmd("EXPIRETIME").arg("x").query(&mut con).unwrap();
    assert!(at > 1_700_000_000);
    assert_eq!(con.persist::<_, i64>("x").unwrap(), 1);
    // SCAN visits every key exactly as KEYS reports them.
    let mut keys: Vec<String> = con.keys("*").unwrap();
    keys.sort();
    let mut scanned: Vec<String> = con.scan().unwrap().collect();
    scanned.sort();
    scanned.dedup();
    assert_eq!(keys, scanned);
}

#[test]
fn redis_cli_works() {
    if !common::tool_available("redis-cli", "single_node::redis_cli_works") {
        return;
    }
    let c = Cluster::single(&[]);
    let p = c.nodes[0].port;
    assert_eq!(cli(p, &["PING"]), "PONG");
    assert_eq!(cli(p, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(p, &["GET", "k"]), "v");
    assert_eq!(cli(p, &["-3", "GET", "k"]), "v");
    assert!(cli(p, &["INFO", "server"]).contains("redis_version:"));
    assert!(cli(p, &["COMMAND", "COUNT"]).parse::<i64>().unwrap() > 50);
    let docs = cli(p, &["COMMAND", "DOCS", "set"]);
    assert!(docs.contains("arguments"), "{docs}");
    assert_eq!(cli(p, &["CLUSTER", "KEYSLOT", "somekey"]), "11058");
    assert_eq!(cli(p, &["CLUSTER", "KEYSLOT", "foo{hash_tag}"]), "2515");
    assert_eq!(cli(p, &["-c", "SET", "k2", "v2"]), "OK");
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let mut c = Cluster::single(&[]);
    {
        let mut con = c.nodes[0].conn();
        let mut pipe = redis::pipe();
        for i in 0..3000 {
            pipe.set(format!("key:{i}"), format!("value:{i}")).ignore();
            pipe.incr("counter", 1).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
        for _ in 0..500 {
            let _: i64 = con.incr("counter", 1).unwrap();
        }
    }
    c.nodes[0].kill9();
    c.nodes[0].start();
    c.leader();
    let mut con = c.nodes[0].conn();
    assert_eq!(con.get::<_, i64>("counter").unwrap(), 3500);
    for i in (0..3000).step_by(7) {
        assert_eq!(
            con.get::<_, String>(format!("key:{i}")).unwrap(),
            format!("value:{i}")
        );
    }
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 3001);
}

/// `RAFTCACHE SNAPSHOT` itself makes a snapshot (automatic snapshots are
/// set a million entries away, so none can stand in for it), the older one
/// is removed, and a restart restores snapshot + log tail.
#[test]
fn snapshot_command_then_restart_restores_everything() {
    let mut c = Cluster::single(&[
        "--snapshot-logs-since-last",
        "1000000",
        "--max-in-snapshot-log-to-keep",
        "10",
    ]);
    let built = |c: &Cluster| c.nodes[0].raft_u64("raft_snapshots_built");
    let snapshot = |c: &Cluster, want: u64| {
        let applied = c.nodes[0].raft_u64("raft_last_applied_index").unwrap();
        let _: () = redis::cmd("RAFTCACHE")
            .arg("SNAPSHOT")
            .query(&mut c.nodes[0].conn())
            .unwrap();
        // The counter steps when the state machine has written the file;
        // raft's snapshot index (INFO) follows when openraft takes it over.
        wait_for("the commanded snapshot", Duration::from_secs(20), || {
            let index = c.nodes[0].raft_u64("raft_snapshot_index")?;
            (built(c)? == want && index >= applied).then_some(())
        });
        assert_eq!(built(c), Some(want), "one snapshot per command");
    };
    {
        let mut con = c.nodes[0].conn();
        for i in 0..2000 {
            let _: () = con.set(format!("s:{i}"), i).unwrap();
        }
    }
    assert_eq!(built(&c), Some(0), "an automatic snapshot was taken");
    snapshot(&c, 1);
    {
        let mut con = c.nodes[0].conn();
        for i in 2000..2100 {
            let _: () = con.set(format!("s:{i}"), i).unwrap();
        }
    }
    snapshot(&c, 2);
    let snaps = wait_for("the older snapshot to go", Duration::from_secs(10), || {
        let files = std::fs::read_dir(c.nodes[0].dir.join("snapshots"))
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
            .count();
        (files == 1).then_some(files)
    });
    assert_eq!(snaps, 1, "old snapshots are removed");
    c.nodes[0].kill9();
    c.nodes[0].start();
    c.leader();
    let mut con = c.nodes[0].conn();
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, 2100);
    assert_eq!(con.get::<_, i64>("s:1999").unwrap(), 1999);
    assert_eq!(con.get::<_, i64>("s:2099").unwrap(), 2099);
}

#[test]
fn bad_command_line_is_a_clean_error() {
    for args in [
        vec!["--port", "70000"],
        vec!["--maxmemory-policy", "bogus"],
        vec!["--no-such-flag"],
    ] {
        let out = Command::new(common::BIN).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.is_empty());
    }
    let out = Command::new(common::BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--bind",
        "--dir",
        "--maxclients",
        "--proto-max-bulk-len",
        "--node-id",
        "--bus-port",
        "--config",
        "--join",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn garbage_on_the_bus_port_is_dropped_not_fatal() {
    use std::io::Write;
    let c = Cluster::single(&[]);
    let bus = format!("127.0.0.1:{}", c.nodes[0].bus_port);
    // Random bytes, an oversized frame header, and an HTTP request.
    for payload in [
        b"\x00\x00\x00\x05hello".to_vec(),
        b"\xff\xff\xff\xff".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect(),
    ] {
        let mut s = std::net::TcpStream::connect(&bus).unwrap();
        let _ = s.write_all(&payload);
        let _ = common::raw_exchange(&bus, &payload, Duration::from_millis(200));
    }
    // Still alive and still the leader, and the warnings were logged.
    let mut con = c.nodes[0].conn();
    let _: () = con.set("alive", "yes").unwrap();
    assert_eq!(con.get::<_, String>("alive").unwrap(), "yes");
    wait_for("a bus warning in the log", Duration::from_secs(5), || {
        c.nodes[0]
            .log_text()
            .contains("bus connection closed")
            .then_some(())
    });
}

#[test]
fn prometheus_metrics_endpoint() {
    let port = common::free_port();
    let c = Cluster::single(&["--metrics-port", &port.to_string()]);
    let mut con = c.nodes[0].conn();
    for i in 0..10 {
        let _: () = con.set(format!("m{i}"), i).unwrap();
    }
    let (body, closed) = wait_for("metrics", Duration::from_secs(10), || {
        let (out, closed) = common::raw_exchange_closed(
            &format!("127.0.0.1:{port}"),
            b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(2),
        );
        let text = String::from_utf8_lossy(&out).to_string();
        text.contains("raftcache_proposed_ops_total")
            .then_some((text, closed))
    });
    assert!(closed, "`Connection: close` was not honoured");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("raftcache_raft_is_leader 1"), "{body}");
    assert!(body.contains("raftcache_connections_total"), "{body}");
}

/// `CONFIG GET *` over a real socket lists the knobs with the values the
/// node was started with (sizes in plain bytes, as Redis shows them).
#[test]
fn config_get_shows_the_configured_knobs() {
    let c = Cluster::single(&[
        "--read-index-timeout",
        "1234",
        "--lmdb-map-size",
        "64mb",
        "--clock-max-skew",
        "777",
        "--maxmemory-policy",
        "allkeys-lru",
        "--timeout",
        "60",
    ]);
    let mut con = c.nodes[0].conn();
    let all: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut con)
        .unwrap();
    let expected = [
        ("read-index-timeout", "1234".to_string()),
        ("lmdb-map-size", (64u64 << 20).to_string()),
        ("snapshot-log-bytes-since-last", (8u64 << 20).to_string()),
        ("clock-max-skew", "777".to_string()),
        ("maxmemory-policy", "allkeys-lru".to_string()),
        ("timeout", "60".to_string()),
        ("port", c.nodes[0].port.to_string()),
        ("bus-port", c.nodes[0].bus_port.to_string()),
        ("raft-max-entry-bytes", (512u64 << 20).to_string()),
        ("heartbeat-interval", "50".to_string()),
        ("save", String::new()),
        ("appendonly", "yes".to_string()),
    ];
    for (name, value) in expected {
        assert_eq!(all.get(name), Some(&value), "{name} in {all:?}");
    }
    assert!(!all.contains_key("requirepass"), "{all:?}");
    // A pattern picks knobs out, as redis-cli users do.
    let one: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("lmdb-map-*")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        one,
        [
            "lmdb-map-size".to_string(),
            (64u64 << 20).to_string(),
            "lmdb-map-write-percent".to_string(),
            "50".to_string()
        ]
    );
}
