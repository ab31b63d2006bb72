//! The client side of a node: the listener, connections, sessions, and the
//! commands that need server state (INFO, CLIENT, CONFIG, CLUSTER, ...).

pub mod clients;
pub mod cmdstats;
pub mod commands;
pub mod connection;
pub mod slowlog;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::raft::types::NodeInfo;
use crate::router::Router;

/// Connection-level settings (built from the config by `main`).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub maxclients: usize,
    /// Close a client idle this long (`timeout`; None = never).
    pub idle_timeout: Option<Duration>,
    pub tcp_keepalive: Option<Duration>,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: usize,
    /// Hard limit on one client's pending output (0 = unlimited).
    pub client_output_buffer_limit: usize,
    /// Soft limit: a client whose pending output stays above these bytes
    /// for this long is closed (`None` = no soft limit).
    pub client_output_buffer_soft: Option<(usize, Duration)>,
    pub requirepass: Option<String>,
    /// Users loaded from the `aclfile` (besides `default`).
    pub acl_users: Vec<crate::keyspace::acl::AclUser>,
    /// `protected-mode`: while the default user has no password, serve
    /// loopback clients only.
    pub protected_mode: bool,
    /// `CONFIG GET` answers: name -> value, as redis.conf spells them.
    pub config_pairs: Vec<(String, String)>,
    pub node_id: u64,
    pub me: NodeInfo,
    /// `tls-cluster`: the advertised client ports (`me.addr`, and every
    /// member's, as all should agree) are TLS ports.
    pub tls_cluster: bool,
    pub bus_port: u16,
    pub dir: std::path::PathBuf,
    /// SLOWLOG threshold in microseconds (-1 = off).
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: usize,
}

/// One event counter, the only place the event is counted: INFO shows
/// it since the last CONFIG RESETSTAT, `/metrics` its monotonic total (a
/// Prometheus counter must not go down).
#[derive(Debug, Default)]
pub struct Counter {
    total: AtomicU64,
    /// `total` at the last CONFIG RESETSTAT.
    base: AtomicU64,
}

impl Counter {
    pub fn add(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    pub fn incr(&self) {
        self.add(1);
    }

    /// Since the process started (`/metrics`).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Since the last CONFIG RESETSTAT (INFO).
    pub fn since_reset(&self) -> u64 {
        self.total()
            .saturating_sub(self.base.load(Ordering::Relaxed))
    }

    fn reset(&self) {
        self.base.store(self.total(), Ordering::Relaxed);
    }
}

/// The client-side counters: INFO stats, and through `export` the
/// Prometheus values of the same name-sakes in `crate::metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted and registered (INFO `total_connections_received`).
    pub connections: Counter,
    /// Connections refused by `maxclients`.
    pub rejected_connections: Counter,
    pub commands: Counter,
    pub error_replies: Counter,
    /// `-MOVED` replies.
    pub redirects: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    /// INFO commandstats / errorstats.
    pub per_command: cmdstats::CommandStats,
}

/// How often `/metrics` is refreshed from `Stats`.
pub const METRICS_EXPORT_PERIOD: Duration = Duration::from_secs(1);

impl Stats {
    /// One error reply sent: `total_error_replies` and its type's count.
    pub fn error_reply(&self, reply: &crate::protocol::Reply) {
        if let crate::protocol::Reply::Error(text) = reply {
            self.error_replies.incr();
            self.per_command.error(text);
        }
    }

    /// CONFIG RESETSTAT (INFO restarts from zero; `/metrics` does not).
    pub fn reset(&self) {
        for (_, c) in self.counters() {
            c.reset();
        }
        self.per_command.reset();
    }

