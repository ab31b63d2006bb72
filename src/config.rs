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
//! Each knob is declared once, as one row of `knobs!`: its name, type,
//! default, help, whether `CONFIG GET` lists it and `CONFIG SET` may
//! change it, and its own bound. Flag, env variable, TOML key, `--help`
//! default, [`Config`] field and `CONFIG GET` answer all come from that row;
//! adding a knob is adding a row (and using the field).
//!
//! The environment is passed in as a lookup function
//! ([`Config::load_with_env`]) so tests never touch the process-global
//! environment (no `set_var` races between parallel tests).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeBounds;
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

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// One class of `client-output-buffer-limit`, as in redis.conf: close the
/// client when its pending output exceeds `hard_bytes`, or stays above
/// `soft_bytes` for `soft_seconds`. 0 disables a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimit {
    pub hard_bytes: u64,
    pub soft_bytes: u64,
    pub soft_seconds: u64,
}

impl OutputBufferLimit {
    const fn new(hard_bytes: u64, soft_bytes: u64, soft_seconds: u64) -> OutputBufferLimit {
        OutputBufferLimit {
            hard_bytes,
            soft_bytes,
            soft_seconds,
        }
    }
}

/// `client-output-buffer-limit` with Redis's three classes. Only `normal`
/// is enforced: no replica or pub/sub client speaks RESP to a raftcache
/// node (replication is the raft bus; there is no SUBSCRIBE), so the other
/// two are accepted, kept and shown by `CONFIG GET` for tools that set or
/// read them, and do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputBufferLimits {
    pub normal: OutputBufferLimit,
    /// `replica` (alias `slave`; `CONFIG GET` says `slave`, as Redis does).
    pub replica: OutputBufferLimit,
    pub pubsub: OutputBufferLimit,
}

impl Default for OutputBufferLimits {
    /// Redis's defaults, except `normal`: Redis leaves normal clients
    /// unbounded (`0 0 0`); raftcache bounds them (an unbounded reply
    /// buffer lets one client that never reads hold any amount of memory).
    fn default() -> OutputBufferLimits {
        OutputBufferLimits {
            normal: OutputBufferLimit::new(256 << 20, 64 << 20, 60),
            replica: OutputBufferLimit::new(256 << 20, 64 << 20, 60),
            pubsub: OutputBufferLimit::new(32 << 20, 8 << 20, 60),
        }
    }
}

/// `tls-auth-clients`, as in redis.conf: whether clients on `tls-port`
/// must present a certificate signed by `tls-ca-cert-file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsAuthClients {
    /// A client certificate is required (Redis's default).
    Yes,
    /// A client certificate is verified if presented, else not required.
    Optional,
    /// No client certificate is asked for.
    No,
}

/// `cluster-bootstrap`: what a node does on an empty data dir without
/// `join`. `Config::resolve` turns `Auto` into `Yes` or `No`: `auto`
/// bootstraps only the single-node default, i.e. when no node id was
/// configured (a node given an id is a cluster member, and a wiped member
/// must not silently found a new cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    Auto,
    /// Bootstrap a new one-node cluster.
    Yes,
    /// Wait to be added by CLUSTER MEET / RAFTCACHE ADD-LEARNER.
    No,
}

/// One kind of knob value: how it is read and how it is written back.
///
/// One parser per kind serves flags, env and file. `render` is the
/// redis.conf spelling `CONFIG GET` shows (sizes in plain bytes, booleans
/// `yes`/`no`, enums by name) and parses back to the same value.
trait Knob {
    /// The type of the knob's field in [`Config`].
    type Value: Clone + fmt::Debug + PartialEq + Send + Sync + 'static;
    fn parse(s: &str) -> Result<Self::Value, String>;
    fn render(v: &Self::Value) -> String;
    /// The default as `--help` shows it (sizes in redis.conf units).
    fn render_help(v: &Self::Value) -> String {
        Self::render(v)
    }
    /// A given value that stands for "the default" (an empty host name).
    fn means_default(_v: &Self::Value) -> bool {
        false
    }
}

/// The value parser clap calls for a knob of kind `K`.
fn parse_value<K: Knob>(s: &str) -> Result<K::Value, String> {
    K::parse(s)
}

macro_rules! knob_int {
    ($($t:ty),*) => {$(
        impl Knob for $t {
            type Value = $t;
            fn parse(s: &str) -> Result<$t, String> {
                s.trim().parse::<$t>().map_err(|_| {
                    format!("expected an integer from {} to {}", <$t>::MIN, <$t>::MAX)
                })
            }
            fn render(v: &$t) -> String {
                v.to_string()
            }
        }
    )*};
}
knob_int!(u16, u32, u64, i64);

/// Text; an empty string means the knob's default.
impl Knob for String {
    type Value = String;
    fn parse(s: &str) -> Result<String, String> {
        Ok(s.to_owned())
    }
    fn render(v: &String) -> String {
        v.clone()
    }
    fn means_default(v: &String) -> bool {
        v.is_empty()
    }
}

/// Optional text: empty = none.
enum OptString {}

impl Knob for OptString {
    type Value = Option<String>;
    fn parse(s: &str) -> Result<Option<String>, String> {
        Ok(Some(s.to_owned()).filter(|s| !s.is_empty()))
    }
    fn render(v: &Option<String>) -> String {
        v.clone().unwrap_or_default()
    }
}

impl Knob for PathBuf {
    type Value = PathBuf;
    fn parse(s: &str) -> Result<PathBuf, String> {
        if s.is_empty() {
            return Err("expected a path".into());
        }
        Ok(PathBuf::from(s))
    }
    fn render(v: &PathBuf) -> String {
        v.display().to_string()
    }
}

impl Knob for IpAddr {
    type Value = IpAddr;
    fn parse(s: &str) -> Result<IpAddr, String> {
        s.trim()
            .parse()
            .map_err(|_| "expected an IPv4 or IPv6 address".into())
    }
    fn render(v: &IpAddr) -> String {
        v.to_string()
    }
}

/// redis.conf spells booleans `yes`/`no`; `true`/`false`/`1`/`0` are accepted too.
impl Knob for bool {
    type Value = bool;
    fn parse(s: &str) -> Result<bool, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" => Ok(true),
            "no" | "false" | "0" | "off" => Ok(false),
            _ => Err("expected yes or no".into()),
        }
    }
    fn render(v: &bool) -> String {
        if *v { "yes" } else { "no" }.into()
    }
}

/// A three-way knob: `yes`/`no` in any spelling `bool` accepts, or `word`.
fn yes_no_or<T>(s: &str, yes: T, no: T, (word, other): (&str, T)) -> Result<T, String> {
    if s.trim().eq_ignore_ascii_case(word) {
        return Ok(other);
    }
    match bool::parse(s) {
        Ok(true) => Ok(yes),
        Ok(false) => Ok(no),
        Err(_) => Err(format!("expected yes, no or {word}")),
    }
}

impl Knob for TlsAuthClients {
    type Value = TlsAuthClients;
    fn parse(s: &str) -> Result<TlsAuthClients, String> {
        use TlsAuthClients::*;
        yes_no_or(s, Yes, No, ("optional", Optional))
    }
    fn render(v: &TlsAuthClients) -> String {
        match v {
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::Optional => "optional",
            TlsAuthClients::No => "no",
        }
        .into()
    }
}

impl Knob for Bootstrap {
    type Value = Bootstrap;
    fn parse(s: &str) -> Result<Bootstrap, String> {
        use Bootstrap::*;
        yes_no_or(s, Yes, No, ("auto", Auto))
    }
    fn render(v: &Bootstrap) -> String {
        match v {
            Bootstrap::Auto => "auto",
            Bootstrap::Yes => "yes",
            Bootstrap::No => "no",
        }
        .into()
    }
}

