//! Operations: INFO commandstats / errorstats over a real socket.

mod common;

use std::time::Duration;

use common::{raw_exchange, resp_command, Cluster};

/// Send `commands` on one connection and return everything read back.
fn send(addr: &str, commands: &[&[&str]]) -> String {
    let mut bytes = Vec::new();
    for c in commands {
        let args: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
        bytes.extend(resp_command(&args));
    }
    String::from_utf8_lossy(&raw_exchange(addr, &bytes, Duration::from_millis(500))).into_owned()
}

/// The lines of `INFO <sections...>` (on a fresh connection).
fn info(addr: &str, sections: &[&str]) -> Vec<String> {
    let mut cmd = vec!["INFO"];
    cmd.extend_from_slice(sections);
    send(addr, &[&cmd])
        .split("\r\n")
        .map(str::to_string)
        .collect()
}

fn line<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .map(String::as_str)
}

#[test]
fn commandstats_and_errorstats() {
    let c = Cluster::single(&[]);
    let a = c.nodes[0].addr();
    let out = send(
        &a,
        &[
            &["CONFIG", "RESETSTAT"],
            &["SET", "a", "1"],
            &["SET", "b", "x"],
            &["GET", "a"],
            &["GET", "b"],
            &["GET", "c"],
            &["GET"],
            &["INCR", "b"],
            &["FOO"],
        ],
    );
    assert_eq!(out.matches("-ERR").count(), 3, "{out:?}");

    let lines = info(&a, &["commandstats", "errorstats", "stats"]);
    let get = line(&lines, "cmdstat_get:").expect("cmdstat_get");
    assert!(get.starts_with("cmdstat_get:calls=3,usec="), "{get}");
    assert!(get.ends_with(",rejected_calls=1,failed_calls=0"), "{get}");
    let set = line(&lines, "cmdstat_set:").expect("cmdstat_set");
    assert!(set.starts_with("cmdstat_set:calls=2,usec="), "{set}");
    assert!(set.ends_with(",rejected_calls=0,failed_calls=0"), "{set}");
    let incr = line(&lines, "cmdstat_incr:").expect("cmdstat_incr");
    assert!(incr.starts_with("cmdstat_incr:calls=1,usec="), "{incr}");
    assert!(incr.ends_with(",rejected_calls=0,failed_calls=1"), "{incr}");
    let conf = line(&lines, "cmdstat_config|resetstat:").expect("subcommand row");
    assert!(
        conf.starts_with("cmdstat_config|resetstat:calls=1,"),
        "{conf}"
    );
    // usec_per_call has two decimals.
    let per_call = get.split("usec_per_call=").nth(1).unwrap();
    let per_call = per_call.split(',').next().unwrap();
    assert_eq!(per_call.split('.').nth(1).map(str::len), Some(2), "{get}");
    let errors: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("errorstat_"))
        .collect();
    assert_eq!(errors, ["errorstat_ERR:count=3"]);
    assert_eq!(
        line(&lines, "total_error_replies:"),
        Some("total_error_replies:3")
    );

    // Commandstats only when asked for (or with all / everything);
    // errorstats is a default section, as in Redis 7.
    let default = info(&a, &[]);
    assert!(line(&default, "# Commandstats").is_none());
    assert!(line(&default, "errorstat_ERR:count=3").is_some());
    let stats = info(&a, &["stats"]);
    assert!(line(&stats, "# Errorstats").is_none());
    // INFO latencystats: percentiles per command called.
    let lat = info(&a, &["latencystats"]);
    let get = line(&lat, "latency_percentiles_usec_get:").expect("get percentiles");
    let fields: Vec<&str> = get.split(':').nth(1).unwrap().split(',').collect();
    let names: Vec<&str> = fields
        .iter()
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(names, ["p50", "p99", "p99.9"], "{get}");
    assert!(
        fields
            .iter()
            .all(|f| f.split('=').nth(1).unwrap().parse::<f64>().is_ok()),
        "{get}"
    );
    assert!(line(&default, "# Latencystats").is_none());
    let all = info(&a, &["all"]);
    assert!(line(&all, "# Commandstats").is_some());
    assert!(line(&all, "errorstat_ERR:count=3").is_some());

    // CONFIG RESETSTAT clears both (it is counted itself, after the reset).
    send(&a, &[&["CONFIG", "RESETSTAT"]]);
    let lines = info(&a, &["commandstats", "errorstats"]);
    let stats: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("cmdstat_") || l.starts_with("errorstat_"))
        .collect();
    assert_eq!(stats.len(), 1, "{lines:?}");
    assert!(stats[0].starts_with("cmdstat_config|resetstat:calls=1,"));
}

