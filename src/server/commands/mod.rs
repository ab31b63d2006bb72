//! The server side of the commands that need node or session state
//! (`Plan::Server`). One file per command family, mirroring
//! `command/{connection,server,cluster}.rs`, which parse them:
//!
//! * `connection` — HELLO, AUTH, QUIT, RESET, CLIENT, READONLY/READWRITE/ASKING;
//! * `info` — INFO and CONFIG;
//! * `cluster` — CLUSTER topology and membership, RAFTCACHE;
//! * `acl` — users, the permission check, ACL LOG and the ACL commands.
//!
//! `execute` is the dispatch table: one line per `ServerCmd` variant.

pub mod acl;
mod cluster;
mod connection;
mod info;

use std::sync::Arc;

use bytes::Bytes;

use crate::command::ServerCmd;
use crate::protocol::Reply;
use crate::server::connection::Session;
use crate::server::Server;

pub use info::REDIS_VERSION;

/// Execute a server-layer command for `session`.
pub async fn execute(server: &Arc<Server>, session: &Session, cmd: ServerCmd) -> Reply {
    match cmd {
        ServerCmd::Hello {
            protover,
            auth,
            setname,
        } => connection::hello(server, session, protover, auth, setname),
        ServerCmd::Auth { username, password } => {
            connection::auth(server, session, username.as_deref(), &password)
        }
        ServerCmd::Quit => connection::quit(session),
        ServerCmd::Reset => connection::reset(server, session),
        ServerCmd::ClientId => connection::client_id(session),
        ServerCmd::ClientSetName(name) => connection::client_setname(session, &name),
        ServerCmd::ClientGetName => connection::client_getname(session),
        ServerCmd::ClientSetInfo { attr, value } => {
            connection::client_setinfo(session, attr, &value)
        }
        ServerCmd::ClientList(filter) => connection::client_list(server, &filter),
        ServerCmd::ClientInfo => connection::client_info(session),
        ServerCmd::ReadOnly => connection::readonly(session, true),
        ServerCmd::ReadWrite => connection::readonly(session, false),
        ServerCmd::Asking => Reply::ok(),
        ServerCmd::Info { sections } => text(info::info(server, &sections)),
        ServerCmd::ConfigGet { patterns } => info::config_get(server, &patterns),
        ServerCmd::ConfigSet { pairs } => info::config_set(&pairs),
        ServerCmd::ConfigResetStat => info::config_resetstat(server),
        ServerCmd::SlowlogGet { count } => server.slowlog.get(count),
        ServerCmd::SlowlogLen => Reply::Int(server.slowlog.len() as i64),
        ServerCmd::LatencyLatest => latency_latest(),
        ServerCmd::LatencyHistory { event } => latency_history(&event),
        ServerCmd::LatencyReset { events } => Reply::Int(crate::latency::reset(&events) as i64),
        ServerCmd::SlowlogReset => {
            server.slowlog.reset();
            Reply::ok()
        }
        ServerCmd::ClusterSlots => cluster::slots(server, session.resp3()),
        ServerCmd::ClusterShards => cluster::shards(server),
        ServerCmd::ClusterNodes => text(cluster::nodes(server)),
        ServerCmd::ClusterInfo => text(cluster::info(server)),
        ServerCmd::ClusterMyId | ServerCmd::ClusterMyShardId => cluster::myid(server),
        ServerCmd::ClusterMeet { ip, port, bus_port } => {
            cluster::meet(server, ip, port, bus_port).await
        }
        ServerCmd::ClusterForget { node_id } => cluster::forget(server, &node_id).await,
        ServerCmd::ClusterFailover(mode) => cluster::failover(server, mode).await,
        ServerCmd::RaftStatus => cluster::raft_status(server),
        ServerCmd::RaftAddLearner { node_id, addr } => {
            cluster::add_learner(server, node_id, &addr).await
        }
        ServerCmd::RaftPromote { node_id } => cluster::promote(server, node_id).await,
        ServerCmd::RaftSnapshot => cluster::snapshot(server).await,
        ServerCmd::RaftTransfer { node_id } => cluster::transfer(server, node_id).await,
        ServerCmd::RaftDigest => cluster::digest(server),
        ServerCmd::Acl(cmd) => acl::execute(server, session, cmd).await,
    }
}

/// `Ok` as `+OK`, an error text as `-ERR <text>`.
fn ok_or_err<E: std::fmt::Display>(r: Result<(), E>) -> Reply {
    match r {
        Ok(()) => Reply::ok(),
        Err(e) => Reply::Error(format!("ERR {e}")),
    }
}

pub(crate) fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

/// A text reply: verbatim `txt` in RESP3, bulk in RESP2 (the encoder
/// downgrades).
pub(crate) fn text(s: String) -> Reply {
    Reply::Verbatim("txt", Bytes::from(s))
}

/// Split `host:port` (host may be empty).
fn host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// LATENCY LATEST: `[event, unix-time, latest-ms, max-ms]` per event.
fn latency_latest() -> Reply {
    let int = |v: u64| Reply::Int(i64::try_from(v).unwrap_or(i64::MAX));
    Reply::Array(
        crate::latency::events()
            .into_iter()
            .filter_map(|(name, s)| {
                let &(t, ms) = s.samples.back()?;
                Some(Reply::Array(vec![
                    Reply::Bulk(bytes::Bytes::from_static(name.as_bytes())),
                    int(t),
                    int(ms),
                    int(s.max),
                ]))
            })
            .collect(),
    )
}

/// LATENCY HISTORY event: `[unix-time, ms]` per sample, oldest first.
fn latency_history(event: &str) -> Reply {
    let int = |v: u64| Reply::Int(i64::try_from(v).unwrap_or(i64::MAX));
    let samples = crate::latency::history(event)
        .map(|s| {
            s.samples
                .iter()
                .map(|&(t, ms)| Reply::Array(vec![int(t), int(ms)]))
                .collect()
        })
        .unwrap_or_default();
    Reply::Array(samples)
}
