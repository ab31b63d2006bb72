//! String commands: GET SET SETNX SETEX PSETEX MGET MSET MSETNX GETSET
//! GETDEL GETEX APPEND STRLEN INCR DECR INCRBY DECRBY INCRBYFLOAT GETRANGE
//! SETRANGE.
//!
//! Expiry arguments are checked here with Redis's rules and overflow
//! checks (against the replicated clock's `now`): relative ones (EX/PX) go
//! into the log as `Ttl::In` and become deadlines at apply, from the
//! entry's replicated clock; absolute ones (EXAT/PXAT) as `Ttl::At`.

use bytes::Bytes;

use super::args::{arity_error, not_integer, syntax_error, Args};
use super::Plan;
use crate::keyspace::{ReadOp, SetCond, Ttl, WriteOp};
use crate::num::parse_i64;
use crate::protocol::Reply;

/// How an expiry argument is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryUnit {
    /// EX: seconds from now.
    RelSeconds,
    /// PX: milliseconds from now.
    RelMillis,
    /// EXAT: unix seconds.
    AbsSeconds,
    /// PXAT: unix milliseconds.
    AbsMillis,
}

fn invalid_expire(a: &Args<'_>) -> Reply {
    Reply::Error(format!(
        "ERR invalid expire time in '{}' command",
        a.spec().name
    ))
}

/// SET/SETEX/GETEX expiry: must be a positive integer, and the deadline
/// must fit (Redis rejects `<= 0` and any overflow with the same text).
pub(crate) fn deadline(
    a: &Args<'_>,
    raw: &[u8],
    unit: ExpiryUnit,
    now_ms: u64,
) -> Result<Ttl, Reply> {
    let v = parse_i64(raw).ok_or_else(not_integer)?;
    if v <= 0 {
        return Err(invalid_expire(a));
    }
    let ms = match unit {
        ExpiryUnit::RelSeconds | ExpiryUnit::AbsSeconds => v.checked_mul(1000),
        ExpiryUnit::RelMillis | ExpiryUnit::AbsMillis => Some(v),
    };
    let relative = matches!(unit, ExpiryUnit::RelSeconds | ExpiryUnit::RelMillis);
    let at = match relative {
        true => ms.and_then(|ms| ms.checked_add(i64::try_from(now_ms).ok()?)),
        false => ms,
    };
    // `at` only proves the deadline fits; a relative TTL stays relative.
    match (at.and_then(|at| u64::try_from(at).ok()), ms) {
        (Some(_), Some(ms)) if relative => Ok(Ttl::In(ms as u64)),
        (Some(at), _) => Ok(Ttl::At(at)),
        _ => Err(invalid_expire(a)),
    }
}

/// Which options a command accepts (SET and GETEX share the grammar).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grammar {
    Set,
    GetEx,
}

#[derive(Default)]
struct ExtOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpiryUnit, Bytes)>,
}

