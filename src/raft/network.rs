//! The raft bus, outbound side: TCP to each peer's bus port, one request
//! frame then one response frame, the connection kept and reused, redialled
//! after any error (openraft backs off on `Unreachable`).
//!
//! Frames are `u32 big-endian length | postcard payload`. A frame's length
//! is checked against `MAX_FRAME` and its body is read as it arrives, never
//! allocated up front from the declared length. Snapshots travel as a
//! sequence of bounded chunks read with positional reads from the file.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::StreamAppendResult;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use crate::raft::auth::{self, Nonce, Side, Tag, Transcript, HANDSHAKE_FRAME_MAX};
use crate::raft::identity::{GuestHello, Hello, Identity};
use crate::raft::lease::Acks;
use crate::raft::state_machine::SnapshotFile;
use crate::raft::types::{NodeId, NodeInfo, SnapshotMeta, TypeConfig, Vote};

/// Largest frame accepted on the bus (an append of big values can be large;
/// bodies are read incrementally, so this bounds memory, not allocation).
pub const MAX_FRAME: u32 = 1 << 30;
/// Snapshot chunk size on the wire.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;
/// Bus protocol version, checked on every connection's first frame
/// (2: the hello carries cluster id and node names; 3: log entries carry
/// their format version, `types::PROPOSAL_VERSION`, and the membership
/// requests exist — the guest hello, who-are-you, join, transfer leadership;
/// 4: the cluster-secret handshake, `raft::auth`).
pub const BUS_VERSION: u32 = 4;

#[derive(Debug, Serialize, Deserialize)]
pub enum BusRequest {
    /// First frame on a connection: who is calling whom, in which cluster
    /// (see `raft::identity`).
    Hello(Hello),
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// One piece of a snapshot; `done` on the last one installs it.
    SnapshotChunk {
        vote: Vote,
        meta: SnapshotMeta,
        offset: u64,
        /// `Bytes`, not `Vec<u8>`: same postcard encoding (length, then the
        /// raw bytes), but serde moves it as one slice instead of element by
        /// element, which costs a debug build milliseconds per 1 MiB chunk
        /// on the runtime that carries heartbeats.
        data: bytes::Bytes,
        done: bool,
    },
    /// A follower asks the leader for a read index (etcd's follower read):
    /// the leader confirms its leadership (a ReadIndex quorum round, or its
    /// lease when `lease`) and answers the log id a linearizable read must
    /// wait for. The follower batches its concurrent reads into one request.
    ReadIndex {
        lease: bool,
    },
    /// First frame of a connection that carries membership requests only
    /// (who-are-you, join): from a node that does not know the receiver's
    /// raft id or name yet, or has no cluster id yet (see
    /// `raft::service::admit`).
    GuestHello(GuestHello),
    /// Who are you? Answered with `BusResponse::Identity`.
    WhoAreYou,
    /// Add me (the sender, `id` with `info`): as a learner, then, once
    /// caught up, as a voter. Answered with `BusResponse::Join`.
    Join {
        id: NodeId,
        info: NodeInfo,
    },
    /// Hand leadership to node `to` (CLUSTER FAILOVER on a follower asks
    /// its leader). Members only. Answered with `BusResponse::Done`.
    TransferLeadership {
        to: NodeId,
    },
    /// The dialer's answer to a `BusResponse::Challenge`: its nonce and
    /// its proof of the cluster secret (see `raft::auth`).
    Proof {
        nonce: Nonce,
        mac: Tag,
    },
}

/// The answer to a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinReply {
    /// The sender is a voter.
    Done,
    /// Not the leader: ask this one (its raft id and bus address).
    Redirect { leader: NodeId, bus_addr: String },
    /// Not added, and why (no leader known, a conflicting member, ...).
    Refused(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum BusResponse {
    Hello,
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    /// Intermediate chunk accepted.
    ChunkAccepted,
    Snapshot(SnapshotResponse<TypeConfig>),
    /// The peer could not serve the request (e.g. shutting down).
    Error(String),
    /// The read index: apply up to this log id, then read locally.
    ReadIndex(crate::raft::types::LogId),
    /// Who the receiver is: raft id, addresses and name, and its cluster
    /// id (`None`: an empty data dir not added to any cluster yet).
    Identity {
        id: NodeId,
        info: NodeInfo,
        cluster: Option<String>,
    },
    Join(JoinReply),
    /// A request without an answer of its own was carried out.
    Done,
    /// The listener has a cluster secret: prove it (`BusRequest::Proof`)
    /// over a transcript that includes this fresh nonce.
    Challenge {
        nonce: Nonce,
    },
    /// The dialer's proof and its hello were accepted; this is the
    /// listener's own proof of the secret. Ends the handshake as
    /// `Hello` does without a secret.
    Proof {
        mac: Tag,
    },
}

pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> io::Result<()> {
    let body =
        postcard::to_stdvec(msg).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bus frame too large"))?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(&body).await?;
    w.flush().await
}

/// Read one frame; `Ok(None)` on a clean EOF between frames.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> io::Result<Option<T>> {
    match read_frame_body(r, MAX_FRAME).await? {
        Some(body) => decode_frame(&body).map(Some),
        None => Ok(None),
    }
}

