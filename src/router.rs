//! The router: where a keyed command goes. Today one raft group owns all
//! 16384 slots; `group_for_slot` is the single place that would change when
//! several groups each own a slot range. Everything else asks the router.
//!
//! * leader here        -> writes are proposed, reads wait for the barrier;
//! * follower here      -> `-MOVED <slot> <leader>` (READONLY: local read);
//! * no leader known    -> `-CLUSTERDOWN`.

use std::sync::Arc;

use crate::keyspace::{Outcome, ReadOp, WriteOp};
use crate::raft::{RaftError, RaftNode};

/// Why a command was not served here, for the connection to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Redirect {
    /// `-MOVED <slot> <addr>`.
    Moved {
        slot: u16,
        addr: String,
    },
    /// `-CLUSTERDOWN The cluster is down`.
    ClusterDown,
    /// A keyless write on a follower: `-READONLY ...`.
    ReadOnly,
    /// The write may or may not have been applied.
    Unknown,
    /// Leadership could not be confirmed (lost quorum).
    NoQuorum,
    Fatal(String),
    /// The write was refused before it was proposed (too large for the log,
    /// or the log is full); the full error text.
    Refused(String),
}

impl Redirect {
    pub fn error_text(&self) -> String {
        match self {
            Redirect::Moved { slot, addr } => format!("MOVED {slot} {addr}"),
            Redirect::ClusterDown => "CLUSTERDOWN The cluster is down".into(),
            Redirect::ReadOnly => "READONLY You can't write against a read only replica.".into(),
            Redirect::Unknown => {
                "TRYAGAIN Leader changed while the write was in flight; it may or may not have been applied".into()
            }
            Redirect::NoQuorum => "CLUSTERDOWN The cluster is down (no quorum)".into(),
            Redirect::Fatal(e) => format!("ERR raft: {e}"),
            Redirect::Refused(text) => text.clone(),
        }
    }
}

fn redirect(slot: Option<u16>, err: RaftError) -> Redirect {
    match err {
        RaftError::NotLeader(Some((_, info))) => match slot {
            Some(slot) => Redirect::Moved {
                slot,
                addr: info.addr,
            },
            None => Redirect::ReadOnly,
        },
        RaftError::NotLeader(None) => Redirect::ClusterDown,
        RaftError::Unknown => Redirect::Unknown,
        RaftError::NoQuorum => Redirect::NoQuorum,
        RaftError::Fatal(e) => Redirect::Fatal(e),
        RaftError::EntryTooLarge { bytes, limit, knob } => Redirect::Refused(format!(
            "ERR command too large for the raft log: {bytes} bytes encoded, more than {limit} allowed by {knob}"
        )),
        RaftError::LogFull { limit } => Redirect::Refused(format!(
            "OOM command not allowed when the raft log is full ({limit} bytes: lmdb-map-write-percent of lmdb-map-size); retry after the next snapshot"
        )),
    }
}

pub struct Router {
    group: Arc<RaftNode>,
}

impl Router {
    pub fn new(group: Arc<RaftNode>) -> Router {
        Router { group }
    }

    /// The raft group owning `slot` (one group today).
    pub fn group_for_slot(&self, _slot: Option<u16>) -> &Arc<RaftNode> {
        &self.group
    }

    /// Every group this node is a member of.
    pub fn groups(&self) -> impl Iterator<Item = &Arc<RaftNode>> {
        std::iter::once(&self.group)
    }

    /// Where a command for `slot` must go if not here; `None` = serve here.
    pub fn check_leader(&self, slot: Option<u16>) -> Option<Redirect> {
        let g = self.group_for_slot(slot);
        if g.is_leader() {
            return None;
        }
        Some(redirect(slot, RaftError::NotLeader(g.view().leader_info())))
    }

    /// Propose `op`; resolves once applied. Queue order is log order.
    pub fn write(
        &self,
        slot: Option<u16>,
        op: WriteOp,
    ) -> Result<impl std::future::Future<Output = Result<Outcome, Redirect>> + use<>, Redirect>
    {
        if let Some(r) = self.check_leader(slot) {
            return Err(r);
        }
        let g = self.group_for_slot(slot).clone();
        let fut = g.propose(op);
        Ok(async move { fut.await.map_err(|e| redirect(slot, e)) })
    }

    /// Confirm this node may serve a linearizable read for `slot` now.
    pub async fn read_barrier(&self, slot: Option<u16>) -> Result<(), Redirect> {
        if let Some(r) = self.check_leader(slot) {
            return Err(r);
        }
        let g = self.group_for_slot(slot);
        g.read_barrier().await.map_err(|e| redirect(slot, e))
    }

    /// Evaluate a read against the local state (after a barrier, or on a
    /// READONLY connection). Expired keys are hidden by the local clock.
    pub fn read_local(&self, slot: Option<u16>, op: &ReadOp) -> Outcome {
        let g = self.group_for_slot(slot);
        let d = g.data().read();
        let now = crate::raft::node::unix_ms().max(d.clock_ms);
        d.keyspace.read(op, now)
    }
}
