//! Every knob of the server, from command-line flags, `RAFTCACHE_*`
//! environment variables, an optional TOML file and built-in defaults.
//!
//! Precedence is **flag > env > file > default**, per knob. To get that
//! without surprises every layer is read into the same shape of `Option`s
//! (`None` = "this layer says nothing") and the layers are merged field by
//! field; only then are defaults and cross-knob rules applied.
//!
//! Names follow redis.conf: `--proto-max-bulk-len 512mb` on the command
//! line, `proto-max-bulk-len = "512mb"` in the file,
//! `RAFTCACHE_PROTO_MAX_BULK_LEN=512mb` in the environment. All three
//! sources go through the same per-knob parser, so `512mb` is accepted and
//! `port 70000` is rejected the same way everywhere, and every error names
//! the knob, the bad value and where it came from.
//!
//! The environment is passed in as a lookup function
//! ([`Config::load_with_env`]) so tests never touch the process-global
//! environment (no `set_var` races between parallel tests).

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use serde::Deserialize;

/// Prefix of every environment variable read.
pub const ENV_PREFIX: &str = "RAFTCACHE_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line, or `--help` / `--version` (see [`ConfigError::exit`]).
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("invalid value '{value}' for '{knob}' (from {origin}): {reason}")]
    Invalid {
        knob: String,
        value: String,
        origin: Source,
        reason: String,
    },
    #[error("cannot read config file {}: {err}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    /// TOML syntax error, unknown key or a value of an unusable TOML type.
    #[error("config file {}: {message}", path.display())]
    ParseFile { path: PathBuf, message: String },
    /// Knobs that are fine alone but not together.
    #[error("invalid configuration: {0}")]
    Conflict(String),
}

impl ConfigError {
    /// What `main` should do with a load error: `--help`/`--version` print
    /// to stdout and exit 0; anything else prints to stderr and exits 2.
    pub fn exit(&self) -> ! {
        if let ConfigError::Cli(e) = self {
            e.exit()
        }
        eprintln!("raftcache: {self}");
        std::process::exit(2)
    }
}

/// Where a bad value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(String),
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::File(path) => write!(f, "config file {}", path.display()),
        }
    }
}

/// Eviction policy under `maxmemory`; the names and meanings of Redis's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxmemoryPolicy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl MaxmemoryPolicy {
    pub const ALL: [MaxmemoryPolicy; 8] = [
        MaxmemoryPolicy::NoEviction,
        MaxmemoryPolicy::AllKeysLru,
        MaxmemoryPolicy::AllKeysLfu,
        MaxmemoryPolicy::AllKeysRandom,
        MaxmemoryPolicy::VolatileLru,
        MaxmemoryPolicy::VolatileLfu,
        MaxmemoryPolicy::VolatileRandom,
        MaxmemoryPolicy::VolatileTtl,
    ];

    /// The redis.conf spelling (also what `CONFIG GET maxmemory-policy` shows).
    pub fn as_str(self) -> &'static str {
        match self {
            MaxmemoryPolicy::NoEviction => "noeviction",
            MaxmemoryPolicy::AllKeysLru => "allkeys-lru",
            MaxmemoryPolicy::AllKeysLfu => "allkeys-lfu",
            MaxmemoryPolicy::AllKeysRandom => "allkeys-random",
            MaxmemoryPolicy::VolatileLru => "volatile-lru",
            MaxmemoryPolicy::VolatileLfu => "volatile-lfu",
            MaxmemoryPolicy::VolatileRandom => "volatile-random",
            MaxmemoryPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}

/// How reads are served (see docs/reads.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// ReadIndex: one quorum round (batched) before reading. Never stale.
    Linearizable,
    /// Leader lease: no quorum round while the lease holds; relies on bounded clock drift.
    Lease,
    /// Every node, leader or not, reads its local state without any check:
    /// stale after a partition or while a follower lags. Unsafe on purpose.
    Stale,
}

impl ReadConsistency {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadConsistency::Linearizable => "linearizable",
            ReadConsistency::Lease => "lease",
            ReadConsistency::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `client-output-buffer-limit` for normal clients, as in redis.conf:
/// close the client when its pending output exceeds `hard_bytes`, or stays
/// above `soft_bytes` for `soft_seconds`. 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: u64,
}

/// The resolved configuration: every knob has its final value.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the config came from (`--config`), if a file was read.
    pub config_file: Option<PathBuf>,
    pub bind: IpAddr,
    pub port: u16,
    pub dir: PathBuf,
    pub node_id: u64,
    pub bus_port: u16,
    /// Client address of any existing member to join through,
    /// `host:port[@busport]` (bus port: port + 10000 unless given).
    pub join: Option<String>,
    /// Host this node advertises in MOVED / CLUSTER replies.
    pub cluster_announce_ip: String,
    pub cluster_announce_port: u16,
    pub cluster_announce_bus_port: u16,
    pub maxclients: u32,
    /// Idle client timeout; `None` = never.
    pub timeout: Option<Duration>,
    /// TCP keepalive interval; `None` = off.
    pub tcp_keepalive: Option<Duration>,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub client_output_buffer_limit: OutputBufferLimit,
    pub requirepass: Option<String>,
    /// Bytes; 0 = no limit.
    pub maxmemory: u64,
    pub maxmemory_policy: MaxmemoryPolicy,
    pub read_consistency: ReadConsistency,
    /// Milliseconds (at least 1).
    pub read_index_timeout: u64,
    /// Prometheus `/metrics` port; `None` = disabled.
    pub metrics_port: Option<u16>,
    pub log_format: LogFormat,
    /// A `tracing` filter directive (`info`, `raftcache=debug,openraft=info`).
    pub log_level: String,
    /// Milliseconds.
    pub election_timeout_min: u64,
    /// Milliseconds.
    pub election_timeout_max: u64,
    /// Milliseconds.
    pub heartbeat_interval: u64,
    pub snapshot_logs_since_last: u64,
    pub max_in_snapshot_log_to_keep: u64,
    pub max_payload_entries: u64,
    pub active_expire_hz: u32,
    /// Milliseconds a leader's wall clock may be ahead of the replicated
    /// clock and still move it forward; see docs/time.md.
    pub clock_max_skew: u64,
    /// Test-only negative control: acknowledge log appends without fsync.
    pub unsafe_no_fsync: bool,
    pub lmdb_map_size: u64,
    /// Largest encoded log entry; one write larger than this is refused.
    pub raft_max_entry_bytes: u64,
    /// Take a snapshot once the log holds this many bytes past the last one.
    pub snapshot_log_bytes_since_last: u64,
    /// Bytes of log kept behind a snapshot at most.
    pub max_in_snapshot_log_bytes_to_keep: u64,
    /// Share of `lmdb_map_size` (percent) the log may use before the leader
    /// refuses writes.
    pub lmdb_map_write_percent: u32,
    /// Per-peer bus address overrides: node id -> `host:port` to dial
    /// instead of the peer's advertised bus address.
    pub bus_route: std::collections::BTreeMap<u64, String>,
    /// On an empty data dir without `join`: bootstrap a new one-node
    /// cluster (true) or wait to be added by CLUSTER MEET / RAFTCACHE
    /// ADD-LEARNER. Resolved from the `cluster-bootstrap` knob: `auto`
    /// bootstraps only the single-node default, i.e. when no node id was
    /// configured (a node given an id is a cluster member, and a wiped
    /// member must not silently found a new cluster).
    pub cluster_bootstrap: bool,
}

