//! A cursor over a command's arguments, in the spirit of mini-redis's
//! `Parse`: each family parser pulls what it needs and ends with `finish()`,
//! so "too many arguments" is rejected in one place.
//!
//! Every error is already the Redis reply to send (`Reply::Error`), so a
//! parse function is a straight line of `?`s.

use bytes::Bytes;

use super::table::CommandSpec;
use super::{Plan, ServerCmd};
use crate::num::{parse_f64, parse_i64};
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
    fn printable_truncates_and_flattens() {
        assert_eq!(printable(b"a\r\nb", 10), "a  b");
        assert_eq!(printable(b"abcdef", 3), "abc");
    }
}
