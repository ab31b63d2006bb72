//! The raft log, bounded in bytes (docs/log-bounds.md).
//!
//! openraft bounds the log in *entries* (snapshot every N entries, keep M
//! behind it), but one of our entries is a batch of writes of any size, so a
//! few clients writing big values could fill the LMDB map, and an
//! `MDB_MAP_FULL` inside openraft's append stops raft on every replica at
//! the same index. Here the log is bounded in bytes instead:
//!
//! * **entry cap**: a write whose encoded size cannot fit one entry
//!   (`raft-max-entry-bytes`, itself below the bus frame limit) is refused
//!   before it is queued; the proposer closes a batch before it would pass
//!   the cap;
//! * **admission**: the leader refuses writes while the LMDB pages in use,
//!   plus what it has proposed and not yet seen applied, plus the batch,
//!   would pass `lmdb-map-write-percent` of the map. Reads are untouched;
//! * **compaction by bytes**: every node snapshots once its log has grown by
//!   `snapshot-log-bytes-since-last` since the last snapshot, and purges so
//!   that at most `max-in-snapshot-log-bytes-to-keep` stay behind it. Under
//!   pressure (the leader refusing writes, or any node past three quarters
//!   of the write limit, e.g. a follower with a smaller map) it snapshots and
//!   purges everything the snapshot covers, so writes resume.
//!
//! Followers never refuse an entry (raft cannot), so the headroom between
//! the write limit and the map size is what keeps them from `MDB_MAP_FULL`:
//! their logs hold the same entries, compacted by the same rules.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::raft::log_store::{LogUsage, UsageSample};
use crate::raft::node::{ClusterView, RaftError};
use crate::raft::types::Raft;

/// Bytes an `Entry` adds to the postcard encoding of its ops: log id
/// (term, node id, index), payload tag, the `Proposal`'s other fields and
/// the op count, all varints. Checked against the real encoding in tests.
pub const ENTRY_OVERHEAD: u64 = 128;

/// Length of `v`'s postcard encoding (what the log store writes), counted
/// without building it.
pub fn encoded_len<T: serde::Serialize + ?Sized>(v: &T) -> postcard::Result<u64> {
    postcard::serialize_with_flavor::<T, _, usize>(v, postcard::ser_flavors::Size::default())
        .map(|n| n as u64)
}

// An entry at the cap must fit one bus frame with the rest of its
// AppendEntries request: a frame carries up to 4 MiB of entries or a single
// bigger entry (the log store's limited read), plus well under 1 MiB of ids.
const _: () =
    assert!(crate::config::MAX_ENTRY_BYTES + (1 << 20) <= crate::raft::network::MAX_FRAME as u64);

/// How often the compaction task looks at the log.
const TICK: Duration = Duration::from_millis(100);

/// The byte limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// `raft-max-entry-bytes`.
    pub max_entry_bytes: u64,
    /// `snapshot-log-bytes-since-last`.
    pub snapshot_bytes: u64,
    /// `max-in-snapshot-log-bytes-to-keep`.
    pub keep_bytes: u64,
    /// `lmdb-map-write-percent`.
    pub write_percent: u32,
}

/// What INFO shows about the log's size.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogBoundsStats {
    pub log_bytes: u64,
    pub largest_entry_bytes: u64,
    pub log_bytes_since_snapshot: u64,
    pub lmdb_used_bytes: u64,
    pub lmdb_map_size: u64,
    pub write_limit_bytes: u64,
    pub inflight_bytes: u64,
    pub writes_refused: u64,
}

/// Admission and compaction state of one raft group.
pub struct LogBounds {
    usage: LogUsage,
    limits: LogLimits,
    /// Bytes of LMDB pages the log may use before writes are refused.
    write_limit: u64,
    page_size: u64,
    /// Estimated LMDB bytes of proposed entries not yet applied.
    inflight: AtomicU64,
    /// Writes refused since the compaction task last looked.
    pressure: AtomicBool,
    refused_total: AtomicU64,
    /// The last sample, for INFO.
    last: parking_lot::Mutex<UsageSample>,
}

impl LogBounds {
    pub fn new(usage: LogUsage, limits: LogLimits) -> std::io::Result<LogBounds> {
        let sample = usage.sample()?;
        let write_limit = usage.map_size() / 100 * u64::from(limits.write_percent);
        Ok(LogBounds {
            usage,
            limits,
            write_limit,
            page_size: sample.page_size.max(512),
            inflight: AtomicU64::new(0),
            pressure: AtomicBool::new(false),
            refused_total: AtomicU64::new(0),
            last: parking_lot::Mutex::new(sample),
        })
    }

