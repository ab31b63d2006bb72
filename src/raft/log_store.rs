//! The raft log store: vote, log entries, committed and last-purged log id in
//! one LMDB environment (`<data-dir>/raft-log/`), accessed through heed.
//!
//! # Durability and group commit
//!
//! openraft may only count an entry towards a quorum once our `IOFlushed`
//! callback says it is on disk, and a vote must be on disk before we answer a
//! vote request. Firing a callback for a commit that has not been fsynced is
//! exactly how a system loses acknowledged writes, so the rule here is: **no
//! callback, and no return from a durable call, before an fsync that started
//! after the data was committed.**
//!
//! One fsync per append would cap throughput at the disk's fsync rate, so we
//! open the env with `MDB_NOSYNC` (commits only write to the page cache) and
//! sync explicitly with `mdb_env_sync(force = 1)` (`Env::force_sync`), once for
//! many commits:
//!
//! ```text
//!  async callers ──requests──▶ writer thread ──batches──▶ syncer thread
//!                              drain queue,               drain queue,
//!                              one write txn, commit      force_sync ONCE,
//!                              (no fsync), ack            fire every callback
//!                              "visible" to append()      of the drained batches
//! ```
//!
//! Two threads, not one, because openraft requires appended entries to be
//! *readable* as soon as `append()` returns (only the callback waits for
//! disk), and openraft issues appends one after another: if a single thread
//! committed *and* synced, the next append's commit would wait behind the
//! previous fsync and every group would hold one append. With a separate
//! syncer, appends keep committing while an fsync is in flight, and the next
//! fsync covers all of them. The syncer only receives a batch after its commit
//! returned, so every fsync it starts covers every batch it has received.
//!
//! `save_vote`, `save_committed`, `truncate_after` and `purge` go through the
//! same writer queue (so all write IO stays in submission order, as openraft
//! requires) and return only after the syncer has synced them.
//!
//! # Page reuse: why group commit stays crash-safe
//!
//! LMDB is copy-on-write: a commit writes new pages and then a meta page
//! pointing at the new root; after a power loss LMDB opens the newest meta
//! page it finds on disk. With `MDB_NOSYNC`, commits after the last sync
//! exist only in the page cache, so after a power loss the disk may point at
//! the meta of the last *synced* state `S` (the worst case; any later meta
//! that reached the disk is a bonus). That is only safe if every page of
//! `S`'s tree is still intact on disk. The danger: a later commit frees some
//! of `S`'s pages (it copied them) and a commit after that *reuses* them
//! for new data; if the kernel writes such a page back before the next sync,
//! `S`'s tree is corrupted on disk: entries acknowledged as durable become
//! unreadable.
//!
//! LMDB never reuses a page freed by a transaction newer than the oldest
//! live reader (that reader may still be walking the page). So the syncer
//! keeps a read transaction *pinned* on the state it last made durable:
//!
//! 1. before each forced sync it opens a reader on the newest committed
//!    state `L` (which includes every batch it is about to acknowledge);
//! 2. it syncs; `L` is now durable, and it acknowledges the batches;
//! 3. only then does it drop the reader pinned at the previous sync and
//!    keep the one on `L`.
//!
//! At every instant a reader is pinned on a state at least as old as the
//! durable one, so no page of the durable tree is reused before the next
//! sync has completed — and once it has, the disk no longer needs that tree.
//! The cost is one read transaction per sync (no extra fsync) and a file that
//! may grow by what one sync interval frees. The unit test
//! `synced_tree_survives_unsynced_page_reuse` builds exactly that disk state
//! (synced meta pages, every later data page written back) and fails when
//! the pin is removed.
//!
//! What this does not cover (LMDB documents it for `MDB_NOSYNC`): the kernel
//! may write a newer, unsynced meta page to disk before the data pages it
//! points to, and LMDB has no checksums to notice. Closing that would need a
//! data sync before every meta write (`MDB_NOMETASYNC`: one fsync per commit,
//! with openraft's core waiting on each `append`), which is exactly what
//! group commit exists to avoid. The durable image (module `image`, test
//! builds only) simulates the case covered here: the disk falls back to the
//! last synced meta.
//!
//! Crash points between commit and sync: `log::after_commit` (writer, group
//! committed, syncer not told) and `log::before_sync` (syncer, before the
//! sync); `tests/crashpoints.rs` crashes at both. A hold point (`log-sync`,
//! `failpoints` feature) parks the syncer before the sync so a test can show
//! that nothing is acknowledged meanwhile.
//!
//! # Failure
//!
//! After any write or fsync error the store is *poisoned*: every later write
//! fails with the first error. A failed fsync may have dropped dirty pages
//! from the page cache, so a later successful fsync proves nothing about
//! earlier commits; and a failed append must not be followed by a successful
//! one (that would leave a hole). openraft treats storage errors as fatal
//! anyway.
//!
//! # Reads
//!
//! Reads open LMDB read transactions on the calling task (MVCC: they never
//! block on, or are blocked by, the writer). They are memory-mapped lookups
//! plus postcard decoding, so we do not hop to a blocking thread for them.

