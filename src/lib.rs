//! raftcache: a Redis-protocol cache whose writes are replicated by Raft.
//!
//! Data flows one way:
//!
//! ```text
//! socket -> server::connection (RESP via protocol::request, limits, pipelining)
//!        -> command (ONE table: arity, flags, key positions; typed parse)
//!        -> router  (leader? read barrier / propose; follower? -MOVED; none? -CLUSTERDOWN)
//!        -> raft    (openraft; entries are typed `Proposal`s, never RESP)
//!        -> raft::log_store (LMDB via heed; flushed = on disk)
//!        -> raft::state_machine (batched apply, snapshots)
//!        -> keyspace (map, deadlines)
//!        -> reply   (protocol::reply, one flush per pipeline batch)
//! ```
//!
//! Nothing lower imports anything higher. Beside the layers, at the crate
//! root and importing nothing from the crate, sit the helpers every layer
//! shares: `num` (Redis number syntax: integers, floats, float formatting),
//! `glob` (Redis glob patterns: KEYS/SCAN, CONFIG GET, COMMAND LIST) and
//! `slot` (the slot count and a key's slot: keyspace maps, CLUSTER KEYSLOT,
//! routing).

pub mod boot;
pub mod command;
pub mod config;
pub mod failpoints;
pub mod glob;
pub mod keyspace;
pub mod latency;
pub mod metrics;
pub mod num;
pub mod protocol;
pub mod raft;
pub mod router;
pub mod server;
pub mod slot;