    /// Encoded size of a batch of ops whose encodings total `bytes`.
    fn entry_bytes(bytes: u64) -> u64 {
        bytes + ENTRY_OVERHEAD
    }

    /// LMDB bytes an entry of `bytes` encoded bytes may take: values above
    /// half a page live in whole overflow pages, and the B-tree leaf holding
    /// the key may need a page of its own.
    fn footprint(&self, bytes: u64) -> u64 {
        (Self::entry_bytes(bytes).div_ceil(self.page_size) + 1) * self.page_size
    }

    /// Refuse one op of `op_bytes` encoded bytes that no entry could hold:
    /// over the entry cap, or over half the write limit (it could then not
    /// be admitted even right after a compaction).
    pub fn check_op(&self, op_bytes: u64) -> Result<(), RaftError> {
        let bytes = Self::entry_bytes(op_bytes);
        if bytes > self.limits.max_entry_bytes {
            return Err(RaftError::EntryTooLarge {
                bytes,
                limit: self.limits.max_entry_bytes,
                knob: "raft-max-entry-bytes",
            });
        }
        if self.footprint(op_bytes) > self.write_limit / 2 {
            return Err(RaftError::EntryTooLarge {
                bytes,
                limit: self.write_limit / 2,
                knob: "lmdb-map-size",
            });
        }
        Ok(())
    }

    /// True if a batch of `batch_bytes` + `op_bytes` would pass the entry cap
    /// (the proposer then closes the batch before the op).
    fn batch_full(&self, batch_bytes: u64, op_bytes: u64) -> bool {
        Self::entry_bytes(batch_bytes + op_bytes) > self.limits.max_entry_bytes
    }

    /// LMDB bytes in use now plus proposals in flight: the base the proposer
    /// admits a batch against (one short read transaction per batch).
    fn used(&self) -> u64 {
        let sample = match self.usage.sample() {
            Ok(s) => {
                *self.last.lock() = s;
                s
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read LMDB usage; using the last reading");
                *self.last.lock()
            }
        };
        sample.lmdb_used_bytes + self.inflight.load(Ordering::Relaxed)
    }

    /// Admit an op of `op_bytes` into a batch of `batch_bytes` when `used`
    /// bytes are in use; otherwise the error to answer (and note the
    /// pressure, so the compaction task acts at once).
    fn admit(&self, used: u64, batch_bytes: u64, op_bytes: u64) -> Result<(), RaftError> {
        if used + self.footprint(batch_bytes + op_bytes) <= self.write_limit {
            return Ok(());
        }
        self.pressure.store(true, Ordering::Relaxed);
        self.refused_total.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::LOG_FULL_REFUSALS_TOTAL).increment(1);
        Err(RaftError::LogFull {
            limit: self.write_limit,
        })
    }

    /// Count a proposed batch as in flight until the returned guard drops
    /// (when its outcome is known).
    pub fn in_flight(self: &Arc<Self>, batch_bytes: u64) -> InFlight {
        let bytes = self.footprint(batch_bytes);
        self.inflight.fetch_add(bytes, Ordering::Relaxed);
        InFlight {
            bounds: self.clone(),
            bytes,
        }
    }

    pub fn stats(&self, snapshot_index: u64) -> LogBoundsStats {
        // The ledger figures are read together, so that bytes since the
        // snapshot never exceed the log's bytes; LMDB pages from the last
        // reading (taken at least every tick).
        let (log_bytes, largest_entry_bytes, since) = self.usage.ledger_view(snapshot_index);
        LogBoundsStats {
            log_bytes,
            largest_entry_bytes,
            log_bytes_since_snapshot: since,
            lmdb_used_bytes: self.last.lock().lmdb_used_bytes,
            lmdb_map_size: self.usage.map_size(),
            write_limit_bytes: self.write_limit,
            inflight_bytes: self.inflight.load(Ordering::Relaxed),
            writes_refused: self.refused_total.load(Ordering::Relaxed),
        }
    }

    /// The compaction task: snapshot and purge by bytes (see module docs).
    pub async fn run(self: Arc<Self>, raft: Raft, view: Arc<RwLock<Arc<ClusterView>>>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut purge_requested = 0;
        let mut warned: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            let v = view.read().clone();
            let used = self.used();
            // The leader never admits past the limit, so a follower above it
            // is compacting later than the leader, or has a smaller map.
            if used > self.write_limit
                && v.state != Some(crate::raft::Role::Leader)
                && warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10))
            {
                tracing::warn!(
                    used,
                    write_limit = self.write_limit,
                    map_size = self.usage.map_size(),
                    "raft log above the write limit on a follower (is its lmdb-map-size smaller \
                     than the leader's?); compacting"
                );
                warned = Some(std::time::Instant::now());
            }
            let pressure =
                self.pressure.swap(false, Ordering::Relaxed) || used > self.write_limit / 4 * 3;
            let since = self.usage.bytes_after(v.snapshot_index);
            if (pressure || since >= self.limits.snapshot_bytes)
                && v.last_applied > v.snapshot_index
            {
                tracing::debug!(since, used, pressure, "log bytes: triggering a snapshot");
                if raft.trigger().snapshot().await.is_err() {
                    return;
                }
            }
            let keep = if pressure { 0 } else { self.limits.keep_bytes };
            match self.usage.purge_point(v.snapshot_index, keep) {
                // openraft may postpone a purge (a replication still reads
                // those entries); ask again only for more.
                Some(upto) if upto > purge_requested => {
                    tracing::debug!(upto, keep, "log bytes: purging behind the snapshot");
                    if raft.trigger().purge_log(upto).await.is_err() {
                        return;
                    }
                    purge_requested = upto;
                }
                _ => {}
            }
        }
    }
}

