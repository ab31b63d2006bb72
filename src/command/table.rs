//! THE command table. Every command is one `CommandSpec` row: name, arity,
//! flags, key positions, documentation, ACL extras, subcommands and the
//! function that parses its arguments. Lookup, arity checks, key
//! extraction (slots, MOVED, COMMAND GETKEYS), "is this a write" and every
//! COMMAND reply are derived from these rows and nothing else.
//!
//! Adding a command = one row here + one parse function in its family file.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::args::Args;
use super::{acl, cluster, connection, expire, introspection, keys, server, string, Plan};
use crate::keyspace::Outcome;
use crate::protocol::Reply;

/// Parses a command's arguments (after its name) into a `Plan`; `u64` is
/// the current unix time in ms (for relative TTLs).
pub type ParseFn = fn(&mut Args<'_>, u64) -> Result<Plan, Reply>;

/// Turns a keyspace `Outcome` into this command's reply.
pub type RenderFn = fn(Outcome) -> Reply;

/// Command flags, in the order Redis 7 lists them in `COMMAND` replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Write,
    ReadOnly,
    DenyOom,
    Module,
    Admin,
    PubSub,
    NoScript,
    Blocking,
    Loading,
    Stale,
    SkipMonitor,
    SkipSlowlog,
    Asking,
    Fast,
    NoAuth,
    /// Kept internally but, like Redis, not shown by `COMMAND`.
    MayReplicate,
    NoMandatoryKeys,
    NoAsyncLoading,
    NoMulti,
    MovableKeys,
    AllowBusy,
}

impl Flag {
    pub const ALL: [Flag; 21] = [
        Flag::Write,
        Flag::ReadOnly,
        Flag::DenyOom,
        Flag::Module,
        Flag::Admin,
        Flag::PubSub,
        Flag::NoScript,
        Flag::Blocking,
        Flag::Loading,
        Flag::Stale,
        Flag::SkipMonitor,
        Flag::SkipSlowlog,
        Flag::Asking,
        Flag::Fast,
        Flag::NoAuth,
        Flag::MayReplicate,
        Flag::NoMandatoryKeys,
        Flag::NoAsyncLoading,
        Flag::NoMulti,
        Flag::MovableKeys,
        Flag::AllowBusy,
    ];

    /// The name `COMMAND` shows.
    pub const fn name(self) -> &'static str {
        match self {
            Flag::Write => "write",
            Flag::ReadOnly => "readonly",
            Flag::DenyOom => "denyoom",
            Flag::Module => "module",
            Flag::Admin => "admin",
            Flag::PubSub => "pubsub",
            Flag::NoScript => "noscript",
            Flag::Blocking => "blocking",
            Flag::Loading => "loading",
            Flag::Stale => "stale",
            Flag::SkipMonitor => "skip_monitor",
            Flag::SkipSlowlog => "skip_slowlog",
            Flag::Asking => "asking",
            Flag::Fast => "fast",
            Flag::NoAuth => "no_auth",
            Flag::MayReplicate => "may_replicate",
            Flag::NoMandatoryKeys => "no_mandatory_keys",
            Flag::NoAsyncLoading => "no_async_loading",
            Flag::NoMulti => "no_multi",
            Flag::MovableKeys => "movablekeys",
            Flag::AllowBusy => "allow_busy",
        }
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of `Flag`s (one bit each), built at compile time from a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    pub const fn of(list: &[Flag]) -> Flags {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].bit();
            i += 1;
        }
        Flags(bits)
    }

    pub const fn contains(self, f: Flag) -> bool {
        self.0 & f.bit() != 0
    }

    /// The flags `COMMAND` shows, in Redis's order.
    pub fn visible(self) -> impl Iterator<Item = Flag> {
        Flag::ALL
            .into_iter()
            .filter(move |&f| self.contains(f) && f != Flag::MayReplicate)
    }
}

/// ACL categories, in the order Redis lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acl {
    Keyspace,
    Read,
    Write,
    Set,
    SortedSet,
    List,
    Hash,
    String,
    Bitmap,
    HyperLogLog,
    Geo,
    Stream,
    PubSub,
    Admin,
    Fast,
    Slow,
    Blocking,
    Dangerous,
    Connection,
    Transaction,
    Scripting,
}

impl Acl {
    pub const ALL: [Acl; 21] = [
        Acl::Keyspace,
        Acl::Read,
        Acl::Write,
        Acl::Set,
        Acl::SortedSet,
        Acl::List,
        Acl::Hash,
        Acl::String,
        Acl::Bitmap,
        Acl::HyperLogLog,
        Acl::Geo,
        Acl::Stream,
        Acl::PubSub,
        Acl::Admin,
        Acl::Fast,
        Acl::Slow,
        Acl::Blocking,
        Acl::Dangerous,
        Acl::Connection,
        Acl::Transaction,
        Acl::Scripting,
    ];

    /// Without the leading `@`.
    pub const fn name(self) -> &'static str {
        match self {
            Acl::Keyspace => "keyspace",
            Acl::Read => "read",
            Acl::Write => "write",
            Acl::Set => "set",
            Acl::SortedSet => "sortedset",
            Acl::List => "list",
            Acl::Hash => "hash",
            Acl::String => "string",
            Acl::Bitmap => "bitmap",
            Acl::HyperLogLog => "hyperloglog",
            Acl::Geo => "geo",
            Acl::Stream => "stream",
            Acl::PubSub => "pubsub",
            Acl::Admin => "admin",
            Acl::Fast => "fast",
            Acl::Slow => "slow",
            Acl::Blocking => "blocking",
            Acl::Dangerous => "dangerous",
            Acl::Connection => "connection",
            Acl::Transaction => "transaction",
            Acl::Scripting => "scripting",
        }
    }
}

