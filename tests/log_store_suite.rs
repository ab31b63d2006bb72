//! openraft's storage conformance suite against our LMDB `LogStore`.
//!
//! The suite also exercises a state machine. The real one is written
//! elsewhere, so this file carries a minimal in-memory one: it records the
//! last applied log id and the last membership, and its snapshot is the
//! postcard encoding of exactly that. That is all the suite inspects.

use std::io;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::alias::SnapshotOf;
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, Snapshot, StorageError};
use serde::{Deserialize, Serialize};

use raftcache::raft::log_store::{LogStore, LogStoreOptions};
use raftcache::raft::types::{Applied, LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// What the minimal state machine knows, and what its snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SmState {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

type StoredSnapshot = Option<(SnapshotMeta, Vec<u8>)>;

#[derive(Default)]
struct MemStateMachine {
    state: SmState,
    current: Arc<Mutex<StoredSnapshot>>,
}

struct MemSnapshotBuilder {
    state: SmState,
    current: Arc<Mutex<StoredSnapshot>>,
}

impl RaftSnapshotBuilder<TypeConfig> for MemSnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let data = postcard::to_stdvec(&self.state).map_err(io::Error::other)?;
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.membership.clone(),
        };
        *self.current.lock().unwrap() = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = MemSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.state.last_applied, self.state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            self.state.last_applied = Some(entry.log_id);
            if let EntryPayload::Membership(m) = entry.payload {
                self.state.membership = StoredMembership::new(Some(entry.log_id), m);
            }
            if let Some(r) = responder {
                r.send(Applied::default());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MemSnapshotBuilder {
            state: self.state.clone(),
            current: self.current.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        self.state = postcard::from_bytes(&snapshot)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        *self.current.lock().unwrap() = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Vec<u8>>>, io::Error> {
        Ok(self
            .current
            .lock()
            .unwrap()
            .clone()
            .map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

/// A fresh temp dir and store per test case; the `TempDir` guard outlives the
/// store and removes the directory afterwards.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, MemStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, MemStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let opts = LogStoreOptions {
            map_size: 16 << 20,
            unsafe_no_fsync: false,
        };
        let store = LogStore::open(dir.path(), opts)
            .map_err(|e| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
        Ok((dir, store, MemStateMachine::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() -> Result<(), StorageError<TypeConfig>> {
    Suite::test_all(Builder).await?;
    Ok(())
}
