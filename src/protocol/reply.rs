//! Replies, independent of protocol version; `encode` writes RESP2 or RESP3.
//! (interface fixed; encoder being written)

use bytes::{Bytes, BytesMut};

/// A reply in RESP3 terms; `encode` downgrades for RESP2 the way Redis does
/// (map -> flat array, set -> array, double -> bulk string, bool -> integer,
/// verbatim -> bulk string, null -> `$-1` or `*-1`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status.
    Status(String),
    /// Full error text including its code, e.g. `ERR syntax error`, `MOVED 12 h:p`.
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// Null bulk (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// Null array (`*-1` in RESP2, `_` in RESP3).
    NilArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Bool(bool),
    /// Verbatim string with its 3-letter format (`txt`, `mkd`).
    Verbatim(&'static str, Bytes),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Status("OK".into())
    }

    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
}

/// Append the encoding of `reply` to `out`.
pub fn encode(reply: &Reply, resp3: bool, out: &mut BytesMut) {
    let _ = (reply, resp3, out);
    todo!()
}
