use std::path::Path;

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::type_config::alias::OneshotReceiverOf;
use openraft::type_config::TypeConfigExt;
use openraft::vote::RaftLeaderIdExt;
use openraft::RaftTypeConfig;
use tokio::sync::oneshot;

type FlushRx = OneshotReceiverOf<TypeConfig, std::io::Result<()>>;

use super::{LogStore, LogStoreOptions};
use crate::keyspace::{SetCond, Ttl, WriteOp};
use crate::raft::types::{Entry, LogId, Proposal, TypeConfig, Vote};

type LeaderId = <TypeConfig as RaftTypeConfig>::LeaderId;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new_committed(term, 1), index)
}

fn entry(term: u64, index: u64, value_len: usize) -> Entry {
    let op = WriteOp::Set {
        key: Bytes::from(format!("k{index}")),
        value: Bytes::from(vec![b'v'; value_len]),
        cond: SetCond::Always,
        ttl: Ttl::Clear,
        get: false,
    };
    Entry::new_normal(
        log_id(term, index),
        Proposal {
            now_ms: 1_700_000_000_000 + index,
            limits: Default::default(),
            ops: vec![op],
        },
    )
}

fn open(dir: &Path) -> LogStore {
    LogStore::open(
        dir,
        LogStoreOptions {
            map_size: 32 << 20,
            unsafe_no_fsync: false,
        },
    )
    .expect("open log store")
}

/// Append and return a receiver that resolves when the flush callback fires.
async fn append_nowait(store: &mut LogStore, entries: Vec<Entry>) -> std::io::Result<FlushRx> {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    Ok(rx)
}

async fn append_durable(store: &mut LogStore, entries: Vec<Entry>) {
    let rx = append_nowait(store, entries).await.expect("append");
    rx.await.expect("callback fired").expect("flushed ok");
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new(7, 3);
    {
        let mut s = open(dir.path());
        append_durable(&mut s, (1..=10).map(|i| entry(2, i, 16)).collect()).await;
        s.save_vote(&vote).await.unwrap();
        s.save_committed(Some(log_id(2, 8))).await.unwrap();
    }
    let mut s = open(dir.path());
    let state = s.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, None);
    assert_eq!(state.last_log_id, Some(log_id(2, 10)));
    assert_eq!(s.read_vote().await.unwrap(), Some(vote));
    assert_eq!(s.read_committed().await.unwrap(), Some(log_id(2, 8)));
    let got = s.try_get_log_entries(1..=10).await.unwrap();
    let want: Vec<Entry> = (1..=10).map(|i| entry(2, i, 16)).collect();
    assert_eq!(got, want);

    // `save_committed(None)` must round-trip too.
    s.save_committed(None).await.unwrap();
    drop(s);
    let mut s = open(dir.path());
    assert_eq!(s.read_committed().await.unwrap(), None);
}

#[tokio::test]
async fn append_is_readable_on_return_before_callback() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let mut reader = s.get_log_reader().await;
    let rx = append_nowait(&mut s, vec![entry(1, 1, 8), entry(1, 2, 8)])
        .await
        .unwrap();
    // Readable right away, whether or not the fsync has finished yet.
    assert_eq!(reader.try_get_log_entries(1..3).await.unwrap().len(), 2);
    rx.await.unwrap().unwrap();
}

#[tokio::test]
async fn purge_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open(dir.path());
        append_durable(&mut s, (1..=10).map(|i| entry(1, i, 8)).collect()).await;
        s.purge(log_id(1, 4)).await.unwrap();
    }
    {
        let mut s = open(dir.path());
        let state = s.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 4)));
        assert_eq!(state.last_log_id, Some(log_id(1, 10)));
        let got = s.try_get_log_entries(0..100).await.unwrap();
        assert_eq!(got.first().map(|e| e.index()), Some(5));
        assert_eq!(got.len(), 6);

        // Purge everything: last log id falls back to the purge point.
        s.purge(log_id(1, 10)).await.unwrap();
    }
    let mut s = open(dir.path());
    let state = s.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 10)));
    assert_eq!(state.last_log_id, Some(log_id(1, 10)));
    assert!(s.try_get_log_entries(0..100).await.unwrap().is_empty());
}