use std::fmt;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, RoTxn, WithoutTls};
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::failpoints::crash_point;
use crate::raft::types::{Entry, LogId, TypeConfig, Vote};

mod usage;
use usage::Ledger;
pub use usage::{LogUsage, UsageSample};

/// Sub-directory of the data dir holding the LMDB env.
pub const LOG_DIR: &str = "raft-log";

/// Default LMDB map size: 1 GiB. The map is virtual address space, not disk;
/// the file grows only as pages are used.
pub const DEFAULT_MAP_SIZE: usize = 1 << 30;

/// At most this many requests are folded into one write transaction, to keep
/// a single commit (and the time `append()` waits for it) bounded.
const MAX_REQUESTS_PER_TXN: usize = 1024;

/// `limited_get_log_entries` stops adding entries once this many encoded
/// bytes are collected (it always returns at least one entry), so one
/// replication RPC does not carry an unbounded payload.
const LIMITED_READ_BYTES: usize = 4 << 20;

/// LMDB wants the map size to be a multiple of the OS page size; 64 KiB is a
/// multiple of every page size we run on (4K, 16K, 64K).
const MAP_SIZE_ALIGN: usize = 64 << 10;

const META_VOTE: &str = "vote";
const META_COMMITTED: &str = "committed";
const META_LAST_PURGED: &str = "last_purged";
/// The data dir's format version (postcard `u32`), written when the store
/// is created and checked on every open.
const META_FORMAT: &str = "format";

/// Version of everything this store keeps: the databases and their key
/// encodings, the meta values, and the encoding of openraft's entries
/// (membership and blank entries included, whose layout is openraft's).
/// Bump it, with a CHANGELOG entry, whenever an existing data dir would be
/// read differently; `formats_tests` pins the encodings it stands for.
pub const DATA_FORMAT_VERSION: u32 = 1;

/// How to open the log store.
#[derive(Debug, Clone)]
pub struct LogStoreOptions {
    /// LMDB map size in bytes (the `lmdb-map-size` knob): the maximum size the
    /// log env can grow to. Rounded up to a multiple of 64 KiB. When it is
    /// exhausted every write fails with an error naming this knob.
    pub map_size: usize,
    /// **DANGER — test-only negative control.** When `true` the syncer never
    /// fsyncs: callbacks fire right after the (unsynced) commit, so an OS
    /// crash or power loss loses *acknowledged* writes. Exists only so fault
    /// tests can prove they would notice lost writes. Never enable in
    /// production.
    pub unsafe_no_fsync: bool,
}

impl Default for LogStoreOptions {
    fn default() -> Self {
        Self {
            map_size: DEFAULT_MAP_SIZE,
            unsafe_no_fsync: false,
        }
    }
}

/// Counters for metrics. All monotonic since open.
#[derive(Debug, Default)]
struct StatsCounters {
    fsyncs: AtomicU64,
    sync_rounds: AtomicU64,
    sync_nanos: AtomicU64,
    write_txns: AtomicU64,
    appends: AtomicU64,
    entries: AtomicU64,
    durable_ops: AtomicU64,
}

/// A snapshot of the log store counters (see [`LogStore::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStoreStats {
    /// `force_sync` calls actually made (0 with `unsafe_no_fsync`).
    pub fsyncs: u64,
    /// Flush rounds of the syncer (one per fsync, or per would-be fsync with
    /// `unsafe_no_fsync`).
    pub sync_rounds: u64,
    /// Total wall time spent in `force_sync`, in nanoseconds.
    pub sync_nanos: u64,
    /// Committed LMDB write transactions.
    pub write_txns: u64,
    /// `append()` calls made durable.
    pub appends: u64,
    /// Log entries made durable.
    pub entries: u64,
    /// Durable operations acknowledged (appends + vote/committed/truncate/purge).
    pub durable_ops: u64,
}

