//! A real Prometheus scrapes a 3-node cluster's `/metrics`, and `promtool
//! check metrics` accepts what each node serves; the shipped
//! config/prometheus.yml and config/alerts.yml pass `promtool`, and every
//! series the alerts use exists.

mod common;

use common::{free_port, raw_exchange_closed, tool_available_as, wait_for, Cluster};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(targets: &[String]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: raftcache\n    scrape_interval: 1s\n    \
                 scrape_timeout: 1s\n    static_configs:\n      - targets: [{}]\n",
                list.join(", ")
            ),
        )
        .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("spawn prometheus");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// GET `path` from the HTTP API; the body, if the answer was 200.
    fn get(&self, path: &str) -> Option<String> {
        std::net::TcpStream::connect(&self.addr).ok()?;
        http_get(&self.addr, path)
    }

    /// An instant query's JSON answer.
    fn query(&self, q: &str) -> Option<String> {
        self.get(&format!("/api/v1/query?query={}", url_encode(q)))
    }
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    let (out, _) = raw_exchange_closed(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
        Duration::from_secs(3),
    );
    let text = String::from_utf8_lossy(&out).to_string();
    if !text.starts_with("HTTP/1.1 200") {
        return None;
    }
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The sample values of an instant query's answer (`"value":[ts,"v"]`).
fn values(json: &str) -> Vec<f64> {
    json.split("\"value\":[")
        .skip(1)
        .filter_map(|v| {
            let v = v.split_once(",\"")?.1;
            v.split_once('"')?.0.parse().ok()
        })
        .collect()
}

/// The `raftcache_*` names in a rules file.
fn series_names(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("raftcache_") && w.len() > "raftcache_".len())
        .map(str::to_string)
        .collect()
}

/// config/prometheus.yml (and the config/alerts.yml it loads) are what
/// Prometheus accepts.
#[test]
fn shipped_prometheus_config_and_alerts_pass_promtool() {
    let test = "prometheus::shipped_prometheus_config_and_alerts_pass_promtool";
    if !tool_available_as("promtool", &["--version"], "prometheus", test) {
        return;
    }
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn prometheus_scrapes_every_node() {
    let test = "prometheus::prometheus_scrapes_every_node";
    if !tool_available_as("prometheus", &["--version"], "prometheus", test)
        || !tool_available_as("promtool", &["--version"], "prometheus", test)
    {
        return;
    }
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let mut i = 0;
    let c = Cluster::start_with(3, &[], |node| {
        node.extra
            .extend(["--metrics-port".to_string(), ports[i].to_string()]);
        i += 1;
    });
    c.wait_members(3);
    let targets: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();

    // promtool accepts what every node serves.
    for t in &targets {
        let body = wait_for("/metrics", Duration::from_secs(10), || {
            http_get(t, "/metrics").filter(|b| b.contains("raftcache_raft_term"))
        });
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = promtool.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics on {t}: {}{}\n{body}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(body.contains("# HELP raftcache_raft_term "), "{body}");
    }

    let prom = Prometheus::start(&targets);
    wait_for("all three targets up", Duration::from_secs(60), || {
        let body = prom.get("/api/v1/targets")?;
        (body.matches("\"health\":\"up\"").count() == 3).then_some(())
    });
    wait_for("a term per node", Duration::from_secs(30), || {
        let v = values(&prom.query("raftcache_raft_term")?);
        (v.len() == 3 && v.iter().all(|&t| t >= 1.0)).then_some(())
    });

    // A few seconds of writes through the leader.
    let leader = c.leader();
    let mut con = c.nodes[leader].conn();
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(4) {
        let _: () = redis::cmd("SET")
            .arg(format!("k{n}"))
            .arg(n)
            .query(&mut con)
            .unwrap();
        n += 1;
    }
    let instance = &targets[leader];
    let q = format!("rate(raftcache_commands_total{{instance=\"{instance}\"}}[5s])");
    wait_for(
        "a command rate on the leader",
        Duration::from_secs(30),
        || {
            let v = values(&prom.query(&q)?);
            (v.len() == 1 && v[0] > 0.0).then_some(())
        },
    );
    wait_for("one leader in Prometheus", Duration::from_secs(10), || {
        (values(&prom.query("sum(raftcache_raft_is_leader)")?) == [1.0]).then_some(())
    });
    // The lag expression of config/alerts.yml sees both followers.
    let lag = "raftcache_raft_last_log_index - on (instance, job) group_right \
               raftcache_raft_follower_matched_index";
    wait_for("a lag per follower", Duration::from_secs(10), || {
        (values(&prom.query(lag)?).len() == 2).then_some(())
    });

    // Every series config/alerts.yml names is served by the leader.
    let body = http_get(&targets[leader], "/metrics").unwrap();
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/alerts.yml")).unwrap();
    let names = series_names(&rules);
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        assert!(
            body.lines()
                .any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{"))),
            "config/alerts.yml uses {name}, which the leader does not serve:\n{body}"
        );
    }
}