/// The documentation group (`COMMAND DOCS` "group").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    String,
    Generic,
    Connection,
    Server,
    Cluster,
}

impl Group {
    pub const fn name(self) -> &'static str {
        match self {
            Group::String => "string",
            Group::Generic => "generic",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Cluster => "cluster",
        }
    }

    /// The category a group implies (Redis tags string commands @string,
    /// generic ones @keyspace, connection ones @connection).
    const fn acl(self) -> Option<Acl> {
        match self {
            Group::String => Some(Acl::String),
            Group::Generic => Some(Acl::Keyspace),
            Group::Connection => Some(Acl::Connection),
            Group::Server | Group::Cluster => None,
        }
    }
}

/// One row of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Full lowercase name: `get`, or `client|setname` for a subcommand.
    pub name: &'static str,
    /// Redis convention: N = exactly N args (name included), -N = at least N.
    /// Subcommands count the container's name too (`client|setname` = 3).
    pub arity: i32,
    pub flags: Flags,
    /// Key positions (0 = keyless); a negative `last_key` counts from the end.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: Group,
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    /// Arguments after the name, Redis docs style; `COMMAND DOCS`'s argument
    /// tree and `HELP` texts are derived from it.
    pub syntax: &'static str,
    /// ACL categories beyond those implied by flags and group.
    pub acl: &'static [Acl],
    /// Command tips (`nondeterministic_output`, `request_policy:...`).
    pub tips: &'static [&'static str],
    /// Key-spec flags; empty = derived from write/readonly.
    pub key_flags: &'static [&'static str],
    /// Argument types the syntax string cannot imply (`("increment", "double")`).
    pub arg_types: &'static [(&'static str, &'static str)],
    pub subcommands: &'static [CommandSpec],
    pub parse: ParseFn,
    pub render: RenderFn,
}

/// A keyless row with empty docs; chain the builders below.
const fn cmd(
    name: &'static str,
    arity: i32,
    flags: &[Flag],
    group: Group,
    parse: ParseFn,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags: Flags::of(flags),
        first_key: 0,
        last_key: 0,
        step: 0,
        group,
        summary: "",
        since: "",
        complexity: "",
        syntax: "",
        acl: &[],
        tips: &[],
        key_flags: &[],
        arg_types: &[],
        subcommands: &[],
        parse,
        render: super::render_generic,
    }
}

impl CommandSpec {
    const fn keys(self, first_key: i32, last_key: i32, step: i32) -> Self {
        CommandSpec {
            first_key,
            last_key,
            step,
            ..self
        }
    }

    const fn doc(
        self,
        summary: &'static str,
        since: &'static str,
        complexity: &'static str,
    ) -> Self {
        CommandSpec {
            summary,
            since,
            complexity,
            ..self
        }
    }

    const fn syntax(self, syntax: &'static str) -> Self {
        CommandSpec { syntax, ..self }
    }

    const fn acl(self, acl: &'static [Acl]) -> Self {
        CommandSpec { acl, ..self }
    }

    const fn tips(self, tips: &'static [&'static str]) -> Self {
        CommandSpec { tips, ..self }
    }

    const fn key_flags(self, key_flags: &'static [&'static str]) -> Self {
        CommandSpec { key_flags, ..self }
    }

    const fn arg_types(self, arg_types: &'static [(&'static str, &'static str)]) -> Self {
        CommandSpec { arg_types, ..self }
    }

    const fn subs(self, subcommands: &'static [CommandSpec]) -> Self {
        CommandSpec {
            subcommands,
            ..self
        }
    }

    const fn render(self, render: RenderFn) -> Self {
        CommandSpec { render, ..self }
    }

    /// The name after the container (`setname` for `client|setname`).
    pub fn short_name(&self) -> &'static str {
        match self.name.split_once('|') {
            Some((_, sub)) => sub,
            None => self.name,
        }
    }

    /// The container's name for a subcommand.
    pub fn container_name(&self) -> Option<&'static str> {
        self.name.split_once('|').map(|(c, _)| c)
    }

    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }

    pub fn has(&self, f: Flag) -> bool {
        self.flags.contains(f)
    }

    /// Goes through raft (the only "is write" test there is).
    pub fn is_write(&self) -> bool {
        self.has(Flag::Write)
    }

    pub fn is_readonly(&self) -> bool {
        self.has(Flag::ReadOnly)
    }

    pub fn has_keys(&self) -> bool {
        self.first_key > 0
    }

    /// Whether `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// A subcommand by name, ignoring ASCII case.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(name))
    }

    /// ACL categories as Redis derives them: explicit ones, the group's,
    /// then write/read/admin(+dangerous)/pubsub/fast/blocking from flags,
    /// and @slow whenever not @fast. Containers only get @slow, like Redis.
    pub fn acl_categories(&self) -> impl Iterator<Item = Acl> + '_ {
        let container = self.is_container();
        let fast = self.has(Flag::Fast) || self.acl.contains(&Acl::Fast);
        Acl::ALL.into_iter().filter(move |&c| {
            let implied = match c {
                Acl::Write => self.has(Flag::Write),
                Acl::Read => self.has(Flag::ReadOnly),
                Acl::Admin | Acl::Dangerous if self.has(Flag::Admin) => true,
                Acl::PubSub => self.has(Flag::PubSub),
                Acl::Fast => fast,
                Acl::Slow => !fast,
                Acl::Blocking => self.has(Flag::Blocking),
                _ => false,
            };
            implied || self.acl.contains(&c) || (!container && self.group.acl() == Some(c))
        })
    }
}

