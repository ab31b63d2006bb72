//! The raft type configuration: what a log entry carries and what applying
//! it answers. Everything else in `raft` is generic over `TypeConfig`.

use std::fmt;

use serde::{Deserialize, Serialize};

use openraft::type_config::alias;

use crate::keyspace::{Limits, Outcome, WriteOp};

/// One log entry's application payload: a batch of writes proposed together
/// by the leader at `now_ms` (the replicated clock as the leader estimates
/// it, in unix ms: monotonic, see `raft::clock`). Batching many
/// clients' writes into one entry is what makes group commit pay; MULTI/EXEC
/// will later be one `Proposal` too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    pub now_ms: u64,
    /// The proposing leader's limits (`proto-max-bulk-len`): every replica
    /// applies the entry under these, whatever its own configuration says,
    /// so replicas configured differently never diverge.
    pub limits: Limits,
    pub ops: Vec<WriteOp>,
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Proposal(now_ms={}, ops={})",
            self.now_ms,
            self.ops.len()
        )
    }
}

/// One outcome per op of the `Proposal`, in order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
}

/// What a node advertises about itself in the membership config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Client address clients should be redirected to (`host:port`), i.e.
    /// the `cluster-announce-ip/port` when set.
    pub addr: String,
    /// Raft bus address (`host:port`).
    pub bus_addr: String,
    /// The 40-hex-char Redis Cluster node id, generated once per data dir.
    pub name: String,
}

impl NodeInfo {
    /// Every member must be reachable by clients (MOVED, CLUSTER replies)
    /// and peers, and known by name: refuse to add one that is not.
    pub fn check(&self) -> Result<(), String> {
        let addr_ok = |a: &str| {
            a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
        };
        if !addr_ok(&self.addr) {
            return Err(format!("client address '{}' is not host:port", self.addr));
        }
        if !addr_ok(&self.bus_addr) {
            return Err(format!("bus address '{}' is not host:port", self.bus_addr));
        }
        if !crate::raft::identity::is_hex40(&self.name) {
            return Err(format!(
                "node name '{}' is not 40 hex characters",
                self.name
            ));
        }
        Ok(())
    }
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} ({})", self.addr, self.bus_addr, self.name)
    }
}

openraft::declare_raft_types!(
    /// raftcache's raft types.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = NodeInfo,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig, crate::raft::state_machine::StateMachine>;
pub type LogId = alias::LogIdOf<TypeConfig>;
pub type Entry = alias::EntryOf<TypeConfig>;
pub type Vote = alias::VoteOf<TypeConfig>;
pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = alias::SnapshotMetaOf<TypeConfig>;
