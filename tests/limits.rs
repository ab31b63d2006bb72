//! Bounded resources under abuse, against a real node over real sockets:
//! who may reach `/metrics`, a flood of connections, clients that pipeline
//! without reading, idle clients, and a client trickling a huge request.
//! Each test states what it bounds and by how much; docs/protocol.md's
//! hostile-input table points here.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    free_port, non_loopback_ip, pinged_conn, raw_exchange_closed, resp_command, wait_for, Cluster,
    Node,
};

const MB: u64 = 1 << 20;

/// `VmRSS` of process `pid`, bytes.
fn vm_rss(pid: u32) -> u64 {
    common::proc_status_bytes(pid, "VmRSS")
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
    // A node bound beyond loopback needs a cluster secret for its bus.
    let c = Cluster::single(&[
        "--bind",
        "0.0.0.0",
        "--metrics-port",
        &port.to_string(),
        "--cluster-secret",
        "limits-test",
        // The premise below pings over a non-loopback address.
        "--protected-mode",
        "no",
    ]);
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
        "--cluster-secret",
        "limits-test",
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

/// `VmHWM` of process `pid`, bytes.
fn vm_hwm(pid: u32) -> u64 {
    common::proc_status_bytes(pid, "VmHWM")
}

/// One INFO field over a fresh connection.
fn info_u64(node: &Node, section: &str, field: &str) -> u64 {
    wait_for(&format!("INFO {field}"), Duration::from_secs(10), || {
        node.info(section, field)?.parse().ok()
    })
}

/// A well-behaved client, connected before the abuse starts, doing SET and
/// GET in a loop on its own thread; every answer must come, and within
/// [`PATIENCE`].
struct Bystander {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, Duration)>,
}

/// The longest a well-behaved client may wait for one answer while another
/// client abuses the node ("a couple of seconds" on a loaded debug build).
const PATIENCE: Duration = Duration::from_secs(2);

impl Bystander {
    fn start(node: &Node) -> Bystander {
        let mut con = node.conn();
        con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut answered, mut slowest) = (0u64, Duration::ZERO);
            while !stopped.load(Ordering::SeqCst) {
                let t = Instant::now();
                let _: () = redis::cmd("SET")
                    .arg("bystander")
                    .arg(answered)
                    .query(&mut con)
                    .expect("the bystander's SET is answered");
                slowest = slowest.max(t.elapsed());
                let t = Instant::now();
                let v: u64 = redis::cmd("GET")
                    .arg("bystander")
                    .query(&mut con)
                    .expect("the bystander's GET is answered");
                slowest = slowest.max(t.elapsed());
                assert_eq!(v, answered);
                answered += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (answered, slowest)
        });
        Bystander { stop, thread }
    }

    /// Stop; check it kept getting answers, each within [`PATIENCE`].
    fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        let (answered, slowest) = self.thread.join().expect("bystander thread");
        eprintln!("bystander: {answered} SET+GET rounds, slowest answer {slowest:?}");
        assert!(answered > 0, "the bystander got no answer at all");
        assert!(
            slowest < PATIENCE,
            "the bystander waited {slowest:?} for one answer"
        );
    }
}

const REFUSED: &str = "-ERR max number of clients reached\r\n";