/// Every top-level command (containers hold their subcommands).
pub static COMMANDS: &[CommandSpec] = {
    use Flag::*;
    &[
        // ---- strings ----
        cmd("get", 2, &[ReadOnly, Fast], Group::String, string::get)
            .keys(1, 1, 1)
            .doc("Returns the string value of a key.", "1.0.0", "O(1)")
            .syntax("key"),
        cmd("set", -3, &[Write, DenyOom], Group::String, string::set)
            .keys(1, 1, 1)
            .doc(
                "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
                "1.0.0",
                "O(1)",
            )
            .syntax("key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]")
            .key_flags(&["RW", "ACCESS", "UPDATE", "VARIABLE_FLAGS"]),
        cmd("setnx", 3, &[Write, DenyOom, Fast], Group::String, string::setnx)
            .keys(1, 1, 1)
            .doc("Set the string value of a key only when the key doesn't exist.", "1.0.0", "O(1)")
            .syntax("key value")
            .key_flags(&["OW", "INSERT"])
            .render(super::render_ok_as_one),
        cmd("setex", 4, &[Write, DenyOom], Group::String, string::setex)
            .keys(1, 1, 1)
            .doc("Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", "2.0.0", "O(1)")
            .syntax("key seconds value")
            .key_flags(&["OW", "UPDATE"]),
        cmd("psetex", 4, &[Write, DenyOom], Group::String, string::psetex)
            .keys(1, 1, 1)
            .doc("Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", "2.6.0", "O(1)")
            .syntax("key milliseconds value")
            .key_flags(&["OW", "UPDATE"]),
        cmd("mget", -2, &[ReadOnly, Fast], Group::String, string::mget)
            .keys(1, -1, 1)
            .doc("Atomically returns the string values of one or more keys.", "1.0.0", "O(N) where N is the number of keys to retrieve.")
            .syntax("key [key ...]")
            .tips(&["request_policy:multi_shard"]),
        cmd("mset", -3, &[Write, DenyOom], Group::String, string::mset)
            .keys(1, -1, 2)
            .doc("Atomically creates or modifies the string values of one or more keys.", "1.0.1", "O(N) where N is the number of keys to set.")
            .syntax("key value [key value ...]")
            .key_flags(&["OW", "UPDATE"])
            .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"]),
        cmd("msetnx", -3, &[Write, DenyOom], Group::String, string::msetnx)
            .keys(1, -1, 2)
            .doc("Atomically modifies the string values of one or more keys only when all keys don't exist.", "1.0.1", "O(N) where N is the number of keys to set.")
            .syntax("key value [key value ...]")
            .key_flags(&["OW", "INSERT"]),
        cmd("getset", 3, &[Write, DenyOom, Fast], Group::String, string::getset)
            .keys(1, 1, 1)
            .doc("Returns the previous string value of a key after setting it to a new value.", "1.0.0", "O(1)")
            .syntax("key value")
            .key_flags(&["RW", "ACCESS", "UPDATE"]),
        cmd("getdel", 2, &[Write, Fast], Group::String, string::getdel)
            .keys(1, 1, 1)
            .doc("Returns the string value of a key after deleting the key.", "6.2.0", "O(1)")
            .syntax("key")
            .key_flags(&["RW", "ACCESS", "DELETE"]),
        cmd("getex", -2, &[Write, Fast], Group::String, string::getex)
            .keys(1, 1, 1)
            .doc("Returns the string value of a key after setting its expiration time.", "6.2.0", "O(1)")
            .syntax("key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]")
            .key_flags(&["RW", "ACCESS", "UPDATE"]),
        cmd("append", 3, &[Write, DenyOom, Fast], Group::String, string::append)
            .keys(1, 1, 1)
            .doc("Appends a string to the value of a key. Creates the key if it doesn't exist.", "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.")
            .syntax("key value")
            .key_flags(&["RW", "INSERT"]),
        cmd("strlen", 2, &[ReadOnly, Fast], Group::String, string::strlen)
            .keys(1, 1, 1)
            .doc("Returns the length of a string value.", "2.2.0", "O(1)")
            .syntax("key")
            .key_flags(&["RO"]),
        cmd("incr", 2, &[Write, DenyOom, Fast], Group::String, string::incr)
            .keys(1, 1, 1)
            .doc("Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)")
            .syntax("key"),
        cmd("decr", 2, &[Write, DenyOom, Fast], Group::String, string::decr)
            .keys(1, 1, 1)
            .doc("Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)")
            .syntax("key"),
        cmd("incrby", 3, &[Write, DenyOom, Fast], Group::String, string::incrby)
            .keys(1, 1, 1)
            .doc("Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)")
            .syntax("key increment"),
        cmd("decrby", 3, &[Write, DenyOom, Fast], Group::String, string::decrby)
            .keys(1, 1, 1)
            .doc("Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", "1.0.0", "O(1)")
            .syntax("key decrement"),
        cmd("incrbyfloat", 3, &[Write, DenyOom, Fast], Group::String, string::incrbyfloat)
            .keys(1, 1, 1)
            .doc("Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", "2.6.0", "O(1)")
            .syntax("key increment")
            .arg_types(&[("increment", "double")]),
        cmd("getrange", 4, &[ReadOnly], Group::String, string::getrange)
            .keys(1, 1, 1)
            .doc("Returns a substring of the string stored at a key.", "2.4.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.")
            .syntax("key start end")
            .key_flags(&["RO", "ACCESS"]),
        cmd("setrange", 4, &[Write, DenyOom], Group::String, string::setrange)
            .keys(1, 1, 1)
            .doc("Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", "2.2.0", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.")
            .syntax("key offset value"),
        // ---- generic (keys) ----
        cmd("del", -2, &[Write], Group::Generic, keys::del)
            .keys(1, -1, 1)
            .doc("Deletes one or more keys.", "1.0.0", "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).")
            .syntax("key [key ...]")
            .key_flags(&["RM", "DELETE"])
            .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
        cmd("unlink", -2, &[Write, Fast], Group::Generic, keys::del)
            .keys(1, -1, 1)
            .doc("Asynchronously deletes one or more keys.", "4.0.0", "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.")
            .syntax("key [key ...]")
            .key_flags(&["RM", "DELETE"])
            .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
        cmd("exists", -2, &[ReadOnly, Fast], Group::Generic, keys::exists)
            .keys(1, -1, 1)
            .doc("Determines whether one or more keys exist.", "1.0.0", "O(N) where N is the number of keys to check.")
            .syntax("key [key ...]")
            .key_flags(&["RO"])
            .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
        cmd("touch", -2, &[ReadOnly, Fast], Group::Generic, keys::exists)
            .keys(1, -1, 1)
            .doc("Returns the number of existing keys out of those specified after updating the time they were last accessed.", "3.2.1", "O(N) where N is the number of keys that will be touched.")
            .syntax("key [key ...]")
            .key_flags(&["RO"])
            .tips(&["request_policy:multi_shard", "response_policy:agg_sum"]),
        cmd("type", 2, &[ReadOnly, Fast], Group::Generic, keys::type_)
            .keys(1, 1, 1)
            .doc("Determines the type of value stored at a key.", "1.0.0", "O(1)")
            .syntax("key")
            .key_flags(&["RO"]),
        cmd("keys", 2, &[ReadOnly], Group::Generic, keys::keys)
            .doc("Returns all key names that match a pattern.", "1.0.0", "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.")
            .syntax("pattern")
            .acl(&[Acl::Dangerous])
            .tips(&["request_policy:all_shards", "nondeterministic_output_order"]),
        cmd("scan", -2, &[ReadOnly], Group::Generic, keys::scan)
            .doc("Iterates over the key names in the database.", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.")
            .syntax("cursor [MATCH pattern] [COUNT count] [TYPE type]")
            .tips(&["nondeterministic_output", "request_policy:special", "response_policy:special"]),
        cmd("rename", 3, &[Write], Group::Generic, keys::rename)
            .keys(1, 2, 1)
            .doc("Renames a key and overwrites the destination.", "1.0.0", "O(1)")
            .syntax("key newkey"),
        cmd("renamenx", 3, &[Write, Fast], Group::Generic, keys::renamenx)
            .keys(1, 2, 1)
            .doc("Renames a key only when the target key name doesn't exist.", "1.0.0", "O(1)")
            .syntax("key newkey"),
        cmd("randomkey", 1, &[ReadOnly], Group::Generic, keys::randomkey)
            .doc("Returns a random key name from the database.", "1.0.0", "O(1)")
            .tips(&["request_policy:all_shards", "response_policy:special", "nondeterministic_output"]),
        // ---- generic (expiry) ----
        cmd("expire", -3, &[Write, Fast], Group::Generic, expire::expire)
            .keys(1, 1, 1)
            .doc("Sets the expiration time of a key in seconds.", "1.0.0", "O(1)")
            .syntax("key seconds [NX | XX | GT | LT]")
            .key_flags(&["RW", "UPDATE"]),
        cmd("pexpire", -3, &[Write, Fast], Group::Generic, expire::pexpire)
            .keys(1, 1, 1)
            .doc("Sets the expiration time of a key in milliseconds.", "2.6.0", "O(1)")
            .syntax("key milliseconds [NX | XX | GT | LT]")
            .key_flags(&["RW", "UPDATE"]),
        cmd("expireat", -3, &[Write, Fast], Group::Generic, expire::expireat)
            .keys(1, 1, 1)
            .doc("Sets the expiration time of a key to a Unix timestamp.", "1.2.0", "O(1)")
            .syntax("key unix-time-seconds [NX | XX | GT | LT]")
            .key_flags(&["RW", "UPDATE"]),
        cmd("pexpireat", -3, &[Write, Fast], Group::Generic, expire::pexpireat)
            .keys(1, 1, 1)
            .doc("Sets the expiration time of a key to a Unix milliseconds timestamp.", "2.6.0", "O(1)")
            .syntax("key unix-time-milliseconds [NX | XX | GT | LT]")
            .key_flags(&["RW", "UPDATE"]),
        cmd("ttl", 2, &[ReadOnly, Fast], Group::Generic, expire::ttl)
            .keys(1, 1, 1)
            .doc("Returns the expiration time in seconds of a key.", "1.0.0", "O(1)")
            .syntax("key")
            .key_flags(&["RO", "ACCESS"])
            .tips(&["nondeterministic_output"]),
        cmd("pttl", 2, &[ReadOnly, Fast], Group::Generic, expire::pttl)
            .keys(1, 1, 1)
            .doc("Returns the expiration time in milliseconds of a key.", "2.6.0", "O(1)")
            .syntax("key")
            .key_flags(&["RO", "ACCESS"])
            .tips(&["nondeterministic_output"]),
        cmd("expiretime", 2, &[ReadOnly, Fast], Group::Generic, expire::expiretime)
            .keys(1, 1, 1)
            .doc("Returns the expiration time of a key as a Unix timestamp.", "7.0.0", "O(1)")
            .syntax("key")
            .key_flags(&["RO", "ACCESS"]),
        cmd("pexpiretime", 2, &[ReadOnly, Fast], Group::Generic, expire::pexpiretime)
            .keys(1, 1, 1)
            .doc("Returns the expiration time of a key as a Unix milliseconds timestamp.", "7.0.0", "O(1)")
            .syntax("key")
            .key_flags(&["RO", "ACCESS"]),
        cmd("persist", 2, &[Write, Fast], Group::Generic, expire::persist)
            .keys(1, 1, 1)
            .doc("Removes the expiration time of a key.", "2.2.0", "O(1)")
            .syntax("key")
            .key_flags(&["RW", "UPDATE"]),
        // ---- connection ----
        cmd("ping", -1, &[Fast], Group::Connection, connection::ping)
            .doc("Returns the server's liveliness response.", "1.0.0", "O(1)")
            .syntax("[message]")
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        cmd("echo", 2, &[Fast], Group::Connection, connection::echo)
            .doc("Returns the given string.", "1.0.0", "O(1)")
            .syntax("message"),
        cmd("hello", -1, &[NoScript, Loading, Stale, Fast, NoAuth, AllowBusy], Group::Connection, connection::hello)
            .doc("Handshakes with the Redis server.", "6.0.0", "O(1)")
            .syntax("[protover [AUTH username password] [SETNAME clientname]]"),
        cmd("auth", -2, &[NoScript, Loading, Stale, Fast, NoAuth, AllowBusy], Group::Connection, connection::auth)
            .doc("Authenticates the connection.", "1.0.0", "O(N) where N is the number of passwords defined for the user")
            .syntax("[username] password"),
        cmd("select", 2, &[Loading, Stale, Fast], Group::Connection, connection::select)
            .doc("Changes the selected database.", "1.0.0", "O(1)")
            .syntax("index"),
        cmd("quit", -1, &[NoScript, Loading, Stale, Fast, NoAuth, AllowBusy], Group::Connection, connection::quit)
            .doc("Closes the connection.", "1.0.0", "O(1)"),
        cmd("reset", 1, &[NoScript, Loading, Stale, Fast, NoAuth, AllowBusy], Group::Connection, connection::reset)
            .doc("Resets the connection.", "6.2.0", "O(1)"),
        cmd("client", -2, &[], Group::Connection, introspection::container_alone)
            .doc("A container for client connection commands.", "2.4.0", "Depends on subcommand.")
            .subs(CLIENT_SUBS),
        // ---- server ----
        cmd("info", -1, &[Loading, Stale], Group::Server, server::info)
            .doc("Returns information and statistics about the server.", "1.0.0", "O(1)")
            .syntax("[section [section ...]]")
            .acl(&[Acl::Dangerous])
            .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"]),
        cmd("config", -2, &[], Group::Server, introspection::container_alone)
            .doc("A container for server configuration commands.", "2.0.0", "Depends on subcommand.")
            .subs(CONFIG_SUBS),
        cmd("slowlog", -2, &[], Group::Server, introspection::container_alone)
            .doc("A container for slow log commands.", "2.2.12", "Depends on subcommand.")
            .subs(SLOWLOG_SUBS),
        cmd("latency", -2, &[], Group::Server, introspection::container_alone)
            .doc("A container for latency diagnostics commands.", "2.8.13", "Depends on subcommand.")
            .subs(LATENCY_SUBS),
        cmd("dbsize", 1, &[ReadOnly, Fast], Group::Server, server::dbsize)
            .doc("Returns the number of keys in the database.", "1.0.0", "O(1)")
            .acl(&[Acl::Keyspace])
            .tips(&["request_policy:all_shards", "response_policy:agg_sum"]),
        cmd("flushdb", -1, &[Write], Group::Server, server::flush)
            .doc("Remove all keys from the current database.", "1.0.0", "O(N) where N is the number of keys in the selected database")
            .syntax("[ASYNC | SYNC]")
            .acl(&[Acl::Keyspace, Acl::Dangerous])
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        cmd("flushall", -1, &[Write], Group::Server, server::flush)
            .doc("Removes all keys from all databases.", "1.0.0", "O(N) where N is the total number of keys in all databases")
            .syntax("[ASYNC | SYNC]")
            .acl(&[Acl::Keyspace, Acl::Dangerous])
            .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
        cmd("time", 1, &[Loading, Stale, Fast], Group::Server, server::time)
            .doc("Returns the server time.", "2.6.0", "O(1)")
            .tips(&["nondeterministic_output"]),
        cmd("command", -1, &[Loading, Stale], Group::Server, introspection::command)
            .doc("Returns detailed information about all commands.", "2.8.13", "O(N) where N is the total number of Redis commands")
            .acl(&[Acl::Connection])
            .tips(&["nondeterministic_output_order"])
            .subs(COMMAND_SUBS),
        // ---- cluster ----
        cmd("readonly", 1, &[Loading, Stale, Fast], Group::Cluster, cluster::readonly)
            .doc("Enables read-only queries for a connection to a Redis Cluster replica node.", "3.0.0", "O(1)")
            .acl(&[Acl::Connection]),
        cmd("readwrite", 1, &[Loading, Stale, Fast], Group::Cluster, cluster::readwrite)
            .doc("Enables read-write queries for a connection to a Redis Cluster replica node.", "3.0.0", "O(1)")
            .acl(&[Acl::Connection]),
        cmd("asking", 1, &[Fast], Group::Cluster, cluster::asking)
            .doc("Signals that a cluster client is following an -ASK redirect.", "3.0.0", "O(1)")
            .acl(&[Acl::Connection]),
        cmd("cluster", -2, &[], Group::Cluster, introspection::container_alone)
            .doc("A container for Redis Cluster commands.", "3.0.0", "Depends on subcommand.")
            .subs(CLUSTER_SUBS),
        cmd("raftcache", -2, &[], Group::Cluster, introspection::container_alone)
            .doc("A container for raftcache's raft group commands.", "0.1.0", "Depends on subcommand.")
            .subs(RAFTCACHE_SUBS),
        cmd("acl", -2, &[], Group::Server, introspection::container_alone)
            .doc("A container for Access List Control commands.", "6.0.0", "Depends on subcommand.")
            .subs(ACL_SUBS),
    ]
};

static ACL_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "acl|cat",
            -2,
            &[NoScript, Loading, Stale],
            Group::Server,
            acl::cat,
        )
        .doc(
            "Lists the ACL categories, or the commands inside a category.",
            "6.0.0",
            "O(1) since the categories and commands are a fixed set.",
        )
        .syntax("[category]"),
        cmd(
            "acl|deluser",
            -3,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            acl::deluser,
        )
        .doc(
            "Deletes ACL users, and terminates their connections.",
            "6.0.0",
            "O(1) amortized time considering the typical user.",
        )
        .syntax("username [username ...]"),
        cmd(
            "acl|getuser",
            3,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            acl::getuser,
        )
        .doc(
            "Lists the ACL rules of a user.",
            "6.0.0",
            "O(N). Where N is the number of password, command and pattern rules that the user has.",
        )
        .syntax("username"),
        cmd(
            "acl|list",
            2,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            acl::list,
        )
        .doc(
            "Dumps the effective rules in ACL file format.",
            "6.0.0",
            "O(N). Where N is the number of configured users.",
        ),
        cmd(
            "acl|log",
            -2,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            acl::log,
        )
        .doc(
            "Lists recent security events generated due to ACL rules.",
            "6.0.0",
            "O(N) with N being the number of entries shown.",
        )
        .syntax("[count | RESET]"),
        cmd(
            "acl|setuser",
            -3,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            acl::setuser,
        )
        .doc(
            "Creates and modifies an ACL user and its rules.",
            "6.0.0",
            "O(N). Where N is the number of rules provided.",
        )
        .syntax("username [rule [rule ...]]"),
        cmd(
            "acl|users",
            2,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            acl::users,
        )
        .doc(
            "Lists all ACL users.",
            "6.0.0",
            "O(N). Where N is the number of configured users.",
        ),
        cmd(
            "acl|whoami",
            2,
            &[NoScript, Loading, Stale],
            Group::Server,
            acl::whoami,
        )
        .doc(
            "Returns the authenticated username of the current connection.",
            "6.0.0",
            "O(1)",
        ),
        cmd(
            "acl|help",
            2,
            &[Loading, Stale],
            Group::Server,
            introspection::help,
        )
        .doc(
            "Returns helpful text about the different subcommands.",
            "6.0.0",
            "O(1)",
        ),
    ]
};

