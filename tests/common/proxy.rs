//! A TCP fault proxy for the fault tests (docs/testing.md): put one in
//! front of each node's port (as etcd's robustness tests do) and partition,
//! slow down or break links at runtime, without root or network namespaces.
//!
//! Plain std threads, so it works from synchronous `#[test]` functions: one
//! acceptor thread, and per connection one reader and one writer thread per
//! direction (the writer owns the delay line, so a delay does not throttle the
//! reader and bytes keep their order).
//!
//! Faults and what they mean on a byte stream:
//! - [`Proxy::cut`] is a partition: current connections are dropped, and new
//!   ones are accepted but never forwarded (a blackhole, so the client waits
//!   for its own timeout as with a real partition). [`Proxy::cut_refuse`]
//!   instead closes new connections immediately.
//! - [`Proxy::cut_forward`] / [`Proxy::cut_backward`] lose one direction: the
//!   bytes are read and discarded while the other direction keeps flowing.
//!   A connection that lost bytes has a hole in its stream, so it is closed
//!   when the direction heals rather than ever delivering a corrupt stream.
//! - [`Proxy::set_drop_probability`]: TCP has no packet loss a peer can see,
//!   only delay or a broken connection; corrupting the stream would test the
//!   parser, not the protocol. So each chunk, with probability p, closes its
//!   connection instead of being forwarded: the faithful way to lose traffic.
//!
//! Counters ([`Proxy::stats`]) let a test prove that a fault really happened,
//! e.g. that bytes stopped flowing while a link was cut.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Direction of traffic through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client → target.
    Forward,
    /// Target → client.
    Backward,
}

/// Snapshot of the proxy's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Bytes delivered client → target.
    pub bytes_forward: u64,
    /// Bytes delivered target → client.
    pub bytes_backward: u64,
    /// Bytes read client → target and discarded (one-way cut, drop, kill).
    pub dropped_forward: u64,
    /// Bytes read target → client and discarded.
    pub dropped_backward: u64,
    /// Connections accepted in total (including blackholed and refused).
    pub connections: u64,
    /// Connections currently being forwarded.
    pub active: u64,
    /// Connections accepted during a cut and held without forwarding.
    pub blackholed: u64,
    /// Connections closed at accept because of `cut_refuse`, or because the
    /// target could not be reached.
    pub refused: u64,
    /// Forwarded connections the proxy broke (cut, drop probability, heal of
    /// a one-way cut, `kill_connections`).
    pub killed: u64,
}

const MODE_OPEN: u8 = 0;
const MODE_BLACKHOLE: u8 = 1;
const MODE_REFUSE: u8 = 2;

const CHUNK: usize = 16 * 1024;

#[derive(Default)]
struct Counters {
    bytes: [AtomicU64; 2],
    dropped: [AtomicU64; 2],
    connections: AtomicU64,
    active: AtomicU64,
    blackholed: AtomicU64,
    refused: AtomicU64,
    killed: AtomicU64,
}

/// Settings and state shared by the acceptor and all connection threads.
struct Shared {
    target: SocketAddr,
    mode: AtomicU8,
    /// Per direction (index `Dir as usize`).
    cut: [AtomicBool; 2],
    delay_nanos: [AtomicU64; 2],
    /// f64 bits.
    drop_p: AtomicU64,
    stopping: AtomicBool,
    counters: Counters,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    held: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// Held (shared) by a writer from its last check of `killed`/`cut` until
    /// the chunk is written and counted; a cut takes it exclusively once, so
    /// when `cut*()` returns no chunk can cross the cut any more and the
    /// counters read then are exact "before the cut" values.
    gate: RwLock<()>,
}

/// One forwarded connection: both sockets (clones, for shutting them down
/// from outside) and what happened to it.
struct Conn {
    id: u64,
    client: TcpStream,
    upstream: TcpStream,
    killed: AtomicBool,
    /// Bytes of this direction were discarded: its stream has a hole.
    tainted: [AtomicBool; 2],
    /// Directions still running (reader and writer threads), to unregister.
    live: AtomicU8,
}

impl Conn {
    /// Close both sockets; every thread of the connection then ends (blocked
    /// reads return, writes fail, writers check `killed` before each write).
    fn kill(&self, shared: &Shared) {
        if !self.killed.swap(true, Ordering::SeqCst) {
            shared.counters.killed.fetch_add(1, Ordering::Relaxed);
            self.shutdown();
        }
    }

    /// Tear down after a socket error of one of the peers (not a fault the
    /// proxy injected, so not counted as killed).
    fn close(&self) {
        if !self.killed.swap(true, Ordering::SeqCst) {
            self.shutdown();
        }
    }