/// `maxclients` 50, then 200 connections at once: the extra ones get
/// exactly Redis's refusal and are closed, the accepted ones and a client
/// connected before keep being served, the slots come back when the flood
/// leaves, and the node's memory barely moves.
#[test]
fn connection_flood_is_refused_and_bounded() {
    const MAX: usize = 50;
    const FLOOD: usize = 200;
    let c = Cluster::single(&["--maxclients", &MAX.to_string()]);
    let node = &c.nodes[0];
    let pid = node.pid().unwrap();
    let addr = node.addr();
    let bystander = Bystander::start(node); // holds one slot
    let base = vm_rss(pid);

    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| TcpStream::connect(&addr).expect("the kernel accepts the connection"))
        .collect();
    let mut got = vec![Vec::new(); FLOOD];
    let mut closed = vec![false; FLOOD];
    // Read what each flood client got so far; how many are closed.
    let poll = |flood: &mut [TcpStream], got: &mut [Vec<u8>], closed: &mut [bool]| {
        for i in 0..flood.len() {
            if closed[i] {
                continue;
            }
            let s = &mut flood[i];
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 256];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break closed[i] = true,
                    Ok(n) => got[i].extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => break closed[i] = true,
                }
            }
        }
        closed.iter().filter(|c| **c).count()
    };
    // At most MAX - 1 of the flood fit beside the bystander.
    wait_for(
        "the refused clients to be closed",
        Duration::from_secs(30),
        || (poll(&mut flood, &mut got, &mut closed) > FLOOD - MAX).then_some(()),
    );
    // A moment more: an accepted client must not be closed later.
    std::thread::sleep(Duration::from_millis(500));
    let refused = poll(&mut flood, &mut got, &mut closed);
    for (i, out) in got.iter().enumerate() {
        if closed[i] {
            assert_eq!(String::from_utf8_lossy(out), REFUSED, "flood client {i}");
        } else {
            assert!(out.is_empty(), "an accepted client got {out:?} unasked");
        }
    }
    // The accepted ones are served.
    let accepted = FLOOD - refused;
    assert!(
        (MAX - 5..MAX).contains(&accepted),
        "{accepted} of {FLOOD} accepted with maxclients {MAX}"
    );
    for (s, _) in flood.iter_mut().zip(&closed).filter(|(_, c)| !**c) {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        let mut pong = [0u8; 7];
        s.read_exact(&mut pong)
            .expect("an accepted client is answered");
        assert_eq!(&pong, b"+PONG\r\n");
    }
    bystander.finish();
    let peak = vm_hwm(pid);
    drop(flood);

    // The slots come back: MAX - 1 new clients are served again (a slot
    // may take a moment to be released after its client left).
    let _again: Vec<TcpStream> = (0..MAX - 1)
        .map(|_| {
            wait_for(
                "a client slot after the flood",
                Duration::from_secs(10),
                || pinged_conn(&addr),
            )
        })
        .collect();
    drop(_again);
    let rejected = info_u64(node, "stats", "rejected_connections");
    assert!(
        rejected >= refused as u64,
        "INFO rejected_connections {rejected} < {refused}"
    );
    assert!(
        peak < base + 64 * MB,
        "RSS peaked at {} MB from {} MB during a {FLOOD}-connection flood",
        peak / MB,
        base / MB
    );
}

/// `SET key value` on `con`, which must succeed.
fn store(con: &mut redis::Connection, key: &str, value: Vec<u8>) {
    let _: () = redis::cmd("SET").arg(key).arg(value).query(con).unwrap();
}

/// Read from `s` until the server closes it; the bytes read. Panics with
/// `why` if it neither closes nor answers within the read timeout.
fn read_until_closed(s: &mut TcpStream, why: &str) -> u64 {
    let mut received = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(e) => panic!("{why}: {e}"),
        }
    }
}

const CLOSED_LINE: &str = "scheduled to be closed ASAP for overcoming of output buffer limits.";

/// Write `count` copies of `request` on `s` from a thread, never reading;
/// the thread returns how many were written before a write failed (the
/// server closed us) or blocked for `stall` (TCP pushed back).
fn pipeline_without_reading(
    s: &TcpStream,
    request: Vec<u8>,
    count: usize,
    stall: Duration,
) -> std::thread::JoinHandle<(usize, Option<std::io::ErrorKind>)> {
    let mut s = s.try_clone().unwrap();
    s.set_write_timeout(Some(stall)).unwrap();
    std::thread::spawn(move || {
        const PER_WRITE: usize = 1000;
        let chunk = request.repeat(PER_WRITE);
        let mut sent = 0;
        while sent < count {
            if let Err(e) = s.write_all(&chunk) {
                return (sent, Some(e.kind()));
            }
            sent += PER_WRITE;
        }
        (sent, None)
    })
}