#[tokio::test]
async fn truncate_after_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open(dir.path());
        append_durable(&mut s, (1..=10).map(|i| entry(1, i, 8)).collect()).await;
        s.truncate_after(Some(log_id(1, 6))).await.unwrap();
        // A new leader's entries replace the truncated tail.
        append_durable(&mut s, vec![entry(2, 7, 8)]).await;
    }
    let mut s = open(dir.path());
    let state = s.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 7)));
    let got = s.try_get_log_entries(..).await.unwrap();
    assert_eq!(got.len(), 7);
    assert_eq!(got[6], entry(2, 7, 8));
}

/// openraft's pattern: `append()` returns as soon as the entries are visible
/// and the next append follows at once; the flush callbacks arrive later. The
/// syncer must fold many appends into one fsync, and fire every callback.
#[tokio::test]
async fn group_commit_folds_appends_into_fewer_syncs() {
    const N: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let before = s.stats();
    let mut pending = Vec::with_capacity(N as usize);
    for i in 1..=N {
        pending.push(append_nowait(&mut s, vec![entry(1, i, 64)]).await.unwrap());
    }
    for rx in pending {
        rx.await.expect("every callback fires").expect("flushed ok");
    }
    let st = s.stats();
    let appends = st.appends - before.appends;
    let fsyncs = st.fsyncs - before.fsyncs;
    eprintln!(
        "group commit: {appends} appends, {fsyncs} fsyncs, {:.2} appends/fsync, {} write txns, \
         avg fsync {:.0} us",
        appends as f64 / fsyncs.max(1) as f64,
        st.write_txns - before.write_txns,
        st.sync_nanos as f64 / st.fsyncs.max(1) as f64 / 1000.0,
    );
    assert_eq!(appends, N);
    assert_eq!(st.entries - before.entries, N);
    assert!(fsyncs >= 1);
    assert!(
        fsyncs < appends,
        "group commit did not group: {fsyncs} fsyncs for {appends} appends"
    );
    assert_eq!(s.try_get_log_entries(..).await.unwrap().len(), N as usize);
}

/// Appends submitted concurrently (several producers at once) are also
/// committed in shared transactions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_share_transactions_and_syncs() {
    const N: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    // Queue everything before the writer can finish its first transaction:
    // this is what a burst from many producers looks like to the writer.
    let mut rxs = Vec::with_capacity(N);
    for i in 1..=N as u64 {
        let (vis_tx, _vis_rx) = oneshot::channel();
        let (tx, rx) = TypeConfig::oneshot();
        let bytes = super::encode(&entry(1, i, 32)).unwrap();
        s.submit(super::WriteReq {
            op: super::Op::Append(vec![(i, bytes)]),
            visible: Some(vis_tx),
            durable: super::Durable::Flushed(IOFlushed::signal(tx)),
        })
        .unwrap();
        rxs.push(rx);
    }
    for rx in rxs {
        rx.await.unwrap().unwrap();
    }
    let st = s.stats();
    eprintln!(
        "burst: {} appends, {} write txns, {} fsyncs",
        st.appends, st.write_txns, st.fsyncs
    );
    assert_eq!(st.appends, N as u64);
    assert!(st.write_txns < N as u64);
    assert!(st.fsyncs < N as u64);
}

#[tokio::test]
async fn map_full_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest map we allow: 64 KiB.
    let mut s = LogStore::open(
        dir.path(),
        LogStoreOptions {
            map_size: 1,
            unsafe_no_fsync: false,
        },
    )
    .unwrap();
    let mut err = None;
    for i in 1..=64 {
        let (tx, rx) = TypeConfig::oneshot();
        match s
            .append(vec![entry(1, i, 8 << 10)], IOFlushed::signal(tx))
            .await
        {
            Ok(()) => rx.await.unwrap().unwrap(),
            Err(e) => {
                // The callback reports the same failure.
                assert!(rx.await.unwrap().is_err());
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("a 64 KiB map must fill up");
    let msg = err.to_string();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    assert!(
        msg.contains("LMDB map full (lmdb-map-size = 65536 bytes): raise lmdb-map-size"),
        "{msg}"
    );

    // The store is poisoned: nothing after the failure may succeed (no holes).
    let e = s.save_vote(&Vote::new(1, 1)).await.unwrap_err();
    assert!(e.to_string().contains("LMDB map full"), "{e}");
}

#[tokio::test]
async fn limited_get_log_entries_caps_payload_but_never_returns_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    // 3 entries of ~3 MiB each: the 4 MiB cap admits one at a time.
    append_durable(&mut s, (1..=3).map(|i| entry(1, i, 3 << 20)).collect()).await;
    let mut r = s.get_log_reader().await;
    let got = r.limited_get_log_entries(1, 4).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].index(), 1);
    assert_eq!(r.try_get_log_entries(1..4).await.unwrap().len(), 3);
}