static CLIENT_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "client|id",
            2,
            &[NoScript, Loading, Stale],
            Group::Connection,
            connection::client_id,
        )
        .doc(
            "Returns the unique client ID of the connection.",
            "5.0.0",
            "O(1)",
        ),
        cmd(
            "client|setname",
            3,
            &[NoScript, Loading, Stale],
            Group::Connection,
            connection::client_setname,
        )
        .doc("Sets the connection name.", "2.6.9", "O(1)")
        .syntax("connection-name")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        cmd(
            "client|getname",
            2,
            &[NoScript, Loading, Stale],
            Group::Connection,
            connection::client_getname,
        )
        .doc("Returns the name of the connection.", "2.6.9", "O(1)"),
        cmd(
            "client|setinfo",
            4,
            &[NoScript, Loading, Stale],
            Group::Connection,
            connection::client_setinfo,
        )
        .doc(
            "Sets information specific to the client or connection.",
            "7.2.0",
            "O(1)",
        )
        .syntax("<LIB-NAME libname | LIB-VER libver>")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        cmd(
            "client|list",
            -2,
            &[Admin, NoScript, Loading, Stale],
            Group::Connection,
            connection::client_list,
        )
        .doc(
            "Lists open connections.",
            "2.4.0",
            "O(N) where N is the number of client connections",
        )
        .syntax("[TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]")
        .tips(&["nondeterministic_output"]),
        cmd(
            "client|info",
            2,
            &[NoScript, Loading, Stale],
            Group::Connection,
            connection::client_info,
        )
        .doc("Returns information about the connection.", "6.2.0", "O(1)")
        .tips(&["nondeterministic_output"]),
        cmd(
            "client|help",
            2,
            &[Loading, Stale],
            Group::Connection,
            introspection::help,
        )
        .doc(
            "Returns helpful text about the different subcommands.",
            "5.0.0",
            "O(1)",
        ),
    ]
};

