//! Consensus: openraft wired to our LMDB log store, our state machine and our
//! TCP bus. Knows keyspace operations, never RESP.

pub mod auth;
pub mod bounds;
pub mod clock;
pub mod identity;
pub mod lease;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod node;
pub mod service;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod formats_tests;

pub use membership::{MemberAddr, MembershipError};
pub use node::{
    ClusterView, KeyspaceStats, RaftError, RaftNode, RaftSettings, ReadConsistency, Role,
};