/// One proposal's worth of queued writes and their encoded bytes.
pub struct Batch<T> {
    pub items: Vec<T>,
    pub bytes: u64,
}

impl LogBounds {
    /// Drain queued writes `(write, encoded bytes)` into one batch: `first`,
    /// then whatever `next` yields, until `max_ops` or until the next write
    /// would pass the entry cap (that write is returned: it starts the next
    /// batch). Each write is admitted against the log's byte limit (one
    /// reading of LMDB per batch); `refuse` gets those that are not.
    pub fn fill<T>(
        &self,
        first: (T, u64),
        mut next: impl FnMut() -> Option<(T, u64)>,
        max_ops: usize,
        mut refuse: impl FnMut(T, RaftError),
    ) -> (Batch<T>, Option<(T, u64)>) {
        let used = self.used();
        let mut batch = Batch {
            items: Vec::new(),
            bytes: 0,
        };
        let mut item = Some(first);
        while let Some((write, bytes)) = item.take() {
            if !batch.items.is_empty()
                && (batch.items.len() >= max_ops || self.batch_full(batch.bytes, bytes))
            {
                return (batch, Some((write, bytes)));
            }
            match self.admit(used, batch.bytes, bytes) {
                Ok(()) => {
                    batch.items.push(write);
                    batch.bytes += bytes;
                }
                Err(e) => refuse(write, e),
            }
            item = next();
        }
        (batch, None)
    }
}

/// A proposed batch's share of [`LogBounds`]' in-flight bytes.
pub struct InFlight {
    bounds: Arc<LogBounds>,
    bytes: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.bounds
            .inflight
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderIdExt;
    use openraft::RaftTypeConfig;

    use std::collections::VecDeque;

    use super::{encoded_len, LogBounds, LogLimits, ENTRY_OVERHEAD};
    use crate::keyspace::{SetCond, Ttl, WriteOp};
    use crate::raft::log_store::{LogStore, LogStoreOptions};
    use crate::raft::node::RaftError;
    use crate::raft::types::{Entry, LogId, Proposal, TypeConfig};

    fn bounds(dir: &std::path::Path, max_entry_bytes: u64, map_size: usize) -> LogBounds {
        let store = LogStore::open(
            dir,
            LogStoreOptions {
                map_size,
                unsafe_no_fsync: true,
            },
        )
        .unwrap();
        let limits = LogLimits {
            max_entry_bytes,
            snapshot_bytes: 1 << 20,
            keep_bytes: 0,
            write_percent: 50,
        };
        LogBounds::new(store.usage(), limits).unwrap()
    }

    /// Run the proposer's batching over `sizes`: the batches (ids) and the
    /// refused ids with their errors.
    fn batches(
        b: &LogBounds,
        sizes: &[u64],
        max_ops: usize,
    ) -> (Vec<Vec<usize>>, Vec<(usize, RaftError)>) {
        let mut queue: VecDeque<(usize, u64)> = sizes.iter().copied().enumerate().collect();
        let (mut out, mut refused) = (Vec::new(), Vec::new());
        let mut carried = None;
        while let Some(first) = carried.take().or_else(|| queue.pop_front()) {
            let (batch, rest) = b.fill(
                first,
                || queue.pop_front(),
                max_ops,
                |id, e| refused.push((id, e)),
            );
            carried = rest;
            let bytes: u64 = batch.items.iter().map(|i| sizes[*i]).sum();
            assert_eq!(batch.bytes, bytes);
            if !batch.items.is_empty() {
                out.push(batch.items);
            }
        }
        (out, refused)
    }