/// Redis's extended-string-argument rules: each option may repeat (the last
/// value wins) but never combine with a conflicting one; anything else,
/// or a TTL option without its value, is `-ERR syntax error`. Values are
/// validated only after all options are read, as Redis does.
fn ext_options(a: &mut Args<'_>, grammar: Grammar) -> Result<ExtOptions, Reply> {
    let mut o = ExtOptions::default();
    let set = grammar == Grammar::Set;
    while let Some(opt) = a.next_opt() {
        let is = |k: &str| opt.eq_ignore_ascii_case(k.as_bytes());
        let ttl_kind = o.expire.as_ref().map(|(u, _)| *u);
        let ttl_free = |u: ExpiryUnit| !o.keepttl && !o.persist && ttl_kind.is_none_or(|k| k == u);
        let unit = if is("ex") {
            Some(ExpiryUnit::RelSeconds)
        } else if is("px") {
            Some(ExpiryUnit::RelMillis)
        } else if is("exat") {
            Some(ExpiryUnit::AbsSeconds)
        } else if is("pxat") {
            Some(ExpiryUnit::AbsMillis)
        } else {
            None
        };
        if let Some(unit) = unit {
            if !ttl_free(unit) || a.is_empty() {
                return Err(syntax_error());
            }
            o.expire = Some((unit, a.next_bytes()?));
        } else if set && is("nx") && !o.xx {
            o.nx = true;
        } else if set && is("xx") && !o.nx {
            o.xx = true;
        } else if set && is("get") {
            o.get = true;
        } else if set && is("keepttl") && !o.persist && ttl_kind.is_none() {
            o.keepttl = true;
        } else if !set && is("persist") && !o.keepttl && ttl_kind.is_none() {
            o.persist = true;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(o)
}

fn key_only(a: &mut Args<'_>) -> Result<Bytes, Reply> {
    let key = a.next_bytes()?;
    a.finish()?;
    Ok(key)
}

/// GET key
pub(super) fn get(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Read(ReadOp::Get { key: key_only(a)? }))
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT tms | KEEPTTL]
pub(super) fn set(a: &mut Args<'_>, now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let value = a.next_bytes()?;
    let o = ext_options(a, Grammar::Set)?;
    let ttl = match &o.expire {
        Some((unit, raw)) => deadline(a, raw, *unit, now)?,
        None if o.keepttl => Ttl::Keep,
        None => Ttl::Clear,
    };
    let cond = if o.nx {
        SetCond::IfAbsent
    } else if o.xx {
        SetCond::IfPresent
    } else {
        SetCond::Always
    };
    Ok(Plan::Write(WriteOp::Set {
        key,
        value,
        cond,
        ttl,
        get: o.get,
    }))
}

/// SETNX key value (rendered 1/0 by the table's `render_ok_as_one`)
pub(super) fn setnx(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let value = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Write(WriteOp::Set {
        key,
        value,
        cond: SetCond::IfAbsent,
        ttl: Ttl::Clear,
        get: false,
    }))
}

fn set_with_ttl(a: &mut Args<'_>, now: u64, unit: ExpiryUnit) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let raw = a.next_bytes()?;
    let value = a.next_bytes()?;
    a.finish()?;
    let ttl = deadline(a, &raw, unit, now)?;
    Ok(Plan::Write(WriteOp::Set {
        key,
        value,
        cond: SetCond::Always,
        ttl,
        get: false,
    }))
}

/// SETEX key seconds value
pub(super) fn setex(a: &mut Args<'_>, now: u64) -> Result<Plan, Reply> {
    set_with_ttl(a, now, ExpiryUnit::RelSeconds)
}

/// PSETEX key milliseconds value
pub(super) fn psetex(a: &mut Args<'_>, now: u64) -> Result<Plan, Reply> {
    set_with_ttl(a, now, ExpiryUnit::RelMillis)
}

/// MGET key [key ...]
pub(super) fn mget(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Read(ReadOp::MGet { keys: a.rest() }))
}

fn pairs(a: &mut Args<'_>) -> Result<Vec<(Bytes, Bytes)>, Reply> {
    // The table's arity (-3) only says "at least one pair"; an odd count of
    // key/value arguments is reported as an arity error, like Redis.
    if a.remaining() % 2 != 0 {
        return Err(arity_error(a.spec().name));
    }
    let mut out = Vec::with_capacity(a.remaining() / 2);
    while let Some(k) = a.next_opt() {
        out.push((k, a.next_bytes()?));
    }
    Ok(out)
}

/// MSET key value [key value ...]
pub(super) fn mset(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Write(WriteOp::MSet {
        pairs: pairs(a)?,
        nx: false,
    }))
}

/// MSETNX key value [key value ...]
pub(super) fn msetnx(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Write(WriteOp::MSet {
        pairs: pairs(a)?,
        nx: true,
    }))
}

/// GETSET key value
pub(super) fn getset(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let value = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Write(WriteOp::Set {
        key,
        value,
        cond: SetCond::Always,
        ttl: Ttl::Clear,
        get: true,
    }))
}

/// GETDEL key
pub(super) fn getdel(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Write(WriteOp::GetDel { key: key_only(a)? }))
}

