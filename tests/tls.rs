//! TLS for clients (`tls-port`): real nodes, certificates made by `openssl`
//! in a temp dir, and `redis-cli --tls` as the client (the `redis` crate is
//! built without TLS here). Plain text on the TLS port, client
//! certificates (`tls-auth-clients`), a TLS-only node (`port 0`), the
//! handshake timeout, and MOVED (and CLUSTER SLOTS/NODES/SHARDS) naming the
//! TLS port with `tls-cluster`.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, wait_for, Cluster, BIN};
use redis::Commands;

/// Both tools, or a recorded skip (a failure where tools are required).
fn tools(test: &str) -> bool {
    common::tool_available_as("openssl", &["version"], "openssl", test)
        && common::tool_available("redis-cli", test)
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate signed by it, and a client certificate from another CA.
struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
    client_crt: PathBuf,
    client_key: PathBuf,
    rogue_crt: PathBuf,
    rogue_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `name.key` and `name.crt` signed by `ca` (its `.crt`/`.key`), with the
/// extensions in `ext`.
fn signed(dir: &Path, name: &str, ca: &str, cn: &str, ext: &str) {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    let extfile = format!("{name}.ext");
    std::fs::write(dir.join(&extfile), ext).unwrap();
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj,
        ],
    );
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ],
    );
}

fn ca(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-days", "2", "-subj", &subj,
        ],
    );
}

fn make_certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "ca");
    ca(d, "rogue-ca");
    signed(
        d,
        "server",
        "ca",
        "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    );
    let client_ext =
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";
    signed(d, "client", "ca", "client", client_ext);
    signed(d, "rogue", "rogue-ca", "rogue", client_ext);
    Certs {
        ca: d.join("ca.crt"),
        server_crt: d.join("server.crt"),
        server_key: d.join("server.key"),
        client_crt: d.join("client.crt"),
        client_key: d.join("client.key"),
        rogue_crt: d.join("rogue.crt"),
        rogue_key: d.join("rogue.key"),
        _dir: dir,
    }
}

