//! The operations the keyspace understands, and what they return.
//!
//! `WriteOp` is what travels through the raft log (postcard-encoded inside a
//! versioned `raft::types::Proposal`), so it must be deterministic: every time-dependent
//! decision is made from the proposal's `now_ms` (the replicated clock),
//! from relative TTLs resolved against it at apply, and from absolute times
//! the client gave (EXAT/PXAT/EXPIREAT), never from the applying node's clock.
//! `ReadOp` is evaluated locally against the keyspace after the read barrier.
//! `Outcome` is protocol-neutral: the command layer renders it as RESP.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Set-style condition (`NX` / `XX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetCond {
    Always,
    /// Only if the key does not exist (NX).
    IfAbsent,
    /// Only if the key exists (XX).
    IfPresent,
}

/// What a write does to the key's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ttl {
    /// Remove any deadline (plain SET).
    Clear,
    /// Keep the existing deadline (KEEPTTL, APPEND, INCR, SETRANGE ...).
    Keep,
    /// Absolute unix time in milliseconds (EXAT/PXAT: the client's clock).
    At(u64),
    /// Milliseconds after the entry's replicated clock (EX/PX), resolved at
    /// apply: the key lives this long on the replicated clock whatever the
    /// proposer's estimate of "now" was, so a write acknowledged with a
    /// positive TTL is never already expired when it lands.
    In(u64),
}

impl Ttl {
    /// The deadline (0 = none) a key gets from this TTL in an entry applied
    /// at `now`, where `old` is the key's current deadline.
    pub fn deadline(self, now: u64, old: u64) -> u64 {
        match self {
            Ttl::Clear => 0,
            Ttl::Keep => old,
            Ttl::At(at) => at,
            Ttl::In(ms) => now.saturating_add(ms),
        }
    }
}

/// EXPIRE-family condition (Redis 7: NX XX GT LT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpireCond {
    Always,
    /// Only if the key has no deadline.
    Nx,
    /// Only if the key has a deadline.
    Xx,
    /// Only if the new deadline is greater (no deadline counts as infinite).
    Gt,
    /// Only if the new deadline is less (no deadline counts as infinite).
    Lt,
}

/// A replicated write. Relative TTLs have already been made absolute.
///
/// Log format: postcard writes a variant as its position here, so add new
/// variants at the end and never reorder, remove or retype one (nor in the
/// enums above); every variant's bytes are pinned in `raft::formats_tests`,
/// and a real format change bumps `raft::types::PROPOSAL_VERSION`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WriteOp {
    /// SET / SETNX / SETEX / PSETEX / GETSET. `get` returns the old value
    /// (`Bulk`/`Nil`, or WRONGTYPE) instead of OK/Nil.
    /// A `Ttl::At` deadline <= now still answers as a successful SET but
    /// leaves the key absent (what a client observes from Redis too).
    Set {
        key: Bytes,
        value: Bytes,
        cond: SetCond,
        ttl: Ttl,
        get: bool,
    },
    /// MSET (always OK) and MSETNX (`nx`: all or nothing, returns Int 1/0).
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
        nx: bool,
    },
    /// GETDEL: returns the old value and deletes it.
    GetDel { key: Bytes },
    /// GETEX with EX/PX/EXAT/PXAT (`Ttl::At`) or PERSIST (`Ttl::Clear`).
    GetEx { key: Bytes, ttl: Ttl },
    /// APPEND: returns the new length.
    Append { key: Bytes, value: Bytes },
    /// INCR/DECR/INCRBY/DECRBY: returns the new value; checked overflow.
    IncrBy { key: Bytes, delta: i64 },
    /// INCRBYFLOAT: returns the new value as Bulk (Redis formatting); never
    /// stores inf/NaN.
    IncrByFloat { key: Bytes, delta: f64 },
    /// SETRANGE: returns the new length.
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    /// DEL / UNLINK: returns the number of keys removed.
    Del { keys: Vec<Bytes> },
    /// RENAME (OK) / RENAMENX (Int 1/0). Missing source: `NoSuchKey`.
    Rename { src: Bytes, dst: Bytes, nx: bool },
    /// EXPIRE family with an absolute deadline; a deadline <= now deletes the
    /// key. Returns Int 1 if applied, 0 if not (missing key or cond false).
    Expire {
        key: Bytes,
        at_ms: u64,
        cond: ExpireCond,
    },
    /// PERSIST: Int 1 if a deadline was removed.
    Persist { key: Bytes },
    /// FLUSHDB / FLUSHALL.
    FlushAll,
    /// Proposed by the leader's active-expiry task: delete each key only if
    /// it is still expired at the proposal's `now_ms`. Returns Int (count).
    DeleteExpired { keys: Vec<Bytes> },
    /// EXPIRE / PEXPIRE: like `Expire`, with the deadline `ms` after the
    /// entry's replicated clock (resolved at apply; <= 0 deletes the key).
    ExpireIn {
        key: Bytes,
        ms: i64,
        cond: ExpireCond,
    },
    /// ACL SETUSER: replace (or create) user `name` with the user its full
    /// rule list describes (`keyspace::acl::AclUser::rules`). OK.
    AclSetUser { name: Bytes, rules: Vec<Bytes> },
    /// ACL DELUSER: delete these users (tombstones, so a user of the same
    /// name in a node's `aclfile` is gone too). OK.
    AclDelUser { names: Vec<Bytes> },
}