/// Decode a frame body read by [`read_frame_body`].
pub fn decode_frame<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    crate::raft::types::decode(body).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("undecodable bus frame: {e}"),
        )
    })
}

/// Read one frame's body, undecoded, refusing a declared length above
/// `max` before reading or allocating anything; `Ok(None)` on a clean EOF
/// between frames.
pub async fn read_frame_body<R: AsyncRead + Unpin>(
    r: &mut R,
    max: u32,
) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bus frame of {len} bytes exceeds the limit of {max}"),
        ));
    }
    let mut body = Vec::with_capacity((len as usize).min(64 * 1024));
    r.take(u64::from(len)).read_to_end(&mut body).await?;
    if body.len() != len as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated bus frame",
        ));
    }
    Ok(Some(body))
}

/// Why the dialer side of a handshake failed.
#[derive(Debug)]
enum DialError {
    Io(io::Error),
    /// The listener refused us, or we refuse it (it does not prove the
    /// cluster secret, or asks for one we do not have).
    Refused(String),
    /// Not our bus protocol.
    Protocol(String),
}

impl From<io::Error> for DialError {
    fn from(e: io::Error) -> Self {
        DialError::Io(e)
    }
}

/// The dialer's side of the handshake (`raft::auth`): send `hello`, and
/// prove the cluster secret and check the listener's proof when the
/// listener has one. With a secret of its own, the dialer refuses a
/// listener that does not authenticate.
async fn dial_handshake(
    conn: &mut BufStream<TcpStream>,
    me: &Identity,
    hello: &BusRequest,
) -> Result<(), DialError> {
    let body =
        postcard::to_stdvec(hello).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    write_frame(conn, hello).await?;
    let reply = |b: Option<Vec<u8>>| -> Result<BusResponse, DialError> {
        match b {
            None => Err(DialError::Protocol(
                "closed the connection during the handshake".into(),
            )),
            Some(b) => decode_frame(&b).map_err(|e| DialError::Protocol(e.to_string())),
        }
    };
    let first = reply(read_frame_body(conn, HANDSHAKE_FRAME_MAX).await?)?;
    let listener_nonce = match (first, me.secret()) {
        (BusResponse::Hello, None) => return Ok(()),
        (BusResponse::Hello, Some(_)) => {
            return Err(DialError::Refused(
                "the peer does not authenticate (it has no cluster-secret) while this node \
                 has one: not talking to it"
                    .into(),
            ))
        }
        (BusResponse::Challenge { .. }, None) => {
            return Err(DialError::Refused(
                "the peer requires the cluster secret: set cluster-secret or \
                 cluster-secret-file on this node"
                    .into(),
            ))
        }
        (BusResponse::Challenge { nonce }, Some(_)) => nonce,
        (BusResponse::Error(why), _) => return Err(DialError::Refused(why)),
        (other, _) => return Err(DialError::Protocol(format!("bad hello reply: {other:?}"))),
    };
    let secret = me.secret().expect("matched above");
    let dialer_nonce = auth::nonce();
    let t = Transcript {
        hello: &body,
        listener_nonce: &listener_nonce,
        dialer_nonce: &dialer_nonce,
    };
    let proof = BusRequest::Proof {
        nonce: dialer_nonce,
        mac: secret.prove(Side::Dialer, &t),
    };
    write_frame(conn, &proof).await?;
    match reply(read_frame_body(conn, HANDSHAKE_FRAME_MAX).await?)? {
        BusResponse::Proof { mac } if secret.verify(Side::Listener, &t, &mac) => Ok(()),
        BusResponse::Proof { .. } => Err(DialError::Refused(
            "the peer's proof of the cluster secret is wrong (another secret, or not a \
             member of this cluster): not talking to it"
                .into(),
        )),
        BusResponse::Error(why) => Err(DialError::Refused(why)),
        other => Err(DialError::Protocol(format!("bad proof reply: {other:?}"))),
    }
}

