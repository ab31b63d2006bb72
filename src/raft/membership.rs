//! Membership as a raft capability: bootstrap, join, add learner, promote,
//! remove, leader transfer and who-am-I, with typed errors. Nodes ask each
//! other over the raft bus (`BusRequest::{WhoAreYou, Join,
//! TransferLeadership}`), never over the client port. The server renders
//! [`MembershipError`] as Redis replies; nothing above `raft/` sees an
//! openraft type. See docs/membership.md.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError};
use openraft::ChangeMembers;

use crate::raft::identity::GuestHello;
use crate::raft::network::{AskError, BusRequest, BusResponse, JoinReply};
use crate::raft::node::{ClusterView, RaftNode};
use crate::raft::types::{NodeId, NodeInfo, TypeConfig};

/// Redis's rule: a node's cluster bus listens on its client port + 10000
/// unless told otherwise (`ip:port@cport`).
pub const BUS_PORT_OFFSET: u16 = 10000;
/// How long a membership change is retried while openraft says it is
/// transient (a previous change in flight, a fresh leader not ready).
const CHANGE_RETRY: Duration = Duration::from_secs(10);
/// A joining node keeps trying this long.
const JOIN_DEADLINE: Duration = Duration::from_secs(120);
/// A join waits for the learner to catch up on the leader: allow time.
const JOIN_TTL: Duration = Duration::from_secs(60);
/// Who-are-you and transfer requests.
const ASK_TTL: Duration = Duration::from_secs(5);

/// Why a membership request failed. The texts are Redis-style (the server
/// prefixes `ERR`, or answers `MOVED` / `CLUSTERDOWN` for `NotLeader`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MembershipError {
    /// Only the leader changes membership; the leader if known.
    #[error("not the leader")]
    NotLeader(Option<(NodeId, NodeInfo)>),
    /// The change contradicts the membership or the node's identity.
    #[error("{0}")]
    Conflict(String),
    /// CLUSTER FORGET of a name no member has.
    #[error("Unknown node {0}")]
    UnknownNode(String),
    /// The other node's cluster bus could not be reached or did not speak
    /// our bus protocol.
    #[error("cannot reach the cluster bus at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("timed out: {0}")]
    Timeout(String),
    /// Raft itself failed (shutting down, storage).
    #[error("raft: {0}")]
    Raft(String),
}

/// A member's address as `--join` and `RAFTCACHE ADD-LEARNER` take it:
/// `host:port[@busport]` (Redis's `ip:port@cport` of CLUSTER NODES), the
/// bus port defaulting to port + 10000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAddr {
    pub host: String,
    pub port: u16,
    pub bus_port: u16,
}

impl MemberAddr {
    /// `host`'s client `port`, and its bus port if given (else port + 10000).
    pub fn new(host: &str, port: u16, bus_port: Option<u16>) -> Result<MemberAddr, String> {
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("invalid host '{host}'"));
        }
        if port == 0 || bus_port == Some(0) {
            return Err("port 0 is not a valid port".into());
        }
        let bus_port = match bus_port {
            Some(b) => b,
            None => port.checked_add(BUS_PORT_OFFSET).ok_or_else(|| {
                format!(
                    "client port {port} + {BUS_PORT_OFFSET} is not a valid bus port; \
                     give the bus port as host:port@busport"
                )
            })?,
        };
        Ok(MemberAddr {
            host: host.to_string(),
            port,
            bus_port,
        })
    }

    /// Parse `host:port[@busport]` (an IPv6 host in brackets).
    pub fn parse(s: &str) -> Result<MemberAddr, String> {
        let bad = || format!("'{s}' is not host:port[@busport]");
        let (addr, bus) = match s.rsplit_once('@') {
            Some((a, b)) => (a, Some(b.parse::<u16>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = port.parse::<u16>().map_err(|_| bad())?;
        MemberAddr::new(host, port, bus).map_err(|e| format!("{}: {e}", bad()))
    }

    fn host_port(&self, port: u16) -> String {
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }

    /// The client address, `host:port`.
    pub fn client(&self) -> String {
        self.host_port(self.port)
    }

    /// The bus address, `host:busport`.
    pub fn bus(&self) -> String {
        self.host_port(self.bus_port)
    }
}

impl std::fmt::Display for MemberAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.client(), self.bus_port)
    }
}