/// GETEX key [EX s | PX ms | EXAT ts | PXAT tms | PERSIST]; without an
/// option it is a plain read (nothing to replicate).
pub(super) fn getex(a: &mut Args<'_>, now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let o = ext_options(a, Grammar::GetEx)?;
    let ttl = match &o.expire {
        Some((unit, raw)) => deadline(a, raw, *unit, now)?,
        None if o.persist => Ttl::Clear,
        None => return Ok(Plan::Read(ReadOp::Get { key })),
    };
    Ok(Plan::Write(WriteOp::GetEx { key, ttl }))
}

/// APPEND key value
pub(super) fn append(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let value = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Write(WriteOp::Append { key, value }))
}

/// STRLEN key
pub(super) fn strlen(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Read(ReadOp::StrLen { key: key_only(a)? }))
}

fn incr_by(key: Bytes, delta: i64) -> Result<Plan, Reply> {
    Ok(Plan::Write(WriteOp::IncrBy { key, delta }))
}

/// INCR key
pub(super) fn incr(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    incr_by(key_only(a)?, 1)
}

/// DECR key
pub(super) fn decr(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    incr_by(key_only(a)?, -1)
}

/// INCRBY key increment
pub(super) fn incrby(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let delta = a.next_int()?;
    a.finish()?;
    incr_by(key, delta)
}

/// DECRBY key decrement (i64::MIN cannot be negated)
pub(super) fn decrby(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let by = a.next_int()?;
    a.finish()?;
    let delta = by
        .checked_neg()
        .ok_or_else(|| Reply::error("ERR decrement would overflow"))?;
    incr_by(key, delta)
}

/// INCRBYFLOAT key increment. An infinite increment can only produce
/// inf/NaN, so it is refused here (same text the keyspace would give)
/// instead of costing a raft round trip.
pub(super) fn incrbyfloat(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let delta = a.next_f64()?;
    a.finish()?;
    if !delta.is_finite() {
        return Err(Reply::error("ERR increment would produce NaN or Infinity"));
    }
    Ok(Plan::Write(WriteOp::IncrByFloat { key, delta }))
}

/// GETRANGE key start end
pub(super) fn getrange(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let start = a.next_int()?;
    let end = a.next_int()?;
    a.finish()?;
    Ok(Plan::Read(ReadOp::GetRange { key, start, end }))
}

