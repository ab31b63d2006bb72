//! Commands: ONE table (`table.rs`) drives lookup, arity, key positions,
//! flags and the COMMAND replies; each family file parses its commands'
//! arguments into a typed `Plan`.
//!
//! The path of a request: `parse` looks the name up (no allocation),
//! resolves a subcommand for containers (CLIENT, CONFIG, CLUSTER, COMMAND,
//! RAFTCACHE), checks arity against the row, then runs the row's parse
//! function over an `Args` cursor. Whatever goes wrong becomes the Redis
//! error reply to send; the connection stays open.

pub mod acl;
pub mod args;
pub mod table;

mod cluster;
mod connection;
mod expire;
mod introspection;
mod keys;
mod server;
mod string;

pub use introspection::{arguments, command_docs_reply, command_info_reply, ArgDoc};

use bytes::Bytes;

use crate::keyspace::{Outcome, ReadOp, WriteOp};
use crate::protocol::Reply;

use args::{arity_error, printable, Args};
use table::CommandSpec;

/// What the server must do to answer a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Already answered (errors, PING, ECHO, COMMAND ..., CLUSTER KEYSLOT ...).
    Reply(Reply),
    /// Evaluate against the keyspace after the read barrier.
    Read(ReadOp),
    /// Propose through raft; relative TTLs are already absolute.
    Write(WriteOp),
    /// Needs session or node state (HELLO, SELECT, CLIENT, INFO, CONFIG,
    /// CLUSTER topology, READONLY, ...): executed by the server layer.
    Server(ServerCmd),
}

/// Commands the server layer executes; arguments already validated.
/// Each variant says what the server is expected to reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerCmd {
    // ---- connection / session ----
    /// HELLO [protover [AUTH user pass] [SETNAME name]]. Authenticate first
    /// if `auth` (failures as for AUTH), then switch to `protover` if given,
    /// set the name, and reply the HELLO map (server, version, proto, id,
    /// mode "cluster", role, modules []). `setname` is already validated.
    Hello {
        protover: Option<u8>,
        auth: Option<(Bytes, Bytes)>,
        setname: Option<Bytes>,
    },
    /// AUTH [username] password: OK, `WRONGPASS ...`, or the "called
    /// without any password configured" error (docs/protocol.md).
    Auth {
        username: Option<Bytes>,
        password: Bytes,
    },
    /// QUIT: reply OK, flush, close.
    Quit,
    /// RESET: back to RESP2, no name, READWRITE, unauthenticated if a
    /// password is set; reply status `RESET`.
    Reset,
    /// CLIENT ID: Int.
    ClientId,
    /// CLIENT SETNAME (validated; empty clears): OK.
    ClientSetName(Bytes),
    /// CLIENT GETNAME: Bulk or Nil.
    ClientGetName,
    /// CLIENT SETINFO LIB-NAME|LIB-VER value (validated): OK.
    ClientSetInfo {
        attr: ClientAttr,
        value: Bytes,
    },
    /// CLIENT LIST: Bulk (RESP3: verbatim txt), one line per client.
    ClientList(ClientFilter),
    /// CLIENT INFO: this connection's CLIENT LIST line.
    ClientInfo,
    /// READONLY: allow stale local reads on this connection (OK).
    ReadOnly,
    /// READWRITE: back to redirected reads (OK).
    ReadWrite,
    /// ASKING: OK (flag for the next command once slots can migrate).
    Asking,

    // ---- server ----
    /// INFO [section ...] (lowercase; empty = default sections): Bulk
    /// (RESP3: verbatim txt).
    Info {
        sections: Vec<String>,
    },
    /// CONFIG GET pattern ... (lowercase globs; match with
    /// `glob::glob_match`): Map of name -> value.
    ConfigGet {
        patterns: Vec<String>,
    },
    /// CONFIG SET name value ... (names lowercase): OK or an error.
    ConfigSet {
        pairs: Vec<(String, Bytes)>,
    },
    /// CONFIG RESETSTAT: OK.
    ConfigResetStat,
    /// SLOWLOG GET [count] (`None` = all): the newest entries.
    SlowlogGet {
        count: Option<usize>,
    },
    /// SLOWLOG LEN: Integer.
    SlowlogLen,
    /// SLOWLOG RESET: OK.
    SlowlogReset,
    /// LATENCY LATEST: [event, unix-time, latest-ms, max-ms] per event.
    LatencyLatest,
    /// LATENCY HISTORY event (lowercase): [unix-time, ms] per sample.
    LatencyHistory {
        event: String,
    },
    /// LATENCY RESET [event ...] (lowercase; none = all): Integer.
    LatencyReset {
        events: Vec<String>,
    },

    // ---- cluster topology (Redis Cluster reply shapes) ----
    ClusterSlots,
    ClusterShards,
    ClusterNodes,
    ClusterInfo,
    ClusterMyId,
    ClusterMyShardId,
    /// CLUSTER MEET ip port [bus-port].
    ClusterMeet {
        ip: std::net::IpAddr,
        port: u16,
        bus_port: Option<u16>,
    },
    /// CLUSTER FORGET node-id (40-char id; "ERR Unknown node <id>" if not
    /// a member).
    ClusterForget {
        node_id: Bytes,
    },
    /// CLUSTER FAILOVER [FORCE|TAKEOVER]: on a follower, make this node
    /// leader (raft leader transfer); OK.
    ClusterFailover(FailoverMode),

    // ---- RAFTCACHE (ours) ----
    /// RAFTCACHE STATUS: Map of raft metrics (id, term, leader, state,
    /// last log / applied index, membership, node name, cluster id).
    RaftStatus,
    /// RAFTCACHE ADD-LEARNER id host:port[@busport] (the node's client
    /// address; its cluster bus, at port + 10000 unless given, is asked who
    /// it is): OK.
    RaftAddLearner {
        node_id: u64,
        addr: crate::raft::MemberAddr,
    },
    /// RAFTCACHE PROMOTE id: make a learner a voter: OK.
    RaftPromote {
        node_id: u64,
    },
    /// RAFTCACHE SNAPSHOT: trigger a snapshot: OK.
    RaftSnapshot,
    /// RAFTCACHE TRANSFER id: transfer leadership: OK.
    RaftTransfer {
        node_id: u64,
    },
    /// RAFTCACHE DIGEST: `[applied-index, digest]` of the keyspace.
    RaftDigest,

    // ---- ACL ----
    /// ACL WHOAMI / LIST / USERS / SETUSER / DELUSER / GETUSER / LOG.
    Acl(acl::AclCmd),
}

