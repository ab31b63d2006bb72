//! Wiring a node together: data dir identity, raft group, bus listener,
//! client listener, metrics endpoint, and joining an existing cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::raft::types::NodeInfo;
use crate::raft::{ClusterView, RaftNode, RaftSettings};
use crate::router::Router;
use crate::server::{Server, ServerSettings};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Raft(String),
    #[error("join failed: {0}")]
    Join(String),
}

/// Everything `run` needs besides the raft and server settings.
#[derive(Debug, Clone)]
pub struct BootSettings {
    pub client_listen: String,
    pub bus_listen: String,
    pub join: Option<String>,
    pub metrics_listen: Option<String>,
    /// Bootstrap a new one-node cluster on an empty dir without `join`
    /// (resolved from `cluster-bootstrap`; see docs/membership.md).
    pub bootstrap: bool,
}

/// Start the node and serve until the process ends.
pub async fn run(
    boot: BootSettings,
    raft: RaftSettings,
    server: ServerSettings,
) -> Result<(), StartError> {
    if let Some(addr) = &boot.metrics_listen {
        let addr: std::net::SocketAddr = addr.parse().map_err(|e| StartError::Listen {
            addr: addr.clone(),
            source: std::io::Error::other(format!("{e}")),
        })?;
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| StartError::Listen {
                addr: addr.to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
    }
    let client = TcpListener::bind(&boot.client_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: boot.client_listen.clone(),
            source,
        })?;
    let bus = TcpListener::bind(&boot.bus_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: boot.bus_listen.clone(),
            source,
        })?;
    if raft.unsafe_no_fsync {
        tracing::warn!("!!! unsafe-no-fsync is ON: acknowledged writes can be LOST on a crash. Test use only. !!!");
    }
    let snapshot_dir = raft.dir.join("snapshots");
    let me = raft.me.clone();
    let id = raft.node_id;
    let identity = raft.identity.clone();
    let node = RaftNode::start(raft)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    tokio::spawn(crate::raft::service::serve(
        bus,
        node.clone(),
        snapshot_dir,
        identity.clone(),
    ));

    let initialized = node
        .raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let router = Router::new(node.clone());
    let server = Server::new(server, router);
    tracing::info!(node_id = id, client = %boot.client_listen, bus = %boot.bus_listen, name = %me.name, "raftcache ready");
    let serving = tokio::spawn(server.clone().serve(client));
    if initialized {
        if boot.join.is_some() {
            tracing::info!("data dir already holds cluster state; --join ignored");
        }
        if identity.cluster_id().is_none() {
            tracing::error!("data dir holds raft state but no cluster-id file (made before cluster ids existed?): peers will refuse this node");
        }
    } else if let Some(seed) = &boot.join {
        join(seed, id, &me).await?;
    } else if !boot.bootstrap {
        tracing::warn!(
            "empty data dir, no --join, and bootstrapping was not chosen: NOT creating a new cluster \
             (a wiped member must not start one). Waiting to be added by a member \
             (CLUSTER MEET / RAFTCACHE ADD-LEARNER on the leader); to create a new cluster, \
             start with --cluster-bootstrap yes"
        );
    } else {
        let cluster = identity.create_cluster()?;
        tracing::info!(%cluster, "bootstrapping a new cluster");
        let members = BTreeMap::from([(id, me.clone())]);
        node.raft
            .initialize(members)
            .await
            .map_err(|e| StartError::Raft(format!("bootstrap: {e}")))?;
        tracing::info!("bootstrapped a new single-node cluster");
    }
    let _ = serving.await;
    Ok(())
}

/// Ask a member (following redirects to the leader) to add this node: first
/// as a learner, then, once it has caught up, as a voter.
async fn join(seed: &str, id: u64, me: &NodeInfo) -> Result<(), StartError> {
    let mut target = seed.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match join_once(&target, id, me).await {
            Ok(JoinReply::Done) => {
                tracing::info!(via = %target, "joined the cluster");
                return Ok(());
            }
            Ok(JoinReply::Redirect(addr)) => {
                tracing::info!(from = %target, to = %addr, "join redirected to the leader");
                target = addr;
                continue;
            }
            Ok(JoinReply::Error(e)) => {
                tracing::warn!(via = %target, error = %e, "join attempt refused")
            }
            Err(e) => tracing::warn!(via = %target, error = %e, "join attempt failed"),
        }
        if tokio::time::Instant::now() > deadline {
            return Err(StartError::Join(format!("could not join through {seed}")));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        target = seed.to_string();
    }
}

enum JoinReply {
    Done,
    Redirect(String),
    Error(String),
}

async fn join_once(target: &str, id: u64, me: &NodeInfo) -> std::io::Result<JoinReply> {
    let id = id.to_string();
    // Adding a learner waits for it to catch up: allow time.
    let line = resp_call(
        target,
        &["RAFTCACHE", "JOIN", &id, &me.addr, &me.bus_addr, &me.name],
        Duration::from_secs(60),
    )
    .await?;
    if line.starts_with('+') {
        return Ok(JoinReply::Done);
    }
    if let Some(rest) = line.strip_prefix("-MOVED ") {
        if let Some((_, addr)) = rest.split_once(' ') {
            return Ok(JoinReply::Redirect(addr.to_string()));
        }
    }
    Ok(JoinReply::Error(line))
}

/// Send one command to a node's client port and return the first line of
/// its reply (`+OK`, `-ERR ...`). Used between nodes for membership chores
/// that Redis clients would do by hand (join, meet, transfer).
pub async fn resp_call(addr: &str, args: &[&str], timeout: Duration) -> std::io::Result<String> {
    let call = async {
        let stream = TcpStream::connect(addr).await?;
        let mut stream = BufReader::new(stream);
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
        }
        stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        if line.starts_with('$') {
            // A bulk reply: the payload is on the next line.
            line.clear();
            stream.read_line(&mut line).await?;
        }
        Ok::<_, std::io::Error>(line.trim_end().to_string())
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| std::io::Error::other(format!("{addr} did not answer in time")))?
}