/// Creates one `PeerClient` per (target, purpose); openraft keeps them.
#[derive(Debug, Clone)]
pub struct Network {
    me: Arc<Identity>,
    /// Which requests each peer accepted, and when they were sent (for
    /// `raft::lease`).
    acks: Arc<Acks>,
    /// `bus-route` overrides: dial these instead of advertised addresses.
    routes: BTreeMap<NodeId, String>,
    dial: Arc<Mutex<BTreeMap<NodeId, DialBackoff>>>,
}

impl Network {
    pub fn new(me: Arc<Identity>, routes: BTreeMap<NodeId, String>, acks: Arc<Acks>) -> Network {
        Network {
            me,
            acks,
            routes,
            dial: Arc::default(),
        }
    }
}

impl Network {
    /// The bus address to dial for node `id`: its `bus-route` override if
    /// it has one, else `advertised`.
    pub fn route(&self, id: NodeId, advertised: &str) -> String {
        self.routes
            .get(&id)
            .cloned()
            .unwrap_or_else(|| advertised.to_string())
    }

    /// A client for member `target` (a full hello: it is authenticated as
    /// a peer of this cluster).
    pub fn peer(&self, target: NodeId, node: &NodeInfo) -> PeerClient {
        PeerClient {
            me: self.me.clone(),
            target,
            target_name: node.name.clone(),
            addr: self.route(target, &node.bus_addr),
            conn: None,
            dial: self.dial.clone(),
            acks: self.acks.clone(),
        }
    }

    /// One membership request to whatever listens on bus address `addr`,
    /// on a connection opened with a guest hello (the receiver's id and
    /// name are not known yet) and closed after the answer.
    pub async fn ask(
        &self,
        addr: &str,
        req: &BusRequest,
        ttl: Duration,
    ) -> Result<BusResponse, AskError> {
        let exchange = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| AskError::Unreachable(e.to_string()))?;
            stream
                .set_nodelay(true)
                .map_err(|e| AskError::Unreachable(e.to_string()))?;
            let mut conn = BufStream::new(stream);
            let hello = BusRequest::GuestHello(self.me.guest_hello(BUS_VERSION));
            let io = |e: io::Error| AskError::Protocol(e.to_string());
            match dial_handshake(&mut conn, &self.me, &hello).await {
                Ok(()) => {}
                Err(DialError::Refused(why)) => return Err(AskError::Refused(why)),
                Err(DialError::Io(e)) => return Err(io(e)),
                Err(DialError::Protocol(e)) => return Err(AskError::Protocol(e)),
            }
            write_frame(&mut conn, req).await.map_err(io)?;
            match read_frame::<_, BusResponse>(&mut conn).await.map_err(io)? {
                Some(BusResponse::Error(why)) => Err(AskError::Refused(why)),
                Some(resp) => Ok(resp),
                None => Err(AskError::Protocol("closed without an answer".into())),
            }
        };
        tokio::time::timeout(ttl, exchange)
            .await
            .unwrap_or(Err(AskError::Timeout(ttl)))
    }
}

/// Why a membership request over the bus got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    #[error("{0}")]
    Unreachable(String),
    /// The peer answered with an error (refused the hello or the request).
    #[error("refused: {0}")]
    Refused(String),
    /// Not our bus protocol (a wrong port?), or a broken connection.
    #[error("not a raftcache bus (wrong bus port?): {0}")]
    Protocol(String),
    #[error("no answer within {0:?} (wrong bus port?)")]
    Timeout(Duration),
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        self.peer(target, node)
    }
}

pub struct PeerClient {
    me: Arc<Identity>,
    target: NodeId,
    /// The target's node name as our membership records it.
    target_name: String,
    addr: String,
    conn: Option<BufStream<TcpStream>>,
    dial: Arc<Mutex<BTreeMap<NodeId, DialBackoff>>>,
    acks: Arc<Acks>,
}

/// Failed dials to one peer, shared by every client the factory made for
/// it: openraft retries a stream at once after a failed dial, so without
/// this a down peer means thousands of connection attempts (and warnings)
/// per second.
#[derive(Debug, Default, Clone, Copy)]
struct DialBackoff {
    failures: u32,
    next_try: Option<tokio::time::Instant>,
}

