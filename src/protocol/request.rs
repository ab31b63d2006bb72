//! Incremental request parser: multibulk (`*N\r\n$L\r\n...`) and inline
//! commands, with Redis's limits and error texts.
//!
//! # Why it is shaped like this
//!
//! * **Incremental.** A 512 MB value arrives in thousands of TCP reads and a
//!   pipeline can hold a million small requests. The parser consumes complete
//!   pieces (the `*N` line, each `$L` line, each argument) off the front of the
//!   buffer as soon as they are whole and remembers where it is (arguments
//!   still expected, declared length of the current bulk, how far the current
//!   line was already searched for its terminator). Nothing is scanned twice,
//!   so total work is linear in the bytes received however they are split.
//! * **Zero-copy.** Multibulk arguments are `split_to(..).freeze()` slices of
//!   the read buffer. Consequence for callers: a stored `Bytes` keeps the
//!   read-buffer allocation it came from alive; whoever keeps arguments for a
//!   long time (the keyspace) should copy small values out
//!   (`Bytes::copy_from_slice`) so one 10-byte key does not pin a 64 KB block.
//! * **Never trusts declared sizes.** `*N` pre-allocates at most
//!   [`MAX_ARGS_PREALLOC`] slots, `$L` reserves at most [`MAX_BULK_PREALLOC`]
//!   bytes ahead; memory grows only with bytes actually received.
//! * **Buffer bound is the connection's job.** The parser only ever holds
//!   (in `buf` plus its argument vector) the request currently being
//!   received; the connection must cap `buf` itself with
//!   `client-query-buffer-limit` on `buf.len()` plus
//!   [`RequestParser::pending_bytes`] (see [`RequestParser::query_buffer_limit`]),
//!   which also bounds a client that declares `$536870912` and then trickles.
//!
//! # Contract with the caller
//!
//! Between calls the caller may only *append* to `buf` (the parser remembers
//! offsets into its unconsumed front). After an `Err` the connection must be
//! closed; the parser resets itself but the stream is out of sync.
//!
//! # Where this differs from Redis (on purpose)
//!
//! * `*-2` and below are `invalid multibulk length` (docs/protocol.md); Redis
//!   treats every count `<= 0` as an empty request.
//! * `POST`/`Host:` as the first argument (inline or multibulk; Redis matches
//!   them as commands, so both) become [`ParseError::Http`] instead of a
//!   command lookup.
//! * Like Redis, the two bytes after a bulk are skipped without checking they
//!   are `\r\n`, and the byte after a line's `\r` is not checked to be `\n`.

use crate::num::parse_i64;
use bytes::{Buf, Bytes, BytesMut};

/// Longest length line (`*N`, `$L`) or inline request kept while waiting for
/// its terminator; Redis's `PROTO_INLINE_MAX_SIZE`.
pub const PROTO_INLINE_MAX_SIZE: usize = 64 * 1024;
/// At most this many argument slots are allocated up front for `*N`.
pub const MAX_ARGS_PREALLOC: usize = 1024;
/// At most this many bytes are reserved ahead for a declared bulk.
pub const MAX_BULK_PREALLOC: usize = 1024 * 1024;
/// Spare room below which the parser tops up its reservation for a bulk.
const RESERVE_LOW_WATER: usize = 64 * 1024;
/// Before AUTH (when a password is set) Redis allows at most this many arguments...
pub const UNAUTH_MAX_ARGS: i64 = 10;
/// ...and bulks of at most this many bytes.
pub const UNAUTH_MAX_BULK: i64 = 16 * 1024;
/// Query buffer bound before AUTH (Redis: 1 MB), whatever the configured limit.
pub const UNAUTH_QUERY_BUFFER_LIMIT: usize = 1024 * 1024;
/// Pending replies bound before AUTH (Redis: 1 KB), whatever
/// `client-output-buffer-limit` says; enforced by the connection.
pub const UNAUTH_OUTPUT_LIMIT: usize = 1024;

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

fn proto(msg: &str) -> ParseError {
    ParseError::Protocol(msg.to_owned())
}

