//! The raft bus, inbound side: accept peers on the bus port and hand their
//! RPCs to openraft. Anything that is not a well-formed frame of our bus
//! protocol (wrong version, garbage, oversize) is logged and the connection
//! closed — a stray client on the bus port can never crash the node.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::async_runtime::watch::WatchReceiver;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};

use crate::raft::identity::{AdmitError, Identity};
use crate::raft::network::{read_frame, write_frame, BusRequest, BusResponse, BUS_VERSION};
use crate::raft::state_machine::SnapshotFile;
use crate::raft::types::{Raft, SnapshotMeta};

pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    snapshot_dir: PathBuf,
    identity: Arc<Identity>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "bus accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let raft = raft.clone();
        let dir = snapshot_dir.clone();
        let identity = identity.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, raft, dir, &identity).await {
                tracing::warn!(%peer, error = %e, "bus connection closed");
            }
        });
    }
}

/// A snapshot being received on one connection.
struct Incoming {
    meta: SnapshotMeta,
    path: PathBuf,
    file: std::fs::File,
    received: u64,
}

async fn handle(
    stream: TcpStream,
    raft: Raft,
    dir: PathBuf,
    identity: &Identity,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    match read_frame::<_, BusRequest>(&mut conn).await? {
        Some(BusRequest::Hello(hello)) => {
            let member_name = {
                let metrics = raft.metrics();
                let m = metrics.borrow_watched();
                m.membership_config
                    .membership()
                    .get_node(&hello.from)
                    .map(|n| n.name.clone())
            };
            if let Err(e) = identity.admit(&hello, member_name.as_deref(), BUS_VERSION) {
                if let AdmitError::Refused(_) = e {
                    metrics::counter!(crate::metrics::BUS_REFUSED_TOTAL).increment(1);
                }
                if let Some(quiet) = identity.log_refusal(hello.from) {
                    let more = if quiet > 0 {
                        format!(" ({quiet} more refusals of it not logged)")
                    } else {
                        String::new()
                    };
                    tracing::warn!("refusing bus peer node {}: {e}{more}", hello.from);
                }
                write_frame(&mut conn, &BusResponse::Error(e.to_string())).await?;
                return Ok(());
            }
            write_frame(&mut conn, &BusResponse::Hello).await?;
        }
        Some(_) => {
            return Err(std::io::Error::other(
                "first bus frame was not a valid hello",
            ))
        }
        None => return Ok(()),
    }
    let mut incoming: Option<Incoming> = None;
    while let Some(req) = read_frame::<_, BusRequest>(&mut conn).await? {
        let resp = match req {
            BusRequest::Hello(_) => BusResponse::Hello,
            BusRequest::Append(r) => match raft.append_entries(r).await {
                Ok(r) => BusResponse::Append(r),
                Err(e) => BusResponse::Error(e.to_string()),
            },
            BusRequest::Vote(r) => match raft.vote(r).await {
                Ok(r) => BusResponse::Vote(r),
                Err(e) => BusResponse::Error(e.to_string()),
            },
            BusRequest::PreVote(r) => match raft.pre_vote(r).await {
                Ok(r) => BusResponse::Vote(r),
                Err(e) => BusResponse::Error(e.to_string()),
            },
            BusRequest::TransferLeader(r) => match raft.handle_transfer_leader(r).await {
                Ok(r) => BusResponse::TransferLeader(r),
                Err(e) => BusResponse::Error(e.to_string()),
            },
            BusRequest::SnapshotChunk {
                vote,
                meta,
                offset,
                data,
                done,
            } => match receive_chunk(&mut incoming, &dir, meta, offset, &data) {
                Err(e) => {
                    incoming = None;
                    BusResponse::Error(format!("snapshot chunk rejected: {e}"))
                }
                Ok(()) if !done => BusResponse::ChunkAccepted,
                Ok(()) => {
                    let inc = incoming.take().expect("chunk stored above");
                    inc.file.sync_all()?;
                    drop(inc.file);
                    let snapshot = openraft::Snapshot {
                        meta: inc.meta,
                        snapshot: SnapshotFile::open(inc.path)?,
                    };
                    match raft.install_full_snapshot(vote, snapshot).await {
                        Ok(r) => BusResponse::Snapshot(r),
                        Err(e) => BusResponse::Error(e.to_string()),
                    }
                }
            },
        };
        write_frame(&mut conn, &resp).await?;
    }
    Ok(())
}

fn receive_chunk(
    incoming: &mut Option<Incoming>,
    dir: &std::path::Path,
    meta: SnapshotMeta,
    offset: u64,
    data: &[u8],
) -> std::io::Result<()> {
    if offset == 0 {
        let path = dir.join(format!(
            "recv-{}-{}.tmp",
            std::process::id(),
            rand::random::<u64>()
        ));
        let file = std::fs::File::create(&path)?;
        *incoming = Some(Incoming {
            meta: meta.clone(),
            path,
            file,
            received: 0,
        });
    }
    let inc = incoming
        .as_mut()
        .ok_or_else(|| std::io::Error::other("snapshot chunk without a start"))?;
    if inc.meta != meta || inc.received != offset {
        return Err(std::io::Error::other("snapshot chunk out of order"));
    }
    inc.file.write_all(data)?;
    inc.received += data.len() as u64;
    Ok(())
}