    /// Every counter with its Prometheus name.
    fn counters(&self) -> [(&'static str, &Counter); 7] {
        use crate::metrics as m;
        [
            (m::CONNECTIONS_TOTAL, &self.connections),
            (m::REJECTED_CONNECTIONS_TOTAL, &self.rejected_connections),
            (m::COMMANDS_TOTAL, &self.commands),
            (m::COMMAND_ERRORS_TOTAL, &self.error_replies),
            (m::REDIRECTS_TOTAL, &self.redirects),
            (m::NET_INPUT_BYTES_TOTAL, &self.net_input_bytes),
            (m::NET_OUTPUT_BYTES_TOTAL, &self.net_output_bytes),
        ]
    }

    /// Copy the counters (and the connected clients) to the metrics
    /// recorder: `/metrics` derives from the same atomics as INFO.
    pub fn export(&self, connected_clients: usize) {
        for (name, c) in self.counters() {
            metrics::counter!(name).absolute(c.total());
        }
        metrics::gauge!(crate::metrics::CONNECTED_CLIENTS).set(connected_clients as f64);
    }
}

pub struct Server {
    pub settings: ServerSettings,
    pub router: Router,
    pub clients: clients::Registry,
    pub stats: Stats,
    pub started: Instant,
    pub run_id: String,
    /// Local ACL users and the ACL LOG (`commands::acl`).
    pub acl: commands::acl::AclState,
    pub slowlog: slowlog::SlowLog,
}

impl Server {
    pub fn new(settings: ServerSettings, router: Router) -> Arc<Server> {
        let acl =
            commands::acl::AclState::new(&settings.acl_users, settings.requirepass.as_deref());
        let slowlog =
            slowlog::SlowLog::new(settings.slowlog_log_slower_than, settings.slowlog_max_len);
        Arc::new(Server {
            acl,
            slowlog,
            settings,
            router,
            clients: clients::Registry::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id: random_hex40(),
        })
    }

    /// Accept clients forever on the plain-text listener (`port`) and the
    /// TLS one (`tls-port`), whichever are given, and keep `/metrics` in
    /// step with `stats`.
    pub async fn serve(
        self: Arc<Self>,
        plain: Option<TcpListener>,
        tls: Option<(TcpListener, tls::TlsAcceptor)>,
    ) {
        let exporter = Arc::downgrade(&self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(METRICS_EXPORT_PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(server) = exporter.upgrade() else {
                    return;
                };
                server.stats.export(server.clients.len());
                let keyspace = server.router.local_node().keyspace_stats();
                crate::metrics::export_keyspace(&keyspace);
            }
        });
        let tls = tls.map(|(listener, acceptor)| {
            // Handshakes in progress hold no client slot; at most
            // `maxclients` of them at a time, each for at most
            // `tls::HANDSHAKE_TIMEOUT`.
            let handshakes = Arc::new(Semaphore::new(self.settings.maxclients));
            (listener, Some((acceptor, handshakes)))
        });
        let loops = [plain.map(|l| (l, None)), tls]
            .into_iter()
            .flatten()
            .map(|(listener, tls)| self.clone().accept_loop(listener, tls));
        futures::future::join_all(loops).await;
    }

    async fn accept_loop(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<(tls::TlsAcceptor, Arc<Semaphore>)>,
    ) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = self.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                server.accepted(stream, peer, tls).await;
            });
        }
    }

    /// One accepted TCP connection: for `tls-port`, the TLS handshake
    /// (bounded in time and in number) first; then the one client path.
    async fn accepted(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        tls: Option<(tls::TlsAcceptor, Arc<Semaphore>)>,
    ) {
        let laddr = stream.local_addr().unwrap_or(peer);
        let _ = stream.set_nodelay(true);
        if let Some(interval) = self.settings.tcp_keepalive {
            // As Redis: probes start after `interval` of silence and repeat
            // every `interval`, so a dead peer is found in about 2×.
            let ka = socket2::TcpKeepalive::new()
                .with_time(interval)
                .with_interval(interval);
            if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka) {
                tracing::debug!(%peer, error = %e, "cannot set TCP keepalive");
            }
        }
        let Some((acceptor, handshakes)) = tls else {
            return connection::handle(self, stream, peer, laddr).await;
        };
        let Ok(permit) = handshakes.try_acquire_owned() else {
            self.stats.rejected_connections.incr();
            tracing::debug!(%peer, "too many TLS handshakes in progress; connection dropped");
            return;
        };
        let stream =
            match tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
        drop(permit);
        connection::handle(self, stream, peer, laddr).await;
    }

    pub fn local_addr_string(addr: SocketAddr) -> String {
        addr.to_string()
    }
}

pub use crate::raft::identity::random_hex40;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resetstat_restarts_info_but_not_metrics() {
        let s = Stats::default();
        s.commands.add(5);
        s.redirects.incr();
        s.reset();
        s.commands.incr();
        assert_eq!(s.commands.since_reset(), 1);
        assert_eq!(s.commands.total(), 6);
        assert_eq!(s.redirects.since_reset(), 0);
        assert_eq!(s.redirects.total(), 1);
    }
}