static SLOWLOG_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "slowlog|get",
            -2,
            &[Admin, Loading, Stale],
            Group::Server,
            server::slowlog_get,
        )
        .doc(
            "Returns the slow log's entries.",
            "2.2.12",
            "O(N) where N is the number of entries returned",
        )
        .syntax("[count]")
        .tips(&["request_policy:all_nodes", "nondeterministic_output"]),
        cmd(
            "slowlog|len",
            2,
            &[Admin, Loading, Stale],
            Group::Server,
            server::slowlog_len,
        )
        .doc(
            "Returns the number of entries in the slow log.",
            "2.2.12",
            "O(1)",
        )
        .tips(&[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ]),
        cmd(
            "slowlog|reset",
            2,
            &[Admin, Loading, Stale],
            Group::Server,
            server::slowlog_reset,
        )
        .doc(
            "Clears all entries from the slow log.",
            "2.2.12",
            "O(N) where N is the number of entries in the slowlog",
        )
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        cmd(
            "slowlog|help",
            2,
            &[Loading, Stale],
            Group::Server,
            introspection::help,
        )
        .doc(
            "Show helpful text about the different subcommands",
            "6.2.0",
            "O(1)",
        ),
    ]
};

static LATENCY_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "latency|latest",
            2,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            server::latency_latest,
        )
        .doc(
            "Returns the latest latency samples for all events.",
            "2.8.13",
            "O(1)",
        )
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ]),
        cmd(
            "latency|history",
            3,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            server::latency_history,
        )
        .doc(
            "Returns timestamp-latency samples for an event.",
            "2.8.13",
            "O(1)",
        )
        .syntax("event")
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ]),
        cmd(
            "latency|reset",
            -2,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            server::latency_reset,
        )
        .doc(
            "Resets the latency data for one or more events.",
            "2.8.13",
            "O(1)",
        )
        .syntax("[event [event ...]]")
        .tips(&["request_policy:all_nodes", "response_policy:agg_sum"]),
        cmd(
            "latency|help",
            2,
            &[Loading, Stale],
            Group::Server,
            introspection::help,
        )
        .doc(
            "Returns helpful text about the different subcommands.",
            "2.8.13",
            "O(1)",
        ),
    ]
};

