//! The raft bus, inbound side: accept peers on the bus port, authenticate
//! them (`raft::auth`, when a cluster secret is set) and hand their RPCs to
//! openraft. Anything that is not a well-formed frame of our bus protocol
//! (wrong version, garbage, oversize, a bad proof, too slow) is logged and
//! counted, and the connection closed — a stray client on the bus port can
//! never crash the node. Before a connection is admitted only small
//! handshake frames are read, under a timeout, and only so many
//! connections may be in their handshake at once.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::async_runtime::watch::WatchReceiver;
use parking_lot::Mutex;
use tokio::io::BufStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::raft::auth::{
    self, Side, Transcript, HANDSHAKE_FRAME_MAX, HANDSHAKE_TIMEOUT, MAX_UNAUTHENTICATED,
};
use crate::raft::identity::{AdmitError, GuestHello, Identity, Refusal};
use crate::raft::lease::{ReadConfirm, Refused};
use crate::raft::membership;
use crate::raft::network::{
    decode_frame, read_frame, read_frame_body, write_frame, BusRequest, BusResponse, BUS_VERSION,
};
use crate::raft::node::RaftNode;
use crate::raft::state_machine::SnapshotFile;
use crate::raft::types::{Raft, SnapshotMeta};

pub async fn serve(
    listener: TcpListener,
    node: Arc<RaftNode>,
    snapshot_dir: PathBuf,
    identity: Arc<Identity>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_UNAUTHENTICATED));
    let refusals = Arc::new(RefusalLog::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "bus accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // A slot among the connections still in their handshake, or the
        // connection is closed at once.
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            refusals.refuse(
                peer,
                &format!("{MAX_UNAUTHENTICATED} bus connections are already in their handshake"),
            );
            drop(stream);
            continue;
        };
        let node = node.clone();
        let dir = snapshot_dir.clone();
        let identity = identity.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, peer, permit, node, dir, &identity, &refusals).await {
                tracing::warn!(%peer, error = %e, "bus connection closed");
            }
        });
    }
}

/// Refusals before or at admission: counted (`raftcache_bus_refused_total`)
/// and logged with the peer's address and the reason, at most
/// `LOG_BURST` messages per address per `LOG_PERIOD` (a peer that keeps
/// trying must not flood the log); the rest are summed up in the next
/// message.
#[derive(Default)]
struct RefusalLog {
    by_ip: Mutex<HashMap<IpAddr, (Instant, u32, u64)>>,
}

impl RefusalLog {
    const LOG_PERIOD: Duration = Duration::from_secs(10);
    const LOG_BURST: u32 = 20;

    fn refuse(&self, peer: SocketAddr, why: &str) {
        metrics::counter!(crate::metrics::BUS_REFUSED_TOTAL).increment(1);
        let now = Instant::now();
        let quiet = {
            let mut map = self.by_ip.lock();
            if map.len() > 4096 {
                map.clear();
            }
            let e = map.entry(peer.ip()).or_insert((now, 0, 0));
            if now.duration_since(e.0) >= Self::LOG_PERIOD {
                *e = (now, 0, e.2);
            }
            if e.1 >= Self::LOG_BURST {
                e.2 += 1;
                return;
            }
            e.1 += 1;
            std::mem::take(&mut e.2)
        };
        let more = if quiet > 0 {
            format!(" ({quiet} more refusals from this address not logged)")
        } else {
            String::new()
        };
        tracing::warn!(%peer, "bus connection closed: refused peer {peer}: {why}{more}");
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
            Admission::Peer => !matches!(req, R::GuestHello(_) | R::Join { .. } | R::Proof { .. }),
            Admission::Guest(_) => matches!(req, R::WhoAreYou | R::Join { .. }),
        }
    }
}

/// Why [`admit`] did not admit a connection.
enum NotAdmitted {
    /// Closed before sending anything: not worth a word (port probes).
    Silent,
    /// Refused, and why; the reason was sent to the peer when it could be.
    Refused(String),
}

impl From<io::Error> for NotAdmitted {
    fn from(e: io::Error) -> Self {
        NotAdmitted::Refused(format!("bus handshake failed: {e}"))
    }
}

const CLOSED: &str = "closed during the handshake";

/// Read one handshake frame: at most `HANDSHAKE_FRAME_MAX` bytes, decoded
/// only once it is all in.
async fn handshake_frame(conn: &mut BufStream<TcpStream>) -> Result<BusRequest, NotAdmitted> {
    let body = read_frame_body(conn, HANDSHAKE_FRAME_MAX)
        .await?
        .ok_or_else(|| NotAdmitted::Refused(CLOSED.into()))?;
    decode_frame(&body).map_err(|e| NotAdmitted::Refused(format!("garbage: {e}")))
}