/// This node: raft id, advertised info, cluster id (None before it is
/// bootstrapped or added).
pub fn whoami(node: &RaftNode) -> (NodeId, NodeInfo, Option<String>) {
    (node.id, node.me.clone(), node.identity.cluster_id())
}

/// Whether this node's raft state is initialized (bootstrapped, added, or
/// restarted on a data dir that holds a membership).
pub async fn is_initialized(node: &RaftNode) -> Result<bool, MembershipError> {
    node.raft
        .is_initialized()
        .await
        .map_err(|e| MembershipError::Raft(e.to_string()))
}

/// Create a new one-node cluster: a new cluster id, then raft initialized
/// with this node as the only voter. Returns the cluster id.
pub async fn bootstrap(node: &RaftNode) -> Result<String, MembershipError> {
    let cluster = node
        .identity
        .create_cluster()
        .map_err(|e| MembershipError::Raft(format!("cannot store the cluster id: {e}")))?;
    let members = BTreeMap::from([(node.id, node.me.clone())]);
    node.raft
        .initialize(members)
        .await
        .map_err(|e| MembershipError::Raft(format!("bootstrap: {e}")))?;
    Ok(cluster)
}

/// Join a cluster through the member at `seed`: ask its bus to add this
/// node (following redirects to the leader), retrying refusals and
/// failures for two minutes.
pub async fn join(node: &RaftNode, seed: &MemberAddr) -> Result<(), MembershipError> {
    let req = BusRequest::Join {
        id: node.id,
        info: node.me.clone(),
    };
    let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    let mut target = seed.bus();
    let mut redirects = 0;
    let last = loop {
        let why = match node.network.ask(&target, &req, JOIN_TTL).await {
            Ok(BusResponse::Join(JoinReply::Done)) => {
                tracing::info!(via = %target, "joined the cluster");
                return Ok(());
            }
            Ok(BusResponse::Join(JoinReply::Redirect { leader, bus_addr })) if redirects < 3 => {
                let to = node.network.route(leader, &bus_addr);
                tracing::info!(from = %target, to = %to, "join redirected to the leader");
                target = to;
                redirects += 1;
                continue;
            }
            Ok(BusResponse::Join(JoinReply::Redirect { leader, .. })) => {
                format!("redirected too often (last to node {leader})")
            }
            Ok(BusResponse::Join(JoinReply::Refused(why))) => {
                tracing::warn!(via = %target, error = %why, "join attempt refused");
                why
            }
            Ok(other) => format!("unexpected join reply: {other:?}"),
            Err(e) => {
                tracing::warn!(via = %target, error = %e, "join attempt failed");
                e.to_string()
            }
        };
        if tokio::time::Instant::now() > deadline {
            break why;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        target = seed.bus();
        redirects = 0;
    };
    Err(MembershipError::Timeout(format!(
        "could not join through {seed}: {last}"
    )))
}

/// Ask whatever listens on bus address `bus_addr` who it is; with
/// `expect`, check that it is that raft id.
pub async fn who_is(
    node: &RaftNode,
    bus_addr: &str,
    expect: Option<NodeId>,
) -> Result<(NodeId, NodeInfo, Option<String>), MembershipError> {
    let unreachable = |reason: String| MembershipError::Unreachable {
        addr: bus_addr.to_string(),
        reason,
    };
    let (id, info, cluster) = match node
        .network
        .ask(bus_addr, &BusRequest::WhoAreYou, ASK_TTL)
        .await
    {
        Ok(BusResponse::Identity { id, info, cluster }) => (id, info, cluster),
        Ok(other) => return Err(unreachable(format!("unexpected reply {other:?}"))),
        Err(AskError::Timeout(t)) => {
            return Err(MembershipError::Timeout(format!(
                "the cluster bus at {bus_addr} did not answer within {t:?} (wrong bus port?)"
            )))
        }
        Err(e) => return Err(unreachable(e.to_string())),
    };
    match expect {
        Some(want) if want != id => Err(MembershipError::Conflict(format!(
            "the node at {bus_addr} is node {id}, not node {want}"
        ))),
        _ => Ok((id, info, cluster)),
    }
}

/// CLUSTER MEET: learn the node's identity over its bus, then add it
/// (learner, catch up, voter).
pub async fn meet(node: &RaftNode, addr: &MemberAddr) -> Result<(), MembershipError> {
    let (id, info, _) = who_is(node, &addr.bus(), None).await?;
    add_member(node, id, info, true).await
}

/// RAFTCACHE ADD-LEARNER: learn node `id`'s identity over its bus (it must
/// be node `id`), then add it as a learner.
pub async fn add_learner(
    node: &RaftNode,
    id: NodeId,
    addr: &MemberAddr,
) -> Result<(), MembershipError> {
    let (id, info, _) = who_is(node, &addr.bus(), Some(id)).await?;
    add_member(node, id, info, false).await
}

/// RAFTCACHE PROMOTE: make learner `id` a voter.
pub async fn promote(node: &RaftNode, id: NodeId) -> Result<(), MembershipError> {
    change(node, ChangeMembers::AddVoterIds(BTreeSet::from([id]))).await
}

/// CLUSTER FORGET: remove the member called `name`.
pub async fn forget(node: &RaftNode, name: &str) -> Result<(), MembershipError> {
    let view = node.view();
    let Some((&id, _)) = view.nodes.iter().find(|(_, n)| n.name == name) else {
        return Err(MembershipError::UnknownNode(name.to_string()));
    };
    remove_member(node, id).await
}

/// Remove a voter or learner. Run on the leader; removing the leader itself
/// commits the change and the old leader then steps down.
pub async fn remove_member(node: &RaftNode, id: NodeId) -> Result<(), MembershipError> {
    let ids = BTreeSet::from([id]);
    let op = if node.view().learners.contains(&id) {
        ChangeMembers::RemoveNodes(ids)
    } else {
        ChangeMembers::RemoveVoters(ids)
    };
    change(node, op).await
}

/// RAFTCACHE TRANSFER: this node (the leader) hands leadership to `to`.
pub async fn transfer(node: &RaftNode, to: NodeId) -> Result<(), MembershipError> {
    node.raft
        .trigger()
        .transfer_leader(to)
        .await
        .map_err(|e| MembershipError::Raft(e.to_string()))
}

/// CLUSTER FAILOVER on a follower: without `force`, ask the leader over
/// the bus to hand leadership to this node; with `force` (FORCE/TAKEOVER),
/// start an election here without asking it.
///
/// A forced election deposes a healthy leader, so repeated ones could keep
/// the cluster leaderless: `force` is refused while a leader is known and
/// was heard from within the election timeout (the plain form hands over
/// cleanly), and this node starts at most one forced election per
/// election timeout.
pub async fn failover(node: &RaftNode, force: bool) -> Result<(), MembershipError> {
    if force {
        check_forced_election(node)?;
    }
    match node.view().leader_info() {
        Some((lid, leader)) if !force && lid != node.id => {
            let mut client = node.network.peer(lid, &leader);
            client
                .transfer_leadership(node.id, ASK_TTL)
                .await
                .map_err(|e| match e {
                    AskError::Refused(why) => {
                        MembershipError::Conflict(format!("the leader refused: {why}"))
                    }
                    AskError::Timeout(t) => MembershipError::Timeout(format!(
                        "the leader (node {lid}) did not answer within {t:?}"
                    )),
                    e => MembershipError::Unreachable {
                        addr: leader.bus_addr.clone(),
                        reason: e.to_string(),
                    },
                })
        }
        _ => node
            .elect()
            .await
            .map_err(|e| MembershipError::Raft(e.to_string())),
    }
}

/// Whether a forced election may start here now; records it if so.
fn check_forced_election(node: &RaftNode) -> Result<(), MembershipError> {
    let timeout = node.election_timeout;
    let view = node.view();
    if let (Some(leader), Some(since)) = (view.leader, node.leader_contact().since()) {
        if leader != node.id && since < timeout {
            return Err(MembershipError::Conflict(format!(
                "the leader (node {leader}) was heard from {}ms ago; CLUSTER FAILOVER FORCE|TAKEOVER \
                 only starts an election when the leader is unreachable. Use CLUSTER FAILOVER \
                 (no option) for a handover",
                since.as_millis()
            )));
        }
    }
    let mut last = node.forced_election.lock();
    if let Some(t) = *last {
        if t.elapsed() < timeout {
            return Err(MembershipError::Conflict(format!(
                "a forced failover was started {}ms ago; at most one per election timeout ({}ms)",
                t.elapsed().as_millis(),
                timeout.as_millis()
            )));
        }
    }
    *last = Some(std::time::Instant::now());
    Ok(())
}

/// Add node `id` as a learner (waiting until it has caught up) and, with
/// `promote`, then as a voter. Shared by CLUSTER MEET, join and
/// ADD-LEARNER, so every way in checks the same things: the node has a
/// client address, a bus address and a name, and it is not a different
/// data dir claiming a member's id (see `identity_conflict`).
pub async fn add_member(
    node: &RaftNode,
    id: NodeId,
    info: NodeInfo,
    promote: bool,
) -> Result<(), MembershipError> {
    info.check()
        .map_err(|e| MembershipError::Conflict(format!("cannot add node {id}: {e}")))?;
    if let Some(conflict) = identity_conflict(&node.view(), id, &info) {
        return Err(MembershipError::Conflict(conflict));
    }
    retrying(node, || node.raft.add_learner(id, info.clone(), true)).await?;
    if !promote {
        return Ok(());
    }
    change(node, ChangeMembers::AddVoterIds(BTreeSet::from([id]))).await
}

/// Why node `id` with `info` cannot be added while the membership is
/// `view`: its id belongs to a member with another name (a wiped data dir
/// must not take the place, and the vote, of the member it was), or its
/// name belongs to a member with another id.
pub fn identity_conflict(view: &ClusterView, id: NodeId, info: &NodeInfo) -> Option<String> {
    if let Some(member) = view.nodes.get(&id) {
        if member.name != info.name {
            return Some(format!(
                "node {id} is a member as {} ({}), but the joining node is {}: a different data dir \
                 (wiped?) cannot take a member's place; remove the old member first with CLUSTER FORGET {}",
                member.name, member.addr, info.name, member.name
            ));
        }
    }
    let other = view
        .nodes
        .iter()
        .find(|(i, n)| **i != id && n.name == info.name);
    other.map(|(other, _)| {
        format!(
            "node name {} already belongs to member {other}; a data dir keeps its raft id",
            info.name
        )
    })
}

/// The bus side of a join (`BusRequest::Join` from `guest`): add the
/// caller if this node leads, else redirect it to the leader's bus.
pub(super) async fn handle_join(
    node: &RaftNode,
    guest: &GuestHello,
    id: NodeId,
    info: NodeInfo,
) -> JoinReply {
    if guest.from != id || guest.from_name != info.name {
        return JoinReply::Refused(format!(
            "the join is for node {id} ({}), but the caller is node {} ({})",
            info.name, guest.from, guest.from_name
        ));
    }
    if let Some(theirs) = &guest.cluster {
        if node.identity.cluster_id().as_ref() != Some(theirs) {
            return JoinReply::Refused(format!(
                "node {id} is of another cluster ({theirs}): a member of one cluster cannot join another"
            ));
        }
    }
    let redirect = |leader: Option<(NodeId, NodeInfo)>| match leader {
        Some((lid, l)) if lid != node.id => JoinReply::Redirect {
            leader: lid,
            bus_addr: l.bus_addr,
        },
        _ => JoinReply::Refused("no leader known (CLUSTERDOWN)".into()),
    };
    if !node.is_leader() {
        return redirect(node.view().leader_info());
    }
    let view = node.view();
    if view.voters.contains(&id) && view.nodes.get(&id).is_some_and(|n| n.name == info.name) {
        return JoinReply::Done;
    }
    match add_member(node, id, info, true).await {
        Ok(()) => JoinReply::Done,
        Err(MembershipError::NotLeader(leader)) => redirect(leader),
        Err(e) => JoinReply::Refused(e.to_string()),
    }
}

/// The bus side of a transfer request from a member.
pub(super) async fn handle_transfer(node: &RaftNode, to: NodeId) -> Result<(), MembershipError> {
    if !node.is_leader() {
        return Err(MembershipError::NotLeader(node.view().leader_info()));
    }
    transfer(node, to).await
}

type WriteError = openraft::error::RaftError<TypeConfig, ClientWriteError<TypeConfig>>;

/// What to do about a failed membership change.
#[derive(Debug, PartialEq)]
enum Next {
    /// Transient: try again shortly (the reason, for the log).
    Retry(&'static str),
    Fail(MembershipError),
}

/// Classify by openraft's typed errors, never by their text. Transient:
/// a change already in progress, a fresh leader whose first (blank) entry
/// is not committed yet, and "forward to leader" with no other leader
/// while this node believes it leads (just elected, not ready yet).
fn classify(e: WriteError, me: NodeId, leading: bool) -> Next {
    let api = match e {
        openraft::error::RaftError::APIError(api) => api,
        openraft::error::RaftError::Fatal(f) => {
            return Next::Fail(MembershipError::Raft(f.to_string()))
        }
    };
    match api {
        ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(_)) => {
            Next::Retry("a previous membership change is still in progress")
        }
        ClientWriteError::ChangeMembershipError(ChangeMembershipError::UncommittedLeaderLog(_)) => {
            Next::Retry("the new leader has not committed its first entry yet")
        }
        ClientWriteError::ChangeMembershipError(other) => {
            Next::Fail(MembershipError::Conflict(other.to_string()))
        }
        ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f) => {
            match (f.leader_id, f.leader_node) {
                (Some(id), Some(info)) if id != me => {
                    Next::Fail(MembershipError::NotLeader(Some((id, info))))
                }
                _ if leading => Next::Retry("this node leads but is not ready yet"),
                _ => Next::Fail(MembershipError::NotLeader(None)),
            }
        }
        ClientWriteError::PreconditionFailed(p) => {
            Next::Fail(MembershipError::Conflict(p.to_string()))
        }
    }
}

