//! Replies, independent of protocol version; `encode` writes RESP2 or RESP3.

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
///
/// RESP2 has no null/map/set/double/bool/verbatim types, so they are
/// downgraded exactly as Redis does for a RESP2 client. Error and status
/// texts have `\r`/`\n` replaced by spaces (as Redis's `addReplyError` does)
/// so a message built from client input can never break the framing.
pub fn encode(reply: &Reply, resp3: bool, out: &mut BytesMut) {
    match reply {
        Reply::Status(s) => line(out, b'+', s.as_bytes()),
        Reply::Error(s) => line(out, b'-', s.as_bytes()),
        Reply::Int(i) => num_line(out, b':', *i),
        Reply::Bulk(b) => bulk(out, b),
        Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(items) => {
            num_line(out, b'*', items.len());
            for item in items {
                encode(item, resp3, out);
            }
        }
        Reply::Set(items) => {
            num_line(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode(item, resp3, out);
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                num_line(out, b'%', pairs.len());
            } else {
                num_line(out, b'*', pairs.len() * 2);
            }
            for (k, v) in pairs {
                encode(k, resp3, out);
                encode(v, resp3, out);
            }
        }
        Reply::Double(d) => {
            let mut tmp = [0u8; 40];
            let text = format_double(*d, &mut tmp);
            if resp3 {
                line(out, b',', text);
            } else {
                bulk(out, text);
            }
        }
        Reply::Bool(b) => out.extend_from_slice(match (resp3, b) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Reply::Verbatim(format, text) => {
            if resp3 {
                let format = format.as_bytes();
                num_line(out, b'=', format.len() + 1 + text.len());
                out.reserve(format.len() + 1 + text.len() + 2);
                out.extend_from_slice(format);
                out.extend_from_slice(b":");
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            } else {
                bulk(out, text);
            }
        }
    }
}

/// The exact number of bytes `encode(reply, resp3, ..)` appends, computed
/// without encoding: the connection checks its output-buffer limit with it
/// before copying a (possibly huge) reply into the output.
pub fn encoded_len(reply: &Reply, resp3: bool) -> usize {
    fn digits(n: usize) -> usize {
        itoa::Buffer::new().format(n).len()
    }
    // `<prefix><n>\r\n`
    let header = |n: usize| 3 + digits(n);
    let bulk_len = |n: usize| header(n) + n + 2;
    match reply {
        Reply::Status(s) | Reply::Error(s) => s.len() + 3,
        Reply::Int(i) => 3 + itoa::Buffer::new().format(*i).len(),
        Reply::Bulk(b) => bulk_len(b.len()),
        Reply::Nil if resp3 => 3,
        Reply::Nil => 5,
        Reply::NilArray if resp3 => 3,
        Reply::NilArray => 5,
        Reply::Array(items) | Reply::Set(items) => {
            header(items.len()) + items.iter().map(|i| encoded_len(i, resp3)).sum::<usize>()
        }
        Reply::Map(pairs) => {
            header(if resp3 { pairs.len() } else { pairs.len() * 2 })
                + pairs
                    .iter()
                    .map(|(k, v)| encoded_len(k, resp3) + encoded_len(v, resp3))
                    .sum::<usize>()
        }
        Reply::Double(d) => {
            let mut tmp = [0u8; 40];
            let n = format_double(*d, &mut tmp).len();
            if resp3 {
                n + 3
            } else {
                bulk_len(n)
            }
        }
        Reply::Bool(_) => 4,
        Reply::Verbatim(format, text) if resp3 => bulk_len(format.len() + 1 + text.len()),
        Reply::Verbatim(_, text) => bulk_len(text.len()),
    }
}

/// `<prefix><text>\r\n`, with CR/LF inside `text` turned into spaces.
fn line(out: &mut BytesMut, prefix: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.extend_from_slice(&[prefix]);
    if memchr::memchr2(b'\r', b'\n', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
}

/// `<prefix><n>\r\n`: integer replies (`i64`) and length headers (`usize`).
fn num_line(out: &mut BytesMut, prefix: u8, n: impl itoa::Integer) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    out.reserve(digits.len() + 3);
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    num_line(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Format a double the way a Redis client expects to read it back: the
/// shortest digits that round-trip (what Redis 7.2+ emits via `fpconv`,
/// e.g. `3.14`, `1`, `-0.5`, where `%.17g` would print
/// `3.1400000000000001`), laid out with `%g`'s rule for precision 17:
/// scientific notation when the decimal exponent is < -4 or >= 17, written
/// C-style with a sign and at least two exponent digits (`1e+20`, `1e-05`).
/// Infinities are `inf`/`-inf` and NaN is `nan`, as in Redis.
///
/// Writes into `tmp` (40 bytes is enough: 17 digits, sign, point, exponent)
/// so no heap allocation is needed.
fn format_double(d: f64, tmp: &mut [u8; 40]) -> &[u8] {
    use std::io::Write;
    if d.is_nan() {
        return b"nan";
    }
    if d.is_infinite() {
        return if d > 0.0 { b"inf" } else { b"-inf" };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.2345e-7`.
    let mut sci = [0u8; 40];
    let sci_len = {
        let mut cur = std::io::Cursor::new(&mut sci[..]);
        write!(cur, "{d:e}").expect("40 bytes hold any f64 in {:e} form");
        cur.position() as usize
    };
    let sci = &sci[..sci_len];
    let e_pos = sci
        .iter()
        .position(|&b| b == b'e')
        .expect("{:e} has an exponent");
    let exp: i32 = std::str::from_utf8(&sci[e_pos + 1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("{:e} exponent is an integer");
    let (neg, mantissa) = match &sci[..e_pos] {
        [b'-', rest @ ..] => (true, rest),
        m => (false, m),
    };
    // Significant digits without the decimal point.
    let mut digits = [0u8; 20];
    let mut nd = 0;
    for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
        digits[nd] = b;
        nd += 1;
    }
    let digits = &digits[..nd];

    let mut n = 0;
    let mut push = |b: u8| {
        tmp[n] = b;
        n += 1;
    };
    if neg {
        push(b'-');
    }
    if !(-4..17).contains(&exp) {
        push(digits[0]);
        if digits.len() > 1 {
            push(b'.');
            digits[1..].iter().for_each(|&b| push(b));
        }
        push(b'e');
        push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e >= 100 {
            push(b'0' + (e / 100) as u8);
        }
        push(b'0' + (e / 10 % 10) as u8);
        push(b'0' + (e % 10) as u8);
    } else if exp < 0 {
        push(b'0');
        push(b'.');
        for _ in 0..(-exp - 1) {
            push(b'0');
        }
        digits.iter().for_each(|&b| push(b));
    } else {
        let int_len = exp as usize + 1;
        for i in 0..int_len {
            push(*digits.get(i).unwrap_or(&b'0'));
        }
        if digits.len() > int_len {
            push(b'.');
            digits[int_len..].iter().for_each(|&b| push(b));
        }
    }
    &tmp[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, resp3: bool) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(r, resp3, &mut out);
        out.to_vec()
    }

    /// Same bytes in RESP2 and RESP3.
    fn both(r: Reply, want: &[u8]) {
        assert_eq!(enc(&r, false), want, "resp2 {r:?}");
        assert_eq!(enc(&r, true), want, "resp3 {r:?}");
    }

    fn each(r: Reply, resp2: &[u8], resp3: &[u8]) {
        assert_eq!(enc(&r, false), resp2, "resp2 {r:?}");
        assert_eq!(enc(&r, true), resp3, "resp3 {r:?}");
    }

    #[test]
    fn simple_types() {
        both(Reply::ok(), b"+OK\r\n");
        both(Reply::Status("a\r\nb".into()), b"+a  b\r\n");
        both(Reply::error("ERR syntax error"), b"-ERR syntax error\r\n");
        both(Reply::error("MOVED 12 h:1"), b"-MOVED 12 h:1\r\n");
        both(Reply::error("ERR bad\r\n+OK"), b"-ERR bad  +OK\r\n");
        both(Reply::Int(0), b":0\r\n");
        both(Reply::Int(-42), b":-42\r\n");
        both(Reply::Int(i64::MIN), b":-9223372036854775808\r\n");
        both(Reply::Int(i64::MAX), b":9223372036854775807\r\n");
        both(Reply::bulk("hello"), b"$5\r\nhello\r\n");
        both(Reply::bulk(""), b"$0\r\n\r\n");
        both(Reply::bulk(&b"a\r\nb"[..]), b"$4\r\na\r\nb\r\n");
    }

    #[test]
    fn nulls() {
        each(Reply::Nil, b"$-1\r\n", b"_\r\n");
        each(Reply::NilArray, b"*-1\r\n", b"_\r\n");
    }

    #[test]
    fn aggregates() {
        both(Reply::Array(vec![]), b"*0\r\n");
        both(
            Reply::Array(vec![
                Reply::Int(1),
                Reply::bulk("x"),
                Reply::Array(vec![Reply::ok()]),
            ]),
            b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n+OK\r\n",
        );
        each(
            Reply::Array(vec![Reply::Nil, Reply::Bool(true)]),
            b"*2\r\n$-1\r\n:1\r\n",
            b"*2\r\n_\r\n#t\r\n",
        );
        each(
            Reply::Map(vec![
                (Reply::bulk("a"), Reply::Int(1)),
                (Reply::bulk("b"), Reply::Nil),
            ]),
            b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n",
            b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n",
        );
        each(Reply::Map(vec![]), b"*0\r\n", b"%0\r\n");
        each(
            Reply::Set(vec![Reply::bulk("m")]),
            b"*1\r\n$1\r\nm\r\n",
            b"~1\r\n$1\r\nm\r\n",
        );
    }

    #[test]
    fn bools_and_verbatim() {
        each(Reply::Bool(true), b":1\r\n", b"#t\r\n");
        each(Reply::Bool(false), b":0\r\n", b"#f\r\n");
        each(
            Reply::Verbatim("txt", Bytes::from_static(b"line\n")),
            b"$5\r\nline\n\r\n",
            b"=9\r\ntxt:line\n\r\n",
        );
        each(
            Reply::Verbatim("mkd", Bytes::new()),
            b"$0\r\n\r\n",
            b"=4\r\nmkd:\r\n",
        );
    }

    #[test]
    fn doubles() {
        each(Reply::Double(1.1), b"$3\r\n1.1\r\n", b",1.1\r\n");
        each(Reply::Double(1.0), b"$1\r\n1\r\n", b",1\r\n");
        each(Reply::Double(f64::INFINITY), b"$3\r\ninf\r\n", b",inf\r\n");
        each(
            Reply::Double(f64::NEG_INFINITY),
            b"$4\r\n-inf\r\n",
            b",-inf\r\n",
        );
        each(Reply::Double(f64::NAN), b"$3\r\nnan\r\n", b",nan\r\n");
        let fmt = |d: f64| {
            let mut tmp = [0u8; 40];
            String::from_utf8(format_double(d, &mut tmp).to_vec()).unwrap()
        };
        assert_eq!(fmt(0.0), "0");
        assert_eq!(fmt(-0.0), "-0");
        assert_eq!(fmt(-2.5), "-2.5");
        assert_eq!(fmt(0.1), "0.1");
        assert_eq!(fmt(0.0001), "0.0001");
        assert_eq!(fmt(0.00001), "1e-05");
        assert_eq!(fmt(1.5e-7), "1.5e-07");
        assert_eq!(fmt(1e16), "10000000000000000");
        assert_eq!(fmt(1e17), "1e+17");
        assert_eq!(fmt(1.25e20), "1.25e+20");
        assert_eq!(fmt(123456.789), "123456.789");
        assert_eq!(fmt(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(fmt(-f64::MIN_POSITIVE), "-2.2250738585072014e-308");
        assert_eq!(fmt(5e-324), "5e-324");
        assert_eq!(fmt(0.1 + 0.2), "0.30000000000000004");
        // Everything printed reads back as the same double.
        for d in [0.1, 1.0 / 3.0, 2.0f64.powi(60), 1e-300, 6.02214076e23, -7.0] {
            assert_eq!(fmt(d).parse::<f64>().unwrap(), d);
        }
    }

    #[test]
    fn encoded_len_is_exact() {
        let samples = vec![
            Reply::ok(),
            Reply::error("ERR x\r\ny"),
            Reply::Int(i64::MIN),
            Reply::Int(7),
            Reply::bulk(vec![b'x'; 1234]),
            Reply::Nil,
            Reply::NilArray,
            Reply::Array(vec![Reply::Int(1), Reply::Nil, Reply::Array(vec![])]),
            Reply::Map(vec![(Reply::bulk("a"), Reply::Double(0.1))]),
            Reply::Set(vec![Reply::bulk("m"); 12]),
            Reply::Double(f64::NAN),
            Reply::Double(-1.25e20),
            Reply::Bool(true),
            Reply::Verbatim("txt", Bytes::from_static(b"hello\n")),
        ];
        for r in &samples {
            for resp3 in [false, true] {
                assert_eq!(
                    encoded_len(r, resp3),
                    enc(r, resp3).len(),
                    "{r:?} resp3={resp3}"
                );
            }
        }
    }

    #[test]
    fn appends_to_existing_output() {
        let mut out = BytesMut::from(&b"+OK\r\n"[..]);
        encode(&Reply::Int(7), false, &mut out);
        assert_eq!(&out[..], b"+OK\r\n:7\r\n");
    }
}