/// A parsed knob value. One parser per type serves flags, env and file.
trait Knob: Sized + Clone + Send + Sync + 'static {
    fn parse_knob(s: &str) -> Result<Self, String>;
}

fn parse_knob<T: Knob>(s: &str) -> Result<T, String> {
    T::parse_knob(s)
}

macro_rules! knob_int {
    ($($t:ty),*) => {$(
        impl Knob for $t {
            fn parse_knob(s: &str) -> Result<Self, String> {
                s.trim().parse::<$t>().map_err(|_| {
                    format!("expected an integer from {} to {}", <$t>::MIN, <$t>::MAX)
                })
            }
        }
    )*};
}
knob_int!(u16, u32, u64);

impl Knob for String {
    fn parse_knob(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
}

impl Knob for PathBuf {
    fn parse_knob(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("expected a path".into());
        }
        Ok(PathBuf::from(s))
    }
}

impl Knob for IpAddr {
    fn parse_knob(s: &str) -> Result<Self, String> {
        s.trim()
            .parse()
            .map_err(|_| "expected an IPv4 or IPv6 address".into())
    }
}

/// redis.conf spells booleans `yes`/`no`; `true`/`false`/`1`/`0` are accepted too.
impl Knob for bool {
    fn parse_knob(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" => Ok(true),
            "no" | "false" | "0" | "off" => Ok(false),
            _ => Err("expected yes or no".into()),
        }
    }
}

/// `cluster-bootstrap`: `yes`, `no`, or `auto` (see `Config::cluster_bootstrap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bootstrap {
    Auto,
    Yes,
    No,
}

impl Knob for Bootstrap {
    fn parse_knob(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(Bootstrap::Auto);
        }
        match bool::parse_knob(s) {
            Ok(true) => Ok(Bootstrap::Yes),
            Ok(false) => Ok(Bootstrap::No),
            Err(_) => Err("expected yes, no or auto".into()),
        }
    }
}

/// A byte count with redis.conf memory units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Memory(u64);

/// redis.conf rules: a plain number is bytes; `k`/`m`/`g` are powers of 1000
/// and `kb`/`mb`/`gb` powers of 1024; `b` is bytes; case-insensitive; no
/// fractions, no sign.
impl Knob for Memory {
    fn parse_knob(s: &str) -> Result<Self, String> {
        const HELP: &str = "expected a byte count like 1048576, 100k, 512mb or 1gb";
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(HELP.into());
        }
        let mul: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" => 1000,
            "kb" => 1024,
            "m" => 1000 * 1000,
            "mb" => 1024 * 1024,
            "g" => 1000 * 1000 * 1000,
            "gb" => 1024 * 1024 * 1024,
            _ => return Err(HELP.into()),
        };
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mul))
            .map(Memory)
            .ok_or_else(|| "byte count too large".into())
    }
}

impl Knob for MaxmemoryPolicy {
    fn parse_knob(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        MaxmemoryPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| {
                let names: Vec<_> = MaxmemoryPolicy::ALL.iter().map(|p| p.as_str()).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
}

impl Knob for ReadConsistency {
    fn parse_knob(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "linearizable" => Ok(ReadConsistency::Linearizable),
            "lease" => Ok(ReadConsistency::Lease),
            "stale" => Ok(ReadConsistency::Stale),
            _ => Err("expected linearizable, lease or stale".into()),
        }
    }
}

impl Knob for LogFormat {
    fn parse_knob(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".into()),
        }
    }
}

/// `hard soft seconds` as in redis.conf (`normal` class name optional).
impl Knob for OutputBufferLimit {
    fn parse_knob(s: &str) -> Result<Self, String> {
        const HELP: &str = "expected '<hard> <soft> <soft-seconds>', e.g. '256mb 64mb 60'";
        let mut words: Vec<&str> = s.split_whitespace().collect();
        if words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("normal"))
        {
            words.remove(0);
        }
        let [hard, soft, secs] = words[..] else {
            return Err(HELP.into());
        };
        let hard = Memory::parse_knob(hard)
            .map_err(|e| format!("hard limit: {e}"))?
            .0;
        let soft = Memory::parse_knob(soft)
            .map_err(|e| format!("soft limit: {e}"))?
            .0;
        let soft_seconds = secs.parse().map_err(|_| format!("soft seconds: {HELP}"))?;
        Ok(OutputBufferLimit {
            hard_bytes: hard,
            soft_bytes: soft,
            soft_seconds,
        })
    }
}

/// One TOML value; turned back into text and read by the knob's own parser
/// so that file values obey exactly the same rules as flags (e.g. both
/// `proto-max-bulk-len = 1048576` and `= "1mb"` work).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FileValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl FileValue {
    fn text(&self) -> String {
        match self {
            FileValue::Bool(true) => "yes".into(),
            FileValue::Bool(false) => "no".into(),
            FileValue::Int(i) => i.to_string(),
            FileValue::Str(s) => s.clone(),
        }
    }
}

