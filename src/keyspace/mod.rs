//! The in-memory keyspace: keys, values, deadlines. Knows nothing of raft or
//! sockets. Writes come in as `WriteOp`s (already ordered by the raft log),
//! reads as `ReadOp`s; both return protocol-neutral `Outcome`s.
//!
//! Determinism: `apply` never reads the clock. It treats a key whose deadline
//! is <= `now_ms` (the replicated clock of the entry) as absent, and turns
//! relative TTLs (`Ttl::In`, `ExpireIn`) into deadlines from that same time.
//!
//! Layout: one hash map per cluster slot. Slot-local maps make
//! COUNTKEYSINSLOT/GETKEYSINSLOT trivial, give SCAN a cursor (the slot index)
//! that survives rehashing, and let a future multi-group setup hand a slot
//! range to another raft group by moving whole maps. Each map has its own
//! randomly seeded hasher: keys are client-chosen, and a fixed seed would let
//! a client craft collisions.

pub mod acl;
mod ops;
mod snapshot;
mod value;

#[cfg(test)]
mod tests;

/// Re-exported: server code matches CONFIG GET patterns through it.
pub use crate::glob::glob_match;
pub use ops::{ExpireCond, KeyspaceError, Outcome, ReadOp, SetCond, Ttl, TtlQuery, WriteOp};

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::glob::{self, Pattern};
use crate::slot::{key_slot, SLOTS};
use value::{Compact, Entry, Key, Value, NO_EXP};

type SlotMap = HashMap<Key, Entry, foldhash::fast::RandomState>;

/// Limits a write is applied under. They travel in each raft log entry
/// (chosen by the leader that proposed it), never from the applying node's
/// configuration, so replicas configured differently still apply the same
/// rule at the same log index and stay identical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum string length produced by APPEND/SETRANGE (proto-max-bulk-len).
    pub proto_max_bulk_len: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: 512 * 1024 * 1024,
        }
    }
}

/// RANDOMKEY looks at most this far into one slot's iteration order, so a
/// slot holding millions of hash-tagged keys cannot make it O(n). The price
/// is that, inside such a slot, only the first keys in iteration order can
/// be picked.
const RANDOM_WINDOW: usize = 1024;
/// RANDOMKEY gives up (Nil) after this many expired picks in a row.
const RANDOM_TRIES: usize = 32;

/// The whole dataset of one node (db 0).
///
/// `Clone` is cheap-ish on purpose: the state machine clones under its lock
/// and snapshots the clone outside it. Short keys are inline (memcpy), long
/// keys and values are shared allocations (refcount bumps).
#[derive(Clone)]
pub struct Keyspace {
    /// Each slot behind an `Arc`: cloning the keyspace for a snapshot is
    /// 16384 reference bumps, and a write after that copies only the one
    /// slot it touches (`Arc::make_mut`), so a snapshot never stalls writers
    /// for a copy of the whole dataset.
    slots: Box<[Arc<SlotMap>]>,
    /// Keys stored, expired-but-not-deleted included.
    len: usize,
    /// Every key that has a deadline, with the deadline (absolute unix ms),
    /// in no particular order. `Entry::exp` is each key's index here, so add/remove are O(1) (swap_remove) and
    /// active expiry can sample uniformly by index.
    /// Shared like the slots; the first deadline change after a snapshot
    /// copies it once.
    expires: Arc<Vec<(Key, u64)>>,
    /// Estimated heap bytes owned by keys and values (tables excluded,
    /// those are computed from capacities on demand).
    heap: usize,
    /// Users set by ACL SETUSER / deleted by ACL DELUSER (replicated, in
    /// snapshots); shared like the slots.
    acl: Arc<acl::AclMap>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("len", &self.len)
            .field("expires", &self.expires.len())
            .finish_non_exhaustive()
    }
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace::new()
    }
}

/// Index of `key`'s map in `Keyspace::slots`.
fn slot_of(key: &[u8]) -> usize {
    usize::from(key_slot(key))
}

fn entry_cost(k: &Key, e: &Entry) -> usize {
    k.heap_size() + e.value.heap_size()
}

fn err(e: KeyspaceError) -> Outcome {
    Outcome::Err(e)
}

/// Bytes a key listing may still add to its reply (see `read_bounded`).
struct ReplyBudget(usize);