impl Certs {
    /// The server-side flags for `tls_port`.
    fn server_args(&self, tls_port: u16, auth: &str) -> Vec<String> {
        let mut a = vec![
            "--tls-port".to_string(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.server_crt.display().to_string(),
            "--tls-key-file".into(),
            self.server_key.display().to_string(),
            "--tls-auth-clients".into(),
            auth.into(),
        ];
        if auth != "no" {
            a.extend([
                "--tls-ca-cert-file".to_string(),
                self.ca.display().to_string(),
            ]);
        }
        a
    }
}

/// Which client certificate `redis-cli` presents.
#[derive(Clone, Copy)]
enum ClientCert {
    None,
    Good,
    Rogue,
}

/// `redis-cli --tls` against `port`, trusting the test CA.
fn cli_tls(certs: &Certs, port: u16, cert: ClientCert, args: &[&str]) -> Output {
    let mut cmd = Command::new("redis-cli");
    cmd.arg("--tls")
        .arg("--cacert")
        .arg(&certs.ca)
        .args(["-p", &port.to_string()]);
    match cert {
        ClientCert::None => {}
        ClientCert::Good => {
            cmd.arg("--cert")
                .arg(&certs.client_crt)
                .arg("--key")
                .arg(&certs.client_key);
        }
        ClientCert::Rogue => {
            cmd.arg("--cert")
                .arg(&certs.rogue_crt)
                .arg("--key")
                .arg(&certs.rogue_key);
        }
    }
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// The command worked over TLS and printed `want`.
fn assert_tls_ok(certs: &Certs, port: u16, cert: ClientCert, args: &[&str], want: &str) {
    let out = cli_tls(certs, port, cert, args);
    assert_eq!(
        stdout(&out),
        want,
        "redis-cli --tls {args:?}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The server refused the handshake: nothing answered.
fn assert_tls_refused(certs: &Certs, port: u16, cert: ClientCert) {
    let out = cli_tls(certs, port, cert, &["PING"]);
    assert!(
        !stdout(&out).contains("PONG"),
        "a client the server must refuse got an answer: {:?}",
        stdout(&out)
    );
}

/// Plain text on the TLS port gets no RESP answer and the connection is
/// closed (with a TLS alert at most).
fn assert_plain_text_refused(tls_port: u16) {
    let (out, closed) = common::raw_exchange_closed(
        &format!("127.0.0.1:{tls_port}"),
        b"PING\r\n",
        Duration::from_secs(5),
    );
    assert!(closed, "plain text on the TLS port: connection left open");
    assert!(
        !String::from_utf8_lossy(&out).contains("PONG"),
        "plain text on the TLS port was answered: {out:?}"
    );
}

#[test]
fn tls_port_serves_and_requires_client_certificates() {
    let test = "tls::tls_port_serves_and_requires_client_certificates";
    if !tools(test) {
        return;
    }
    let certs = make_certs();
    let tls = free_port();
    let args = certs.server_args(tls, "yes");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = Cluster::single(&args);
    let n = &c.nodes[0];

    assert_tls_ok(&certs, tls, ClientCert::Good, &["SET", "k", "v"], "OK");
    assert_tls_ok(&certs, tls, ClientCert::Good, &["GET", "k"], "v");
    // The same keyspace through the plain port.
    let got: String = n.conn().get("k").unwrap();
    assert_eq!(got, "v");
    // tls-auth-clients yes: no certificate, or one from another CA, is refused.
    assert_tls_refused(&certs, tls, ClientCert::None);
    assert_tls_refused(&certs, tls, ClientCert::Rogue);
    // Plain text on the TLS port fails cleanly; the node keeps serving.
    assert_plain_text_refused(tls);
    assert_tls_ok(&certs, tls, ClientCert::Good, &["INCR", "n"], "1");
    let pipelined: Vec<String> = (0..200).map(|i| format!("SET p{i} {i}")).collect();
    let mut cli = Command::new("redis-cli")
        .arg("--tls")
        .arg("--cacert")
        .arg(&certs.ca)
        .arg("--cert")
        .arg(&certs.client_crt)
        .arg("--key")
        .arg(&certs.client_key)
        .args(["-p", &tls.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = cli.stdin.take().unwrap();
        stdin
            .write_all((pipelined.join("\n") + "\nDBSIZE\n").as_bytes())
            .unwrap();
    }
    let out = cli.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().filter(|l| *l == "OK").count(), 200, "{text}");
    assert_eq!(text.lines().last(), Some("202"));
    // CLIENT LIST shows the TLS clients like any other.
    let out = cli_tls(&certs, tls, ClientCert::Good, &["CLIENT", "LIST"]);
    assert!(
        stdout(&out).contains(&format!("laddr=127.0.0.1:{tls}")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn tls_auth_clients_optional_and_no() {
    let test = "tls::tls_auth_clients_optional_and_no";
    if !tools(test) {
        return;
    }
    let certs = make_certs();
    let (tls_opt, tls_no) = (free_port(), free_port());
    let args = certs.server_args(tls_opt, "optional");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = Cluster::single(&args);
    assert_tls_ok(&certs, tls_opt, ClientCert::None, &["PING"], "PONG");
    assert_tls_ok(&certs, tls_opt, ClientCert::Good, &["PING"], "PONG");
    // optional still verifies a certificate that is presented.
    assert_tls_refused(&certs, tls_opt, ClientCert::Rogue);
    drop(c);

    let args = certs.server_args(tls_no, "no");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _c = Cluster::single(&args);
    assert_tls_ok(&certs, tls_no, ClientCert::None, &["PING"], "PONG");
}

#[test]
fn tls_handshake_times_out_without_taking_a_client_slot() {
    let test = "tls::tls_handshake_times_out_without_taking_a_client_slot";
    if !tools(test) {
        return;
    }
    let certs = make_certs();
    let tls = free_port();
    let args = certs.server_args(tls, "no");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = Cluster::single(&args);
    let started = Instant::now();
    let mut idle = TcpStream::connect(("127.0.0.1", tls)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // While it idles, real clients are served...
    assert_tls_ok(&certs, tls, ClientCert::None, &["PING"], "PONG");
    // ...and it is no client: only the INFO connection itself is counted.
    assert_eq!(
        c.nodes[0].info("clients", "connected_clients").as_deref(),
        Some("1")
    );
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "the idle connection got bytes instead of a close");
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(15)).contains(&waited),
        "closed after {waited:?}, expected the 10 s handshake timeout"
    );
    assert_tls_ok(&certs, tls, ClientCert::None, &["PING"], "PONG");
}

/// A node with `port 0`: no plain-text listener at all. Not the harness's
/// `Node` (which checks readiness on the plain port).
struct TlsOnlyNode {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for TlsOnlyNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn port_0_serves_tls_only() {
    let test = "tls::port_0_serves_tls_only";
    if !tools(test) {
        return;
    }
    let certs = make_certs();
    let (tls, bus) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["--port", "0", "--bus-port", &bus.to_string()])
        .args(["--metrics-port", "0"])
        .arg("--dir")
        .arg(dir.path().join("data"))
        .args(certs.server_args(tls, "no"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("node.log")).unwrap())
        .spawn()
        .unwrap();
    let node = TlsOnlyNode { child, _dir: dir };
    wait_for("the TLS-only node", Duration::from_secs(30), || {
        let out = cli_tls(&certs, tls, ClientCert::None, &["SET", "k", "v"]);
        (stdout(&out) == "OK").then_some(())
    });
    assert_tls_ok(&certs, tls, ClientCert::None, &["GET", "k"], "v");
    assert_tls_ok(
        &certs,
        tls,
        ClientCert::None,
        &["CONFIG", "GET", "port"],
        "port\n0",
    );
    // tls-cluster follows port 0: CLUSTER SLOTS names the TLS port.
    let slots = stdout(&cli_tls(
        &certs,
        tls,
        ClientCert::None,
        &["CLUSTER", "SLOTS"],
    ));
    assert!(slots.lines().any(|l| l == tls.to_string()), "{slots}");
    drop(node);
}

#[test]
fn bad_certificate_files_stop_the_node_naming_knob_and_file() {
    let test = "tls::bad_certificate_files_stop_the_node_naming_knob_and_file";
    if !tools(test) {
        return;
    }
    let certs = make_certs();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[String]| {
        let out = Command::new(BIN)
            .args(["--port", &free_port().to_string()])
            .args(["--bus-port", &free_port().to_string()])
            .args(["--metrics-port", "0"])
            .arg("--dir")
            .arg(dir.path().join("data"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let tls = free_port();
    let mut args = certs.server_args(tls, "no");
    args[3] = "/nonexistent/server.crt".into();
    let e = run(&args);
    assert!(e.contains("tls-cert-file /nonexistent/server.crt"), "{e}");
    // A key that does not belong to the certificate.
    let mut args = certs.server_args(tls, "no");
    args[5] = certs.client_key.display().to_string();
    let e = run(&args);
    assert!(
        e.contains("tls-key-file") && e.contains("does not fit"),
        "{e}"
    );
    // A CA file without certificates.
    let mut args = certs.server_args(tls, "yes");
    args[9] = certs.server_key.display().to_string();
    let e = run(&args);
    assert!(e.contains("tls-ca-cert-file"), "{e}");
    // Nothing was created in the data dir.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn tls_cluster_moved_names_the_tls_port() {
    let test = "tls::tls_cluster_moved_names_the_tls_port";
    if !tools(test) {
        return;
    }
    let certs = make_certs();
    let mut tls_ports = Vec::new();
    let c = Cluster::start_with(3, &[], |node| {
        let tls = free_port();
        tls_ports.push(tls);
        node.extra.extend(certs.server_args(tls, "yes"));
        node.extra.push("--tls-cluster".into());
        node.extra.push("yes".into());
    });
    let l = c.leader();
    let f = (l + 1) % 3;
    let (leader_tls, follower_tls) = (tls_ports[l], tls_ports[f]);
    // A follower redirects to the leader's TLS port...
    let out = cli_tls(&certs, follower_tls, ClientCert::Good, &["SET", "mk", "v1"]);
    let text = stdout(&out);
    assert!(
        text.contains("MOVED") && text.ends_with(&format!(" 127.0.0.1:{leader_tls}")),
        "{text}"
    );
    // ...also on the plain port (the advertised address is the TLS one).
    let mut plain = c.nodes[f].conn();
    let e = plain.set::<_, _, ()>("mk", "v0").unwrap_err();
    assert!(
        e.to_string().contains(&format!("127.0.0.1:{leader_tls}")),
        "{e}"
    );
    // redis-cli -c --tls follows it.
    let mut cmd_args = vec!["-c", "SET", "mk", "v1"];
    assert_tls_ok(&certs, follower_tls, ClientCert::Good, &cmd_args, "OK");
    cmd_args = vec!["GET", "mk"];
    assert_tls_ok(&certs, leader_tls, ClientCert::Good, &cmd_args, "v1");
    // CLUSTER SLOTS and NODES advertise the TLS ports.
    let slots = stdout(&cli_tls(
        &certs,
        follower_tls,
        ClientCert::Good,
        &["CLUSTER", "SLOTS"],
    ));
    assert!(
        slots.lines().any(|l| l == leader_tls.to_string()),
        "{slots}"
    );
    let nodes = stdout(&cli_tls(
        &certs,
        follower_tls,
        ClientCert::Good,
        &["CLUSTER", "NODES"],
    ));
    for port in &tls_ports {
        assert!(nodes.contains(&format!("127.0.0.1:{port}@")), "{nodes}");
    }
    // CLUSTER SHARDS lists them as tls-port, as Redis does.
    let shards = stdout(&cli_tls(
        &certs,
        follower_tls,
        ClientCert::Good,
        &["CLUSTER", "SHARDS"],
    ));
    let lines: Vec<&str> = shards.lines().collect();
    for port in &tls_ports {
        assert!(
            lines
                .windows(2)
                .any(|w| w[0] == "tls-port" && w[1] == port.to_string()),
            "{shards}"
        );
    }
    assert!(!lines.contains(&"port"), "{shards}");
}
