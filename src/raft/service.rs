//! The raft bus, inbound side: accept peers on the bus port and hand their
//! RPCs to openraft. Anything that is not a well-formed frame of our bus
//! protocol (wrong version, garbage, oversize) is logged and the connection
//! closed — a stray client on the bus port can never crash the node.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::async_runtime::watch::WatchReceiver;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};

use crate::raft::identity::{AdmitError, GuestHello, Identity};
use crate::raft::lease::{ReadConfirm, Refused};
use crate::raft::membership;
use crate::raft::network::{read_frame, write_frame, BusRequest, BusResponse, BUS_VERSION};
use crate::raft::node::RaftNode;
use crate::raft::state_machine::SnapshotFile;
use crate::raft::types::{Raft, SnapshotMeta};

pub async fn serve(
    listener: TcpListener,
    node: Arc<RaftNode>,
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
        let node = node.clone();
        let dir = snapshot_dir.clone();
        let identity = identity.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, node, dir, &identity).await {
                tracing::warn!(%peer, error = %e, "bus connection closed");
            }
        });
    }
}

/// What a connection was admitted for, decided once from its first frame
/// by [`admit`].
#[derive(Debug)]
enum Admission {
    /// A member of this cluster (a `Hello` that `Identity::admit`
    /// accepted): raft RPCs, who-are-you, transfer requests.
    Peer,
    /// A `GuestHello` (a node that does not know this one yet, or has no
    /// cluster yet): who-are-you and join only.
    Guest(GuestHello),
}

impl Admission {
    fn allows(&self, req: &BusRequest) -> bool {
        use BusRequest as R;
        match self {
            Admission::Peer => !matches!(req, R::GuestHello(_) | R::Join { .. }),
            Admission::Guest(_) => matches!(req, R::WhoAreYou | R::Join { .. }),
        }
    }
}

/// The one place a bus connection is admitted: read its first frame, and
/// accept it (as a peer or a guest) or refuse it with the reason. `None`:
/// refused (the reason was sent) or closed before a hello.
async fn admit(
    conn: &mut BufStream<TcpStream>,
    raft: &Raft,
    identity: &Identity,
) -> io::Result<Option<Admission>> {
    let (admitted, from) = match read_frame::<_, BusRequest>(conn).await? {
        Some(BusRequest::Hello(hello)) => {
            // Does this node's latest membership (its log, committed or
            // not) list it under its current name? See `raft::identity`.
            let listed = {
                let metrics = raft.metrics();
                let m = metrics.borrow_watched();
                m.membership_config
                    .membership()
                    .get_node(&identity.node_id)
                    .is_some_and(|n| n.name == identity.name)
            };
            let r = identity.admit(&hello, listed, BUS_VERSION);
            (r.map(|()| Admission::Peer), hello.from)
        }
        Some(BusRequest::GuestHello(hello)) => {
            let r = identity.admit_guest(&hello, BUS_VERSION);
            let from = hello.from;
            (r.map(|()| Admission::Guest(hello)), from)
        }
        Some(_) => {
            return Err(std::io::Error::other(
                "first bus frame was not a valid hello",
            ))
        }
        None => return Ok(None),
    };
    match admitted {
        Ok(a) => {
            write_frame(conn, &BusResponse::Hello).await?;
            Ok(Some(a))
        }
        Err(e) => {
            if let AdmitError::Refused(_) = e {
                metrics::counter!(crate::metrics::BUS_REFUSED_TOTAL).increment(1);
            }
            if let Some(quiet) = identity.log_refusal(from) {
                let more = if quiet > 0 {
                    format!(" ({quiet} more refusals of it not logged)")
                } else {
                    String::new()
                };
                tracing::warn!("refusing bus peer node {from}: {e}{more}");
            }
            write_frame(conn, &BusResponse::Error(e.to_string())).await?;
            Ok(None)
        }
    }
}

/// A snapshot being received on one connection, in a temp file of the
/// snapshot directory. Dropping it deletes the temp file (if the install did
/// not rename it away): every way a transfer can end without installing —
/// an I/O error, a rejected or out-of-order chunk, a new transfer starting
/// at offset 0, the connection closing or timing out (the `handle` task ends
/// and drops it), or openraft declining the install — leaves no file
/// behind.
struct Incoming {
    meta: SnapshotMeta,
    path: PathBuf,
    file: Arc<std::fs::File>,
    received: u64,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // An unlink, not a write or an fsync: cheap enough to do inline.
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::info!(path = %self.path.display(), "discarded an incomplete or uninstalled snapshot transfer")
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a snapshot temp file")
            }
        }
    }
}

/// Run blocking file work off the async runtime (a slow disk must not
/// stall heartbeats on the same node).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

