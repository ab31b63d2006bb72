//! Which snapshot becomes current when builds and installs race.

use std::path::Path;

use openraft::vote::RaftLeaderIdExt;
use openraft::RaftTypeConfig;

use super::{make_current, snapshot_name, CurrentSnapshot, SnapshotFile};
use crate::raft::types::{LogId, SnapshotMeta, TypeConfig};

type LeaderId = <TypeConfig as RaftTypeConfig>::LeaderId;

fn meta(term: u64, index: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(LogId::new(LeaderId::new_committed(term, 1), index)),
        ..SnapshotMeta::default()
    }
}

/// A snapshot file (content irrelevant here) under its proper name.
fn file(dir: &Path, m: &SnapshotMeta) -> SnapshotFile {
    let path = dir.join(snapshot_name(m));
    std::fs::write(&path, b"snapshot").unwrap();
    SnapshotFile::open(path).unwrap()
}

fn index(c: &CurrentSnapshot) -> u64 {
    c.lock().as_ref().unwrap().0.last_log_id.unwrap().index
}

/// A snapshot build racing an install: a build (index 50) finishes after a newer
/// snapshot (index 100) was installed. The newer one stays current and on
/// disk; the older file goes.
#[test]
fn older_build_never_replaces_a_newer_install() {
    let dir = tempfile::tempdir().unwrap();
    let current = CurrentSnapshot::default();
    let (newer, older) = (meta(2, 100), meta(1, 50));
    let newer_file = file(dir.path(), &newer);
    let older_file = file(dir.path(), &older);
    make_current(dir.path(), &current, newer.clone(), newer_file.clone()).unwrap();
    let (got, _) = make_current(dir.path(), &current, older, older_file.clone()).unwrap();
    assert_eq!(got, newer, "the older build was made current");
    assert_eq!(index(&current), 100);
    assert!(
        newer_file.path.exists(),
        "the newer snapshot file was deleted"
    );
    assert!(
        !older_file.path.exists(),
        "the discarded build's file was kept"
    );
}

/// A newer snapshot replaces an older one and the older file is deleted;
/// a file a concurrent clean-up already deleted is not an error.
#[test]
fn newer_replaces_older_and_cleanup_tolerates_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let current = CurrentSnapshot::default();
    let (old, new) = (meta(1, 50), meta(1, 80));
    let old_file = file(dir.path(), &old);
    make_current(dir.path(), &current, old, old_file.clone()).unwrap();
    let new_file = file(dir.path(), &new);
    make_current(dir.path(), &current, new, new_file.clone()).unwrap();
    assert_eq!(index(&current), 80);
    assert!(!old_file.path.exists());
    // A build whose file is already gone (deleted by an install's clean-up).
    let gone = meta(1, 60);
    let gone_file = file(dir.path(), &gone);
    std::fs::remove_file(&gone_file.path).unwrap();
    make_current(dir.path(), &current, gone, gone_file).unwrap();
    assert_eq!(index(&current), 80);
    assert!(new_file.path.exists());
}

/// Clean-up only deletes files older than the current snapshot: a newer
/// file belongs to a build or install still in progress.
#[test]
fn cleanup_keeps_newer_files_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let current = CurrentSnapshot::default();
    let in_progress = file(dir.path(), &meta(1, 90));
    let cur = meta(1, 70);
    let cur_file = file(dir.path(), &cur);
    make_current(dir.path(), &current, cur, cur_file).unwrap();
    assert!(
        in_progress.path.exists(),
        "a newer snapshot file was deleted"
    );
}
