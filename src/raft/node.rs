//! One raft group on this node: openraft plus the three things that make it
//! fast and correct for a cache —
//!
//! * the **proposer**: writes from every connection queue on one channel;
//!   a task drains whatever is queued into ONE `Proposal` (one log entry,
//!   one apply) and submits it without waiting, so many entries are in
//!   flight and the log store can group-commit them;
//! * the **read barrier**: linearizable reads wait for one ReadIndex round;
//!   rounds are shared by every read that arrived before the round began;
//! * the **follower read barrier**: a follower serving a read asks the
//!   leader for a read index over the bus (one request for every read that
//!   arrived before it was sent) and waits until it has applied that far;
//! * the **cluster view**: leader and membership copied out of openraft's
//!   metrics on every change, so the hot path checks leadership with one
//!   atomic load.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::watch::WatchReceiver;
use openraft::impls::ProgressResponder;
use openraft::ServerState;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot};

pub use crate::config::ReadConsistency;
use crate::keyspace::{Limits, Outcome, ReadOp, WriteOp};
use crate::raft::bounds::{LogBounds, LogBoundsStats, LogLimits};
pub use crate::raft::clock::unix_ms;
use crate::raft::clock::Clock;
use crate::raft::identity::Identity;
use crate::raft::lease::{ReadConfirm, Refused};
use crate::raft::log_store::{LogStore, LogStoreOptions};
use crate::raft::network::{Network, PeerClient};
use crate::raft::state_machine::{SmData, StateMachine};
use crate::raft::types::{NodeId, NodeInfo, Proposal, Raft};

/// Everything `RaftNode::start` needs, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct RaftSettings {
    pub node_id: NodeId,
    /// Node name and cluster id, checked on every bus connection.
    pub identity: Arc<Identity>,
    pub me: NodeInfo,
    pub dir: PathBuf,
    pub limits: Limits,
    pub lmdb_map_size: usize,
    pub unsafe_no_fsync: bool,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_logs_since_last: u64,
    pub max_in_snapshot_log_to_keep: u64,
    pub max_payload_entries: u64,
    pub read_consistency: ReadConsistency,
    pub active_expire_hz: u32,
    /// How far ahead of the replicated clock a leader's wall clock may be and
    /// still nudge it forward (ms); further, or behind, is logged and ignored.
    pub clock_max_skew_ms: u64,
    /// Ops per proposal at most (bounds apply latency).
    pub max_ops_per_proposal: usize,
    /// Byte bounds of the log (entry cap, compaction, admission).
    pub log_limits: LogLimits,
    /// Per-peer bus address overrides (`bus-route`).
    pub bus_route: BTreeMap<NodeId, String>,
    /// How long a follower read may wait for the leader's read index and
    /// for local apply up to it before failing with CLUSTERDOWN.
    pub read_index_timeout_ms: u64,
}

/// Why a write or read could not be served here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RaftError {
    /// Not the leader; the leader if known.
    #[error("not the leader")]
    NotLeader(Option<(NodeId, NodeInfo)>),
    /// The write may or may not have been applied (leader changed after the
    /// entry was appended).
    #[error("write outcome unknown after a leader change")]
    Unknown,
    /// A quorum could not be reached.
    #[error("no quorum")]
    NoQuorum,
    /// A follower could not obtain a read index from the leader (or apply
    /// up to it) in time.
    #[error("no reachable leader to confirm the read")]
    LeaderUnreachable,
    #[error("raft is shutting down: {0}")]
    Fatal(String),
    /// One write too large for any log entry; nothing was proposed.
    #[error("write of {bytes} bytes exceeds {knob} ({limit} bytes)")]
    EntryTooLarge {
        bytes: u64,
        limit: u64,
        knob: &'static str,
    },
    /// The log is at its byte limit until a snapshot and purge free space;
    /// nothing was proposed.
    #[error("raft log full ({limit} bytes)")]
    LogFull { limit: u64 },
}

/// This node's part in the raft group, as INFO and RAFTCACHE STATUS show
/// it (`raft_state:Leader`). Our own type: nothing above `raft/` sees
/// openraft's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Learner,
    Follower,
    Candidate,
    Leader,
    /// Raft has stopped (fatal error or shutdown).
    Shutdown,
}