#[derive(Debug, Default)]
pub struct RequestParser {
    pub limits: ParserLimits,
    /// Arguments still expected in the current multibulk; 0 = between requests.
    remaining: usize,
    /// Arguments of the current multibulk received so far.
    args: Vec<Bytes>,
    /// Declared length of the bulk being received, once its `$` line is consumed.
    bulk_len: Option<usize>,
    /// Bytes at the front of `buf` already searched for the current line's
    /// terminator without finding it (keeps byte-by-byte arrival linear).
    scanned: usize,
    /// Bytes of the current request already taken out of `buf` (lines,
    /// bulks, and the `Bytes` handles holding them); see [`Self::pending_bytes`].
    pending: usize,
}

impl RequestParser {
    pub fn new(limits: ParserLimits) -> Self {
        RequestParser {
            limits,
            ..Default::default()
        }
    }

    /// The query-buffer cap the connection should enforce now (on
    /// `buf.len() + pending_bytes()`): the
    /// configured `client-query-buffer-limit`, or 1 MB while unauthenticated
    /// (as Redis does). Exceeding it means: log and close the connection.
    pub fn query_buffer_limit(&self, configured: usize) -> usize {
        if self.limits.unauthenticated {
            configured.min(UNAUTH_QUERY_BUFFER_LIMIT)
        } else {
            configured
        }
    }

    /// Memory held for the request being received that is no longer in
    /// `buf`: consumed length lines and the arguments already split off.
    /// The connection must enforce its query-buffer limit on
    /// `buf.len() + pending_bytes()`, like Redis counts `argv_len_sum`;
    /// checking `buf.len()` alone would let `*2147483647` followed by
    /// endless `$0\r\n\r\n` grow the argument vector without bound.
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// True while part of a multibulk request has been consumed from the
    /// buffer (useful to the connection for deciding whether EOF is clean).
    pub fn in_request(&self) -> bool {
        self.remaining > 0
    }

