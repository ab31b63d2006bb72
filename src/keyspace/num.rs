//! Float parsing and formatting with Redis's rules for string values
//! (integers: `crate::num::parse_i64`, shared with the protocol and command
//! layers).

/// Parses a stored string as INCRBYFLOAT does (Redis uses `strtold` and
/// then rejects leading whitespace, trailing garbage and NaN). `inf` is
/// accepted here, as by Redis, and then fails the result check.
pub fn parse_f64_redis(b: &[u8]) -> Option<f64> {
    // Redis refuses anything longer than its long-double buffer.
    if b.is_empty() || b.len() >= 5 * 1024 {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let v: f64 = s.parse().ok()?;
    if v.is_nan() {
        return None;
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
    fn floats_parse() {
        assert_eq!(parse_f64_redis(b"10.5"), Some(10.5));
        assert_eq!(parse_f64_redis(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64_redis(b"-5E-1"), Some(-0.5));
        assert_eq!(parse_f64_redis(b"+1"), Some(1.0));
        assert_eq!(parse_f64_redis(b".5"), Some(0.5));
        assert_eq!(parse_f64_redis(b"inf"), Some(f64::INFINITY));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1.5x",
            b"1\x002",
            b"abc",
            b"1e",
        ] {
            assert_eq!(
                parse_f64_redis(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
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
