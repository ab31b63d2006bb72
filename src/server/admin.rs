//! Commands that need server or cluster state: INFO, CLIENT, CONFIG GET,
//! HELLO/AUTH, CLUSTER topology and membership, and our RAFTCACHE extras.
//! Replies are built from the raft `ClusterView`, so every node tells the
//! same story about who leads.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::command::{ClientAttr, ClientFilter, ClientType, FailoverMode, ServerCmd};
use crate::protocol::Reply;
use crate::raft::types::NodeInfo;
use crate::raft::{ClusterView, RaftNode};
use crate::server::connection::Session;
use crate::server::Server;

/// The Redis version we report (clients gate features on it).
pub const REDIS_VERSION: &str = "7.2.4";

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

/// Split `host:port` (host may be empty).
fn host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// Nodes in reply order: leader first, then voters, then learners.
fn ordered_nodes(view: &ClusterView) -> Vec<(u64, NodeInfo, &'static str)> {
    let mut out = Vec::new();
    if let Some((id, info)) = view.leader_info() {
        out.push((id, info, "master"));
    }
    for (id, info) in &view.nodes {
        if Some(*id) != view.leader {
            out.push((*id, info.clone(), "replica"));
        }
    }
    out
}

/// `INFO [section ...]`.
pub fn info(server: &Server, sections: &[String]) -> String {
    let node = server.router.group_for_slot(None);
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
    let mut out = String::new();
    let (keys, expires, used_memory) = {
        let d = node.data().read();
        (
            d.keyspace.len(),
            d.keyspace.expires_len(),
            d.keyspace.used_memory(),
        )
    };
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
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_error_replies:{}\r\nraftcache_redirects:{}\r\n\r\n",
            s.total_connections.load(Ordering::Relaxed),
            s.total_commands.load(Ordering::Relaxed),
            s.rejected_connections.load(Ordering::Relaxed),
            s.net_input_bytes.load(Ordering::Relaxed),
            s.net_output_bytes.load(Ordering::Relaxed),
            s.error_replies.load(Ordering::Relaxed),
            s.redirects.load(Ordering::Relaxed),
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
            view.state.unwrap_or(openraft::ServerState::Learner),
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

/// `CLUSTER SLOTS`: one range, leader first.
pub fn cluster_slots(server: &Server, resp3: bool) -> Reply {
    let view = server.router.group_for_slot(None).view();
    if view.leader_info().is_none() {
        return Reply::Array(vec![]);
    }
    let mut range = vec![Reply::Int(0), Reply::Int(16383)];
    for (_, info, _) in ordered_nodes(&view) {
        let (host, port) = host_port(&info.addr);
        let meta = if resp3 {
            Reply::Map(vec![])
        } else {
            Reply::Array(vec![])
        };
        range.push(Reply::Array(vec![
            bulk(host),
            Reply::Int(i64::from(port)),
            bulk(info.name),
            meta,
        ]));
    }
    Reply::Array(vec![Reply::Array(range)])
}

/// `CLUSTER SHARDS`.
pub fn cluster_shards(server: &Server) -> Reply {
    let node = server.router.group_for_slot(None);
    let view = node.view();
    let nodes = ordered_nodes(&view)
        .into_iter()
        .map(|(id, info, role)| {
            let (ip, port) = host_port(&info.addr);
            let offset = if id == node.id {
                view.last_applied
            } else {
                view.replication.get(&id).copied().unwrap_or(0)
            };
            Reply::Map(vec![
                (bulk("id"), bulk(info.name.clone())),
                (bulk("port"), Reply::Int(i64::from(port))),
                (bulk("ip"), bulk(ip.clone())),
                (bulk("endpoint"), bulk(ip)),
                (bulk("role"), bulk(role)),
                (bulk("replication-offset"), Reply::Int(offset as i64)),
                (bulk("health"), bulk("online")),
            ])
        })
        .collect();
    Reply::Array(vec![Reply::Map(vec![
        (
            bulk("slots"),
            Reply::Array(vec![Reply::Int(0), Reply::Int(16383)]),
        ),
        (bulk("nodes"), Reply::Array(nodes)),
    ])])
}

/// `CLUSTER NODES` text.
pub fn cluster_nodes(server: &Server) -> String {
    let node = server.router.group_for_slot(None);
    let view = node.view();
    let leader_name = view.leader_info().map(|(_, i)| i.name);
    let mut out = String::new();
    let mut listed: Vec<(u64, NodeInfo)> =
        view.nodes.iter().map(|(i, n)| (*i, n.clone())).collect();
    if !view.nodes.contains_key(&node.id) {
        listed.push((node.id, node.me.clone()));
    }
    for (id, info) in listed {
        let bus_port = host_port(&info.bus_addr).1;
        let is_leader = Some(id) == view.leader;
        let mut flags = Vec::new();
        if id == node.id {
            flags.push("myself");
        }
        flags.push(if is_leader { "master" } else { "slave" });
        let master = if is_leader {
            "-".to_string()
        } else {
            leader_name.clone().unwrap_or_else(|| "-".into())
        };
        let slots = if is_leader { " 0-16383" } else { "" };
        let _ = writeln!(
            out,
            "{} {}@{} {} {} 0 0 {} connected{}",
            info.name,
            info.addr,
            bus_port,
            flags.join(","),
            master,
            view.term,
            slots
        );
    }
    out
}

/// `CLUSTER INFO` text.
pub fn cluster_info(server: &Server) -> String {
    let view = server.router.group_for_slot(None).view();
    let ok = view.leader.is_some();
    format!(
        "cluster_state:{}\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        if ok { "ok" } else { "fail" },
        if ok { 16384 } else { 0 },
        if ok { 0 } else { 16384 },
        view.nodes.len().max(1),
        view.voters.len(),
        view.term,
        view.term,
    )
}

/// A text reply: verbatim `txt` in RESP3, bulk in RESP2 (the encoder
/// downgrades).
pub fn text(s: String) -> Reply {
    Reply::Verbatim("txt", Bytes::from(s))
}

/// `CONFIG GET pattern...` (patterns already lowercase): a map.
pub fn config_get(server: &Server, patterns: &[String]) -> Reply {
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

/// Execute a server-layer command for `session`.
pub async fn execute(server: &Arc<Server>, session: &mut Session, cmd: ServerCmd) -> Reply {
    match cmd {
        ServerCmd::Hello {
            protover,
            auth,
            setname,
        } => {
            if let Some((user, pass)) = auth {
                if let Err(e) = authenticate(server, session, Some(&user), &pass) {
                    return e;
                }
            } else if !session.authenticated {
                return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            }
            if let Some(v) = protover {
                session.resp3 = v == 3;
                session.info.state.lock().resp = v;
            }
            if let Some(name) = setname {
                session.info.state.lock().name = String::from_utf8_lossy(&name).into_owned();
            }
            hello_reply(server, session)
        }
        ServerCmd::Auth { username, password } => {
            match authenticate(server, session, username.as_deref(), &password) {
                Ok(()) => Reply::ok(),
                Err(e) => e,
            }
        }
        ServerCmd::Quit => {
            session.closing = true;
            Reply::ok()
        }
        ServerCmd::Reset => {
            session.resp3 = false;
            session.readonly = false;
            session.authenticated = server.settings.requirepass.is_none();
            let mut st = session.info.state.lock();
            st.name.clear();
            st.resp = 2;
            st.readonly = false;
            Reply::Status("RESET".into())
        }
        ServerCmd::ClientId => Reply::Int(session.info.id as i64),
        ServerCmd::ClientSetName(name) => {
            session.info.state.lock().name = String::from_utf8_lossy(&name).into_owned();
            Reply::ok()
        }
        ServerCmd::ClientGetName => {
            let name = session.info.state.lock().name.clone();
            if name.is_empty() {
                Reply::Nil
            } else {
                bulk(name)
            }
        }
        ServerCmd::ClientSetInfo { attr, value } => {
            let value = String::from_utf8_lossy(&value).into_owned();
            let mut st = session.info.state.lock();
            match attr {
                ClientAttr::LibName => st.lib_name = value,
                ClientAttr::LibVer => st.lib_ver = value,
            }
            Reply::ok()
        }
        ServerCmd::ClientList(filter) => {
            let mut out = String::new();
            for c in server.clients.all() {
                let keep = match &filter {
                    ClientFilter::All | ClientFilter::Type(ClientType::Normal) => true,
                    ClientFilter::Type(_) => false,
                    ClientFilter::Ids(ids) => ids.contains(&c.id),
                };
                if keep {
                    out.push_str(&c.line());
                    out.push('\n');
                }
            }
            text(out)
        }
        ServerCmd::ClientInfo => text(format!("{}\n", session.info.line())),
        ServerCmd::ReadOnly => {
            session.readonly = true;
            session.info.state.lock().readonly = true;
            Reply::ok()
        }
        ServerCmd::ReadWrite => {
            session.readonly = false;
            session.info.state.lock().readonly = false;
            Reply::ok()
        }
        ServerCmd::Asking => Reply::ok(),
        ServerCmd::Info { sections } => text(info(server, &sections)),
        ServerCmd::ConfigGet { patterns } => config_get(server, &patterns),
        ServerCmd::ConfigSet { pairs } => {
            let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
            Reply::Error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - raftcache takes configuration at startup only",
                names.first().copied().unwrap_or("")
            ))
        }
        ServerCmd::ConfigResetStat => {
            server.stats.reset();
            Reply::ok()
        }
        ServerCmd::ClusterSlots => cluster_slots(server, session.resp3),
        ServerCmd::ClusterShards => cluster_shards(server),
        ServerCmd::ClusterNodes => text(cluster_nodes(server)),
        ServerCmd::ClusterInfo => text(cluster_info(server)),
        ServerCmd::ClusterMyId | ServerCmd::ClusterMyShardId => {
            bulk(server.settings.me.name.clone())
        }
        ServerCmd::ClusterMeet { ip, port, bus_port } => {
            let node = server.router.group_for_slot(None).clone();
            match meet(&node, &format!("{ip}:{port}"), bus_port).await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::ClusterForget { node_id } => {
            let node = server.router.group_for_slot(None).clone();
            let view = node.view();
            let wanted = String::from_utf8_lossy(&node_id).into_owned();
            let Some((&id, _)) = view.nodes.iter().find(|(_, n)| n.name == wanted) else {
                return Reply::Error(format!("ERR Unknown node {wanted}"));
            };
            match crate::boot::remove_member(&node, id).await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::ClusterFailover(mode) => {
            let node = server.router.group_for_slot(None).clone();
            if node.is_leader() {
                return Reply::error("ERR You should send CLUSTER FAILOVER to a replica");
            }
            let result = match (mode, node.view().leader) {
                (FailoverMode::Default, Some(leader)) if leader != node.id => {
                    crate::boot::ask_leader_to_transfer(&node, node.id).await
                }
                _ => node
                    .raft
                    .trigger()
                    .elect(false)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match result {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::RaftStatus => raft_status(server),
        ServerCmd::RaftAddLearner {
            node_id,
            host,
            port,
        } => {
            // The address is the node's client port: ask it who it is, so
            // the member record has its client address, bus address and
            // name (a learner that later leads must be redirectable to).
            let node = server.router.group_for_slot(None).clone();
            let addr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let added = async {
                let (id, info) = crate::boot::learn_identity(&addr, Some(node_id)).await?;
                crate::boot::add_member(&node, id, info, false).await
            };
            match added.await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::RaftPromote { node_id } => {
            let node = server.router.group_for_slot(None).clone();
            let ids = std::collections::BTreeSet::from([node_id]);
            match node
                .raft
                .change_membership(openraft::ChangeMembers::AddVoterIds(ids), false)
                .await
            {
                Ok(_) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::RaftSnapshot => {
            let node = server.router.group_for_slot(None);
            match node.raft.trigger().snapshot().await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::RaftTransfer { node_id } => {
            let node = server.router.group_for_slot(None);
            match node.raft.trigger().transfer_leader(node_id).await {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::RaftWhoami => Reply::Status(crate::boot::whoami_line(
            server.settings.node_id,
            &server.settings.me,
        )),
        ServerCmd::RaftJoin {
            node_id,
            addr,
            bus_addr,
            name,
        } => {
            let node = server.router.group_for_slot(None).clone();
            if !node.is_leader() {
                return match node.view().leader_info() {
                    Some((_, leader)) => Reply::Error(format!("MOVED 0 {}", leader.addr)),
                    None => Reply::error("CLUSTERDOWN The cluster is down"),
                };
            }
            let view = node.view();
            if view.voters.contains(&node_id)
                && view.nodes.get(&node_id).is_some_and(|n| n.name == name)
            {
                return Reply::ok();
            }
            match crate::boot::add_member(
                &node,
                node_id,
                NodeInfo {
                    addr,
                    bus_addr,
                    name,
                },
                true,
            )
            .await
            {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::Error(format!("ERR {e}")),
            }
        }
        ServerCmd::RaftDigest => {
            let node = server.router.group_for_slot(None);
            let d = node.data().read();
            let applied = d.last_applied.map(|l| l.index).unwrap_or(0);
            Reply::Array(vec![
                Reply::Int(applied as i64),
                bulk(format!("{:016x}", d.keyspace.digest())),
            ])
        }
    }
}

fn authenticate(
    server: &Server,
    session: &mut Session,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Reply> {
    let Some(expected) = &server.settings.requirepass else {
        return Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    };
    let user_ok = user.is_none_or(|u| u == b"default");
    if user_ok && constant_time_eq(pass, expected.as_bytes()) {
        session.authenticated = true;
        Ok(())
    } else {
        Err(Reply::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

/// Compare without an early exit, so timing does not reveal the prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

fn hello_reply(server: &Server, session: &Session) -> Reply {
    let node = server.router.group_for_slot(None);
    Reply::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk(REDIS_VERSION)),
        (bulk("proto"), Reply::Int(if session.resp3 { 3 } else { 2 })),
        (bulk("id"), Reply::Int(session.info.id as i64)),
        (bulk("mode"), bulk("cluster")),
        (
            bulk("role"),
            bulk(if node.is_leader() {
                "master"
            } else {
                "replica"
            }),
        ),
        (bulk("modules"), Reply::Array(vec![])),
    ])
}

fn raft_status(server: &Server) -> Reply {
    let node = server.router.group_for_slot(None);
    let v = node.view();
    let ids = |ids: &[u64]| Reply::Array(ids.iter().map(|i| Reply::Int(*i as i64)).collect());
    Reply::Map(vec![
        (bulk("id"), Reply::Int(node.id as i64)),
        (bulk("name"), bulk(node.me.name.clone())),
        (
            bulk("cluster-id"),
            node.identity.cluster_id().map(bulk).unwrap_or(Reply::Nil),
        ),
        (
            bulk("state"),
            bulk(format!(
                "{:?}",
                v.state.unwrap_or(openraft::ServerState::Learner)
            )),
        ),
        (bulk("term"), Reply::Int(v.term as i64)),
        (
            bulk("leader"),
            v.leader.map(|l| Reply::Int(l as i64)).unwrap_or(Reply::Nil),
        ),
        (bulk("last-log-index"), Reply::Int(v.last_log_index as i64)),
        (bulk("committed"), Reply::Int(v.committed as i64)),
        (bulk("last-applied"), Reply::Int(v.last_applied as i64)),
        (bulk("snapshot-index"), Reply::Int(v.snapshot_index as i64)),
        (bulk("purged-index"), Reply::Int(v.purged_index as i64)),
        (bulk("voters"), ids(&v.voters)),
        (bulk("learners"), ids(&v.learners)),
        (
            bulk("read-consistency"),
            bulk(node.read_consistency.as_str()),
        ),
    ])
}

/// CLUSTER MEET: learn the node's identity from its client port, then add
/// it (learner, catch up, voter).
async fn meet(
    node: &Arc<RaftNode>,
    client_addr: &str,
    _bus_port: Option<u16>,
) -> Result<(), String> {
    let (id, info) = crate::boot::learn_identity(client_addr, None).await?;
    crate::boot::add_member(node, id, info, true).await
}