    /// Take one complete request off the front of `buf`. `Ok(None)` means
    /// more bytes are needed. Empty requests (`*0`, `*-1`, blank lines) are
    /// consumed silently.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        let result = self.parse_inner(buf);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.remaining = 0;
        self.args = Vec::new();
        self.bulk_len = None;
        self.scanned = 0;
        self.pending = 0;
    }

    fn parse_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        loop {
            if self.remaining == 0 {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match self.inline(buf)? {
                        None => return Ok(None),
                        Some(args) if args.is_empty() => continue,
                        Some(args) => return check_http(args).map(Some),
                    }
                }
                match self.multibulk_header(buf)? {
                    None => return Ok(None),
                    Some(0) => continue,
                    Some(n) => {
                        self.remaining = n;
                        self.args = Vec::with_capacity(n.min(MAX_ARGS_PREALLOC));
                    }
                }
            }
            return match self.multibulk_body(buf)? {
                None => Ok(None),
                Some(args) => check_http(args).map(Some),
            };
        }
    }

    /// Position of the first `term` in `buf`, searching only bytes not
    /// searched before.
    fn find(&mut self, buf: &[u8], term: u8) -> Option<usize> {
        let from = self.scanned.min(buf.len());
        match memchr::memchr(term, &buf[from..]) {
            Some(i) => Some(from + i),
            None => {
                self.scanned = buf.len();
                None
            }
        }
    }

    /// A `\r`-terminated line at the front of `buf`: `Ok(Some(cr))` when the
    /// `\r` and the byte after it are present.
    fn line(&mut self, buf: &[u8], too_big: &str) -> Result<Option<usize>, ParseError> {
        match self.find(buf, b'\r') {
            None if buf.len() > PROTO_INLINE_MAX_SIZE => Err(proto(too_big)),
            None => Ok(None),
            Some(cr) if cr + 1 >= buf.len() => {
                // Keep the `\r` findable next time.
                self.scanned = cr;
                Ok(None)
            }
            Some(cr) => Ok(Some(cr)),
        }
    }

    /// Consume a `*N` line; `Some(0)` for empty requests.
    fn multibulk_header(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ParseError> {
        let Some(cr) = self.line(buf, "too big mbulk count string")? else {
            return Ok(None);
        };
        let n = match parse_i64(&buf[1..cr]) {
            Some(n) if (-1..=i64::from(i32::MAX)).contains(&n) => n,
            _ => return Err(proto("invalid multibulk length")),
        };
        if self.limits.unauthenticated && n > UNAUTH_MAX_ARGS {
            return Err(proto("unauthenticated multibulk length"));
        }
        buf.advance(cr + 2);
        self.scanned = 0;
        self.pending = cr + 2;
        // In range 0..=i32::MAX after clamping -1, so the cast is lossless.
        Ok(Some(n.max(0) as usize))
    }

    /// Consume `$L` lines and bulks until the multibulk is complete.
    fn multibulk_body(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        while self.remaining > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = self.line(buf, "too big bulk count string")? else {
                        return Ok(None);
                    };
                    if buf[0] != b'$' {
                        // Bytes >= 0x80 are shown as the Latin-1 char of
                        // that value (Redis prints the raw byte).
                        return Err(ParseError::Protocol(format!(
                            "expected '$', got '{}'",
                            char::from(buf[0])
                        )));
                    }
                    let len = match parse_i64(&buf[1..cr]) {
                        Some(l) if l >= 0 && (l as u64) <= self.limits.proto_max_bulk_len => l,
                        _ => return Err(proto("invalid bulk length")),
                    };
                    if self.limits.unauthenticated && len > UNAUTH_MAX_BULK {
                        return Err(proto("unauthenticated bulk length"));
                    }
                    let len = usize::try_from(len).map_err(|_| proto("invalid bulk length"))?;
                    buf.advance(cr + 2);
                    self.scanned = 0;
                    self.pending += cr + 2;
                    self.bulk_len = Some(len);
                    len
                }
            };
            let need = len.saturating_add(2);
            if buf.len() < need {
                // Make room for what is coming, but only a bounded amount:
                // the declared length is the client's word, not bytes seen.
                // Reserving only when spare room runs low keeps a trickling
                // client from doubling the buffer on every call.
                let want = (need - buf.len()).min(MAX_BULK_PREALLOC);
                if buf.capacity() - buf.len() < want.min(RESERVE_LOW_WATER) {
                    buf.reserve(want);
                }
                return Ok(None);
            }
            self.args.push(buf.split_to(len).freeze());
            buf.advance(2);
            self.pending += need + std::mem::size_of::<Bytes>();
            self.bulk_len = None;
            self.remaining -= 1;
        }
        self.pending = 0;
        Ok(Some(std::mem::take(&mut self.args)))
    }

    /// Consume one `\n`-terminated inline request; `Some(vec![])` for a
    /// blank line.
    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ParseError> {
        let Some(nl) = self.find(buf, b'\n') else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(proto("too big inline request"));
            }
            return Ok(None);
        };
        let line = buf.split_to(nl + 1);
        self.scanned = 0;
        let mut end = nl;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        split_args(&line[..end])
            .map(Some)
            .ok_or_else(|| proto("unbalanced quotes in request"))
    }
}

/// Redis answers `POST` and `Host:` (what a browser or proxy sends) by
/// closing the connection: a web page must not be able to drive the cache.
fn check_http(args: Vec<Bytes>) -> Result<Vec<Bytes>, ParseError> {
    let first = &args[0];
    if first.eq_ignore_ascii_case(b"post") || first.eq_ignore_ascii_case(b"host:") {
        return Err(ParseError::Http);
    }
    Ok(args)
}