impl ReplyBudget {
    /// Charge one listed key: its bytes plus a bulk header's worth.
    fn take(&mut self, key_len: usize) -> Result<(), KeyspaceError> {
        let cost = key_len.saturating_add(16);
        self.0 = self
            .0
            .checked_sub(cost)
            .ok_or(KeyspaceError::ReplyTooLarge)?;
        Ok(())
    }
}

/// Counts and lengths are bounded by memory, so they always fit an i64.
fn int_outcome(v: usize) -> Outcome {
    Outcome::Int(v as i64)
}

/// Shared by GET/MGET/GETDEL...: a stored value as a reply, or WRONGTYPE.
fn str_or_wrongtype(v: &Value) -> Result<&Compact, KeyspaceError> {
    v.as_str().ok_or(KeyspaceError::WrongType)
}

impl Keyspace {
    pub fn new() -> Self {
        // One random seed per keyspace is enough: what matters is that a
        // client cannot predict it. Cloning the state is also much cheaper
        // than seeding 16384 times.
        let hasher = foldhash::fast::RandomState::default();
        let slots = (0..SLOTS)
            .map(|_| Arc::new(SlotMap::with_hasher(hasher.clone())))
            .collect();
        Keyspace {
            slots,
            len: 0,
            expires: Arc::default(),
            heap: 0,
            acl: Arc::default(),
        }
    }

    /// The replicated ACL users (see `acl`).
    pub fn acl_users(&self) -> Arc<acl::AclMap> {
        self.acl.clone()
    }

    // ---- internal storage primitives -------------------------------------

    /// Absolute deadline of an entry, 0 when it has none.
    fn deadline(&self, e: &Entry) -> u64 {
        self.deadline_at(e.exp)
    }

    fn deadline_at(&self, exp: u32) -> u64 {
        if exp == NO_EXP {
            0
        } else {
            self.expires[exp as usize].1
        }
    }

    fn is_expired(&self, e: &Entry, now: u64) -> bool {
        // 0 is never stored as a deadline (a deadline <= now deletes the key
        // instead), so "no deadline" never looks expired.
        e.exp != NO_EXP && self.expires[e.exp as usize].1 <= now
    }

    /// The entry for `key` if present and not expired at `now`.
    fn live(&self, key: &[u8], now: u64) -> Option<&Entry> {
        self.slots[slot_of(key)]
            .get(key)
            .filter(|e| !self.is_expired(e, now))
    }

    /// Like `live`, but removes an expired entry on the way (apply only:
    /// deterministic because `now` comes from the log).
    fn live_mut(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let s = slot_of(key);
        let expired = self.is_expired(self.slots[s].get(key)?, now);
        if expired {
            self.remove(key);
            return None;
        }
        Arc::make_mut(&mut self.slots[s]).get_mut(key)
    }

    /// Removes `key` (expired or not), keeping counters and the expiry index
    /// consistent. Returns the value and the deadline it had.
    fn remove(&mut self, key: &[u8]) -> Option<(Value, u64)> {
        let map = Arc::make_mut(&mut self.slots[slot_of(key)]);
        let (k, e) = map.remove_entry(key)?;
        // hashbrown never shrinks on its own; a cache that had a burst of
        // keys should give the table memory back once they are gone.
        if map.capacity() > 64 && map.capacity() > map.len() * 4 {
            map.shrink_to(map.len() * 2);
        }
        self.len -= 1;
        self.heap -= entry_cost(&k, &e);
        let deadline = self.deadline(&e);
        if e.exp != NO_EXP {
            self.expires_remove(e.exp);
        }
        Some((e.value, deadline))
    }

    fn expires_remove(&mut self, pos: u32) {
        let pos = pos as usize;
        let expires = Arc::make_mut(&mut self.expires);
        expires.swap_remove(pos);
        if expires.capacity() > 1024 && expires.capacity() > expires.len() * 4 {
            expires.shrink_to(expires.len() * 2);
        }
        if let Some((moved, _)) = self.expires.get(pos) {
            let moved = moved.as_bytes();
            if let Some(e) = Arc::make_mut(&mut self.slots[slot_of(moved)]).get_mut(moved) {
                e.exp = pos as u32;
            }
        }
    }

    /// Adds `k` to the expiry index, returning its position.
    fn expires_push(expires: &mut Vec<(Key, u64)>, k: &Key, deadline: u64) -> u32 {
        let pos = u32::try_from(expires.len())
            .ok()
            .filter(|&p| p != NO_EXP)
            .expect("more than 4G keys with a deadline");
        expires.push((k.clone(), deadline));
        pos
    }