/// How TTL/PTTL/EXPIRETIME/PEXPIRETIME report a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlQuery {
    /// TTL: remaining seconds (rounded like Redis: (ms + 500) / 1000).
    Seconds,
    /// PTTL: remaining milliseconds.
    Millis,
    /// EXPIRETIME: absolute unix seconds.
    AbsSeconds,
    /// PEXPIRETIME: absolute unix milliseconds.
    AbsMillis,
}

/// A read evaluated against the local keyspace (never replicated).
#[derive(Debug, Clone, PartialEq)]
pub enum ReadOp {
    Get {
        key: Bytes,
    },
    MGet {
        keys: Vec<Bytes>,
    },
    StrLen {
        key: Bytes,
    },
    /// GETRANGE (Redis semantics for negative and out-of-range indexes).
    GetRange {
        key: Bytes,
        start: i64,
        end: i64,
    },
    /// EXISTS / TOUCH: counts keys (repeats counted).
    Exists {
        keys: Vec<Bytes>,
    },
    /// TYPE: Simple "string" or "none".
    Type {
        key: Bytes,
    },
    /// TTL family: -2 missing, -1 no deadline.
    Ttl {
        key: Bytes,
        query: TtlQuery,
    },
    /// KEYS pattern: Array of Bulk.
    Keys {
        pattern: Bytes,
    },
    /// SCAN cursor [MATCH p] [COUNT n] [TYPE t]: Array[Bulk(next cursor), Array[Bulk...]].
    /// The cursor is a slot index: whole slots are returned until at least
    /// `count` keys were visited, so a cursor stays valid whatever the
    /// keyspace does between calls. Cursors >= 16384 end the scan.
    Scan {
        cursor: u64,
        pattern: Option<Bytes>,
        count: usize,
        type_name: Option<Bytes>,
    },
    /// RANDOMKEY: Bulk or Nil (also Nil when a bounded number of picks all
    /// hit expired keys).
    RandomKey,
    /// DBSIZE: Int (keys not yet deleted, like Redis, may include expired ones).
    DbSize,
    /// CLUSTER COUNTKEYSINSLOT. Like Redis (and DBSIZE), counts stored keys,
    /// expired-but-not-yet-deleted ones included; slot >= 16384 gives 0.
    CountKeysInSlot {
        slot: u16,
    },
    /// CLUSTER GETKEYSINSLOT (stored keys, as COUNTKEYSINSLOT counts them).
    GetKeysInSlot {
        slot: u16,
        count: usize,
    },
}

/// Errors a keyspace operation can return (rendered with Redis's texts by
/// the command layer; `Display` gives those texts without the leading '-').
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KeyspaceError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    TooBig,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    OutOfMemory,
    /// A read's reply would exceed the caller's byte budget (the client's
    /// output-buffer limit); nothing was materialised past the budget.
    #[error("ERR reply exceeds the client output buffer limit")]
    ReplyTooLarge,
}

/// Protocol-neutral result of an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// `+OK`
    Ok,
    /// Null bulk / null.
    Nil,
    Int(i64),
    Bulk(Bytes),
    /// A status reply other than OK (e.g. TYPE's "string").
    Status(String),
    Array(Vec<Outcome>),
    Err(KeyspaceError),
}