/// SETRANGE key offset value
pub(super) fn setrange(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    let offset = a.next_int()?;
    let value = a.next_bytes()?;
    a.finish()?;
    let offset = u64::try_from(offset).map_err(|_| Reply::error("ERR offset is out of range"))?;
    Ok(Plan::Write(WriteOp::SetRange { key, offset, value }))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    const SYNTAX: &str = "ERR syntax error";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    fn set_op(parts: &[&str]) -> (SetCond, Ttl, bool) {
        match plan(parts) {
            Plan::Write(WriteOp::Set { cond, ttl, get, .. }) => (cond, ttl, get),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn get_and_set_plain() {
        assert_eq!(plan(&["GET", "k"]), Plan::Read(ReadOp::Get { key: b("k") }));
        assert_eq!(
            plan(&["set", "k", "v"]),
            Plan::Write(WriteOp::Set {
                key: b("k"),
                value: b("v"),
                cond: SetCond::Always,
                ttl: Ttl::Clear,
                get: false
            })
        );
    }

    #[test]
    fn set_options() {
        assert_eq!(
            set_op(&["set", "k", "v", "nx"]),
            (SetCond::IfAbsent, Ttl::Clear, false)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "XX", "GET"]),
            (SetCond::IfPresent, Ttl::Clear, true)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "NX", "GET"]),
            (SetCond::IfAbsent, Ttl::Clear, true)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "ex", "10"]),
            (SetCond::Always, Ttl::In(10_000), false)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "px", "10"]),
            (SetCond::Always, Ttl::In(10), false)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "exat", "10"]),
            (SetCond::Always, Ttl::At(10_000), false)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "pxat", "10"]),
            (SetCond::Always, Ttl::At(10), false)
        );
        assert_eq!(
            set_op(&["set", "k", "v", "keepttl", "nx"]),
            (SetCond::IfAbsent, Ttl::Keep, false)
        );
        // Repeating the same option is allowed; the last value wins.
        assert_eq!(
            set_op(&["set", "k", "v", "ex", "1", "ex", "2", "nx", "nx"]),
            (SetCond::IfAbsent, Ttl::In(2000), false)
        );
    }

    #[test]
    fn set_errors() {
        for bad in [
            &["set", "k", "v", "nx", "xx"][..],
            &["set", "k", "v", "xx", "nx"],
            &["set", "k", "v", "ex", "1", "px", "1"],
            &["set", "k", "v", "ex", "1", "keepttl"],
            &["set", "k", "v", "keepttl", "pxat", "1"],
            &["set", "k", "v", "ex"],
            &["set", "k", "v", "persist"],
            &["set", "k", "v", "bogus"],
            // Syntax is checked before the value.
            &["set", "k", "v", "ex", "abc", "nx", "xx"],
        ] {
            assert_eq!(err(bad), SYNTAX, "{bad:?}");
        }
        assert_eq!(err(&["set", "k", "v", "ex", "abc"]), NOT_INT);
        assert_eq!(err(&["set", "k", "v", "ex", "1.5"]), NOT_INT);
        let invalid = "ERR invalid expire time in 'set' command";
        assert_eq!(err(&["set", "k", "v", "ex", "0"]), invalid);
        assert_eq!(err(&["set", "k", "v", "px", "-5"]), invalid);
        assert_eq!(err(&["set", "k", "v", "exat", "9223372036854776"]), invalid);
        assert_eq!(
            err(&["set", "k", "v", "ex", "9223372036854775807"]),
            invalid
        );
        // Adding now overflows.
        assert_eq!(
            err(&["set", "k", "v", "px", "9223372036854775807"]),
            invalid
        );
        // Absolute deadlines near the top still fit.
        assert_eq!(
            set_op(&["set", "k", "v", "pxat", "9223372036854775807"]).1,
            Ttl::At(i64::MAX as u64)
        );
    }

    #[test]
    fn setnx_setex_psetex() {
        assert_eq!(
            set_op(&["setnx", "k", "v"]),
            (SetCond::IfAbsent, Ttl::Clear, false)
        );
        assert_eq!(
            set_op(&["setex", "k", "5", "v"]),
            (SetCond::Always, Ttl::In(5000), false)
        );
        assert_eq!(
            set_op(&["psetex", "k", "5", "v"]),
            (SetCond::Always, Ttl::In(5), false)
        );
        assert_eq!(
            err(&["setex", "k", "0", "v"]),
            "ERR invalid expire time in 'setex' command"
        );
        assert_eq!(
            err(&["psetex", "k", "-1", "v"]),
            "ERR invalid expire time in 'psetex' command"
        );
        assert_eq!(err(&["setex", "k", "x", "v"]), NOT_INT);
        assert_eq!(
            err(&["setex", "k", "1"]),
            "ERR wrong number of arguments for 'setex' command"
        );
    }

    #[test]
    fn multi_key() {
        assert_eq!(
            plan(&["mget", "a", "b"]),
            Plan::Read(ReadOp::MGet {
                keys: vec![b("a"), b("b")]
            })
        );
        assert_eq!(
            plan(&["mset", "a", "1", "b", "2"]),
            Plan::Write(WriteOp::MSet {
                pairs: vec![(b("a"), b("1")), (b("b"), b("2"))],
                nx: false
            })
        );
        assert_eq!(
            plan(&["msetnx", "a", "1"]),
            Plan::Write(WriteOp::MSet {
                pairs: vec![(b("a"), b("1"))],
                nx: true
            })
        );
        assert_eq!(
            err(&["mset", "a", "1", "b"]),
            "ERR wrong number of arguments for 'mset' command"
        );
        assert_eq!(
            err(&["msetnx", "a", "1", "b"]),
            "ERR wrong number of arguments for 'msetnx' command"
        );
        assert_eq!(
            err(&["mget"]),
            "ERR wrong number of arguments for 'mget' command"
        );
    }

    #[test]
    fn getset_getdel_getex() {
        assert_eq!(
            set_op(&["getset", "k", "v"]),
            (SetCond::Always, Ttl::Clear, true)
        );
        assert_eq!(
            plan(&["getdel", "k"]),
            Plan::Write(WriteOp::GetDel { key: b("k") })
        );
        assert_eq!(
            plan(&["getex", "k"]),
            Plan::Read(ReadOp::Get { key: b("k") })
        );
        assert_eq!(
            plan(&["getex", "k", "persist"]),
            Plan::Write(WriteOp::GetEx {
                key: b("k"),
                ttl: Ttl::Clear
            })
        );
        assert_eq!(
            plan(&["getex", "k", "EX", "3"]),
            Plan::Write(WriteOp::GetEx {
                key: b("k"),
                ttl: Ttl::In(3000)
            })
        );
        assert_eq!(
            plan(&["getex", "k", "pxat", "77"]),
            Plan::Write(WriteOp::GetEx {
                key: b("k"),
                ttl: Ttl::At(77)
            })
        );
        for bad in [
            &["getex", "k", "persist", "ex", "1"][..],
            &["getex", "k", "ex", "1", "persist"],
            &["getex", "k", "nx"],
            &["getex", "k", "get"],
            &["getex", "k", "keepttl"],
            &["getex", "k", "px"],
        ] {
            assert_eq!(err(bad), SYNTAX, "{bad:?}");
        }
        assert_eq!(
            err(&["getex", "k", "ex", "0"]),
            "ERR invalid expire time in 'getex' command"
        );
    }

    #[test]
    fn counters() {
        let inc = |p: &[&str]| match plan(p) {
            Plan::Write(WriteOp::IncrBy { delta, .. }) => delta,
            other => panic!("{other:?}"),
        };
        assert_eq!(inc(&["incr", "k"]), 1);
        assert_eq!(inc(&["decr", "k"]), -1);
        assert_eq!(inc(&["incrby", "k", "-7"]), -7);
        assert_eq!(inc(&["decrby", "k", "7"]), -7);
        assert_eq!(inc(&["decrby", "k", "9223372036854775807"]), -i64::MAX);
        assert_eq!(
            err(&["decrby", "k", "-9223372036854775808"]),
            "ERR decrement would overflow"
        );
        assert_eq!(err(&["incrby", "k", "1.5"]), NOT_INT);
        assert_eq!(err(&["incrby", "k", "99999999999999999999"]), NOT_INT);
        assert_eq!(
            plan(&["incrbyfloat", "k", "1.5"]),
            Plan::Write(WriteOp::IncrByFloat {
                key: b("k"),
                delta: 1.5
            })
        );
        assert_eq!(
            err(&["incrbyfloat", "k", "abc"]),
            "ERR value is not a valid float"
        );
        assert_eq!(
            err(&["incrbyfloat", "k", "nan"]),
            "ERR value is not a valid float"
        );
        assert_eq!(
            err(&["incrbyfloat", "k", "inf"]),
            "ERR increment would produce NaN or Infinity"
        );
    }

    #[test]
    fn append_strlen_ranges() {
        assert_eq!(
            plan(&["append", "k", "v"]),
            Plan::Write(WriteOp::Append {
                key: b("k"),
                value: b("v")
            })
        );
        assert_eq!(
            plan(&["strlen", "k"]),
            Plan::Read(ReadOp::StrLen { key: b("k") })
        );
        assert_eq!(
            plan(&["getrange", "k", "0", "-1"]),
            Plan::Read(ReadOp::GetRange {
                key: b("k"),
                start: 0,
                end: -1
            })
        );
        assert_eq!(err(&["getrange", "k", "a", "1"]), NOT_INT);
        assert_eq!(
            plan(&["setrange", "k", "5", "v"]),
            Plan::Write(WriteOp::SetRange {
                key: b("k"),
                offset: 5,
                value: b("v")
            })
        );
        assert_eq!(
            err(&["setrange", "k", "-1", "v"]),
            "ERR offset is out of range"
        );
        assert_eq!(err(&["setrange", "k", "x", "v"]), NOT_INT);
    }
}