    /// Sets the deadline of an existing key (0 = none), updating the index.
    fn set_deadline(&mut self, key: &[u8], deadline: u64) {
        let Some((k, e)) = Arc::make_mut(&mut self.slots[slot_of(key)]).get_key_value_mut(key)
        else {
            return;
        };
        match (e.exp != NO_EXP, deadline != 0) {
            (false, false) => {}
            (true, true) => Arc::make_mut(&mut self.expires)[e.exp as usize].1 = deadline,
            (false, true) => {
                e.exp = Self::expires_push(Arc::make_mut(&mut self.expires), k, deadline)
            }
            (true, false) => {
                let pos = std::mem::replace(&mut e.exp, NO_EXP);
                self.expires_remove(pos);
            }
        }
    }

    /// Stores `value` under `key` with `deadline` (0 = none), replacing any
    /// previous entry.
    fn upsert(&mut self, key: &[u8], value: Value, deadline: u64) {
        let s = slot_of(key);
        if let Some(e) = Arc::make_mut(&mut self.slots[s]).get_mut(key) {
            self.heap = self.heap - e.value.heap_size() + value.heap_size();
            e.value = value;
            self.set_deadline(key, deadline);
        } else {
            self.insert_new(Key::from_slice(key), value, deadline);
        }
    }

    /// Inserts a key known to be absent.
    fn insert_new(&mut self, k: Key, value: Value, deadline: u64) {
        let exp = if deadline != 0 {
            Self::expires_push(Arc::make_mut(&mut self.expires), &k, deadline)
        } else {
            NO_EXP
        };
        let e = Entry { value, exp };
        self.heap += entry_cost(&k, &e);
        Arc::make_mut(&mut self.slots[slot_of(k.as_bytes())]).insert(k, e);
        self.len += 1;
    }

    /// Replaces the value of an existing live key, keeping its deadline.
    fn replace_value(&mut self, key: &[u8], value: Value) {
        if let Some(e) = Arc::make_mut(&mut self.slots[slot_of(key)]).get_mut(key) {
            self.heap = self.heap - e.value.heap_size() + value.heap_size();
            e.value = value;
        }
    }

    /// Test/debug hook: store an arbitrary value (e.g. a non-string one to
    /// exercise WRONGTYPE paths).
    #[cfg(test)]
    fn insert_value(&mut self, key: &[u8], value: Value, deadline: u64) {
        self.upsert(key, value, deadline);
    }

    // ---- writes ------------------------------------------------------------

    /// Apply one replicated write at the proposal's time, under the limits
    /// the proposal carries (both from the log entry, so every replica
    /// computes the same outcome).
    pub fn apply(&mut self, op: &WriteOp, now_ms: u64, limits: Limits) -> Outcome {
        match self.apply_inner(op, now_ms, limits) {
            Ok(o) => o,
            Err(e) => err(e),
        }
    }

