//! Snapshot encoding and the fixed hashes used across nodes.
//!
//! Format (all integers little-endian, lengths as LEB128 varints):
//!
//! ```text
//! header  "RCKS\r\n\x1a\n" (8 bytes) | version u32
//! entry*  tag u8 (1 = string) | deadline u64 (0 = none) | key len | key | value len | value
//!       | tag u8 (2 = ACL user) | name len | name | rule count (0 = deleted) | (rule len | rule)*
//! end     tag 0xFF | entry count u64
//! trailer crc32 (IEEE) u32 of every byte before it
//! ```
//!
//! Hand-written rather than postcard-per-entry: it is the hot path when a
//! follower catches up on millions of keys, and the layout is trivial. The
//! magic borrows PNG's trick (CR LF, ^Z, LF) so text-mode mangling shows up
//! as a bad magic rather than a bad checksum deep in the file. Expired keys
//! not yet deleted are included: a snapshot must reproduce the state machine
//! exactly, and their deletion is itself a replicated event.

use std::io::{self, BufReader, BufWriter, Read, Write};

use crc32fast::Hasher as Crc32;

use std::sync::Arc;

use super::acl::AclUser;
use super::value::{Compact, Entry, Key, Value};
use super::Keyspace;

const MAGIC: &[u8; 8] = b"RCKS\r\n\x1a\n";
const VERSION: u32 = 1;
const TAG_STR: u8 = 1;
/// A replicated ACL user (ACL SETUSER/DELUSER); a rule count of 0 is a
/// deleted user (a live user always has at least `on`/`off`).
const TAG_ACL: u8 = 2;
const TAG_END: u8 = 0xFF;
/// Values are read in pieces of at most this size, so a corrupt length
/// costs at most this much memory before the input runs out.
const READ_CHUNK: usize = 64 * 1024;
const IO_BUF: usize = 256 * 1024;
/// Structural sanity bound on a declared key or value length (1 TiB). Not a
/// configuration limit: what a snapshot holds was accepted by the log, and
/// a node must load it whatever its own `proto-max-bulk-len`. Lengths below
/// it are still read in `READ_CHUNK` pieces, so a corrupt one costs no more
/// memory than the input really has.
const MAX_STRING_LEN: u64 = 1 << 40;

// ---- fixed 64-bit hash for digests -----------------------------------------

/// Final avalanche (MurmurHash3's fmix64 constants; a well-known fact).
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Word-at-a-time multiplicative hash; stable across platforms, versions
/// and processes, which the maps' random hashers deliberately are not.
fn hash_bytes(mut h: u64, b: &[u8]) -> u64 {
    const M: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(M).rotate_left(31);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail))
        .wrapping_mul(M)
        .rotate_left(31);
    // Length last, so "ab"+"c" and "a"+"bc" differ.
    fmix64(h ^ b.len() as u64)
}

/// Hash of one entry for `Keyspace::digest`.
pub(crate) fn entry_hash(key: &[u8], e: &Entry, deadline: u64) -> u64 {
    let mut h = hash_bytes(0x5EED, key);
    h = hash_bytes(h, e.value.type_name().as_bytes());
    if let Some(s) = e.value.as_str() {
        h = hash_bytes(h, s);
    }
    fmix64(h ^ deadline.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Hash of one replicated ACL user (or tombstone) for `Keyspace::digest`.
pub(crate) fn acl_hash(name: &str, user: Option<&AclUser>) -> u64 {
    let mut h = hash_bytes(0xAC1, name.as_bytes());
    match user {
        Some(u) => {
            for r in u.rules() {
                h = hash_bytes(h, r.as_bytes());
            }
        }
        None => h = hash_bytes(h, b"deleted"),
    }
    fmix64(h)
}

// ---- writing ------------------------------------------------------------------

struct CrcWriter<W: Write> {
    inner: BufWriter<W>,
    crc: Crc32,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc.update(b);
        self.inner.write_all(b)
    }
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Entries up to this size are assembled in a scratch buffer and written
/// (and checksummed) with one call instead of six.
const ASSEMBLE_MAX: usize = 4096;

pub(super) fn write<W: Write>(ks: &Keyspace, w: W) -> io::Result<()> {
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(IO_BUF, w),
        crc: Crc32::new(),
    };
    w.put(MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    let mut count = 0u64;
    let mut buf = Vec::with_capacity(ASSEMBLE_MAX + 32);
    for m in ks.slots.iter() {
        for (k, e) in m.iter() {
            let Some(s) = e.value.as_str() else {
                // Only strings exist outside tests; a new type needs a tag.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("snapshot: no encoding for type {}", e.value.type_name()),
                ));
            };
            buf.clear();
            buf.push(TAG_STR);
            buf.extend_from_slice(&ks.deadline(e).to_le_bytes());
            push_varint(&mut buf, k.len() as u64);
            buf.extend_from_slice(k);
            push_varint(&mut buf, s.len() as u64);
            if buf.len() + s.len() <= ASSEMBLE_MAX {
                buf.extend_from_slice(s);
                w.put(&buf)?;
            } else {
                w.put(&buf)?;
                w.put(s)?;
            }
            count += 1;
        }
    }
    for (name, user) in ks.acl.iter() {
        buf.clear();
        buf.push(TAG_ACL);
        push_varint(&mut buf, name.len() as u64);
        buf.extend_from_slice(name.as_bytes());
        let rules = user.as_ref().map(|u| u.rules()).unwrap_or_default();
        push_varint(&mut buf, rules.len() as u64);
        for r in &rules {
            push_varint(&mut buf, r.len() as u64);
            buf.extend_from_slice(r.as_bytes());
        }
        w.put(&buf)?;
        count += 1;
    }
    w.put(&[TAG_END])?;
    w.put(&count.to_le_bytes())?;
    let crc = w.crc.finalize();
    w.inner.write_all(&crc.to_le_bytes())?;
    w.inner.flush()
}