impl LogStoreStats {
    /// Average `append()` calls covered by one flush round: the group-commit
    /// factor. `0.0` before the first round.
    pub fn appends_per_sync(&self) -> f64 {
        ratio(self.appends, self.sync_rounds)
    }

    /// Average log entries covered by one flush round.
    pub fn entries_per_sync(&self) -> f64 {
        ratio(self.entries, self.sync_rounds)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// State shared by the store, its readers and its two threads.
struct Shared {
    env: Env<WithoutTls>,
    /// index (big-endian, so LMDB orders by index) -> postcard(`Entry`)
    logs: Database<'static, U64<BigEndian>, Bytes>,
    /// `META_*` -> postcard value
    meta: Database<'static, Str, Bytes>,
    map_size: usize,
    unsafe_no_fsync: bool,
    stats: StatsCounters,
    /// First write/fsync error; once set, every write fails with it.
    poisoned: Mutex<Option<(io::ErrorKind, String)>>,
    /// Simulated power loss for tests (`failpoints` feature only).
    image: Option<image::DurableImage>,
}

impl Shared {
    /// Turn a heed error into an `io::Error`, making `MDB_MAP_FULL` say which
    /// knob to raise.
    fn io_err(&self, e: heed::Error) -> io::Error {
        lmdb_err(e, self.map_size)
    }

    fn poison_error(&self) -> Option<io::Error> {
        let g = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref()
            .map(|(kind, msg)| io::Error::new(*kind, format!("log store failed earlier: {msg}")))
    }

    fn poison(&self, e: &io::Error) {
        let mut g = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            tracing::error!(error = %e, "raft log store write failed; refusing further writes");
            *g = Some((e.kind(), e.to_string()));
        }
    }

    /// The forced env sync (through the durable image when a test asked for
    /// one, see `image`).
    fn sync(&self) -> io::Result<()> {
        let sync = || self.env.force_sync().map_err(|e| self.io_err(e));
        let started = Instant::now();
        let r = match &self.image {
            Some(image) => image.sync_and_copy(&self.env, sync),
            None => sync(),
        };
        let took = started.elapsed();
        metrics::histogram!(crate::metrics::LOG_FSYNC_SECONDS).record(took);
        crate::latency::record(crate::latency::FSYNC, took);
        r
    }

    fn read_txn(&self) -> io::Result<RoTxn<'_, WithoutTls>> {
        self.env.read_txn().map_err(|e| self.io_err(e))
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> io::Result<Option<T>> {
        let rtxn = self.read_txn()?;
        self.get_meta_in(&rtxn, key)
    }

    fn get_meta_in<T: DeserializeOwned>(
        &self,
        rtxn: &RoTxn<'_, WithoutTls>,
        key: &str,
    ) -> io::Result<Option<T>> {
        match self.meta.get(rtxn, key).map_err(|e| self.io_err(e))? {
            None => Ok(None),
            Some(bytes) => decode(bytes).map(Some),
        }
    }

    fn read_range<RB: RangeBounds<u64>>(
        &self,
        range: RB,
        byte_limit: Option<usize>,
    ) -> io::Result<Vec<Entry>> {
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        let rtxn = self.read_txn()?;
        let iter = self
            .logs
            .range(&rtxn, &bounds)
            .map_err(|e| self.io_err(e))?;
        let mut out: Vec<Entry> = Vec::new();
        let mut bytes_read = 0usize;
        for kv in iter {
            let (index, bytes) = kv.map_err(|e| self.io_err(e))?;
            if let Some(limit) = byte_limit {
                if !out.is_empty() && bytes_read + bytes.len() > limit {
                    break;
                }
            }
            bytes_read += bytes.len();
            if let Some(prev) = out.last() {
                // A hole inside the range is a storage corruption, never a
                // tolerated short read.
                if prev.log_id.index + 1 != index {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "raft log hole: index {} followed by {index}",
                            prev.log_id.index
                        ),
                    ));
                }
            }
            let entry: Entry = decode(bytes)?;
            if entry.log_id.index != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "raft log corrupt: key {index} holds entry {}",
                        entry.log_id.index
                    ),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn log_state(&self) -> io::Result<LogState<TypeConfig>> {
        let rtxn = self.read_txn()?;
        let last_purged_log_id: Option<LogId> = self.get_meta_in(&rtxn, META_LAST_PURGED)?;
        let last = self.logs.last(&rtxn).map_err(|e| self.io_err(e))?;
        let last_log_id = match last {
            Some((_, bytes)) => Some(decode::<Entry>(bytes)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    fn stats(&self) -> LogStoreStats {
        let s = &self.stats;
        LogStoreStats {
            fsyncs: s.fsyncs.load(Ordering::Relaxed),
            sync_rounds: s.sync_rounds.load(Ordering::Relaxed),
            sync_nanos: s.sync_nanos.load(Ordering::Relaxed),
            write_txns: s.write_txns.load(Ordering::Relaxed),
            appends: s.appends.load(Ordering::Relaxed),
            entries: s.entries.load(Ordering::Relaxed),
            durable_ops: s.durable_ops.load(Ordering::Relaxed),
        }
    }
}

/// Turn a heed error into an `io::Error`, making `MDB_MAP_FULL` name the knob
/// to raise: an operator seeing raft stop must learn the fix from the message.
fn lmdb_err(e: heed::Error, map_size: usize) -> io::Error {
    match e {
        heed::Error::Mdb(heed::MdbError::MapFull) => io::Error::new(
            io::ErrorKind::StorageFull,
            format!("LMDB map full (lmdb-map-size = {map_size} bytes): raise lmdb-map-size"),
        ),
        heed::Error::Io(e) => e,
        other => io::Error::other(format!("LMDB error: {other}")),
    }
}

/// How the store encodes what it keeps (entries, vote, meta values).
pub(crate) fn encode<T: Serialize + ?Sized>(v: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// An entry of an unknown format version fails here, naming it.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    crate::raft::types::decode(bytes)
}

/// `io::Error` is not `Clone`; one failure is reported to many waiters.
fn clone_err(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// What to tell a waiter once its operation is durable.
enum Durable {
    /// An `append()`: openraft's flush callback.
    Flushed(IOFlushed<TypeConfig>),
    /// `save_vote` & co: the awaiting caller.
    Done(oneshot::Sender<io::Result<()>>),
    /// Nobody waits and nothing needs a sync of its own (`save_committed`):
    /// it becomes durable with the next sync that someone does need.
    Lazy,
}

impl Durable {
    fn complete(self, r: io::Result<()>) {
        match self {
            Durable::Flushed(cb) => cb.io_completed(r),
            Durable::Lazy => {}
            Durable::Done(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// The mutation a request makes inside the writer's transaction.
enum Op {
    /// `(index, postcard(entry))`, encoded on the caller's task.
    Append(Vec<(u64, Vec<u8>)>),
    /// Put `value` under a meta key.
    PutMeta(&'static str, Vec<u8>),
    /// Delete `index..`.
    TruncateFrom(u64),
    /// Record `log_id` as last purged (unless a later one is), then
    /// delete `..=log_id.index`.
    Purge(LogId),
}

struct WriteReq {
    op: Op,
    /// For appends: told as soon as the commit is visible to readers.
    visible: Option<oneshot::Sender<io::Result<()>>>,
    durable: Durable,
}

/// A group of committed requests handed to the syncer.
struct SyncBatch {
    appends: u64,
    entries: u64,
    waiters: Vec<Durable>,
}

/// The raft log store. See the module docs for the write path.
///
/// Dropping it stops the writer and syncer threads after they have finished
/// (and synced) everything already submitted.
pub struct LogStore {
    shared: Arc<Shared>,
    writer_tx: Option<mpsc::Sender<WriteReq>>,
    threads: Vec<JoinHandle<()>>,
    /// Bytes per live entry (see [`LogStore::usage`]).
    ledger: Arc<parking_lot::Mutex<Ledger>>,
}

/// Cloneable, `Send` read handle for replication tasks.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.shared.env.path())
            .field("map_size", &self.shared.map_size)
            .finish_non_exhaustive()
    }
}

impl LogStore {
    /// Open (creating if needed) the log env in `<dir>/raft-log/` and start the
    /// writer and syncer threads.
    pub fn open(dir: &Path, opts: LogStoreOptions) -> Result<LogStore, io::Error> {
        crate::failpoints::setup();
        let path = dir.join(LOG_DIR);
        std::fs::create_dir_all(&path)?;
        let map_size = opts.map_size.max(1).div_ceil(MAP_SIZE_ALIGN) * MAP_SIZE_ALIGN;
        if opts.unsafe_no_fsync {
            tracing::warn!(
                path = %path.display(),
                "raft log store opened with unsafe_no_fsync: acknowledged writes are NOT durable"
            );
        }

        let env = open_env(&path, map_size)?;
        let map_full = |e| lmdb_err(e, map_size);
        let wtxn = env.write_txn().map_err(map_full)?;
        let (logs, meta) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                let logs = opener.create_database::<U64<BigEndian>, Bytes>(wtxn, Some("logs"))?;
                let meta = opener.create_database::<Str, Bytes>(wtxn, Some("meta"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((logs, meta)))
            })
            .map_err(map_full)?
            .unwrap_commit();
        check_format(&env, meta, logs).map_err(|e| match e {
            FormatCheck::Lmdb(e) => map_full(e),
            FormatCheck::Refused(msg) => io::Error::new(io::ErrorKind::InvalidData, msg),
        })?;
        let shared = Arc::new(Shared {
            env,
            logs,
            meta,
            map_size,
            unsafe_no_fsync: opts.unsafe_no_fsync,
            stats: StatsCounters::default(),
            poisoned: Mutex::new(None),
            image: image::DurableImage::detect(dir),
        });
        // The database creation commit was not synced (NO_SYNC); make the
        // env's initial state durable before anyone relies on it, and pin it
        // for the syncer before any other commit can free its pages.
        let pinned = shared.env.clone().static_read_txn().map_err(map_full)?;
        if !opts.unsafe_no_fsync {
            shared.sync()?;
        }

        let (writer_tx, writer_rx) = mpsc::channel::<WriteReq>();
        let (sync_tx, sync_rx) = mpsc::channel::<SyncBatch>();
        let syncer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("raft-log-sync".into())
                .spawn(move || syncer_loop(&shared, sync_rx, pinned))?
        };
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("raft-log-write".into())
                .spawn(move || writer_loop(&shared, writer_rx, sync_tx))?
        };

        let ledger = Arc::new(parking_lot::Mutex::new(load_ledger(&shared)?));
        Ok(LogStore {
            shared,
            writer_tx: Some(writer_tx),
            threads: vec![writer, syncer],
            ledger,
        })
    }

    /// A handle reporting the log's size in bytes and the LMDB pages in use,
    /// for bounding the log by size (docs/log-bounds.md).
    pub fn usage(&self) -> LogUsage {
        LogUsage {
            shared: self.shared.clone(),
            ledger: self.ledger.clone(),
        }
    }

    /// Counters for metrics (fsyncs, appends and entries per sync, ...).
    pub fn stats(&self) -> LogStoreStats {
        self.shared.stats()
    }

    /// The env directory (`<dir>/raft-log`).
    pub fn path(&self) -> PathBuf {
        self.shared.env.path().to_path_buf()
    }

    fn submit(&self, req: WriteReq) -> io::Result<()> {
        let tx = self
            .writer_tx
            .as_ref()
            .expect("writer sender lives until drop");
        tx.send(req)
            .map_err(|_| io::Error::other("raft log writer thread is gone"))
    }

    /// Submit a non-append write and wait until it is durable.
    async fn write_durable(&self, op: Op) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.submit(WriteReq {
            op,
            visible: None,
            durable: Durable::Done(tx),
        })?;
        rx.await
            .map_err(|_| io::Error::other("raft log writer dropped a request"))?
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer drain what is queued and exit;
        // it then drops the syncer's sender, so the syncer syncs the rest and
        // exits too. Nothing submitted is abandoned unsynced.
        drop(self.writer_tx.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The byte ledger of the entries already in the store (one scan at open).
fn load_ledger(shared: &Shared) -> io::Result<Ledger> {
    let rtxn = shared.read_txn()?;
    let mut ledger = Ledger::default();
    for kv in shared.logs.iter(&rtxn).map_err(|e| shared.io_err(e))? {
        let (index, bytes) = kv.map_err(|e| shared.io_err(e))?;
        ledger.appended(index, bytes.len() as u64);
    }
    Ok(ledger)
}

enum FormatCheck {
    Lmdb(heed::Error),
    Refused(String),
}

impl From<heed::Error> for FormatCheck {
    fn from(e: heed::Error) -> Self {
        FormatCheck::Lmdb(e)
    }
}

/// Stamp a new store with [`DATA_FORMAT_VERSION`]; refuse to open one
/// written in another format (or by a build from before the stamp existed)
/// rather than misread it.
fn check_format(
    env: &Env<WithoutTls>,
    meta: Database<'static, Str, Bytes>,
    logs: Database<'static, U64<BigEndian>, Bytes>,
) -> Result<(), FormatCheck> {
    let mut wtxn = env.write_txn()?;
    let found = match meta.get(&wtxn, META_FORMAT)? {
        Some(raw) => Some(decode::<u32>(raw).map_err(|e| FormatCheck::Refused(e.to_string()))?),
        None => None,
    };
    match found {
        Some(DATA_FORMAT_VERSION) => Ok(()),
        Some(v) => Err(FormatCheck::Refused(format!(
            "raft log data format version {v}, but this build reads version {DATA_FORMAT_VERSION} only: \
             start it on an empty data dir and let it rejoin (see CHANGELOG.md)"
        ))),
        None if meta.is_empty(&wtxn)? && logs.is_empty(&wtxn)? => {
            let v = encode(&DATA_FORMAT_VERSION).map_err(|e| FormatCheck::Refused(e.to_string()))?;
            meta.put(&mut wtxn, META_FORMAT, &v)?;
            wtxn.commit()?;
            Ok(())
        }
        None => Err(FormatCheck::Refused(format!(
            "raft log written by an earlier build (no data format version); this build reads \
             version {DATA_FORMAT_VERSION} only: start it on an empty data dir and let it rejoin \
             (see CHANGELOG.md)"
        ))),
    }
}

/// Open the LMDB env. The only `unsafe` in the crate's storage code.
#[allow(unsafe_code)]
fn open_env(path: &Path, map_size: usize) -> io::Result<Env<WithoutTls>> {
    let mut opts = EnvOpenOptions::new().read_txn_without_tls();
    opts.map_size(map_size).max_dbs(2);
    // SAFETY:
    // - `NO_SYNC` is "unsafe" because commits are not durable by themselves;
    //   we never report a write durable before an explicit `force_sync` that
    //   started after its commit (see the module docs), so no acknowledged
    //   write depends on the skipped sync.
    // - `open` is unsafe because the memory map is UB if the file is modified
    //   behind LMDB's back: `<dir>/raft-log` is private to this process (heed
    //   refuses a second open of the same path in-process, LMDB's lock file
    //   coordinates across processes), it lives on a local filesystem, and we
    //   do not use `NO_LOCK`. The only long-lived transaction is the syncer's
    //   pinned reader, replaced at every sync (module docs, "Page reuse").
    unsafe {
        opts.flags(EnvFlags::NO_SYNC);
        opts.open(path)
    }
    .map_err(|e| match e {
        heed::Error::Io(e) => io::Error::new(
            e.kind(),
            format!("opening LMDB env {}: {e}", path.display()),
        ),
        other => io::Error::other(format!("opening LMDB env {}: {other}", path.display())),
    })
}

/// Blocking writer thread: drain queued requests, apply them in one write
/// transaction, commit without fsync, tell appenders their entries are
/// visible, then hand the durability waiters to the syncer.
fn writer_loop(shared: &Shared, rx: mpsc::Receiver<WriteReq>, sync_tx: mpsc::Sender<SyncBatch>) {
    let mut group: Vec<WriteReq> = Vec::new();
    while let Ok(first) = rx.recv() {
        group.push(first);
        while group.len() < MAX_REQUESTS_PER_TXN {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }

        let result = match shared.poison_error() {
            Some(e) => Err(e),
            None => commit_group(shared, &group),
        };

        let mut batch = SyncBatch {
            appends: 0,
            entries: 0,
            waiters: Vec::with_capacity(group.len()),
        };
        match result {
            Ok(()) => {
                shared.stats.write_txns.fetch_add(1, Ordering::Relaxed);
                for req in group.drain(..) {
                    if let Op::Append(ents) = &req.op {
                        batch.appends += 1;
                        batch.entries += ents.len() as u64;
                    }
                    if let Some(v) = req.visible {
                        let _ = v.send(Ok(()));
                    }
                    batch.waiters.push(req.durable);
                }
                // Committed (visible), not synced: a crash here must lose
                // nothing acknowledged.
                crash_point!("log::after_commit", if batch.appends > 0);
                if let Err(mpsc::SendError(batch)) = sync_tx.send(batch) {
                    let e = io::Error::other("raft log syncer thread is gone");
                    shared.poison(&e);
                    for w in batch.waiters {
                        w.complete(Err(clone_err(&e)));
                    }
                }
            }
            Err(e) => {
                shared.poison(&e);
                for req in group.drain(..) {
                    if let Some(v) = req.visible {
                        let _ = v.send(Err(clone_err(&e)));
                    }
                    req.durable.complete(Err(clone_err(&e)));
                }
            }
        }
    }
}

/// Apply `group` in order in one write transaction and commit it (no fsync:
/// the env is `NO_SYNC`). On error the transaction is aborted: none of the
/// group is applied.
fn commit_group(shared: &Shared, group: &[WriteReq]) -> io::Result<()> {
    let err = |e| shared.io_err(e);
    let mut wtxn = shared.env.write_txn().map_err(err)?;
    for req in group {
        match &req.op {
            Op::Append(ents) => {
                for (index, bytes) in ents {
                    shared.logs.put(&mut wtxn, index, bytes).map_err(err)?;
                }
            }
            Op::PutMeta(key, value) => {
                shared.meta.put(&mut wtxn, key, value).map_err(err)?;
            }
            Op::TruncateFrom(from) => {
                shared
                    .logs
                    .delete_range(&mut wtxn, &(*from..))
                    .map_err(err)?;
            }
            Op::Purge(log_id) => {
                // Record the purge point first: `get_log_state` derives the
                // last log id from it once every entry is gone. It never
                // moves backwards.
                let prev: Option<LogId> = match shared.meta.get(&wtxn, META_LAST_PURGED) {
                    Ok(Some(bytes)) => Some(decode(bytes)?),
                    Ok(None) => None,
                    Err(e) => return Err(err(e)),
                };
                if prev.is_none_or(|p| p < *log_id) {
                    shared
                        .meta
                        .put(&mut wtxn, META_LAST_PURGED, &encode(log_id)?)
                        .map_err(err)?;
                }
                shared
                    .logs
                    .delete_range(&mut wtxn, &(..=log_id.index))
                    .map_err(err)?;
            }
        }
    }
    // Crash points: the group's writes are in the txn, nothing is committed.
    crash_point!(
        "log::before_commit",
        if group.iter().any(|r| matches!(r.op, Op::Append(_)))
    );
    // Recording last_purged and deleting the entries are one txn here, so
    // "during purge" is: both done in the txn, the txn not yet committed.
    crash_point!(
        "log::during_purge",
        if group.iter().any(|r| matches!(r.op, Op::Purge(_)))
    );
    wtxn.commit().map_err(err)
}

/// Blocking syncer thread: drain every committed batch, fsync once, then
/// complete all their waiters.
///
/// `pinned` is a read transaction on the state the last completed sync made
/// durable (at start: the state `open` synced); it is replaced after every
/// successful sync.
fn syncer_loop(
    shared: &Shared,
    rx: mpsc::Receiver<SyncBatch>,
    mut pinned: RoTxn<'static, WithoutTls>,
) {
    let mut waiters: Vec<Durable> = Vec::new();
    while let Ok(first) = rx.recv() {
        let (mut appends, mut entries) = (first.appends, first.entries);
        waiters.extend(first.waiters);
        while let Ok(b) = rx.try_recv() {
            appends += b.appends;
            entries += b.entries;
            waiters.extend(b.waiters);
        }

        // Every batch drained above was committed before it was sent, so
        // this fsync (started now) covers all of them. Batches holding only
        // lazy writes (the advisory committed index) wait for the next sync
        // somebody needs, instead of costing a sync of their own.
        if waiters.iter().all(|w| matches!(w, Durable::Lazy)) {
            waiters.clear();
            continue;
        }
        // Pin the newest committed state (which includes every batch drained
        // above) *before* syncing: once the sync below completes it is the
        // state a power loss falls back to at worst, so its pages must stay
        // untouched until the next sync completes (module docs, "Page
        // reuse").
        let next_pin = shared.env.clone().static_read_txn();
        // Test hook: park here while `<raft-log>/hold-log-sync` exists.
        crate::failpoints::hold(shared.env.path(), "log-sync");
        crash_point!("log::before_sync");
        let result = if shared.unsafe_no_fsync {
            Ok(())
        } else {
            let t = Instant::now();
            let r = shared.sync();
            let s = &shared.stats;
            s.fsyncs.fetch_add(1, Ordering::Relaxed);
            s.sync_nanos
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            r
        };
        let result = result.and_then(|()| {
            next_pin.map_err(|e| shared.io_err(e)).map(|txn| {
                // Only now may the pages of the previously pinned state be
                // reused: the state pinned in its place is durable.
                pinned = txn;
            })
        });
        // A sync that succeeds after an earlier failure proves nothing.
        let result = match result {
            Err(e) => {
                shared.poison(&e);
                Err(e)
            }
            Ok(()) => match shared.poison_error() {
                Some(e) => Err(e),
                None => Ok(()),
            },
        };

        match &result {
            Ok(()) => {
                // Synced, but nobody has been told yet.
                crash_point!("log::after_sync");
                let s = &shared.stats;
                s.sync_rounds.fetch_add(1, Ordering::Relaxed);
                s.appends.fetch_add(appends, Ordering::Relaxed);
                s.entries.fetch_add(entries, Ordering::Relaxed);
                s.durable_ops
                    .fetch_add(waiters.len() as u64, Ordering::Relaxed);
                for w in waiters.drain(..) {
                    w.complete(Ok(()));
                }
            }
            Err(e) => {
                for w in waiters.drain(..) {
                    w.complete(Err(clone_err(e)));
                }
            }
        }
    }
}

/// The store and its read handles read the same way (LMDB read txns on the
/// shared env), so one body serves both.
macro_rules! impl_log_reader {
    ($t:ty) => {
        impl RaftLogReader<TypeConfig> for $t {
            async fn try_get_log_entries<
                RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend,
            >(
                &mut self,
                range: RB,
            ) -> Result<Vec<Entry>, io::Error> {
                self.shared.read_range(range, None)
            }

            async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
                self.shared.get_meta(META_VOTE)
            }

            async fn limited_get_log_entries(
                &mut self,
                start: u64,
                end: u64,
            ) -> Result<Vec<Entry>, io::Error> {
                self.shared.read_range(start..end, Some(LIMITED_READ_BYTES))
            }
        }
    };
}

impl_log_reader!(LogReader);
impl_log_reader!(LogStore);

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        self.shared.log_state()
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.write_durable(Op::PutMeta(META_VOTE, encode(vote)?))
            .await?;
        // The vote is on disk; openraft has not been told.
        crash_point!("log::after_save_vote");
        Ok(())
    }

    /// Waits for the commit to be visible, not for the fsync: the committed
    /// index is advisory (openraft re-learns it from the leader), so losing
    /// the newest value in a crash is safe, while waiting for a second fsync
    /// per commit round would double write latency.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let (visible, seen) = oneshot::channel();
        self.submit(WriteReq {
            op: Op::PutMeta(META_COMMITTED, encode(&committed)?),
            visible: Some(visible),
            durable: Durable::Lazy,
        })?;
        seen.await
            .map_err(|_| io::Error::other("raft log writer dropped a request"))?
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        // Stored as postcard(Option<LogId>) so `save_committed(None)` round-trips.
        Ok(self
            .shared
            .get_meta::<Option<LogId>>(META_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Encode here, on the caller's task, so the single writer thread only
        // copies bytes into LMDB.
        let ents = entries
            .into_iter()
            .map(|e| Ok((e.log_id.index, encode(&e)?)))
            .collect::<io::Result<Vec<_>>>()?;
        let sizes: Vec<(u64, u64)> = ents.iter().map(|(i, b)| (*i, b.len() as u64)).collect();
        let (tx, rx) = oneshot::channel();
        self.submit(WriteReq {
            op: Op::Append(ents),
            visible: Some(tx),
            durable: Durable::Flushed(callback),
        })?;
        // openraft requires the entries to be readable when we return; the
        // callback, fired by the syncer, is what says they are on disk.
        rx.await
            .map_err(|_| io::Error::other("raft log writer dropped an append"))??;
        let mut ledger = self.ledger.lock();
        for (index, len) in sizes {
            ledger.appended(index, len);
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.write_durable(Op::TruncateFrom(from)).await?;
        self.ledger.lock().truncated_from(from);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.write_durable(Op::Purge(log_id)).await?;
        self.ledger.lock().purged_upto(log_id.index);
        Ok(())
    }
}

mod image;

/// Tests of the store's own guarantees (the openraft conformance suite lives
/// in `tests/log_store_suite.rs`).
#[cfg(test)]
mod tests;