impl Role {
    fn of(state: ServerState) -> Role {
        match state {
            ServerState::Learner => Role::Learner,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Leader => Role::Leader,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the rest of the server sees of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub term: u64,
    pub leader: Option<NodeId>,
    pub state: Option<Role>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// A membership change is in its joint phase (old and new configs both
    /// need a quorum).
    pub joint: bool,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    pub last_applied: u64,
    pub last_log_index: u64,
    pub committed: u64,
    pub snapshot_index: u64,
    pub purged_index: u64,
    /// Leader only: matched index per follower.
    pub replication: BTreeMap<NodeId, u64>,
    /// Leader only: when each follower last acknowledged an append or a
    /// heartbeat (`None`: never since this node leads).
    pub acked: BTreeMap<NodeId, Option<std::time::Instant>>,
}

impl ClusterView {
    pub fn leader_info(&self) -> Option<(NodeId, NodeInfo)> {
        let id = self.leader?;
        Some((id, self.nodes.get(&id)?.clone()))
    }
}

type WriteReply = oneshot::Sender<Result<Outcome, RaftError>>;
/// A queued write (the op and who waits for it) and its encoded size.
type Queued = ((WriteOp, WriteReply), u64);
type ReadWaiter = oneshot::Sender<Result<(), RaftError>>;

/// The keyspace's size, for INFO (`RaftNode::keyspace_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyspaceStats {
    pub keys: usize,
    pub expires: usize,
    /// Bytes the keyspace accounts for (INFO `used_memory`).
    pub used_memory: usize,
}

/// A running raft group member.
pub struct RaftNode {
    pub id: NodeId,
    pub me: NodeInfo,
    /// Node name and cluster id (`raft::identity`).
    pub identity: Arc<Identity>,
    /// The openraft handle: only `raft/` (this node, the bus service and
    /// `raft::membership`) drives it.
    pub(super) raft: Raft,
    /// The bus client factory (membership requests dial peers with it).
    pub(super) network: Network,
    data: Arc<RwLock<SmData>>,
    is_leader: Arc<AtomicBool>,
    view: Arc<RwLock<Arc<ClusterView>>>,
    proposals: mpsc::UnboundedSender<Queued>,
    bounds: Arc<LogBounds>,
    reads: mpsc::UnboundedSender<ReadWaiter>,
    follower_reads: mpsc::UnboundedSender<ReadWaiter>,
    pub read_consistency: ReadConsistency,
    /// Confirms leadership for reads (ours and followers' read indexes).
    pub confirm: ReadConfirm,
    clock: Arc<Clock>,
    /// When an append (or heartbeat) from a leader last arrived here.
    leader_contact: Arc<LeaderContact>,
    /// A replication link silent for longer than this is reported down:
    /// twice the longest election timeout (at least 1 s), so a loaded
    /// machine's late heartbeat does not flap the status.
    pub link_timeout: Duration,
    /// `election-timeout-max`: how long a follower waits for a leader.
    pub election_timeout: Duration,
    /// When this node last started an election by CLUSTER FAILOVER
    /// FORCE/TAKEOVER (`membership::failover` allows one per election timeout).
    pub(super) forced_election: parking_lot::Mutex<Option<std::time::Instant>>,
}

/// The follower's side of the replication link: the time of the last
/// AppendEntries a leader sent (openraft's metrics only have the leader's
/// side). INFO replication reports `master_link_status` from it.
#[derive(Debug, Default)]
pub struct LeaderContact {
    last: parking_lot::Mutex<Option<std::time::Instant>>,
}

impl LeaderContact {
    /// An append from the current leader was accepted or answered.
    pub fn touch(&self) {
        *self.last.lock() = Some(std::time::Instant::now());
    }