static CONFIG_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "config|get",
            -3,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            server::config_get,
        )
        .doc(
            "Returns the effective values of configuration parameters.",
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
        )
        .syntax("parameter [parameter ...]"),
        cmd(
            "config|set",
            -4,
            &[Admin, NoScript, Loading, Stale, MayReplicate],
            Group::Server,
            server::config_set,
        )
        .doc(
            "Sets configuration parameters in-flight.",
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
        )
        .syntax("parameter value [parameter value ...]")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        cmd(
            "config|resetstat",
            2,
            &[Admin, NoScript, Loading, Stale],
            Group::Server,
            server::config_resetstat,
        )
        .doc("Resets the server's statistics.", "2.0.0", "O(1)")
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
        cmd(
            "config|help",
            2,
            &[Loading, Stale],
            Group::Server,
            introspection::help,
        )
        .doc(
            "Returns helpful text about the different subcommands.",
            "5.0.0",
            "O(1)",
        ),
    ]
};

static COMMAND_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "command|count",
            2,
            &[Loading, Stale],
            Group::Server,
            introspection::count,
        )
        .doc("Returns a count of commands.", "2.8.13", "O(1)")
        .acl(&[Acl::Connection]),
        cmd(
            "command|info",
            -2,
            &[Loading, Stale],
            Group::Server,
            introspection::info,
        )
        .doc(
            "Returns information about one, multiple or all commands.",
            "2.8.13",
            "O(N) where N is the number of commands to look up",
        )
        .syntax("[command-name [command-name ...]]")
        .acl(&[Acl::Connection])
        .tips(&["nondeterministic_output_order"]),
        cmd(
            "command|docs",
            -2,
            &[Loading, Stale],
            Group::Server,
            introspection::docs,
        )
        .doc(
            "Returns documentary information about one, multiple or all commands.",
            "7.0.0",
            "O(N) where N is the number of commands to look up",
        )
        .syntax("[command-name [command-name ...]]")
        .acl(&[Acl::Connection])
        .tips(&["nondeterministic_output_order"]),
        cmd(
            "command|getkeys",
            -3,
            &[Loading, Stale],
            Group::Server,
            introspection::getkeys,
        )
        .doc(
            "Extracts the key names from an arbitrary command.",
            "2.8.13",
            "O(N) where N is the number of arguments to the command",
        )
        .syntax("command [arg [arg ...]]")
        .acl(&[Acl::Connection]),
        cmd(
            "command|list",
            -2,
            &[Loading, Stale],
            Group::Server,
            introspection::list,
        )
        .doc(
            "Returns a list of command names.",
            "7.0.0",
            "O(N) where N is the total number of Redis commands",
        )
        .syntax("[FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]")
        .acl(&[Acl::Connection])
        .tips(&["nondeterministic_output_order"]),
        cmd(
            "command|help",
            2,
            &[Loading, Stale],
            Group::Server,
            introspection::help,
        )
        .doc(
            "Returns helpful text about the different subcommands.",
            "5.0.0",
            "O(1)",
        )
        .acl(&[Acl::Connection]),
    ]
};