type SlowEntry = (i64, i64, i64, Vec<String>, String, String);

fn slowlog_get(con: &mut redis::Connection, count: i64) -> Vec<SlowEntry> {
    redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(count)
        .query(con)
        .unwrap()
}

#[test]
fn slowlog_logs_every_command_at_zero_and_keeps_the_newest() {
    let c = Cluster::single(&["--slowlog-log-slower-than", "0", "--slowlog-max-len", "3"]);
    let mut con = c.nodes[0].conn();
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("ops-test")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut con).unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let _: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    let _: Option<String> = redis::cmd("GET").arg("k2").query(&mut con).unwrap();

    // Newest first, at most slowlog-max-len (3): the RESET fell off.
    let entries = slowlog_get(&mut con, -1);
    let args: Vec<Vec<String>> = entries.iter().map(|e| e.3.clone()).collect();
    assert_eq!(
        args,
        [vec!["GET", "k2"], vec!["GET", "k"], vec!["SET", "k", "v"]]
    );
    for pair in entries.windows(2) {
        assert_eq!(pair[0].0, pair[1].0 + 1, "ids count up: {entries:?}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for e in &entries {
        assert!((now - e.1).abs() < 60, "unix time: {e:?}");
        assert!(e.2 >= 0);
        assert!(e.4.starts_with("127.0.0.1:"), "client addr: {e:?}");
        assert_eq!(e.5, "ops-test");
    }
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut con).unwrap();
    assert_eq!(len, 3);

    // At most 32 arguments, each cut at 128 bytes, as Redis.
    let big = "x".repeat(200);
    let mut mset = redis::cmd("MSET");
    mset.arg("{t}big").arg(&big);
    for i in 0..20 {
        mset.arg(format!("{{t}}{i}")).arg("v");
    }
    let _: () = mset.query(&mut con).unwrap();
    let e = &slowlog_get(&mut con, 1)[0];
    assert_eq!(e.3.len(), 32, "{e:?}");
    assert_eq!(e.3[2], format!("{}... (72 more bytes)", "x".repeat(128)));
    assert_eq!(e.3[31], "... (12 more arguments)");
    assert_eq!(slowlog_get(&mut con, 1).len(), 1);

    let err = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-2)
        .query::<redis::Value>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("greater than or equal to -1"),
        "{err}"
    );
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query(&mut con).unwrap();
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut con).unwrap();
    assert_eq!(len, 1, "only the RESET itself");
}

#[test]
fn slowlog_off_at_minus_one() {
    let c = Cluster::single(&["--slowlog-log-slower-than", "-1"]);
    let mut con = c.nodes[0].conn();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let _: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert!(slowlog_get(&mut con, -1).is_empty());
    let len: i64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut con).unwrap();
    assert_eq!(len, 0);
    let cfg: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("slowlog-*")
        .query(&mut con)
        .unwrap();
    assert!(
        cfg.windows(2)
            .any(|w| w == ["slowlog-log-slower-than", "-1"]),
        "{cfg:?}"
    ); // The latency monitor is off by default.
    let latest: Vec<redis::Value> = redis::cmd("LATENCY").arg("LATEST").query(&mut con).unwrap();
    assert!(latest.is_empty(), "{latest:?}");
}

type LatestRow = (String, i64, i64, i64);