    /// Time since the last append from a leader (`None`: never).
    pub fn since(&self) -> Option<Duration> {
        self.last.lock().map(|t| t.elapsed())
    }
}

impl RaftNode {
    pub async fn start(s: RaftSettings) -> Result<Arc<RaftNode>, StartError> {
        let log_store = LogStore::open(
            &s.dir,
            LogStoreOptions {
                map_size: s.lmdb_map_size,
                unsafe_no_fsync: s.unsafe_no_fsync,
            },
        )?;
        let bounds = Arc::new(LogBounds::new(log_store.usage(), s.log_limits)?);
        let clock = Arc::new(Clock::new(s.clock_max_skew_ms));
        let sm = StateMachine::open(&s.dir.join("snapshots"), clock.clone())?;
        let data = sm.data();
        let config = openraft::Config {
            cluster_name: "raftcache".into(),
            heartbeat_interval: s.heartbeat_interval_ms,
            election_timeout_min: s.election_timeout_min_ms,
            election_timeout_max: s.election_timeout_max_ms,
            enable_pre_vote: Some(true),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(s.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: s.max_in_snapshot_log_to_keep,
            max_payload_entries: s.max_payload_entries,
            ..Default::default()
        };
        let config = Arc::new(
            config
                .validate()
                .map_err(|e| StartError::Config(e.to_string()))?,
        );
        let acks = Arc::new(crate::raft::lease::Acks::default());
        let network = Network::new(s.identity.clone(), s.bus_route.clone(), acks.clone());
        let raft = Raft::new(s.node_id, config, network.clone(), log_store, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let confirm = ReadConfirm {
            raft: raft.clone(),
            id: s.node_id,
            acks,
            // openraft's leader lease is `election_timeout_max`
            // (`EngineConfig`): followers refuse votes that long after
            // the last append they accepted.
            lease_window: ReadConfirm::window(Duration::from_millis(s.election_timeout_max_ms)),
        };
        let (ptx, prx) = mpsc::unbounded_channel();
        let (rtx, rrx) = mpsc::unbounded_channel();
        let (ftx, frx) = mpsc::unbounded_channel();
        let node = Arc::new(RaftNode {
            id: s.node_id,
            me: s.me.clone(),
            raft: raft.clone(),
            network: network.clone(),
            data,
            is_leader: Arc::new(AtomicBool::new(false)),
            view: Arc::new(RwLock::new(Arc::new(ClusterView::default()))),
            proposals: ptx,
            bounds: bounds.clone(),
            reads: rtx,
            follower_reads: ftx,
            read_consistency: s.read_consistency,
            confirm: confirm.clone(),
            clock: clock.clone(),
            leader_contact: Arc::default(),
            link_timeout: Duration::from_millis((2 * s.election_timeout_max_ms).max(1000)),
            election_timeout: Duration::from_millis(s.election_timeout_max_ms),
            forced_election: parking_lot::Mutex::new(None),
            identity: s.identity.clone(),
        });
        tokio::spawn(watch_metrics(
            raft.clone(),
            node.is_leader.clone(),
            node.view.clone(),
        ));
        tokio::spawn(run_proposer(
            raft.clone(),
            prx,
            s.max_ops_per_proposal,
            bounds.clone(),
            s.limits,
            clock,
        ));
        tokio::spawn(bounds.run(raft.clone(), node.view.clone()));
        if s.read_consistency != ReadConsistency::Stale {
            let lease = s.read_consistency == ReadConsistency::Lease;
            tokio::spawn(run_read_barrier(confirm, rrx, lease));
            tokio::spawn(run_follower_reads(
                FollowerReads {
                    raft: raft.clone(),
                    id: s.node_id,
                    view: node.view.clone(),
                    network,
                    lease: s.read_consistency == ReadConsistency::Lease,
                    timeout: Duration::from_millis(s.read_index_timeout_ms.max(1)),
                    client: None,
                },
                frx,
            ));
        }
        tokio::spawn(run_active_expiry(node.clone(), s.active_expire_hz.max(1)));
        Ok(node)
    }

    /// True if this node believes it is the leader (cheap; the proposal or
    /// read barrier is what really confirms it).
    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire)
    }

    pub fn view(&self) -> Arc<ClusterView> {
        self.view.read().clone()
    }

    /// The replicated clock as this node estimates it (unix ms): what
    /// "now" is for TTLs, reads and expiry. Never the raw wall clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The follower's record of leader appends (the bus service touches it).
    pub fn leader_contact(&self) -> Arc<LeaderContact> {
        self.leader_contact.clone()
    }

    /// The log's size and limits, for INFO.
    pub fn log_bounds(&self) -> LogBoundsStats {
        self.bounds.stats(self.view().snapshot_index)
    }