static CLUSTER_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd(
            "cluster|slots",
            2,
            &[Loading, Stale],
            Group::Cluster,
            cluster::slots,
        )
        .doc(
            "Returns the mapping of cluster slots to nodes.",
            "3.0.0",
            "O(N) where N is the total number of Cluster nodes",
        )
        .tips(&["nondeterministic_output"]),
        cmd(
            "cluster|shards",
            2,
            &[Loading, Stale],
            Group::Cluster,
            cluster::shards,
        )
        .doc(
            "Returns the mapping of cluster slots to shards.",
            "7.0.0",
            "O(N) where N is the total number of cluster nodes",
        )
        .tips(&["nondeterministic_output"]),
        cmd(
            "cluster|nodes",
            2,
            &[Loading, Stale],
            Group::Cluster,
            cluster::nodes,
        )
        .doc(
            "Returns the cluster configuration for a node.",
            "3.0.0",
            "O(N) where N is the total number of Cluster nodes",
        )
        .tips(&["nondeterministic_output"]),
        cmd(
            "cluster|info",
            2,
            &[Loading, Stale],
            Group::Cluster,
            cluster::info,
        )
        .doc(
            "Returns information about the state of a node.",
            "3.0.0",
            "O(1)",
        )
        .tips(&["nondeterministic_output"]),
        cmd(
            "cluster|myid",
            2,
            &[Loading, Stale],
            Group::Cluster,
            cluster::myid,
        )
        .doc("Returns the ID of a node.", "3.0.0", "O(1)"),
        cmd(
            "cluster|myshardid",
            2,
            &[Loading, Stale],
            Group::Cluster,
            cluster::myshardid,
        )
        .doc("Returns the shard ID of a node.", "7.2.0", "O(1)")
        .tips(&["nondeterministic_output"]),
        cmd(
            "cluster|keyslot",
            3,
            &[Stale],
            Group::Cluster,
            cluster::keyslot,
        )
        .doc(
            "Returns the hash slot for a key.",
            "3.0.0",
            "O(N) where N is the number of bytes in the key",
        )
        .syntax("key")
        .arg_types(&[("key", "string")]),
        cmd(
            "cluster|countkeysinslot",
            3,
            &[Stale],
            Group::Cluster,
            cluster::countkeysinslot,
        )
        .doc(
            "Returns the number of keys in a hash slot.",
            "3.0.0",
            "O(1)",
        )
        .syntax("slot"),
        cmd(
            "cluster|getkeysinslot",
            4,
            &[Stale],
            Group::Cluster,
            cluster::getkeysinslot,
        )
        .doc(
            "Returns the key names in a hash slot.",
            "3.0.0",
            "O(N) where N is the number of requested keys",
        )
        .syntax("slot count")
        .tips(&["nondeterministic_output"]),
        cmd(
            "cluster|meet",
            -4,
            &[Admin, Stale, NoAsyncLoading],
            Group::Cluster,
            cluster::meet,
        )
        .doc(
            "Forces a node to handshake with another node.",
            "3.0.0",
            "O(1)",
        )
        .syntax("ip port [cluster-bus-port]"),
        cmd(
            "cluster|forget",
            3,
            &[Admin, Stale, NoAsyncLoading],
            Group::Cluster,
            cluster::forget,
        )
        .doc("Removes a node from the nodes table.", "3.0.0", "O(1)")
        .syntax("node-id"),
        cmd(
            "cluster|failover",
            -2,
            &[Admin, Stale, NoAsyncLoading],
            Group::Cluster,
            cluster::failover,
        )
        .doc(
            "Forces a replica to perform a manual failover of its master.",
            "3.0.0",
            "O(1)",
        )
        .syntax("[FORCE | TAKEOVER]"),
        cmd(
            "cluster|help",
            2,
            &[Loading, Stale],
            Group::Cluster,
            introspection::help,
        )
        .doc(
            "Returns helpful text about the different subcommands.",
            "5.0.0",
            "O(1)",
        ),
    ]
};