    fn shutdown(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

/// A fault-injecting TCP forwarder to one target. Dropping it stops the
/// acceptor, closes every connection and joins all its threads.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on `127.0.0.1:0` and forward every connection to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy listener");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target,
            mode: AtomicU8::new(MODE_OPEN),
            cut: Default::default(),
            delay_nanos: Default::default(),
            drop_p: AtomicU64::new(0f64.to_bits()),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            conns: Mutex::new(HashMap::new()),
            held: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            gate: RwLock::new(()),
        });
        let sh = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("proxy-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, sh))
            .expect("spawn proxy acceptor");
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Partition: drop all current connections and blackhole new ones
    /// (accepted, never forwarded) until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.shared.mode.store(MODE_BLACKHOLE, Ordering::SeqCst);
        self.kill_connections();
        self.settle();
    }

    /// Like [`cut`](Self::cut), but new connections are closed as soon as
    /// they are accepted (the client sees EOF/reset rather than a hang).
    pub fn cut_refuse(&self) {
        self.shared.mode.store(MODE_REFUSE, Ordering::SeqCst);
        self.kill_connections();
        self.release_held();
        self.settle();
    }

    /// Lose client → target bytes (new connections included) until healed.
    pub fn cut_forward(&self) {
        self.shared.cut[Dir::Forward as usize].store(true, Ordering::SeqCst);
        self.settle();
    }

    /// Lose target → client bytes (new connections included) until healed.
    pub fn cut_backward(&self) {
        self.shared.cut[Dir::Backward as usize].store(true, Ordering::SeqCst);
        self.settle();
    }

    /// Wait for writes that passed their checks before a cut to finish:
    /// from now on nothing crosses the cut (see `Shared::gate`).
    fn settle(&self) {
        drop(self.shared.gate.write().unwrap());
    }

    /// End every cut (full and one-way). Blackholed connections are closed;
    /// connections that lost bytes in a one-way cut are closed, since their
    /// streams have holes. Delay and drop probability are left as they are.
    pub fn heal(&self) {
        let sh = &self.shared;
        sh.mode.store(MODE_OPEN, Ordering::SeqCst);
        for d in [Dir::Forward, Dir::Backward] {
            sh.cut[d as usize].store(false, Ordering::SeqCst);
        }
        self.release_held();
        let conns: Vec<Arc<Conn>> = sh.conns.lock().unwrap().values().cloned().collect();
        for c in conns {
            if c.tainted.iter().any(|t| t.load(Ordering::SeqCst)) {
                c.kill(sh);
            }
        }
    }

    /// Break every current connection without changing the mode (a network
    /// blip: clients must reconnect).
    pub fn kill_connections(&self) {
        let conns: Vec<Arc<Conn>> = self
            .shared
            .conns
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        for c in conns {
            c.kill(&self.shared);
        }
    }

    /// Delay both directions by `d` (each chunk is delivered `d` after it was
    /// read; order is kept).
    pub fn set_delay(&self, d: Duration) {
        self.set_delay_dir(Dir::Forward, d);
        self.set_delay_dir(Dir::Backward, d);
    }

    pub fn set_delay_forward(&self, d: Duration) {
        self.set_delay_dir(Dir::Forward, d);
    }

    pub fn set_delay_backward(&self, d: Duration) {
        self.set_delay_dir(Dir::Backward, d);
    }

    pub fn set_delay_dir(&self, dir: Dir, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.shared.delay_nanos[dir as usize].store(nanos, Ordering::SeqCst);
    }

    /// With probability `p` per chunk read (either direction), close the
    /// connection instead of forwarding the chunk. See the module docs for
    /// why this, not byte loss, is what "dropping traffic" means over TCP.
    pub fn set_drop_probability(&self, p: f64) {
        assert!((0.0..=1.0).contains(&p), "probability out of range: {p}");
        self.shared.drop_p.store(p.to_bits(), Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        ProxyStats {
            bytes_forward: get(&c.bytes[0]),
            bytes_backward: get(&c.bytes[1]),
            dropped_forward: get(&c.dropped[0]),
            dropped_backward: get(&c.dropped[1]),
            connections: get(&c.connections),
            active: get(&c.active),
            blackholed: get(&c.blackholed),
            refused: get(&c.refused),
            killed: get(&c.killed),
        }
    }

    fn release_held(&self) {
        for s in self.shared.held.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a throwaway connection.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        self.kill_connections();
        self.release_held();
        let threads: Vec<JoinHandle<()>> = self.shared.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, sh: Arc<Shared>) {
    for stream in listener.incoming() {
        if sh.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = stream else { continue };
        sh.counters.connections.fetch_add(1, Ordering::Relaxed);
        match sh.mode.load(Ordering::SeqCst) {
            MODE_BLACKHOLE => {
                sh.counters.blackholed.fetch_add(1, Ordering::Relaxed);
                sh.held.lock().unwrap().push(client);
                continue;
            }
            MODE_REFUSE => {
                sh.counters.refused.fetch_add(1, Ordering::Relaxed);
                drop(client);
                continue;
            }
            _ => {}
        }
        let sh2 = sh.clone();
        let t = std::thread::spawn(move || open_conn(client, sh2));
        let mut threads = sh.threads.lock().unwrap();
        threads.retain(|t| !t.is_finished());
        threads.push(t);
    }
}

/// Connect upstream and start the four pump threads of one connection.
fn open_conn(client: TcpStream, sh: Arc<Shared>) {
    let upstream = match TcpStream::connect_timeout(&sh.target, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(_) => {
            // Target down (e.g. node killed): the client sees a closed
            // connection, as it would connecting directly.
            sh.counters.refused.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let conn = Arc::new(Conn {
        id: sh.next_id.fetch_add(1, Ordering::Relaxed),
        client: c2,
        upstream: u2,
        killed: AtomicBool::new(false),
        tainted: Default::default(),
        live: AtomicU8::new(4),
    });
    sh.counters.active.fetch_add(1, Ordering::Relaxed);
    sh.conns.lock().unwrap().insert(conn.id, conn.clone());
    // A cut or a stop that raced with this connect applies to it too.
    if sh.mode.load(Ordering::SeqCst) != MODE_OPEN || sh.stopping.load(Ordering::SeqCst) {
        conn.kill(&sh);
    }

    let mut handles = Vec::new();
    for (dir, from, to) in [
        (Dir::Forward, client.try_clone(), upstream.try_clone()),
        (Dir::Backward, upstream.try_clone(), client.try_clone()),
    ] {
        let (Ok(from), Ok(to)) = (from, to) else {
            conn.kill(&sh);
            continue;
        };
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let (sh_r, conn_r) = (sh.clone(), conn.clone());
        handles.push(std::thread::spawn(move || {
            read_side(dir, from, tx, &sh_r, &conn_r);
            finish(&sh_r, &conn_r);
        }));
        let (sh_w, conn_w) = (sh.clone(), conn.clone());
        handles.push(std::thread::spawn(move || {
            write_side(dir, to, rx, &sh_w, &conn_w);
            finish(&sh_w, &conn_w);
        }));
    }
    for h in handles {
        let _ = h.join();
    }
}

/// Last thread of a connection out unregisters it.
fn finish(sh: &Shared, conn: &Conn) {
    if conn.live.fetch_sub(1, Ordering::SeqCst) == 1 {
        sh.conns.lock().unwrap().remove(&conn.id);
        sh.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

fn read_side(
    dir: Dir,
    mut from: TcpStream,
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    sh: &Shared,
    conn: &Conn,
) {
    let d = dir as usize;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf) {
            // EOF: let the writer pass the half-close on after the data still
            // in the delay line (dropping `tx` signals it).
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                conn.close();
                return;
            }
        };
        if conn.killed.load(Ordering::SeqCst) {
            sh.counters.dropped[d].fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        let p = f64::from_bits(sh.drop_p.load(Ordering::SeqCst));
        if p > 0.0 && rand::random::<f64>() < p {
            sh.counters.dropped[d].fetch_add(n as u64, Ordering::Relaxed);
            conn.kill(sh);
            return;
        }
        if sh.cut[d].load(Ordering::SeqCst) {
            sh.counters.dropped[d].fetch_add(n as u64, Ordering::Relaxed);
            conn.tainted[d].store(true, Ordering::SeqCst);
            continue;
        }
        if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

fn write_side(
    dir: Dir,
    mut to: TcpStream,
    rx: mpsc::Receiver<(Instant, Vec<u8>)>,
    sh: &Shared,
    conn: &Conn,
) {
    let d = dir as usize;
    while let Ok((read_at, chunk)) = rx.recv() {
        // Sleep in slices so that a kill is noticed during a long delay.
        loop {
            if conn.killed.load(Ordering::SeqCst) {
                sh.counters.dropped[d].fetch_add(chunk.len() as u64, Ordering::Relaxed);
                return;
            }
            let delay = Duration::from_nanos(sh.delay_nanos[d].load(Ordering::SeqCst));
            let due = read_at + delay;
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(10)));
        }
        let _gate = sh.gate.read().unwrap();
        if conn.killed.load(Ordering::SeqCst) {
            sh.counters.dropped[d].fetch_add(chunk.len() as u64, Ordering::Relaxed);
            return;
        }
        // Cut while it waited in the delay line: lost like the rest.
        if sh.cut[d].load(Ordering::SeqCst) {
            sh.counters.dropped[d].fetch_add(chunk.len() as u64, Ordering::Relaxed);
            conn.tainted[d].store(true, Ordering::SeqCst);
            continue;
        }
        if to.write_all(&chunk).is_err() {
            conn.close();
            return;
        }
        sh.counters.bytes[d].fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    // The reader saw EOF: pass the half-close on, unless the connection was
    // broken (then the sockets are already shut down).
    if !conn.killed.load(Ordering::SeqCst) {
        let _ = to.shutdown(Shutdown::Write);
    }
}
