//! CLUSTER topology replies (Redis Cluster shapes, built from the raft
//! `ClusterView` so every node tells the same story about who leads),
//! cluster membership verbs, and RAFTCACHE (parsed in `command/cluster.rs`).

use std::fmt::Write as _;

use super::{bulk, host_port, ok_or_err};
use crate::command::FailoverMode;
use crate::protocol::Reply;
use crate::raft::membership::{self, MemberAddr, MembershipError};
use crate::raft::types::NodeInfo;
use crate::raft::{ClusterView, RaftNode, Role};
use crate::server::Server;
use crate::slot::SLOTS;

/// The last slot: one group owns `0..=LAST_SLOT` today.
const LAST_SLOT: i64 = SLOTS as i64 - 1;

/// Nodes in reply order: leader first, then voters, then learners.
pub(super) fn ordered_nodes(view: &ClusterView) -> Vec<(u64, NodeInfo, &'static str)> {
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

/// A node's health as this node knows it (Redis's PFAIL and FAIL flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    Online,
    /// `fail?`: silent for at least the election timeout.
    PFail,
    /// `fail`: silent for at least `link_timeout` (only the leader, which
    /// hears every follower, declares it).
    Fail,
}

/// What CLUSTER NODES/SHARDS/SLOTS say about one node's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Liveness {
    pub health: Health,
    /// Link state: down once silent for `link_timeout` (as INFO's
    /// replication section counts links).
    pub connected: bool,
    /// Unix ms (wall clock) of the unanswered ping: the
    /// last ack, after which heartbeats went unanswered; 0 while healthy.
    pub ping_sent: u64,
    /// Unix ms of the last ack (leader) or append (follower); 0: unknown.
    pub pong_recv: u64,
}

const HEALTHY: Liveness = Liveness {
    health: Health::Online,
    connected: true,
    ping_sent: 0,
    pong_recv: 0,
};

/// `id`'s liveness as seen from `node`. The leader knows every follower
/// (openraft's per-follower ack times, `view.acked`); a follower knows
/// only the leader (`leader_contact`) and flags it at most `fail?` (one
/// node's opinion is PFAIL; in Redis FAIL takes a majority, and a silent
/// leader is replaced by an election, not by a flag). Nodes a follower
/// has no link to (other followers) are shown healthy: ask the leader.
pub(super) fn liveness(node: &RaftNode, view: &ClusterView, id: u64) -> Liveness {
    let leading = view.leader == Some(node.id);
    let silent = if id == node.id {
        return HEALTHY;
    } else if leading {
        view.acked.get(&id).copied().flatten().map(|t| t.elapsed())
    } else if Some(id) == view.leader {
        node.leader_contact().since()
    } else {
        return HEALTHY;
    };
    let Some(silent) = silent else {
        // Never heard from (since this node leads / since it started).
        return Liveness {
            health: Health::PFail,
            connected: false,
            ..HEALTHY
        };
    };
    let mut health = if silent >= node.link_timeout {
        Health::Fail
    } else if silent >= node.election_timeout {
        Health::PFail
    } else {
        Health::Online
    };
    if !leading && health == Health::Fail {
        health = Health::PFail;
    }
    // This machine's wall clock, as Redis's `mstime()`: an observation
    // time for operators, not the replicated clock TTLs run on.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let pong_recv = u64::try_from(wall.saturating_sub(silent).as_millis()).unwrap_or(0);
    Liveness {
        health,
        connected: silent < node.link_timeout,
        ping_sent: if health == Health::Online {
            0
        } else {
            pong_recv
        },
        pong_recv,
    }
}

/// `CLUSTER SLOTS`: one range, leader first. As Redis does
/// (`clusterReplyMultiBulkSlots` skips failing replicas), a replica
/// flagged `fail` is left out, so cluster clients stop reading from it;
/// the leader is always listed.
pub(super) fn slots(server: &Server, resp3: bool) -> Reply {
    let node = server.router.local_node();
    let view = node.view();
    if view.leader_info().is_none() {
        return Reply::Array(vec![]);
    }
    let mut range = vec![Reply::Int(0), Reply::Int(LAST_SLOT)];
    for (id, info, role) in ordered_nodes(&view) {
        if role != "master" && liveness(node, &view, id).health == Health::Fail {
            continue;
        }
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

/// `CLUSTER SHARDS`. As in Redis, an advertised TLS port (`tls-cluster`)
/// is listed as `tls-port`, and `health` is `fail` for a node flagged
/// `fail` (Redis's source says "fail"; its docs say "failed"), otherwise
/// `online` (a `fail?` node is still online, as in Redis).
pub(super) fn shards(server: &Server) -> Reply {
    let port_field = match server.settings.tls_cluster {
        true => "tls-port",
        false => "port",
    };
    let node = server.router.local_node();
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
                (bulk(port_field), Reply::Int(i64::from(port))),
                (bulk("ip"), bulk(ip.clone())),
                (bulk("endpoint"), bulk(ip)),
                (bulk("role"), bulk(role)),
                (bulk("replication-offset"), Reply::Int(offset as i64)),
                (
                    bulk("health"),
                    bulk(match liveness(node, &view, id).health {
                        Health::Fail => "fail",
                        Health::Online | Health::PFail => "online",
                    }),
                ),
            ])
        })
        .collect();
    Reply::Array(vec![Reply::Map(vec![
        (
            bulk("slots"),
            Reply::Array(vec![Reply::Int(0), Reply::Int(LAST_SLOT)]),
        ),
        (bulk("nodes"), Reply::Array(nodes)),
    ])])
}