    fn apply_inner(
        &mut self,
        op: &WriteOp,
        now: u64,
        limits: Limits,
    ) -> Result<Outcome, KeyspaceError> {
        match op {
            WriteOp::Set {
                key,
                value,
                cond,
                ttl,
                get,
            } => self.op_set(key, value, *cond, *ttl, *get, now),
            WriteOp::MSet { pairs, nx } => {
                if *nx && pairs.iter().any(|(k, _)| self.live(k, now).is_some()) {
                    return Ok(Outcome::Int(0));
                }
                for (k, v) in pairs {
                    self.upsert(k, Value::str_from(v), 0);
                }
                Ok(if *nx { Outcome::Int(1) } else { Outcome::Ok })
            }
            WriteOp::GetDel { key } => {
                let Some(e) = self.live_mut(key, now) else {
                    return Ok(Outcome::Nil);
                };
                let v = str_or_wrongtype(&e.value)?.to_bytes();
                self.remove(key);
                Ok(Outcome::Bulk(v))
            }
            WriteOp::GetEx { key, ttl } => {
                let Some(e) = self.live_mut(key, now) else {
                    return Ok(Outcome::Nil);
                };
                let v = str_or_wrongtype(&e.value)?.to_bytes();
                let exp = e.exp;
                let old = self.deadline_at(exp);
                match ttl.deadline(now, old) {
                    at if at != 0 && at <= now => {
                        self.remove(key);
                    }
                    at if at != old => self.set_deadline(key, at),
                    _ => {}
                }
                Ok(Outcome::Bulk(v))
            }
            WriteOp::Append { key, value } => {
                let max = limits.proto_max_bulk_len;
                let Some(e) = self.live_mut(key, now) else {
                    if value.len() as u64 > max {
                        return Err(KeyspaceError::TooBig);
                    }
                    self.upsert(key, Value::str_from(value), 0);
                    return Ok(int_outcome(value.len()));
                };
                let old = str_or_wrongtype(&e.value)?;
                let total = old.len() + value.len();
                if total as u64 > max {
                    return Err(KeyspaceError::TooBig);
                }
                if value.is_empty() {
                    return Ok(int_outcome(total));
                }
                let mut buf = Vec::with_capacity(total);
                buf.extend_from_slice(old);
                buf.extend_from_slice(value);
                self.replace_value(key, Value::Str(Compact::from_vec(buf)));
                Ok(int_outcome(total))
            }
            WriteOp::IncrBy { key, delta } => {
                let old = match self.live_mut(key, now) {
                    None => None,
                    Some(e) => Some(
                        crate::num::parse_i64(str_or_wrongtype(&e.value)?)
                            .ok_or(KeyspaceError::NotInteger)?,
                    ),
                };
                let new = old
                    .unwrap_or(0)
                    .checked_add(*delta)
                    .ok_or(KeyspaceError::Overflow)?;
                let v = Value::str_from(new.to_string().as_bytes());
                if old.is_some() {
                    self.replace_value(key, v);
                } else {
                    self.upsert(key, v, 0);
                }
                Ok(Outcome::Int(new))
            }
            WriteOp::IncrByFloat { key, delta } => {
                let old = match self.live_mut(key, now) {
                    None => None,
                    Some(e) => Some(
                        crate::num::parse_f64(str_or_wrongtype(&e.value)?)
                            .ok_or(KeyspaceError::NotFloat)?,
                    ),
                };
                let new = old.unwrap_or(0.0) + *delta;
                if !new.is_finite() {
                    return Err(KeyspaceError::NanOrInfinity);
                }
                let text = Bytes::from(crate::num::format_float(new).into_bytes());
                let v = Value::str_from(&text);
                if old.is_some() {
                    self.replace_value(key, v);
                } else {
                    self.upsert(key, v, 0);
                }
                Ok(Outcome::Bulk(text))
            }
            WriteOp::SetRange { key, offset, value } => {
                self.op_setrange(key, *offset, value, now, limits.proto_max_bulk_len)
            }
            WriteOp::Del { keys } => {
                let mut n = 0;
                for k in keys {
                    if self.live_mut(k, now).is_some() {
                        self.remove(k);
                        n += 1;
                    }
                }
                Ok(int_outcome(n))
            }
            WriteOp::Rename { src, dst, nx } => {
                if self.live_mut(src, now).is_none() {
                    return Err(KeyspaceError::NoSuchKey);
                }
                if src == dst {
                    return Ok(if *nx { Outcome::Int(0) } else { Outcome::Ok });
                }
                if self.live_mut(dst, now).is_some() {
                    if *nx {
                        return Ok(Outcome::Int(0));
                    }
                    self.remove(dst);
                }
                let (value, deadline) = self.remove(src).expect("checked live above");
                // The deadline travels with the value (Redis semantics).
                self.insert_new(Key::from_slice(dst), value, deadline);
                Ok(if *nx { Outcome::Int(1) } else { Outcome::Ok })
            }
            WriteOp::Expire { key, at_ms, cond } => self.op_expire(key, *at_ms, *cond, now),
            WriteOp::ExpireIn { key, ms, cond } => {
                let at = (i128::from(now) + i128::from(*ms)).clamp(0, i128::from(u64::MAX));
                self.op_expire(key, at as u64, *cond, now)
            }
            WriteOp::Persist { key } => match self.live_mut(key, now) {
                Some(e) if e.exp != NO_EXP => {
                    self.set_deadline(key, 0);
                    Ok(Outcome::Int(1))
                }
                _ => Ok(Outcome::Int(0)),
            },
            WriteOp::AclSetUser { name, rules } => {
                let name = String::from_utf8_lossy(name).into_owned();
                let user = acl::AclUser::from_rules(&name, rules);
                Arc::make_mut(&mut self.acl).insert(name, Some(Arc::new(user)));
                Ok(Outcome::Ok)
            }
            WriteOp::AclDelUser { names } => {
                let map = Arc::make_mut(&mut self.acl);
                for n in names {
                    map.insert(String::from_utf8_lossy(n).into_owned(), None);
                }
                Ok(Outcome::Ok)
            }
            WriteOp::FlushAll => {
                let hasher = foldhash::fast::RandomState::default();
                for m in self.slots.iter_mut() {
                    // Drop the tables too: a flushed cache should give its
                    // memory back, not keep 16384 grown maps.
                    *m = Arc::new(SlotMap::with_hasher(hasher.clone()));
                }
                self.expires = Arc::default();
                self.len = 0;
                self.heap = 0;
                Ok(Outcome::Ok)
            }
            WriteOp::DeleteExpired { keys } => {
                let mut n = 0;
                for k in keys {
                    let expired = self.slots[slot_of(k)]
                        .get(&k[..])
                        .is_some_and(|e| self.is_expired(e, now));
                    if expired {
                        self.remove(k);
                        n += 1;
                    }
                }
                Ok(int_outcome(n))
            }
        }
    }

