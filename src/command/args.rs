//! A cursor over a command's arguments, in the spirit of mini-redis's
//! `Parse`: each family parser pulls what it needs and ends with `finish()`,
//! so "too many arguments" is rejected in one place.
//!
//! Every error is already the Redis reply to send (`Reply::Error`), so a
//! parse function is a straight line of `?`s.

use bytes::Bytes;

use super::table::CommandSpec;
use super::{Plan, ServerCmd};
use crate::protocol::Reply;

pub(crate) fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

pub(crate) fn not_integer() -> Reply {
    Reply::error("ERR value is not an integer or out of range")
}

pub(crate) fn not_float() -> Reply {
    Reply::error("ERR value is not a valid float")
}

/// `ERR wrong number of arguments for 'get' command` (full name for
/// subcommands: `'client|setname'`).
pub(crate) fn arity_error(full_name: &str) -> Reply {
    Reply::Error(format!(
        "ERR wrong number of arguments for '{full_name}' command"
    ))
}

/// Bytes shown inside an error text: lossy UTF-8, at most `max` bytes, and
/// CR/LF replaced by spaces (an error line must stay one line).
pub(crate) fn printable(b: &[u8], max: usize) -> String {
    let cut = &b[..b.len().min(max)];
    String::from_utf8_lossy(cut).replace(['\r', '\n'], " ")
}

pub(crate) use crate::num::parse_i64;

/// Unsigned decimal, digits only (SCAN cursors, raft node ids).
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// A float as Redis accepts it (`strtold` over the whole string): no
/// surrounding spaces, no NaN, and no overflow to infinity unless the text
/// itself says "inf"/"infinity".
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_nan() {
        return None;
    }
    if v.is_infinite() {
        let t = s.trim_start_matches(['+', '-']);
        if !(t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity")) {
            return None;
        }
    }
    Some(v)
}

/// The plan of a server command that takes no arguments (READONLY, CLIENT
/// ID, ...): anything left over is `-ERR syntax error`.
pub(crate) fn no_args(a: &mut Args<'_>, cmd: ServerCmd) -> Result<Plan, Reply> {
    a.finish()?;
    Ok(Plan::Server(cmd))
}

/// Cursor over `args`; starts after the command name (and subcommand).
pub struct Args<'a> {
    spec: &'static CommandSpec,
    args: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    /// `args` is the whole command line; parsing starts at `pos`.
    pub fn new(spec: &'static CommandSpec, args: &'a [Bytes], pos: usize) -> Self {
        Args { spec, args, pos }
    }

    /// The table row being parsed (its `name` goes into some error texts).
    pub fn spec(&self) -> &'static CommandSpec {
        self.spec
    }

    /// The whole command line, command name included.
    pub fn all(&self) -> &'a [Bytes] {
        self.args
    }

    pub fn remaining(&self) -> usize {
        self.args.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn peek(&self) -> Option<&'a Bytes> {
        self.args.get(self.pos)
    }

    /// The next argument; a missing one is a syntax error (arity has
    /// already been checked against the table, so this means a keyword
    /// lacks its value).
    pub fn next_bytes(&mut self) -> Result<Bytes, Reply> {
        self.next_opt().ok_or_else(syntax_error)
    }

    /// The next argument if there is one.
    pub fn next_opt(&mut self) -> Option<Bytes> {
        let b = self.args.get(self.pos)?.clone();
        self.pos += 1;
        Some(b)
    }

    /// All remaining arguments.
    pub fn rest(&mut self) -> Vec<Bytes> {
        let v = self.args[self.pos.min(self.args.len())..].to_vec();
        self.pos = self.args.len();
        v
    }

    /// Strict i64 (`-ERR value is not an integer or out of range`).
    pub fn next_int(&mut self) -> Result<i64, Reply> {
        let b = self.next_bytes()?;
        parse_i64(&b).ok_or_else(not_integer)
    }

    /// Strict i64 with a custom error text (`ERR ...`).
    pub fn next_int_or(&mut self, err: &str) -> Result<i64, Reply> {
        let b = self.next_bytes()?;
        parse_i64(&b).ok_or_else(|| Reply::error(err))
    }

    /// A float (`-ERR value is not a valid float`).
    pub fn next_f64(&mut self) -> Result<f64, Reply> {
        let b = self.next_bytes()?;
        parse_f64(&b).ok_or_else(not_float)
    }

    /// Consume the next argument if it equals `kw` ignoring ASCII case.
    pub fn keyword(&mut self, kw: &str) -> bool {
        match self.peek() {
            Some(b) if b.eq_ignore_ascii_case(kw.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Consume the next argument if it is one of `kws`; returns its index.
    pub fn one_of(&mut self, kws: &[&str]) -> Option<usize> {
        let b = self.peek()?;
        let i = kws
            .iter()
            .position(|k| b.eq_ignore_ascii_case(k.as_bytes()))?;
        self.pos += 1;
        Some(i)
    }

    /// Reject leftover arguments with `-ERR syntax error`.
    pub fn finish(&self) -> Result<(), Reply> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(syntax_error())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-1e3"), Some(-1000.0));
        assert_eq!(parse_f64(b"5"), Some(5.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [&b""[..], b"nan", b" 1", b"1 ", b"abc", b"1e400", b"1.2.3"] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn printable_truncates_and_flattens() {
        assert_eq!(printable(b"a\r\nb", 10), "a  b");
        assert_eq!(printable(b"abcdef", 3), "abc");
    }
}