/// Ask a node who it is (`RAFTCACHE WHOAMI`): raft id and advertised info.
pub async fn whoami(client_addr: &str) -> std::io::Result<(u64, NodeInfo)> {
    let line = resp_call(
        client_addr,
        &["RAFTCACHE", "WHOAMI"],
        Duration::from_secs(5),
    )
    .await?;
    let parts: Vec<&str> = line.split(' ').collect();
    match parts[..] {
        [id, addr, bus_addr, name] => Ok((
            id.parse()
                .map_err(|_| std::io::Error::other(format!("bad WHOAMI reply: {line}")))?,
            NodeInfo {
                addr: addr.to_string(),
                bus_addr: bus_addr.to_string(),
                name: name.to_string(),
            },
        )),
        _ => Err(std::io::Error::other(format!("bad WHOAMI reply: {line}"))),
    }
}

/// The one-line WHOAMI answer for this node.
pub fn whoami_line(id: u64, me: &NodeInfo) -> String {
    format!("{id} {} {} {}", me.addr, me.bus_addr, me.name)
}

/// Ask the current leader to hand leadership to `to` (CLUSTER FAILOVER on a
/// follower).
pub async fn ask_leader_to_transfer(node: &Arc<RaftNode>, to: u64) -> Result<(), String> {
    let (_, leader) = node.view().leader_info().ok_or("no leader known")?;
    let to = to.to_string();
    let line = resp_call(
        &leader.addr,
        &["RAFTCACHE", "TRANSFER", &to],
        Duration::from_secs(5),
    )
    .await
    .map_err(|e| e.to_string())?;
    if line.starts_with('+') {
        Ok(())
    } else {
        Err(line.trim_start_matches('-').to_string())
    }
}

/// Remove a voter or learner. Run on the leader; removing the leader itself
/// commits the change and the old leader then steps down.
pub async fn remove_member(node: &Arc<RaftNode>, id: u64) -> Result<(), String> {
    let view = node.view();
    let ids: std::collections::BTreeSet<u64> = std::iter::once(id).collect();
    let change = if view.learners.contains(&id) {
        openraft::ChangeMembers::RemoveNodes(ids)
    } else {
        openraft::ChangeMembers::RemoveVoters(ids)
    };
    change_membership(node, change).await
}

/// `change_membership`, retried while a previous change (or a fresh
/// leader's first commit) is still in flight: those are transient.
async fn change_membership(
    node: &Arc<RaftNode>,
    change: openraft::ChangeMembers<u64, NodeInfo>,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match node.raft.change_membership(change.clone(), false).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let text = e.to_string();
                let transient = text.contains("undergoing a configuration change")
                    || text.contains("is not committed");
                if !transient || tokio::time::Instant::now() > deadline {
                    return Err(text);
                }
                tracing::debug!(error = %text, "membership change busy; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Add node `id` as a learner (waiting until it has caught up) and, with
/// `promote`, then as a voter. Shared by CLUSTER MEET, RAFTCACHE JOIN and
/// ADD-LEARNER, so every way in checks the same things: the node has a
/// client address, a bus address and a name, and it is not a different
/// data dir claiming a member's id (see `identity_conflict`).
pub async fn add_member(
    node: &Arc<RaftNode>,
    id: u64,
    info: NodeInfo,
    promote: bool,
) -> Result<(), String> {
    info.check()
        .map_err(|e| format!("cannot add node {id}: {e}"))?;
    if let Some(conflict) = identity_conflict(&node.view(), id, &info) {
        return Err(conflict);
    }
    node.raft
        .add_learner(id, info, promote)
        .await
        .map_err(|e| e.to_string())?;
    if !promote {
        return Ok(());
    }
    let voters: std::collections::BTreeSet<u64> = std::iter::once(id).collect();
    change_membership(node, openraft::ChangeMembers::AddVoterIds(voters)).await
}

/// Why node `id` with `info` cannot be added while the membership is
/// `view`: its id belongs to a member with another name (a wiped data dir
/// must not take the place, and the vote, of the member it was), or its
/// name belongs to a member with another id.
pub fn identity_conflict(view: &ClusterView, id: u64, info: &NodeInfo) -> Option<String> {
    if let Some(member) = view.nodes.get(&id) {
        if member.name != info.name {
            return Some(format!(
                "node {id} is a member as {} ({}), but the joining node is {}: a different data dir \
                 (wiped?) cannot take a member's place; remove the old member first with CLUSTER FORGET {}",
                member.name, member.addr, info.name, member.name
            ));
        }
    }
    let other = view
        .nodes
        .iter()
        .find(|(i, n)| **i != id && n.name == info.name);
    other.map(|(other, _)| {
        format!(
            "node name {} already belongs to member {other}; a data dir keeps its raft id",
            info.name
        )
    })
}

/// Learn a node's identity from its client port (`RAFTCACHE WHOAMI`); with
/// `expect`, check that it is that raft id.
pub async fn learn_identity(
    client_addr: &str,
    expect: Option<u64>,
) -> Result<(u64, NodeInfo), String> {
    let (id, info) = whoami(client_addr)
        .await
        .map_err(|e| format!("cannot reach {client_addr}: {e}"))?;
    match expect {
        Some(want) if want != id => Err(format!(
            "the node at {client_addr} is node {id}, not node {want}"
        )),
        _ => Ok((id, info)),
    }
}
