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

    // Only when asked for (or with all / everything), as in Redis.
    let default = info(&a, &[]);
    assert!(line(&default, "# Commandstats").is_none());
    assert!(line(&default, "# Errorstats").is_none());
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
