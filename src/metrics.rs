//! Metric names in one place, so dashboards and code agree.
//!
//! The client-side counters (connections, commands, errors, redirects,
//! network bytes, connected clients) are counted once, in
//! `server::Stats`, and copied here every `server::METRICS_EXPORT_PERIOD`;
//! INFO and `/metrics` never disagree about what happened.

pub const COMMANDS_TOTAL: &str = "raftcache_commands_total";
pub const COMMAND_ERRORS_TOTAL: &str = "raftcache_command_errors_total";
pub const CONNECTIONS_TOTAL: &str = "raftcache_connections_total";
pub const CONNECTED_CLIENTS: &str = "raftcache_connected_clients";
pub const REJECTED_CONNECTIONS_TOTAL: &str = "raftcache_rejected_connections_total";
pub const PROPOSALS_TOTAL: &str = "raftcache_proposals_total";
pub const PROPOSED_OPS_TOTAL: &str = "raftcache_proposed_ops_total";
pub const APPLIED_BATCHES: &str = "raftcache_applied_batches_total";
pub const READ_BARRIERS_TOTAL: &str = "raftcache_read_barriers_total";
/// Lease reads openraft granted that our own check (`raft::lease`) could
/// not confirm, so they fell back to a ReadIndex round.
pub const LEASE_READ_FALLBACKS_TOTAL: &str = "raftcache_lease_read_fallbacks_total";
/// Read-index requests a follower sent to the leader (each serves a batch).
pub const FOLLOWER_READ_INDEX_TOTAL: &str = "raftcache_follower_read_index_total";
pub const REDIRECTS_TOTAL: &str = "raftcache_redirects_total";
/// Bytes read from / written to client connections.
pub const NET_INPUT_BYTES_TOTAL: &str = "raftcache_net_input_bytes_total";
pub const NET_OUTPUT_BYTES_TOTAL: &str = "raftcache_net_output_bytes_total";
pub const EXPIRED_KEYS_TOTAL: &str = "raftcache_expired_keys_total";
pub const SNAPSHOT_BUILD_SECONDS: &str = "raftcache_snapshot_build_seconds";
pub const KEYS: &str = "raftcache_keys";
pub const RAFT_TERM: &str = "raftcache_raft_term";
pub const RAFT_LAST_APPLIED: &str = "raftcache_raft_last_applied_index";
pub const RAFT_IS_LEADER: &str = "raftcache_raft_is_leader";
pub const LOG_FULL_REFUSALS_TOTAL: &str = "raftcache_log_full_refusals_total";
/// Proposals whose leader's wall clock disagreed with the replicated clock
/// by more than `clock-max-skew` (the wall clock was ignored).
pub const CLOCK_WALL_IGNORED_TOTAL: &str = "raftcache_clock_wall_ignored_total";
/// Bus connections refused at the hello (other cluster, wiped node, impostor).
pub const BUS_REFUSED_TOTAL: &str = "raftcache_bus_refused_total";

/// Snapshots this process built from its own state (INFO raft
/// `raft_snapshots_built`). A process holds one node, so plain statics do.
pub static SNAPSHOTS_BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Snapshots this process installed from a leader (INFO raft
/// `raft_snapshots_installed`): proof that a catch-up went through a snapshot.
pub static SNAPSHOTS_INSTALLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
