//! The state machine: the keyspace plus what raft needs to know about it
//! (last applied log id, last membership, the replicated clock).
//!
//! * **Batched apply**: `apply` drains every entry that is already available
//!   from openraft's stream, applies all of them under ONE write lock, and
//!   only then answers each waiting client. Lock traffic per entry would
//!   otherwise dominate under pipelined load.
//! * **Replicated clock**: each `Proposal` carries the leader's `now_ms` (its
//!   monotonic estimate of the replicated clock, `raft::clock`); the state
//!   machine uses `max(previous, now_ms)` so time never goes backwards
//!   across leader changes and every replica expires keys at the same index,
//!   and tells this node's `Clock` what it applied.
//! * **Snapshots** are files: `snapshot-<term>-<index>.snap` written as temp
//!   file, fsync, rename, fsync dir. Building one clones the keyspace under a
//!   read lock (reference-count bumps, not data copies) and serializes the
//!   clone on a blocking thread, so writers are stalled only for the clone.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::failpoints::crash_point;
use crate::keyspace::Keyspace;
use crate::raft::clock::Clock;
use crate::raft::types::{Applied, LogId, SnapshotMeta, StoredMembership, TypeConfig};

const SNAPSHOT_MAGIC: &[u8; 8] = b"RCSNAP01";
/// A snapshot header (meta) larger than this is corrupt, not big.
const MAX_HEADER_LEN: u32 = 64 * 1024 * 1024;

/// Everything the state machine holds; shared with the read path.
#[derive(Debug, Clone, Default)]
pub struct SmData {
    pub keyspace: Keyspace,
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    /// The replicated clock: the greatest `now_ms` applied so far.
    pub clock_ms: u64,
}

/// What is serialized in front of the keyspace in a snapshot file.
#[derive(Debug, Serialize, Deserialize)]
struct SnapshotHeader {
    meta: SnapshotMeta,
    clock_ms: u64,
}

/// A snapshot on disk. Readers use positional reads (`read_at`) on the
/// shared handle so concurrent senders never disturb each other's offset,
/// and an unlinked old snapshot stays readable while a send is in flight.
#[derive(Debug, Clone)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub file: Arc<File>,
}

impl SnapshotFile {
    pub fn open(path: PathBuf) -> io::Result<SnapshotFile> {
        let file = Arc::new(File::open(&path)?);
        Ok(SnapshotFile { path, file })
    }

    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// A fresh sequential reader over the whole file.
    pub fn reader(&self) -> io::Result<impl Read> {
        let mut f = File::open(&self.path).or_else(|_| self.file.try_clone())?;
        f.seek(SeekFrom::Start(0))?;
        Ok(BufReader::with_capacity(1 << 20, f))
    }

    /// Read up to `buf.len()` bytes at `offset` without moving any cursor.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        self.file.read_at(buf, offset)
    }
}

#[derive(Debug)]
pub struct StateMachine {
    data: Arc<RwLock<SmData>>,
    dir: PathBuf,
    current: CurrentSnapshot,
    /// This node's estimate of the replicated clock, pulled up by every
    /// entry and snapshot applied.
    clock: Arc<Clock>,
}

/// The newest durable snapshot, shared by the state machine and builders.
type CurrentSnapshot = Arc<parking_lot::Mutex<Option<(SnapshotMeta, SnapshotFile)>>>;

