//! The router: every routing decision, in one place. It is the one module
//! that changes when a node holds several raft groups each owning a slot
//! range; the connection and the server commands only ask it.
//!
//! Today one raft group owns all 16384 slots (`SlotMap::single`). The
//! connection asks one question per command — `route_write` or
//! `route_read`, with the slot of every key — and gets a decision:
//!
//! * keys in slots of different groups -> `-CROSSSLOT` (cannot happen with
//!   one group; `SlotMap` is a plain table so tests can show it);
//! * write, leader here -> propose (`Router::write`);
//! * read, leader here -> serve locally after the read barrier;
//! * keyed write or keyed read (without READONLY) on a follower ->
//!   `-MOVED <slot of the first key> <leader>`; a keyless write ->
//!   `-READONLY`;
//! * keyless reads (DBSIZE, KEYS, SCAN, ...) and keyed reads on a READONLY
//!   connection, on a follower -> serve locally after a read index obtained
//!   from the leader and local apply up to it;
//! * `read-consistency stale` -> every read served locally, no barrier;
//! * no leader known -> `-CLUSTERDOWN` (writes and redirected reads).
//!
//! The decision itself is the pure function `decide` over a `GroupState`
//! (unit-tested without sockets or raft). Barriers are shared across a
//! pipeline batch through a `ReadTicket` the connection keeps per batch:
//! every read of a batch arrived before the first barrier began, so one
//! barrier per group proves all of them.
//!
//! Node-wide replies (INFO, HELLO's role, CLUSTER ..., RAFTCACHE) ask for
//! `local_node()` (or `groups()`), never a slot's group.

use std::future::Future;
use std::sync::Arc;

use crate::keyspace::{Outcome, ReadOp, WriteOp};
use crate::raft::{RaftError, RaftNode, ReadConsistency};
use crate::slot::SLOTS;

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
    /// The keys of one command belong to different groups: `-CROSSSLOT`.
    CrossSlot,
    /// The write may or may not have been applied.
    Unknown,
    /// Leadership could not be confirmed (lost quorum).
    NoQuorum,
    /// A follower could not get a read index from a leader in time.
    LeaderUnreachable,
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
            Redirect::CrossSlot => "CROSSSLOT Keys in the request don't hash to the same slot".into(),
            Redirect::Unknown => {
                "TRYAGAIN Leader changed while the write was in flight; it may or may not have been applied".into()
            }
            Redirect::NoQuorum => "CLUSTERDOWN The cluster is down (no quorum)".into(),
            Redirect::LeaderUnreachable => {
                "CLUSTERDOWN The cluster is down (no reachable leader to confirm the read)".into()
            }
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
        RaftError::LeaderUnreachable => Redirect::LeaderUnreachable,
        RaftError::Fatal(e) => Redirect::Fatal(e),
        RaftError::EntryTooLarge { bytes, limit, knob } => Redirect::Refused(format!(
            "ERR command too large for the raft log: {bytes} bytes encoded, more than {limit} allowed by {knob}"
        )),
        RaftError::LogFull { limit } => Redirect::Refused(format!(
            "OOM command not allowed when the raft log is full ({limit} bytes: lmdb-map-write-percent of lmdb-map-size); retry after the next snapshot"
        )),
    }
}

/// Index of a raft group in `Router::groups`.
pub type GroupId = usize;

/// Which group owns each slot: sorted ranges `(last slot, group)`, the
/// last one ending at slot 16383. Pure data, so tests can build any map.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotMap {
    ranges: Vec<(u16, GroupId)>,
}

impl SlotMap {
    /// One group owns every slot (today's only layout).
    pub fn single() -> SlotMap {
        SlotMap {
            ranges: vec![(SLOTS - 1, 0)],
        }
    }

    /// `ranges`: `(last slot, group)` in increasing slot order; the last
    /// range must end at 16383.
    pub fn from_ranges(ranges: Vec<(u16, GroupId)>) -> SlotMap {
        assert!(
            ranges.windows(2).all(|w| w[0].0 < w[1].0)
                && ranges.last().is_some_and(|r| r.0 == SLOTS - 1),
            "slot ranges must be increasing and end at {}",
            SLOTS - 1
        );
        SlotMap { ranges }
    }

    /// The group owning `slot`.
    pub fn group_of(&self, slot: u16) -> GroupId {
        let i = self.ranges.partition_point(|&(last, _)| last < slot);
        self.ranges[i.min(self.ranges.len() - 1)].1
    }

