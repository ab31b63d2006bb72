//! Wiring a node together: listeners, metrics endpoint, the raft group and
//! its bus service, the client server, then bootstrap-or-join (done by
//! `raft::membership`). Nothing imports this module but `main`.

use tokio::net::TcpListener;

use crate::raft::membership::{self, MemberAddr};
use crate::raft::{RaftNode, RaftSettings};
use crate::router::Router;
use crate::server::tls::TlsListen;
use crate::server::{Server, ServerSettings};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The OS error is the `source`: printed once, after this text, by
    /// whoever prints the error chain (`main`).
    #[error("cannot listen on {addr}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Raft(String),
    #[error("join failed: {0}")]
    Join(String),
}

/// Everything `run` needs besides the raft and server settings.
#[derive(Debug, Clone)]
pub struct BootSettings {
    /// Plain-text clients (`port`); None with `port 0`.
    pub client_listen: Option<String>,
    /// TLS clients (`tls-port`).
    pub tls_listen: Option<TlsListen>,
    pub bus_listen: String,
    /// A member to join through: `host:port[@busport]` (its client address;
    /// the bus port defaults to port + 10000).
    pub join: Option<String>,
    pub metrics_listen: Option<String>,
    /// Bootstrap a new one-node cluster on an empty dir without `join`
    /// (resolved from `cluster-bootstrap`; see docs/membership.md).
    pub bootstrap: bool,
}

/// Start the node and serve until the process ends.
pub async fn run(
    boot: BootSettings,
    raft: RaftSettings,
    server: ServerSettings,
) -> Result<(), StartError> {
    if let Some(addr) = &boot.metrics_listen {
        let addr: std::net::SocketAddr = addr.parse().map_err(|e| StartError::Listen {
            addr: addr.clone(),
            source: std::io::Error::other(format!("{e}")),
        })?;
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| StartError::Listen {
                addr: addr.to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        crate::metrics::describe();
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "/metrics listens on a non-loopback address and has no authentication: restrict who can reach it (metrics-bind)");
        }
    }
    let client = match &boot.client_listen {
        Some(addr) => Some(listen(addr).await?),
        None => None,
    };
    let tls_client = match &boot.tls_listen {
        Some(t) => Some((listen(&t.addr).await?, t.acceptor.clone())),
        None => None,
    };
    let bus = TcpListener::bind(&boot.bus_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: boot.bus_listen.clone(),
            source,
        })?;
    if raft.unsafe_no_fsync {
        tracing::warn!("!!! unsafe-no-fsync is ON: acknowledged writes can be LOST on a crash. Test use only. !!!");
    }
    let snapshot_dir = raft.dir.join("snapshots");
    let me = raft.me.clone();
    let id = raft.node_id;
    let seed = boot
        .join
        .as_deref()
        .map(MemberAddr::parse)
        .transpose()
        .map_err(StartError::Join)?;
    let identity = raft.identity.clone();
    let node = RaftNode::start(raft)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    tokio::spawn(crate::raft::service::serve(
        bus,
        node.clone(),
        snapshot_dir,
        identity.clone(),
    ));

    let initialized = membership::is_initialized(&node)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let router = Router::new(node.clone());
    let server = Server::new(server, router);
    let client_addr = boot.client_listen.as_deref().unwrap_or("-");
    let tls_addr = boot.tls_listen.as_ref().map_or("-", |t| t.addr.as_str());
    tracing::info!(node_id = id, client = %client_addr, tls = %tls_addr, bus = %boot.bus_listen, announce = %me.addr, name = %me.name, "raftcache ready");
    let serving = tokio::spawn(server.clone().serve(client, tls_client));
    if initialized {
        if boot.join.is_some() {
            tracing::info!("data dir already holds cluster state; --join ignored");
        }
        if identity.cluster_id().is_none() {
            tracing::error!("data dir holds raft state but no cluster-id file (made before cluster ids existed?): peers will refuse this node");
        }
    } else if let Some(seed) = &seed {
        membership::join(&node, seed)
            .await
            .map_err(|e| StartError::Join(e.to_string()))?;
    } else if !boot.bootstrap {
        tracing::warn!(
            "empty data dir, no --join, and bootstrapping was not chosen: NOT creating a new cluster \
             (a wiped member must not start one). Waiting to be added by a member \
             (CLUSTER MEET / RAFTCACHE ADD-LEARNER on the leader); to create a new cluster, \
             start with --cluster-bootstrap yes"
        );
    } else {
        let cluster = membership::bootstrap(&node)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        tracing::info!(%cluster, "bootstrapped a new single-node cluster");
    }
    let _ = serving.await;
    Ok(())
}

async fn listen(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_owned(),
            source,
        })
}