    /// Build a snapshot now (RAFTCACHE SNAPSHOT).
    pub async fn trigger_snapshot(&self) -> Result<(), RaftError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| RaftError::Fatal(e.to_string()))
    }

    /// Start an election now (CLUSTER FAILOVER FORCE / TAKEOVER).
    pub async fn elect(&self) -> Result<(), RaftError> {
        self.raft
            .trigger()
            .elect(false)
            .await
            .map_err(|e| RaftError::Fatal(e.to_string()))
    }

    /// The keyspace's size for INFO: keys, keys with a deadline, and the
    /// bytes it accounts for.
    pub fn keyspace_stats(&self) -> KeyspaceStats {
        let d = self.data.read();
        KeyspaceStats {
            keys: d.keyspace.len(),
            expires: d.keyspace.expires_len(),
            used_memory: d.keyspace.used_memory(),
        }
    }

    /// The users set by ACL SETUSER / DELUSER, as applied on this node.
    pub fn acl_users(&self) -> Arc<crate::keyspace::acl::AclMap> {
        self.data.read().keyspace.acl_users()
    }

    /// `(last applied index, keyspace digest)`, read together: replicas at
    /// the same index must have the same digest (RAFTCACHE DIGEST).
    pub fn digest(&self) -> (u64, u64) {
        let d = self.data.read();
        let applied = d.last_applied.map(|l| l.index).unwrap_or(0);
        (applied, d.keyspace.digest())
    }

    /// Evaluate a read against this node's state (after a read barrier, or
    /// without one in `stale` mode). Expired keys are hidden by the later of
    /// this node's estimate of the replicated clock and the applied clock
    /// (never the raw wall clock, which may jump). A key listing whose reply
    /// would exceed `max_reply` bytes stops early with
    /// `KeyspaceError::ReplyTooLarge`.
    pub fn read_local(&self, op: &ReadOp, max_reply: usize) -> Outcome {
        let d = self.data.read();
        let now = self.now_ms().max(d.clock_ms);
        d.keyspace.read_bounded(op, now, max_reply)
    }

    /// Queue a write. The order of `propose` calls on one task is the order
    /// in the log; the returned future resolves once the op is applied.
    /// A write no log entry could hold is refused here, before it is queued.
    pub fn propose(
        &self,
        op: WriteOp,
    ) -> impl std::future::Future<Output = Result<Outcome, RaftError>> {
        let (tx, rx) = oneshot::channel();
        // The same encoding the log store writes (postcard), so the size is
        // exact, not an estimate.
        let sent = match crate::raft::bounds::encoded_len(&op) {
            Ok(bytes) => self
                .bounds
                .check_op(bytes)
                .map(|()| self.proposals.send(((op, tx), bytes)).is_ok()),
            Err(e) => Err(RaftError::Fatal(format!("cannot encode write: {e}"))),
        };
        async move {
            match sent {
                Ok(true) => {}
                Ok(false) => return Err(RaftError::Fatal("proposer stopped".into())),
                Err(e) => return Err(e),
            }
            rx.await
                .unwrap_or_else(|_| Err(RaftError::Fatal("proposer dropped the write".into())))
        }
    }

    /// Wait until a local read would be linearizable (per `read_consistency`).
    pub async fn read_barrier(&self) -> Result<(), RaftError> {
        if self.read_consistency == ReadConsistency::Stale {
            return if self.is_leader() {
                Ok(())
            } else {
                Err(RaftError::NotLeader(self.view().leader_info()))
            };
        }
        // A leader elected a moment ago cannot serve ReadIndex until it has
        // committed an entry of its own term; openraft then answers "forward
        // to leader" with no leader (or itself). That is not a redirect a
        // client can act on, so wait it out for up to a second.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let (tx, rx) = oneshot::channel();
            self.reads
                .send(tx)
                .map_err(|_| RaftError::Fatal("read barrier stopped".into()))?;
            let result = rx
                .await
                .unwrap_or_else(|_| Err(RaftError::Fatal("read barrier dropped".into())));
            let settling = matches!(&result, Err(RaftError::NotLeader(l)) if l.as_ref().is_none_or(|(id, _)| *id == self.id));
            if settling && self.is_leader() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            return result;
        }
    }
}