static RAFTCACHE_SUBS: &[CommandSpec] = {
    use Flag::*;
    &[
        cmd("raftcache|status", 2, &[Loading, Stale], Group::Cluster, cluster::raft_status)
            .doc("Returns this node's view of the raft group: id, term, leader, log indexes, membership.", "0.1.0", "O(N) where N is the number of nodes")
            .tips(&["nondeterministic_output"]),
        cmd("raftcache|add-learner", 4, &[Admin, Stale], Group::Cluster, cluster::raft_add_learner)
            .doc("Adds a node as a non-voting learner that receives the log (its cluster bus at port + 10000 unless @busport is given).", "0.1.0", "O(1)")
            .syntax("node-id host:port[@busport]")
            .arg_types(&[("node-id", "integer")]),
        cmd("raftcache|promote", 3, &[Admin, Stale], Group::Cluster, cluster::raft_promote)
            .doc("Turns a learner into a voting member.", "0.1.0", "O(N) where N is the number of nodes")
            .syntax("node-id")
            .arg_types(&[("node-id", "integer")]),
        cmd("raftcache|snapshot", 2, &[Admin, Stale], Group::Cluster, cluster::raft_snapshot)
            .doc("Triggers a snapshot of the state machine on this node.", "0.1.0", "O(N) where N is the number of keys"),
        cmd("raftcache|transfer", 3, &[Admin, Stale], Group::Cluster, cluster::raft_transfer)
            .doc("Transfers raft leadership to another voter.", "0.1.0", "O(1)")
            .syntax("node-id")
            .arg_types(&[("node-id", "integer")]),
        cmd("raftcache|digest", 2, &[Loading, Stale], Group::Cluster, cluster::raft_digest)
            .doc("Returns the applied log index and a digest of the keyspace, to compare replicas.", "0.1.0", "O(N) where N is the number of keys")
            .tips(&["nondeterministic_output"]),
        cmd("raftcache|help", 2, &[Loading, Stale], Group::Cluster, introspection::help)
            .doc("Returns helpful text about the different subcommands.", "0.1.0", "O(1)"),
    ]
};

/// The lookup map, built once; keys are the lowercase names.
fn index() -> &'static HashMap<&'static [u8], &'static CommandSpec, foldhash::fast::FixedState> {
    static INDEX: OnceLock<
        HashMap<&'static [u8], &'static CommandSpec, foldhash::fast::FixedState>,
    > = OnceLock::new();
    INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name.as_bytes(), c)).collect())
}

/// Longest command name we could match; longer names are unknown.
const MAX_NAME: usize = 32;

/// A top-level command by name, ignoring ASCII case, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > MAX_NAME {
        return None;
    }
    let mut buf = [0u8; MAX_NAME];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index().get(&*lower).copied()
}

/// A command or subcommand by its full name (`get`, `client|setname`), as
/// `COMMAND INFO` / `COMMAND DOCS` accept it.
pub fn lookup_full(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        Some(i) => lookup(&name[..i])?.subcommand(&name[i + 1..]),
        None => lookup(name),
    }
}

/// Every row, subcommands after their container.
pub fn all_specs() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
}

/// Number of rows in `all_specs()`.
pub fn row_count() -> usize {
    rows().len()
}

/// This row's position in `all_specs()`: per-command statistics are kept
/// in a table in that order (`server::cmdstats`).
pub fn row(spec: &CommandSpec) -> usize {
    let at = std::ptr::from_ref(spec) as usize;
    rows().get(&at).copied().unwrap_or(0)
}

fn rows() -> &'static HashMap<usize, usize, foldhash::fast::FixedState> {
    static ROWS: OnceLock<HashMap<usize, usize, foldhash::fast::FixedState>> = OnceLock::new();
    ROWS.get_or_init(|| {
        all_specs()
            .enumerate()
            .map(|(i, s)| (std::ptr::from_ref(s) as usize, i))
            .collect()
    })
}