    /// Where a command whose keys hash to `slots` (in key order) goes:
    /// `None` for a keyless command, else the first key's slot (the one a
    /// MOVED names, as Redis does) and the group owning every key.
    /// `CrossSlot` if the keys belong to different groups.
    pub fn locate(
        &self,
        slots: impl IntoIterator<Item = u16>,
    ) -> Result<Option<(u16, GroupId)>, Redirect> {
        let mut slots = slots.into_iter();
        let Some(first) = slots.next() else {
            return Ok(None);
        };
        let group = self.group_of(first);
        if slots.all(|s| self.group_of(s) == group) {
            Ok(Some((first, group)))
        } else {
            Err(Redirect::CrossSlot)
        }
    }
}

/// What a command does to the keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// What the decision needs to know about the group owning a command.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    /// This node believes it leads the group.
    pub is_leader: bool,
    /// The leader's client address, when known (only asked when not leader).
    pub leader_addr: Option<String>,
    pub consistency: ReadConsistency,
}

/// One command, as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRequest {
    pub access: Access,
    /// The first key's slot; `None` for keyless commands.
    pub slot: Option<u16>,
    /// The connection sent READONLY (Redis Cluster replica reads).
    pub readonly: bool,
}

/// How a read is served here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// On the leader: a ReadIndex round (or the lease). If this node was
    /// deposed meanwhile and `follower_fallback`, a follower read instead.
    Leader { follower_fallback: bool },
    /// On a follower: a read index from the leader, then local apply up to it.
    Follower,
    /// `read-consistency stale`: local state, no barrier.
    Stale,
}

/// The router's answer for one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Propose the write to this node's raft group.
    Propose,
    /// Serve the read locally, after the barrier `ReadMode` says.
    Read(ReadMode),
    /// Not here: the error to reply.
    Redirect(Redirect),
}

/// The routing decision, pure: no sockets, no raft.
pub fn decide(g: &GroupState, req: &RouteRequest) -> Decision {
    let keyed_or_readonly = req.slot.is_some() && !req.readonly;
    let not_here = || match (&g.leader_addr, req.slot) {
        (None, _) => Redirect::ClusterDown,
        (Some(addr), Some(slot)) => Redirect::Moved {
            slot,
            addr: addr.clone(),
        },
        (Some(_), None) => Redirect::ReadOnly,
    };
    match req.access {
        Access::Write if g.is_leader => Decision::Propose,
        Access::Write => Decision::Redirect(not_here()),
        Access::Read if g.consistency == ReadConsistency::Stale => Decision::Read(ReadMode::Stale),
        Access::Read if g.is_leader => Decision::Read(ReadMode::Leader {
            follower_fallback: !keyed_or_readonly,
        }),
        // A keyed read on a plain connection goes to the leader.
        Access::Read if keyed_or_readonly => Decision::Redirect(not_here()),
        Access::Read => Decision::Read(ReadMode::Follower),
    }
}

/// A write the router accepted: hand it back to `Router::write`.
#[derive(Debug)]
pub struct WriteRoute {
    group: GroupId,
    slot: Option<u16>,
}

/// A read the router accepted: hand it back to `Router::read`.
#[derive(Debug)]
pub struct ReadRoute {
    group: GroupId,
    slot: Option<u16>,
    mode: ReadMode,
}

impl ReadRoute {
    pub fn mode(&self) -> ReadMode {
        self.mode
    }
}

/// The read barriers one pipeline batch has already passed, per group. A
/// connection keeps one per batch: every read of the batch was received
/// before the first barrier began, so one barrier covers all of them.
#[derive(Debug, Default)]
pub struct ReadTicket {
    passed: Vec<GroupId>,
}

impl ReadTicket {
    fn covers(&self, group: GroupId) -> bool {
        self.passed.contains(&group)
    }
}

pub struct Router {
    groups: Vec<Arc<RaftNode>>,
    slots: SlotMap,
}

impl Router {
    /// One group owning every slot.
    pub fn new(group: Arc<RaftNode>) -> Router {
        Router {
            groups: vec![group],
            slots: SlotMap::single(),
        }
    }

    /// This node's raft group, for node-wide replies (INFO, HELLO's role,
    /// CLUSTER ..., RAFTCACHE). One group today; with several, node-wide
    /// replies iterate `groups()` instead.
    pub fn local_node(&self) -> &Arc<RaftNode> {
        &self.groups[0]
    }

    /// Every group this node is a member of.
    pub fn groups(&self) -> impl Iterator<Item = &Arc<RaftNode>> {
        self.groups.iter()
    }

    /// The replicated clock as this node estimates it: "now" for parsing
    /// a command (relative TTLs, overflow checks) before its keys are known.
    pub fn now_ms(&self) -> u64 {
        self.local_node().now_ms()
    }