#[tokio::test]
async fn unsafe_no_fsync_never_fsyncs_but_still_acks() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LogStore::open(
        dir.path(),
        LogStoreOptions {
            map_size: 1 << 20,
            unsafe_no_fsync: true,
        },
    )
    .unwrap();
    append_durable(&mut s, vec![entry(1, 1, 8)]).await;
    s.save_vote(&Vote::new(1, 1)).await.unwrap();
    let st = s.stats();
    assert_eq!(st.fsyncs, 0);
    assert_eq!(st.appends, 1);
}

/// Tests that park the syncer with the `log-sync` hold point
/// (`failpoints` feature): what must not happen before the sync completes.
#[cfg(feature = "failpoints")]
mod held_sync {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::*;

    /// The gate of the `log-sync` hold point of the store opened in `dir`.
    struct Gate {
        gate: PathBuf,
        held: PathBuf,
    }

    impl Gate {
        fn close(dir: &Path) -> Gate {
            let env = dir.join(super::super::LOG_DIR);
            let g = Gate {
                gate: env.join("hold-log-sync"),
                held: env.join("held-log-sync"),
            };
            std::fs::write(&g.gate, b"").unwrap();
            g
        }

        /// Wait until the syncer is parked at the gate.
        async fn wait_held(&self) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !self.held.exists() {
                assert!(
                    Instant::now() < deadline,
                    "the syncer never reached the gate"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }

        fn open(&self) {
            let _ = std::fs::remove_file(&self.gate);
        }
    }

    impl Drop for Gate {
        /// Never leave a syncer parked (the store's drop would wait for it).
        fn drop(&mut self) {
            self.open();
        }
    }

    /// While the forced sync is held: `append` returns (its entries are
    /// readable) but its flush callback does not fire, and `save_vote` does
    /// not return. Both complete once the sync is let through.
    #[tokio::test]
    async fn nothing_is_acknowledged_while_the_sync_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let gate = Gate::close(dir.path());

        let mut flushed = append_nowait(&mut s, vec![entry(1, 1, 8)]).await.unwrap();
        gate.wait_held().await;
        let vote = Vote::new(3, 1);
        {
            let saving = s.save_vote(&vote);
            tokio::pin!(saving);
            // Observation window: the syncer is parked, so neither may
            // complete.
            let window = Duration::from_millis(500);
            assert!(
                tokio::time::timeout(window, &mut saving).await.is_err(),
                "save_vote returned while the sync was held"
            );
            assert!(
                tokio::time::timeout(window, &mut flushed).await.is_err(),
                "an append callback fired while the sync was held"
            );
            gate.open();
            saving.await.expect("vote saved once the sync ran");
        }
        flushed
            .await
            .unwrap()
            .expect("append flushed once the sync ran");
        drop(s);
        let mut s = open(dir.path());
        assert_eq!(s.read_vote().await.unwrap(), Some(vote));
    }

