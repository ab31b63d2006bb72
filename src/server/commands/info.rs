//! INFO and CONFIG (parsed in `command/server.rs`).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::cluster::ordered_nodes;
use super::{bulk, host_port};
use crate::protocol::Reply;
use crate::raft::{ClusterView, RaftNode};
use crate::server::Server;

/// The Redis version we report (clients gate features on it).
pub const REDIS_VERSION: &str = "7.2.4";

/// `INFO [section ...]`.
pub(super) fn info(server: &Server, sections: &[String]) -> String {
    let node = server.router.local_node();
    let view = node.view();
    let want = |s: &str| {
        sections.is_empty()
            || sections.iter().any(|w| {
                w.eq_ignore_ascii_case(s)
                    || w.eq_ignore_ascii_case("all")
                    || w.eq_ignore_ascii_case("everything")
            })
            || (sections.iter().any(|w| w.eq_ignore_ascii_case("default")))
    };
    // Shown only when asked for (or with all / everything), as in Redis.
    let asked = |s: &str| {
        sections.iter().any(|w| {
            w.eq_ignore_ascii_case(s)
                || w.eq_ignore_ascii_case("all")
                || w.eq_ignore_ascii_case("everything")
        })
    };
    let mut out = String::new();
    let crate::raft::KeyspaceStats {
        keys,
        expires,
        used_memory,
    } = node.keyspace_stats();
    let uptime = server.started.elapsed().as_secs();
    if want("server") {
        let _ = write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nraftcache_version:{}\r\nredis_mode:cluster\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nexecutable:raftcache\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            server.run_id,
            host_port(&server.settings.me.addr).1,
            uptime / 86400,
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\r\n",
            server.clients.len(),
            server.settings.maxclients
        );
    }
    if want("memory") {
        let rss = rss_bytes();
        let _ = write!(
            out,
            "# Memory\r\nused_memory:{used_memory}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n",
            human_bytes(used_memory as u64)
        );
    }
    if want("persistence") {
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\naof_enabled:1\r\nraft_log_backend:lmdb\r\nlast_snapshot_index:{}\r\n\r\n",
            view.snapshot_index
        );
    }
    if want("stats") {
        let s = &server.stats;
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_error_replies:{}\r\nraftcache_redirects:{}\r\nacl_access_denied_auth:{}\r\nacl_access_denied_cmd:{}\r\nacl_access_denied_key:{}\r\nacl_access_denied_channel:0\r\n\r\n",
            s.connections.since_reset(),
            s.commands.since_reset(),
            s.rejected_connections.since_reset(),
            s.net_input_bytes.since_reset(),
            s.net_output_bytes.since_reset(),
            s.error_replies.since_reset(),
            s.redirects.since_reset(),
            server.acl.denied_auth.since_reset(),
            server.acl.denied_cmd.since_reset(),
            server.acl.denied_key.since_reset(),
        );
    }
    if want("replication") {
        out.push_str(&replication_section(node, &view));
    }
    if want("cpu") {
        let (user, sys) = cpu_seconds();
        let _ = write!(
            out,
            "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n\r\n"
        );
    }
    if want("cluster") {
        out.push_str("# Cluster\r\ncluster_enabled:1\r\n\r\n");
    }
    if want("raft") {
        let _ = write!(
            out,
            "# Raft\r\nraft_node_id:{}\r\nraft_state:{:?}\r\nraft_term:{}\r\nraft_leader_id:{}\r\nraft_last_log_index:{}\r\nraft_committed_index:{}\r\nraft_last_applied_index:{}\r\nraft_snapshot_index:{}\r\nraft_purged_index:{}\r\nraft_voters:{}\r\nraft_learners:{}\r\nraft_joint_config:{}\r\nraft_read_consistency:{:?}\r\nraft_snapshots_built:{}\r\nraft_snapshots_installed:{}\r\n{}\r\n",
            node.id,
            view.state.unwrap_or(crate::raft::Role::Learner),
            view.term,
            view.leader.map(|l| l.to_string()).unwrap_or_default(),
            view.last_log_index,
            view.committed,
            view.last_applied,
            view.snapshot_index,
            view.purged_index,
            join_ids(&view.voters),
            join_ids(&view.learners),
            u8::from(view.joint),
            node.read_consistency,
            crate::metrics::SNAPSHOTS_BUILT.load(Ordering::Relaxed),
            crate::metrics::SNAPSHOTS_INSTALLED.load(Ordering::Relaxed),
            log_bounds_lines(node),
        );
    }
    if asked("commandstats") {
        out.push_str(&server.stats.per_command.commandstats_section());
    }
    if asked("latencystats") {
        out.push_str(&server.stats.per_command.latencystats_section());
    }
    // Redis 7 lists errorstats among its default sections.
    if want("errorstats") {
        out.push_str(&server.stats.per_command.errorstats_section());
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        if keys > 0 {
            let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
        out.push_str("\r\n");
    }
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

/// The log's size against its limits (docs/log-bounds.md), for `# Raft`.
fn log_bounds_lines(node: &RaftNode) -> String {
    let b = node.log_bounds();
    format!(
        "raft_log_bytes:{}\r\nraft_log_largest_entry_bytes:{}\r\nraft_log_bytes_since_snapshot:{}\r\nraft_log_inflight_bytes:{}\r\nraft_lmdb_used_bytes:{}\r\nraft_lmdb_write_limit_bytes:{}\r\nraft_lmdb_map_size:{}\r\nraft_log_full_refusals:{}\r\n",
        b.log_bytes,
        b.largest_entry_bytes,
        b.log_bytes_since_snapshot,
        b.inflight_bytes,
        b.lmdb_used_bytes,
        b.write_limit_bytes,
        b.lmdb_map_size,
        b.writes_refused,
    )
}

fn join_ids(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `# Replication` from live links, not membership: on the leader a
/// follower counts as a connected replica only while it acknowledges
/// appends/heartbeats (openraft's per-follower ack times); on a follower
/// the link is up only while appends from the leader keep arriving. A link
/// silent for longer than the election timeout is down.
fn replication_section(node: &RaftNode, view: &ClusterView) -> String {
    let mut out = String::from("# Replication\r\n");
    let secs = |d: std::time::Duration| d.as_secs();
    if node.is_leader() {
        // (follower, seconds since its last ack) for the live links.
        let live: Vec<_> = ordered_nodes(view)
            .into_iter()
            .filter(|(id, _, _)| *id != node.id)
            .filter_map(|(id, info, _)| {
                let since = view.acked.get(&id).copied().flatten()?.elapsed();
                (since < node.link_timeout).then_some((id, info, since))
            })
            .collect();
        let _ = write!(out, "role:master\r\nconnected_slaves:{}\r\n", live.len());
        for (i, (id, info, since)) in live.iter().enumerate() {
            let (ip, port) = host_port(&info.addr);
            let matched = view.replication.get(id).copied().unwrap_or(0);
            // `lag` is seconds since the replica's last acknowledgement, as
            // in Redis; the offset is its matched log index.
            let _ = write!(
                out,
                "slave{i}:ip={ip},port={port},state=online,offset={matched},lag={}\r\n",
                secs(*since)
            );
        }
        let _ = write!(out, "master_repl_offset:{}\r\n", view.last_applied);
    } else {
        let since = node.leader_contact().since();
        let (host, port) = match view.leader_info() {
            Some((_, info)) => host_port(&info.addr),
            None => (String::new(), 0),
        };
        let up = view.leader.is_some() && since.is_some_and(|d| d < node.link_timeout);
        let last_io = since.map_or(-1, |d| secs(d) as i64);
        let _ = write!(
            out,
            "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{last_io}\r\n",
            if up { "up" } else { "down" }
        );
        if !up {
            let _ = write!(out, "master_link_down_since_seconds:{last_io}\r\n");
        }
        let lag = view.committed.saturating_sub(view.last_applied);
        let _ = write!(
            out,
            "slave_repl_offset:{}\r\nslave_read_repl_offset:{}\r\nmaster_sync_in_progress:0\r\nslave_lag:{lag}\r\nconnected_slaves:0\r\n",
            view.last_applied, view.last_applied
        );
    }
    out.push_str("\r\n");
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2}{}", UNITS[u])
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (ticks(11), ticks(12))
}

/// `CONFIG GET pattern...` (patterns already lowercase): a map.
pub(super) fn config_get(server: &Server, patterns: &[String]) -> Reply {
    let pairs = server
        .settings
        .config_pairs
        .iter()
        .filter(|(name, _)| {
            patterns
                .iter()
                .any(|p| crate::keyspace::glob_match(p.as_bytes(), name.as_bytes()))
        })
        .map(|(name, value)| (bulk(name.clone()), bulk(value.clone())))
        .collect();
    Reply::Map(pairs)
}

/// CONFIG SET: configuration is taken at startup only (for now).
pub(super) fn config_set(pairs: &[(String, Bytes)]) -> Reply {
    let first = pairs.first().map(|(n, _)| n.as_str()).unwrap_or("");
    Reply::Error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{first}') - raftcache takes configuration at startup only"
    ))
}

/// CONFIG RESETSTAT.
pub(super) fn config_resetstat(server: &Server) -> Reply {
    server.stats.reset();
    server.acl.reset_stats();
    Reply::ok()
}