/// Run `op` (a membership write) until it succeeds, fails for good, or
/// stays transient for `CHANGE_RETRY`.
async fn retrying<T, F, Fut>(node: &RaftNode, mut op: F) -> Result<T, MembershipError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, WriteError>>,
{
    let deadline = tokio::time::Instant::now() + CHANGE_RETRY;
    loop {
        let e = match op().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        match classify(e, node.id, node.is_leader()) {
            Next::Fail(e) => return Err(e),
            Next::Retry(why) if tokio::time::Instant::now() > deadline => {
                return Err(MembershipError::Timeout(format!(
                    "membership change still blocked after {CHANGE_RETRY:?}: {why}"
                )))
            }
            Next::Retry(why) => {
                tracing::debug!(reason = why, "membership change busy; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `change_membership`, retried while transient.
async fn change(
    node: &RaftNode,
    change: ChangeMembers<NodeId, NodeInfo>,
) -> Result<(), MembershipError> {
    retrying(node, || node.raft.change_membership(change.clone(), false))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::error::{
        ForwardToLeader, InProgress, LearnerNotFound, RaftError, UncommittedLeaderLog,
    };
    use openraft::vote::RaftLeaderIdExt;
    use openraft::RaftTypeConfig;

    type LeaderId = <TypeConfig as RaftTypeConfig>::LeaderId;

    fn info(n: char) -> NodeInfo {
        NodeInfo {
            addr: "127.0.0.1:7002".into(),
            bus_addr: "127.0.0.1:17002".into(),
            name: std::iter::repeat_n(n, 40).collect(),
        }
    }

    fn api(e: ClientWriteError<TypeConfig>) -> WriteError {
        RaftError::APIError(e)
    }

    #[test]
    fn in_progress_is_retried_and_other_errors_are_not() {
        let in_progress = ChangeMembershipError::InProgress(InProgress {
            committed: None,
            membership_log_id: None,
        });
        assert!(matches!(
            classify(api(in_progress.clone().into()), 1, true),
            Next::Retry(_)
        ));
        // Whoever leads: a change in flight is transient.
        assert!(matches!(
            classify(api(in_progress.into()), 1, false),
            Next::Retry(_)
        ));
        // A fresh leader's first (blank) entry not committed yet.
        let uncommitted = ChangeMembershipError::UncommittedLeaderLog(UncommittedLeaderLog {
            committed: None,
            leader_log_id: crate::raft::types::LogId::new(LeaderId::new_committed(2, 1), 7),
        });
        assert!(matches!(
            classify(api(uncommitted.into()), 1, true),
            Next::Retry(_)
        ));
        let not_found = ChangeMembershipError::LearnerNotFound(LearnerNotFound { node_id: 5 });
        assert_eq!(
            classify(api(not_found.into()), 1, true),
            Next::Fail(MembershipError::Conflict(
                "Learner 5 not found: add it as learner before adding it as a voter".into()
            ))
        );
    }

    #[test]
    fn forward_to_leader_is_not_leader_or_retried_on_a_fresh_leader() {
        let other = ForwardToLeader::<TypeConfig>::new(2, info('b'));
        assert_eq!(
            classify(api(other.into()), 1, true),
            Next::Fail(MembershipError::NotLeader(Some((2, info('b')))))
        );
        // "has to forward request to: None, None" on a node that leads: it
        // was elected a moment ago; retry. On a follower: CLUSTERDOWN.
        let none = ForwardToLeader::<TypeConfig>::empty();
        assert!(matches!(
            classify(api(none.clone().into()), 1, true),
            Next::Retry(_)
        ));
        assert_eq!(
            classify(api(none.into()), 1, false),
            Next::Fail(MembershipError::NotLeader(None))
        );
        let me = ForwardToLeader::<TypeConfig>::new(1, info('a'));
        assert!(matches!(classify(api(me.into()), 1, true), Next::Retry(_)));
    }

    #[test]
    fn member_addresses_follow_redis_bus_port_rule() {
        let a = MemberAddr::parse("10.0.0.1:7001").unwrap();
        assert_eq!(
            (a.client(), a.bus()),
            ("10.0.0.1:7001".into(), "10.0.0.1:17001".into())
        );
        let a = MemberAddr::parse("node4.local:7001@9000").unwrap();
        assert_eq!(a.bus(), "node4.local:9000");
        assert_eq!(a.to_string(), "node4.local:7001@9000");
        let a = MemberAddr::parse("[::1]:7001").unwrap();
        assert_eq!((a.host.as_str(), a.bus()), ("::1", "[::1]:17001".into()));
        for bad in [
            "nohost", ":1", "h:0", "h:70000", "h:x", "a b:1", "h:1@x", "h:1@0",
        ] {
            assert!(MemberAddr::parse(bad).is_err(), "{bad}");
        }
        // 60000 + 10000 does not fit: the bus port must be given.
        assert!(MemberAddr::parse("h:60000")
            .unwrap_err()
            .contains("@busport"));
        assert_eq!(MemberAddr::parse("h:60000@1").unwrap().bus(), "h:1");
    }
}