/// `CLUSTER NODES` text, with `fail?`/`fail` flags, ping-sent/pong-recv
/// and the link state from `liveness`.
pub(super) fn nodes(server: &Server) -> String {
    let node = server.router.local_node();
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
        let live = liveness(node, &view, id);
        match live.health {
            Health::Online => {}
            Health::PFail => flags.push("fail?"),
            Health::Fail => flags.push("fail"),
        }
        let master = if is_leader {
            "-".to_string()
        } else {
            leader_name.clone().unwrap_or_else(|| "-".into())
        };
        let slots = if is_leader {
            format!(" 0-{LAST_SLOT}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} {}@{} {} {} {} {} {} {}{}",
            info.name,
            info.addr,
            bus_port,
            flags.join(","),
            master,
            live.ping_sent,
            live.pong_recv,
            view.term,
            if live.connected {
                "connected"
            } else {
                "disconnected"
            },
            slots
        );
    }
    out
}

/// `CLUSTER INFO` text.
pub(super) fn info(server: &Server) -> String {
    let view = server.router.local_node().view();
    let ok = view.leader.is_some();
    format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{SLOTS}\r\ncluster_slots_ok:{}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n",
        if ok { "ok" } else { "fail" },
        if ok { SLOTS } else { 0 },
        if ok { 0 } else { SLOTS },
        view.nodes.len().max(1),
        view.voters.len(),
        view.term,
        view.term,
    )
}

pub(super) fn raft_status(server: &Server) -> Reply {
    let node = server.router.local_node();
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
            bulk(v.state.unwrap_or(Role::Learner).to_string()),
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

/// CLUSTER MYID / MYSHARDID: this node's 40-hex name.
pub(super) fn myid(server: &Server) -> Reply {
    bulk(server.settings.me.name.clone())
}

/// A membership result as a Redis reply: `+OK`; `-MOVED 0 <leader>` or
/// `-CLUSTERDOWN` when this node does not lead; `-ERR <why>` otherwise.
fn membership_reply(r: Result<(), MembershipError>) -> Reply {
    match r {
        Ok(()) => Reply::ok(),
        Err(MembershipError::NotLeader(Some((_, leader)))) => {
            Reply::Error(format!("MOVED 0 {}", leader.addr))
        }
        Err(MembershipError::NotLeader(None)) => Reply::error("CLUSTERDOWN The cluster is down"),
        Err(e) => Reply::Error(format!("ERR {e}")),
    }
}

/// CLUSTER MEET ip port [cluster-bus-port]: ask the node's cluster bus (at
/// port + 10000 unless given) who it is, then add it (learner, catch up,
/// voter).
pub(super) async fn meet(
    server: &Server,
    ip: std::net::IpAddr,
    port: u16,
    bus_port: Option<u16>,
) -> Reply {
    let node = server.router.local_node().clone();
    let addr = match MemberAddr::new(&ip.to_string(), port, bus_port) {
        Ok(a) => a,
        Err(e) => return Reply::Error(format!("ERR Invalid node address specified: {e}")),
    };
    membership_reply(membership::meet(&node, &addr).await)
}

/// CLUSTER FORGET node-name.
pub(super) async fn forget(server: &Server, node_id: &[u8]) -> Reply {
    let node = server.router.local_node().clone();
    let wanted = String::from_utf8_lossy(node_id).into_owned();
    membership_reply(membership::forget(&node, &wanted).await)
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER], sent to a follower (see
/// `membership::failover` for when FORCE/TAKEOVER is refused).
pub(super) async fn failover(server: &Server, mode: FailoverMode) -> Reply {
    let node = server.router.local_node().clone();
    if node.is_leader() {
        return Reply::error("ERR You should send CLUSTER FAILOVER to a replica");
    }
    let force = mode != FailoverMode::Default;
    membership_reply(membership::failover(&node, force).await)
}

/// RAFTCACHE ADD-LEARNER id host:port[@busport]: the address is the node's
/// client address; its cluster bus is asked who it is, so the member record
/// has its client address, bus address and name (a learner that later
/// leads must be redirectable to).
pub(super) async fn add_learner(server: &Server, node_id: u64, addr: &MemberAddr) -> Reply {
    let node = server.router.local_node().clone();
    membership_reply(membership::add_learner(&node, node_id, addr).await)
}

/// RAFTCACHE PROMOTE id.
pub(super) async fn promote(server: &Server, node_id: u64) -> Reply {
    let node = server.router.local_node().clone();
    membership_reply(membership::promote(&node, node_id).await)
}

/// RAFTCACHE SNAPSHOT.
pub(super) async fn snapshot(server: &Server) -> Reply {
    let node = server.router.local_node();
    ok_or_err(node.trigger_snapshot().await)
}

/// RAFTCACHE TRANSFER id: only to a voter (a learner or an unknown id
/// cannot win the election it would be told to start).
pub(super) async fn transfer(server: &Server, node_id: u64) -> Reply {
    let node = server.router.local_node();
    if !node.view().voters.contains(&node_id) {
        return Reply::Error(format!(
            "ERR node {node_id} is not a voter of this cluster; leadership can only be transferred to a voter"
        ));
    }
    membership_reply(membership::transfer(node, node_id).await)
}

/// RAFTCACHE DIGEST: `[applied-index, digest]`.
pub(super) fn digest(server: &Server) -> Reply {
    let (applied, digest) = server.router.local_node().digest();
    Reply::Array(vec![
        Reply::Int(applied as i64),
        bulk(format!("{digest:016x}")),
    ])
}