    /// Which group and first slot a command with keys in `slots` goes to.
    fn locate(
        &self,
        slots: impl IntoIterator<Item = u16>,
    ) -> Result<(GroupId, Option<u16>), Redirect> {
        Ok(match self.slots.locate(slots)? {
            Some((slot, group)) => (group, Some(slot)),
            // Keyless commands are served by the local group.
            None => (0, None),
        })
    }

    fn state(&self, group: GroupId) -> GroupState {
        let g = &self.groups[group];
        let is_leader = g.is_leader();
        GroupState {
            is_leader,
            leader_addr: if is_leader {
                None
            } else {
                g.view().leader_info().map(|(_, info)| info.addr)
            },
            consistency: g.read_consistency,
        }
    }

    fn decide(
        &self,
        access: Access,
        slots: impl IntoIterator<Item = u16>,
        readonly: bool,
    ) -> Result<(GroupId, Option<u16>, Decision), Redirect> {
        let (group, slot) = self.locate(slots)?;
        let req = RouteRequest {
            access,
            slot,
            readonly,
        };
        Ok((group, slot, decide(&self.state(group), &req)))
    }

    /// Route a write whose keys hash to `slots` (every key, in order).
    pub fn route_write(
        &self,
        slots: impl IntoIterator<Item = u16>,
    ) -> Result<WriteRoute, Redirect> {
        match self.decide(Access::Write, slots, false)? {
            (group, slot, Decision::Propose) => Ok(WriteRoute { group, slot }),
            (_, _, Decision::Redirect(r)) => Err(r),
            (_, _, Decision::Read(_)) => Err(Redirect::Fatal("a write routed as a read".into())),
        }
    }

    /// Route a read whose keys hash to `slots` (every key, in order).
    pub fn route_read(
        &self,
        slots: impl IntoIterator<Item = u16>,
        readonly: bool,
    ) -> Result<ReadRoute, Redirect> {
        match self.decide(Access::Read, slots, readonly)? {
            (group, slot, Decision::Read(mode)) => Ok(ReadRoute { group, slot, mode }),
            (_, _, Decision::Redirect(r)) => Err(r),
            (_, _, Decision::Propose) => Err(Redirect::Fatal("a read routed as a write".into())),
        }
    }

    /// Propose a routed write; resolves once applied. Queue order is log
    /// order.
    pub fn write(
        &self,
        route: WriteRoute,
        op: WriteOp,
    ) -> impl Future<Output = Result<Outcome, Redirect>> + use<> {
        let fut = self.groups[route.group].propose(op);
        let slot = route.slot;
        async move { fut.await.map_err(|e| redirect(slot, e)) }
    }

