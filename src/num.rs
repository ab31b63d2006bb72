//! Number syntax shared by every layer, the Redis way: integers for the RESP
//! parser (multibulk and bulk lengths), command arguments and stored values
//! (INCR and friends); floats for arguments and stored values (INCRBYFLOAT)
//! and their formatting. It sits at the crate root and imports nothing, so
//! `protocol`, `keyspace` and `command` may all use it without breaking the
//! one-way data flow.

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

/// Unsigned decimal, digits only (SCAN cursors, raft node ids).
pub fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

/// Longest float text Redis parses (`MAX_LONG_DOUBLE_CHARS`).
const MAX_FLOAT_LEN: usize = 5 * 1024;

/// A float as Redis reads one (`string2ld`: `strtold` over the whole text),
/// for arguments and stored values alike: no surrounding spaces or trailing
/// garbage, no NaN, at most 5 KiB, and no overflow to infinity unless the
/// text itself says "inf"/"infinity" (which INCRBYFLOAT then refuses as a
/// result).
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() >= MAX_FLOAT_LEN {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    if s.starts_with(|c: char| c.is_ascii_whitespace()) {
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

/// Formats an INCRBYFLOAT result in plain decimal notation, trailing zeros
/// and dot trimmed (Redis: `%.17Lf` on a long double, then trimmed).
///
/// We compute in f64, whose last one or two decimal digits are noise
/// (0.1 + 0.2 = 0.30000000000000004). Redis's 80-bit long double hides that
/// noise below its 17 printed decimals, so to print what Redis prints
/// ("0.3", "2.6") the value is rounded to 15 significant digits, the number
/// an f64 always reproduces exactly. Never prints an exponent or "-0".
pub fn format_float(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let sci = format!("{:.14e}", v);
    let (mant, exp) = sci.split_once('e').expect("exponent format");
    let exp: i64 = exp.parse().expect("exponent digits");
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let point = exp + 1; // digits before the decimal point
    let nd = digits.len() as i64;
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else if point >= nd {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - nd) as usize));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    if out.contains('.') {
        while out.ends_with('0') {
            out.pop();
        }
        if out.ends_with('.') {
            out.pop();
        }
    }
    out
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

    #[test]
    fn unsigned() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn floats_parse() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5"), Some(5.0));
        assert_eq!(parse_f64(b"-1e3"), Some(-1000.0));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"-5E-1"), Some(-0.5));
        assert_eq!(parse_f64(b"+1"), Some(1.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        let long = vec![b'1'; MAX_FLOAT_LEN];
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1.5x",
            b"1\x002",
            b"abc",
            b"1e",
            b"1e400",
            b"1.2.3",
            &long,
        ] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_format() {
        assert_eq!(format_float(20.5), "20.5");
        assert_eq!(format_float(3.0e3), "3000");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(1.5 + 1.1), "2.6");
        assert_eq!(format_float(-5000.0), "-5000");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.001), "0.001");
        assert_eq!(format_float(1e20), "100000000000000000000");
        assert_eq!(format_float(-1.25), "-1.25");
        assert_eq!(format_float(123456.789), "123456.789");
        assert_eq!(format_float(1e-20), "0.00000000000000000001");
    }
}
