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
//! Nothing lower imports anything higher.

pub mod boot;
pub mod command;
pub mod config;
pub mod failpoints;
pub mod glob;
pub mod keyspace;
pub mod metrics;
pub mod num;
pub mod protocol;
pub mod raft;
pub mod router;
pub mod server;
pub mod slot;
