//! Cluster commands: READONLY READWRITE ASKING, the CLUSTER subcommands
//! and our own RAFTCACHE container (membership and maintenance of the raft
//! group). Topology answers need node state, so they are `ServerCmd`s;
//! KEYSLOT is pure and slot counts are keyspace reads.

use super::args::{parse_i64, parse_u64, printable, syntax_error, Args};
use super::{FailoverMode, Plan, ServerCmd};
use crate::keyspace::ReadOp;
use crate::protocol::Reply;

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: i64 = 16384;

fn no_args(a: &mut Args<'_>, cmd: ServerCmd) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Server(cmd))
}

/// READONLY
pub(super) fn readonly(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ReadOnly)
}

/// READWRITE
pub(super) fn readwrite(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ReadWrite)
}

/// ASKING
pub(super) fn asking(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::Asking)
}

/// CLUSTER SLOTS
pub(super) fn slots(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClusterSlots)
}

/// CLUSTER SHARDS
pub(super) fn shards(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClusterShards)
}

/// CLUSTER NODES
pub(super) fn nodes(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClusterNodes)
}

/// CLUSTER INFO
pub(super) fn info(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClusterInfo)
}

/// CLUSTER MYID
pub(super) fn myid(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClusterMyId)
}

/// CLUSTER MYSHARDID
pub(super) fn myshardid(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ClusterMyShardId)
}

/// CLUSTER KEYSLOT key (CRC16 with hash tags; the argument is not a
/// routing key, so any node answers)
pub(super) fn keyslot(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Reply(Reply::Int(i64::from(
        redis_protocol::redis_keyslot(&key),
    ))))
}

fn slot_arg(raw: &[u8]) -> Result<Option<u16>, Reply> {
    let slot = parse_i64(raw).ok_or_else(super::args::not_integer)?;
    Ok(u16::try_from(slot).ok().filter(|&s| i64::from(s) < SLOTS))
}

/// CLUSTER COUNTKEYSINSLOT slot
pub(super) fn countkeysinslot(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let raw = a.next_bytes()?;
    a.finish()?;
    let slot = slot_arg(&raw)?.ok_or_else(|| Reply::error("ERR Invalid slot"))?;
    Ok(Plan::Read(ReadOp::CountKeysInSlot { slot }))
}

/// CLUSTER GETKEYSINSLOT slot count. Both are parsed as integers first;
/// then a bad slot or a negative count is one error, with Redis's text.
pub(super) fn getkeysinslot(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let raw = a.next_bytes()?;
    let count = a.next_int()?;
    a.finish()?;
    let slot = slot_arg(&raw)?;
    match (slot, usize::try_from(count)) {
        (Some(slot), Ok(count)) => Ok(Plan::Read(ReadOp::GetKeysInSlot { slot, count })),
        _ => Err(Reply::error("ERR Invalid slot or number of keys")),
    }
}

fn port_arg(raw: &[u8]) -> Option<u16> {
    parse_i64(raw).and_then(|p| u16::try_from(p).ok())
}

/// CLUSTER MEET ip port [cluster-bus-port] (an IP address, as in Redis)
pub(super) fn meet(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let ip = a.next_bytes()?;
    let port = a.next_bytes()?;
    let bus = a.next_opt();
    a.finish()?;
    if parse_i64(&port).is_none() {
        return Err(Reply::Error(format!(
            "ERR Invalid base port specified: {}",
            printable(&port, 128)
        )));
    }
    let bus_port = match &bus {
        Some(raw) if parse_i64(raw).is_none() => {
            return Err(Reply::Error(format!(
                "ERR Invalid bus port specified: {}",
                printable(raw, 128)
            )))
        }
        Some(raw) => Some(port_arg(raw)),
        None => None,
    };
    let addr = std::str::from_utf8(&ip)
        .ok()
        .and_then(|s| s.parse::<std::net::IpAddr>().ok());
    match (addr, port_arg(&port), bus_port) {
        (Some(ip), Some(port), None) => Ok(Plan::Server(ServerCmd::ClusterMeet {
            ip,
            port,
            bus_port: None,
        })),
        (Some(ip), Some(port), Some(Some(bus))) => Ok(Plan::Server(ServerCmd::ClusterMeet {
            ip,
            port,
            bus_port: Some(bus),
        })),
        _ => Err(Reply::Error(format!(
            "ERR Invalid node address specified: {}:{}",
            printable(&ip, 128),
            printable(&port, 128)
        ))),
    }
}

