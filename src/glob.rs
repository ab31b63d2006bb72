//! Redis-style glob matching: KEYS and SCAN MATCH in the keyspace, CONFIG
//! GET and COMMAND LIST FILTERBY PATTERN above it. At the crate root and
//! importing nothing, so every layer may use it.
//!
//! The pattern is compiled once into tokens, then matched with the classic
//! iterative algorithm that only remembers the most recent `*`. Every token
//! other than `*` consumes exactly one byte, which is what makes that single
//! backtrack point sufficient; the cost is O(pattern * key) in the worst case
//! and never exponential, whatever a client sends (Redis needs a nesting cap
//! on its recursive matcher for the same reason).
//!
//! Syntax, matching Redis byte for byte:
//! - `*` any run of bytes, `?` any one byte, `\x` the literal `x` (a trailing
//!   lone `\` is a literal backslash);
//! - `[...]` one byte from a set: `^` first negates, `a-z` is a range (ends
//!   may come in either order), `\x` is a literal inside the set; a `[`
//!   without a closing `]` runs to the end of the pattern;
//! - a range is recognised whenever a byte is followed by `-` and one more
//!   byte, even if that byte is `]` (so `[a-]` is the range `]`..`a` and the
//!   set goes on), which is Redis's behaviour too.

/// One compiled pattern element.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Star,
    Any,
    Byte(u8),
    /// 256-bit membership set, negation already applied.
    Set([u64; 4]),
}

/// A compiled glob pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    tokens: Vec<Token>,
}

fn set_add(set: &mut [u64; 4], b: u8) {
    set[(b >> 6) as usize] |= 1u64 << (b & 63);
}

fn set_has(set: &[u64; 4], b: u8) -> bool {
    set[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
}

impl Pattern {
    pub fn new(p: &[u8]) -> Pattern {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    // Runs of stars are one star: keeps backtracking cheap.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                b'?' => {
                    tokens.push(Token::Any);
                    i += 1;
                }
                b'\\' if i + 1 < p.len() => {
                    tokens.push(Token::Byte(p[i + 1]));
                    i += 2;
                }
                b'[' => {
                    i += 1;
                    let negate = i < p.len() && p[i] == b'^';
                    if negate {
                        i += 1;
                    }
                    let mut set = [0u64; 4];
                    loop {
                        if i >= p.len() {
                            break; // unterminated: the set ends with the pattern
                        }
                        let rest = p.len() - i;
                        if p[i] == b'\\' && rest >= 2 {
                            set_add(&mut set, p[i + 1]);
                            i += 2;
                        } else if p[i] == b']' {
                            i += 1;
                            break;
                        } else if rest >= 3 && p[i + 1] == b'-' {
                            let (a, b) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
                            for c in a..=b {
                                set_add(&mut set, c);
                            }
                            i += 3;
                        } else {
                            set_add(&mut set, p[i]);
                            i += 1;
                        }
                    }
                    if negate {
                        for w in &mut set {
                            *w = !*w;
                        }
                    }
                    tokens.push(Token::Set(set));
                }
                b => {
                    tokens.push(Token::Byte(b));
                    i += 1;
                }
            }
        }
        Pattern { tokens }
    }

    /// True when the pattern is `*` alone, so callers can skip matching.
    pub fn matches_all(&self) -> bool {
        self.tokens == [Token::Star]
    }

    pub fn matches(&self, s: &[u8]) -> bool {
        let t = &self.tokens;
        let (mut ti, mut si) = (0usize, 0usize);
        // (token index after the star, string index the star resumes from)
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            if ti < t.len() {
                let one = match &t[ti] {
                    Token::Star => {
                        backtrack = Some((ti + 1, si));
                        ti += 1;
                        continue;
                    }
                    _ if si >= s.len() => false,
                    Token::Any => true,
                    Token::Byte(b) => s[si] == *b,
                    Token::Set(set) => set_has(set, s[si]),
                };
                if one {
                    ti += 1;
                    si += 1;
                    continue;
                }
            } else if si == s.len() {
                return true;
            }
            // Mismatch (or pattern exhausted early): let the last star eat
            // one more byte and retry from just after it.
            match backtrack {
                Some((bt, bs)) if bs < s.len() => {
                    backtrack = Some((bt, bs + 1));
                    ti = bt;
                    si = bs + 1;
                }
                _ => return false,
            }
        }
    }
}