#[test]
fn latency_monitor_records_events_over_the_threshold() {
    let c = Cluster::single(&["--latency-monitor-threshold", "1"]);
    let mut con = c.nodes[0].conn();
    // No timing is asserted: big writes (through raft, fsync and apply)
    // until at least one event reached 1 ms.
    let latest = common::wait_for("a latency event", Duration::from_secs(60), || {
        let mut mset = redis::cmd("MSET");
        for i in 0..5000 {
            mset.arg(format!("{{t}}{i}")).arg("some value");
        }
        let _: () = mset.query(&mut con).unwrap();
        let latest: Vec<LatestRow> = redis::cmd("LATENCY").arg("LATEST").query(&mut con).unwrap();
        (!latest.is_empty()).then_some(latest)
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (name, t, ms, max) in &latest {
        assert!(
            ["command", "fast-command", "fsync", "apply"].contains(&name.as_str()),
            "{latest:?}"
        );
        assert!((now - t).abs() < 120, "{latest:?}");
        assert!(*ms >= 1 && max >= ms, "{latest:?}");
    }
    let event = &latest[0].0;
    let history: Vec<(i64, i64)> = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg(event)
        .query(&mut con)
        .unwrap();
    assert!(!history.is_empty());
    assert!(history.iter().all(|&(_, ms)| ms >= 1), "{history:?}");
    let unknown: Vec<redis::Value> = redis::cmd("LATENCY")
        .arg("HISTORY")
        .arg("no-such-event")
        .query(&mut con)
        .unwrap();
    assert!(unknown.is_empty());
    let reset: i64 = redis::cmd("LATENCY")
        .arg("RESET")
        .arg(event)
        .query(&mut con)
        .unwrap();
    assert_eq!(reset, 1);
    let help: Vec<String> = redis::cmd("LATENCY").arg("HELP").query(&mut con).unwrap();
    assert!(help.iter().any(|l| l.starts_with("HISTORY")), "{help:?}");
}

/// Run a node (without RUST_LOG, which would win over the knobs) until
/// it answers PING and its raft role was logged, then stop it; return
/// its log file.
fn run_logging_node(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let logfile = dir.path().join("node.log");
    let port = common::free_port();
    let mut child = std::process::Command::new(common::BIN)
        .args([
            "--node-id",
            "1",
            "--cluster-bootstrap",
            "yes",
            "--metrics-port",
            "0",
        ])
        .arg("--port")
        .arg(port.to_string())
        .arg("--bus-port")
        .arg(common::free_port().to_string())
        .arg("--dir")
        .arg(dir.path().join("data"))
        .arg("--logfile")
        .arg(&logfile)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    common::wait_for("the node to answer", Duration::from_secs(20), || {
        assert!(child.try_wait().unwrap().is_none(), "node exited");
        common::pinged_conn(&addr)
    });
    // Leadership comes shortly after the port opens.
    common::wait_for("the node to lead", Duration::from_secs(20), || {
        let out = send(&addr, &[&["INFO", "replication"]]);
        out.contains("role:master").then_some(())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::read_to_string(&logfile).unwrap()
}

#[test]
fn logfile_without_colours_and_redis_loglevels() {
    let log = run_logging_node(&["--loglevel", "notice"]);
    assert!(log.contains(" INFO "), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escapes in a log file: {log:?}"
    );
    assert!(log.contains("raft role changed"), "{log}");

    let log = run_logging_node(&["--loglevel", "warning"]);
    assert!(!log.contains(" INFO "), "warning hides info lines: {log}");

    // A log file that cannot be opened is a startup error naming the knob.
    let out = std::process::Command::new(common::BIN)
        .args(["--logfile", "/nonexistent-dir/x.log"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logfile"), "{err}");
}

/// A node that cannot listen says so once, with the address and the OS
/// error once: in the log (stderr here), not again on stderr by itself.
#[test]
fn a_failed_listen_is_reported_once() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["--port", &port, "--metrics-port", "0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let what = format!("cannot listen on 127.0.0.1:{port}");
    assert_eq!(stderr.matches(&what).count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
}
