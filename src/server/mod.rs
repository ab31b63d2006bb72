//! The client side of a node: the listener, connections, sessions, and the
//! commands that need server state (INFO, CLIENT, CONFIG, CLUSTER, ...).

pub mod clients;
pub mod commands;
pub mod connection;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

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
    /// `CONFIG GET` answers: name -> value, as redis.conf spells them.
    pub config_pairs: Vec<(String, String)>,
    pub node_id: u64,
    pub me: NodeInfo,
    pub bus_port: u16,
    pub dir: std::path::PathBuf,
}

/// Counters reported by INFO stats.
#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub redirects: AtomicU64,
    pub error_replies: AtomicU64,
}

impl Stats {
    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.total_connections,
            &self.total_commands,
            &self.rejected_connections,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.redirects,
            &self.error_replies,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

pub struct Server {
    pub settings: ServerSettings,
    pub router: Router,
    pub clients: clients::Registry,
    pub stats: Stats,
    pub started: Instant,
    pub run_id: String,
}

impl Server {
    pub fn new(settings: ServerSettings, router: Router) -> Arc<Server> {
        Arc::new(Server {
            settings,
            router,
            clients: clients::Registry::default(),
            stats: Stats::default(),
            started: Instant::now(),
            run_id: random_hex40(),
        })
    }

    /// Accept clients forever.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
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
            self.stats.total_connections.fetch_add(1, Ordering::Relaxed);
            let server = self.clone();
            tokio::spawn(async move {
                connection::handle(server, stream, peer).await;
            });
        }
    }

    pub fn local_addr_string(addr: SocketAddr) -> String {
        addr.to_string()
    }
}

pub use crate::raft::identity::random_hex40;