/// A byte count with redis.conf memory units.
enum Memory {}

/// redis.conf rules: a plain number is bytes; `k`/`m`/`g` are powers of 1000
/// and `kb`/`mb`/`gb` powers of 1024; `b` is bytes; case-insensitive; no
/// fractions, no sign. Rendered as plain bytes, as Redis's CONFIG GET does.
impl Knob for Memory {
    type Value = u64;
    fn parse(s: &str) -> Result<u64, String> {
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
            .ok_or_else(|| "byte count too large".into())
    }
    fn render(v: &u64) -> String {
        v.to_string()
    }
    /// The largest binary unit that divides the value: `512mb`, `8gb`.
    fn render_help(v: &u64) -> String {
        for (unit, size) in [("gb", 1u64 << 30), ("mb", 1 << 20), ("kb", 1 << 10)] {
            if *v != 0 && v % size == 0 {
                return format!("{}{unit}", v / size);
            }
        }
        v.to_string()
    }
}

/// Whole seconds; 0 = off.
enum Seconds {}

impl Knob for Seconds {
    type Value = Option<Duration>;
    fn parse(s: &str) -> Result<Option<Duration>, String> {
        Ok(Some(u64::parse(s)?)
            .filter(|&s| s > 0)
            .map(Duration::from_secs))
    }
    fn render(v: &Option<Duration>) -> String {
        v.map_or(0, |d| d.as_secs()).to_string()
    }
}

/// A port; 0 = disabled.
enum OptionalPort {}

impl Knob for OptionalPort {
    type Value = Option<u16>;
    fn parse(s: &str) -> Result<Option<u16>, String> {
        Ok(Some(u16::parse(s)?).filter(|&p| p != 0))
    }
    fn render(v: &Option<u16>) -> String {
        v.unwrap_or(0).to_string()
    }
}

impl Knob for MaxmemoryPolicy {
    type Value = MaxmemoryPolicy;
    fn parse(s: &str) -> Result<MaxmemoryPolicy, String> {
        let lower = s.trim().to_ascii_lowercase();
        MaxmemoryPolicy::ALL
            .into_iter()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| {
                let names: Vec<_> = MaxmemoryPolicy::ALL.iter().map(|p| p.as_str()).collect();
                format!("expected one of {}", names.join(", "))
            })
    }
    fn render(v: &MaxmemoryPolicy) -> String {
        v.as_str().into()
    }
}

impl Knob for ReadConsistency {
    type Value = ReadConsistency;
    fn parse(s: &str) -> Result<ReadConsistency, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "linearizable" => Ok(ReadConsistency::Linearizable),
            "lease" => Ok(ReadConsistency::Lease),
            "stale" => Ok(ReadConsistency::Stale),
            _ => Err("expected linearizable, lease or stale".into()),
        }
    }
    fn render(v: &ReadConsistency) -> String {
        v.as_str().into()
    }
}

impl Knob for LogFormat {
    type Value = LogFormat;
    fn parse(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".into()),
        }
    }
    fn render(v: &LogFormat) -> String {
        v.as_str().into()
    }
}

/// redis.conf's syntax: one or more `<class> <hard> <soft> <soft-seconds>`
/// groups (classes `normal`, `replica` or `slave`, `pubsub`; a class not
/// given keeps its default, a class given twice takes the last), or just
/// `<hard> <soft> <soft-seconds>` for the normal class.
impl Knob for OutputBufferLimits {
    type Value = OutputBufferLimits;
    fn parse(s: &str) -> Result<OutputBufferLimits, String> {
        const HELP: &str = "expected '<class> <hard> <soft> <soft-seconds>' groups \
            (class normal, replica or pubsub), e.g. 'normal 256mb 64mb 60 pubsub 32mb 8mb 60', \
            or '<hard> <soft> <soft-seconds>' for normal clients";
        let words: Vec<&str> = s.split_whitespace().collect();
        let mut limits = OutputBufferLimits::default();
        if let [hard, soft, secs] = words[..] {
            limits.normal = class_limit(hard, soft, secs)?;
            return Ok(limits);
        }
        if words.is_empty() || words.len() % 4 != 0 {
            return Err(HELP.into());
        }
        for group in words.chunks(4) {
            let [class, hard, soft, secs] = group[..] else {
                unreachable!("chunks of 4")
            };
            let slot = match class.to_ascii_lowercase().as_str() {
                "normal" => &mut limits.normal,
                "replica" | "slave" => &mut limits.replica,
                "pubsub" => &mut limits.pubsub,
                _ => {
                    return Err(format!(
                        "unknown client class '{class}' (expected normal, replica, slave or pubsub)"
                    ))
                }
            };
            *slot = class_limit(hard, soft, secs).map_err(|e| format!("{class}: {e}"))?;
        }
        Ok(limits)
    }
    /// As Redis's `CONFIG GET` shows it: every class, sizes in bytes,
    /// `slave` for replicas.
    fn render(v: &OutputBufferLimits) -> String {
        let class = |name: &str, l: &OutputBufferLimit| {
            format!(
                "{name} {} {} {}",
                l.hard_bytes, l.soft_bytes, l.soft_seconds
            )
        };
        [
            class("normal", &v.normal),
            class("slave", &v.replica),
            class("pubsub", &v.pubsub),
        ]
        .join(" ")
    }
    fn render_help(v: &OutputBufferLimits) -> String {
        let class = |name: &str, l: &OutputBufferLimit| {
            format!(
                "{name} {} {} {}",
                Memory::render_help(&l.hard_bytes),
                Memory::render_help(&l.soft_bytes),
                l.soft_seconds
            )
        };
        [
            class("normal", &v.normal),
            class("replica", &v.replica),
            class("pubsub", &v.pubsub),
        ]
        .join(" ")
    }
}

/// One class's `<hard> <soft> <soft-seconds>`.
fn class_limit(hard: &str, soft: &str, secs: &str) -> Result<OutputBufferLimit, String> {
    let hard = Memory::parse(hard).map_err(|e| format!("hard limit: {e}"))?;
    let soft = Memory::parse(soft).map_err(|e| format!("soft limit: {e}"))?;
    let secs = secs
        .parse()
        .map_err(|_| format!("soft seconds: expected a whole number, not '{secs}'"))?;
    Ok(OutputBufferLimit::new(hard, soft, secs))
}

/// `bus-route`: `id=host:port,...`; empty = none.
enum BusRoutes {}