    /// Serve a routed read: pass its barrier unless `ticket` shows this
    /// batch already passed one for the group, then evaluate it on the
    /// local state. A key listing whose reply would exceed `max_reply`
    /// bytes stops early with `KeyspaceError::ReplyTooLarge`.
    pub async fn read(
        &self,
        route: &ReadRoute,
        op: &ReadOp,
        max_reply: usize,
        ticket: &mut ReadTicket,
    ) -> Result<Outcome, Redirect> {
        let g = &self.groups[route.group];
        if !ticket.covers(route.group) {
            match route.mode {
                ReadMode::Stale => {}
                ReadMode::Leader { follower_fallback } => match g.read_barrier().await {
                    Ok(()) => ticket.passed.push(route.group),
                    // Deposed meanwhile: a read allowed on a follower asks
                    // the new leader instead.
                    Err(RaftError::NotLeader(_)) if follower_fallback => {
                        g.follower_read_barrier()
                            .await
                            .map_err(|e| redirect(route.slot, e))?;
                        ticket.passed.push(route.group);
                    }
                    Err(e) => return Err(redirect(route.slot, e)),
                },
                ReadMode::Follower => {
                    g.follower_read_barrier()
                        .await
                        .map_err(|e| redirect(route.slot, e))?;
                    ticket.passed.push(route.group);
                }
            }
        }
        Ok(g.read_local(op, max_reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReadConsistency::{Lease, Linearizable, Stale};

    fn leader(c: ReadConsistency) -> GroupState {
        GroupState {
            is_leader: true,
            leader_addr: None,
            consistency: c,
        }
    }

    fn follower(c: ReadConsistency) -> GroupState {
        GroupState {
            is_leader: false,
            leader_addr: Some("10.0.0.1:7000".into()),
            consistency: c,
        }
    }

    fn leaderless(c: ReadConsistency) -> GroupState {
        GroupState {
            is_leader: false,
            leader_addr: None,
            consistency: c,
        }
    }

    fn req(access: Access, slot: Option<u16>, readonly: bool) -> RouteRequest {
        RouteRequest {
            access,
            slot,
            readonly,
        }
    }

    fn moved(slot: u16) -> Decision {
        Decision::Redirect(Redirect::Moved {
            slot,
            addr: "10.0.0.1:7000".into(),
        })
    }

    #[test]
    fn decision_table() {
        use Access::{Read, Write};
        let on_leader = |fallback| {
            Decision::Read(ReadMode::Leader {
                follower_fallback: fallback,
            })
        };
        let follower_read = Decision::Read(ReadMode::Follower);
        let stale = Decision::Read(ReadMode::Stale);
        let down = Decision::Redirect(Redirect::ClusterDown);
        let readonly_err = Decision::Redirect(Redirect::ReadOnly);
        for c in [Linearizable, Lease, Stale] {
            // (group, access, slot, READONLY, expected)
            let read = |d: Decision| if c == Stale { stale.clone() } else { d };
            let cases = [
                // leader: writes proposed; reads after the barrier, keyless
                // or READONLY ones may fall back to a follower read.
                (leader(c), Write, Some(7), false, Decision::Propose),
                (leader(c), Write, None, false, Decision::Propose),
                (leader(c), Write, Some(7), true, Decision::Propose),
                (leader(c), Read, Some(7), false, read(on_leader(false))),
                (leader(c), Read, Some(7), true, read(on_leader(true))),
                (leader(c), Read, None, false, read(on_leader(true))),
                // follower: keyed writes MOVED (even READONLY), keyless
                // writes READONLY; keyed reads MOVED unless READONLY.
                (follower(c), Write, Some(7), false, moved(7)),
                (follower(c), Write, Some(7), true, moved(7)),
                (follower(c), Write, None, false, readonly_err.clone()),
                (follower(c), Read, Some(7), false, read(moved(7))),
                (
                    follower(c),
                    Read,
                    Some(7),
                    true,
                    read(follower_read.clone()),
                ),
                (follower(c), Read, None, false, read(follower_read.clone())),
                // no leader: CLUSTERDOWN for what would be redirected.
                (leaderless(c), Write, Some(7), false, down.clone()),
                (leaderless(c), Write, None, false, down.clone()),
                (leaderless(c), Read, Some(7), false, read(down.clone())),
                (
                    leaderless(c),
                    Read,
                    Some(7),
                    true,
                    read(follower_read.clone()),
                ),
                (
                    leaderless(c),
                    Read,
                    None,
                    false,
                    read(follower_read.clone()),
                ),
            ];
            for (g, access, slot, ro, want) in cases {
                assert_eq!(
                    decide(&g, &req(access, slot, ro)),
                    want,
                    "{c:?} {g:?} {access:?} slot={slot:?} readonly={ro}"
                );
            }
        }
    }

    #[test]
    fn redirect_texts() {
        assert_eq!(
            Redirect::Moved {
                slot: 12182,
                addr: "127.0.0.1:7001".into()
            }
            .error_text(),
            "MOVED 12182 127.0.0.1:7001"
        );
        assert_eq!(
            Redirect::CrossSlot.error_text(),
            "CROSSSLOT Keys in the request don't hash to the same slot"
        );
    }

    #[test]
    fn single_group_owns_every_slot() {
        let m = SlotMap::single();
        assert_eq!(m.group_of(0), 0);
        assert_eq!(m.group_of(SLOTS - 1), 0);
        assert_eq!(m.locate([]), Ok(None));
        assert_eq!(m.locate([5, 16000, 9000]), Ok(Some((5, 0))));
    }

    #[test]
    fn keys_in_two_groups_are_crossslot() {
        // Group 0 owns 0..=8191, group 1 owns 8192..=16383.
        let m = SlotMap::from_ranges(vec![(8191, 0), (SLOTS - 1, 1)]);
        assert_eq!(m.group_of(8191), 0);
        assert_eq!(m.group_of(8192), 1);
        // Every key is checked, not only the first; MOVED names the first.
        assert_eq!(m.locate([10, 20, 8191]), Ok(Some((10, 0))));
        assert_eq!(m.locate([9000, 16383]), Ok(Some((9000, 1))));
        assert_eq!(m.locate([10, 20, 9000]), Err(Redirect::CrossSlot));
        assert_eq!(m.locate([9000, 10]), Err(Redirect::CrossSlot));
        // Real keys: {a} and {b} hash to different halves.
        let slot = |k: &str| redis_protocol::redis_keyslot(k.as_bytes());
        let (a, b) = ("{a}x", "{b}y");
        assert_ne!(m.group_of(slot(a)), m.group_of(slot(b)), "pick other keys");
        assert_eq!(m.locate([slot(a), slot(b)]), Err(Redirect::CrossSlot));
    }

    #[test]
    #[should_panic(expected = "slot ranges")]
    fn slot_map_must_cover_every_slot() {
        SlotMap::from_ranges(vec![(100, 0)]);
    }
}