/// CLIENT SETINFO attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAttr {
    LibName,
    LibVer,
}

/// CLIENT LIST filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFilter {
    All,
    Type(ClientType),
    /// Client ids (each >= 1).
    Ids(Vec<u64>),
}

/// CLIENT LIST TYPE values (`slave` is an alias of `replica`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Master,
    Replica,
    PubSub,
}

/// CLUSTER FAILOVER modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    Default,
    Force,
    Takeover,
}

/// A parsed command: its table row and what to do.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub spec: &'static CommandSpec,
    pub plan: Plan,
}

/// Look up, check arity and parse `args` (args[0] is the command name).
/// `now_ms` turns relative TTLs into absolute deadlines. `Err` is the reply
/// to send (unknown command, arity, syntax, integer errors...).
pub fn parse(args: &[Bytes], now_ms: u64) -> Result<Parsed, Reply> {
    let (spec, pos) = resolve(args)?;
    let mut cursor = Args::new(spec, args, pos);
    let plan = (spec.parse)(&mut cursor, now_ms)?;
    Ok(Parsed { spec, plan })
}

/// The row that handles `args` (a subcommand's for containers), after
/// the arity check, and where its own arguments start.
pub fn resolve(args: &[Bytes]) -> Result<(&'static CommandSpec, usize), Reply> {
    let name = args.first().ok_or_else(|| unknown_command(args))?;
    let spec = table::lookup(name).ok_or_else(|| unknown_command(args))?;
    // Like Redis: a container called alone is checked against its own arity
    // (CLIENT -> arity error; COMMAND -> runs).
    if spec.is_container() && args.len() >= 2 {
        let sub = spec
            .subcommand(&args[1])
            .ok_or_else(|| unknown_subcommand(spec, &args[1]))?;
        if !sub.arity_ok(args.len()) {
            return Err(arity_error(sub.name));
        }
        return Ok((sub, 2));
    }
    if !spec.arity_ok(args.len()) {
        return Err(arity_error(spec.name));
    }
    Ok((spec, 1))
}

/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' `: the
/// name cut at 128 bytes, then quoted args while the list is under 128
/// bytes, each cut to what is left of those 128.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let name = args.first().map(|n| printable(n, 128)).unwrap_or_default();
    let mut list = String::new();
    for a in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push('\'');
        list.push_str(&printable(a, room));
        list.push_str("' ");
    }
    Reply::Error(format!(
        "ERR unknown command '{name}', with args beginning with: {list}"
    ))
}

/// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
pub fn unknown_subcommand(container: &CommandSpec, sub: &[u8]) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        printable(sub, 128),
        container.name.to_ascii_uppercase()
    ))
}

/// Render a keyspace outcome as this command's reply.
pub fn render(spec: &CommandSpec, outcome: Outcome) -> Reply {
    (spec.render)(outcome)
}

/// The default rendering: each `Outcome` as its obvious reply.
pub fn render_generic(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Ok => Reply::ok(),
        Outcome::Nil => Reply::Nil,
        Outcome::Int(i) => Reply::Int(i),
        Outcome::Bulk(b) => Reply::Bulk(b),
        Outcome::Status(s) => Reply::Status(s),
        Outcome::Array(items) => Reply::Array(items.into_iter().map(render_generic).collect()),
        Outcome::Err(e) => Reply::Error(e.to_string()),
    }
}

/// SETNX: the underlying conditional SET says OK/Nil; SETNX says 1/0.
pub fn render_ok_as_one(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Ok => Reply::Int(1),
        Outcome::Nil => Reply::Int(0),
        other => render_generic(other),
    }
}

/// Key positions of a command line, from the row's first/last/step (a
/// negative last key counts from the end, like Redis). Positions past the
/// end are dropped, so a malformed line never panics.
pub fn key_positions(spec: &CommandSpec, argc: usize) -> impl Iterator<Item = usize> {
    let argc = i64::try_from(argc).unwrap_or(i64::MAX);
    let first = i64::from(spec.first_key);
    let last = if spec.last_key < 0 {
        argc + i64::from(spec.last_key)
    } else {
        i64::from(spec.last_key)
    };
    let last = last.min(argc - 1);
    let step = usize::try_from(spec.step.max(1)).unwrap_or(1);
    let range = if first > 0 && last >= first {
        // Both bounds are in 1..argc here.
        first as usize..=last as usize
    } else {
        #[allow(clippy::reversed_empty_ranges)] // an empty range on purpose
        {
            1..=0
        }
    };
    range.step_by(step)
}

/// The keys of a command line (`args[0]` is the name).
pub fn keys<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> + 'a {
    key_positions(spec, args.len()).map(move |i| &args[i])
}

