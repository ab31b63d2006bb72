//! Generic key commands: DEL UNLINK EXISTS TOUCH TYPE KEYS SCAN RENAME
//! RENAMENX RANDOMKEY.

use super::args::{not_integer, syntax_error, Args};
use super::Plan;
use crate::keyspace::{ReadOp, WriteOp};
use crate::num::{parse_i64, parse_u64};
use crate::protocol::Reply;

/// DEL key [key ...] / UNLINK key [key ...] (UNLINK frees lazily in Redis;
/// here both are the same replicated delete).
pub(super) fn del(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Write(WriteOp::Del { keys: a.rest() }))
}

/// EXISTS key [key ...] / TOUCH key [key ...] (TOUCH only counts: there is
/// no LRU clock to update on a replicated cache).
pub(super) fn exists(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    Ok(Plan::Read(ReadOp::Exists { keys: a.rest() }))
}

/// TYPE key
pub(super) fn type_(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let key = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Read(ReadOp::Type { key }))
}

/// KEYS pattern
pub(super) fn keys(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let pattern = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Read(ReadOp::Keys { pattern }))
}

/// Default SCAN COUNT, as in Redis.
const SCAN_DEFAULT_COUNT: usize = 10;

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. Options may
/// repeat (last wins). `MATCH *` is no filter at all, as in Redis. The TYPE
/// name is not validated (Redis 7 filters unknown types to nothing).
pub(super) fn scan(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    let raw = a.next_bytes()?;
    let cursor = parse_u64(&raw).ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let mut pattern = None;
    let mut count = SCAN_DEFAULT_COUNT;
    let mut type_name = None;
    while !a.is_empty() {
        if a.remaining() < 2 {
            return Err(syntax_error());
        }
        if a.keyword("match") {
            let p = a.next_bytes()?;
            pattern = (p.as_ref() != b"*").then_some(p);
        } else if a.keyword("count") {
            let raw = a.next_bytes()?;
            let n = parse_i64(&raw).ok_or_else(not_integer)?;
            if n < 1 {
                return Err(syntax_error());
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if a.keyword("type") {
            type_name = Some(a.next_bytes()?);
        } else {
            return Err(syntax_error());
        }
    }
    Ok(Plan::Read(ReadOp::Scan {
        cursor,
        pattern,
        count,
        type_name,
    }))
}

fn rename_op(a: &mut Args<'_>, nx: bool) -> Result<Plan, Reply> {
    let src = a.next_bytes()?;
    let dst = a.next_bytes()?;
    a.finish()?;
    Ok(Plan::Write(WriteOp::Rename { src, dst, nx }))
}

/// RENAME key newkey
pub(super) fn rename(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    rename_op(a, false)
}

/// RENAMENX key newkey
pub(super) fn renamenx(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    rename_op(a, true)
}

/// RANDOMKEY
pub(super) fn randomkey(a: &mut Args<'_>, _now: u64) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Read(ReadOp::RandomKey))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;

    #[test]
    fn del_exists_touch_type() {
        let keys = vec![b("a"), b("b"), b("a")];
        assert_eq!(
            plan(&["del", "a", "b", "a"]),
            Plan::Write(WriteOp::Del { keys: keys.clone() })
        );
        assert_eq!(
            plan(&["UNLINK", "a", "b", "a"]),
            Plan::Write(WriteOp::Del { keys: keys.clone() })
        );
        assert_eq!(
            plan(&["exists", "a", "b", "a"]),
            Plan::Read(ReadOp::Exists { keys: keys.clone() })
        );
        assert_eq!(
            plan(&["touch", "a", "b", "a"]),
            Plan::Read(ReadOp::Exists { keys })
        );
        assert_eq!(
            plan(&["type", "k"]),
            Plan::Read(ReadOp::Type { key: b("k") })
        );
        assert_eq!(
            err(&["del"]),
            "ERR wrong number of arguments for 'del' command"
        );
    }

    #[test]
    fn keys_rename_randomkey() {
        assert_eq!(
            plan(&["keys", "a*"]),
            Plan::Read(ReadOp::Keys { pattern: b("a*") })
        );
        assert_eq!(
            plan(&["rename", "a", "b"]),
            Plan::Write(WriteOp::Rename {
                src: b("a"),
                dst: b("b"),
                nx: false
            })
        );
        assert_eq!(
            plan(&["renamenx", "a", "b"]),
            Plan::Write(WriteOp::Rename {
                src: b("a"),
                dst: b("b"),
                nx: true
            })
        );
        assert_eq!(plan(&["randomkey"]), Plan::Read(ReadOp::RandomKey));
        assert_eq!(
            err(&["randomkey", "x"]),
            "ERR wrong number of arguments for 'randomkey' command"
        );
    }

    #[test]
    fn scan_forms() {
        assert_eq!(
            plan(&["scan", "0"]),
            Plan::Read(ReadOp::Scan {
                cursor: 0,
                pattern: None,
                count: 10,
                type_name: None
            })
        );
        assert_eq!(
            plan(&[
                "scan",
                "18446744073709551615",
                "MATCH",
                "a*",
                "count",
                "100",
                "type",
                "string"
            ]),
            Plan::Read(ReadOp::Scan {
                cursor: u64::MAX,
                pattern: Some(b("a*")),
                count: 100,
                type_name: Some(b("string"))
            })
        );
        assert_eq!(
            plan(&["scan", "5", "match", "*"]),
            Plan::Read(ReadOp::Scan {
                cursor: 5,
                pattern: None,
                count: 10,
                type_name: None
            })
        );
    }

    #[test]
    fn scan_errors() {
        for bad in ["-1", "abc", "1.5", "18446744073709551616", ""] {
            assert_eq!(err(&["scan", bad]), "ERR invalid cursor", "{bad}");
        }
        assert_eq!(err(&["scan", "0", "count", "0"]), "ERR syntax error");
        assert_eq!(err(&["scan", "0", "count", "-3"]), "ERR syntax error");
        assert_eq!(
            err(&["scan", "0", "count", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(err(&["scan", "0", "match"]), "ERR syntax error");
        assert_eq!(err(&["scan", "0", "bogus", "1"]), "ERR syntax error");
    }
}
