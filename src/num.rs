//! Integer syntax shared by every layer: the RESP parser (multibulk and bulk
//! lengths), command arguments, and stored values (INCR and friends). It sits
//! at the crate root and imports nothing, so `protocol`, `keyspace` and
//! `command` may all use it without breaking the one-way data flow.

/// Redis's strict integer syntax (`string2ll`): optional `-`, no `+`, no
/// spaces, no leading zeros (except `"0"` itself), no `-0`, at most 20 bytes,
/// must fit in an i64.
///
/// Being this strict is what lets Redis keep integers in a compact encoding
/// and print them back unchanged; clients rely on e.g. `" 1"` being rejected.
/// Callers choose their own error text and range (a bulk length must also be
/// non-negative, a slot below 16384, ...).
#[inline]
pub fn parse_i64(b: &[u8]) -> Option<i64> {
    if b.len() > 20 {
        return None;
    }
    let (neg, digits) = match b.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, b),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate negatively so i64::MIN is representable.
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        for (text, want) in [
            (&b"0"[..], 0),
            (b"10", 10),
            (b"-1", -1),
            (b"-10", -10),
            (b"-12", -12),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(
                parse_i64(text),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"-01",
            b"00",
            b"1a",
            b"1.0",
            b"1e3",
            b"abc",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"123456789012345678901",
            b"000000000000000000001",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
