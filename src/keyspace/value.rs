//! Stored representations of keys and values.
//!
//! Everything stored here is an owned, compact copy: request arguments arrive
//! as `Bytes` slices of a connection's read buffer, and keeping such a slice
//! would pin the whole buffer (often 64 KB) for as long as the key lives.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::Bytes;

/// Longest key kept inline. Chosen so `Key` stays 24 bytes: most cache keys
/// (`user:1234:session`, UUIDs without dashes are 32 though) fit without a
/// heap allocation, and cloning the keyspace copies them with a memcpy.
const INLINE_MAX: usize = 22;

/// Threshold under which replies copy a value instead of sharing it: for
/// small values a copy is as cheap as a refcount and keeps the connection
/// threads from bouncing the value's cache line back to the applier.
const SHARE_MIN: usize = 128;

/// A stored byte string (keys and string values): inline when short,
/// otherwise one shared allocation (`Arc<[u8]>`, 16 bytes, vs 32 for
/// `Bytes`) so that cloning the keyspace for a snapshot is a refcount bump,
/// not a copy, and no lazily allocated shared header appears on first clone.
#[derive(Clone)]
pub(crate) enum Compact {
    Inline { len: u8, buf: [u8; INLINE_MAX] },
    Heap(Arc<[u8]>),
}

impl Compact {
    pub(crate) fn from_slice(b: &[u8]) -> Compact {
        if b.len() <= INLINE_MAX {
            let mut buf = [0u8; INLINE_MAX];
            buf[..b.len()].copy_from_slice(b);
            Compact::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            Compact::Heap(Arc::from(b))
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Compact::Inline { len, buf } => &buf[..*len as usize],
            Compact::Heap(a) => a,
        }
    }

    /// Heap bytes owned by this key (an estimate of the allocator's chunk).
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Compact::Inline { .. } => 0,
            // Arc header: strong + weak counts.
            Compact::Heap(a) => malloc_size(a.len() + 16),
        }
    }

    /// Takes ownership of a freshly built buffer (APPEND, SETRANGE, ...).
    pub(crate) fn from_vec(v: Vec<u8>) -> Compact {
        if v.len() <= INLINE_MAX {
            Compact::from_slice(&v)
        } else {
            Compact::Heap(Arc::from(v))
        }
    }

    /// The bytes as a reply value: shared when large (no copy of a 1 MB
    /// value per GET), copied when small.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self {
            Compact::Heap(a) if a.len() >= SHARE_MIN => Bytes::from_owner(a.clone()),
            _ => Bytes::copy_from_slice(self.as_bytes()),
        }
    }
}

impl std::ops::Deref for Compact {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Stored keys.
pub(crate) type Key = Compact;

// Hash and Eq must agree with `[u8]`'s so lookups can borrow a `&[u8]`.
impl Hash for Compact {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Compact {
    fn eq(&self, other: &Compact) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Compact {}

impl Borrow<[u8]> for Compact {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Compact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// A stored value. Only strings exist today; hashes, lists and sets will be
/// further variants, which is why every string command goes through
/// [`Value::as_str`] and answers WRONGTYPE when it returns `None`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// Owned copy (never a slice of a request buffer).
    Str(Compact),
    /// Stand-in for a future non-string type so the WRONGTYPE paths can be
    /// tested before any such type exists.
    #[cfg(test)]
    TestList,
}

impl Value {
    /// Copies `b` into a fresh allocation of exactly its size (or inline).
    pub(crate) fn str_from(b: &[u8]) -> Value {
        Value::Str(Compact::from_slice(b))
    }

    pub(crate) fn as_str(&self) -> Option<&Compact> {
        match self {
            Value::Str(b) => Some(b),
            #[cfg(test)]
            Value::TestList => None,
        }
    }

    /// The name TYPE reports and SCAN TYPE filters on.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            #[cfg(test)]
            Value::TestList => "list",
        }
    }

    /// Heap bytes attributed to this value.
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            #[cfg(test)]
            Value::TestList => 0,
        }
    }
}

/// Rough size of the chunk a general-purpose allocator (glibc-like) hands out
/// for a request of `n` bytes: 8 bytes of header, 16-byte granularity,
/// 32-byte minimum.
pub(crate) fn malloc_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 8 + 15) & !15).max(32)
    }
}

/// `Entry::exp` of a key without a deadline.
pub(crate) const NO_EXP: u32 = u32::MAX;

/// Per-key data stored next to the key in its slot map. Kept at 32 bytes:
/// the deadline lives in the expiry index (only keys that have one pay for
/// it) and the entry holds just its position there.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    /// Position of this key in the expiry index, or `NO_EXP`. Being stored
    /// here makes removal from the index O(1) without a second map.
    pub(crate) exp: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_inline_and_heap() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        let short = Key::from_slice(b"abc");
        assert!(matches!(short, Compact::Inline { .. }));
        assert_eq!(short.as_bytes(), b"abc");
        let exact = Key::from_slice(&[7u8; INLINE_MAX]);
        assert!(matches!(exact, Compact::Inline { .. }));
        let long = Key::from_slice(&[9u8; INLINE_MAX + 1]);
        assert!(matches!(long, Compact::Heap(_)));
        assert_eq!(long.as_bytes(), &[9u8; INLINE_MAX + 1][..]);
        assert_eq!(Key::from_slice(b""), Key::from_slice(b""));
    }

    #[test]
    fn value_copy_does_not_pin_buffer() {
        let big = Bytes::from(vec![1u8; 65536]);
        let v = Value::str_from(&big[10..42]);
        drop(big);
        assert_eq!(v.as_str().unwrap().len(), 32);
    }
}