impl DialBackoff {
    const FIRST: Duration = Duration::from_millis(20);
    const MAX: Duration = Duration::from_millis(500);

    fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(5))
            .min(Self::MAX);
        self.next_try = Some(tokio::time::Instant::now() + delay);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BusError(String);

impl PeerClient {
    async fn connect(&mut self) -> io::Result<&mut BufStream<TcpStream>> {
        if self.conn.is_none() {
            let next_try = self.dial.lock().get(&self.target).and_then(|d| d.next_try);
            if let Some(at) = next_try {
                tokio::time::sleep_until(at).await;
            }
            let stream = match TcpStream::connect(&self.addr).await {
                Ok(s) => s,
                Err(e) => {
                    self.dial.lock().entry(self.target).or_default().failed();
                    return Err(e);
                }
            };
            stream.set_nodelay(true)?;
            let mut stream = BufStream::new(stream);
            let hello = self.me.hello(BUS_VERSION, self.target, &self.target_name);
            let refused =
                match dial_handshake(&mut stream, &self.me, &BusRequest::Hello(hello)).await {
                    Ok(()) => None,
                    Err(DialError::Io(e)) => return Err(e),
                    Err(DialError::Refused(why)) => Some(format!("bus handshake refused: {why}")),
                    Err(DialError::Protocol(why)) => Some(format!("bad bus hello reply: {why}")),
                };
            if let Some(why) = refused {
                // Back off as for a failed dial: a peer that refuses us will
                // keep refusing until an operator acts.
                self.dial.lock().entry(self.target).or_default().failed();
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
            }
            // Only an accepted hello ends the backoff: a peer that accepts
            // TCP but refuses us must not be redialled at once.
            self.dial.lock().remove(&self.target);
            self.conn = Some(stream);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// One request/response exchange; any failure drops the connection.
    async fn call(&mut self, req: &BusRequest, ttl: Duration) -> Result<BusResponse, CallError> {
        let fresh = self.conn.is_none();
        let result = tokio::time::timeout(ttl, async {
            let conn = self.connect().await.map_err(|e| (true, e))?;
            write_frame(conn, req).await.map_err(|e| (false, e))?;
            read_frame::<_, BusResponse>(conn)
                .await
                .map_err(|e| (false, e))?
                .ok_or_else(|| {
                    (
                        false,
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "peer closed the bus connection",
                        ),
                    )
                })
        })
        .await;
        match result {
            Ok(Ok(BusResponse::Error(e))) => {
                self.conn = None;
                Err(CallError::Remote(e))
            }
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err((connecting, e))) => {
                self.conn = None;
                if connecting || fresh {
                    Err(CallError::Unreachable(e.to_string()))
                } else {
                    Err(CallError::Network(e.to_string()))
                }
            }
            Err(_) => {
                self.conn = None;
                Err(CallError::Timeout)
            }
        }
    }

    /// Ask this peer (the leader) for a read index; `Err` is why not (not
    /// the leader any more, unreachable, timed out).
    pub async fn read_index(
        &mut self,
        lease: bool,
        ttl: Duration,
    ) -> Result<crate::raft::types::LogId, String> {
        match self.call(&BusRequest::ReadIndex { lease }, ttl).await {
            Ok(BusResponse::ReadIndex(log_id)) => Ok(log_id),
            Ok(other) => Err(format!("unexpected read-index reply: {other:?}")),
            Err(CallError::Unreachable(e) | CallError::Network(e) | CallError::Remote(e)) => Err(e),
            Err(CallError::Timeout) => Err("read index request timed out".into()),
        }
    }

    /// Ask this peer (the leader) to hand leadership to node `to`.
    pub async fn transfer_leadership(&mut self, to: NodeId, ttl: Duration) -> Result<(), AskError> {
        match self.call(&BusRequest::TransferLeadership { to }, ttl).await {
            Ok(BusResponse::Done) => Ok(()),
            Ok(other) => Err(AskError::Protocol(format!(
                "unexpected transfer reply: {other:?}"
            ))),
            Err(CallError::Remote(e)) => Err(AskError::Refused(e)),
            Err(CallError::Unreachable(e) | CallError::Network(e)) => Err(AskError::Unreachable(e)),
            Err(CallError::Timeout) => Err(AskError::Timeout(ttl)),
        }
    }

