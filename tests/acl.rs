//! ACL users, permissions, replication of ACL changes, protected mode and
//! the admin-only / rate-limited cluster verbs, against real nodes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const ALICE: &str = "user alice on >secret ~cache:* +@read +acl|whoami\n\
                     user ops on >opspw allkeys +@all -@admin\n";

/// A node with `ALICE` as its aclfile.
fn with_aclfile(n: usize, extra: &[&str]) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.acl");
    std::fs::write(&path, ALICE).unwrap();
    // The file must outlive the nodes: keep its directory.
    let path = path.display().to_string();
    std::mem::forget(dir);
    let mut args = vec!["--aclfile", path.as_str()];
    args.extend_from_slice(extra);
    Cluster::start(n, &args)
}

fn conn_err(node: &Node, user: &str, pass: &str) -> String {
    match conn_as(node, user, pass) {
        Ok(_) => panic!("{user} authenticated with {pass:?}"),
        Err(e) => e.to_string(),
    }
}

fn conn_as(node: &Node, user: &str, pass: &str) -> redis::RedisResult<redis::Connection> {
    let url = format!("redis://{user}:{pass}@127.0.0.1:{}/", node.port);
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(5))
}

fn err_text<T: std::fmt::Debug>(r: redis::RedisResult<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn read_only_user_with_key_patterns() {
    let c = with_aclfile(1, &[]);
    let node = &c.nodes[0];
    let _: () = redis::cmd("SET")
        .arg("cache:x")
        .arg("1")
        .query(&mut node.conn())
        .unwrap();
    let mut a = conn_as(node, "alice", "secret").unwrap();
    let v: String = redis::cmd("GET").arg("cache:x").query(&mut a).unwrap();
    assert_eq!(v, "1");
    let who: String = redis::cmd("ACL").arg("WHOAMI").query(&mut a).unwrap();
    assert_eq!(who, "alice");
    // Exact texts on the wire.
    raw_expect(
        &node.addr(),
        b"AUTH alice secret\r\nSET cache:x 2\r\nGET other:x\r\nSET cache:x 2 BADOPT\r\nAUTH alice nope\r\n",
        b"+OK\r\n-NOPERM User alice has no permissions to run the 'set' command\r\n-NOPERM No permissions to access a key\r\n-NOPERM User alice has no permissions to run the 'set' command\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    for (user, pass) in [("alice", "wrong"), ("nobody", "secret")] {
        let e = conn_err(node, user, pass);
        assert!(
            e.contains("AuthenticationFailed") || e.contains("WRONGPASS"),
            "{e}"
        );
    }
    // HELLO 3 AUTH as a named user.
    let out = String::from_utf8_lossy(&node.raw(b"HELLO 3 AUTH alice secret\r\nGET cache:x\r\n"))
        .into_owned();
    assert!(
        out.contains("proto") && out.ends_with("$1\r\n1\r\n"),
        "{out}"
    );
    // ACL LOG recorded the denials (newest first), as Redis words them.
    let log: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query(&mut node.conn())
        .unwrap();
    let field = |e: &std::collections::HashMap<String, redis::Value>, k: &str| -> String {
        redis::from_redis_value(e.get(k).unwrap_or(&redis::Value::Nil)).unwrap_or_default()
    };
    let reasons: Vec<(String, String, String)> = log
        .iter()
        .map(|e| (field(e, "reason"), field(e, "object"), field(e, "username")))
        .collect();
    assert!(
        reasons.contains(&("command".into(), "set".into(), "alice".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("key".into(), "other:x".into(), "alice".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("auth".into(), "auth".into(), "alice".into())),
        "{reasons:?}"
    );
    assert!(log[0].contains_key("age-seconds") && log[0].contains_key("client-info"));
    let _: () = redis::cmd("ACL")
        .arg("LOG")
        .arg("RESET")
        .query(&mut node.conn())
        .unwrap();
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .query(&mut node.conn())
        .unwrap();
    assert!(log.is_empty());
    for (field, at_least) in [
        ("acl_access_denied_cmd", 2),
        ("acl_access_denied_key", 1),
        ("acl_access_denied_auth", 3),
    ] {
        let n: u64 = node.info("stats", field).unwrap().parse().unwrap();
        assert!(n >= at_least, "{field}: {n}");
    }
    // Deleting a user (here one from the aclfile) closes its connections
    // at their next command, and it can no longer authenticate.
    let n: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg("alice")
        .query(&mut node.conn())
        .unwrap();
    assert_eq!(n, 1);
    raw_expect(
        &node.addr(),
        b"AUTH alice secret\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    let e = redis::cmd("GET").arg("cache:x").query::<String>(&mut a);
    assert!(
        e.is_err(),
        "a deleted user's connection still served: {e:?}"
    );
    let users: Vec<String> = redis::cmd("ACL")
        .arg("USERS")
        .query(&mut node.conn())
        .unwrap();
    assert_eq!(users, vec!["default", "ops"]);
}

#[test]
fn admin_verbs_need_admin() {
    let c = with_aclfile(1, &[]);
    let node = &c.nodes[0];
    let mut ops = conn_as(node, "ops", "opspw").unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut ops).unwrap();
    for (line, name) in [
        (&["CLUSTER", "FORGET", "x"][..], "cluster|forget"),
        (&["CLUSTER", "MEET", "127.0.0.1", "1"], "cluster|meet"),
        (&["CLUSTER", "FAILOVER", "FORCE"], "cluster|failover"),
        (&["RAFTCACHE", "SNAPSHOT"], "raftcache|snapshot"),
        (&["RAFTCACHE", "TRANSFER", "1"], "raftcache|transfer"),
        (&["RAFTCACHE", "PROMOTE", "2"], "raftcache|promote"),
        (
            &["RAFTCACHE", "ADD-LEARNER", "2", "127.0.0.1:1"],
            "raftcache|add-learner",
        ),
        (&["ACL", "SETUSER", "eve", "on"], "acl|setuser"),
    ] {
        let mut cmd = redis::cmd(line[0]);
        for a in &line[1..] {
            cmd.arg(*a);
        }
        let e = err_text(cmd.query::<redis::Value>(&mut ops));
        assert!(
            e.contains(&format!(
                "User ops has no permissions to run the '{name}' command"
            )),
            "{line:?}: {e}"
        );
    }
    // ACL CAT lists them under @admin.
    let admin: Vec<String> = redis::cmd("ACL")
        .arg("CAT")
        .arg("admin")
        .query(&mut node.conn())
        .unwrap();
    assert!(admin.contains(&"cluster|forget".to_string()), "{admin:?}");
    // The default user (+@all) still may.
    let _: () = redis::cmd("RAFTCACHE")
        .arg("SNAPSHOT")
        .query(&mut node.conn())
        .unwrap();
}

#[test]
fn passwords_are_never_shown() {
    let c = with_aclfile(1, &["--requirepass", "topsecret-pw"]);
    let node = &c.nodes[0];
    // Before AUTH, even a malformed known command is NOAUTH (as in Redis).
    raw_expect(
        &node.addr(),
        b"SET k v BADOPT\r\n",
        b"-NOAUTH Authentication required.\r\n",
    );
    let mut conn = node.conn();
    let _a = conn_as(node, "alice", "secret").unwrap();
    let config: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut conn)
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("everything")
        .query(&mut conn)
        .unwrap();
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
    let acl: Vec<String> = redis::cmd("ACL").arg("LIST").query(&mut conn).unwrap();
    let all = format!(
        "{config:?}\n{info}\n{clients}\n{acl:?}\n{}",
        node.log_text()
    );
    for secret in ["topsecret-pw", ">secret", "opspw"] {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
    assert!(clients.contains("user=alice"), "{clients}");
    // Stored hashed, as Redis does (SHA-256).
    assert!(
        acl.iter().any(|l| l.starts_with("user alice on #")
            && l.ends_with("~cache:* resetchannels -@all +@read +acl|whoami")),
        "{acl:?}"
    );
    assert!(
        acl.iter().any(|l| l.starts_with("user default on #")),
        "{acl:?}"
    );
    // redis-cli as a named user.
    if tool_available("redis-cli", "passwords_are_never_shown") {
        // One redis-cli call as alice; its stdout.
        let as_alice = |cmd: &[&str]| {
            let port = node.port.to_string();
            let out = Command::new("redis-cli")
                .args(["-p", &port, "--user", "alice", "--pass", "secret"])
                .arg("--no-auth-warning")
                .args(cmd)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(as_alice(&["ACL", "WHOAMI"]).trim(), "alice");
        let text = as_alice(&["SET", "cache:x", "1"]);
        assert!(
            text.contains("NOPERM User alice has no permissions to run the 'set' command"),
            "{text}"
        );
    }
}

fn acl_list(node: &Node) -> Option<Vec<String>> {
    redis::cmd("ACL")
        .arg("LIST")
        .query(&mut node.try_conn()?)
        .ok()
}

#[test]
fn setuser_is_replicated_and_survives_restart_and_snapshot() {
    let mut c = Cluster::start(3, &[]);
    let l = c.leader();
    let f = (l + 1) % 3;
    let mut lc = c.nodes[l].conn();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("bob")
        .arg("on")
        .arg(">bobpw")
        .arg("~cache:*")
        .arg("+@read")
        .arg("+acl|whoami")
        .query(&mut lc)
        .unwrap();
    // A bad rule is refused before anything is proposed.
    let e = err_text(
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("bob")
            .arg("+nosuchcommand")
            .query::<()>(&mut lc),
    );
    assert!(
        e.contains("Error in ACL SETUSER modifier '+nosuchcommand'"),
        "{e}"
    );
    let bob = wait_for("bob on the follower", Duration::from_secs(20), || {
        acl_list(&c.nodes[f])?
            .into_iter()
            .find(|l| l.starts_with("user bob "))
    });
    assert!(
        bob.ends_with("~cache:* resetchannels -@all +@read +acl|whoami"),
        "{bob}"
    );
    let mut b = conn_as(&c.nodes[f], "bob", "bobpw").unwrap();
    let e = err_text(
        redis::cmd("SET")
            .arg("cache:1")
            .arg("x")
            .query::<()>(&mut b),
    );
    assert!(e.contains("NOPERM"), "{e}");
    // Incremental SETUSER on an existing user, then a snapshot and a
    // restart of every node: the users come back from snapshot + log.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("carol")
        .arg("on")
        .arg(">c")
        .arg("allkeys")
        .arg("+@all")
        .query(&mut lc)
        .unwrap();
    let _: () = redis::cmd("RAFTCACHE")
        .arg("SNAPSHOT")
        .query(&mut lc)
        .unwrap();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("bob")
        .arg("+set")
        .query(&mut lc)
        .unwrap();
    let n: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg("carol")
        .arg("nobody")
        .query(&mut lc)
        .unwrap();
    assert_eq!(n, 1);
    wait_for(
        "the follower to apply DELUSER",
        Duration::from_secs(20),
        || {
            let list = acl_list(&c.nodes[f])?;
            (!list.iter().any(|l| l.starts_with("user carol "))).then_some(())
        },
    );
    drop(lc);
    drop(b);
    for n in c.nodes.iter_mut() {
        n.kill9();
    }
    for n in c.nodes.iter_mut() {
        n.start();
    }
    c.leader();
    for node in &c.nodes {
        let list = wait_for("ACL users after restart", Duration::from_secs(30), || {
            let list = acl_list(node)?;
            list.iter()
                .any(|l| l.starts_with("user bob ") && l.ends_with("+@read +acl|whoami +set"))
                .then_some(list)
        });
        assert!(
            !list.iter().any(|l| l.starts_with("user carol ")),
            "{list:?}"
        );
        let mut b = conn_as(node, "bob", "bobpw").unwrap();
        let who: String = redis::cmd("ACL").arg("WHOAMI").query(&mut b).unwrap();
        assert_eq!(who, "bob");
        let e = conn_err(node, "carol", "c");
        assert!(
            e.contains("AuthenticationFailed") || e.contains("WRONGPASS"),
            "{e}"
        );
    }
}

const DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

#[test]
fn protected_mode() {
    let Some(ip) = non_loopback_ip("protected_mode") else {
        return;
    };
    let c = Cluster::single(&["--bind", "0.0.0.0", "--cluster-secret", "acl-test"]);
    let remote = format!("{ip}:{}", c.nodes[0].port);
    let (out, closed) = raw_exchange_closed(&remote, b"PING\r\n", Duration::from_secs(2));
    assert_eq!(String::from_utf8_lossy(&out), DENIED);
    assert!(closed);
    // Loopback clients are served.
    raw_expect(&c.nodes[0].addr(), b"PING\r\n", b"+PONG\r\n");
    let off = Cluster::single(&[
        "--bind",
        "0.0.0.0",
        "--cluster-secret",
        "acl-test",
        "--protected-mode",
        "no",
    ]);
    raw_expect(
        &format!("{ip}:{}", off.nodes[0].port),
        b"PING\r\n",
        b"+PONG\r\n",
    );
    let pw = Cluster::single(&[
        "--bind",
        "0.0.0.0",
        "--cluster-secret",
        "acl-test",
        "--requirepass",
        "pw",
    ]);
    raw_expect(
        &format!("{ip}:{}", pw.nodes[0].port),
        b"PING\r\n",
        b"-NOAUTH Authentication required.\r\n",
    );
}

#[test]
fn transfer_only_to_a_voter() {
    let c = Cluster::single(&[]);
    let e = err_text(
        redis::cmd("RAFTCACHE")
            .arg("TRANSFER")
            .arg("7")
            .query::<()>(&mut c.nodes[0].conn()),
    );
    assert!(e.contains("node 7 is not a voter of this cluster"), "{e}");
}

#[test]
fn forced_failover_loop_keeps_a_leader() {
    let c = Cluster::start(3, &[]);
    let stop = Instant::now() + Duration::from_secs(10);
    let (mut ok, mut tried) = (0u32, 0u32);
    let mut refused = 0u32;
    let mut i = 0u64;
    while Instant::now() < stop {
        i += 1;
        // Every follower is told to FORCE/TAKEOVER.
        if let Some(l) = c.try_leader() {
            for (n, node) in c.nodes.iter().enumerate() {
                if n == l {
                    continue;
                }
                let mode = if i % 2 == 0 { "FORCE" } else { "TAKEOVER" };
                if let Some(mut conn) = node.try_conn() {
                    let r: redis::RedisResult<()> = redis::cmd("CLUSTER")
                        .arg("FAILOVER")
                        .arg(mode)
                        .query(&mut conn);
                    if r.is_err() {
                        refused += 1;
                    }
                }
            }
        }
        // And a client writes.
        tried += 1;
        let wrote = c.try_leader().and_then(|l| {
            redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg("v")
                .query::<()>(&mut c.nodes[l].try_conn()?)
                .ok()
        });
        if wrote.is_some() {
            ok += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("{ok}/{tried} writes succeeded, {refused} failovers refused");
    assert!(ok * 100 >= tried * 80, "{ok}/{tried} writes succeeded");
    assert!(refused > 0);
    c.leader();
}
