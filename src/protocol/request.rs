//! Incremental request parser: multibulk (`*N\r\n$L\r\n...`) and inline
//! commands, with Redis's limits and error texts. (interface fixed; being written)

use bytes::{Bytes, BytesMut};

#[derive(Debug, Clone, Copy)]
pub struct ParserLimits {
    /// `proto-max-bulk-len` (Redis default 512 MB).
    pub proto_max_bulk_len: u64,
    /// When true (a password is set and the client has not authenticated):
    /// at most 10 arguments and 16 KB bulks, like Redis.
    pub unauthenticated: bool,
}

impl Default for ParserLimits {
    fn default() -> Self {
        ParserLimits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            unauthenticated: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Reply `-ERR Protocol error: <msg>` and close the connection.
    #[error("Protocol error: {0}")]
    Protocol(String),
    /// An HTTP request on the RESP port: log a warning and close, no reply.
    #[error("HTTP request on the RESP port")]
    Http,
}

#[derive(Debug, Default)]
pub struct RequestParser {
    pub limits: ParserLimits,
}

impl RequestParser {
    pub fn new(limits: ParserLimits) -> Self {
        RequestParser { limits }
    }

    /// Take one complete request off the front of `buf`. `Ok(None)` means
    /// more bytes are needed. Empty requests (`*0`, `*-1`, blank lines) are
    /// consumed silently.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        let _ = buf;
        todo!()
    }
}