/// Declares every knob once: the clap flag (doc comment = `--help` text),
/// the TOML key, the env variable, and the default shown in `--help`.
/// Types are the *parse* types; [`Config::resolve`] turns them into the
/// public field types and applies defaults.
macro_rules! knobs {
    ($(
        $(#[doc = $doc:literal])*
        $(#[arg($($extra:tt)*)])?
        $field:ident : $ty:ty = $default:literal;
    )*) => {
        /// Command line. Every field is optional so "not given" is visible.
        #[derive(clap::Parser, Debug, Default)]
        #[command(
            name = "raftcache",
            version,
            about = "A Redis-protocol cache whose writes are replicated by Raft",
            long_about = None,
            after_long_help = "Precedence: flag > RAFTCACHE_* environment variable > --config file > default.\n\
                Memory sizes accept redis.conf units: k=1000, kb=1024, m, mb, g, gb.\n\
                Every knob is also a key of the TOML file (see config/raftcache.toml).",
            args_override_self = true
        )]
        struct Cli {
            /// TOML file with any of the knobs below (same names, e.g. `proto-max-bulk-len = "512mb"`).
            #[arg(long, value_name = "FILE")]
            config: Option<PathBuf>,
            $(
                $(#[doc = $doc])*
                #[arg(long, value_parser = parse_knob::<$ty> $(, $($extra)*)?)]
                $field: Option<$ty>,
            )*
        }

        /// The TOML file: same knob names, nothing else allowed.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        struct FileConfig {
            $($field: Option<FileValue>,)*
        }

        /// All layers merged: `None` = no layer set it (default applies).
        #[derive(Debug, Default)]
        struct Merged {
            $($field: Option<$ty>,)*
        }

        /// (clap id, default as shown in --help) for every knob.
        const KNOBS: &[(&str, &str)] = &[$((stringify!($field), $default),)*];

        fn merge(
            cli: Cli,
            env: &dyn Fn(&str) -> Option<OsString>,
            file: Option<(&Path, FileConfig)>,
        ) -> Result<Merged, ConfigError> {
            let (path, file) = match file {
                Some((p, f)) => (Some(p), f),
                None => (None, FileConfig::default()),
            };
            Ok(Merged {$(
                $field: match cli.$field {
                    Some(v) => Some(v),
                    None => match from_env::<$ty>(stringify!($field), env)? {
                        Some(v) => Some(v),
                        None => match &file.$field {
                            Some(v) => Some(from_file::<$ty>(stringify!($field), v, path)?),
                            None => None,
                        },
                    },
                },
            )*})
        }
    };
}

knobs! {
    /// Address to listen on for clients (one IP; 0.0.0.0 or :: = all interfaces).
    bind: IpAddr = "127.0.0.1";
    /// Client (RESP) port.
    port: u16 = "6379";
    /// Data directory: raft log (LMDB), snapshots, node id file.
    dir: PathBuf = "./data";
    /// Raft node id; unique in the cluster.
    node_id: u64 = "1";
    /// Raft bus port (node-to-node RPCs).
    bus_port: u16 = "port + 10000";
    /// Client address (host:port[@busport]; bus port = port + 10000 unless given) of any cluster member to join; empty = start or restart on my own.
    join: String = "none";
    /// Host advertised to clients in MOVED and CLUSTER replies.
    cluster_announce_ip: String = "bind address, or 127.0.0.1 if bind is 0.0.0.0/::";
    /// Client port advertised to clients (e.g. behind NAT or docker port mapping).
    cluster_announce_port: u16 = "port";
    /// Bus port advertised to other nodes.
    cluster_announce_bus_port: u16 = "bus-port";
    /// Most simultaneous client connections; more are answered '-ERR max number of clients reached'.
    maxclients: u32 = "10000";
    /// Close clients idle for this many seconds; 0 = never.
    timeout: u64 = "0";
    /// TCP keepalive interval in seconds for client connections; 0 = off.
    tcp_keepalive: u64 = "300";
    /// Largest single argument (bulk string) a client may send; at least 1mb.
    proto_max_bulk_len: Memory = "512mb";
    /// Largest pending request data per client (1 MB before AUTH); at least 1mb.
    client_query_buffer_limit: Memory = "1gb";
    /// Output buffer limit for normal clients: '<hard> <soft> <soft-seconds>'; 0 = no limit.
    client_output_buffer_limit: OutputBufferLimit = "256mb 64mb 60";
    /// Password clients must AUTH with; empty = no password.
    requirepass: String = "none";
    /// Memory limit for the data set, in bytes or units; 0 = no limit.
    maxmemory: Memory = "0";
    /// What to do at maxmemory: noeviction, allkeys-lru/-lfu/-random, volatile-lru/-lfu/-random/-ttl.
    maxmemory_policy: MaxmemoryPolicy = "noeviction";
    /// Read guarantee: linearizable (quorum check), lease (leader lease) or stale (local state on any node, unsafe).
    read_consistency: ReadConsistency = "linearizable";
    /// Milliseconds a follower read may wait for the leader's read index and local apply; then CLUSTERDOWN.
    read_index_timeout: u64 = "2000";
    /// Port for the Prometheus /metrics HTTP endpoint; 0 = disabled.
    metrics_port: u16 = "0";
    /// Log output format: text or json.
    log_format: LogFormat = "text";
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    log_level: String = "info";
    /// Raft: least election timeout, milliseconds.
    election_timeout_min: u64 = "200";
    /// Raft: greatest election timeout, milliseconds.
    election_timeout_max: u64 = "400";
    /// Raft: leader heartbeat interval, milliseconds.
    heartbeat_interval: u64 = "50";
    /// Raft: take a snapshot after this many log entries since the last one.
    snapshot_logs_since_last: u64 = "10000";
    /// Raft: log entries kept behind a snapshot (lets slightly lagging followers catch up without one).
    max_in_snapshot_log_to_keep: u64 = "1000";
    /// Raft: most entries per AppendEntries RPC.
    max_payload_entries: u64 = "300";
    /// Active expiry cycles per second (Redis's hz), 1..=500.
    active_expire_hz: u32 = "10";
    /// Milliseconds a leader's wall clock may run ahead of the replicated clock and still advance it; further (or behind) is logged and ignored.
    clock_max_skew: u64 = "1000";
    /// TEST ONLY: acknowledge writes without fsync (loses acknowledged writes on crash).
    #[arg(num_args = 0..=1, default_missing_value = "yes", value_name = "yes|no")]
    unsafe_no_fsync: bool = "no";
    /// LMDB map size (address space reserved for the raft log), bytes or units.
    lmdb_map_size: Memory = "8gb";
    /// Largest raft log entry (encoded); writes are batched up to it and a single larger write is refused.
    raft_max_entry_bytes: Memory = "512mb";
    /// Raft: also take a snapshot once the log has grown by this many bytes since the last one.
    snapshot_log_bytes_since_last: Memory = "lmdb-map-size / 8";
    /// Raft: bytes of log kept behind a snapshot at most (on top of the entry-count bound).
    max_in_snapshot_log_bytes_to_keep: Memory = "lmdb-map-size / 32";
    /// Percent of lmdb-map-size the raft log may use; above it the leader refuses writes with -OOM (1..=90).
    lmdb_map_write_percent: u32 = "50";
    /// Dial these addresses instead of peers' advertised bus addresses: 'id=host:port,...' (NAT, test proxies).
    bus_route: String = "none";
    /// On an empty dir without --join: create a new one-node cluster (yes), wait to be added (no), or auto: yes only when no node-id is configured.
    #[arg(num_args = 0..=1, default_missing_value = "yes", value_name = "yes|no|auto")]
    cluster_bootstrap: Bootstrap = "auto";
}