impl Knob for BusRoutes {
    type Value = BTreeMap<u64, String>;
    fn parse(s: &str) -> Result<BTreeMap<u64, String>, String> {
        let mut routes = BTreeMap::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parsed = part.split_once('=').and_then(|(id, addr)| {
                let addr = addr.trim();
                Some((id.trim().parse::<u64>().ok()?, addr.to_string()))
                    .filter(|_| is_host_port(addr))
            });
            let Some((id, addr)) = parsed else {
                return Err(format!("expected id=host:port, not '{part}'"));
            };
            routes.insert(id, addr);
        }
        Ok(routes)
    }
    fn render(v: &BTreeMap<u64, String>) -> String {
        let routes: Vec<String> = v.iter().map(|(id, addr)| format!("{id}={addr}")).collect();
        routes.join(",")
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

/// One knob as declared in `knobs!`; [`KNOBS`] lists them all.
pub struct KnobSpec {
    /// Field of [`Config`] (and clap id), e.g. `proto_max_bulk_len`.
    pub field: &'static str,
    /// Listed by `CONFIG GET`.
    pub config_get: bool,
    /// `CONFIG SET` may change it at run time (none may yet: CONFIG SET is
    /// refused).
    pub config_set: bool,
    /// The default is computed from other knobs; `default_text` describes
    /// the rule instead of showing a value.
    pub derived: bool,
    default_text: fn() -> String,
    render: fn(&Config) -> String,
}

impl KnobSpec {
    /// As users write it: `proto-max-bulk-len` (flag, TOML key, CONFIG GET).
    pub fn name(&self) -> String {
        knob_name(self.field)
    }

    /// `RAFTCACHE_PROTO_MAX_BULK_LEN`.
    pub fn env(&self) -> String {
        env_var_name(self.field)
    }

    /// The default as `--help` shows it: the built-in value in redis.conf
    /// spelling, or the rule of a derived default; `none` when empty.
    pub fn default_text(&self) -> String {
        let text = (self.default_text)();
        if text.is_empty() {
            "none".into()
        } else {
            text
        }
    }

    /// The knob's value in `c`, as `CONFIG GET` shows it.
    pub fn value(&self, c: &Config) -> String {
        (self.render)(c)
    }
}

/// The kind of a knob declared `field: Type` or `field: Type as Kind`.
macro_rules! kind {
    ($ty:ty) => {
        $ty
    };
    ($ty:ty, $kind:ty) => {
        $kind
    };
}

/// The `--help` default of a knob: its value rendered, or for a derived
/// default (`= expr => "rule"`) the rule (the expression needs other knobs).
macro_rules! default_text {
    ($kind:ty, $default:expr) => {
        <$kind as Knob>::render_help(&$default)
    };
    ($kind:ty, $default:expr, $rule:literal) => {
        String::from($rule)
    };
}

/// A knob's check, or none.
macro_rules! check {
    () => {
        |_| Ok(())
    };
    ($check:expr) => {
        $check
    };
}

macro_rules! is_present {
    () => {
        false
    };
    ($x:literal) => {
        true
    };
}

/// Declares every knob once. A row is
///
/// ```text
/// /// Help text (--help, and the doc of the Config field).
/// name: Type [as Kind] = default [=> "rule"], get: bool, set: bool [, check: f];
/// ```
///
/// * `Type` is the field's type in [`Config`]; `Kind` (a [`Knob`]) parses
///   and renders it when that is not the type itself (`u64 as Memory`
///   reads `512mb`).
/// * `default` is the real default value. It may use knobs declared above
///   it and `?`; such a derived default adds `=> "rule"`, the text `--help`
///   shows in place of a value.
/// * `get`: listed by `CONFIG GET`; `set`: `CONFIG SET` may change it.
/// * `check` is the knob's own bound: `Fn(&Type) -> Result<(), String>`
///   ([`within`], [`refuse`]), applied to the final value.
///
/// From the rows come the [`Config`] fields, the clap flags, the TOML keys,
/// the `RAFTCACHE_*` variables, [`KNOBS`] and the resolution of defaults;
/// rules involving several knobs are in [`Config::resolve`].
macro_rules! knobs {
    ($(
        $(#[doc = $doc:literal])*
        $(#[arg($($extra:tt)*)])?
        $field:ident : $ty:ty $(as $kind:ty)? = $default:expr $(=> $rule:literal)?,
            get: $get:literal, set: $set:literal $(, check: $check:expr)?;
    )*) => {
        /// The resolved configuration: every knob has its final value.
        #[derive(Clone, PartialEq)]
        pub struct Config {
            /// Where the config came from (`--config`), if a file was read.
            pub config_file: Option<PathBuf>,
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        /// Knobs CONFIG GET does not show (the passwords and secrets) are
        /// not shown here either, so logging a `Config` cannot leak them.
        impl fmt::Debug for Config {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut d = f.debug_struct("Config");
                d.field("config_file", &self.config_file);
                $(
                    if $get {
                        d.field(stringify!($field), &self.$field);
                    } else {
                        d.field(stringify!($field), &"<redacted>");
                    }
                )*
                d.finish()
            }
        }

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
                #[arg(long, value_parser = parse_value::<kind!($ty $(, $kind)?)> $(, $($extra)*)?)]
                // The value type spelled as a projection: clap reads a
                // literal `Option<Option<T>>` as "flag with optional value".
                $field: Option<<kind!($ty $(, $kind)?) as Knob>::Value>,
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

        /// Every knob, in declaration (and `--help`) order.
        pub static KNOBS: &[KnobSpec] = &[$(
            KnobSpec {
                field: stringify!($field),
                config_get: $get,
                config_set: $set,
                derived: is_present!($($rule)?),
                default_text: || default_text!(kind!($ty $(, $kind)?), $default $(, $rule)?),
                render: |c| <kind!($ty $(, $kind)?) as Knob>::render(&c.$field),
            },
        )*];

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
                    None => match from_env::<kind!($ty $(, $kind)?)>(stringify!($field), env)? {
                        Some(v) => Some(v),
                        None => match &file.$field {
                            Some(v) => Some(from_file::<kind!($ty $(, $kind)?)>(
                                stringify!($field), v, path,
                            )?),
                            None => None,
                        },
                    },
                },
            )*})
        }

        /// Each knob in declaration order: the merged value, else its
        /// default (which may use the knobs above it); then its own check.
        fn resolve_knobs(m: Merged, config_file: Option<PathBuf>) -> Result<Config, ConfigError> {
            $(
                let $field: $ty = match m
                    .$field
                    .filter(|v| !<kind!($ty $(, $kind)?) as Knob>::means_default(v))
                {
                    Some(v) => v,
                    None => $default,
                };
                check_knob::<kind!($ty $(, $kind)?)>(stringify!($field), &$field, check!($($check)?))?;
            )*
            Ok(Config { config_file, $($field,)* })
        }
    };
}

