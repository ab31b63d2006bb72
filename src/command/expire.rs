//! Expiry commands: EXPIRE PEXPIRE EXPIREAT PEXPIREAT (with Redis 7's
//! NX XX GT LT), TTL PTTL EXPIRETIME PEXPIRETIME, PERSIST.
//!
//! Unlike SET's EX, these accept zero and negative times: a deadline in
//! the past is a valid op that deletes the key. Only arithmetic overflow
//! (unit conversion or adding now) is `invalid expire time`. A negative
//! absolute deadline is clamped to 0 (still in the past). EXPIRE/PEXPIRE
//! stay relative in the log (`WriteOp::ExpireIn`, resolved at apply from
//! the entry's replicated clock); EXPIREAT/PEXPIREAT are absolute.

use super::args::{not_integer, printable, Args};
use super::Plan;
use crate::keyspace::{ExpireCond, ReadOp, TtlQuery, WriteOp};
use crate::num::parse_i64;
use crate::protocol::Reply;

/// `base_ms`: `Some(now)` for a time relative to now, `None` for a unix time.
fn expire_generic(a: &mut Args<'_>, base_ms: Option<u64>, seconds: bool) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let raw = a.next_bytes()?;
    // Options are checked before the time, as in Redis.
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    while let Some(opt) = a.next_opt() {
        match expire_option(&opt) {
            Some("nx") => nx = true,
            Some("xx") => xx = true,
            Some("gt") => gt = true,
            Some("lt") => lt = true,
            _ => {
                return Err(Reply::Error(format!(
                    "ERR Unsupported option {}",
                    printable(&opt, 128)
                )))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    // Redis checks each flag in turn. GT already fails on keys without a
    // deadline ("no deadline" is infinite), so XX+GT is GT. XX+LT ("has a
    // deadline and the new one is smaller") has no `ExpireCond` of its own;
    // it is sent as LT, which also applies to keys without a deadline.
    // Exactness needs an `ExpireCond::XxLt` in keyspace::ops.
    let cond = if nx {
        ExpireCond::Nx
    } else if gt {
        ExpireCond::Gt
    } else if lt {
        ExpireCond::Lt
    } else if xx {
        ExpireCond::Xx
    } else {
        ExpireCond::Always
    };
    let when = parse_i64(&raw).ok_or_else(not_integer)?;
    let invalid = || {
        Reply::Error(format!(
            "ERR invalid expire time in '{}' command",
            a.spec().name
        ))
    };
    let ms = if seconds {
        when.checked_mul(1000).ok_or_else(invalid)?
    } else {
        when
    };
    let base = i64::try_from(base_ms.unwrap_or(0)).map_err(|_| invalid())?;
    let at = ms.checked_add(base).ok_or_else(invalid)?;
    Ok(Plan::Write(match base_ms {
        Some(_) => WriteOp::ExpireIn { key, ms, cond },
        None => WriteOp::Expire {
            key,
            at_ms: u64::try_from(at).unwrap_or(0),
            cond,
        },
    }))
}

fn expire_option(opt: &[u8]) -> Option<&'static str> {
    ["nx", "xx", "gt", "lt"]
        .into_iter()
        .find(|k| opt.eq_ignore_ascii_case(k.as_bytes()))
}

/// EXPIRE key seconds [NX | XX | GT | LT]
pub(super) fn expire(a: &mut Args<'_>, now: u64) -> Result<Plan, Reply> {
    expire_generic(a, Some(now), true)
}

/// PEXPIRE key milliseconds [NX | XX | GT | LT]
pub(super) fn pexpire(a: &mut Args<'_>, now: u64) -> Result<Plan, Reply> {
    expire_generic(a, Some(now), false)
}

/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
pub(super) fn expireat(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    expire_generic(a, None, true)
}

/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
pub(super) fn pexpireat(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    expire_generic(a, None, false)
}

fn ttl_query(a: &mut Args<'_>, query: TtlQuery) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Read(ReadOp::Ttl { key, query }))
}

/// TTL key
pub(super) fn ttl(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    ttl_query(a, TtlQuery::Seconds)
}

/// PTTL key
pub(super) fn pttl(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    ttl_query(a, TtlQuery::Millis)
}

/// EXPIRETIME key
pub(super) fn expiretime(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    ttl_query(a, TtlQuery::AbsSeconds)
}

/// PEXPIRETIME key
pub(super) fn pexpiretime(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    ttl_query(a, TtlQuery::AbsMillis)
}

/// PERSIST key
pub(super) fn persist(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Write(WriteOp::Persist { key }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    fn exp(parts: &[&str]) -> (u64, ExpireCond) {
        match plan(parts) {
            Plan::Write(WriteOp::Expire { at_ms, cond, .. }) => (at_ms, cond),
            // Relative: the deadline it resolves to in an entry applied at NOW.
            Plan::Write(WriteOp::ExpireIn { ms, cond, .. }) => ((NOW as i64 + ms) as u64, cond),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn relative_and_absolute() {
        assert_eq!(
            exp(&["expire", "k", "10"]),
            (NOW + 10_000, ExpireCond::Always)
        );
        assert_eq!(exp(&["pexpire", "k", "10"]), (NOW + 10, ExpireCond::Always));
        assert_eq!(exp(&["expireat", "k", "10"]), (10_000, ExpireCond::Always));
        assert_eq!(exp(&["pexpireat", "k", "10"]), (10, ExpireCond::Always));
        // Relative times stay relative in the log.
        assert!(matches!(
            plan(&["expire", "k", "10"]),
            Plan::Write(WriteOp::ExpireIn { ms: 10_000, .. })
        ));
        // Zero and negative are valid: the deadline is past, the key goes.
        assert_eq!(exp(&["expire", "k", "0"]).0, NOW);
        assert_eq!(exp(&["expire", "k", "-5"]).0, NOW - 5000);
        assert_eq!(exp(&["pexpireat", "k", "-5"]).0, 0);
        assert_eq!(exp(&["expireat", "k", "-9223372036854775"]).0, 0);
    }

    #[test]
    fn conditions() {
        assert_eq!(exp(&["expire", "k", "1", "nx"]).1, ExpireCond::Nx);
        assert_eq!(exp(&["expire", "k", "1", "XX"]).1, ExpireCond::Xx);
        assert_eq!(exp(&["expire", "k", "1", "gt"]).1, ExpireCond::Gt);
        assert_eq!(exp(&["expire", "k", "1", "lt"]).1, ExpireCond::Lt);
        assert_eq!(exp(&["expire", "k", "1", "xx", "gt"]).1, ExpireCond::Gt);
        assert_eq!(exp(&["expire", "k", "1", "nx", "nx"]).1, ExpireCond::Nx);
        let nx_err = "ERR NX and XX, GT or LT options at the same time are not compatible";
        assert_eq!(err(&["expire", "k", "1", "nx", "xx"]), nx_err);
        assert_eq!(err(&["expire", "k", "1", "gt", "nx"]), nx_err);
        assert_eq!(err(&["pexpire", "k", "1", "nx", "lt"]), nx_err);
        assert_eq!(
            err(&["expire", "k", "1", "gt", "lt"]),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            err(&["expire", "k", "1", "foo"]),
            "ERR Unsupported option foo"
        );
        // Options are checked before the number.
        assert_eq!(
            err(&["expire", "k", "x", "foo"]),
            "ERR Unsupported option foo"
        );
    }

    #[test]
    fn overflow() {
        assert_eq!(
            err(&["expire", "k", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err(&["expire", "k", "9223372036854776"]),
            "ERR invalid expire time in 'expire' command"
        );
        assert_eq!(
            err(&["pexpire", "k", "9223372036854775807"]),
            "ERR invalid expire time in 'pexpire' command"
        );
        assert_eq!(
            err(&["expireat", "k", "-9223372036854776"]),
            "ERR invalid expire time in 'expireat' command"
        );
        assert_eq!(
            exp(&["pexpireat", "k", "9223372036854775807"]).0,
            i64::MAX as u64
        );
    }

    #[test]
    fn queries_and_persist() {
        let q = |p: &[&str]| match plan(p) {
            Plan::Read(ReadOp::Ttl { query, .. }) => query,
            other => panic!("{other:?}"),
        };
        assert_eq!(q(&["ttl", "k"]), TtlQuery::Seconds);
        assert_eq!(q(&["pttl", "k"]), TtlQuery::Millis);
        assert_eq!(q(&["expiretime", "k"]), TtlQuery::AbsSeconds);
        assert_eq!(q(&["pexpiretime", "k"]), TtlQuery::AbsMillis);
        assert_eq!(
            plan(&["persist", "k"]),
            Plan::Write(WriteOp::Persist { key: b("k") })
        );
        assert_eq!(
            err(&["ttl"]),
            "ERR wrong number of arguments for 'ttl' command"
        );
    }
}