/// Knob name as users write it (`proto-max-bulk-len`) from its field name.
fn knob_name(field: &str) -> String {
    field.replace('_', "-")
}

fn env_var_name(field: &str) -> String {
    format!("{ENV_PREFIX}{}", field.to_ascii_uppercase())
}

fn from_env<T: Knob>(
    field: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<T>, ConfigError> {
    let var = env_var_name(field);
    let Some(raw) = env(&var) else {
        return Ok(None);
    };
    let invalid = |value: String, reason: String| ConfigError::Invalid {
        knob: knob_name(field),
        value,
        origin: Source::Env(var.clone()),
        reason,
    };
    let text = raw
        .into_string()
        .map_err(|v| invalid(v.to_string_lossy().into_owned(), "not valid UTF-8".into()))?;
    T::parse_knob(&text).map(Some).map_err(|r| invalid(text, r))
}

fn from_file<T: Knob>(
    field: &str,
    value: &FileValue,
    path: Option<&Path>,
) -> Result<T, ConfigError> {
    let text = value.text();
    T::parse_knob(&text).map_err(|reason| ConfigError::Invalid {
        knob: knob_name(field),
        value: text,
        origin: Source::File(path.map(Path::to_path_buf).unwrap_or_default()),
        reason,
    })
}

/// `clap::Command` with the default and env variable appended to every
/// knob's long help (kept out of the doc comments so they cannot drift from
/// [`KNOBS`] and [`env_var_name`]).
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for (field, default) in KNOBS {
        cmd = cmd.mut_arg(*field, |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.long_help(format!(
                "{help}\n[default: {default}] [env: {}]",
                env_var_name(field)
            ))
        });
    }
    cmd.mut_arg("config", |arg| {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        arg.long_help(format!("{help}\n[env: {}]", env_var_name("config")))
    })
}

const MIN_BUFFER_LIMIT: u64 = 1024 * 1024;

/// Bounds of `raft-max-entry-bytes`. The ceiling leaves 1 MiB of a raft bus
/// frame (at most 1 GiB, `raft::network::MAX_FRAME`) for the rest of an
/// AppendEntries request: a frame carries either up to 4 MiB of entries or
/// one bigger entry alone.
pub const MIN_ENTRY_BYTES: u64 = 64 << 10;
pub const MAX_ENTRY_BYTES: u64 = (1 << 30) - (1 << 20);

impl Config {
    /// Load from the process's arguments and environment (for `main`).
    pub fn from_env_and_args() -> Result<Config, ConfigError> {
        Config::load(std::env::args_os())
    }

    /// Load from `args` (the first is the program name) and the process
    /// environment.
    pub fn load(args: impl IntoIterator<Item = OsString>) -> Result<Config, ConfigError> {
        Config::load_with_env(args, |var| std::env::var_os(var))
    }