knobs! {
    /// Address to listen on for clients (one IP; 0.0.0.0 or :: = all interfaces).
    bind: IpAddr = Ipv4Addr::LOCALHOST.into(), get: true, set: false;
    /// Client (RESP) port; 0 = no plain-text listener (TLS only: needs tls-port).
    port: u16 = 6379, get: true, set: false;
    /// TLS client port (same protocol as port, over TLS); 0 = no TLS listener. Needs tls-cert-file and tls-key-file.
    tls_port: Option<u16> as OptionalPort = None, get: true, set: false;
    /// Server certificate chain for tls-port, PEM (leaf first).
    tls_cert_file: Option<String> as OptString = None, get: true, set: false;
    /// Private key of tls-cert-file, PEM (PKCS#8, PKCS#1 or SEC1), unencrypted.
    tls_key_file: Option<String> as OptString = None, get: true, set: false;
    /// CA certificates (PEM) that sign client certificates; needed unless tls-auth-clients is no.
    tls_ca_cert_file: Option<String> as OptString = None, get: true, set: false;
    /// Client certificates on tls-port: yes (required, signed by tls-ca-cert-file), optional (verified if presented) or no.
    tls_auth_clients: TlsAuthClients = TlsAuthClients::Yes, get: true, set: false;
    /// MOVED and CLUSTER SLOTS/SHARDS/NODES advertise the TLS port instead of port (and the bus port defaults to it + 10000).
    #[arg(num_args = 0..=1, default_missing_value = "yes", value_name = "yes|no")]
    tls_cluster: bool = port == 0 => "yes if port is 0, else no", get: true, set: false;
    /// TLS client port advertised with tls-cluster yes (e.g. behind NAT or docker port mapping); 0 = tls-port.
    cluster_announce_tls_port: Option<u16> as OptionalPort = tls_port => "tls-port", get: true, set: false;
    /// Data directory: raft log (LMDB), snapshots, node id file.
    dir: PathBuf = "./data".into(), get: true, set: false;
    /// Raft node id; unique in the cluster.
    node_id: u64 = 1, get: true, set: false;
    /// Raft bus port (node-to-node RPCs).
    bus_port: u16 = bus_port_default(match tls_cluster {
        true => tls_port.unwrap_or(port),
        false => port,
    })? => "port + 10000 (tls-port + 10000 with tls-cluster yes)", get: true, set: false,
        check: within(1.., "must be 1..=65535");
    /// Client address (host:port[@busport]; bus port = port + 10000 unless given) of any cluster member to join; empty = start or restart on my own.
    join: Option<String> as OptString = None, get: true, set: false,
        check: |j| refuse(
            j.as_deref().is_some_and(|j| crate::raft::MemberAddr::parse(j).is_err()),
            "expected host:port[@busport]",
        );
    /// Host advertised to clients in MOVED and CLUSTER replies.
    cluster_announce_ip: String = announce_ip_default(bind)
        => "bind address, or 127.0.0.1 if bind is 0.0.0.0/::", get: true, set: false,
        check: |ip| refuse(ip.contains(char::is_whitespace), "must not contain spaces");
    /// Client port advertised to clients (e.g. behind NAT or docker port mapping).
    // 0 only with port 0 (TLS only), checked in `Config::resolve`.
    cluster_announce_port: u16 = port => "port", get: true, set: false;
    /// Bus port advertised to other nodes.
    cluster_announce_bus_port: u16 = bus_port => "bus-port", get: true, set: false,
        check: within(1.., "must be 1..=65535");
    /// Most simultaneous client connections; more are answered '-ERR max number of clients reached'.
    maxclients: u32 = 10000, get: true, set: false, check: within(1.., "must be at least 1");
    /// Close clients idle for this many seconds; 0 = never.
    timeout: Option<Duration> as Seconds = None, get: true, set: false;
    /// TCP keepalive interval in seconds for client connections; 0 = off.
    tcp_keepalive: Option<Duration> as Seconds = Some(Duration::from_secs(300)), get: true, set: false;
    /// Largest single argument (bulk string) a client may send; at least 1mb.
    proto_max_bulk_len: u64 as Memory = 512 << 20, get: true, set: false,
        check: within(MIN_BUFFER_LIMIT.., "must be at least 1mb");
    /// Largest pending request data per client (1 MB before AUTH); at least 1mb.
    client_query_buffer_limit: u64 as Memory = 1 << 30, get: true, set: false,
        check: within(MIN_BUFFER_LIMIT.., "must be at least 1mb");
    /// Output buffer limits per client class, as redis.conf: '<class> <hard> <soft> <soft-seconds>' groups (normal, replica, pubsub), or '<hard> <soft> <soft-seconds>' for normal; 0 = no limit. Only normal is enforced (no replica or pub/sub clients here). Unlike Redis, normal is bounded by default: an unbounded reply buffer is an abuse vector.
    client_output_buffer_limit: OutputBufferLimits = OutputBufferLimits::default(), get: true, set: false;
    /// Password clients must AUTH with; empty = no password.
    // Not listed by CONFIG GET (it never was; Redis shows it in clear).
    requirepass: Option<String> as OptString = None, get: false, set: false;
    /// ACL file (Redis format: `user alice on >secret ~cache:* +@read` per line), loaded at startup; empty = none.
    aclfile: Option<String> as OptString = None, get: true, set: false;
    /// While the default user has no password, serve loopback clients only (others get -DENIED).
    protected_mode: bool = true, get: true, set: false;
    /// Memory limit for the data set, in bytes or units; 0 = no limit.
    maxmemory: u64 as Memory = 0, get: true, set: false;
    /// What to do at maxmemory: noeviction, allkeys-lru/-lfu/-random, volatile-lru/-lfu/-random/-ttl.
    maxmemory_policy: MaxmemoryPolicy = MaxmemoryPolicy::NoEviction, get: true, set: false;
    /// Read guarantee: linearizable (quorum check), lease (leader lease) or stale (local state on any node, unsafe).
    read_consistency: ReadConsistency = ReadConsistency::Linearizable, get: true, set: false;
    /// Milliseconds a follower read may wait for the leader's read index and local apply; then CLUSTERDOWN.
    read_index_timeout: u64 = 2000, get: true, set: false, check: within(1.., "must be at least 1");
    /// Port for the Prometheus /metrics HTTP endpoint (on metrics-bind); 0 = disabled.
    metrics_port: Option<u16> as OptionalPort = metrics_port_default(match port {
        0 => tls_port.unwrap_or(0),
        p => p,
    })? => "port + 20000 (tls-port + 20000 if port is 0)", get: true, set: false;
    /// Address the /metrics endpoint listens on; loopback by default, whatever 'bind' says (the endpoint has no authentication).
    metrics_bind: IpAddr = Ipv4Addr::LOCALHOST.into(), get: true, set: false;
    /// Log output format: text or json.
    log_format: LogFormat = LogFormat::Text, get: true, set: false;
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives.
    log_level: String = "info".into(), get: true, set: false,
        check: |f| tracing_subscriber::EnvFilter::try_new(f).map(drop).map_err(|e| e.to_string());
    /// Log level in Redis's words: debug, verbose, notice or warning (tracing's debug, info, info, warn); when set it replaces log-level. RUST_LOG, when set, wins over both.
    loglevel: Option<String> as OptString = None, get: true, set: false,
        check: |l| refuse(
            l.as_deref().is_some_and(|l| redis_log_level(l).is_none()),
            "expected debug, verbose, notice or warning",
        );
    /// Log file (appended to); empty = standard error.
    logfile: Option<String> as OptString = None, get: true, set: false;
    /// SLOWLOG: log commands that take at least this many microseconds; -1 = none, 0 = every command.
    #[arg(allow_hyphen_values = true)]
    slowlog_log_slower_than: i64 = 10000, get: true, set: false,
        check: within(-1.., "must be -1 (off) or more");
    /// SLOWLOG: most entries kept (the oldest are dropped).
    slowlog_max_len: u64 = 128, get: true, set: false;
    /// LATENCY monitor: sample events (command, fast-command, fsync, apply) taking at least this many milliseconds; 0 = off.
    latency_monitor_threshold: u64 = 0, get: true, set: false;
    /// Raft: least election timeout, milliseconds.
    election_timeout_min: u64 = 200, get: true, set: false;
    /// Raft: greatest election timeout, milliseconds.
    election_timeout_max: u64 = 400, get: true, set: false;
    /// Raft: leader heartbeat interval, milliseconds.
    heartbeat_interval: u64 = 50, get: true, set: false;
    /// Raft: take a snapshot after this many log entries since the last one.
    snapshot_logs_since_last: u64 = 10000, get: true, set: false,
        check: within(1.., "must be at least 1");
    /// Raft: log entries kept behind a snapshot (lets slightly lagging followers catch up without one).
    max_in_snapshot_log_to_keep: u64 = 1000, get: true, set: false;
    /// Raft: most entries per AppendEntries RPC.
    max_payload_entries: u64 = 300, get: true, set: false, check: within(1.., "must be at least 1");
    /// Active expiry cycles per second (Redis's hz), 1..=500.
    active_expire_hz: u32 = 10, get: true, set: false, check: within(1..=500, "must be 1..=500");
    /// Milliseconds a leader's wall clock may run ahead of the replicated clock and still advance it; further (or behind) is logged and ignored.
    clock_max_skew: u64 = 1000, get: true, set: false;
    /// TEST ONLY: acknowledge writes without fsync (loses acknowledged writes on crash).
    #[arg(num_args = 0..=1, default_missing_value = "yes", value_name = "yes|no")]
    unsafe_no_fsync: bool = false, get: true, set: false;
    /// LMDB map size (address space reserved for the raft log), bytes or units.
    lmdb_map_size: u64 as Memory = 8 << 30, get: true, set: false,
        check: within(MIN_BUFFER_LIMIT.., "must be at least 1mb");
    /// Largest raft log entry (encoded); writes are batched up to it and a single larger write is refused.
    raft_max_entry_bytes: u64 as Memory = 512 << 20, get: true, set: false,
        check: within(
            MIN_ENTRY_BYTES..=MAX_ENTRY_BYTES,
            "must be from 64kb to 1023mb (a raft bus frame is at most 1gb)",
        );
    /// Raft: also take a snapshot once the log has grown by this many bytes since the last one.
    snapshot_log_bytes_since_last: u64 as Memory = lmdb_map_size / 8 => "lmdb-map-size / 8",
        get: true, set: false, check: within(1.., "must be at least 1");
    /// Raft: bytes of log kept behind a snapshot at most (on top of the entry-count bound).
    max_in_snapshot_log_bytes_to_keep: u64 as Memory = lmdb_map_size / 32 => "lmdb-map-size / 32",
        get: true, set: false;
    /// Percent of lmdb-map-size the raft log may use; above it the leader refuses writes with -OOM (1..=90).
    lmdb_map_write_percent: u32 = 50, get: true, set: false, check: within(1..=90, "must be 1..=90");
    /// Dial these addresses instead of peers' advertised bus addresses: 'id=host:port,...' (NAT, test proxies).
    bus_route: BTreeMap<u64, String> as BusRoutes = BTreeMap::new(), get: true, set: false;
    /// Shared secret every node proves (HMAC challenge-response) on each raft bus connection; required unless bind is a loopback address. Never shown or logged.
    // After resolution it holds the effective secret (also when read from cluster-secret-file).
    cluster_secret: Option<String> as OptString = None, get: false, set: false;
    /// File holding the cluster secret (surrounding whitespace trimmed); instead of cluster-secret.
    cluster_secret_file: Option<String> as OptString = None, get: true, set: false;
    /// On an empty dir without --join: create a new one-node cluster (yes), wait to be added (no), or auto: yes only when no node-id is configured.
    #[arg(num_args = 0..=1, default_missing_value = "yes", value_name = "yes|no|auto")]
    cluster_bootstrap: Bootstrap = Bootstrap::Auto, get: true, set: false;
}