    /// Item 7 (group commit stays crash-safe): while the syncer is held,
    /// the writer keeps committing (`NO_SYNC`), freeing and reallocating
    /// pages. A power loss at that moment can leave the disk with the meta
    /// pages of the last *synced* state and every later data page written
    /// back. Build exactly that file (meta pages from a copy taken at the
    /// sync, everything else from the live file) and check the synced
    /// entries are intact: they are only if no page of the synced tree was
    /// reused, which the syncer's pinned reader guarantees.
    #[tokio::test]
    async fn synced_tree_survives_unsynced_page_reuse() {
        const PAGE: usize = 4096; // LMDB's page size is the OS page size.
        let dir = tempfile::tempdir().unwrap();
        let env_dir = dir.path().join(super::super::LOG_DIR);
        let mut s = open(dir.path());
        let synced: Vec<Entry> = (1..=200).map(|i| entry(1, i, 300)).collect();
        append_durable(&mut s, synced.clone()).await;
        // The syncer and writer are idle: the file is the synced state.
        let at_sync = std::fs::read(env_dir.join("data.mdb")).unwrap();

        let gate = Gate::close(dir.path());
        let mut pending = Vec::new();
        for i in 201..=1200 {
            pending.push(append_nowait(&mut s, vec![entry(1, i, 300)]).await.unwrap());
        }
        gate.wait_held().await;
        // Purging frees the synced tree's leaves; a truncate rewrites the
        // tail: both make the writer reallocate freed pages. Each returns
        // once committed is not enough (they wait for the sync), so submit
        // and stop waiting.
        let _ = tokio::time::timeout(Duration::from_millis(200), s.purge(log_id(1, 150))).await;
        for i in 1201..=1600 {
            pending.push(append_nowait(&mut s, vec![entry(1, i, 300)]).await.unwrap());
        }

        let mut power_lost = std::fs::read(env_dir.join("data.mdb")).unwrap();
        power_lost[..2 * PAGE].copy_from_slice(&at_sync[..2 * PAGE]);
        gate.open();
        for p in pending {
            p.await.unwrap().unwrap();
        }
        drop(s);

        let restored = tempfile::tempdir().unwrap();
        let restored_env = restored.path().join(super::super::LOG_DIR);
        std::fs::create_dir_all(&restored_env).unwrap();
        std::fs::write(restored_env.join("data.mdb"), &power_lost).unwrap();
        let mut r = open(restored.path());
        let got = r.try_get_log_entries(1..=200).await;
        let intact = got.as_ref().is_ok_and(|g| *g == synced);
        assert!(
            intact,
            "entries synced before the power loss were corrupted by page reuse: read {:?}",
            got.map(|g| g.len())
        );
    }
}

/// Write `value` under the meta key `key` of a closed store's env.
fn put_meta_raw(dir: &Path, key: &str, value: Option<&[u8]>) {
    let store = open(dir);
    let mut wtxn = store.shared.env.write_txn().unwrap();
    match value {
        Some(v) => store.shared.meta.put(&mut wtxn, key, v).unwrap(),
        None => {
            store.shared.meta.delete(&mut wtxn, key).unwrap();
        }
    }
    wtxn.commit().unwrap();
    store.shared.sync().unwrap();
}

fn open_err(dir: &Path) -> String {
    LogStore::open(
        dir,
        LogStoreOptions {
            map_size: 32 << 20,
            unsafe_no_fsync: false,
        },
    )
    .map(drop)
    .expect_err("the store must refuse to open")
    .to_string()
}

/// A new data dir is stamped with the data format version; a store of
/// another version, or one written before the stamp existed, is refused
/// on open with both versions named, never misread.
#[tokio::test]
async fn data_format_version_is_stamped_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let mut store = open(dir);
        append_durable(&mut store, vec![entry(1, 1, 8)]).await;
    }
    drop(open(dir)); // the same version opens again
    let other = super::encode(&(super::DATA_FORMAT_VERSION + 1)).unwrap();
    put_meta_raw(dir, super::META_FORMAT, Some(&other));
    let err = open_err(dir);
    let want = format!(
        "raft log data format version {}, but this build reads version {} only",
        super::DATA_FORMAT_VERSION + 1,
        super::DATA_FORMAT_VERSION
    );
    assert!(err.contains(&want), "{err}");

    // No stamp but a log: written by an earlier build.
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut store = open(tmp.path());
        append_durable(&mut store, vec![entry(1, 1, 8)]).await;
    }
    put_meta_raw(tmp.path(), super::META_FORMAT, None);
    let err = open_err(tmp.path());
    assert!(err.contains("no data format version"), "{err}");
}