    #[test]
    fn batches_close_before_the_entry_cap_and_at_max_ops() {
        let dir = tempfile::tempdir().unwrap();
        let b = bounds(dir.path(), 64 << 10, 64 << 20);
        let sizes = vec![8 << 10; 32];
        let (out, refused) = batches(&b, &sizes, 4096);
        assert!(refused.is_empty());
        assert_eq!(out.concat(), (0..32).collect::<Vec<_>>(), "all, in order");
        for batch in &out {
            let bytes: u64 = batch.iter().map(|i| sizes[*i]).sum();
            assert!(bytes + ENTRY_OVERHEAD <= 64 << 10, "{bytes}");
        }
        assert_eq!(out.len(), 32usize.div_ceil(7), "7 ops of 8 KB per entry");
        let (out, _) = batches(&b, &[10; 10], 4);
        assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
    }

    #[test]
    fn writes_past_the_write_limit_are_refused_until_in_flight_bytes_land() {
        let dir = tempfile::tempdir().unwrap();
        // 4 MiB map, 50%: 2 MiB for the log.
        let b = std::sync::Arc::new(bounds(dir.path(), 512 << 20, 4 << 20));
        let (out, refused) = batches(&b, &[512 << 10; 6], 4096);
        assert_eq!(out.concat(), [0, 1, 2], "three 512 KB writes fit in 2 MB");
        assert_eq!(refused.iter().map(|r| r.0).collect::<Vec<_>>(), [3, 4, 5]);
        for (_, e) in &refused {
            assert!(matches!(e, RaftError::LogFull { .. }), "{e:?}");
        }
        // Proposed but not yet applied counts against the limit.
        let in_flight = b.in_flight(1536 << 10);
        let (out, refused) = batches(&b, &[512 << 10], 4096);
        assert!(out.is_empty() && refused.len() == 1);
        drop(in_flight);
        let (out, _) = batches(&b, &[512 << 10], 4096);
        assert_eq!(out, [[0]]);
    }

    #[test]
    fn one_write_no_entry_can_hold_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = bounds(dir.path(), 64 << 10, 64 << 20);
        assert!(b.check_op((64 << 10) - ENTRY_OVERHEAD).is_ok());
        assert!(matches!(
            b.check_op((64 << 10) - ENTRY_OVERHEAD + 1),
            Err(RaftError::EntryTooLarge {
                knob: "raft-max-entry-bytes",
                ..
            })
        ));
        // Fits the entry cap but not half of the map's write limit.
        let dir = tempfile::tempdir().unwrap();
        let b = bounds(dir.path(), 512 << 20, 4 << 20);
        assert!(matches!(
            b.check_op(1 << 20),
            Err(RaftError::EntryTooLarge {
                knob: "lmdb-map-size",
                ..
            })
        ));
    }

    /// The proposer sizes batches from the ops' encodings alone; the entry
    /// around them must not add more than `ENTRY_OVERHEAD`, even with the
    /// largest term, node id, index and clock.
    #[test]
    fn entry_overhead_covers_the_real_encoding() {
        type LeaderId = <TypeConfig as RaftTypeConfig>::LeaderId;
        for n in [1usize, 3, 300] {
            let ops: Vec<WriteOp> = (0..n)
                .map(|i| WriteOp::Set {
                    key: Bytes::from(format!("key{i}")),
                    value: Bytes::from(vec![b'v'; 1000 + i]),
                    cond: SetCond::Always,
                    ttl: Ttl::At(u64::MAX),
                    get: true,
                })
                .collect();
            let ops_bytes: u64 = ops.iter().map(|op| encoded_len(op).unwrap()).sum();
            let log_id = LogId::new(LeaderId::new_committed(u64::MAX, u64::MAX), u64::MAX);
            let entry = Entry::new_normal(
                log_id,
                Proposal {
                    now_ms: u64::MAX,
                    limits: crate::keyspace::Limits {
                        proto_max_bulk_len: u64::MAX,
                    },
                    ops,
                },
            );
            let encoded = postcard::to_stdvec(&entry).unwrap().len() as u64;
            assert_eq!(encoded_len(&entry).unwrap(), encoded);
            let entry_bytes = encoded;
            assert!(
                entry_bytes <= ops_bytes + ENTRY_OVERHEAD,
                "{n} ops: entry {entry_bytes} bytes, ops {ops_bytes}"
            );
        }
    }
}