    fn unexpected(&self, resp: BusResponse) -> CallError {
        CallError::Network(format!(
            "unexpected bus response from node {}: {resp:?}",
            self.target
        ))
    }
}

/// A pipelined request written and not yet answered: its log range, its
/// leader's term and when it was written (`raft::lease`: an answer credits
/// exactly the request it answers, with that request's own sending time).
struct Sent {
    prev: Option<crate::raft::types::LogId>,
    last: Option<crate::raft::types::LogId>,
    term: u64,
    at: std::time::Instant,
}

struct PipelineState {
    rd: tokio::io::ReadHalf<BufStream<TcpStream>>,
    ranges: tokio::sync::mpsc::UnboundedReceiver<Sent>,
    writer: tokio::task::JoinHandle<()>,
    ttl: Duration,
}

impl Drop for PipelineState {
    fn drop(&mut self) {
        self.writer.abort();
    }
}

async fn pipeline_writer<S>(
    mut input: S,
    mut wr: tokio::io::WriteHalf<BufStream<TcpStream>>,
    ranges: tokio::sync::mpsc::UnboundedSender<Sent>,
) where
    S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin,
{
    use futures::StreamExt;
    while let Some(req) = input.next().await {
        let sent = Sent {
            prev: req.prev_log_id,
            last: req.entries.last().map(|e| e.log_id).or(req.prev_log_id),
            term: req.vote.leader_id.term,
            // Before the write: the peer cannot receive it earlier.
            at: std::time::Instant::now(),
        };
        if write_frame(&mut wr, &BusRequest::Append(req))
            .await
            .is_err()
        {
            return;
        }
        if ranges.send(sent).is_err() {
            return;
        }
    }
}

enum CallError {
    Unreachable(String),
    Network(String),
    Remote(String),
    Timeout,
}

impl CallError {
    /// openraft's two kinds: `Unreachable` (it backs off) or a plain
    /// network error (it retries).
    fn classify(self) -> Result<NetworkError<TypeConfig>, Unreachable<TypeConfig>> {
        match self {
            CallError::Unreachable(m) => Err(Unreachable::new(&BusError(m))),
            CallError::Network(m) | CallError::Remote(m) => Ok(NetworkError::new(&BusError(m))),
            CallError::Timeout => Ok(NetworkError::new(&BusError("bus request timed out".into()))),
        }
    }
}

impl From<CallError> for RPCError<TypeConfig> {
    fn from(e: CallError) -> Self {
        e.classify()
            .map_or_else(RPCError::Unreachable, RPCError::Network)
    }
}

