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

/// A stored key: inline when short, otherwise one shared allocation so that
/// cloning the keyspace for a snapshot is a refcount bump, not a copy.
#[derive(Clone)]
pub(crate) enum Key {
    Inline { len: u8, buf: [u8; INLINE_MAX] },
    Heap(Arc<[u8]>),
}

impl Key {
    pub(crate) fn from_slice(b: &[u8]) -> Key {
        if b.len() <= INLINE_MAX {
            let mut buf = [0u8; INLINE_MAX];
            buf[..b.len()].copy_from_slice(b);
            Key::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            Key::Heap(Arc::from(b))
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(a) => a,
        }
    }

    /// Heap bytes owned by this key (an estimate of the allocator's chunk).
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Key::Inline { .. } => 0,
            // Arc header: strong + weak counts.
            Key::Heap(a) => malloc_size(a.len() + 16),
        }
    }

    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

// Hash and Eq must agree with `[u8]`'s so lookups can borrow a `&[u8]`.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", Bytes::copy_from_slice(self.as_bytes()))
    }
}

/// A stored value. Only strings exist today; hashes, lists and sets will be
/// further variants, which is why every string command goes through
/// [`Value::as_str`] and answers WRONGTYPE when it returns `None`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// Owned copy (never a slice of a request buffer). `Bytes` so that GET
    /// replies and keyspace clones share the allocation instead of copying.
    Str(Bytes),
    /// Stand-in for a future non-string type so the WRONGTYPE paths can be
    /// tested before any such type exists.
    #[cfg(test)]
    TestList,
}

impl Value {
    /// Copies `b` into a fresh allocation of exactly its size.
    pub(crate) fn str_from(b: &[u8]) -> Value {
        Value::Str(Bytes::copy_from_slice(b))
    }

    pub(crate) fn as_str(&self) -> Option<&Bytes> {
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

    /// Heap bytes attributed to this value. A `Bytes` built from a Vec gets
    /// a separate shared header the first time it is cloned (the keyspace is
    /// cloned for every snapshot), so that header is counted up front.
    pub(crate) fn heap_size(&self) -> usize {
        match self {
            Value::Str(b) if b.is_empty() => 0,
            Value::Str(b) => malloc_size(b.len()) + malloc_size(24),
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

/// Per-key metadata stored next to the key in its slot map.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    /// Absolute unix ms; 0 means "no deadline". 0 is never a real deadline:
    /// a deadline <= now deletes the key instead of being stored, and now is
    /// never negative.
    pub(crate) deadline: u64,
    /// Position of this key in the expiry index; meaningful only when
    /// `deadline != 0`. Stored here so removal from the index is O(1)
    /// without a second map.
    pub(crate) exp_pos: usize,
}

impl Entry {
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.deadline != 0 && self.deadline <= now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_inline_and_heap() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let short = Key::from_slice(b"abc");
        assert!(matches!(short, Key::Inline { .. }));
        assert_eq!(short.as_bytes(), b"abc");
        let exact = Key::from_slice(&[7u8; INLINE_MAX]);
        assert!(matches!(exact, Key::Inline { .. }));
        let long = Key::from_slice(&[9u8; INLINE_MAX + 1]);
        assert!(matches!(long, Key::Heap(_)));
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