impl StateMachine {
    /// Open the state machine in `dir` (created if missing), loading the
    /// newest complete snapshot if there is one. Leftover temp files from a
    /// crash mid-snapshot are removed.
    /// Nothing here depends on this node's configuration: the state is a
    /// function of the snapshot and the log alone.
    pub fn open(dir: &Path, clock: Arc<Clock>) -> io::Result<StateMachine> {
        crate::failpoints::setup();
        fs::create_dir_all(dir)?;
        let mut newest: Option<(u64, u64, PathBuf)> = None;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            if let Some((term, index)) = parse_snapshot_name(name) {
                if newest
                    .as_ref()
                    .is_none_or(|(t, i, _)| (term, index) > (*t, *i))
                {
                    newest = Some((term, index, path));
                }
            }
        }
        let sm = StateMachine {
            data: Arc::new(RwLock::new(SmData {
                keyspace: Keyspace::new(),
                ..SmData::default()
            })),
            dir: dir.to_path_buf(),
            clock,
            current: CurrentSnapshot::default(),
        };
        if let Some((_, _, path)) = newest {
            let file = SnapshotFile::open(path)?;
            let (header, keyspace) = read_snapshot(&file)?;
            *sm.data.write() = SmData {
                keyspace,
                last_applied: header.meta.last_log_id,
                last_membership: header.meta.last_membership.clone(),
                clock_ms: header.clock_ms,
            };
            sm.clock.observe(header.clock_ms);
            make_current(&sm.dir, &sm.current, header.meta, file)?;
        }
        Ok(sm)
    }

    /// The shared data, for the read path.
    pub fn data(&self) -> Arc<RwLock<SmData>> {
        self.data.clone()
    }
}

/// Make `(meta, file)` the current snapshot unless the current one is at
/// least as new, and delete the snapshot files older than whatever is
/// current afterwards. Returns the current snapshot.
///
/// openraft builds snapshots in a task of its own, so a build can finish
/// after a newer snapshot was installed from the leader (and the log purged
/// up to it): the older build must then be discarded, never made current,
/// or a restart would load it and find the log entries after it purged. The
/// comparison, the swap and the clean-up happen under the one lock, so
/// concurrent builds and installs see each other's results in order; the
/// clean-up tolerates files already gone.
fn make_current(
    dir: &Path,
    current: &CurrentSnapshot,
    meta: SnapshotMeta,
    file: SnapshotFile,
) -> io::Result<(SnapshotMeta, SnapshotFile)> {
    let mut cur = current.lock();
    if let Some((cur_meta, cur_file)) = cur.as_ref() {
        if cur_meta.last_log_id >= meta.last_log_id {
            tracing::info!(
                discarded = ?meta.last_log_id,
                current = ?cur_meta.last_log_id,
                "snapshot superseded by a newer one; discarding it"
            );
            // Same log id means same file name: the file at that path is
            // an equivalent snapshot, keep it.
            if file.path != cur_file.path {
                remove_if_present(&file.path)?;
            }
            return Ok((cur_meta.clone(), cur_file.clone()));
        }
    }
    *cur = Some((meta.clone(), file.clone()));
    remove_older_snapshots(dir, &meta)?;
    Ok((meta, file))
}

/// Delete every snapshot file older than `keep` (senders holding an old
/// file's handle can still read it: unlinking does not truncate). Files
/// newer than `keep` belong to a build or install in progress.
fn remove_older_snapshots(dir: &Path, keep: &SnapshotMeta) -> io::Result<()> {
    let keep = snapshot_order(keep);
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if parse_snapshot_name(name).is_some_and(|o| o < keep) {
            remove_if_present(&path)?;
        }
    }
    Ok(())
}

/// `fs::remove_file`, except that a file already gone is not an error.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `(term, index)` of a snapshot, the order of its file name.
fn snapshot_order(meta: &SnapshotMeta) -> (u64, u64) {
    meta.last_log_id
        .map_or((0, 0), |id| (id.committed_leader_id().term, id.index))
}

fn snapshot_name(meta: &SnapshotMeta) -> String {
    let (term, index) = snapshot_order(meta);
    format!("snapshot-{term}-{index}.snap")
}

fn parse_snapshot_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("snapshot-")?.strip_suffix(".snap")?;
    let (term, index) = rest.split_once('-')?;
    Some((term.parse().ok()?, index.parse().ok()?))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Parse a snapshot file: magic, header length, postcard header, keyspace.