/// CLUSTER FORGET node-id (the 40-char cluster id; resolved by the server)
pub(super) fn forget(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let node_id = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Server(ServerCmd::ClusterForget { node_id }))
}

/// CLUSTER FAILOVER [FORCE | TAKEOVER]
pub(super) fn failover(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let mode = match a.next_opt() {
        None => FailoverMode::Default,
        Some(m) if m.eq_ignore_ascii_case(b"force") => FailoverMode::Force,
        Some(m) if m.eq_ignore_ascii_case(b"takeover") => FailoverMode::Takeover,
        Some(_) => return Err(syntax_error()),
    };
    a.finish()?;
    Ok(Plan::Server(ServerCmd::ClusterFailover(mode)))
}

fn node_id(raw: &[u8]) -> Result<u64, Reply> {
    parse_u64(raw).ok_or_else(|| {
        Reply::Error(format!(
            "ERR Invalid node id '{}': expected a raft node id (unsigned integer)",
            printable(raw, 128)
        ))
    })
}

/// RAFTCACHE STATUS
pub(super) fn raft_status(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::RaftStatus)
}

/// RAFTCACHE ADD-LEARNER node-id host:port (host may be a name; the port
/// is the node's raft bus port)
pub(super) fn raft_add_learner(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let id = node_id(&a.next_bytes()?)?;
    let raw = a.next_bytes()?;
    a.finish()?;
    let bad = || {
        Reply::Error(format!(
            "ERR Invalid address '{}': expected host:port",
            printable(&raw, 128)
        ))
    };
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port_arg(port.as_bytes())
        .filter(|&p| p != 0)
        .ok_or_else(bad)?;
    if host.is_empty() || host.contains(|c: char| c.is_whitespace()) {
        return Err(bad());
    }
    Ok(Plan::Server(ServerCmd::RaftAddLearner {
        node_id: id,
        host: host.to_string(),
        port,
    }))
}

/// RAFTCACHE PROMOTE node-id
pub(super) fn raft_promote(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let id = node_id(&a.next_bytes()?)?;
    a.finish()?;
    Ok(Plan::Server(ServerCmd::RaftPromote { node_id: id }))
}

/// RAFTCACHE JOIN node-id client-addr bus-addr name
pub(super) fn raft_join(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let id = node_id(&a.next_bytes()?)?;
    let mut text = || -> Result<String, Reply> {
        let raw = a.next_bytes()?;
        String::from_utf8(raw.to_vec()).map_err(|_| Reply::error("ERR syntax error"))
    };
    let (addr, bus_addr, name) = (text()?, text()?, text()?);
    a.finish()?;
    if name.len() != 40 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Reply::error("ERR Invalid node name: expected 40 hex characters"));
    }
    Ok(Plan::Server(ServerCmd::RaftJoin {
        node_id: id,
        addr,
        bus_addr,
        name,
    }))
}

/// RAFTCACHE WHOAMI
pub(super) fn raft_whoami(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::RaftWhoami)
}

/// RAFTCACHE SNAPSHOT
pub(super) fn raft_snapshot(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::RaftSnapshot)
}

/// RAFTCACHE TRANSFER node-id
pub(super) fn raft_transfer(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let id = node_id(&a.next_bytes()?)?;
    a.finish()?;
    Ok(Plan::Server(ServerCmd::RaftTransfer { node_id: id }))
}

/// RAFTCACHE DIGEST
pub(super) fn raft_digest(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::RaftDigest)
}