/// Convenience one-shot match.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    Pattern::new(pattern).matches(s)
}

/// If every key matching `pattern` must hash to one slot, return the part
/// of the pattern that determines it: a literal prefix ending with a
/// non-empty `{tag}`. KEYS/SCAN then visit a single slot (Redis 7 does the
/// same optimisation for hash-tagged patterns).
pub fn pattern_hash_prefix(pattern: &[u8]) -> Option<&[u8]> {
    let special = |b: &u8| matches!(b, b'*' | b'?' | b'[' | b'\\');
    let open = pattern.iter().position(|&b| b == b'{' || special(&b))?;
    if pattern[open] != b'{' {
        return None;
    }
    let close_rel = pattern[open + 1..]
        .iter()
        .position(|&b| b == b'}' || special(&b))?;
    let close = open + 1 + close_rel;
    if pattern[close] != b'}' || close == open + 1 {
        return None;
    }
    Some(&pattern[..=close])
}

/// If the pattern contains no special characters, the one key it can match.
pub fn pattern_literal(pattern: &[u8]) -> Option<&[u8]> {
    if pattern
        .iter()
        .any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
    {
        None
    } else {
        Some(pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn basics() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foobar"));
        assert!(m("foo*", "foobar"));
        assert!(m("*bar", "foobar"));
        assert!(m("f*b*r", "foobar"));
        assert!(!m("f*b*z", "foobar"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "hllo"));
        assert!(m("a**b", "ab"));
        assert!(m("*a*", "banana"));
        assert!(m("*ana", "banana"));
        assert!(!m("*anab", "banana"));
    }

    #[test]
    fn classes() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range");
        assert!(m("[\\]]", "]"));
        assert!(m("[a\\-z]", "-"));
        assert!(!m("[a\\-z]", "b"));
        // `[]` is an empty set followed by literal text.
        assert!(!m("[]", "]"));
        assert!(!m("[]a]", "]a]"));
        assert!(m("[^]", "x"), "negated empty set matches any byte");
        assert!(!m("[^]", ""));
    }

    #[test]
    fn unterminated_and_escapes() {
        assert!(m("[abc", "a"));
        assert!(m("x[abc", "xc"));
        assert!(!m("x[abc", "x"));
        assert!(!m("[", ""));
        assert!(!m("[", "["));
        assert!(m("[^", "z"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\", "a\\"), "trailing backslash is literal");
        assert!(m("\\?x", "?x"));
        // `[a-]`: a range from ']' to 'a', and the set continues.
        assert!(m("[a-]x]", "^"));
        assert!(m("[a-]x]", "x"));
        assert!(!m("[a-]x]", "b"));
    }

    #[test]
    fn binary_bytes() {
        assert!(glob_match(b"a?c", b"a\xffc"));
        assert!(glob_match(b"[\x00-\xff]", b"\x80"));
        assert!(glob_match(b"*\x00*", b"ab\x00cd"));
    }

    #[test]
    fn hostile_patterns_are_bounded() {
        let key = "a".repeat(4096);
        let pat = format!("{}b", "a*".repeat(200));
        let t = Instant::now();
        assert!(!m(&pat, &key));
        let pat2 = "*a".repeat(100) + "*b";
        assert!(!m(&pat2, &key));
        let pat3 = "*".repeat(100_000);
        assert!(m(&pat3, &key));
        let el = t.elapsed();
        println!("hostile glob patterns: {el:?}");
        assert!(el.as_secs() < 5, "took {el:?}");
    }

    #[test]
    fn hash_prefix() {
        assert_eq!(pattern_hash_prefix(b"{user1}:*"), Some(&b"{user1}"[..]));
        assert_eq!(pattern_hash_prefix(b"foo{bar}*"), Some(&b"foo{bar}"[..]));
        assert_eq!(pattern_hash_prefix(b"f*{bar}"), None);
        assert_eq!(pattern_hash_prefix(b"{}x*"), None);
        assert_eq!(pattern_hash_prefix(b"{b*}x"), None);
        assert_eq!(pattern_hash_prefix(b"{bar"), None);
        assert_eq!(pattern_literal(b"abc"), Some(&b"abc"[..]));
        assert_eq!(pattern_literal(b"a\\bc"), None);
    }
}