    /// Load from `args` and an environment lookup (tests pass a map).
    pub fn load_with_env(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Config, ConfigError> {
        let matches = command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let config_file = match cli.config.clone() {
            Some(p) => Some(p),
            None => from_env::<PathBuf>("config", &env)?,
        };
        let file = match &config_file {
            Some(path) => Some((path.as_path(), read_file(path)?)),
            None => None,
        };
        let merged = merge(cli, &env, file)?;
        Config::resolve(merged, config_file)
    }

    /// Apply defaults (including the ones derived from other knobs) and
    /// the rules that involve more than one knob.
    fn resolve(m: Merged, config_file: Option<PathBuf>) -> Result<Config, ConfigError> {
        let invalid = |field: &str, value: String, reason: &str| {
            ConfigError::Conflict(format!("{} = {value}: {reason}", knob_name(field)))
        };
        // One knob's own bound: `bad` refuses `value` with `reason`.
        let refuse_if = |bad: bool, field: &str, value: String, reason: &str| match bad {
            true => Err(invalid(field, value, reason)),
            false => Ok(()),
        };
        let node_id_configured = m.node_id.is_some();
        let bind = m.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let port = m.port.unwrap_or(6379);
        let bus_port = match m.bus_port {
            Some(p) => p,
            None => port.checked_add(10000).ok_or_else(|| {
                ConfigError::Conflict(format!(
                    "bus-port defaults to port + 10000, which is above 65535 for port {port}; set bus-port"
                ))
            })?,
        };
        let cluster_announce_port = m.cluster_announce_port.unwrap_or(port);
        let cluster_announce_bus_port = m.cluster_announce_bus_port.unwrap_or(bus_port);
        for (field, p) in [
            ("port", port),
            ("bus_port", bus_port),
            ("cluster_announce_port", cluster_announce_port),
            ("cluster_announce_bus_port", cluster_announce_bus_port),
        ] {
            if p == 0 {
                return Err(invalid(field, "0".into(), "must be 1..=65535"));
            }
        }
        let cluster_announce_ip = match m.cluster_announce_ip.filter(|s| !s.is_empty()) {
            Some(ip) => ip,
            None if bind.is_unspecified() => "127.0.0.1".to_owned(),
            None => bind.to_string(),
        };
        refuse_if(
            cluster_announce_ip.contains(char::is_whitespace),
            "cluster_announce_ip",
            cluster_announce_ip.clone(),
            "must not contain spaces",
        )?;
        let join = m.join.filter(|s| !s.is_empty());
        if let Some(j) = &join {
            let ok = crate::raft::MemberAddr::parse(j).is_ok();
            refuse_if(!ok, "join", j.clone(), "expected host:port[@busport]")?;
        }
        let proto_max_bulk_len = m.proto_max_bulk_len.map_or(512 * 1024 * 1024, |m| m.0);
        let client_query_buffer_limit = m.client_query_buffer_limit.map_or(1 << 30, |m| m.0);
        refuse_if(
            proto_max_bulk_len < MIN_BUFFER_LIMIT,
            "proto_max_bulk_len",
            proto_max_bulk_len.to_string(),
            "must be at least 1mb",
        )?;
        refuse_if(
            client_query_buffer_limit < MIN_BUFFER_LIMIT,
            "client_query_buffer_limit",
            client_query_buffer_limit.to_string(),
            "must be at least 1mb",
        )?;
        if proto_max_bulk_len > client_query_buffer_limit {
            return Err(ConfigError::Conflict(format!(
                "proto-max-bulk-len ({proto_max_bulk_len}) is larger than client-query-buffer-limit \
                 ({client_query_buffer_limit}): such a bulk could never be received"
            )));
        }
        let log_level = m.log_level.unwrap_or_else(|| "info".into());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            return Err(invalid("log_level", log_level, &e.to_string()));
        }
        let heartbeat_interval = m.heartbeat_interval.unwrap_or(50);
        let election_timeout_min = m.election_timeout_min.unwrap_or(200);
        let election_timeout_max = m.election_timeout_max.unwrap_or(400);
        if !(heartbeat_interval > 0
            && heartbeat_interval < election_timeout_min
            && election_timeout_min < election_timeout_max)
        {
            return Err(ConfigError::Conflict(format!(
                "need 0 < heartbeat-interval ({heartbeat_interval}) < election-timeout-min \
                 ({election_timeout_min}) < election-timeout-max ({election_timeout_max})"
            )));
        }
        let read_index_timeout = m.read_index_timeout.unwrap_or(2000);
        refuse_if(
            read_index_timeout == 0,
            "read_index_timeout",
            "0".into(),
            "must be at least 1",
        )?;
        let maxclients = m.maxclients.unwrap_or(10000);
        refuse_if(
            maxclients == 0,
            "maxclients",
            "0".into(),
            "must be at least 1",
        )?;
        let active_expire_hz = m.active_expire_hz.unwrap_or(10);
        refuse_if(
            !(1..=500).contains(&active_expire_hz),
            "active_expire_hz",
            active_expire_hz.to_string(),
            "must be 1..=500",
        )?;
        let max_payload_entries = m.max_payload_entries.unwrap_or(300);
        refuse_if(
            max_payload_entries == 0,
            "max_payload_entries",
            "0".into(),
            "must be at least 1",
        )?;
        let snapshot_logs_since_last = m.snapshot_logs_since_last.unwrap_or(10000);
        refuse_if(
            snapshot_logs_since_last == 0,
            "snapshot_logs_since_last",
            "0".into(),
            "must be at least 1",
        )?;
        let lmdb_map_size = m.lmdb_map_size.map_or(8 << 30, |m| m.0);
        refuse_if(
            lmdb_map_size < MIN_BUFFER_LIMIT,
            "lmdb_map_size",
            lmdb_map_size.to_string(),
            "must be at least 1mb",
        )?;
        let raft_max_entry_bytes = m.raft_max_entry_bytes.map_or(512 << 20, |m| m.0);
        refuse_if(
            !(MIN_ENTRY_BYTES..=MAX_ENTRY_BYTES).contains(&raft_max_entry_bytes),
            "raft_max_entry_bytes",
            raft_max_entry_bytes.to_string(),
            "must be from 64kb to 1023mb (a raft bus frame is at most 1gb)",
        )?;
        let snapshot_log_bytes_since_last = m
            .snapshot_log_bytes_since_last
            .map_or(lmdb_map_size / 8, |m| m.0);
        refuse_if(
            snapshot_log_bytes_since_last == 0,
            "snapshot_log_bytes_since_last",
            "0".into(),
            "must be at least 1",
        )?;
        let lmdb_map_write_percent = m.lmdb_map_write_percent.unwrap_or(50);
        refuse_if(
            !(1..=90).contains(&lmdb_map_write_percent),
            "lmdb_map_write_percent",
            lmdb_map_write_percent.to_string(),
            "must be 1..=90",
        )?;
        let mut bus_route = std::collections::BTreeMap::new();
        for part in m
            .bus_route
            .iter()
            .flat_map(|r| r.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let parsed = part.split_once('=').and_then(|(id, addr)| {
                let ok = addr
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                Some((id.trim().parse::<u64>().ok()?, addr.trim().to_string())).filter(|_| ok)
            });
            let Some((id, addr)) = parsed else {
                return Err(invalid(
                    "bus_route",
                    part.to_string(),
                    "expected id=host:port",
                ));
            };
            bus_route.insert(id, addr);
        }
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Ok(Config {
            config_file,
            bind,
            port,
            dir: m.dir.unwrap_or_else(|| PathBuf::from("./data")),
            node_id: m.node_id.unwrap_or(1),
            bus_port,
            join,
            cluster_announce_ip,
            cluster_announce_port,
            cluster_announce_bus_port,
            maxclients,
            timeout: secs(m.timeout.unwrap_or(0)),
            tcp_keepalive: secs(m.tcp_keepalive.unwrap_or(300)),
            proto_max_bulk_len,
            client_query_buffer_limit,
            client_output_buffer_limit: m.client_output_buffer_limit.unwrap_or(OutputBufferLimit {
                hard_bytes: 256 << 20,
                soft_bytes: 64 << 20,
                soft_seconds: 60,
            }),
            requirepass: m.requirepass.filter(|s| !s.is_empty()),
            maxmemory: m.maxmemory.map_or(0, |m| m.0),
            maxmemory_policy: m.maxmemory_policy.unwrap_or(MaxmemoryPolicy::NoEviction),
            read_consistency: m.read_consistency.unwrap_or(ReadConsistency::Linearizable),
            read_index_timeout,
            metrics_port: m.metrics_port.filter(|&p| p != 0),
            log_format: m.log_format.unwrap_or(LogFormat::Text),
            log_level,
            election_timeout_min,
            election_timeout_max,
            heartbeat_interval,
            snapshot_logs_since_last,
            max_in_snapshot_log_to_keep: m.max_in_snapshot_log_to_keep.unwrap_or(1000),
            max_payload_entries,
            active_expire_hz,
            clock_max_skew: m.clock_max_skew.unwrap_or(1000),
            unsafe_no_fsync: m.unsafe_no_fsync.unwrap_or(false),
            lmdb_map_size,
            raft_max_entry_bytes,
            snapshot_log_bytes_since_last,
            max_in_snapshot_log_bytes_to_keep: m
                .max_in_snapshot_log_bytes_to_keep
                .map_or(lmdb_map_size / 32, |m| m.0),
            lmdb_map_write_percent,
            bus_route,
            cluster_bootstrap: match m.cluster_bootstrap.unwrap_or(Bootstrap::Auto) {
                Bootstrap::Yes => true,
                Bootstrap::No => false,
                Bootstrap::Auto => !node_id_configured,
            },
        })
    }