impl RaftNode {
    /// Wait until a read served from this (follower) node's state is
    /// linearizable: a read index from the leader, then local apply up to
    /// it. Concurrent callers share one request. `stale` mode never gets
    /// here (the router serves it locally).
    pub async fn follower_read_barrier(&self) -> Result<(), RaftError> {
        let (tx, rx) = oneshot::channel();
        self.follower_reads
            .send(tx)
            .map_err(|_| RaftError::Fatal("follower read barrier stopped".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(RaftError::Fatal("follower read barrier dropped".into())))
    }
}

/// What the follower read task needs.
struct FollowerReads {
    raft: Raft,
    id: NodeId,
    view: Arc<RwLock<Arc<ClusterView>>>,
    network: Network,
    lease: bool,
    timeout: Duration,
    /// The bus client to the leader last asked, kept while it leads.
    client: Option<(NodeId, NodeInfo, PeerClient)>,
}

impl FollowerReads {
    /// A read index from whoever leads, retried until `deadline` (a
    /// broken pooled connection, an election in progress, a leader that
    /// just stepped down): the read fails only if no leader answers in time.
    async fn read_index(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<crate::raft::types::LogId, RaftError> {
        use openraft::network::RaftNetworkFactory;
        loop {
            let now = tokio::time::Instant::now();
            let leader = self.view.read().leader_info();
            let err = match leader {
                None => RaftError::NotLeader(None),
                Some((lid, info)) => {
                    let reuse = self
                        .client
                        .as_ref()
                        .is_some_and(|(cid, cinfo, _)| *cid == lid && *cinfo == info);
                    if !reuse {
                        let c = self.network.new_client(lid, &info).await;
                        self.client = Some((lid, info, c));
                    }
                    let (_, _, c) = self.client.as_mut().expect("set above");
                    match c.read_index(self.lease, deadline - now).await {
                        Ok(log_id) => return Ok(log_id),
                        Err(e) => {
                            tracing::debug!(leader = lid, error = %e, "no read index from the leader");
                            RaftError::LeaderUnreachable
                        }
                    }
                }
            };
            let pause = Duration::from_millis(20);
            if tokio::time::Instant::now() + pause >= deadline {
                return Err(err);
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// etcd's follower read: every read waiting when a request is sent shares
/// that request's read index; reads arriving meanwhile wait for the next
/// one (a read index obtained before a read arrived could miss writes that
/// completed before it). Waiting for apply runs in its own task, so the
/// next request goes out while a batch catches up.
async fn run_follower_reads(mut f: FollowerReads, mut rx: mpsc::UnboundedReceiver<ReadWaiter>) {
    use openraft::raft::linearizable_read::{Linearizer, ReadLogId};
    let mut waiters = Vec::new();
    while let Some(w) = rx.recv().await {
        waiters.push(w);
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        let batch = std::mem::take(&mut waiters);
        metrics::counter!(crate::metrics::FOLLOWER_READ_INDEX_TOTAL).increment(1);
        let started = tokio::time::Instant::now();
        let result = f.read_index(started + f.timeout).await;
        let log_id = match result {
            Ok(l) => l,
            Err(e) => {
                for w in batch {
                    let _ = w.send(Err(e.clone()));
                }
                continue;
            }
        };
        let raft = f.raft.clone();
        let id = f.id;
        let left = f.timeout.saturating_sub(started.elapsed());
        tokio::spawn(async move {
            let lin = Linearizer::new(id, ReadLogId::from_log_id(log_id), None);
            let r = match lin.try_await_ready(&raft, Some(left)).await {
                Ok(Ok(_)) => Ok(()),
                // Cut off from the leader after it answered: never stale.
                Ok(Err(_)) => Err(RaftError::LeaderUnreachable),
                Err(e) => Err(RaftError::Fatal(e.to_string())),
            };
            for w in batch {
                let _ = w.send(r.clone());
            }
        });
    }
}

fn forward(f: &openraft::error::ForwardToLeader<crate::raft::types::TypeConfig>) -> RaftError {
    match (&f.leader_id, &f.leader_node) {
        (Some(id), Some(n)) => RaftError::NotLeader(Some((*id, n.clone()))),
        _ => RaftError::NotLeader(None),
    }
}

async fn run_proposer(
    raft: Raft,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    max_ops: usize,
    bounds: Arc<LogBounds>,
    limits: Limits,
    clock: Arc<Clock>,
) {
    // A write that did not fit the previous batch starts the next one.
    let mut carried: Option<Queued> = None;
    loop {
        let first = match carried.take() {
            Some(q) => q,
            None => match rx.recv().await {
                Some(q) => q,
                None => return,
            },
        };
        let (batch, rest) = bounds.fill(
            first,
            || rx.try_recv().ok(),
            max_ops,
            |(_, tx), e| {
                let _ = tx.send(Err(e));
            },
        );
        carried = rest;
        if batch.items.is_empty() {
            continue;
        }
        let batch_bytes = batch.bytes;
        let (ops, waiters): (Vec<WriteOp>, Vec<WriteReply>) = batch.items.into_iter().unzip();
        metrics::counter!(crate::metrics::PROPOSALS_TOTAL).increment(1);
        metrics::counter!(crate::metrics::PROPOSED_OPS_TOTAL).increment(ops.len() as u64);
        let proposal = Proposal {
            now_ms: clock.leader_now_ms(unix_ms()),
            limits,
            ops,
        };
        let batch = waiters;
        let (responder, result) = ProgressResponder::complete_only();
        if let Err(e) = raft.write(proposal).responder(responder).await {
            let err = RaftError::Fatal(e.to_string());
            for w in batch {
                let _ = w.send(Err(err.clone()));
            }
            continue;
        }
        let in_flight = bounds.in_flight(batch_bytes);
        tokio::spawn(async move {
            let outcome = match result.await {
                Ok(Ok(resp)) => Ok(resp.data.outcomes),
                Ok(Err(e)) => Err(match &e {
                    openraft::error::ClientWriteError::ForwardToLeader(f) => forward(f),
                    openraft::error::ClientWriteError::LogEntryDiscarded(_) => RaftError::Unknown,
                    other => RaftError::Fatal(other.to_string()),
                }),
                Err(_) => Err(RaftError::Unknown),
            };
            drop(in_flight);
            match outcome {
                Ok(outcomes) => {
                    for (w, o) in batch.into_iter().zip(outcomes) {
                        let _ = w.send(Ok(o));
                    }
                }
                Err(e) => {
                    for w in batch {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        });
    }
}

/// Every read waiting when a confirmation starts shares it; reads arriving
/// meanwhile wait for the next one. `ReadConfirm::confirm` judges the lease
/// by the monotonic clock *after* openraft's grant and after the apply wait
/// (see `raft::lease`), and the waiters read the keyspace only after it
/// answers, so no read is answered from a lease that had run out when the
/// read was confirmed, however long the process was stopped before.
async fn run_read_barrier(
    confirm: ReadConfirm,
    mut rx: mpsc::UnboundedReceiver<ReadWaiter>,
    lease: bool,
) {
    let mut waiters = Vec::new();
    while let Some(w) = rx.recv().await {
        waiters.push(w);
        while let Ok(w) = rx.try_recv() {
            waiters.push(w);
        }
        metrics::counter!(crate::metrics::READ_BARRIERS_TOTAL).increment(1);
        let started = std::time::Instant::now();
        let confirmed = confirm.confirm(lease, true).await;
        metrics::histogram!(crate::metrics::READ_BARRIER_SECONDS).record(started.elapsed());
        let result = match confirmed {
            Ok(_) => Ok(()),
            Err(Refused::Unconfirmed) => Err(RaftError::NoQuorum),
            Err(Refused::Raft(e)) => Err(match e.api_error() {
                Some(openraft::error::LinearizableReadError::ForwardToLeader(f)) => forward(f),
                Some(openraft::error::LinearizableReadError::QuorumNotEnough(_)) => {
                    RaftError::NoQuorum
                }
                None => RaftError::Fatal(e.to_string()),
            }),
        };
        for w in waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }
}

async fn watch_metrics(
    raft: Raft,
    is_leader: Arc<AtomicBool>,
    view: Arc<RwLock<Arc<ClusterView>>>,
) {
    let mut rx = raft.metrics();
    let mut last_leader = None;
    let mut role = None;
    loop {
        let v = {
            let m = rx.borrow_watched();
            let membership = m.membership_config.membership();
            ClusterView {
                term: m.current_term,
                leader: m.current_leader,
                state: Some(Role::of(m.state)),
                voters: membership.voter_ids().collect(),
                learners: membership.learner_ids().collect(),
                joint: membership.get_joint_config().len() > 1,
                nodes: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
                last_applied: m.last_applied.map(|l| l.index).unwrap_or(0),
                last_log_index: m.last_log_index.unwrap_or(0),
                committed: m.local_committed.map(|l| l.index).unwrap_or(0),
                snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
                purged_index: m.purged.map(|l| l.index).unwrap_or(0),
                replication: m
                    .replication
                    .as_ref()
                    .map(|r| {
                        r.iter()
                            .map(|(id, l)| (*id, l.as_ref().map(|l| l.index).unwrap_or(0)))
                            .collect()
                    })
                    .unwrap_or_default(),
                acked: m
                    .heartbeat
                    .as_ref()
                    .map(|h| {
                        let now = std::time::Instant::now();
                        h.iter()
                            .map(|(id, t)| {
                                use openraft::Instant as _;
                                (*id, t.as_ref().and_then(|t| now.checked_sub(t.elapsed())))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        };
        if v.state != role {
            role = v.state;
            tracing::info!(role = ?v.state, term = v.term, leader = ?v.leader, "raft role changed");
        }
        is_leader.store(v.state == Some(Role::Leader), Ordering::Release);
        if v.leader != last_leader {
            metrics::counter!(crate::metrics::RAFT_LEADER_CHANGES_TOTAL).increment(1);
            last_leader = v.leader;
        }
        export_view(&v);
        *view.write() = Arc::new(v);
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Copy what the raft metrics say to the `/metrics` gauges.
fn export_view(v: &ClusterView) {
    use crate::metrics as m;
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    metrics::gauge!(m::RAFT_TERM).set(v.term as f64);
    metrics::gauge!(m::RAFT_LAST_APPLIED).set(v.last_applied as f64);
    metrics::gauge!(m::RAFT_LAST_LOG_INDEX).set(v.last_log_index as f64);
    metrics::gauge!(m::RAFT_COMMITTED).set(v.committed as f64);
    metrics::gauge!(m::RAFT_SNAPSHOT_INDEX).set(v.snapshot_index as f64);
    metrics::gauge!(m::RAFT_IS_LEADER).set(flag(v.state == Some(Role::Leader)));
    for role in [
        Role::Learner,
        Role::Follower,
        Role::Candidate,
        Role::Leader,
        Role::Shutdown,
    ] {
        let name = role.to_string().to_ascii_lowercase();
        metrics::gauge!(m::RAFT_ROLE, "role" => name).set(flag(v.state == Some(role)));
    }
    metrics::gauge!(m::RAFT_LEADER_ID).set(v.leader.unwrap_or(0) as f64);
    metrics::gauge!(m::RAFT_VOTERS).set(v.voters.len() as f64);
    metrics::gauge!(m::RAFT_LEARNERS).set(v.learners.len() as f64);
    metrics::gauge!(m::RAFT_JOINT_CONFIG).set(flag(v.joint));
    // One series per follower of the membership: bounded by its size.
    for (id, matched) in v
        .replication
        .iter()
        .filter(|(id, _)| Some(**id) != v.leader)
    {
        metrics::gauge!(m::RAFT_FOLLOWER_MATCHED_INDEX, "follower" => id.to_string())
            .set(*matched as f64);
    }
}

/// Redis's active expiry, run on the leader only: sample 20 keys with a
/// deadline, and repeat while more than 25% of the sample had expired (and
/// the cycle's time budget lasts). The deletions are proposed, so every
/// replica deletes the same keys at the same log index.
async fn run_active_expiry(node: Arc<RaftNode>, hz: u32) {
    const SAMPLE: usize = 20;
    let period = Duration::from_millis(1000 / u64::from(hz));
    let budget = period / 4;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !node.is_leader() {
            continue;
        }
        let started = std::time::Instant::now();
        let now = node.now_ms();
        let mut expired = Vec::new();
        {
            let d = node.data.read();
            loop {
                let (sampled, found) = d.keyspace.sample_expired(now, SAMPLE);
                let n = found.len();
                expired.extend(found);
                if sampled == 0
                    || n * 4 <= sampled
                    || started.elapsed() > budget
                    || expired.len() >= 10_000
                {
                    break;
                }
            }
        }
        if expired.is_empty() {
            continue;
        }
        expired.sort();
        expired.dedup();
        let n = expired.len();
        match node.propose(WriteOp::DeleteExpired { keys: expired }).await {
            Ok(Outcome::Int(deleted)) => metrics::counter!(crate::metrics::EXPIRED_KEYS_TOTAL)
                .increment(deleted.max(0) as u64),
            Ok(_) => {}
            Err(e) => tracing::debug!(candidates = n, error = %e, "active expiry proposal failed"),
        }
    }
}

/// Why a raft group could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Storage(#[from] std::io::Error),
    #[error("raft config: {0}")]
    Config(String),
    #[error("raft start: {0}")]
    Raft(String),
}