async fn handle(
    stream: TcpStream,
    node: Arc<RaftNode>,
    dir: PathBuf,
    identity: &Identity,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    let raft = node.raft.clone();
    let Some(admission) = admit(&mut conn, &raft, identity).await? else {
        return Ok(());
    };
    let confirm = &node.confirm;
    let contact = node.leader_contact();
    let mut incoming: Option<Incoming> = None;
    while let Some(req) = read_frame::<_, BusRequest>(&mut conn).await? {
        if !admission.allows(&req) {
            let why = format!("bus request not allowed on this connection ({admission:?})");
            write_frame(&mut conn, &BusResponse::Error(why.clone())).await?;
            return Err(io::Error::other(why));
        }
        let resp = match req {
            BusRequest::Hello(_) | BusRequest::GuestHello(_) => BusResponse::Hello,
            BusRequest::WhoAreYou => {
                let (id, info, cluster) = membership::whoami(&node);
                BusResponse::Identity { id, info, cluster }
            }
            BusRequest::Join { id, info } => match &admission {
                Admission::Guest(guest) => {
                    BusResponse::Join(membership::handle_join(&node, guest, id, info).await)
                }
                Admission::Peer => BusResponse::Error("join needs a guest hello".into()),
            },
            BusRequest::TransferLeadership { to } => {
                match membership::handle_transfer(&node, to).await {
                    Ok(()) => BusResponse::Done,
                    Err(e) => BusResponse::Error(e.to_string()),
                }
            }
            BusRequest::Append(r) => match raft.append_entries(r).await {
                Ok(r) => {
                    // Not from a deposed leader: the link is alive.
                    if !matches!(r, openraft::raft::AppendEntriesResponse::HigherVote(_)) {
                        contact.touch();
                    }
                    BusResponse::Append(r)
                }
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
            BusRequest::ReadIndex { lease } => read_index(confirm, lease).await,
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
            } => match receive_chunk(&mut incoming, &dir, meta, offset, data).await {
                Err(e) => {
                    incoming = None;
                    BusResponse::Error(format!("snapshot chunk rejected: {e}"))
                }
                Ok(()) if !done => BusResponse::ChunkAccepted,
                Ok(()) => {
                    let inc = incoming.take().expect("chunk stored above");
                    finish_transfer(inc, |snapshot| async {
                        match raft.install_full_snapshot(vote, snapshot).await {
                            Ok(r) => BusResponse::Snapshot(r),
                            Err(e) => BusResponse::Error(e.to_string()),
                        }
                    })
                    .await
                    .unwrap_or_else(|e| {
                        BusResponse::Error(format!("snapshot transfer failed: {e}"))
                    })
                }
            },
        };
        write_frame(&mut conn, &resp).await?;
    }
    Ok(())
}

/// A follower's read-index request: confirm leadership (openraft queues
/// concurrent requests behind one heartbeat round; `raft::lease` checks the
/// grant against what the peers really accepted) and answer the log id the
/// follower must apply before reading.
async fn read_index(confirm: &ReadConfirm, lease: bool) -> BusResponse {
    match confirm.confirm(lease, false).await {
        Ok(log_id) => BusResponse::ReadIndex(log_id),
        Err(Refused::Raft(e)) => BusResponse::Error(format!("read index refused: {e}")),
        Err(Refused::Unconfirmed) => {
            BusResponse::Error("read index refused: leadership not confirmed by a quorum".into())
        }
    }
}

/// Store one chunk. A chunk at offset 0 starts a new transfer (dropping,
/// and so deleting, any previous one); any other chunk must continue the
/// current transfer exactly where it stands.
async fn receive_chunk(
    incoming: &mut Option<Incoming>,
    dir: &Path,
    meta: SnapshotMeta,
    offset: u64,
    data: bytes::Bytes,
) -> io::Result<()> {
    if offset == 0 {
        *incoming = None;
        let path = dir.join(format!(
            "recv-{}-{}.tmp",
            std::process::id(),
            rand::random::<u64>()
        ));
        let p = path.clone();
        let file = blocking(move || std::fs::File::create(p)).await?;
        *incoming = Some(Incoming {
            meta: meta.clone(),
            path,
            file: Arc::new(file),
            received: 0,
        });
    }
    let inc = incoming
        .as_mut()
        .ok_or_else(|| io::Error::other("snapshot chunk without a start"))?;
    if inc.meta != meta || inc.received != offset {
        return Err(io::Error::other("snapshot chunk out of order"));
    }
    let len = data.len() as u64;
    let file = inc.file.clone();
    blocking(move || (&*file).write_all(&data)).await?;
    inc.received += len;
    Ok(())
}

/// The last chunk is in: fsync the file, hand it to `install`, and delete
/// it unless the install moved it into place.
async fn finish_transfer<F, Fut>(inc: Incoming, install: F) -> io::Result<BusResponse>
where
    F: FnOnce(
        openraft::type_config::alias::SnapshotOf<crate::raft::types::TypeConfig, SnapshotFile>,
    ) -> Fut,
    Fut: std::future::Future<Output = BusResponse>,
{
    let (file, path) = (inc.file.clone(), inc.path.clone());
    let snapshot = blocking(move || {
        file.sync_all()?;
        SnapshotFile::open(path)
    })
    .await?;
    let resp = install(openraft::Snapshot {
        meta: inc.meta.clone(),
        snapshot,
    })
    .await;
    // Installed: the state machine renamed the file away and this is a
    // no-op. Declined (not newer than ours) or failed: the file goes.
    drop(inc);
    Ok(resp)
}

#[cfg(test)]
mod tests;