/// 200 000 pipelined `GET big` (1 MB value) from a client that never
/// reads: the node stops at the normal class's hard output limit, closes
/// the client with Redis's log line, and its memory stays within twice the
/// limit; another client is answered throughout. The limit is given in
/// Redis's class syntax, with tiny replica and pubsub limits that must not
/// apply to normal clients.
#[test]
fn pipelined_gets_without_reading_hit_the_output_limit() {
    let hard = 64 * MB;
    let c = Cluster::single(&[
        "--client-output-buffer-limit",
        "normal 64mb 16mb 10 replica 1mb 1mb 1 pubsub 1kb 1kb 1",
    ]);
    let node = &c.nodes[0];
    let pid = node.pid().unwrap();
    let mut con = node.conn();
    store(&mut con, "big", vec![b'x'; MB as usize]);
    let shown: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        shown,
        [
            "client-output-buffer-limit",
            "normal 67108864 16777216 10 slave 1048576 1048576 1 pubsub 1024 1024 1"
        ]
    );
    // A normal client may read well past the pubsub and replica limits.
    let v: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(v.len() as u64, MB);
    let bystander = Bystander::start(node);
    let base = vm_rss(pid);
    let bound = base + 2 * hard + 64 * MB;

    let abuser = TcpStream::connect(node.addr()).unwrap();
    let writer = pipeline_without_reading(
        &abuser,
        resp_command(&[b"GET", b"big"]),
        200_000,
        Duration::from_secs(30),
    );
    wait_for("the abuser to be closed", Duration::from_secs(60), || {
        let peak = vm_hwm(pid);
        assert!(
            peak < bound,
            "RSS peaked at {} MB (from {} MB) with a {} MB output limit",
            peak / MB,
            base / MB,
            hard / MB
        );
        node.log_text().contains(CLOSED_LINE).then_some(())
    });
    let (sent, error) = writer.join().unwrap();
    assert!(
        sent < 200_000,
        "all {sent} requests were taken in: the abuser was neither closed nor throttled"
    );
    eprintln!("abuser: {sent} requests written, then {error:?}");
    // What reached the abuser: never more than the limit; then the close.
    let mut abuser = abuser;
    abuser
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let received = read_until_closed(&mut abuser, "the abuser was neither answered nor closed");
    assert!(
        received <= hard,
        "{received} reply bytes past a {hard}-byte limit"
    );
    bystander.finish();
    assert_eq!(node.log_text().matches(CLOSED_LINE).count(), 1);
    let peak = vm_hwm(pid);
    assert!(peak < bound, "RSS peaked at {} MB", peak / MB);
}

/// 200 000 pipelined requests, half writes and half `GET` of a 4 KB value
/// (800 MB of replies), from a client that never reads, under the default
/// limits: every batch of replies is under the output limit, so the node
/// neither closes it nor buffers its replies: it stops reading from it and
/// TCP throttles the client. Memory stays flat and another client is
/// answered throughout.
#[test]
fn pipelined_requests_without_reading_are_throttled() {
    let c = Cluster::single(&[]);
    let node = &c.nodes[0];
    let pid = node.pid().unwrap();
    let mut con = node.conn();
    store(&mut con, "medium", vec![b'y'; 4096]);
    let bystander = Bystander::start(node);
    let base = vm_rss(pid);

    let abuser = TcpStream::connect(node.addr()).unwrap();
    let mut request = resp_command(&[b"SET", b"k", b"v"]);
    request.extend(resp_command(&[b"GET", b"medium"]));
    let writer = pipeline_without_reading(&abuser, request, 100_000, Duration::from_secs(5));
    let (sent, error) = writer.join().unwrap();
    eprintln!("abuser: {} requests written, then {error:?}", 2 * sent);
    assert!(
        sent < 100_000 && error == Some(std::io::ErrorKind::WouldBlock),
        "the abuser was not throttled: {sent} pairs written, {error:?}"
    );
    bystander.finish();
    let peak = vm_hwm(pid);
    assert!(
        peak < base + 64 * MB,
        "RSS peaked at {} MB from {} MB with a client not reading",
        peak / MB,
        base / MB
    );
    // The node is fine, and the abuser too once it reads.
    let v: Vec<u8> = redis::cmd("GET").arg("medium").query(&mut con).unwrap();
    assert_eq!(v.len(), 4096);
    drop(abuser);
}