/// `isspace` in the C locale: what separates inline arguments.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// An escape sequence starting at `b[0]` inside quotes `q`: the byte it
/// stands for and how many bytes it takes. `"..."` understands `\xHH`,
/// `\n \r \t \b \a` and `\<any>`; `'...'` only `\'`.
fn unescape(q: u8, b: [u8; 4]) -> Option<(u8, usize)> {
    match (q, b) {
        (b'"', [b'\\', b'x', h, l]) if hex_val(h).is_some() && hex_val(l).is_some() => {
            Some((hex_val(h)? * 16 + hex_val(l)?, 4))
        }
        (b'"', [b'\\', e, _, _]) if e != 0 => Some((
            match e {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'a' => 0x07,
                other => other,
            },
            2,
        )),
        (b'\'', [b'\\', b'\'', _, _]) => Some((b'\'', 2)),
        _ => None,
    }
}

/// Split an inline request into arguments with the quoting rules of Redis's
/// `sdssplitargs` (the rules redis-cli users type against):
/// `"..."` understands `\n \r \t \b \a \xHH` and `\<any>`; `'...'` only `\'`;
/// a closing quote must be followed by whitespace or the end; quotes may
/// start in the middle of a word (`a"b c"` is one argument `ab c`). The line
/// ends at its first NUL byte, as it does for the C string Redis splits.
/// `None` means unbalanced quotes.
fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = match memchr::memchr(0, line) {
        Some(n) => &line[..n],
        None => line,
    };
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        // The quote character we are inside of, if any.
        let mut quote: Option<u8> = None;
        loop {
            let c = at(p);
            match quote {
                Some(q) => {
                    if let Some((byte, len)) = unescape(q, [c, at(p + 1), at(p + 2), at(p + 3)]) {
                        cur.push(byte);
                        p += len;
                    } else if c == q {
                        let next = at(p + 1);
                        if next != 0 && !is_c_space(next) {
                            return None;
                        }
                        p += 1;
                        break;
                    } else if c == 0 {
                        return None;
                    } else {
                        cur.push(c);
                        p += 1;
                    }
                }
                None => match c {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        p += 1;
                        break;
                    }
                    0 => break,
                    b'"' | b'\'' => {
                        quote = Some(c);
                        p += 1;
                    }
                    _ => {
                        cur.push(c);
                        p += 1;
                    }
                },
            }
        }
        args.push(Bytes::from(cur));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(v: &[&[u8]]) -> Vec<Bytes> {
        v.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    fn encode(req: &[Vec<u8>]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", req.len()).into_bytes();
        for a in req {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// Parse everything in `input` at once.
    fn parse_all(input: &[u8], limits: ParserLimits) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut p = RequestParser::new(limits);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = p.parse(&mut buf)? {
            out.push(req);
        }
        Ok(out)
    }

    /// Feed `input` in the given chunk sizes, parsing after each chunk.
    fn parse_chunked(
        input: &[u8],
        chunks: impl IntoIterator<Item = usize>,
        limits: ParserLimits,
    ) -> Result<Vec<Vec<Bytes>>, ParseError> {
        let mut p = RequestParser::new(limits);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut chunks = chunks.into_iter();
        while !rest.is_empty() {
            let n = chunks.next().unwrap_or(rest.len()).clamp(1, rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(req) = p.parse(&mut buf)? {
                out.push(req);
            }
        }
        Ok(out)
    }

    fn err(input: &[u8]) -> ParseError {
        err_with(input, ParserLimits::default())
    }

    fn err_with(input: &[u8], limits: ParserLimits) -> ParseError {
        parse_all(input, limits).expect_err("expected a parse error")
    }

    fn perr(msg: &str) -> ParseError {
        ParseError::Protocol(msg.into())
    }

    const UNAUTH: ParserLimits = ParserLimits {
        proto_max_bulk_len: 512 * 1024 * 1024,
        unauthenticated: true,
    };

    #[test]
    fn simple_multibulk() {
        let got = parse_all(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", Default::default()).unwrap();
        assert_eq!(got, vec![args(&[b"GET", b"key"])]);
    }

    #[test]
    fn binary_and_empty_bulks() {
        let got = parse_all(
            b"*3\r\n$0\r\n\r\n$2\r\n\r\n\r\n$1\r\n\0\r\n",
            Default::default(),
        );
        assert_eq!(got.unwrap(), vec![args(&[b"", b"\r\n", b"\0"])]);
    }

    #[test]
    fn every_split_point_gives_same_result() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$5\r\nmykey\r\n$10\r\n0123456789\r\n\
              PING\r\n*0\r\n\r\nset a \"b c\"\n*1\r\n$4\r\nPING\r\n";
        let want = parse_all(input, Default::default()).unwrap();
        assert_eq!(want.len(), 4);
        // Byte by byte.
        assert_eq!(
            parse_chunked(input, std::iter::repeat(1), Default::default()).unwrap(),
            want
        );
        // Every two-way split.
        for cut in 1..input.len() {
            let got = parse_chunked(input, [cut], Default::default()).unwrap();
            assert_eq!(got, want, "split at {cut}");
        }
    }

    #[test]
    fn pipeline_of_many() {
        let one = encode(&[b"INCR".to_vec(), b"counter".to_vec()]);
        let input: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 10_000)
            .collect();
        let got = parse_chunked(&input, std::iter::repeat(4096), Default::default()).unwrap();
        assert_eq!(got.len(), 10_000);
        assert!(got.iter().all(|r| r == &args(&[b"INCR", b"counter"])));
    }

    #[test]
    fn partial_state_is_kept_between_calls() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nke"[..]);
        assert_eq!(p.parse(&mut buf).unwrap(), None);
        assert!(p.in_request());
        // The first argument and the second's `$3` line were consumed already.
        assert_eq!(&buf[..], b"ke");
        buf.extend_from_slice(b"y\r\n");
        assert_eq!(p.parse(&mut buf).unwrap(), Some(args(&[b"GET", b"key"])));
        assert!(buf.is_empty());
        assert!(!p.in_request());
    }

    #[test]
    fn empty_requests_are_skipped() {
        let got = parse_all(
            b"*0\r\n*-1\r\n\r\n\n   \r\n*1\r\n$4\r\nPING\r\n",
            Default::default(),
        );
        assert_eq!(got.unwrap(), vec![args(&[b"PING"])]);
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n\n", Default::default()).unwrap(),
            Vec::<Vec<Bytes>>::new()
        );
    }

    #[test]
    fn hostile_multibulk_counts() {
        for bad in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*-2\r\n",
            b"*-100\r\n",
            b"*2147483648\r\n",
            b"*99999999999999999999999\r\n",
            b"*+1\r\n",
            b"*01\r\n",
            b"*-0\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
        ] {
            assert_eq!(err(bad), perr("invalid multibulk length"), "{bad:?}");
        }
        // i32::MAX itself is accepted (and allocates nothing big).
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2147483647\r\n$1\r\na\r\n"[..]);
        assert_eq!(p.parse(&mut buf).unwrap(), None);
        assert!(p.args.capacity() <= MAX_ARGS_PREALLOC);
    }

    #[test]
    fn hostile_bulk_lengths() {
        for bad in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$01\r\n",
            b"*1\r\n$536870913\r\n",
            b"*1\r\n$99999999999999999999\r\n",
        ] {
            assert_eq!(err(bad), perr("invalid bulk length"), "{bad:?}");
        }
        // Exactly proto-max-bulk-len is fine; a lower configured limit applies.
        assert_eq!(
            parse_all(b"*1\r\n$536870912\r\n", Default::default())
                .unwrap()
                .len(),
            0
        );
        let small = ParserLimits {
            proto_max_bulk_len: 3,
            unauthenticated: false,
        };
        assert_eq!(
            err_with(b"*1\r\n$4\r\nabcd\r\n", small),
            perr("invalid bulk length")
        );
        assert_eq!(parse_all(b"*1\r\n$3\r\nabc\r\n", small).unwrap().len(), 1);
    }

    #[test]
    fn element_must_be_bulk() {
        assert_eq!(err(b"*1\r\n:1\r\n"), perr("expected '$', got ':'"));
        assert_eq!(
            err(b"*2\r\n$1\r\na\r\n*1\r\n"),
            perr("expected '$', got '*'")
        );
        assert_eq!(err(b"*1\r\nfoo\r\n"), perr("expected '$', got 'f'"));
    }

    #[test]
    fn too_long_lines() {
        let mut star = b"*".to_vec();
        star.extend(std::iter::repeat_n(b'1', PROTO_INLINE_MAX_SIZE + 1));
        assert_eq!(err(&star), perr("too big mbulk count string"));
        // Exactly at the limit still waits for more.
        assert_eq!(
            parse_all(&star[..PROTO_INLINE_MAX_SIZE], Default::default())
                .unwrap()
                .len(),
            0
        );

        let mut dollar = b"*1\r\n$".to_vec();
        dollar.extend(std::iter::repeat_n(b'1', PROTO_INLINE_MAX_SIZE + 1));
        assert_eq!(err(&dollar), perr("too big bulk count string"));

        let inline = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(err(&inline), perr("too big inline request"));
        // The limit also holds when the line arrives in small pieces.
        let got = parse_chunked(&inline, std::iter::repeat(1000), Default::default());
        assert_eq!(got.unwrap_err(), perr("too big inline request"));
        // A long line with its newline already present is accepted, as in Redis.
        let mut long = vec![b'a'; PROTO_INLINE_MAX_SIZE + 10];
        long.push(b'\n');
        assert_eq!(
            parse_all(&long, Default::default()).unwrap()[0][0].len(),
            long.len() - 1
        );
    }

    #[test]
    fn unauthenticated_limits() {
        let eleven = encode(&vec![b"x".to_vec(); 11]);
        assert_eq!(
            err_with(&eleven, UNAUTH),
            perr("unauthenticated multibulk length")
        );
        assert!(parse_all(&eleven, Default::default()).is_ok());
        let ten = encode(&vec![b"x".to_vec(); 10]);
        assert_eq!(parse_all(&ten, UNAUTH).unwrap().len(), 1);

        let big = encode(&[b"AUTH".to_vec(), vec![b'p'; 16 * 1024 + 1]]);
        assert_eq!(err_with(&big, UNAUTH), perr("unauthenticated bulk length"));
        let ok = encode(&[b"AUTH".to_vec(), vec![b'p'; 16 * 1024]]);
        assert_eq!(parse_all(&ok, UNAUTH).unwrap().len(), 1);

        let p = RequestParser::new(UNAUTH);
        assert_eq!(p.query_buffer_limit(1 << 30), 1 << 20);
        assert_eq!(
            RequestParser::default().query_buffer_limit(1 << 30),
            1 << 30
        );
    }

    #[test]
    fn declared_sizes_do_not_allocate() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nab"[..]);
        assert_eq!(p.parse(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() <= MAX_BULK_PREALLOC + 64,
            "cap {}",
            buf.capacity()
        );
        // Trickling more bytes does not make it reserve the declared size either.
        for _ in 0..100 {
            buf.extend_from_slice(b"abcdefgh");
            assert_eq!(p.parse(&mut buf).unwrap(), None);
        }
        assert!(
            buf.capacity() <= MAX_BULK_PREALLOC + 64,
            "cap {}",
            buf.capacity()
        );

        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2147483647\r\n"[..]);
        assert_eq!(p.parse(&mut buf).unwrap(), None);
        assert!(p.args.capacity() <= MAX_ARGS_PREALLOC);
    }

    #[test]
    fn pending_bytes_count_consumed_arguments() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2147483647\r\n"[..]);
        for _ in 0..1000 {
            buf.extend_from_slice(b"$0\r\n\r\n");
        }
        buf.extend_from_slice(b"$5\r\nab");
        assert_eq!(p.parse(&mut buf).unwrap(), None);
        assert_eq!(&buf[..], b"ab");
        let per_arg = 6 + std::mem::size_of::<Bytes>();
        assert_eq!(p.pending_bytes(), 13 + 1000 * per_arg + 4);
        // Completing a request clears it.
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*1\r\n$1\r\na\r\n*2\r\n$1\r\nb"[..]);
        assert!(p.parse(&mut buf).unwrap().is_some());
        assert_eq!(p.pending_bytes(), 0);
        assert_eq!(p.parse(&mut buf).unwrap(), None);
        assert_eq!(p.pending_bytes(), 4 + 4);
    }

    #[test]
    fn big_value_in_many_reads() {
        let value = vec![b'v'; 3 * 1024 * 1024 + 7];
        let input = encode(&[b"SET".to_vec(), b"k".to_vec(), value.clone()]);
        let got = parse_chunked(&input, std::iter::repeat(16 * 1024), Default::default()).unwrap();
        assert_eq!(
            got,
            vec![vec![
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"k"),
                value.into()
            ]]
        );
    }

    /// Would take minutes if lines were re-scanned from their start on every
    /// call (quadratic); linear, it is a fraction of a second.
    #[test]
    fn byte_by_byte_is_linear() {
        let mut input = vec![b'x'; PROTO_INLINE_MAX_SIZE - 10];
        input.extend_from_slice(b"\r\n");
        input.extend(encode(&[
            b"SET".to_vec(),
            b"k".to_vec(),
            vec![b'v'; 200_000],
        ]));
        let got = parse_chunked(&input, std::iter::repeat(1), Default::default()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1][2].len(), 200_000);
    }

    #[test]
    fn inline_basic() {
        let got = parse_all(b"SET  k\tv\r\nPING\nGET k\n", Default::default()).unwrap();
        assert_eq!(
            got,
            vec![
                args(&[b"SET", b"k", b"v"]),
                args(&[b"PING"]),
                args(&[b"GET", b"k"])
            ]
        );
        // Without its newline an inline request waits.
        assert_eq!(parse_all(b"PING", Default::default()).unwrap().len(), 0);
    }

    #[test]
    fn inline_quoting() {
        let one = |line: &[u8]| split_args(line).expect("balanced");
        assert_eq!(one(br#"set "a b" 'c d'"#), args(&[b"set", b"a b", b"c d"]));
        assert_eq!(
            one(br#""\n\r\t\b\a\\\"\x41\x7a\q""#),
            args(&[b"\n\r\t\x08\x07\\\"Azq"])
        );
        // \x needs two hex digits, otherwise it is just an `x`.
        assert_eq!(one(br#""\xZZ""#), args(&[b"xZZ"]));
        assert_eq!(one(br#"'it\'s' 'a\nb'"#), args(&[b"it's", b"a\\nb"]));
        assert_eq!(one(br#""" ''"#), args(&[b"", b""]));
        assert_eq!(one(br#"a"b c""#), args(&[b"ab c"]));
        assert_eq!(one(b"  \x0b a \x0c"), args(&[b"a"]));
        assert_eq!(one(b"a\x0bb"), args(&[b"a\x0bb"]));
        assert_eq!(one(b"a\0b c"), args(&[b"a"]));
        assert_eq!(one(b""), args(&[]));

        for bad in [
            &br#""abc"#[..],
            br#"'abc"#,
            br#""a"b"#,
            br#"'a'b"#,
            br#""abc\"#,
            b"\"a\0\"",
        ] {
            assert_eq!(split_args(bad), None, "{bad:?}");
        }
        assert_eq!(err(b"set \"a\n"), perr("unbalanced quotes in request"));
        assert_eq!(err(b"set 'a'b\r\n"), perr("unbalanced quotes in request"));
    }

    #[test]
    fn http_is_detected() {
        assert_eq!(err(b"POST / HTTP/1.1\r\n"), ParseError::Http);
        assert_eq!(err(b"post /x HTTP/1.1\r\n"), ParseError::Http);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: example.com\r\n"),
            ParseError::Http
        );
        assert_eq!(
            err(&encode(&[b"HOST:".to_vec(), b"x".to_vec()])),
            ParseError::Http
        );
        // Only the first argument counts.
        assert!(parse_all(b"SET post host:\n", Default::default()).is_ok());
    }

    #[test]
    fn parser_resets_after_error() {
        let mut p = RequestParser::default();
        let mut buf = BytesMut::from(&b"*2\r\n$1\r\na\r\n:x\r\n"[..]);
        assert!(p.parse(&mut buf).is_err());
        assert!(!p.in_request());
        let mut buf = BytesMut::from(&b"*1\r\n$1\r\nb\r\n"[..]);
        assert_eq!(p.parse(&mut buf).unwrap(), Some(args(&[b"b"])));
    }

    #[test]
    fn args_are_zero_copy() {
        let mut buf = BytesMut::from(&b"*1\r\n$5\r\nhello\r\n"[..]);
        let base = buf.as_ptr() as usize;
        let got = RequestParser::default().parse(&mut buf).unwrap().unwrap();
        assert_eq!(got[0].as_ptr() as usize, base + 8);
    }

    /// Quote bytes so that `split_args` gives them back: every byte as `\xHH`.
    fn quote_inline(arg: &[u8]) -> Vec<u8> {
        let mut out = b"\"".to_vec();
        for b in arg {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        }
        out.push(b'"');
        out
    }

    fn arg_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..16),
            prop::collection::vec(
                prop::sample::select(b"*$\r\n:-+0123456789 \"'\\".to_vec()),
                0..16
            ),
            prop::collection::vec(any::<u8>(), 0..3000),
        ]
    }

    fn request_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(arg_strategy(), 1..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..512),
            chunks in prop::collection::vec(1usize..64, 0..32),
            unauthenticated in any::<bool>(),
        ) {
            let limits = ParserLimits { proto_max_bulk_len: 1024, unauthenticated };
            let _ = parse_all(&data, limits);
            let _ = parse_chunked(&data, chunks, limits);
        }

        #[test]
        fn protocol_looking_bytes_never_panic(
            data in prop::collection::vec(prop::sample::select(b"*$\r\n-0129ab \"'\\".to_vec()), 0..256),
            chunks in prop::collection::vec(1usize..16, 0..32),
        ) {
            let _ = parse_all(&data, ParserLimits::default());
            let _ = parse_chunked(&data, chunks, ParserLimits::default());
        }

        #[test]
        fn valid_request_round_trips(req in request_strategy()) {
            let got = parse_all(&encode(&req), ParserLimits::default());
            // A first argument spelled POST/Host: is (correctly) refused.
            let http = req[0].eq_ignore_ascii_case(b"post") || req[0].eq_ignore_ascii_case(b"host:");
            if http {
                prop_assert_eq!(got, Err(ParseError::Http));
            } else {
                let want: Vec<Bytes> = req.into_iter().map(Bytes::from).collect();
                prop_assert_eq!(got, Ok(vec![want]));
            }
        }

        #[test]
        fn pipelines_in_random_chunks(
            reqs in prop::collection::vec(request_strategy(), 1..6),
            chunks in prop::collection::vec(1usize..200, 0..64),
        ) {
            let reqs: Vec<Vec<Vec<u8>>> = reqs
                .into_iter()
                .filter(|r| !r[0].eq_ignore_ascii_case(b"post") && !r[0].eq_ignore_ascii_case(b"host:"))
                .collect();
            let input: Vec<u8> = reqs.iter().flat_map(|r| encode(r)).collect();
            let got = parse_chunked(&input, chunks, ParserLimits::default()).unwrap();
            let want: Vec<Vec<Bytes>> = reqs
                .into_iter()
                .map(|r| r.into_iter().map(Bytes::from).collect())
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn quoted_inline_round_trips(
            req in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..6),
            chunks in prop::collection::vec(1usize..10, 0..64),
        ) {
            let mut line = b"CMD".to_vec();
            for a in &req {
                line.push(b' ');
                line.extend(quote_inline(a));
            }
            line.extend_from_slice(b"\r\n");
            let got = parse_chunked(&line, chunks, ParserLimits::default()).unwrap();
            let mut want = vec![Bytes::from_static(b"CMD")];
            want.extend(req.into_iter().map(Bytes::from));
            prop_assert_eq!(got, vec![want]);
        }
    }
}
