//! The raft type configuration: what a log entry carries and what applying
//! it answers. Everything else in `raft` is generic over `TypeConfig`.

use std::cell::Cell;
use std::{fmt, io};

use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use openraft::type_config::alias;

use crate::keyspace::{Limits, Outcome, WriteOp};

/// Format version of a log entry's payload (`Proposal` and the `WriteOp`s
/// in it), written as its first byte. Bump it, and say so in CHANGELOG.md
/// and docs/storage.md, whenever their encoding changes (a field, a variant,
/// an order); `raft::formats_tests` fails until you do something about it.
pub const PROPOSAL_VERSION: u8 = 1;

/// One log entry's application payload: a batch of writes proposed together
/// by the leader at `now_ms` (the replicated clock as the leader estimates
/// it, in unix ms: monotonic, see `raft::clock`). Batching many
/// clients' writes into one entry is what makes group commit pay; MULTI/EXEC
/// will later be one `Proposal` too.
///
/// Encoded as the tuple `(PROPOSAL_VERSION, now_ms, limits, ops)`; decoding
/// refuses any other version (see [`decode`]) rather than misread it.
#[derive(Debug, Clone, PartialEq)]
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

impl Serialize for Proposal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(4)?;
        t.serialize_element(&PROPOSAL_VERSION)?;
        t.serialize_element(&self.now_ms)?;
        t.serialize_element(&self.limits)?;
        t.serialize_element(&self.ops)?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Proposal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Proposal;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a log entry payload of format version {PROPOSAL_VERSION}"
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Proposal, A::Error> {
                let version: u8 = seq_next(&mut seq, 0, &self)?;
                if version != PROPOSAL_VERSION {
                    UNKNOWN_VERSION.set(Some(version));
                    return Err(de::Error::custom(UnknownVersion(version)));
                }
                Ok(Proposal {
                    now_ms: seq_next(&mut seq, 1, &self)?,
                    limits: seq_next(&mut seq, 2, &self)?,
                    ops: seq_next(&mut seq, 3, &self)?,
                })
            }
        }
        d.deserialize_tuple(4, V)
    }
}

fn seq_next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    i: usize,
    exp: &dyn de::Expected,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(i, exp))
}

/// A log entry payload of a format version this build does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "log entry format version {0}, but this build reads version {PROPOSAL_VERSION} only: \
     the entry was written by another raftcache version (docs/storage.md, Formats and versions)"
)]
pub struct UnknownVersion(pub u8);

thread_local! {
    /// postcard drops the text of a custom serde error, so the version a
    /// `Proposal` refused is left here for [`decode`] to report.
    static UNKNOWN_VERSION: Cell<Option<u8>> = const { Cell::new(None) };
}

/// `postcard::from_bytes` for anything that may hold log entries (the log
/// store's records, bus frames): a payload of an unknown format version
/// fails with [`UnknownVersion`]'s text, anything else undecodable with
/// postcard's error; both `InvalidData`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    UNKNOWN_VERSION.set(None);
    postcard::from_bytes(bytes).map_err(|e| {
        let msg = match UNKNOWN_VERSION.take() {
            Some(v) => UnknownVersion(v).to_string(),
            None => e.to_string(),
        };
        io::Error::new(io::ErrorKind::InvalidData, msg)
    })
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