/// `timeout 1`: a client that says nothing, or stops talking, is closed
/// after about a second; one that keeps talking is not.
#[test]
fn idle_clients_are_closed_after_timeout() {
    let c = Cluster::single(&["--timeout", "1"]);
    let addr = c.nodes[0].addr();
    // Time until the server closes `s`, within a bounded wait.
    let closed_after = |mut s: TcpStream| {
        std::thread::spawn(move || {
            let t = Instant::now();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => Some(t.elapsed()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(t.elapsed()),
                _ => None,
            }
        })
    };
    let silent = closed_after(TcpStream::connect(&addr).unwrap());
    let mut quiet = TcpStream::connect(&addr).unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    quiet.write_all(b"PING\r\n").unwrap();
    let mut pong = [0u8; 7];
    quiet.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
    let quiet = closed_after(quiet);

    // Talking every 300 ms for 3 s: never closed.
    let mut active = TcpStream::connect(&addr).unwrap();
    active
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        active.write_all(b"PING\r\n").unwrap();
        active
            .read_exact(&mut pong)
            .expect("an active client is not closed");
        assert_eq!(&pong, b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    for (who, t) in [("silent", silent), ("quiet", quiet)] {
        let t = t.join().unwrap();
        let t = t.unwrap_or_else(|| panic!("the {who} client was not closed within 10 s"));
        assert!(
            t >= Duration::from_millis(500) && t < Duration::from_secs(5),
            "the {who} client was closed after {t:?} with timeout 1"
        );
    }
}

/// `timeout 1` also closes a client that stopped reading: replies it does
/// not take count as idleness (Redis counts a write as an interaction), so
/// a client that pipelines without reading cannot hold its connection, and
/// the replies queued for it, forever.
#[test]
fn a_client_that_stops_reading_is_closed_after_timeout() {
    let c = Cluster::single(&["--timeout", "1"]);
    let node = &c.nodes[0];
    let mut con = node.conn();
    store(&mut con, "medium", vec![b'y'; 4096]);
    let abuser = TcpStream::connect(node.addr()).unwrap();
    // 50 000 GETs of 4 KB: 200 MB of replies, under every output limit, so
    // only TCP (and `timeout`) stand between the node and the client.
    let writer = pipeline_without_reading(
        &abuser,
        resp_command(&[b"GET", b"medium"]),
        50_000,
        Duration::from_secs(20),
    );
    let (sent, error) = writer.join().unwrap();
    eprintln!("abuser: {sent} requests written, then {error:?}");
    // The requests fit in the socket buffers; the replies do not. Stay
    // away well past `timeout` while the node's writes are stuck, then
    // read what is left: a close, not the whole 200 MB.
    std::thread::sleep(Duration::from_secs(3));
    let mut abuser = abuser;
    abuser
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let received = read_until_closed(
        &mut abuser,
        "the client that stopped reading was not closed",
    );
    let all = 50_000 * (4096 + 12);
    assert!(
        received < all / 2,
        "{received} of {all} reply bytes delivered: the stalled client was kept"
    );
    // The node still serves (a new connection: `con` idled past `timeout`).
    let v: Vec<u8> = redis::cmd("GET")
        .arg("medium")
        .query(&mut node.conn())
        .unwrap();
    assert_eq!(v.len(), 4096);
}

/// `client-query-buffer-limit 2mb`: a declared 512 MB bulk is refused at
/// its length line (`proto-max-bulk-len`, which may not exceed the query
/// buffer limit); a request whose arguments add up past 2 MB, trickled in,
/// is cut once 2 MB are pending; a request just under the limit, trickled
/// the same way, is served.
#[test]
fn query_buffer_limit_cuts_a_trickled_request() {
    let c = Cluster::single(&[
        "--client-query-buffer-limit",
        "2mb",
        "--proto-max-bulk-len",
        "2mb",
    ]);
    let node = &c.nodes[0];
    let addr = node.addr();
    let (out, closed) = raw_exchange_closed(
        &addr,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nxxxx",
        Duration::from_secs(5),
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);

    /// Send `request` 16 KB at a time, 1 ms apart, until done or a write
    /// fails; bytes sent.
    fn trickle(s: &mut TcpStream, request: &[u8]) -> usize {
        let mut sent = 0;
        for chunk in request.chunks(16 << 10) {
            if s.write_all(chunk).is_err() {
                break;
            }
            sent += chunk.len();
            std::thread::sleep(Duration::from_millis(1));
        }
        sent
    }

    // MSET of four 1.5 MB values, 6 MB in all: cut after about 2 MB.
    let value = vec![b'x'; 1_500_000];
    let mset: Vec<&[u8]> = vec![
        b"MSET", b"a", &value, b"b", &value, b"c", &value, b"d", &value,
    ];
    let request = resp_command(&mset);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let sent = trickle(&mut s, &request);
    let limit = 2 << 20;
    assert!(
        sent > limit && sent < limit + (3 << 20),
        "the server took {sent} of {} bytes of a request with a {limit}-byte query buffer limit",
        request.len()
    );
    wait_for("the log line", Duration::from_secs(5), || {
        node.log_text()
            .contains("client query buffer limit reached")
            .then_some(())
    });

    // Just under the limit: served.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = resp_command(&[b"SET", b"k", &vec![b'x'; 2_000_000]]);
    assert_eq!(trickle(&mut s, &request), request.len());
    let mut ok = [0u8; 5];
    s.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"+OK\r\n");
}