pub fn read_snapshot(file: &SnapshotFile) -> io::Result<(SnapshotHeaderView, Keyspace)> {
    let mut r = file.reader()?;
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != SNAPSHOT_MAGIC {
        return Err(invalid("not a raftcache snapshot (bad magic)"));
    }
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_HEADER_LEN {
        return Err(invalid("snapshot header too large"));
    }
    let mut header = Vec::new();
    r.by_ref().take(u64::from(len)).read_to_end(&mut header)?;
    if header.len() != len as usize {
        return Err(invalid("truncated snapshot header"));
    }
    let header: SnapshotHeader =
        postcard::from_bytes(&header).map_err(|e| invalid(format!("snapshot header: {e}")))?;
    let keyspace = Keyspace::read_snapshot(r)?;
    Ok((
        SnapshotHeaderView {
            meta: header.meta,
            clock_ms: header.clock_ms,
        },
        keyspace,
    ))
}

/// The decoded header of a snapshot file.
#[derive(Debug)]
pub struct SnapshotHeaderView {
    pub meta: SnapshotMeta,
    pub clock_ms: u64,
}

/// What a snapshot file holds before the keyspace: magic, header length
/// (u32 little-endian), postcard header.
pub(crate) fn snapshot_prefix(meta: &SnapshotMeta, clock_ms: u64) -> io::Result<Vec<u8>> {
    let header = postcard::to_stdvec(&SnapshotHeader {
        meta: meta.clone(),
        clock_ms,
    })
    .map_err(|e| invalid(format!("encode snapshot header: {e}")))?;
    let mut out = Vec::with_capacity(SNAPSHOT_MAGIC.len() + 4 + header.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    Ok(out)
}

/// Write `keyspace` as a snapshot into `dir` durably; returns the file.
fn write_snapshot(
    dir: &Path,
    meta: &SnapshotMeta,
    clock_ms: u64,
    keyspace: &Keyspace,
) -> io::Result<SnapshotFile> {
    let final_path = dir.join(snapshot_name(meta));
    let tmp_path = dir.join(format!("{}.tmp", snapshot_name(meta)));
    {
        let file = File::create(&tmp_path)?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        w.write_all(&snapshot_prefix(meta, clock_ms)?)?;
        keyspace.write_snapshot(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    // The temp file is complete and on disk, not yet renamed.
    crash_point!("snapshot::before_rename");
    fs::rename(&tmp_path, &final_path)?;
    // Renamed, the directory not yet fsynced.
    crash_point!("snapshot::after_rename");
    File::open(dir)?.sync_all()?;
    SnapshotFile::open(final_path)
}

/// Builds a snapshot from a point-in-time clone of the state.
pub struct SnapshotBuilder {
    data: Arc<RwLock<SmData>>,
    dir: PathBuf,
    current: CurrentSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(
        &mut self,
    ) -> Result<openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
        let started = std::time::Instant::now();
        let data = self.data.clone();
        let dir = self.dir.clone();
        let current = self.current.clone();
        // Everything, the clone included, on a blocking thread: cloning a
        // big keyspace takes a while and must not occupy an async worker
        // (with 2 cores, that is half the runtime carrying heartbeats).
        let (meta, file) = tokio::task::spawn_blocking(move || {
            // The clone is the only part done under the lock.
            let snapshot = data.read().clone();
            let cloned_in = started.elapsed();
            let meta = SnapshotMeta {
                last_log_id: snapshot.last_applied,
                last_membership: snapshot.last_membership.clone(),
            };
            let file = write_snapshot(&dir, &meta, snapshot.clock_ms, &snapshot.keyspace)?;
            tracing::info!(
                last_log_id = ?meta.last_log_id,
                cloned_ms = cloned_in.as_millis() as u64,
                total_ms = started.elapsed().as_millis() as u64,
                bytes = file.len().unwrap_or(0),
                "snapshot built"
            );
            // Test hook: a build parked here while a newer snapshot is
            // installed is the race `make_current` resolves.
            crate::failpoints::hold(&dir, "snapshot-build");
            // If a newer snapshot became current meanwhile, that one is
            // returned (openraft ignores a snapshot not newer than its own).
            make_current(&dir, &current, meta, file)
        })
        .await
        .map_err(io::Error::other)??;
        metrics::histogram!(crate::metrics::SNAPSHOT_BUILD_SECONDS)
            .record(started.elapsed().as_secs_f64());
        crate::metrics::SNAPSHOTS_BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(openraft::Snapshot {
            meta,
            snapshot: file,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let d = self.data.read();
        Ok((d.last_applied, d.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        let mut batch = Vec::new();
        let mut replies = Vec::new();
        loop {
            // Wait for one entry, then take everything else already there.
            match entries.next().await {
                None => return Ok(()),
                Some(item) => batch.push(item?),
            }
            while let Some(Some(item)) = entries.next().now_or_never() {
                batch.push(item?);
            }
            let started = std::time::Instant::now();
            {
                let mut d = self.data.write();
                for (entry, responder) in batch.drain(..) {
                    d.last_applied = Some(entry.log_id);
                    let applied = match entry.payload {
                        EntryPayload::Blank => Applied::default(),
                        EntryPayload::Normal(p) => {
                            d.clock_ms = d.clock_ms.max(p.now_ms);
                            let now = d.clock_ms;
                            self.clock.observe(now);
                            Applied {
                                outcomes: p
                                    .ops
                                    .iter()
                                    .map(|op| d.keyspace.apply(op, now, p.limits))
                                    .collect(),
                            }
                        }
                        EntryPayload::Membership(m) => {
                            d.last_membership = StoredMembership::new(Some(entry.log_id), m);
                            Applied::default()
                        }
                    };
                    if let Some(r) = responder {
                        replies.push((r, applied));
                    }
                }
            }
            crate::latency::record(crate::latency::APPLY, started.elapsed());
            metrics::counter!(crate::metrics::APPLIED_BATCHES).increment(1);
            metrics::histogram!(crate::metrics::APPLY_SECONDS).record(started.elapsed());
            for (r, applied) in replies.drain(..) {
                r.send(applied);
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            data: self.data.clone(),
            dir: self.dir.clone(),
            current: self.current.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let dir = self.dir.clone();
        let expected = meta.clone();
        // Decoding, the rename and the directory fsync are blocking file
        // work: off the async runtime, so heartbeats keep flowing.
        let (header, keyspace, final_path) = tokio::task::spawn_blocking(move || {
            let (header, keyspace) = read_snapshot(&snapshot)?;
            if header.meta.last_log_id != expected.last_log_id {
                return Err(invalid("snapshot file does not match its meta"));
            }
            // Make the received file our current snapshot durably before
            // replacing the state, so a crash right after still restarts
            // from it.
            let final_path = dir.join(snapshot_name(&expected));
            if snapshot.path != final_path {
                fs::rename(&snapshot.path, &final_path)?;
                File::open(&dir)?.sync_all()?;
            }
            Ok((header, keyspace, final_path))
        })
        .await
        .map_err(io::Error::other)??;
        // The received file is our durable current snapshot; the in-memory
        // state (and the log) do not know it yet.
        crash_point!("snapshot::install_before_swap");
        *self.data.write() = SmData {
            keyspace,
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            clock_ms: header.clock_ms,
        };
        self.clock.observe(header.clock_ms);
        let file = SnapshotFile::open(final_path)?;
        make_current(&self.dir, &self.current, meta.clone(), file)?;
        crate::metrics::SNAPSHOTS_INSTALLED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotFile>>, io::Error>
    {
        Ok(self
            .current
            .lock()
            .as_ref()
            .map(|(meta, file)| openraft::Snapshot {
                meta: meta.clone(),
                snapshot: file.clone(),
            }))
    }
}

#[cfg(test)]
mod tests;
