//! Simulated power loss, for tests only (cargo feature `failpoints`).
//!
//! `kill -9` and `abort()` keep the OS page cache, so a process crash can
//! never show that a write was acknowledged before it was synced: the page
//! cache still holds it and the restarted process reads it back. A power
//! loss throws the page cache away. To test that, the store keeps a *durable
//! image*: a copy of the LMDB data file exactly as the last completed forced
//! sync left it on disk. A test kills the node, puts the image in place of
//! `raft-log/data.mdb` and restarts: that is the worst case a power loss can
//! leave (nothing written after the last sync reached the disk).
//!
//! Faithfulness: the copy is taken while the store's writer is paused (this
//! thread holds LMDB's write lock from before the sync until the copy is
//! done), so the image holds exactly what the sync covered, no later commit.
//! With `--unsafe-no-fsync` no sync happens, so the image is never refreshed:
//! the disk keeps what the last real sync wrote, which is what a power loss
//! can leave if the kernel did not write the dirty pages back on its own.
//! Snapshot files are not imaged: they are fsynced (file and directory)
//! before they become current, so a power loss keeps them.
//!
//! Enabled per node by creating `<data-dir>/raft-log.durable-image/` before
//! the node starts; off (and absent without the feature) otherwise.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use heed::{Env, WithoutTls};

pub(super) struct DurableImage {
    dir: PathBuf,
}

impl DurableImage {
    /// `Some` when the test created `<data_dir>/raft-log.durable-image/`.
    #[cfg(feature = "failpoints")]
    pub(super) fn detect(data_dir: &Path) -> Option<DurableImage> {
        let dir = data_dir.join("raft-log.durable-image");
        dir.is_dir().then(|| {
            tracing::warn!(dir = %dir.display(), "durable image on: copying the log after every sync (test only)");
            DurableImage { dir }
        })
    }

    /// Without the `failpoints` feature there is never an image.
    #[cfg(not(feature = "failpoints"))]
    pub(super) fn detect(_data_dir: &Path) -> Option<DurableImage> {
        None
    }

    /// Run `sync` with the writer paused, then copy the synced data file.
    pub(super) fn sync_and_copy(
        &self,
        env: &Env<WithoutTls>,
        sync: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        // Holding the write lock: no commit can land between the sync and
        // the copy. Dropped (aborted, nothing written) at the end.
        let _paused = env
            .write_txn()
            .map_err(|e| io::Error::other(format!("durable image: {e}")))?;
        sync()?;
        let tmp = self.dir.join("data.mdb.tmp");
        fs::copy(env.path().join("data.mdb"), &tmp)?;
        fs::rename(&tmp, self.dir.join("data.mdb"))
    }
}