    /// EXPIRE family with an absolute deadline: Int 1 if applied, 0 if the
    /// key is missing or `cond` is false; a deadline <= now deletes the key.
    fn op_expire(
        &mut self,
        key: &[u8],
        at_ms: u64,
        cond: ExpireCond,
        now: u64,
    ) -> Result<Outcome, KeyspaceError> {
        let Some(e) = self.live_mut(key, now) else {
            return Ok(Outcome::Int(0));
        };
        let exp = e.exp;
        let cur = self.deadline_at(exp);
        let ok = match cond {
            ExpireCond::Always => true,
            ExpireCond::Nx => cur == 0,
            ExpireCond::Xx => cur != 0,
            // No deadline is infinite: nothing is greater, all less.
            ExpireCond::Gt => cur != 0 && at_ms > cur,
            ExpireCond::Lt => cur == 0 || at_ms < cur,
        };
        if !ok {
            return Ok(Outcome::Int(0));
        }
        if at_ms <= now {
            self.remove(key);
        } else {
            self.set_deadline(key, at_ms);
        }
        Ok(Outcome::Int(1))
    }

    fn op_set(
        &mut self,
        key: &[u8],
        value: &[u8],
        cond: SetCond,
        ttl: Ttl,
        get: bool,
        now: u64,
    ) -> Result<Outcome, KeyspaceError> {
        let (exists, old_deadline, old) = match self.live_mut(key, now) {
            None => (false, 0, None),
            Some(e) => {
                let old = if get {
                    Some(str_or_wrongtype(&e.value)?.to_bytes())
                } else {
                    None
                };
                let exp = e.exp;
                (true, self.deadline_at(exp), old)
            }
        };
        let reply_old = || match &old {
            Some(b) => Outcome::Bulk(b.clone()),
            None => Outcome::Nil,
        };
        let allowed = match cond {
            SetCond::Always => true,
            SetCond::IfAbsent => !exists,
            SetCond::IfPresent => exists,
        };
        if !allowed {
            return Ok(if get { reply_old() } else { Outcome::Nil });
        }
        match ttl.deadline(now, old_deadline) {
            // A deadline already past: the write happens and is immediately
            // expired, i.e. the key ends up absent.
            at if at != 0 && at <= now => {
                self.remove(key);
            }
            at => self.upsert(key, Value::str_from(value), at),
        }
        Ok(if get { reply_old() } else { Outcome::Ok })
    }