/// The one place a bus connection is admitted (see `raft::auth` for the
/// handshake): read its hello, check its version, have the dialer prove
/// the cluster secret when this node has one, then judge the hello
/// (`raft::identity`) and accept it (as a peer or a guest) or refuse it
/// with the reason. Nothing but small handshake frames is read, and
/// nothing is stored (a cluster id adopted), before the proof is checked.
async fn admit(
    conn: &mut BufStream<TcpStream>,
    raft: &Raft,
    identity: &Identity,
) -> Result<Admission, NotAdmitted> {
    let body = match read_frame_body(conn, HANDSHAKE_FRAME_MAX).await? {
        Some(b) => b,
        None => return Err(NotAdmitted::Silent),
    };
    let first = decode_frame::<BusRequest>(&body)
        .map_err(|e| NotAdmitted::Refused(format!("garbage: {e}")))?;
    let version = match &first {
        BusRequest::Hello(h) => h.version,
        BusRequest::GuestHello(h) => h.version,
        other => {
            let why = format!(
                "first bus frame was not a hello (a {} request before authentication)",
                request_name(other)
            );
            write_frame(conn, &BusResponse::Error(why.clone())).await?;
            return Err(NotAdmitted::Refused(why));
        }
    };
    if version != BUS_VERSION {
        let e = Refusal::Version {
            ours: BUS_VERSION,
            theirs: version,
        };
        write_frame(conn, &BusResponse::Error(e.to_string())).await?;
        return Err(NotAdmitted::Refused(e.to_string()));
    }
    // The secret first: a dialer that cannot prove it learns nothing
    // about this node's identity checks, and changes nothing here.
    let proved = match identity.secret() {
        None => None,
        Some(secret) => {
            let listener_nonce = auth::nonce();
            write_frame(
                conn,
                &BusResponse::Challenge {
                    nonce: listener_nonce,
                },
            )
            .await?;
            let proof = match handshake_frame(conn).await {
                Err(NotAdmitted::Refused(why)) if why == CLOSED => {
                    return Err(NotAdmitted::Refused(
                        "closed instead of proving the cluster secret (a node without \
                         cluster-secret?)"
                            .into(),
                    ))
                }
                r => r?,
            };
            let (dialer_nonce, mac) = match proof {
                BusRequest::Proof { nonce, mac } => (nonce, mac),
                other => {
                    return Err(NotAdmitted::Refused(format!(
                        "no proof of the cluster secret (a {} request instead)",
                        request_name(&other)
                    )))
                }
            };
            let t = Transcript {
                hello: &body,
                listener_nonce: &listener_nonce,
                dialer_nonce: &dialer_nonce,
            };
            if !secret.verify(Side::Dialer, &t, &mac) {
                let why = "bad MAC: wrong cluster secret, or a replayed handshake";
                write_frame(conn, &BusResponse::Error(why.into())).await?;
                return Err(NotAdmitted::Refused(why.into()));
            }
            Some(secret.prove(Side::Listener, &t))
        }
    };
    let (admitted, from) = match first {
        BusRequest::Hello(hello) => {
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
        BusRequest::GuestHello(hello) => {
            let r = identity.admit_guest(&hello, BUS_VERSION);
            let from = hello.from;
            (r.map(|()| Admission::Guest(hello)), from)
        }
        _ => unreachable!("checked above"),
    };
    match admitted {
        Ok(a) => {
            let ok = match proved {
                Some(mac) => BusResponse::Proof { mac },
                None => BusResponse::Hello,
            };
            write_frame(conn, &ok).await?;
            Ok(a)
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
            Err(NotAdmitted::Silent)
        }
    }
}

/// A request's name for a log line (never its content).
fn request_name(r: &BusRequest) -> &'static str {
    match r {
        BusRequest::Hello(_) => "hello",
        BusRequest::Append(_) => "append",
        BusRequest::Vote(_) => "vote",
        BusRequest::PreVote(_) => "pre-vote",
        BusRequest::TransferLeader(_) => "transfer-leader",
        BusRequest::SnapshotChunk { .. } => "snapshot chunk",
        BusRequest::ReadIndex { .. } => "read-index",
        BusRequest::GuestHello(_) => "guest hello",
        BusRequest::WhoAreYou => "who-are-you",
        BusRequest::Join { .. } => "join",
        BusRequest::TransferLeadership { .. } => "transfer-leadership",
        BusRequest::Proof { .. } => "proof",
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
    peer: SocketAddr,
    handshake_slot: OwnedSemaphorePermit,
    node: Arc<RaftNode>,
    dir: PathBuf,
    identity: &Identity,
    refusals: &RefusalLog,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = BufStream::new(stream);
    let raft = node.raft.clone();
    let admitted = tokio::time::timeout(HANDSHAKE_TIMEOUT, admit(&mut conn, &raft, identity)).await;
    drop(handshake_slot);
    let admission = match admitted {
        Ok(Ok(a)) => a,
        Ok(Err(NotAdmitted::Silent)) => return Ok(()),
        Ok(Err(NotAdmitted::Refused(why))) => {
            refusals.refuse(peer, &why);
            return Ok(());
        }
        Err(_) => {
            refusals.refuse(
                peer,
                &format!("timeout: no complete handshake within {HANDSHAKE_TIMEOUT:?}"),
            );
            return Ok(());
        }
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
            BusRequest::Proof { .. } => BusResponse::Error("no handshake in progress".into()),
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
