//! `raftcache`: parse the configuration, set up logging and start the node.

use std::sync::Arc;

use raftcache::boot::{self, BootSettings};
use raftcache::config::{Config, LogFormat};
use raftcache::keyspace::Limits;
use raftcache::raft::auth::ClusterSecret;
use raftcache::raft::bounds::LogLimits;
use raftcache::raft::identity::Identity;
use raftcache::raft::types::NodeInfo;
use raftcache::raft::RaftSettings;
use raftcache::server::tls::{self, TlsListen, TlsSettings};
use raftcache::server::ServerSettings;

fn main() {
    let config = Config::from_env_and_args().unwrap_or_else(|e| e.exit());
    if let Err(e) = init_tracing(&config) {
        eprintln!("raftcache: {e}");
        std::process::exit(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("raftcache")
        .build()
        .unwrap_or_else(|e| fatal(&format!("cannot start the async runtime: {e}")));
    if let Err(e) = runtime.block_on(start(config)) {
        fatal(&format!("{e:#}"));
    }
}

/// Whether the log goes to a `logfile` (then a fatal error is also
/// printed on stderr, so whoever started the node sees it).
static LOG_TO_FILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Say what failed once: in the log, and on stderr too only when the log
/// is a file.
fn fatal(msg: &str) -> ! {
    tracing::error!("{msg}");
    if LOG_TO_FILE.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("raftcache: {msg}");
    }
    std::process::exit(1);
}

/// Logging: RUST_LOG, else `loglevel` (Redis's words), else `log-level`;
/// to `logfile` (appended, no colours) or to stderr (colours only on a
/// terminal).
fn init_tracing(config: &Config) -> Result<(), String> {
    use std::io::IsTerminal as _;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;

    let level = match &config.loglevel {
        Some(word) => raftcache::config::redis_log_level(word).unwrap_or("info"),
        None => config.log_level.as_str(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let (writer, ansi) = match &config.logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("logfile: cannot open '{path}': {e}"))?;
            LOG_TO_FILE.store(true, std::sync::atomic::Ordering::Relaxed);
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
        }
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

async fn start(c: Config) -> anyhow::Result<()> {
    // The certificate files first: a bad one stops the node before it
    // touches its data dir (the error names the knob and the file).
    let tls_listen = match c.tls_addr() {
        Some(addr) => {
            let files = TlsSettings {
                cert_file: c.tls_cert_file.clone().unwrap_or_default().into(),
                key_file: c.tls_key_file.clone().unwrap_or_default().into(),
                ca_cert_file: c.tls_ca_cert_file.clone().map(Into::into),
                auth_clients: c.tls_auth_clients,
            };
            let acceptor = tls::acceptor(&files)?;
            Some(TlsListen {
                addr: addr.to_string(),
                acceptor,
            })
        }
        None => None,
    };
    let secret = c.cluster_secret.as_deref().map(ClusterSecret::new);
    if secret.is_none() {
        tracing::info!(
            "no cluster-secret: the raft bus does not authenticate peers (loopback only)"
        );
    }
    let identity = Arc::new(Identity::load(&c.dir, c.node_id)?.with_secret(secret));
    let me = NodeInfo {
        addr: c.announce_client_addr(),
        bus_addr: c.announce_bus_addr(),
        name: identity.name.clone(),
    };
    let limits = Limits {
        proto_max_bulk_len: c.proto_max_bulk_len,
    };
    let raft = RaftSettings {
        node_id: c.node_id,
        identity,
        me: me.clone(),
        dir: c.dir.clone(),
        limits,
        lmdb_map_size: usize::try_from(c.lmdb_map_size).unwrap_or(usize::MAX),
        unsafe_no_fsync: c.unsafe_no_fsync,
        heartbeat_interval_ms: c.heartbeat_interval,
        election_timeout_min_ms: c.election_timeout_min,
        election_timeout_max_ms: c.election_timeout_max,
        snapshot_logs_since_last: c.snapshot_logs_since_last,
        max_in_snapshot_log_to_keep: c.max_in_snapshot_log_to_keep,
        max_payload_entries: c.max_payload_entries,
        read_consistency: c.read_consistency,
        active_expire_hz: c.active_expire_hz,
        clock_max_skew_ms: c.clock_max_skew,
        max_ops_per_proposal: 4096,
        log_limits: LogLimits {
            max_entry_bytes: c.raft_max_entry_bytes,
            snapshot_bytes: c.snapshot_log_bytes_since_last,
            keep_bytes: c.max_in_snapshot_log_bytes_to_keep,
            write_percent: c.lmdb_map_write_percent,
        },
        bus_route: c.bus_route.clone(),
        read_index_timeout_ms: c.read_index_timeout,
    };
    raftcache::latency::set_threshold_ms(c.latency_monitor_threshold);
    let server = ServerSettings {
        maxclients: c.maxclients as usize,
        idle_timeout: c.timeout,
        tcp_keepalive: c.tcp_keepalive,
        proto_max_bulk_len: c.proto_max_bulk_len,
        client_query_buffer_limit: usize::try_from(c.client_query_buffer_limit)
            .unwrap_or(usize::MAX),
        // Only the normal class applies to RESP clients (see OutputBufferLimits).
        client_output_buffer_limit: usize::try_from(c.client_output_buffer_limit.normal.hard_bytes)
            .unwrap_or(usize::MAX),
        client_output_buffer_soft: {
            let l = c.client_output_buffer_limit.normal;
            (l.soft_bytes > 0 && l.soft_seconds > 0).then(|| {
                (
                    usize::try_from(l.soft_bytes).unwrap_or(usize::MAX),
                    std::time::Duration::from_secs(l.soft_seconds),
                )
            })
        },
        requirepass: c.requirepass.clone(),
        acl_users: match &c.aclfile {
            Some(path) => load_acl_file(path)?,
            None => Vec::new(),
        },
        protected_mode: c.protected_mode,
        config_pairs: c.config_get_pairs(),
        node_id: c.node_id,
        me,
        tls_cluster: c.tls_cluster,
        bus_port: c.bus_port,
        dir: c.dir.clone(),
        slowlog_log_slower_than: c.slowlog_log_slower_than,
        slowlog_max_len: usize::try_from(c.slowlog_max_len).unwrap_or(usize::MAX),
    };
    let boot = BootSettings {
        client_listen: c.client_addr().map(|a| a.to_string()),
        tls_listen,
        bus_listen: c.bus_addr().to_string(),
        join: c.join.clone(),
        bootstrap: c.bootstraps(),
        metrics_listen: c.metrics_addr().map(|a| a.to_string()),
    };
    boot::run(boot, raft, server).await?;
    Ok(())
}

/// Read and parse the `aclfile` (command and category names checked
/// against the command table); any error stops startup, as in Redis.
fn load_acl_file(path: &str) -> anyhow::Result<Vec<raftcache::keyspace::acl::AclUser>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("aclfile {path}: {e}"))?;
    raftcache::keyspace::acl::parse_acl_file(&text, &raftcache::command::acl::known_name)
        .map_err(|e| anyhow::anyhow!("aclfile {path}: {e}"))
}
