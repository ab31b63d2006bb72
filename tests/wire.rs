//! Raw RESP bytes in, raw bytes out, against a real single-node server.
//! Covers RESP2/RESP3 shapes, inline commands, pipelining and every row of
//! docs/protocol.md's hostile-input table.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{
    pinged_conn, raw_exchange, raw_exchange_closed, raw_expect, resp_command, wait_for, Cluster,
};

fn server() -> Cluster {
    Cluster::single(&[])
}

#[test]
fn resp2_basic_replies() {
    let c = server();
    let a = c.nodes[0].addr();
    raw_expect(&a, b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n");
    raw_expect(&a, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", b"+OK\r\n");
    raw_expect(&a, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$1\r\nv\r\n");
    raw_expect(&a, b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n", b"$-1\r\n");
    raw_expect(&a, b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n", b":1\r\n");
    raw_expect(
        &a,
        b"*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    raw_expect(
        &a,
        b"*3\r\n$4\r\nMGET\r\n$1\r\nk\r\n$1\r\nx\r\n",
        b"*2\r\n$1\r\nv\r\n$-1\r\n",
    );
    raw_expect(
        &a,
        b"*1\r\n$3\r\nGET\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    raw_expect(
        &a,
        b"*3\r\n$3\r\nFOO\r\n$1\r\na\r\n$1\r\nb\r\n",
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    );
    raw_expect(
        &a,
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n",
        b"-ERR DB index is out of range\r\n",
    );
    raw_expect(&a, b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n", b"+OK\r\n");
}

#[test]
fn resp3_after_hello() {
    let c = server();
    let a = c.nodes[0].addr();
    // After HELLO 3 a missing key is RESP3 null, and a map is '%'.
    let out = raw_exchange(
        &a,
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n*4\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n$10\r\nappendonly\r\n",
        Duration::from_millis(500),
    );
    let s = String::from_utf8_lossy(&out);
    assert!(s.starts_with('%'), "HELLO 3 replies with a map: {s:?}");
    assert!(s.contains("$5\r\nproto\r\n:3\r\n"), "{s:?}");
    assert!(s.contains("_\r\n"), "RESP3 null for a missing key: {s:?}");
    assert!(
        s.contains("%2\r\n$4\r\nsave\r\n"),
        "CONFIG GET is a map in RESP3: {s:?}"
    );
    // HELLO with an unsupported version.
    raw_expect(
        &a,
        b"*2\r\n$5\r\nHELLO\r\n$1\r\n4\r\n",
        b"-NOPROTO unsupported protocol version\r\n",
    );
}

#[test]
fn inline_commands_and_pipelining() {
    let c = server();
    let a = c.nodes[0].addr();
    raw_expect(&a, b"PING\r\n", b"+PONG\r\n");
    raw_expect(
        &a,
        b"SET greeting \"hello world\"\r\nGET greeting\r\n",
        b"+OK\r\n$11\r\nhello world\r\n",
    );
    // 100 pipelined INCRs come back in order, each its own value.
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 1..=100 {
        req.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
        want.extend_from_slice(format!(":{i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nctr\r\n");
    want.extend_from_slice(b"$3\r\n100\r\n");
    raw_expect(&a, &req, &want);
    // Empty requests are ignored.
    raw_expect(&a, b"*0\r\n*-1\r\n\r\n\r\nPING\r\n", b"+PONG\r\n");
}

#[test]
fn request_split_across_many_writes() {
    let c = server();
    let mut s = TcpStream::connect(c.nodes[0].addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let value = "x".repeat(100_000);
    let req = format!(
        "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n{}\r\n",
        value.len(),
        value
    );
    for chunk in req.as_bytes().chunks(777) {
        s.write_all(chunk).unwrap();
    }
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+OK\r\n");
    s.write_all(b"*2\r\n$6\r\nSTRLEN\r\n$3\r\nbig\r\n").unwrap();
    let mut buf = [0u8; 9];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b":100000\r\n");
}

/// Send `req`, expect exactly `reply` and then the connection closed by
/// the server (EOF or reset, not just silence).
fn expect_error_and_close(addr: &str, req: &[u8], reply: &str) {
    let (out, closed) = raw_exchange_closed(addr, req, Duration::from_secs(5));
    let shown = String::from_utf8_lossy(req);
    assert_eq!(String::from_utf8_lossy(&out), reply, "request {shown:?}");
    assert!(
        closed,
        "the server kept the connection open after {shown:?}"
    );
}

#[test]
fn hostile_inputs() {
    let c = server();
    let a = c.nodes[0].addr();
    expect_error_and_close(
        &a,
        b"*abc\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
    expect_error_and_close(
        &a,
        b"*-5\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
    expect_error_and_close(
        &a,
        b"*4294967296\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
    expect_error_and_close(
        &a,
        b"*1\r\n$abc\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    expect_error_and_close(
        &a,
        b"*1\r\n$999999999999\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    expect_error_and_close(
        &a,
        b"*1\r\n:5\r\n",
        "-ERR Protocol error: expected '$', got ':'\r\n",
    );
    expect_error_and_close(
        &a,
        b"SET k \"unbalanced\r\n",
        "-ERR Protocol error: unbalanced quotes in request\r\n",
    );
    let long = vec![b'a'; 70 * 1024];
    expect_error_and_close(&a, &long, "-ERR Protocol error: too big inline request\r\n");
    let mut long_count = b"*".to_vec();
    long_count.extend(std::iter::repeat_n(b'1', 70 * 1024));
    expect_error_and_close(
        &a,
        &long_count,
        "-ERR Protocol error: too big mbulk count string\r\n",
    );
    // HTTP on the RESP port: closed without a reply.
    expect_error_and_close(&a, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", "");
    expect_error_and_close(&a, b"Host: example.com\r\n", "");
    // The server is still fine afterwards.
    raw_expect(&a, b"PING\r\n", b"+PONG\r\n");
}

/// Counts the bytes the server has read from every client but itself
/// (`total_net_input_bytes` minus its own INFO requests).
struct InputMeter {
    con: redis::Connection,
    polls: u64,
}

impl InputMeter {
    fn new(c: &Cluster) -> InputMeter {
        InputMeter {
            con: c.nodes[0].conn(),
            polls: 0,
        }
    }

    fn read(&mut self) -> u64 {
        let info = redis::cmd("INFO").arg("stats").to_owned();
        let total: String = info.query(&mut self.con).unwrap();
        self.polls += 1;
        let total: u64 = total
            .lines()
            .find_map(|l| l.strip_prefix("total_net_input_bytes:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        total - self.polls * info.get_packed_command().len() as u64
    }

    /// Wait until the server has read `n` more bytes than at `base`.
    fn wait_read(&mut self, base: u64, n: usize) {
        wait_for(
            "the server to read what was sent",
            Duration::from_secs(10),
            || (self.read() >= base + n as u64).then_some(()),
        );
    }
}

fn vm_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn declared_sizes_are_not_preallocated() {
    let c = server();
    let a = c.nodes[0].addr();
    let pid = c.nodes[0].pid().unwrap();
    raw_expect(&a, b"PING\r\n", b"+PONG\r\n");
    // VmPeak, not VmRSS: an allocation the kernel has not backed with pages
    // yet (a Vec::with_capacity of 500 MB) shows in virtual size only.
    let peak0 = vm_kb(pid, "VmPeak:");
    let mut meter = InputMeter::new(&c);
    let base = meter.read();
    // A huge declared array and a 500 MB declared bulk with tiny bodies.
    let first: [&[u8]; 2] = [
        b"*2147483647\r\n$3\r\nSET\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nabc",
    ];
    let mut conns: Vec<TcpStream> = first
        .iter()
        .map(|req| {
            let mut s = TcpStream::connect(&a).unwrap();
            s.write_all(req).unwrap();
            s
        })
        .collect();
    let sent: usize = first.iter().map(|r| r.len()).sum();
    meter.wait_read(base, sent);
    // A second write is read only after the server parsed the first one
    // (each connection parses what it has before reading again).
    // (Both stay valid requests in progress: another element header, more
    // of the bulk body.)
    let more: [&[u8]; 2] = [b"$1\r\n", b"xyz"];
    for (s, m) in conns.iter_mut().zip(more) {
        s.write_all(m).unwrap();
    }
    meter.wait_read(base, sent + 7);
    raw_expect(&a, b"PING\r\n", b"+PONG\r\n");
    let peak = vm_kb(pid, "VmPeak:");
    assert!(
        peak < peak0 + 200 * 1024,
        "VmPeak grew from {peak0} kB to {peak} kB after hostile declared sizes"
    );
}

#[test]
fn arithmetic_and_ttl_errors() {
    let c = server();
    let a = c.nodes[0].addr();
    raw_expect(
        &a,
        b"SET n 9223372036854775807\r\nINCR n\r\n",
        b"+OK\r\n-ERR increment or decrement would overflow\r\n",
    );
    raw_expect(
        &a,
        b"SET k v EX 0\r\n",
        b"-ERR invalid expire time in 'set' command\r\n",
    );
    raw_expect(
        &a,
        b"SET k v EX 9223372036854775807\r\n",
        b"-ERR invalid expire time in 'set' command\r\n",
    );
    raw_expect(
        &a,
        b"SET f 1\r\nINCRBYFLOAT f inf\r\n",
        b"+OK\r\n-ERR increment would produce NaN or Infinity\r\n",
    );
    raw_expect(&a, b"SET k v NX XX\r\n", b"-ERR syntax error\r\n");
    raw_expect(
        &a,
        b"SETRANGE k 536870912 x\r\n",
        b"-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n",
    );
}

#[test]
fn maxclients_is_enforced() {
    let c = Cluster::single(&["--maxclients", "3"]);
    let a = c.nodes[0].addr();
    // Take the three slots, each proven by a PONG: a slot may still be held
    // for a moment by a harness connection that has just closed, and a
    // client refused then must try again.
    let _keep: Vec<TcpStream> = (0..3)
        .map(|_| wait_for("a client slot", Duration::from_secs(30), || pinged_conn(&a)))
        .collect();
    let (out, closed) = raw_exchange_closed(&a, b"PING\r\n", Duration::from_secs(5));
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR max number of clients reached\r\n"
    );
    assert!(closed, "a refused client is disconnected");
}

#[test]
fn auth_gate() {
    let c = Cluster::single(&["--requirepass", "s3cret"]);
    let a = c.nodes[0].addr();
    raw_expect(&a, b"GET k\r\n", b"-NOAUTH Authentication required.\r\n");
    raw_expect(
        &a,
        b"AUTH nope\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    raw_expect(&a, b"AUTH s3cret\r\nPING\r\n", b"+OK\r\n+PONG\r\n");
    // Before AUTH: more than 10 args is a protocol error.
    let mut req = b"*11\r\n".to_vec();
    for _ in 0..11 {
        req.extend_from_slice(b"$1\r\na\r\n");
    }
    expect_error_and_close(
        &a,
        &req,
        "-ERR Protocol error: unauthenticated multibulk length\r\n",
    );
    let d = Cluster::single(&[]);
    raw_expect(
        &d.nodes[0].addr(),
        b"AUTH x\r\n",
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    );
}

#[test]
fn query_buffer_is_bounded_before_auth() {
    // Before AUTH a client may not buffer more than 1 MB of one request: a
    // huge inline-less stream of small args is cut off, not accumulated.
    let c = Cluster::single(&["--requirepass", "pw"]);
    let a = c.nodes[0].addr();
    let big = format!("*2\r\n$3\r\nGET\r\n${}\r\n", 20_000);
    expect_error_and_close(
        &a,
        big.as_bytes(),
        "-ERR Protocol error: unauthenticated bulk length\r\n",
    );
    let mut s = TcpStream::connect(&a).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000\r\n")
        .ok();
    while sent < 8 * 1024 * 1024 {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    // The 10 000-byte value completes a request (NOAUTH); the 'x' flood that
    // follows is an inline line with no newline: cut at 64 KB and closed,
    // so the writes start failing long before 8 MB.
    assert!(
        sent < 8 * 1024 * 1024,
        "the server kept accepting {sent} bytes"
    );
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("-NOAUTH"), "{out}");
    raw_expect(&a, b"AUTH pw\r\nPING\r\n", b"+OK\r\n+PONG\r\n");
}

/// The limits before AUTH (`requirepass` set) at their edges, as Redis
/// draws them: 10 arguments and 16 KB bulks pass (and get NOAUTH, the
/// connection stays open); 11 arguments (see `auth_gate`), a 17 KB bulk or
/// 2 MB without a newline are refused with the protocol error and closed.
/// After AUTH the same requests are served.
#[test]
fn unauthenticated_limits_at_their_edges() {
    let c = Cluster::single(&["--requirepass", "pw"]);
    let a = c.nodes[0].addr();
    let command = resp_command;
    let del10: Vec<&[u8]> = std::iter::once(&b"DEL"[..])
        .chain(std::iter::repeat_n(&b"k"[..], 9))
        .collect();
    let del11: Vec<&[u8]> = std::iter::once(&b"DEL"[..])
        .chain(std::iter::repeat_n(&b"k"[..], 10))
        .collect();
    let at_limit = vec![b'v'; 16 * 1024];
    let past_limit = vec![b'v'; 17 * 1024];
    let set16k = command(&[b"SET", b"k", &at_limit]);
    let set17k = command(&[b"SET", b"k", &past_limit]);
    for ok in [command(&del10), set16k.clone()] {
        let (out, closed) = raw_exchange_closed(&a, &ok, Duration::from_millis(500));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-NOAUTH Authentication required.\r\n"
        );
        assert!(!closed, "closed at the limit");
    }
    expect_error_and_close(
        &a,
        &set17k,
        "-ERR Protocol error: unauthenticated bulk length\r\n",
    );
    let no_newline = vec![b'a'; 2 << 20];
    expect_error_and_close(
        &a,
        &no_newline,
        "-ERR Protocol error: too big inline request\r\n",
    );
    // Authenticated, the same requests are fine.
    let mut req = b"AUTH pw\r\n".to_vec();
    req.extend(command(&del11));
    req.extend(set17k);
    raw_expect(&a, &req, b"+OK\r\n:0\r\n+OK\r\n");
}