/// Before AUTH a client's pending replies are capped at 1 KB, as in Redis
/// (`checkClientOutputBufferLimits`): an unauthenticated client that
/// pipelines requests without reading their `-NOAUTH` replies is closed
/// with Redis's log line. AUTH lifts the cap, within the same pipeline.
#[test]
fn unauthenticated_output_is_limited() {
    let c = Cluster::single(&["--requirepass", "pw"]);
    let node = &c.nodes[0];
    let mut con = node.conn();
    store(&mut con, "big", vec![b'x'; MB as usize]);
    let abuser = TcpStream::connect(node.addr()).unwrap();
    let writer = pipeline_without_reading(
        &abuser,
        resp_command(&[b"GET", b"big"]),
        1_000_000,
        Duration::from_secs(10),
    );
    wait_for(
        "the unauthenticated abuser to be closed",
        Duration::from_secs(20),
        || node.log_text().contains(CLOSED_LINE).then_some(()),
    );
    let (sent, error) = writer.join().unwrap();
    // 22 MB of requests: more than the kernel's buffers hold.
    assert!(
        sent < 1_000_000,
        "all {sent} requests taken in: not closed ({error:?})"
    );
    let mut abuser = abuser;
    abuser
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = Vec::new();
    match abuser.read_to_end(&mut received) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the abuser was neither answered nor closed: {e}"),
    }
    assert!(
        received.len() <= 1024,
        "{} bytes of replies before AUTH",
        received.len()
    );

    let mut s = TcpStream::connect(node.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = b"AUTH pw\r\n".to_vec();
    req.extend(resp_command(&[b"GET", b"big"]));
    s.write_all(&req).unwrap();
    let head = format!("+OK\r\n${MB}\r\n");
    let mut reply = vec![0u8; head.len() + MB as usize + 2];
    s.read_exact(&mut reply).expect("AUTH lifts the 1 KB cap");
    assert!(reply.starts_with(head.as_bytes()));
    assert_eq!(node.log_text().matches(CLOSED_LINE).count(), 1);
}

/// The timer of the node's end of the TCP connection whose client end is
/// `client` (`/proc/net/tcp` column `tr`: 0 none, 1 retransmit,
/// 2 keepalive, ...).
fn server_side_timer(node_port: u16, client: SocketAddr) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port_of = |hex: &str| u16::from_str_radix(hex.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, timer) = (f.get(1)?, f.get(2)?, f.get(5)?);
        (port_of(local)? == node_port && port_of(remote)? == client.port())
            .then(|| timer.split(':').next()?.parse().ok())?
    })
}

/// `tcp-keepalive` (default 300 s) really arms keepalive on client sockets:
/// the kernel's keepalive timer runs on the node's end of an idle
/// connection; with `tcp-keepalive 0` it does not.
#[test]
fn tcp_keepalive_is_set_on_client_sockets() {
    for (args, want) in [(&[][..], 2u8), (&["--tcp-keepalive", "0"][..], 0u8)] {
        let c = Cluster::single(args);
        let node = &c.nodes[0];
        let s = pinged_conn(&node.addr()).expect("a client connection");
        let client = s.local_addr().unwrap();
        let timer = wait_for(
            "the connection in /proc/net/tcp",
            Duration::from_secs(5),
            || server_side_timer(node.port, client),
        );
        assert_eq!(
            timer, want,
            "timer of the node's socket with {args:?} (2 = keepalive, 0 = none)"
        );
    }
}