/// The slot-determining key of a command (its first key), from the table's
/// key positions; `None` for keyless commands.
pub fn first_key<'a>(spec: &CommandSpec, args: &'a [Bytes]) -> Option<&'a Bytes> {
    keys(spec, args).next()
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Build an argument vector from string literals.
    pub fn argv(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    pub const NOW: u64 = 1_700_000_000_000;

    /// Parse a command line and return its plan (panics on error).
    pub fn plan(parts: &[&str]) -> Plan {
        match parse(&argv(parts), NOW) {
            Ok(p) => p.plan,
            Err(e) => panic!("{parts:?} failed: {e:?}"),
        }
    }

    /// Parse a command line expected to fail; returns the error text.
    pub fn err(parts: &[&str]) -> String {
        match parse(&argv(parts), NOW) {
            Ok(p) => panic!("{parts:?} parsed to {:?}", p.plan),
            Err(Reply::Error(e)) => e,
            Err(other) => panic!("{parts:?}: non-error reply {other:?}"),
        }
    }

    /// Parse a command line the server layer executes; its `ServerCmd`.
    pub fn server(parts: &[&str]) -> ServerCmd {
        match plan(parts) {
            Plan::Server(s) => s,
            other => panic!("{parts:?} planned {other:?}"),
        }
    }

    pub fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn unknown_command_format() {
        assert_eq!(
            err(&["foo", "a", "b"]),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            err(&["foo"]),
            "ERR unknown command 'foo', with args beginning with: "
        );
        let long = "x".repeat(300);
        let e = err(&["foo", &long, "next"]);
        // One arg filled the 128-byte budget: it is cut, the next is dropped.
        assert_eq!(
            e,
            format!(
                "ERR unknown command 'foo', with args beginning with: '{}' ",
                "x".repeat(128)
            )
        );
        let e = err(&[&long]);
        assert!(e.starts_with(&format!("ERR unknown command '{}',", "x".repeat(128))));
    }

    #[test]
    fn lookup_ignores_case_and_rejects_long_names() {
        assert_eq!(table::lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(table::lookup(&[b'g'; 200]).is_none());
        assert!(table::lookup(b"").is_none());
    }

    #[test]
    fn arity_comes_from_the_table() {
        assert_eq!(
            err(&["get"]),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            err(&["GET", "a", "b"]),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            err(&["set", "a"]),
            "ERR wrong number of arguments for 'set' command"
        );
        for spec in table::all_specs() {
            assert!(spec.arity != 0, "{} has arity 0", spec.name);
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert!(!spec.summary.is_empty(), "{} has no summary", spec.name);
            assert!(!spec.since.is_empty(), "{} has no since", spec.name);
        }
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = table::all_specs().map(|s| s.name).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn key_extraction() {
        let get = table::lookup(b"get").unwrap();
        let mset = table::lookup(b"mset").unwrap();
        let mget = table::lookup(b"mget").unwrap();
        let a = argv(&["mset", "k1", "v1", "k2", "v2"]);
        assert_eq!(keys(mset, &a).collect::<Vec<_>>(), vec!["k1", "k2"]);
        let a = argv(&["mget", "a", "b", "c"]);
        assert_eq!(keys(mget, &a).collect::<Vec<_>>(), vec!["a", "b", "c"]);
        assert_eq!(first_key(get, &argv(&["get", "k"])), Some(&b("k")));
        // Never panics on short lines.
        assert_eq!(first_key(get, &argv(&["get"])), None);
        assert_eq!(keys(mset, &argv(&["mset"])).count(), 0);
    }

    #[test]
    fn generic_render() {
        use crate::keyspace::KeyspaceError;
        let spec = table::lookup(b"get").unwrap();
        assert_eq!(render(spec, Outcome::Ok), Reply::ok());
        assert_eq!(render(spec, Outcome::Nil), Reply::Nil);
        assert_eq!(
            render(spec, Outcome::Err(KeyspaceError::WrongType)),
            Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
        assert_eq!(
            render(spec, Outcome::Array(vec![Outcome::Int(1), Outcome::Nil])),
            Reply::Array(vec![Reply::Int(1), Reply::Nil])
        );
        let setnx = table::lookup(b"setnx").unwrap();
        assert_eq!(render(setnx, Outcome::Ok), Reply::Int(1));
        assert_eq!(render(setnx, Outcome::Nil), Reply::Int(0));
    }

    /// Arguments that stress parsers: numbers at the edges, every keyword
    /// we know, empty and odd bytes.
    const POOL: &[&str] = &[
        "",
        "0",
        "1",
        "-1",
        "16384",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "1.5",
        "inf",
        "nan",
        "x",
        "a b",
        "\r\n",
        "*",
        "nx",
        "xx",
        "gt",
        "lt",
        "ex",
        "px",
        "exat",
        "pxat",
        "keepttl",
        "persist",
        "get",
        "match",
        "count",
        "type",
        "id",
        "auth",
        "setname",
        "lib-name",
        "filterby",
        "pattern",
        "aclcat",
        "module",
        "force",
        "async",
        "127.0.0.1",
        "h:1",
        "help",
        "set",
        "client",
        "mset",
    ];

    /// Every command name with pseudo-random argument lists: parsing never
    /// panics, and a plan that writes always comes from a write row (the
    /// flags are the only "is write" list there is).
    #[test]
    fn parser_never_panics_and_writes_are_flagged() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut names: Vec<Vec<&str>> = vec![];
        for spec in table::COMMANDS {
            names.push(vec![spec.name]);
            for sub in spec.subcommands {
                names.push(vec![spec.name, sub.short_name()]);
            }
        }
        let mut writes = 0;
        let mut reads = 0;
        for head in &names {
            for _ in 0..400 {
                let mut line: Vec<&str> = head.clone();
                for _ in 0..(next() % 8) {
                    line.push(POOL[(next() % POOL.len() as u64) as usize]);
                }
                if let Ok(p) = parse(&argv(&line), NOW) {
                    if p.spec.is_readonly() {
                        assert!(matches!(p.plan, Plan::Read(_)), "{line:?}");
                    }
                    match p.plan {
                        Plan::Write(_) => {
                            writes += 1;
                            assert!(p.spec.is_write(), "{line:?}");
                        }
                        Plan::Read(_) => reads += 1,
                        Plan::Reply(_) | Plan::Server(_) => {
                            assert!(!p.spec.is_write(), "{line:?}")
                        }
                    }
                    // Key extraction never panics either.
                    let _ = keys(p.spec, &argv(&line)).count();
                }
            }
        }
        assert!(writes > 100);
        assert!(reads > 100);
    }
}

/// Commands a client may send before authenticating (table flag `no_auth`).
pub fn allowed_before_auth(spec: &table::CommandSpec) -> bool {
    spec.flags.contains(table::Flag::NoAuth)
}
