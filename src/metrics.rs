//! Every series in one place, with its kind, unit and help text, so
//! dashboards, docs and code agree: [`SERIES`] is described to the
//! recorder at startup ([`describe`]) and docs/operations.md lists it.
//!
//! The client-side counters (connections, commands, errors, redirects,
//! network bytes, connected clients) are counted once, in
//! `server::Stats`, and copied here every `server::METRICS_EXPORT_PERIOD`;
//! INFO and `/metrics` never disagree about what happened.

use metrics::Unit;

/// What kind of series a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One series: name, kind, unit and `# HELP` text.
pub struct Series {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    pub help: &'static str,
}

macro_rules! series {
    ($($(#[$doc:meta])* $konst:ident = $name:literal, $kind:ident, $unit:ident, $help:literal;)*) => {
        $($(#[$doc])* pub const $konst: &str = $name;)*
        /// Every series this process emits.
        pub const SERIES: &[Series] = &[$(Series {
            name: $name,
            kind: Kind::$kind,
            unit: Unit::$unit,
            help: $help,
        }),*];
    };
}

series! {
    COMMANDS_TOTAL = "raftcache_commands_total", Counter, Count,
        "Commands clients sent (INFO total_commands_processed).";
    COMMAND_ERRORS_TOTAL = "raftcache_command_errors_total", Counter, Count,
        "Error replies sent to clients (INFO total_error_replies).";
    CONNECTIONS_TOTAL = "raftcache_connections_total", Counter, Count,
        "Client connections accepted (INFO total_connections_received).";
    CONNECTED_CLIENTS = "raftcache_connected_clients", Gauge, Count,
        "Client connections open now (INFO connected_clients).";
    REJECTED_CONNECTIONS_TOTAL = "raftcache_rejected_connections_total", Counter, Count,
        "Client connections refused at maxclients (INFO rejected_connections).";
    PROPOSALS_TOTAL = "raftcache_proposals_total", Counter, Count,
        "Raft proposals (batches of writes) this node made as leader.";
    PROPOSED_OPS_TOTAL = "raftcache_proposed_ops_total", Counter, Count,
        "Write operations in this node's proposals.";
    APPLIED_BATCHES = "raftcache_applied_batches_total", Counter, Count,
        "Batches of log entries the state machine applied.";
    READ_BARRIERS_TOTAL = "raftcache_read_barriers_total", Counter, Count,
        "Linearizable read barriers (ReadIndex or lease checks) this node ran.";
    /// Lease reads openraft granted that our own check (`raft::lease`) could
    /// not confirm, so they fell back to a ReadIndex round.
    LEASE_READ_FALLBACKS_TOTAL = "raftcache_lease_read_fallbacks_total", Counter, Count,
        "Lease reads that fell back to a ReadIndex round.";
    /// Read-index requests a follower sent to the leader (each serves a batch).
    FOLLOWER_READ_INDEX_TOTAL = "raftcache_follower_read_index_total", Counter, Count,
        "Read-index requests this follower sent to the leader.";
    REDIRECTS_TOTAL = "raftcache_redirects_total", Counter, Count,
        "-MOVED replies sent to clients.";
    /// Bytes read from / written to client connections.
    NET_INPUT_BYTES_TOTAL = "raftcache_net_input_bytes_total", Counter, Bytes,
        "Bytes read from client connections (INFO total_net_input_bytes).";
    NET_OUTPUT_BYTES_TOTAL = "raftcache_net_output_bytes_total", Counter, Bytes,
        "Bytes written to client connections (INFO total_net_output_bytes).";
    EXPIRED_KEYS_TOTAL = "raftcache_expired_keys_total", Counter, Count,
        "Keys deleted by active expiry this node proposed as leader.";
    SNAPSHOT_BUILD_SECONDS = "raftcache_snapshot_build_seconds", Histogram, Seconds,
        "Time to build a snapshot of the state machine.";
    LOG_FSYNC_SECONDS = "raftcache_log_fsync_seconds", Histogram, Seconds,
        "Time of one raft log fsync (covers every append committed before it).";
    APPLY_SECONDS = "raftcache_apply_seconds", Histogram, Seconds,
        "Time the state machine took to apply one batch of log entries.";
    READ_BARRIER_SECONDS = "raftcache_read_barrier_seconds", Histogram, Seconds,
        "Time of one read barrier (ReadIndex round or lease check), success or not.";
    KEYS = "raftcache_keys", Gauge, Count,
        "Keys in the keyspace (INFO keyspace keys).";
    KEYS_WITH_EXPIRY = "raftcache_keys_with_expiry", Gauge, Count,
        "Keys with a deadline (INFO keyspace expires).";
    USED_MEMORY_BYTES = "raftcache_used_memory_bytes", Gauge, Bytes,
        "Bytes the keyspace accounts for (INFO used_memory).";
    RAFT_TERM = "raftcache_raft_term", Gauge, Count,
        "Current raft term.";
    RAFT_LAST_APPLIED = "raftcache_raft_last_applied_index", Gauge, Count,
        "Last log index applied to the state machine.";
    RAFT_LAST_LOG_INDEX = "raftcache_raft_last_log_index", Gauge, Count,
        "Last log index in this node's log.";
    RAFT_COMMITTED = "raftcache_raft_committed_index", Gauge, Count,
        "Last log index this node knows to be committed.";
    RAFT_SNAPSHOT_INDEX = "raftcache_raft_snapshot_index", Gauge, Count,
        "Last log index covered by this node's snapshot.";
    RAFT_IS_LEADER = "raftcache_raft_is_leader", Gauge, Count,
        "1 if this node is the raft leader, else 0.";
    RAFT_ROLE = "raftcache_raft_role", Gauge, Count,
        "1 for this node's raft role (label role: learner, follower, candidate, leader, shutdown), 0 for the others.";
    RAFT_LEADER_ID = "raftcache_raft_leader_id", Gauge, Count,
        "Node id of the leader this node knows of; 0 = none.";
    RAFT_LEADER_CHANGES_TOTAL = "raftcache_raft_leader_changes_total", Counter, Count,
        "Times the leader this node knows of changed (including to none).";
    RAFT_VOTERS = "raftcache_raft_voters", Gauge, Count,
        "Voters in the membership config.";
    RAFT_LEARNERS = "raftcache_raft_learners", Gauge, Count,
        "Learners in the membership config.";
    RAFT_JOINT_CONFIG = "raftcache_raft_joint_config", Gauge, Count,
        "1 while a membership change is in its joint phase, else 0.";
    RAFT_FOLLOWER_MATCHED_INDEX = "raftcache_raft_follower_matched_index", Gauge, Count,
        "Leader only (join with raftcache_raft_is_leader == 1): last log index known replicated to each follower (label follower).";
    LOG_FULL_REFUSALS_TOTAL = "raftcache_log_full_refusals_total", Counter, Count,
        "Writes refused because the raft log reached its bound.";
    /// Proposals whose leader's wall clock disagreed with the replicated clock
    /// by more than `clock-max-skew` (the wall clock was ignored).
    CLOCK_WALL_IGNORED_TOTAL = "raftcache_clock_wall_ignored_total", Counter, Count,
        "Proposals whose wall clock was ignored (skew above clock-max-skew).";
    /// Bus connections refused at the hello (other cluster, wiped node, impostor).
    BUS_REFUSED_TOTAL = "raftcache_bus_refused_total", Counter, Count,
        "Raft bus connections refused at the handshake or hello.";
}

/// Give every series its `# HELP` text and unit in the installed recorder.
pub fn describe() {
    for s in SERIES {
        match s.kind {
            Kind::Counter => metrics::describe_counter!(s.name, s.unit, s.help),
            Kind::Gauge => metrics::describe_gauge!(s.name, s.unit, s.help),
            Kind::Histogram => metrics::describe_histogram!(s.name, s.unit, s.help),
        }
    }
}

/// Copy the keyspace's size (what INFO shows) to its gauges.
pub fn export_keyspace(k: &crate::raft::KeyspaceStats) {
    metrics::gauge!(KEYS).set(k.keys as f64);
    metrics::gauge!(KEYS_WITH_EXPIRY).set(k.expires as f64);
    metrics::gauge!(USED_MEMORY_BYTES).set(k.used_memory as f64);
}

/// Snapshots this process built from its own state (INFO raft
/// `raft_snapshots_built`). A process holds one node, so plain statics do.
pub static SNAPSHOTS_BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Snapshots this process installed from a leader (INFO raft
/// `raft_snapshots_installed`): proof that a catch-up went through a snapshot.
pub static SNAPSHOTS_INSTALLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/operations.md lists every series with its help text.
    #[test]
    fn operations_doc_lists_every_series() {
        let doc = include_str!("../docs/operations.md");
        for s in SERIES {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", s.name)))
                .unwrap_or_else(|| panic!("docs/operations.md does not list {}", s.name));
            assert!(
                row.contains(&s.help.replace('|', "/")),
                "docs/operations.md: {} has help text other than src/metrics.rs's",
                s.name
            );
        }
    }

    #[test]
    fn series_follow_prometheus_conventions() {
        let mut names = std::collections::BTreeSet::new();
        for s in SERIES {
            assert!(names.insert(s.name), "{} declared twice", s.name);
            assert!(s.name.starts_with("raftcache_"), "{}", s.name);
            assert!(!s.help.is_empty(), "{}", s.name);
            assert_eq!(
                s.kind == Kind::Counter,
                s.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                s.name
            );
            let base = s.name.trim_end_matches("_total");
            match s.unit {
                Unit::Seconds => assert!(base.ends_with("_seconds"), "{}", s.name),
                Unit::Bytes => assert!(base.ends_with("_bytes"), "{}", s.name),
                Unit::Count => {}
                u => panic!("{}: use base units, not {u:?}", s.name),
            }
        }
    }
}
