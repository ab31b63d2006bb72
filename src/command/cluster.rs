//! Cluster commands: READONLY READWRITE ASKING, the CLUSTER subcommands
//! and our own RAFTCACHE container (membership and maintenance of the raft
//! group). Topology answers need node state, so they are `ServerCmd`s;
//! KEYSLOT is pure and slot counts are keyspace reads.

use super::args::{no_args, not_integer, printable, syntax_error, Args};
use super::{FailoverMode, Plan, ServerCmd};
use crate::keyspace::ReadOp;
use crate::num::{parse_i64, parse_u64};
use crate::protocol::Reply;
use crate::raft::MemberAddr;
use crate::slot::{key_slot, SLOTS};

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
    Ok(Plan::Reply(Reply::Int(i64::from(key_slot(&key)))))
}

fn slot_arg(raw: &[u8]) -> Result<Option<u16>, Reply> {
    let slot = parse_i64(raw).ok_or_else(not_integer)?;
    Ok(u16::try_from(slot).ok().filter(|&s| s < SLOTS))
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

/// RAFTCACHE ADD-LEARNER node-id host:port[@busport] (host may be a name;
/// the port is the node's client port, the bus port defaults to port +
/// 10000, as in Redis's `ip:port@cport`; the leader asks the node's bus who
/// it is)
pub(super) fn raft_add_learner(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let id = node_id(&a.next_bytes()?)?;
    let raw = a.next_bytes()?;
    a.finish()?;
    let bad = || {
        Reply::Error(format!(
            "ERR Invalid address '{}': expected host:port[@busport]",
            printable(&raw, 128)
        ))
    };
    let text = std::str::from_utf8(&raw).map_err(|_| bad())?;
    let addr = MemberAddr::parse(text).map_err(|_| bad())?;
    Ok(Plan::Server(ServerCmd::RaftAddLearner {
        node_id: id,
        addr,
    }))
}

/// RAFTCACHE PROMOTE node-id
pub(super) fn raft_promote(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let id = node_id(&a.next_bytes()?)?;
    a.finish()?;
    Ok(Plan::Server(ServerCmd::RaftPromote { node_id: id }))
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

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn session_flags() {
        assert_eq!(server(&["readonly"]), ServerCmd::ReadOnly);
        assert_eq!(server(&["READWRITE"]), ServerCmd::ReadWrite);
        assert_eq!(server(&["asking"]), ServerCmd::Asking);
        assert_eq!(
            err(&["readonly", "x"]),
            "ERR wrong number of arguments for 'readonly' command"
        );
    }

    #[test]
    fn topology() {
        assert_eq!(server(&["cluster", "slots"]), ServerCmd::ClusterSlots);
        assert_eq!(server(&["cluster", "SHARDS"]), ServerCmd::ClusterShards);
        assert_eq!(server(&["cluster", "nodes"]), ServerCmd::ClusterNodes);
        assert_eq!(server(&["cluster", "info"]), ServerCmd::ClusterInfo);
        assert_eq!(server(&["cluster", "myid"]), ServerCmd::ClusterMyId);
        assert_eq!(
            server(&["cluster", "myshardid"]),
            ServerCmd::ClusterMyShardId
        );
        assert_eq!(
            err(&["cluster", "slots", "x"]),
            "ERR wrong number of arguments for 'cluster|slots' command"
        );
        assert_eq!(
            err(&["cluster", "bogus"]),
            "ERR unknown subcommand 'bogus'. Try CLUSTER HELP."
        );
        assert_eq!(
            err(&["cluster"]),
            "ERR wrong number of arguments for 'cluster' command"
        );
    }

    #[test]
    fn keyslot_is_pure() {
        assert_eq!(
            plan(&["cluster", "keyslot", "somekey"]),
            Plan::Reply(Reply::Int(11058))
        );
        assert_eq!(
            plan(&["cluster", "keyslot", "foo{hash_tag}"]),
            Plan::Reply(Reply::Int(2515))
        );
    }

    #[test]
    fn slot_reads() {
        assert_eq!(
            plan(&["cluster", "countkeysinslot", "16383"]),
            Plan::Read(ReadOp::CountKeysInSlot { slot: 16383 })
        );
        assert_eq!(
            err(&["cluster", "countkeysinslot", "16384"]),
            "ERR Invalid slot"
        );
        assert_eq!(
            err(&["cluster", "countkeysinslot", "-1"]),
            "ERR Invalid slot"
        );
        assert_eq!(
            err(&["cluster", "countkeysinslot", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            plan(&["cluster", "getkeysinslot", "7", "10"]),
            Plan::Read(ReadOp::GetKeysInSlot { slot: 7, count: 10 })
        );
        for bad in [["16384", "1"], ["-1", "1"], ["0", "-1"]] {
            assert_eq!(
                err(&["cluster", "getkeysinslot", bad[0], bad[1]]),
                "ERR Invalid slot or number of keys"
            );
        }
        assert_eq!(
            err(&["cluster", "getkeysinslot", "0", "x"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn meet_forget_failover() {
        assert_eq!(
            server(&["cluster", "meet", "127.0.0.1", "7001"]),
            ServerCmd::ClusterMeet {
                ip: "127.0.0.1".parse().unwrap(),
                port: 7001,
                bus_port: None
            }
        );
        assert_eq!(
            server(&["cluster", "meet", "::1", "7001", "17001"]),
            ServerCmd::ClusterMeet {
                ip: "::1".parse().unwrap(),
                port: 7001,
                bus_port: Some(17001)
            }
        );
        assert_eq!(
            err(&["cluster", "meet", "127.0.0.1", "x"]),
            "ERR Invalid base port specified: x"
        );
        assert_eq!(
            err(&["cluster", "meet", "127.0.0.1", "1", "y"]),
            "ERR Invalid bus port specified: y"
        );
        assert_eq!(
            err(&["cluster", "meet", "localhost", "7001"]),
            "ERR Invalid node address specified: localhost:7001"
        );
        assert_eq!(
            err(&["cluster", "meet", "127.0.0.1", "70000"]),
            "ERR Invalid node address specified: 127.0.0.1:70000"
        );
        assert_eq!(
            server(&["cluster", "forget", "abc"]),
            ServerCmd::ClusterForget { node_id: b("abc") }
        );
        assert_eq!(
            server(&["cluster", "failover"]),
            ServerCmd::ClusterFailover(FailoverMode::Default)
        );
        assert_eq!(
            server(&["cluster", "failover", "FORCE"]),
            ServerCmd::ClusterFailover(FailoverMode::Force)
        );
        assert_eq!(
            server(&["cluster", "failover", "takeover"]),
            ServerCmd::ClusterFailover(FailoverMode::Takeover)
        );
        assert_eq!(err(&["cluster", "failover", "now"]), "ERR syntax error");
        assert_eq!(
            err(&["cluster", "failover", "force", "x"]),
            "ERR syntax error"
        );
    }

    #[test]
    fn raftcache() {
        assert_eq!(server(&["raftcache", "status"]), ServerCmd::RaftStatus);
        assert_eq!(server(&["raftcache", "snapshot"]), ServerCmd::RaftSnapshot);
        assert_eq!(server(&["raftcache", "digest"]), ServerCmd::RaftDigest);
        assert_eq!(
            server(&["RAFTCACHE", "ADD-LEARNER", "4", "node4.local:17004"]),
            ServerCmd::RaftAddLearner {
                node_id: 4,
                addr: MemberAddr::new("node4.local", 17004, None).unwrap()
            }
        );
        assert_eq!(
            server(&["RAFTCACHE", "ADD-LEARNER", "4", "10.0.0.4:7004@9004"]),
            ServerCmd::RaftAddLearner {
                node_id: 4,
                addr: MemberAddr::new("10.0.0.4", 7004, Some(9004)).unwrap()
            }
        );
        assert_eq!(
            server(&["raftcache", "add-learner", "4", "[::1]:17004"]),
            ServerCmd::RaftAddLearner {
                node_id: 4,
                addr: MemberAddr::new("::1", 17004, None).unwrap()
            }
        );
        for bad in [
            "nohost", ":1", "h:0", "h:70000", "h:x", "a b:1", "h:1@", "h:1@0", "h:1@x", "h@1",
        ] {
            assert!(
                err(&["raftcache", "add-learner", "4", bad]).starts_with("ERR Invalid address"),
                "{bad}"
            );
        }
        assert!(err(&["raftcache", "add-learner", "x", "h:1"]).starts_with("ERR Invalid node id"));
        assert_eq!(
            server(&["raftcache", "promote", "4"]),
            ServerCmd::RaftPromote { node_id: 4 }
        );
        assert_eq!(
            server(&["raftcache", "transfer", "2"]),
            ServerCmd::RaftTransfer { node_id: 2 }
        );
        assert!(err(&["raftcache", "transfer", "-2"]).starts_with("ERR Invalid node id"));
        // Node-to-node requests travel over the bus now.
        for gone in ["join", "whoami"] {
            assert_eq!(
                err(&["raftcache", gone]),
                format!("ERR unknown subcommand '{gone}'. Try RAFTCACHE HELP.")
            );
        }
        assert_eq!(
            err(&["raftcache", "bogus"]),
            "ERR unknown subcommand 'bogus'. Try RAFTCACHE HELP."
        );
    }
}