/// Knob name as users write it (`proto-max-bulk-len`) from its field name.
fn knob_name(field: &str) -> String {
    field.replace('_', "-")
}

fn env_var_name(field: &str) -> String {
    format!("{ENV_PREFIX}{}", field.to_ascii_uppercase())
}

fn from_env<K: Knob>(
    field: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<K::Value>, ConfigError> {
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
    K::parse(&text).map(Some).map_err(|r| invalid(text, r))
}

fn from_file<K: Knob>(
    field: &str,
    value: &FileValue,
    path: Option<&Path>,
) -> Result<K::Value, ConfigError> {
    let text = value.text();
    K::parse(&text).map_err(|reason| ConfigError::Invalid {
        knob: knob_name(field),
        value: text,
        origin: Source::File(path.map(Path::to_path_buf).unwrap_or_default()),
        reason,
    })
}

/// A knob's own bound, refusing its final value as
/// `invalid configuration: <knob> = <value>: <reason>`.
fn check_knob<K: Knob>(
    field: &str,
    value: &K::Value,
    check: impl Fn(&K::Value) -> Result<(), String>,
) -> Result<(), ConfigError> {
    check(value).map_err(|reason| {
        ConfigError::Conflict(format!(
            "{} = {}: {reason}",
            knob_name(field),
            K::render(value)
        ))
    })
}

/// A check: the value must lie in `range`.
/// The tracing level of a Redis `loglevel` word.
pub fn redis_log_level(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "debug" => Some("debug"),
        "verbose" | "notice" => Some("info"),
        "warning" => Some("warn"),
        _ => None,
    }
}

fn within<T: PartialOrd>(
    range: impl RangeBounds<T>,
    reason: &'static str,
) -> impl Fn(&T) -> Result<(), String> {
    move |v| refuse(!range.contains(v), reason)
}

/// `Err(reason)` if `bad`.
fn refuse(bad: bool, reason: &str) -> Result<(), String> {
    match bad {
        true => Err(reason.into()),
        false => Ok(()),
    }
}

/// `host:port` with a host and a port from 1 to 65535.
fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, p)| !host.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
}

/// Default of `bus-port`: port + 10000.
fn bus_port_default(port: u16) -> Result<u16, ConfigError> {
    port.checked_add(10000).ok_or_else(|| {
        ConfigError::Conflict(format!(
            "bus-port defaults to port + 10000, which is above 65535 for port {port}; set bus-port"
        ))
    })
}

/// Default of `metrics-port`: the client port + 20000, so that nodes on one
/// machine (each on its own client port) do not collide.
fn metrics_port_default(port: u16) -> Result<Option<u16>, ConfigError> {
    if port == 0 {
        return Ok(None);
    }
    port.checked_add(20000).map(Some).ok_or_else(|| {
        ConfigError::Conflict(format!(
            "metrics-port defaults to port + 20000, which is above 65535 for port {port}; set metrics-port (0 = off)"
        ))
    })
}

/// Default of `cluster-announce-ip`: the bind address, unless that is
/// 0.0.0.0 or ::.
fn announce_ip_default(bind: IpAddr) -> String {
    if bind.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bind.to_string()
    }
}

