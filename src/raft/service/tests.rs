//! Snapshot reception leaves no temp file behind on any path (issue: a
//! leak per failed transfer fills the disk).

use std::path::{Path, PathBuf};

use super::{finish_transfer, receive_chunk, BusResponse, Incoming};
use crate::raft::types::SnapshotMeta;

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmp"))
        .collect()
}

/// A transfer with its first chunk stored.
async fn started(dir: &Path) -> Option<Incoming> {
    let mut inc = None;
    receive_chunk(&mut inc, dir, SnapshotMeta::default(), 0, vec![1; 100])
        .await
        .unwrap();
    assert_eq!(temp_files(dir).len(), 1, "the first chunk creates the file");
    inc
}

#[tokio::test]
async fn rejected_chunk_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut inc = started(dir.path()).await;
    // A gap: offset 200 while 100 bytes were received.
    let r = receive_chunk(
        &mut inc,
        dir.path(),
        SnapshotMeta::default(),
        200,
        vec![2; 10],
    )
    .await;
    assert!(r.is_err(), "a chunk out of order must be rejected");
    inc = None; // what `handle` does on a rejected chunk
    assert!(inc.is_none());
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn chunk_without_start_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut inc = None;
    let r = receive_chunk(
        &mut inc,
        dir.path(),
        SnapshotMeta::default(),
        100,
        vec![2; 10],
    )
    .await;
    assert!(r.is_err());
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn restart_from_offset_zero_replaces_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut inc = started(dir.path()).await;
    let first = temp_files(dir.path());
    receive_chunk(
        &mut inc,
        dir.path(),
        SnapshotMeta::default(),
        0,
        vec![3; 50],
    )
    .await
    .unwrap();
    let now = temp_files(dir.path());
    assert_eq!(
        now.len(),
        1,
        "the abandoned transfer's file was kept: {now:?}"
    );
    assert_ne!(now, first);
    assert_eq!(std::fs::metadata(&now[0]).unwrap().len(), 50);
}

/// The connection closes or times out mid-transfer: `handle` returns and
/// drops the transfer.
#[tokio::test]
async fn connection_gone_mid_transfer_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let inc = started(dir.path()).await;
    drop(inc);
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

/// openraft declines (or fails) the install without touching the file.
#[tokio::test]
async fn declined_install_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let inc = started(dir.path()).await.unwrap();
    let resp = finish_transfer(inc, |_snapshot| async {
        BusResponse::Error("declined".into())
    })
    .await
    .unwrap();
    assert!(matches!(resp, BusResponse::Error(_)));
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
}

/// An install renames the file into place: it stays, under its new name.
#[tokio::test]
async fn installed_snapshot_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let inc = started(dir.path()).await.unwrap();
    let installed = dir.path().join("snapshot-1-1.snap");
    let target = installed.clone();
    finish_transfer(inc, |snapshot| async move {
        std::fs::rename(&snapshot.snapshot.path, &target).unwrap();
        BusResponse::ChunkAccepted
    })
    .await
    .unwrap();
    assert_eq!(temp_files(dir.path()), Vec::<PathBuf>::new());
    assert_eq!(std::fs::metadata(&installed).unwrap().len(), 100);
}
