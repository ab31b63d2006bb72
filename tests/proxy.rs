//! Tests of the TCP fault proxy against local echo/push servers: each fault
//! must really stop (or slow, or break) traffic, and healing must restore it.
//! Timing assertions are lower bounds only (a delay of d takes at least d);
//! "nothing arrives" is checked with a short read timeout, never a sleep.

#[path = "common/proxy.rs"]
mod proxy;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy::{Proxy, ProxyStats};

/// A test server: echoes what it reads, or (push mode) ignores input and
/// writes one byte every 10 ms. Counts the bytes it received.
struct Server {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn echo() -> Server {
        Server::start(false)
    }

    fn push() -> Server {
        Server::start(true)
    }

    fn start(push: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (rx, st) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut s) = s else { continue };
                let (rx, st) = (rx.clone(), st.clone());
                std::thread::spawn(move || {
                    if push {
                        let mut r = s.try_clone().unwrap();
                        let rx = rx.clone();
                        std::thread::spawn(move || {
                            let mut b = [0u8; 4096];
                            while let Ok(n @ 1..) = r.read(&mut b) {
                                rx.fetch_add(n as u64, Ordering::SeqCst);
                            }
                        });
                        while !st.load(Ordering::SeqCst) && s.write_all(b"p").is_ok() {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    } else {
                        let mut b = [0u8; 16384];
                        while let Ok(n @ 1..) = s.read(&mut b) {
                            rx.fetch_add(n as u64, Ordering::SeqCst);
                            if s.write_all(&b[..n]).is_err() {
                                break;
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            received,
            stop,
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn connect(p: &Proxy) -> TcpStream {
    let s = TcpStream::connect(p.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Write `msg` and read the echo back within 5 s.
fn roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).expect("echo");
    assert_eq!(got, msg);
}

/// What a read within `wait` sees.
#[derive(Debug, PartialEq)]
enum Seen {
    Data(usize),
    Closed,
    Nothing,
}

fn read_within(s: &mut TcpStream, wait: Duration) -> Seen {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 4096];
    let r = match s.read(&mut b) {
        Ok(0) => Seen::Closed,
        Ok(n) => Seen::Data(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Seen::Nothing,
        Err(_) => Seen::Closed,
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    r
}

/// Poll until the peer closes the connection (draining any data first).
fn wait_closed(s: &mut TcpStream) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if read_within(s, Duration::from_millis(100)) == Seen::Closed {
            return;
        }
    }
    panic!("connection was not closed");
}

fn wait_stats(p: &Proxy, what: &str, f: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = p.stats();
        if f(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn forwards_both_ways_and_counts() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    assert_eq!(p.target(), srv.addr);
    let mut c = connect(&p);
    roundtrip(&mut c, b"hello");
    // A large payload keeps its bytes and their order.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = c.try_clone().unwrap();
    let big2 = big.clone();
    let writer = std::thread::spawn(move || w.write_all(&big2).unwrap());
    let mut got = vec![0u8; big.len()];
    c.read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == big, "payload corrupted");
    let total = 5 + big.len() as u64;
    let s = wait_stats(&p, "counters", |s| s.bytes_backward == total);
    assert_eq!(s.bytes_forward, total);
    assert_eq!(srv.received(), total);
    assert_eq!((s.connections, s.active, s.killed), (1, 1, 0));
    assert_eq!((s.dropped_forward, s.dropped_backward), (0, 0));
    // Closing the client closes the proxied connection.
    drop(c);
    wait_stats(&p, "connection to end", |s| s.active == 0);
}

#[test]
fn cut_blocks_and_heal_restores() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    let mut before = connect(&p);
    roundtrip(&mut before, b"ping");

    p.cut();
    // Existing connections are dropped...
    wait_closed(&mut before);
    // ...and new ones hang: accepted, never forwarded.
    let mut during = connect(&p);
    let _ = during.write_all(b"lost?");
    assert_eq!(
        read_within(&mut during, Duration::from_millis(300)),
        Seen::Nothing
    );
    let s = p.stats();
    assert_eq!(s.bytes_forward, 4, "no byte went through while cut: {s:?}");
    assert_eq!(srv.received(), 4);
    assert!(s.blackholed >= 1 && s.killed >= 1, "{s:?}");

    p.heal();
    // The held connection is released, and new connections work again.
    wait_closed(&mut during);
    let mut after = connect(&p);
    roundtrip(&mut after, b"pong");
    assert_eq!(p.stats().bytes_forward, 8);
}

#[test]
fn cut_refuse_closes_new_connections() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    p.cut_refuse();
    let mut c = connect(&p);
    let _ = c.write_all(b"x");
    wait_closed(&mut c);
    assert!(p.stats().refused >= 1);
    assert_eq!(srv.received(), 0);
    p.heal();
    roundtrip(&mut connect(&p), b"ok");
}

#[test]
fn one_way_cut_forward() {
    // Target pushes bytes by itself, so the backward direction can be seen
    // flowing while the forward one is cut.
    let srv = Server::push();
    let p = Proxy::start(srv.addr);
    let mut c = connect(&p);
    assert!(matches!(
        read_within(&mut c, Duration::from_secs(5)),
        Seen::Data(_)
    ));
    c.write_all(b"before").unwrap();
    wait_stats(&p, "forward bytes", |s| s.bytes_forward == 6);

    p.cut_forward();
    c.write_all(b"during the cut").unwrap();
    wait_stats(&p, "forward bytes dropped", |s| s.dropped_forward == 14);
    // Backward traffic still flows.
    let back = p.stats().bytes_backward;
    assert!(matches!(
        read_within(&mut c, Duration::from_secs(5)),
        Seen::Data(_)
    ));
    wait_stats(&p, "backward bytes", |s| s.bytes_backward > back);
    assert_eq!(p.stats().bytes_forward, 6);
    assert_eq!(srv.received(), 6);

    // Healing closes the connection whose stream lost bytes...
    p.heal();
    wait_closed(&mut c);
    // ...and a new connection forwards both ways.
    let mut c2 = connect(&p);
    c2.write_all(b"again").unwrap();
    wait_stats(&p, "forward bytes after heal", |s| s.bytes_forward == 11);
    assert!(matches!(
        read_within(&mut c2, Duration::from_secs(5)),
        Seen::Data(_)
    ));
}

#[test]
fn one_way_cut_backward() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    let mut c = connect(&p);
    roundtrip(&mut c, b"one");

    p.cut_backward();
    c.write_all(b"two").unwrap();
    // The target gets the request, the client never gets the reply.
    wait_stats(&p, "reply dropped", |s| s.dropped_backward == 3);
    assert_eq!(srv.received(), 6);
    assert_eq!(
        read_within(&mut c, Duration::from_millis(300)),
        Seen::Nothing
    );
    assert_eq!(p.stats().bytes_backward, 3);

    p.heal();
    wait_closed(&mut c);
    roundtrip(&mut connect(&p), b"three");
}

#[test]
fn delay_is_measurable_per_direction() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    let mut c = connect(&p);
    roundtrip(&mut c, b"warm");

    let d = Duration::from_millis(150);
    p.set_delay(d);
    let t = Instant::now();
    roundtrip(&mut c, b"slow");
    assert!(t.elapsed() >= 2 * d, "both ways delayed: {:?}", t.elapsed());

    p.set_delay(Duration::ZERO);
    p.set_delay_forward(d);
    let t = Instant::now();
    roundtrip(&mut c, b"fwd");
    assert!(t.elapsed() >= d, "forward delayed: {:?}", t.elapsed());

    p.set_delay(Duration::ZERO);
    p.set_delay_backward(d);
    let t = Instant::now();
    roundtrip(&mut c, b"bwd");
    assert!(t.elapsed() >= d, "backward delayed: {:?}", t.elapsed());

    // Delayed bytes keep their order even when the chunks pile up.
    let msg: Vec<u8> = (0..50u8).collect();
    for b in &msg {
        c.write_all(&[*b]).unwrap();
    }
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
    assert_eq!(p.stats().killed, 0);
}

#[test]
fn drop_probability_breaks_connections() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    p.set_drop_probability(1.0);
    let mut c = connect(&p);
    c.write_all(b"doomed").unwrap();
    wait_closed(&mut c);
    let s = p.stats();
    assert_eq!(
        (s.killed, s.dropped_forward, s.bytes_forward),
        (1, 6, 0),
        "{s:?}"
    );
    assert_eq!(srv.received(), 0);

    p.set_drop_probability(0.0);
    roundtrip(&mut connect(&p), b"fine");
}

#[test]
fn kill_connections_is_a_blip() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    let mut c = connect(&p);
    roundtrip(&mut c, b"a");
    p.kill_connections();
    wait_closed(&mut c);
    roundtrip(&mut connect(&p), b"b");
}

#[test]
fn target_down_closes_client() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Nothing listens on `port` any more.
    let p = Proxy::start(port);
    let mut c = connect(&p);
    wait_closed(&mut c);
    wait_stats(&p, "refused", |s| s.refused == 1);
}

#[test]
fn dropping_the_proxy_closes_everything() {
    let srv = Server::echo();
    let p = Proxy::start(srv.addr);
    let addr = p.addr();
    let mut c = connect(&p);
    roundtrip(&mut c, b"x");
    p.set_delay(Duration::from_secs(60)); // a parked chunk must not block drop
    c.write_all(b"y").unwrap();
    let t = Instant::now();
    drop(p);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        t.elapsed()
    );
    wait_closed(&mut c);
    assert!(TcpStream::connect(addr).is_err(), "listener still open");
}