    /// Where clients connect.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Where the raft bus listens.
    pub fn bus_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.bus_port)
    }

    /// `host:port` clients are told to use for this node (MOVED, CLUSTER SLOTS).
    pub fn announce_client_addr(&self) -> String {
        host_port(&self.cluster_announce_ip, self.cluster_announce_port)
    }

    /// `host:port` other nodes use to reach this node's raft bus.
    pub fn announce_bus_addr(&self) -> String {
        host_port(&self.cluster_announce_ip, self.cluster_announce_bus_port)
    }
}

/// `host:port`, bracketing IPv6 literals so the result parses back.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError::ReadFile {
        path: path.to_path_buf(),
        err,
    })?;
    parse_file(&text).map_err(|message| ConfigError::ParseFile {
        path: path.to_path_buf(),
        message,
    })
}

fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("raftcache")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn load(list: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, OsString> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Config::load_with_env(args(list), move |k| env.get(k).cloned())
    }

    fn load_ok(list: &[&str], env: &[(&str, &str)]) -> Config {
        load(list, env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn load_err(list: &[&str], env: &[(&str, &str)]) -> String {
        load(list, env).expect_err("expected an error").to_string()
    }

    fn temp_toml(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn defaults() {
        let c = load_ok(&[], &[]);
        assert_eq!(c.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.port, 6379);
        assert_eq!(c.bus_port, 16379);
        assert_eq!(c.dir, PathBuf::from("./data"));
        assert_eq!(c.node_id, 1);
        assert_eq!(c.join, None);
        assert_eq!(c.cluster_announce_ip, "127.0.0.1");
        assert_eq!(c.cluster_announce_port, 6379);
        assert_eq!(c.cluster_announce_bus_port, 16379);
        assert_eq!(c.maxclients, 10000);
        assert_eq!(c.timeout, None);
        assert_eq!(c.tcp_keepalive, Some(Duration::from_secs(300)));
        assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(c.client_query_buffer_limit, 1 << 30);
        assert_eq!(c.client_output_buffer_limit.hard_bytes, 256 << 20);
        assert_eq!(c.requirepass, None);
        assert_eq!(c.maxmemory, 0);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::NoEviction);
        assert_eq!(c.read_consistency, ReadConsistency::Linearizable);
        assert_eq!(c.metrics_port, None);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log_level, "info");
        assert_eq!(
            (
                c.heartbeat_interval,
                c.election_timeout_min,
                c.election_timeout_max
            ),
            (50, 200, 400)
        );
        assert_eq!(c.snapshot_logs_since_last, 10000);
        assert_eq!(c.max_in_snapshot_log_to_keep, 1000);
        assert_eq!(c.max_payload_entries, 300);
        assert_eq!(c.active_expire_hz, 10);
        assert_eq!(c.clock_max_skew, 1000);
        assert!(!c.unsafe_no_fsync);
        assert_eq!(c.lmdb_map_size, 8 << 30);
        assert_eq!(c.raft_max_entry_bytes, 512 << 20);
        assert_eq!(c.snapshot_log_bytes_since_last, 1 << 30);
        assert_eq!(c.max_in_snapshot_log_bytes_to_keep, 256 << 20);
        assert_eq!(c.lmdb_map_write_percent, 50);
        assert_eq!(c.client_addr(), "127.0.0.1:6379".parse().unwrap());
        assert_eq!(c.announce_client_addr(), "127.0.0.1:6379");
    }

    /// The default text shown in `--help` means the same as the built-in
    /// default (guards against one being changed without the other).
    #[test]
    fn help_defaults_match_built_in_defaults() {
        let defaults = load_ok(&[], &[]);
        for (field, shown) in KNOBS {
            let derived = [
                "bus_port",
                "cluster_announce_ip",
                "cluster_announce_port",
                "cluster_announce_bus_port",
                "snapshot_log_bytes_since_last",
                "max_in_snapshot_log_bytes_to_keep",
            ];
            if derived.contains(field) {
                continue;
            }
            let value = if *shown == "none" { "" } else { shown };
            let flag = format!("--{}={value}", knob_name(field));
            assert_eq!(
                load_ok(&[&flag], &[]),
                configured(&defaults, field),
                "{flag}"
            );
        }
    }

    #[test]
    fn log_byte_bounds_follow_the_map_and_are_checked() {
        let c = load_ok(&["--lmdb-map-size", "64mb"], &[]);
        assert_eq!(c.snapshot_log_bytes_since_last, 8 << 20);
        assert_eq!(c.max_in_snapshot_log_bytes_to_keep, 2 << 20);
        for bad in [
            ["--raft-max-entry-bytes", "1gb"],
            ["--raft-max-entry-bytes", "1000"],
            ["--lmdb-map-write-percent", "0"],
            ["--lmdb-map-write-percent", "95"],
            ["--snapshot-log-bytes-since-last", "0"],
        ] {
            let e = load_err(&bad, &[]);
            assert!(e.contains(&bad[0][2..]), "{bad:?}: {e}");
        }
    }

    #[test]
    fn derived_defaults_follow_their_knob() {
        let c = load_ok(&["--port", "7001", "--bind", "0.0.0.0"], &[]);
        assert_eq!(
            (
                c.bus_port,
                c.cluster_announce_port,
                c.cluster_announce_bus_port
            ),
            (17001, 7001, 17001)
        );
        assert_eq!(c.cluster_announce_ip, "127.0.0.1");
        let c = load_ok(&["--bind", "10.1.2.3", "--bus-port", "9000"], &[]);
        assert_eq!(c.cluster_announce_ip, "10.1.2.3");
        assert_eq!(c.cluster_announce_bus_port, 9000);
        let c = load_ok(
            &["--bind", "::1", "--cluster-announce-ip", "node1.example"],
            &[],
        );
        assert_eq!(c.announce_client_addr(), "node1.example:6379");
        let c = load_ok(&["--bind", "::1"], &[]);
        assert_eq!(c.announce_bus_addr(), "[::1]:16379");
        assert!(load_err(&["--port", "60000"], &[]).contains("set bus-port"));
        assert_eq!(
            load_ok(&["--port", "60000", "--bus-port", "60001"], &[]).bus_port,
            60001
        );
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let file = temp_toml("port = 7000\nmaxclients = 5\ntimeout = 9\n");
        let path = file.path().to_str().unwrap();
        // file only
        let c = load_ok(&["--config", path], &[]);
        assert_eq!(
            (c.port, c.maxclients, c.timeout),
            (7000, 5, Some(Duration::from_secs(9)))
        );
        assert_eq!(c.config_file.as_deref(), Some(file.path()));
        // env beats file
        let env = [("RAFTCACHE_PORT", "7100"), ("RAFTCACHE_MAXCLIENTS", "6")];
        let c = load_ok(&["--config", path], &env);
        assert_eq!((c.port, c.maxclients), (7100, 6));
        // flag beats env and file; untouched knobs still come from the file
        let c = load_ok(&["--config", path, "--port", "7200"], &env);
        assert_eq!(
            (c.port, c.maxclients, c.timeout),
            (7200, 6, Some(Duration::from_secs(9)))
        );
        // the config file itself can come from the environment
        let c = load_ok(&[], &[("RAFTCACHE_CONFIG", path)]);
        assert_eq!(c.port, 7000);
        // a later flag wins over an earlier one
        assert_eq!(load_ok(&["--port", "1", "--port", "2"], &[]).port, 2);
    }

    #[test]
    fn env_names_are_upper_snake() {
        let c = load_ok(
            &[],
            &[
                ("RAFTCACHE_PROTO_MAX_BULK_LEN", "1mb"),
                ("RAFTCACHE_MAXMEMORY_POLICY", "allkeys-lru"),
                ("RAFTCACHE_UNSAFE_NO_FSYNC", "yes"),
                ("RAFTCACHE_REQUIREPASS", "s3cret"),
            ],
        );
        assert_eq!(c.proto_max_bulk_len, 1 << 20);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::AllKeysLru);
        assert!(c.unsafe_no_fsync);
        assert_eq!(c.requirepass.as_deref(), Some("s3cret"));
    }

    #[test]
    fn memory_units() {
        let m = |s: &str| Memory::parse_knob(s).map(|m| m.0);
        assert_eq!(m("123"), Ok(123));
        assert_eq!(m("100k"), Ok(100_000));
        assert_eq!(m("100kb"), Ok(102_400));
        assert_eq!(m("2m"), Ok(2_000_000));
        assert_eq!(m("512mb"), Ok(512 << 20));
        assert_eq!(m("1G"), Ok(1_000_000_000));
        assert_eq!(m("1Gb"), Ok(1 << 30));
        assert_eq!(m("7b"), Ok(7));
        for bad in [
            "",
            "mb",
            "1.5gb",
            "-1",
            "1tb",
            "1 mb",
            "99999999999999999999gb",
            "1kbb",
        ] {
            assert!(m(bad).is_err(), "{bad:?}");
        }
        let c = load_ok(&["--maxmemory", "100mb", "--lmdb-map-size", "1gb"], &[]);
        assert_eq!((c.maxmemory, c.lmdb_map_size), (100 << 20, 1 << 30));
        let f = temp_toml("maxmemory = \"2gb\"\nproto-max-bulk-len = 1048576\n");
        let c = load_ok(&["--config", f.path().to_str().unwrap()], &[]);
        assert_eq!((c.maxmemory, c.proto_max_bulk_len), (2 << 30, 1 << 20));
    }

    #[test]
    fn flag_and_value_forms() {
        assert!(load_ok(&["--unsafe-no-fsync"], &[]).unsafe_no_fsync);
        assert!(!load_ok(&["--unsafe-no-fsync=no"], &[]).unsafe_no_fsync);
        let c = load_ok(&["--client-output-buffer-limit", "normal 0 0 0"], &[]);
        assert_eq!(
            c.client_output_buffer_limit,
            OutputBufferLimit {
                hard_bytes: 0,
                soft_bytes: 0,
                soft_seconds: 0
            }
        );
        let c = load_ok(
            &[
                "--metrics-port",
                "9121",
                "--join",
                "10.0.0.1:6379",
                "--timeout",
                "30",
            ],
            &[],
        );
        assert_eq!(c.metrics_port, Some(9121));
        assert_eq!(c.join.as_deref(), Some("10.0.0.1:6379"));
        assert_eq!(c.timeout, Some(Duration::from_secs(30)));
        assert_eq!(
            load_ok(&["--log-format", "JSON"], &[]).log_format,
            LogFormat::Json
        );
        assert_eq!(
            load_ok(&["--read-consistency", "lease"], &[]).read_consistency,
            ReadConsistency::Lease
        );
        for p in MaxmemoryPolicy::ALL {
            assert_eq!(
                load_ok(&["--maxmemory-policy", p.as_str()], &[]).maxmemory_policy,
                p
            );
        }
    }

    #[test]
    fn errors_name_knob_and_value() {
        let e = load_err(&["--port", "70000"], &[]);
        assert!(e.contains("70000") && e.contains("--port"), "{e}");
        let e = load_err(&["--maxmemory-policy", "lru"], &[]);
        assert!(e.contains("'lru'") && e.contains("noeviction"), "{e}");
        let e = load_err(&["--maxmemory", "12xb"], &[]);
        assert!(e.contains("12xb") && e.contains("--maxmemory"), "{e}");
        let e = load_err(&[], &[("RAFTCACHE_PORT", "70000")]);
        assert!(
            e.contains("'port'") && e.contains("RAFTCACHE_PORT") && e.contains("70000"),
            "{e}"
        );

        let f = temp_toml("port = 70000\n");
        let e = load_err(&["--config", f.path().to_str().unwrap()], &[]);
        assert!(
            e.contains("'port'") && e.contains("70000") && e.contains("config file"),
            "{e}"
        );
        let f = temp_toml("prot = 1\n");
        let e = load_err(&["--config", f.path().to_str().unwrap()], &[]);
        assert!(e.contains("unknown field") && e.contains("prot"), "{e}");
        let f = temp_toml("port = [1]\n");
        assert!(load(&["--config", f.path().to_str().unwrap()], &[]).is_err());
        let f = temp_toml("port = \n");
        assert!(load(&["--config", f.path().to_str().unwrap()], &[]).is_err());
        let e = load_err(&["--config", "/nonexistent/raftcache.toml"], &[]);
        assert!(
            e.contains("cannot read config file /nonexistent/raftcache.toml"),
            "{e}"
        );

        let e = load_err(&["--join", "nohost"], &[]);
        assert!(e.contains("join") && e.contains("host:port"), "{e}");
        let e = load_err(&["--proto-max-bulk-len", "100k"], &[]);
        assert!(e.contains("proto-max-bulk-len") && e.contains("1mb"), "{e}");
        let e = load_err(&["--proto-max-bulk-len", "2gb"], &[]);
        assert!(e.contains("client-query-buffer-limit"), "{e}");
        let e = load_err(&["--heartbeat-interval", "400"], &[]);
        assert!(e.contains("heartbeat-interval"), "{e}");
        let e = load_err(&["--log-level", "info,=[["], &[]);
        assert!(e.contains("log-level"), "{e}");
        assert!(load_err(&["--active-expire-hz", "0"], &[]).contains("active-expire-hz"));
        assert!(load_err(&["--bogus"], &[]).contains("--bogus"));
        assert!(load_err(&["--port", "0"], &[]).contains("port = 0"));
    }

    #[test]
    fn help_and_version() {
        let help = match load(&["--help"], &[]) {
            Err(ConfigError::Cli(e)) => {
                assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
                e.to_string()
            }
            other => panic!("{other:?}"),
        };
        for (field, default) in KNOBS {
            assert!(
                help.contains(&format!("--{}", knob_name(field))),
                "{field} missing from --help"
            );
            assert!(
                help.contains(&format!("[default: {default}]")),
                "{field} default missing"
            );
            assert!(help.contains(&env_var_name(field)), "{field} env missing");
        }
        match load(&["--version"], &[]) {
            Err(ConfigError::Cli(e)) => {
                assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion)
            }
            other => panic!("{other:?}"),
        }
    }

    /// `defaults` as they resolve once knob `field` is set to its default
    /// value: only a configured node id changes anything (`cluster-bootstrap
    /// auto` then no longer bootstraps).
    fn configured(defaults: &Config, field: &str) -> Config {
        let mut c = defaults.clone();
        if field == "node_id" {
            c.cluster_bootstrap = false;
        }
        c
    }

    #[test]
    fn bootstrap_auto_only_for_the_single_node_default() {
        assert!(load_ok(&[], &[]).cluster_bootstrap);
        assert!(!load_ok(&["--node-id", "1"], &[]).cluster_bootstrap);
        assert!(!load_ok(&[], &[("RAFTCACHE_NODE_ID", "3")]).cluster_bootstrap);
        assert!(load_ok(&["--node-id", "1", "--cluster-bootstrap"], &[]).cluster_bootstrap);
        assert!(load_ok(&["--node-id", "1", "--cluster-bootstrap", "yes"], &[]).cluster_bootstrap);
        assert!(!load_ok(&["--cluster-bootstrap", "no"], &[]).cluster_bootstrap);
        assert!(load_ok(&["--cluster-bootstrap", "auto"], &[]).cluster_bootstrap);
        let e = load_err(&["--cluster-bootstrap", "maybe"], &[]);
        assert!(e.contains("cluster-bootstrap") && e.contains("auto"), "{e}");
    }

    /// config/raftcache.toml lists every knob, commented out, with its
    /// default; uncommented it must load to exactly the defaults.
    #[test]
    fn shipped_toml_documents_every_knob() {
        let text = include_str!("../config/raftcache.toml");
        let uncommented: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let file: FileConfig = parse_file(&uncommented).unwrap_or_else(|e| panic!("{e}"));
        for (field, _) in KNOBS {
            let key = format!("{} = ", knob_name(field));
            assert!(
                uncommented.lines().any(|l| l.starts_with(&key)),
                "{field} missing from raftcache.toml"
            );
        }
        let merged = merge(
            Cli::default(),
            &|_| None,
            Some((Path::new("raftcache.toml"), file)),
        )
        .unwrap();
        let defaults = load_ok(&[], &[]);
        assert_eq!(
            Config::resolve(merged, None).unwrap(),
            configured(&defaults, "node_id")
        );
        // And the file as shipped (all commented) loads too.
        let f = temp_toml(text);
        load_ok(&["--config", f.path().to_str().unwrap()], &[]);
    }
}