/// `clap::Command` with the default and env variable appended to every
/// knob's long help (kept out of the doc comments so they cannot drift from
/// [`KNOBS`]).
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for knob in KNOBS {
        cmd = cmd.mut_arg(knob.field, |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.long_help(format!(
                "{help}\n[default: {}] [env: {}]",
                knob.default_text(),
                knob.env()
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

    /// Every knob's value or default and own check (`knobs!`), then the
    /// rules that involve more than one knob.
    fn resolve(m: Merged, config_file: Option<PathBuf>) -> Result<Config, ConfigError> {
        let node_id_configured = m.node_id.is_some();
        let mut c = resolve_knobs(m, config_file)?;
        if c.proto_max_bulk_len > c.client_query_buffer_limit {
            return Err(ConfigError::Conflict(format!(
                "proto-max-bulk-len ({}) is larger than client-query-buffer-limit \
                 ({}): such a bulk could never be received",
                c.proto_max_bulk_len, c.client_query_buffer_limit
            )));
        }
        if !(c.heartbeat_interval > 0
            && c.heartbeat_interval < c.election_timeout_min
            && c.election_timeout_min < c.election_timeout_max)
        {
            return Err(ConfigError::Conflict(format!(
                "need 0 < heartbeat-interval ({}) < election-timeout-min \
                 ({}) < election-timeout-max ({})",
                c.heartbeat_interval, c.election_timeout_min, c.election_timeout_max
            )));
        }
        c.resolve_tls()?;
        if let Some(path) = &c.cluster_secret_file {
            if c.cluster_secret.is_some() {
                return Err(ConfigError::Conflict(
                    "set cluster-secret or cluster-secret-file, not both".into(),
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::Conflict(format!("cannot read cluster-secret-file {path}: {e}"))
            })?;
            let secret = text.trim();
            if secret.is_empty() {
                return Err(ConfigError::Conflict(format!(
                    "cluster-secret-file {path} is empty"
                )));
            }
            c.cluster_secret = Some(secret.to_string());
        }
        if c.cluster_secret.is_none() && !c.bind.is_loopback() {
            return Err(ConfigError::Conflict(format!(
                "bind {} is not a loopback address and no cluster secret is set: anyone who \
                 can reach the raft bus could join or take over the cluster; set \
                 cluster-secret or cluster-secret-file (the same on every node)",
                c.bind
            )));
        }
        if c.cluster_bootstrap == Bootstrap::Auto {
            c.cluster_bootstrap = match node_id_configured {
                true => Bootstrap::No,
                false => Bootstrap::Yes,
            };
        }
        Ok(c)
    }

    /// The rules between `port` and the `tls-*` knobs (the certificate
    /// files themselves are read at startup, `crate::tls`).
    fn resolve_tls(&self) -> Result<(), ConfigError> {
        let conflict = |m: String| Err(ConfigError::Conflict(m));
        if self.port == 0 && self.tls_port.is_none() {
            return conflict(
                "port = 0 disables the plain-text port; set tls-port (a node needs a client port)"
                    .into(),
            );
        }
        let Some(tls_port) = self.tls_port else {
            if self.tls_cluster {
                return conflict("tls-cluster = yes needs tls-port".into());
            }
            return Ok(());
        };
        if self.tls_cert_file.is_none() || self.tls_key_file.is_none() {
            return conflict(format!(
                "tls-port = {tls_port} needs tls-cert-file and tls-key-file"
            ));
        }
        if self.tls_auth_clients != TlsAuthClients::No && self.tls_ca_cert_file.is_none() {
            return conflict(format!(
                "tls-auth-clients = {} needs tls-ca-cert-file (the CA that signs client \
                 certificates); or set tls-auth-clients no",
                TlsAuthClients::render(&self.tls_auth_clients)
            ));
        }
        if tls_port == self.port || tls_port == self.bus_port {
            return conflict(format!(
                "tls-port = {tls_port} is also {}",
                if tls_port == self.port {
                    "port"
                } else {
                    "bus-port"
                }
            ));
        }
        if self.port == 0 && !self.tls_cluster {
            return conflict(
                "port = 0 (TLS only) needs tls-cluster yes: MOVED and CLUSTER replies \
                 must name a port clients can reach"
                    .into(),
            );
        }
        if !self.tls_cluster && self.cluster_announce_port == 0 {
            return conflict("cluster-announce-port = 0: must be 1..=65535".into());
        }
        Ok(())
    }

    /// On an empty data dir without `join`: bootstrap a new one-node
    /// cluster (true) or wait to be added (false); see [`Bootstrap`].
    pub fn bootstraps(&self) -> bool {
        self.cluster_bootstrap == Bootstrap::Yes
    }

    /// What `CONFIG GET` reports, in redis.conf spelling: the fixed answers
    /// Redis tools ask for (redis-benchmark asks for `save` and
    /// `appendonly`), then every knob declared `get: true`.
    pub fn config_get_pairs(&self) -> Vec<(String, String)> {
        let fsync = if self.unsafe_no_fsync { "no" } else { "always" };
        let compat = [
            ("save", String::new()),
            ("appendonly", "yes".into()),
            ("appendfsync", fsync.into()),
            ("databases", "1".into()),
            ("cluster-enabled", "yes".into()),
            ("hz", self.active_expire_hz.to_string()),
        ];
        compat
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .chain(
                KNOBS
                    .iter()
                    .filter(|k| k.config_get)
                    .map(|k| (k.name(), k.value(self))),
            )
            .collect()
    }

    /// Where plain-text clients connect; None with `port 0` (TLS only).
    pub fn client_addr(&self) -> Option<SocketAddr> {
        (self.port != 0).then(|| SocketAddr::new(self.bind, self.port))
    }

    /// Where TLS clients connect (`tls-port`), if enabled.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_port.map(|p| SocketAddr::new(self.bind, p))
    }

    /// Where the raft bus listens.
    pub fn bus_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.bus_port)
    }

    /// Where `/metrics` listens, if enabled: `metrics-bind`, not `bind`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_port
            .map(|port| SocketAddr::new(self.metrics_bind, port))
    }

    /// `host:port` clients are told to use for this node (MOVED, CLUSTER SLOTS).
    /// With `tls-cluster yes` that is the TLS port
    /// (`cluster-announce-tls-port`, default `tls-port`).
    pub fn announce_client_addr(&self) -> String {
        let tls = self.cluster_announce_tls_port.or(self.tls_port);
        let port = match (self.tls_cluster, tls) {
            (true, Some(tls)) => tls,
            _ => self.cluster_announce_port,
        };
        host_port(&self.cluster_announce_ip, port)
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
    fn debug_output_hides_secrets() {
        let c = load_ok(
            &["--requirepass", "pw-123", "--cluster-secret", "cs-456"],
            &[],
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("pw-123") && !shown.contains("cs-456"),
            "{shown}"
        );
        assert!(shown.contains("requirepass: \"<redacted>\""), "{shown}");
        assert!(shown.contains("port: 6379"), "{shown}");
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
        assert_eq!(c.client_output_buffer_limit.normal.hard_bytes, 256 << 20);
        assert_eq!(c.requirepass, None);
        assert_eq!(c.maxmemory, 0);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::NoEviction);
        assert_eq!(c.read_consistency, ReadConsistency::Linearizable);
        assert_eq!(c.metrics_port, Some(26379));
        assert_eq!(c.metrics_bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(c.metrics_addr(), Some("127.0.0.1:26379".parse().unwrap()));
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
        assert_eq!(c.client_addr(), Some("127.0.0.1:6379".parse().unwrap()));
        assert_eq!(c.announce_client_addr(), "127.0.0.1:6379");
    }

    /// The default text shown in `--help` means the same as the built-in
    /// default (guards against one being changed without the other).
    #[test]
    fn help_defaults_match_built_in_defaults() {
        let defaults = load_ok(&[], &[]);
        for knob in KNOBS.iter().filter(|k| !k.derived) {
            let shown = knob.default_text();
            let value = if shown == "none" { "" } else { &shown };
            let flag = format!("--{}={value}", knob.name());
            assert_eq!(
                load_ok(&[&flag], &[]),
                configured(&defaults, knob.field),
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

    /// A bus reachable from other hosts needs a cluster secret; loopback
    /// needs none. The secret comes from the knob or, trimmed, a file.
    #[test]
    fn non_loopback_bind_needs_a_cluster_secret() {
        for bind in ["0.0.0.0", "::", "10.1.2.3"] {
            let e = load_err(&["--bind", bind], &[]);
            assert!(
                e.contains("cluster-secret") && e.contains("cluster-secret-file"),
                "{bind}: {e}"
            );
            let c = load_ok(&["--bind", bind, "--cluster-secret", "s3cret"], &[]);
            assert_eq!(c.cluster_secret.as_deref(), Some("s3cret"));
        }
        for bind in ["127.0.0.1", "::1"] {
            assert_eq!(load_ok(&["--bind", bind], &[]).cluster_secret, None);
        }
        let f = temp_toml("  from-file\n");
        let path = f.path().to_str().unwrap();
        let c = load_ok(&["--bind", "0.0.0.0", "--cluster-secret-file", path], &[]);
        assert_eq!(c.cluster_secret.as_deref(), Some("from-file"));
        let both = ["--cluster-secret", "x", "--cluster-secret-file", path];
        assert!(load_err(&both, &[]).contains("not both"));
        let empty = temp_toml(" \n");
        let e = load_err(
            &["--cluster-secret-file", empty.path().to_str().unwrap()],
            &[],
        );
        assert!(e.contains("is empty"), "{e}");
        assert!(
            load_err(&["--cluster-secret-file", "/nonexistent/secret"], &[])
                .contains("cannot read cluster-secret-file")
        );
        // Never shown by CONFIG GET.
        let c = load_ok(&["--cluster-secret", "hunter2"], &[]);
        assert!(!format!("{:?}", c.config_get_pairs()).contains("hunter2"));
    }

    #[test]
    fn derived_defaults_follow_their_knob() {
        let c = load_ok(
            &[
                "--port",
                "7001",
                "--bind",
                "0.0.0.0",
                "--cluster-secret",
                "s",
            ],
            &[],
        );
        assert_eq!(
            (
                c.bus_port,
                c.cluster_announce_port,
                c.cluster_announce_bus_port
            ),
            (17001, 7001, 17001)
        );
        assert_eq!(c.cluster_announce_ip, "127.0.0.1");
        let c = load_ok(
            &[
                "--bind",
                "10.1.2.3",
                "--bus-port",
                "9000",
                "--cluster-secret",
                "s",
            ],
            &[],
        );
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
            load_ok(
                &[
                    "--port",
                    "60000",
                    "--bus-port",
                    "60001",
                    "--metrics-port",
                    "0"
                ],
                &[]
            )
            .bus_port,
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
        let m = Memory::parse;
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

    /// `client-output-buffer-limit` in redis.conf's syntax: class groups
    /// (normal, replica/slave, pubsub), or three values for normal.
    #[test]
    fn output_buffer_limit_classes() {
        let obl =
            |v: &str| load_ok(&["--client-output-buffer-limit", v], &[]).client_output_buffer_limit;
        let d = OutputBufferLimits::default();
        assert_eq!(d.normal, OutputBufferLimit::new(256 << 20, 64 << 20, 60));
        assert_eq!(d.replica, OutputBufferLimit::new(256 << 20, 64 << 20, 60));
        assert_eq!(d.pubsub, OutputBufferLimit::new(32 << 20, 8 << 20, 60));
        let all = obl("normal 1mb 2mb 3 replica 4mb 5mb 6 pubsub 7mb 8mb 9");
        assert_eq!(
            all,
            OutputBufferLimits {
                normal: OutputBufferLimit::new(1 << 20, 2 << 20, 3),
                replica: OutputBufferLimit::new(4 << 20, 5 << 20, 6),
                pubsub: OutputBufferLimit::new(7 << 20, 8 << 20, 9),
            }
        );
        // `slave` is `replica`; classes in any order and any case; a class
        // not given keeps its default; the last of a repeated class wins.
        let some = obl("PubSub 0 0 0 slave 1kb 0 0 pubsub 1mb 0 0");
        assert_eq!(some.normal, d.normal);
        assert_eq!(some.replica, OutputBufferLimit::new(1024, 0, 0));
        assert_eq!(some.pubsub, OutputBufferLimit::new(1 << 20, 0, 0));
        // Today's forms: three values, or one normal group.
        assert_eq!(obl("1mb 0 0").normal, OutputBufferLimit::new(1 << 20, 0, 0));
        assert_eq!(obl("1mb 0 0").pubsub, d.pubsub);
        assert_eq!(obl("normal 0 0 0").normal, OutputBufferLimit::new(0, 0, 0));
        // As Redis's CONFIG GET shows it, and back.
        let shown = OutputBufferLimits::render(&all);
        assert_eq!(
            shown,
            "normal 1048576 2097152 3 slave 4194304 5242880 6 pubsub 7340032 8388608 9"
        );
        assert_eq!(obl(&shown), all);
        let f = temp_toml("client-output-buffer-limit = \"pubsub 1mb 1mb 1\"\n");
        let c = load_ok(&["--config", f.path().to_str().unwrap()], &[]);
        assert_eq!(
            c.client_output_buffer_limit.pubsub,
            OutputBufferLimit::new(1 << 20, 1 << 20, 1)
        );
        for bad in [
            "",
            "1mb 0",
            "normal 1mb 0",
            "master 1mb 0 0",
            "normal 1mb 0 0 pubsub",
            "normal 1xb 0 0",
            "normal 1mb 0 -1",
            "1mb 0 0 0",
        ] {
            let e = load_err(&["--client-output-buffer-limit", bad], &[]);
            assert!(e.contains("client-output-buffer-limit"), "{bad:?}: {e}");
        }
        let e = load_err(&["--client-output-buffer-limit", "master 1mb 0 0"], &[]);
        assert!(e.contains("unknown client class 'master'"), "{e}");
    }

    #[test]
    fn metrics_listen_on_loopback_unless_told() {
        // A non-loopback bind needs a cluster secret.
        let secret = [("RAFTCACHE_CLUSTER_SECRET", "s")];
        let c = load_ok(&["--bind", "0.0.0.0", "--metrics-port", "9121"], &secret);
        assert_eq!(c.client_addr(), Some("0.0.0.0:6379".parse().unwrap()));
        assert_eq!(c.metrics_addr(), Some("127.0.0.1:9121".parse().unwrap()));
        let c = load_ok(
            &[
                "--bind",
                "0.0.0.0",
                "--metrics-port",
                "9121",
                "--metrics-bind",
                "0.0.0.0",
            ],
            &secret,
        );
        assert_eq!(c.metrics_addr(), Some("0.0.0.0:9121".parse().unwrap()));
        let c = load_ok(&["--metrics-bind", "::1", "--metrics-port", "1"], &[]);
        assert_eq!(c.metrics_addr(), Some("[::1]:1".parse().unwrap()));
        assert!(load_err(&["--metrics-bind", "localhost"], &[]).contains("metrics-bind"));
    }

    #[test]
    fn metrics_port_defaults_to_port_plus_20000() {
        assert_eq!(load_ok(&["--port", "7001"], &[]).metrics_port, Some(27001));
        let c = load_ok(&["--port", "7001", "--metrics-port", "0"], &[]);
        assert_eq!((c.metrics_port, c.metrics_addr()), (None, None));
        let e = load_err(&["--port", "50000", "--bus-port", "1"], &[]);
        assert!(e.contains("set metrics-port"), "{e}");
        let c = load_ok(
            &["--port", "50000", "--bus-port", "1", "--metrics-port", "9"],
            &[],
        );
        assert_eq!(c.metrics_port, Some(9));
    }

    #[test]
    fn flag_and_value_forms() {
        assert!(load_ok(&["--unsafe-no-fsync"], &[]).unsafe_no_fsync);
        assert!(!load_ok(&["--unsafe-no-fsync=no"], &[]).unsafe_no_fsync);
        let c = load_ok(&["--client-output-buffer-limit", "normal 0 0 0"], &[]);
        assert_eq!(
            c.client_output_buffer_limit,
            OutputBufferLimits {
                normal: OutputBufferLimit::new(0, 0, 0),
                ..OutputBufferLimits::default()
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
        for knob in KNOBS {
            let field = knob.field;
            assert!(
                help.contains(&format!("--{}", knob.name())),
                "{field} missing from --help"
            );
            assert!(
                help.contains(&format!("[default: {}]", knob.default_text())),
                "{field} default missing"
            );
            assert!(help.contains(&knob.env()), "{field} env missing");
        }
        match load(&["--version"], &[]) {
            Err(ConfigError::Cli(e)) => {
                assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion)
            }
            other => panic!("{other:?}"),
        }
    }

    /// `CONFIG GET` lists the compat pairs and every knob declared `get`,
    /// once, in redis.conf spelling; never the password.
    #[test]
    fn config_get_pairs_come_from_the_declarations() {
        let c = load_ok(
            &[
                "--maxmemory",
                "100mb",
                "--unsafe-no-fsync",
                "--maxmemory-policy",
                "allkeys-lru",
                "--timeout",
                "30",
                "--read-index-timeout",
                "1234",
                "--lmdb-map-size",
                "64mb",
                "--requirepass",
                "s3cret",
                "--bus-route",
                "2=10.0.0.2:16379,3=h3:1",
            ],
            &[],
        );
        let pairs = c.config_get_pairs();
        let get = |name: &str| {
            let found: Vec<&String> = pairs
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v)
                .collect();
            assert_eq!(found.len(), 1, "{name} in {pairs:?}");
            found[0].clone()
        };
        for knob in KNOBS {
            let listed = pairs.iter().any(|(n, _)| *n == knob.name());
            assert_eq!(listed, knob.config_get, "{}", knob.field);
            if knob.config_get {
                assert_eq!(get(&knob.name()), knob.value(&c));
            }
            assert!(!knob.config_set, "{}: CONFIG SET is refused", knob.field);
        }
        assert!(
            !pairs.iter().any(|(_, v)| v.contains("s3cret")),
            "{pairs:?}"
        );
        // bytes, bool, enum, seconds, plain and derived numbers
        assert_eq!(get("maxmemory"), "104857600");
        assert_eq!(get("unsafe-no-fsync"), "yes");
        assert_eq!(get("maxmemory-policy"), "allkeys-lru");
        assert_eq!(get("timeout"), "30");
        assert_eq!(get("tcp-keepalive"), "300");
        assert_eq!(get("read-index-timeout"), "1234");
        assert_eq!(get("lmdb-map-size"), (64u64 << 20).to_string());
        assert_eq!(
            get("snapshot-log-bytes-since-last"),
            (8u64 << 20).to_string()
        );
        assert_eq!(get("clock-max-skew"), "1000");
        assert_eq!(get("bus-port"), "16379");
        assert_eq!(get("metrics-port"), "26379");
        assert_eq!(get("join"), "");
        assert_eq!(get("cluster-bootstrap"), "yes");
        assert_eq!(get("bus-route"), "2=10.0.0.2:16379,3=h3:1");
        assert_eq!(
            get("client-output-buffer-limit"),
            "normal 268435456 67108864 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(get("metrics-bind"), "127.0.0.1");
        // the fixed Redis-compat answers
        assert_eq!(get("save"), "");
        assert_eq!(get("appendonly"), "yes");
        assert_eq!(get("appendfsync"), "no");
        assert_eq!(get("databases"), "1");
        assert_eq!(get("cluster-enabled"), "yes");
        assert_eq!(get("hz"), "10");
        let defaults = load_ok(&[], &[]).config_get_pairs();
        assert!(defaults.contains(&("appendfsync".into(), "always".into())));
        assert!(defaults.contains(&("unsafe-no-fsync".into(), "no".into())));
    }

    /// What `CONFIG GET` shows is valid configuration: given back as flags
    /// it configures the same node.
    #[test]
    fn tls_knobs() {
        let tls = [
            "--tls-port",
            "7443",
            "--tls-cert-file",
            "s.crt",
            "--tls-key-file",
            "s.key",
            "--tls-ca-cert-file",
            "ca.crt",
        ];
        let c = load_ok(&tls, &[]);
        assert_eq!(c.tls_addr(), Some("127.0.0.1:7443".parse().unwrap()));
        assert_eq!(c.tls_auth_clients, TlsAuthClients::Yes);
        assert!(!c.tls_cluster);
        assert_eq!(
            (c.bus_port, c.announce_client_addr().as_str()),
            (16379, "127.0.0.1:6379")
        );
        // tls-cluster: the TLS port is advertised, the bus follows it
        let c = load_ok(&[&tls[..], &["--tls-cluster"]].concat(), &[]);
        assert_eq!(
            (c.bus_port, c.announce_client_addr().as_str()),
            (17443, "127.0.0.1:7443")
        );
        let c = load_ok(
            &[
                &tls[..],
                &["--tls-cluster", "yes", "--cluster-announce-tls-port", "443"],
            ]
            .concat(),
            &[],
        );
        assert_eq!(c.announce_client_addr(), "127.0.0.1:443");
        // port 0: TLS only, tls-cluster implied
        let c = load_ok(&[&tls[..], &["--port", "0"]].concat(), &[]);
        assert_eq!(c.client_addr(), None);
        assert!(c.tls_cluster);
        assert_eq!(
            (c.bus_port, c.announce_client_addr().as_str()),
            (17443, "127.0.0.1:7443")
        );
        let e = load_err(
            &[&tls[..], &["--port", "0", "--tls-cluster", "no"]].concat(),
            &[],
        );
        assert!(e.contains("tls-cluster"), "{e}");
        assert!(load_err(&["--port", "0"], &[]).contains("set tls-port"));
        // files and client-auth rules
        let e = load_err(&["--tls-port", "7443", "--tls-cert-file", "s.crt"], &[]);
        assert!(e.contains("tls-key-file"), "{e}");
        let e = load_err(&tls[..6], &[]);
        assert!(e.contains("tls-ca-cert-file"), "{e}");
        let c = load_ok(&[&tls[..6], &["--tls-auth-clients", "no"]].concat(), &[]);
        assert_eq!(c.tls_auth_clients, TlsAuthClients::No);
        let c = load_ok(
            &[&tls[..], &["--tls-auth-clients", "optional"]].concat(),
            &[],
        );
        assert_eq!(c.tls_auth_clients, TlsAuthClients::Optional);
        let e = load_err(&["--tls-auth-clients", "maybe"], &[]);
        assert!(e.contains("yes, no or optional"), "{e}");
        assert!(load_err(&["--tls-cluster"], &[]).contains("needs tls-port"));
        let e = load_err(&[&tls[..], &["--tls-port", "6379"]].concat(), &[]);
        assert!(e.contains("is also port"), "{e}");
    }

    #[test]
    fn config_get_values_parse_back() {
        let c = load_ok(
            &[
                "--bind",
                "0.0.0.0",
                "--maxmemory",
                "3gb",
                "--timeout",
                "7",
                "--log-format",
                "json",
                "--join",
                "h:1",
                "--metrics-port",
                "9121",
                "--client-output-buffer-limit",
                "1mb 0 0",
                "--bus-route",
                "1=a:1",
                "--tls-port",
                "7443",
                "--tls-cert-file",
                "s.crt",
                "--tls-key-file",
                "s.key",
                "--tls-auth-clients",
                "no",
                "--tls-cluster",
            ],
            // Not shown by CONFIG GET, so given to both loads.
            &[("RAFTCACHE_CLUSTER_SECRET", "s")],
        );
        let shown: Vec<String> = c
            .config_get_pairs()
            .into_iter()
            .filter(|(name, _)| KNOBS.iter().any(|k| k.name() == *name))
            .map(|(name, value)| format!("--{name}={value}"))
            .collect();
        let args: Vec<&str> = shown.iter().map(String::as_str).collect();
        assert_eq!(
            load_ok(&args, &[("RAFTCACHE_CLUSTER_SECRET", "s")]),
            c,
            "{args:?}"
        );
    }

    /// `defaults` as they resolve once knob `field` is set to its default
    /// value: only a configured node id changes anything (`cluster-bootstrap
    /// auto` then no longer bootstraps).
    fn configured(defaults: &Config, field: &str) -> Config {
        let mut c = defaults.clone();
        if field == "node_id" {
            c.cluster_bootstrap = Bootstrap::No;
        }
        c
    }

    #[test]
    fn bootstrap_auto_only_for_the_single_node_default() {
        assert!(load_ok(&[], &[]).bootstraps());
        assert!(!load_ok(&["--node-id", "1"], &[]).bootstraps());
        assert!(!load_ok(&[], &[("RAFTCACHE_NODE_ID", "3")]).bootstraps());
        assert!(load_ok(&["--node-id", "1", "--cluster-bootstrap"], &[]).bootstraps());
        assert!(load_ok(&["--node-id", "1", "--cluster-bootstrap", "yes"], &[]).bootstraps());
        assert!(!load_ok(&["--cluster-bootstrap", "no"], &[]).bootstraps());
        assert!(load_ok(&["--cluster-bootstrap", "auto"], &[]).bootstraps());
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
        for knob in KNOBS {
            let key = format!("{} = ", knob.name());
            assert!(
                uncommented.lines().any(|l| l.starts_with(&key)),
                "{} missing from raftcache.toml",
                knob.field
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