    fn op_setrange(
        &mut self,
        key: &[u8],
        offset: u64,
        value: &[u8],
        now: u64,
        max: u64,
    ) -> Result<Outcome, KeyspaceError> {
        let too_big = || {
            offset
                .checked_add(value.len() as u64)
                .is_none_or(|end| end > max)
        };
        let Some(e) = self.live_mut(key, now) else {
            if value.is_empty() {
                return Ok(Outcome::Int(0));
            }
            if too_big() {
                return Err(KeyspaceError::TooBig);
            }
            let mut buf = vec![0u8; offset as usize + value.len()];
            buf[offset as usize..].copy_from_slice(value);
            let n = buf.len();
            self.upsert(key, Value::Str(Compact::from_vec(buf)), 0);
            return Ok(int_outcome(n));
        };
        let old = str_or_wrongtype(&e.value)?;
        if value.is_empty() {
            return Ok(int_outcome(old.len()));
        }
        if too_big() {
            return Err(KeyspaceError::TooBig);
        }
        let end = offset as usize + value.len();
        let mut buf = Vec::with_capacity(end.max(old.len()));
        buf.extend_from_slice(old);
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset as usize..end].copy_from_slice(value);
        let n = buf.len();
        self.replace_value(key, Value::Str(Compact::from_vec(buf)));
        Ok(int_outcome(n))
    }

    // ---- reads -------------------------------------------------------------

    /// Evaluate a read; keys whose deadline is <= `now_ms` are invisible.
    pub fn read(&self, op: &ReadOp, now_ms: u64) -> Outcome {
        self.read_bounded(op, now_ms, usize::MAX)
    }

    /// `read`, but key listings (KEYS, SCAN, CLUSTER GETKEYSINSLOT) stop with
    /// `ReplyTooLarge` as soon as their reply would exceed `max_reply`
    /// bytes, so a huge listing is never materialised for a client that
    /// could not be sent it anyway. Values are shared, not copied, so other
    /// reads cost little until they are encoded.
    pub fn read_bounded(&self, op: &ReadOp, now_ms: u64, max_reply: usize) -> Outcome {
        let mut budget = ReplyBudget(max_reply);
        match self.read_inner(op, now_ms, &mut budget) {
            Ok(o) => o,
            Err(e) => err(e),
        }
    }

    fn read_inner(
        &self,
        op: &ReadOp,
        now: u64,
        budget: &mut ReplyBudget,
    ) -> Result<Outcome, KeyspaceError> {
        Ok(match op {
            ReadOp::Get { key } => match self.live(key, now) {
                None => Outcome::Nil,
                Some(e) => Outcome::Bulk(str_or_wrongtype(&e.value)?.to_bytes()),
            },
            ReadOp::MGet { keys } => Outcome::Array(
                keys.iter()
                    .map(|k| match self.live(k, now).and_then(|e| e.value.as_str()) {
                        Some(b) => Outcome::Bulk(b.to_bytes()),
                        None => Outcome::Nil,
                    })
                    .collect(),
            ),
            ReadOp::StrLen { key } => match self.live(key, now) {
                None => Outcome::Int(0),
                Some(e) => int_outcome(str_or_wrongtype(&e.value)?.len()),
            },
            ReadOp::GetRange { key, start, end } => {
                let empty = Outcome::Bulk(Bytes::new());
                let Some(e) = self.live(key, now) else {
                    return Ok(empty);
                };
                let s = str_or_wrongtype(&e.value)?;
                match getrange_bounds(s.len(), *start, *end) {
                    Some((a, b)) => Outcome::Bulk(Bytes::copy_from_slice(&s[a..b])),
                    None => empty,
                }
            }
            ReadOp::Exists { keys } => {
                int_outcome(keys.iter().filter(|k| self.live(k, now).is_some()).count())
            }
            ReadOp::Type { key } => Outcome::Status(
                self.live(key, now)
                    .map_or("none", |e| e.value.type_name())
                    .to_string(),
            ),
            ReadOp::Ttl { key, query } => {
                let Some(e) = self.live(key, now) else {
                    return Ok(Outcome::Int(-2));
                };
                let deadline = self.deadline(e);
                if deadline == 0 {
                    return Ok(Outcome::Int(-1));
                }
                let ms = match query {
                    TtlQuery::Seconds | TtlQuery::Millis => deadline - now,
                    TtlQuery::AbsSeconds | TtlQuery::AbsMillis => deadline,
                };
                let v = match query {
                    // Redis rounds to the nearest second, EXPIRETIME too.
                    TtlQuery::Seconds | TtlQuery::AbsSeconds => ms.saturating_add(500) / 1000,
                    TtlQuery::Millis | TtlQuery::AbsMillis => ms,
                };
                Outcome::Int(i64::try_from(v).unwrap_or(i64::MAX))
            }
            ReadOp::Keys { pattern } => Outcome::Array(
                self.keys_matching(pattern, now, budget)?
                    .into_iter()
                    .map(Outcome::Bulk)
                    .collect(),
            ),
            ReadOp::Scan {
                cursor,
                pattern,
                count,
                type_name,
            } => self.scan(
                *cursor,
                pattern.as_deref(),
                *count,
                type_name.as_deref(),
                now,
                budget,
            )?,
            ReadOp::RandomKey => match self.random_key(now) {
                Some(k) => Outcome::Bulk(k),
                None => Outcome::Nil,
            },
            ReadOp::DbSize => int_outcome(self.len),
            ReadOp::CountKeysInSlot { slot } => {
                int_outcome(self.slots.get(*slot as usize).map_or(0, |m| m.len()))
            }
            // Like Redis, both slot commands report stored keys, including
            // expired ones not yet deleted (they are what a migration would move).
            ReadOp::GetKeysInSlot { slot, count } => {
                let mut keys = Vec::new();
                for k in self
                    .slots
                    .get(*slot as usize)
                    .into_iter()
                    .flat_map(|m| m.keys())
                    .take(*count)
                {
                    budget.take(k.len())?;
                    keys.push(Outcome::Bulk(k.to_bytes()));
                }
                Outcome::Array(keys)
            }
        })
    }

    fn keys_matching(
        &self,
        pattern: &[u8],
        now: u64,
        budget: &mut ReplyBudget,
    ) -> Result<Vec<Bytes>, KeyspaceError> {
        if let Some(lit) = glob::pattern_literal(pattern) {
            return Ok(self
                .live(lit, now)
                .map(|_| Bytes::copy_from_slice(lit))
                .into_iter()
                .collect());
        }
        let pat = Pattern::new(pattern);
        let all = pat.matches_all();
        let slots: Box<dyn Iterator<Item = &SlotMap>> = match glob::pattern_hash_prefix(pattern) {
            Some(prefix) => Box::new(std::iter::once(&*self.slots[slot_of(prefix)])),
            None => Box::new(self.slots.iter().map(|m| &**m)),
        };
        let mut out = Vec::new();
        for m in slots {
            for (k, e) in m.iter() {
                if !self.is_expired(e, now) && (all || pat.matches(k.as_bytes())) {
                    budget.take(k.len())?;
                    out.push(k.to_bytes());
                }
            }
        }
        Ok(out)
    }

    /// SCAN over slots: the cursor is the next slot to visit. Whole slots are
    /// returned, so every key present for the whole iteration is seen
    /// exactly once whatever happens to other keys (a hash-bucket cursor
    /// needs Redis's reverse-binary trick for that; slots never resize).
    /// The price: one huge slot (hash tags) comes back in one reply.
    fn scan(
        &self,
        cursor: u64,
        pattern: Option<&[u8]>,
        count: usize,
        type_name: Option<&[u8]>,
        now: u64,
        budget: &mut ReplyBudget,
    ) -> Result<Outcome, KeyspaceError> {
        let pat = pattern.map(Pattern::new).filter(|p| !p.matches_all());
        let count = count.max(1);
        let end = self.slots.len(); // one map per slot
        let mut slot = usize::try_from(cursor).unwrap_or(end);
        if let (Some(prefix), true) = (pattern.and_then(glob::pattern_hash_prefix), slot < end) {
            // Only one slot can match: visit it if the cursor hasn't passed it.
            let only = slot_of(prefix);
            slot = if slot <= only { only } else { end };
        }
        let single = pattern.and_then(glob::pattern_hash_prefix).is_some();
        let mut seen = 0usize;
        let mut keys = Vec::new();
        while slot < end {
            let m = &self.slots[slot];
            seen += m.len();
            for (k, e) in m.iter() {
                if self.is_expired(e, now) {
                    continue;
                }
                if let Some(p) = &pat {
                    if !p.matches(k.as_bytes()) {
                        continue;
                    }
                }
                if let Some(t) = type_name {
                    if !e.value.type_name().as_bytes().eq_ignore_ascii_case(t) {
                        continue;
                    }
                }
                budget.take(k.len())?;
                keys.push(Outcome::Bulk(k.to_bytes()));
            }
            slot += 1;
            if single {
                slot = end;
            }
            if seen >= count {
                break;
            }
        }
        let next = if slot >= end { 0 } else { slot };
        Ok(Outcome::Array(vec![
            Outcome::Bulk(Bytes::from(next.to_string())),
            Outcome::Array(keys),
        ]))
    }

    fn random_key(&self, now: u64) -> Option<Bytes> {
        if self.len == 0 {
            return None;
        }
        let mut rng = rand::rng();
        for _ in 0..RANDOM_TRIES {
            // Start at a random slot and walk to the next non-empty one;
            // terminates because len > 0.
            let mut s = rng.random_range(0..self.slots.len());
            while self.slots[s].is_empty() {
                s = (s + 1) % self.slots.len();
            }
            let m = &self.slots[s];
            let i = rng.random_range(0..m.len().min(RANDOM_WINDOW));
            if let Some((k, e)) = m.iter().nth(i) {
                if !self.is_expired(e, now) {
                    return Some(k.to_bytes());
                }
            }
        }
        None
    }

    // ---- bookkeeping -------------------------------------------------------

    /// Number of keys stored (expired-but-not-yet-deleted included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys with a deadline.
    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    /// One round of Redis's active-expiry sampling: look at up to `sample`
    /// random keys that have a deadline; return how many were looked at and
    /// those already expired at `now_ms`.
    pub fn sample_expired(&self, now_ms: u64, sample: usize) -> (usize, Vec<bytes::Bytes>) {
        let n = self.expires.len();
        let mut expired = Vec::new();
        // The index holds every deadline, so no map lookup is needed.
        let check = |(k, deadline): &(Key, u64), expired: &mut Vec<Bytes>| {
            let kb = k.as_bytes();
            if *deadline <= now_ms && !expired.iter().any(|x: &Bytes| x == kb) {
                expired.push(k.to_bytes());
            }
        };
        if n <= sample {
            for k in self.expires.iter() {
                check(k, &mut expired);
            }
            return (n, expired);
        }
        let mut rng = rand::rng();
        for _ in 0..sample {
            check(&self.expires[rng.random_range(0..n)], &mut expired);
        }
        (sample, expired)
    }

    /// Approximate bytes used by keys, values and bookkeeping.
    pub fn used_memory(&self) -> usize {
        let bucket = std::mem::size_of::<(Key, Entry)>() + 1;
        let tables: usize = self
            .slots
            .iter()
            .map(|m| {
                let cap = m.capacity();
                // hashbrown allocates a power-of-two bucket count >= cap*8/7.
                let buckets = if cap == 0 {
                    0
                } else {
                    (cap * 8 / 7).next_power_of_two()
                };
                buckets * bucket + std::mem::size_of::<SlotMap>()
            })
            .sum();
        self.heap + tables + self.expires.capacity() * std::mem::size_of::<(Key, u64)>()
    }

    /// Order-independent digest of the contents (keys, values, deadlines, replicated ACL users), so
    /// replicas at the same applied index can be compared. Uses a fixed,
    /// hand-written hash (not the maps' random seeds) so every node agrees.
    pub fn digest(&self) -> u64 {
        let mut acc = 0u64;
        for m in self.slots.iter() {
            for (k, e) in m.iter() {
                acc = acc.wrapping_add(snapshot::entry_hash(k.as_bytes(), e, self.deadline(e)));
            }
        }
        // Replicated ACL users count too (nothing when there are none, so
        // a keyspace's digest is what it always was).
        for (name, user) in self.acl.iter() {
            acc = acc.wrapping_add(snapshot::acl_hash(name, user.as_deref()));
        }
        snapshot::fmix64(acc ^ self.len as u64)
    }

    /// Serialize the whole keyspace (streaming; no full in-memory copy).
    pub fn write_snapshot<W: io::Write>(&self, w: W) -> io::Result<()> {
        snapshot::write(self, w)
    }

    /// Rebuild a keyspace from `write_snapshot` output. Corrupt input is an
    /// `InvalidData` error, never a panic, and never a huge allocation. It
    /// depends on nothing but the bytes: a node configured with a smaller
    /// `proto-max-bulk-len` than the leader still loads the leader's state.
    pub fn read_snapshot<R: io::Read>(r: R) -> io::Result<Self> {
        snapshot::read(r)
    }
}

/// Redis's GETRANGE index rules; `None` means the empty string.
fn getrange_bounds(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let len_i = len as i128;
    let (mut s, mut e) = (start as i128, end as i128);
    if s < 0 {
        s += len_i;
    }
    if e < 0 {
        e += len_i;
    }
    s = s.max(0);
    e = e.max(0);
    if e >= len_i {
        e = len_i - 1;
    }
    if len == 0 || s > e {
        return None;
    }
    Some((s as usize, e as usize + 1))
}