// ---- reading ------------------------------------------------------------------

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("snapshot: {}", msg.into()),
    )
}

struct CrcReader<R: Read> {
    inner: BufReader<R>,
    crc: Crc32,
    scratch: Vec<u8>,
}

impl<R: Read> CrcReader<R> {
    /// `read_exact` that reports a short input as corruption.
    fn take(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                bad("truncated")
            } else {
                e
            }
        })?;
        self.crc.update(buf);
        Ok(())
    }

    fn u8(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.take(&mut b)?;
        Ok(b[0])
    }

    fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn varint(&mut self) -> io::Result<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let part = (b & 0x7f) as u64;
            if i == 9 && part > 1 {
                return Err(bad("varint overflow"));
            }
            v |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    /// Reads `len` bytes, growing the buffer only as data actually arrives.
    fn bytes(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(len.min(READ_CHUNK));
        while v.len() < len {
            let old = v.len();
            let n = (len - old).min(READ_CHUNK);
            v.resize(old + n, 0);
            self.take(&mut v[old..])?;
        }
        v.shrink_to_fit();
        Ok(v)
    }

    /// Reads a `len`-byte string straight into its stored form. Short ones
    /// go through a reused scratch buffer, so each costs one allocation
    /// (or none, if inline) instead of a Vec plus a copy.
    fn compact(&mut self, len: usize) -> io::Result<Compact> {
        if len > READ_CHUNK {
            return Ok(Compact::from_vec(self.bytes(len)?));
        }
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let res = self.take(&mut scratch[..len]);
        let out = res.map(|()| Compact::from_slice(&scratch[..len]));
        self.scratch = scratch;
        out
    }

    fn len(&mut self, cap: u64, what: &str) -> io::Result<usize> {
        let n = self.varint()?;
        if n > cap {
            return Err(bad(format!("{what} length {n} exceeds limit {cap}")));
        }
        usize::try_from(n).map_err(|_| bad(format!("{what} length {n} too large")))
    }
}

pub(super) fn read<R: Read>(r: R) -> io::Result<Keyspace> {
    let mut r = CrcReader {
        inner: BufReader::with_capacity(IO_BUF, r),
        crc: Crc32::new(),
        scratch: Vec::new(),
    };
    let mut magic = [0u8; 8];
    r.take(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("bad magic"));
    }
    let mut ver = [0u8; 4];
    r.take(&mut ver)?;
    let ver = u32::from_le_bytes(ver);
    if ver != VERSION {
        return Err(bad(format!("unsupported version {ver}")));
    }
    let cap = MAX_STRING_LEN;
    let mut ks = Keyspace::new();
    let mut count = 0u64;
    loop {
        match r.u8()? {
            TAG_STR => {
                let deadline = r.u64()?;
                let klen = r.len(cap, "key")?;
                let key: Key = r.compact(klen)?;
                let vlen = r.len(cap, "value")?;
                let value = Value::Str(r.compact(vlen)?);
                if ks.slots[super::slot_of(key.as_bytes())].contains_key(key.as_bytes()) {
                    return Err(bad("duplicate key"));
                }
                ks.insert_new(key, value, deadline);
                count += 1;
            }
            TAG_ACL => {
                let nlen = r.len(cap, "user name")?;
                let name = String::from_utf8(r.bytes(nlen)?).map_err(|_| bad("user name"))?;
                let n = r.varint()?;
                let mut rules = Vec::new();
                for _ in 0..n {
                    let len = r.len(cap, "acl rule")?;
                    rules.push(r.bytes(len)?);
                }
                let user = (n > 0).then(|| Arc::new(AclUser::from_rules(&name, &rules)));
                if Arc::make_mut(&mut ks.acl).insert(name, user).is_some() {
                    return Err(bad("duplicate ACL user"));
                }
                count += 1;
            }
            TAG_END => break,
            t => return Err(bad(format!("unknown entry tag {t:#x}"))),
        }
    }
    if r.u64()? != count {
        return Err(bad("entry count mismatch"));
    }
    let expect = r.crc.clone().finalize();
    let mut crc = [0u8; 4];
    r.take(&mut crc)?;
    if u32::from_le_bytes(crc) != expect {
        return Err(bad("checksum mismatch"));
    }
    let mut extra = [0u8; 1];
    if r.inner.read(&mut extra)? != 0 {
        return Err(bad("trailing data after checksum"));
    }
    Ok(ks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_values() {
        // CRC-32/IEEE (ISO-HDLC), the check value of the CRC catalogue.
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finalize(), 0xCBF4_3926);
        assert_eq!(Crc32::new().finalize(), 0);
        // The trailer is the CRC of every byte before it.
        let mut out = Vec::new();
        write(&Keyspace::new(), &mut out).unwrap();
        let (body, trailer) = out.split_at(out.len() - 4);
        assert_eq!(trailer, crc32fast::hash(body).to_le_bytes());
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: changing the digest function breaks comparing mixed-version nodes.
        assert_eq!(hash_bytes(0, b""), hash_bytes(0, b""));
        assert_ne!(hash_bytes(0, b"ab"), hash_bytes(0, b"ab\0"));
        assert_ne!(hash_bytes(0, b"a"), hash_bytes(1, b"a"));
    }
}
