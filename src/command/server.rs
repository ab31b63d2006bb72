//! Server commands: INFO, CONFIG GET/SET/RESETSTAT, DBSIZE, FLUSHDB,
//! FLUSHALL, TIME.

use bytes::Bytes;

use super::args::{arity_error, no_args, syntax_error, Args};
use super::{Plan, ServerCmd};
use crate::keyspace::{ReadOp, WriteOp};
use crate::protocol::Reply;

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

/// INFO [section [section ...]] (sections lowercased; none = "default")
pub(super) fn info(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let sections = a.rest().iter().map(|s| lower(s)).collect();
    Ok(Plan::Server(ServerCmd::Info { sections }))
}

/// CONFIG GET parameter [parameter ...] (glob patterns, lowercased since
/// Redis matches parameter names case-insensitively)
pub(super) fn config_get(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let patterns = a.rest().iter().map(|s| lower(s)).collect();
    Ok(Plan::Server(ServerCmd::ConfigGet { patterns }))
}

/// CONFIG SET parameter value [parameter value ...]
pub(super) fn config_set(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    if a.remaining() % 2 != 0 {
        return Err(arity_error(a.spec().name));
    }
    let mut pairs: Vec<(String, Bytes)> = Vec::with_capacity(a.remaining() / 2);
    while let Some(name) = a.next_opt() {
        pairs.push((lower(&name), a.next_bytes()?));
    }
    Ok(Plan::Server(ServerCmd::ConfigSet { pairs }))
}

/// CONFIG RESETSTAT
pub(super) fn config_resetstat(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::ConfigResetStat)
}

/// SLOWLOG GET [count] (default 10; -1 = all)
pub(super) fn slowlog_get(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let count = match a.next_opt() {
        None => Some(10),
        Some(c) => {
            let bad = || Reply::error("ERR count should be greater than or equal to -1");
            let n: i64 = std::str::from_utf8(&c)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Reply::error("ERR value is not an integer or out of range"))?;
            match n {
                -1 => None,
                n if n < -1 => return Err(bad()),
                n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            }
        }
    };
    a.finish()?;
    Ok(Plan::Server(ServerCmd::SlowlogGet { count }))
}

/// SLOWLOG LEN
pub(super) fn slowlog_len(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::SlowlogLen)
}

/// SLOWLOG RESET
pub(super) fn slowlog_reset(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::SlowlogReset)
}

/// LATENCY LATEST
pub(super) fn latency_latest(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    no_args(a, ServerCmd::LatencyLatest)
}

/// LATENCY HISTORY event
pub(super) fn latency_history(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let event = lower(&a.next_bytes()?);
    no_args(a, ServerCmd::LatencyHistory { event })
}

/// LATENCY RESET [event ...]
pub(super) fn latency_reset(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let events = a.rest().iter().map(|s| lower(s)).collect();
    Ok(Plan::Server(ServerCmd::LatencyReset { events }))
}

/// DBSIZE
pub(super) fn dbsize(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Read(ReadOp::DbSize))
}

/// FLUSHDB [ASYNC | SYNC] / FLUSHALL [ASYNC | SYNC]: one replicated op
/// either way (there is a single database).
pub(super) fn flush(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    if a.remaining() > 1 {
        return Err(syntax_error());
    }
    if !a.is_empty() && a.one_of(&["async", "sync"]).is_none() {
        return Err(syntax_error());
    }
    Ok(Plan::Write(WriteOp::FlushAll))
}

/// TIME: answered from the clock the caller passed (millisecond precision,
/// so the microseconds are a multiple of 1000).
/// TIME: this node's wall clock, as in Redis (not the replicated clock
/// `now` that TTLs use; see docs/time.md).
pub(super) fn time(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    let now = crate::raft::clock::unix_ms();
    let secs = now / 1000;
    let micros = (now % 1000) * 1000;
    Ok(Plan::Reply(Reply::Array(vec![
        Reply::Bulk(Bytes::from(secs.to_string())),
        Reply::Bulk(Bytes::from(micros.to_string())),
    ])))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn info_config() {
        assert_eq!(
            plan(&["info"]),
            Plan::Server(ServerCmd::Info { sections: vec![] })
        );
        assert_eq!(
            plan(&["INFO", "Cluster", "replication"]),
            Plan::Server(ServerCmd::Info {
                sections: vec!["cluster".into(), "replication".into()]
            })
        );
        assert_eq!(
            plan(&["config", "get", "save", "AppendOnly"]),
            Plan::Server(ServerCmd::ConfigGet {
                patterns: vec!["save".into(), "appendonly".into()]
            })
        );
        assert_eq!(
            err(&["config", "get"]),
            "ERR wrong number of arguments for 'config|get' command"
        );
        assert_eq!(
            plan(&["config", "set", "maxmemory", "10mb"]),
            Plan::Server(ServerCmd::ConfigSet {
                pairs: vec![("maxmemory".into(), b("10mb"))]
            })
        );
        assert_eq!(
            err(&["config", "set", "a", "1", "b"]),
            "ERR wrong number of arguments for 'config|set' command"
        );
        assert_eq!(
            plan(&["config", "resetstat"]),
            Plan::Server(ServerCmd::ConfigResetStat)
        );
        assert_eq!(
            err(&["config", "rewrite"]),
            "ERR unknown subcommand 'rewrite'. Try CONFIG HELP."
        );
    }

    #[test]
    fn dbsize_flush_time() {
        assert_eq!(plan(&["dbsize"]), Plan::Read(ReadOp::DbSize));
        for form in [
            &["flushall"][..],
            &["flushall", "ASYNC"],
            &["flushdb", "sync"],
        ] {
            assert_eq!(plan(form), Plan::Write(WriteOp::FlushAll), "{form:?}");
        }
        assert_eq!(err(&["flushall", "later"]), "ERR syntax error");
        assert_eq!(err(&["flushdb", "sync", "async"]), "ERR syntax error");
        // TIME is the wall clock, not the `now` commands are parsed with.
        let Plan::Reply(Reply::Array(parts)) = plan(&["time"]) else {
            panic!("TIME must answer an array");
        };
        let Reply::Bulk(secs) = &parts[0] else {
            panic!("{parts:?}")
        };
        let secs: u64 = std::str::from_utf8(secs).unwrap().parse().unwrap();
        assert!(secs.abs_diff(crate::raft::clock::unix_ms() / 1000) < 60);
    }
}
