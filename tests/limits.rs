//! Bounded resources under abuse, against a real node over real sockets:
//! who may reach `/metrics`, a flood of connections, clients that pipeline
//! without reading, idle clients, and a client trickling a huge request.
//! Each test states what it bounds and by how much; docs/protocol.md's
//! hostile-input table points here.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use common::{free_port, raw_exchange_closed, wait_for, Cluster};

/// `test` cannot run here for `reason`: as tests/common does for a missing
/// tool, fail where everything is required (`RAFTCACHE_REQUIRE_TOOLS=1` or
/// `CI`), else print the skip and add it to `$RAFTCACHE_SKIP_LOG`.
fn skip(test: &str, reason: &str) {
    let required = std::env::var("RAFTCACHE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| !v.is_empty());
    assert!(
        !required,
        "{test}: {reason} (RAFTCACHE_REQUIRE_TOOLS/CI is set)"
    );
    let line = format!("{test}: {reason}");
    eprintln!("SKIP {line}");
    if let Ok(log) = std::env::var("RAFTCACHE_SKIP_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A non-loopback IPv4 address of this machine (`hostname -I`), or None
/// after recording a skip.
fn non_loopback_ip(test: &str) -> Option<IpAddr> {
    let out = std::process::Command::new("hostname").arg("-I").output();
    let found = out.ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .filter_map(|w| w.parse::<IpAddr>().ok())
            .find(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
    });
    if found.is_none() {
        skip(
            test,
            "no non-loopback IPv4 address (`hostname -I`) to probe",
        );
    }
    found
}

/// `GET /metrics` on `addr`: the response if something answers there.
fn scrape(addr: SocketAddr) -> Option<String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    drop(s);
    let (out, _) = raw_exchange_closed(
        &addr.to_string(),
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        Duration::from_secs(2),
    );
    let text = String::from_utf8_lossy(&out).to_string();
    text.starts_with("HTTP/1.1 200").then_some(text)
}

/// `/metrics` has no authentication: a node whose clients may come from
/// anywhere (`--bind 0.0.0.0`) still serves it on loopback only, unless
/// `--metrics-bind` says otherwise.
#[test]
fn metrics_listen_on_loopback_unless_told() {
    let test = "metrics_listen_on_loopback_unless_told";
    let Some(ip) = non_loopback_ip(test) else {
        return;
    };
    let port = free_port();
    let c = Cluster::single(&["--bind", "0.0.0.0", "--metrics-port", &port.to_string()]);
    let node = &c.nodes[0];
    // The premise: clients do reach this node on the other address.
    let mut client =
        TcpStream::connect_timeout(&SocketAddr::new(ip, node.port), Duration::from_secs(2))
            .expect("the client port listens on every interface");
    client.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    client.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    let body = wait_for("/metrics on loopback", Duration::from_secs(10), || {
        scrape(local)
    });
    assert!(body.contains("raftcache_connections_total"), "{body}");
    let remote = SocketAddr::new(ip, port);
    let e = TcpStream::connect_timeout(&remote, Duration::from_secs(2))
        .expect_err("/metrics must not listen on a non-loopback address by default");
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{remote}: {e}"
    );
    drop(c);

    // Told otherwise, it does listen there (so the refusal above is the
    // knob's doing, not the network's).
    let port = free_port();
    let c = Cluster::single(&[
        "--bind",
        "0.0.0.0",
        "--metrics-port",
        &port.to_string(),
        "--metrics-bind",
        "0.0.0.0",
    ]);
    wait_for(
        "/metrics on the other address",
        Duration::from_secs(10),
        || scrape(SocketAddr::new(ip, port)),
    );
    assert!(c.nodes[0]
        .log_text()
        .contains("/metrics listens on a non-loopback address"));
}
