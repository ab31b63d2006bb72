//! The in-memory keyspace: keys, values, deadlines. Knows nothing of raft or
//! sockets. Writes come in as `WriteOp`s (already ordered by the raft log),
//! reads as `ReadOp`s; both return protocol-neutral `Outcome`s.
//!
//! Determinism: `apply` never reads the clock. It treats a key whose deadline
//! is <= `now_ms` (the proposal's time, chosen by the leader) as absent.

mod ops;

pub use ops::{ExpireCond, KeyspaceError, Outcome, ReadOp, SetCond, Ttl, TtlQuery, WriteOp};

use std::io;

/// Limits the keyspace enforces on writes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum string length produced by APPEND/SETRANGE (proto-max-bulk-len).
    pub proto_max_bulk_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: 512 * 1024 * 1024,
        }
    }
}

/// The whole dataset of one node (db 0).
#[derive(Debug, Clone, Default)]
pub struct Keyspace {
    limits: Limits,
}

impl Keyspace {
    pub fn new(limits: Limits) -> Self {
        Keyspace { limits }
    }

    /// Apply one replicated write at the proposal's time.
    pub fn apply(&mut self, op: &WriteOp, now_ms: u64) -> Outcome {
        let _ = (op, now_ms, self.limits);
        todo!()
    }

    /// Evaluate a read; keys whose deadline is <= `now_ms` are invisible.
    pub fn read(&self, op: &ReadOp, now_ms: u64) -> Outcome {
        let _ = (op, now_ms);
        todo!()
    }

    /// Number of keys stored (expired-but-not-yet-deleted included).
    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys with a deadline.
    pub fn expires_len(&self) -> usize {
        todo!()
    }

    /// One round of Redis's active-expiry sampling: look at up to `sample`
    /// random keys that have a deadline; return how many were looked at and
    /// those already expired at `now_ms`.
    pub fn sample_expired(&self, now_ms: u64, sample: usize) -> (usize, Vec<bytes::Bytes>) {
        let _ = (now_ms, sample);
        todo!()
    }

    /// Approximate bytes used by keys, values and bookkeeping.
    pub fn used_memory(&self) -> usize {
        todo!()
    }

    /// Order-independent digest of the contents (keys, values, deadlines), so
    /// replicas at the same applied index can be compared.
    pub fn digest(&self) -> u64 {
        todo!()
    }

    /// Serialize the whole keyspace (streaming; no full in-memory copy).
    pub fn write_snapshot<W: io::Write>(&self, w: W) -> io::Result<()> {
        let _ = w;
        todo!()
    }

    /// Rebuild a keyspace from `write_snapshot` output. Corrupt input is an
    /// `InvalidData` error, never a panic, and never a huge allocation.
    pub fn read_snapshot<R: io::Read>(r: R, limits: Limits) -> io::Result<Self> {
        let _ = (r, limits);
        todo!()
    }
}