impl From<CallError> for StreamingError<TypeConfig> {
    fn from(e: CallError) -> Self {
        e.classify()
            .map_or_else(StreamingError::Unreachable, StreamingError::Network)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotFile;

    /// Pipelined replication: requests are written as openraft produces them
    /// without waiting for the previous response; responses come back in
    /// order on the same connection (the peer serves a connection's frames
    /// in order) and are matched to the requests' log ranges.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        Box::pin(async move {
            let ttl = option.hard_ttl();
            // A failed dial is reported as the stream's first item, as the
            // sequential default does: openraft backs off on errors it sees
            // there, but retries at once when stream set-up itself fails.
            let dial = match tokio::time::timeout(ttl, self.connect()).await {
                Ok(Ok(_)) => Ok(self.conn.take().expect("connected above")),
                Ok(Err(e)) => Err(CallError::Unreachable(e.to_string())),
                Err(_) => Err(CallError::Timeout),
            };
            let conn = match dial {
                Ok(c) => c,
                Err(e) => {
                    self.conn = None;
                    let failed: BoxStream<'s, _> =
                        Box::pin(futures::stream::once(async move { Err(e.into()) }));
                    return Ok(failed);
                }
            };
            let (rd, wr) = tokio::io::split(conn);
            // Ranges of requests written and not yet answered, in order.
            let (ranges_tx, ranges_rx) = tokio::sync::mpsc::unbounded_channel();
            let writer = tokio::spawn(pipeline_writer(input, wr, ranges_tx));
            let state = PipelineState {
                rd,
                ranges: ranges_rx,
                writer,
                ttl,
            };
            let (acks, target) = (self.acks.clone(), self.target);
            let strm = futures::stream::unfold(Some(state), move |state| {
                let acks = acks.clone();
                async move {
                    let mut st = state?;
                    let Sent {
                        prev,
                        last,
                        term,
                        at,
                    } = st.ranges.recv().await?;
                    let resp =
                        tokio::time::timeout(st.ttl, read_frame::<_, BusResponse>(&mut st.rd))
                            .await;
                    let resp = match resp {
                        Ok(Ok(Some(BusResponse::Append(r)))) => r,
                        Ok(Ok(Some(BusResponse::Error(e)))) => {
                            return Some((Err(CallError::Remote(e).into()), None))
                        }
                        Ok(Ok(other)) => {
                            let e = CallError::Network(format!(
                                "unexpected pipelined reply: {other:?}"
                            ));
                            return Some((Err(e.into()), None));
                        }
                        Ok(Err(e)) => {
                            return Some((Err(CallError::Network(e.to_string()).into()), None))
                        }
                        Err(_) => return Some((Err(CallError::Timeout.into()), None)),
                    };
                    if !matches!(resp, AppendEntriesResponse::HigherVote(_)) {
                        // Answered as a follower of this term: it accepted
                        // this request (a conflict too), sent at `at`.
                        acks.accepted(target, term, at);
                    }
                    let keep_going = match &resp {
                        AppendEntriesResponse::Success => true,
                        AppendEntriesResponse::PartialSuccess(upto) => *upto == last,
                        _ => false,
                    };
                    let result = resp.into_stream_result(prev, last);
                    let keep_going = keep_going && result.is_ok();
                    if !keep_going {
                        st.writer.abort();
                    }
                    Some((Ok(result), keep_going.then_some(st)))
                }
            });
            let strm: BoxStream<'s, _> = Box::pin(strm);
            Ok(strm)
        })
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let (term, at) = (rpc.vote.leader_id.term, std::time::Instant::now());
        match self
            .call(&BusRequest::Append(rpc), option.hard_ttl())
            .await?
        {
            BusResponse::Append(r) => {
                if !matches!(r, AppendEntriesResponse::HigherVote(_)) {
                    self.acks.accepted(self.target, term, at);
                }
                Ok(r)
            }
            other => Err(self.unexpected(other).into()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(&BusRequest::Vote(rpc), option.hard_ttl()).await? {
            BusResponse::Vote(r) => Ok(r),
            other => Err(self.unexpected(other).into()),
        }
    }

    /// Implemented for real: openraft's default grants every pre-vote,
    /// which would make PreVote useless.
    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(&BusRequest::PreVote(rpc), option.hard_ttl())
            .await?
        {
            BusResponse::Vote(r) => Ok(r),
            other => Err(self.unexpected(other).into()),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(&BusRequest::TransferLeader(req), option.hard_ttl())
            .await?
        {
            BusResponse::TransferLeader(r) => Ok(r),
            other => Err(self.unexpected(other).into()),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let total = snapshot
            .snapshot
            .len()
            .map_err(|e| StreamingError::from(CallError::Network(e.to_string())))?;
        let chunk = option
            .snapshot_chunk_size()
            .unwrap_or(SNAPSHOT_CHUNK)
            .clamp(4096, 16 << 20);
        let send = async {
            let mut offset = 0u64;
            loop {
                // A positional read of up to `chunk` bytes is disk IO: off
                // the runtime that also carries this node's heartbeats.
                let file = snapshot.snapshot.clone();
                let data = tokio::task::spawn_blocking(move || {
                    let mut data = vec![0u8; chunk];
                    let n = file.read_at(offset, &mut data)?;
                    data.truncate(n);
                    Ok::<_, io::Error>(data)
                })
                .await
                .map_err(io::Error::other)
                .and_then(|r| r)
                .map_err(|e| CallError::Network(format!("read snapshot: {e}")))?;
                let n = data.len();
                let done = offset + n as u64 >= total;
                let req = BusRequest::SnapshotChunk {
                    vote,
                    meta: snapshot.meta.clone(),
                    offset,
                    data: data.into(),
                    done,
                };
                match self
                    .call(&req, option.hard_ttl().max(Duration::from_secs(10)))
                    .await?
                {
                    BusResponse::ChunkAccepted if !done => offset += n as u64,
                    BusResponse::Snapshot(r) if done => return Ok(r),
                    other => return Err(self.unexpected(other)),
                }
                if n == 0 {
                    return Err(CallError::Network(
                        "snapshot file shrank while sending".into(),
                    ));
                }
            }
        };
        tokio::select! {
            r = send => r.map_err(StreamingError::from),
            closed = cancel => Err(StreamingError::Closed(closed)),
        }
    }
}
