//! Per-command statistics (`INFO commandstats`) and error statistics
//! (`INFO errorstats`), as Redis 7 keeps them.
//!
//! One row of atomics per command-table row (`table::row`), so counting a
//! call takes no lock and allocates nothing. Error types (the first word
//! of an error reply: `ERR`, `WRONGTYPE`, `MOVED`...) are an open set and
//! are kept in a small map behind a lock, touched only when an error reply
//! is sent; like Redis, at most `MAX_ERROR_TYPES` distinct types are
//! tracked (later new ones are not listed, `total_error_replies` still
//! counts them).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::command::table::{self, CommandSpec};

/// Distinct error types listed in `INFO errorstats` (Redis's limit).
pub const MAX_ERROR_TYPES: usize = 128;

/// Histogram buckets: 0..=3 us exactly, then 4 per power of two (each
/// bucket at most 25% wide), up to `u64::MAX`.
const BUCKETS: usize = 4 + 62 * 4;

/// The bucket of `usec`.
fn bucket(usec: u64) -> usize {
    if usec < 4 {
        return usec as usize;
    }
    let e = 63 - usec.leading_zeros() as usize;
    let sub = ((usec >> (e - 2)) & 3) as usize;
    4 + (e - 2) * 4 + sub
}

/// The largest value in bucket `i`.
fn bucket_top(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let e = (i - 4) / 4 + 2;
    let sub = ((i - 4) % 4) as u64;
    (((4 + sub + 1) as u128) << (e - 2)).saturating_sub(1) as u64
}

/// Percentiles shown by `INFO latencystats` (Redis's default
/// `latency-tracking-info-percentiles`).
const PERCENTILES: [(&str, f64); 3] = [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)];

#[derive(Debug)]
struct Row {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Call durations (`INFO latencystats`).
    hist: [AtomicU64; BUCKETS],
}

impl Default for Row {
    fn default() -> Self {
        Row {
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            hist: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Row {
    /// The value at or below which `p` percent of calls fell (a bucket's
    /// top); `None` without calls.
    fn percentile(&self, counts: &[u64], p: f64) -> Option<u64> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((p / 100.0 * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Some(bucket_top(i));
            }
        }
        self.hist.len().checked_sub(1).map(bucket_top)
    }
}

#[derive(Debug)]
pub struct CommandStats {
    rows: Box<[Row]>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Default for CommandStats {
    fn default() -> Self {
        CommandStats {
            rows: (0..table::row_count()).map(|_| Row::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
        }
    }
}

impl CommandStats {
    fn row(&self, spec: &CommandSpec) -> &Row {
        &self.rows[table::row(spec)]
    }

    /// The command ran (its reply was an error if `failed`), taking `took`.
    pub fn call(&self, spec: &CommandSpec, took: Duration, failed: bool) {
        let r = self.row(spec);
        r.calls.fetch_add(1, Ordering::Relaxed);
        let usec = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        r.usec.fetch_add(usec, Ordering::Relaxed);
        r.hist[bucket(usec)].fetch_add(1, Ordering::Relaxed);
        if failed {
            r.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The command was refused before it ran (arity, NOAUTH, NOPERM,
    /// MOVED...).
    pub fn rejected(&self, spec: &CommandSpec) {
        self.row(spec).rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// One error reply with this text (counted under its first word).
    pub fn error(&self, text: &str) {
        let kind = text.split(' ').next().unwrap_or("");
        let mut errors = self.errors.lock();
        if let Some(n) = errors.get_mut(kind) {
            *n += 1;
        } else if errors.len() < MAX_ERROR_TYPES {
            errors.insert(kind.to_string(), 1);
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for r in self.rows.iter() {
            r.calls.store(0, Ordering::Relaxed);
            r.usec.store(0, Ordering::Relaxed);
            r.rejected.store(0, Ordering::Relaxed);
            r.failed.store(0, Ordering::Relaxed);
            for b in &r.hist {
                b.store(0, Ordering::Relaxed);
            }
        }
        self.errors.lock().clear();
    }

    /// `# Commandstats`, Redis 7's lines, in command-table order; only
    /// commands called or refused since the last reset.
    pub fn commandstats_section(&self) -> String {
        let mut out = String::from("# Commandstats\r\n");
        for (spec, r) in table::all_specs().zip(self.rows.iter()) {
            let calls = r.calls.load(Ordering::Relaxed);
            let usec = r.usec.load(Ordering::Relaxed);
            let rejected = r.rejected.load(Ordering::Relaxed);
            let failed = r.failed.load(Ordering::Relaxed);
            if calls == 0 && rejected == 0 && failed == 0 {
                continue;
            }
            let per_call = if calls == 0 {
                0.0
            } else {
                usec as f64 / calls as f64
            };
            let _ = write!(
                out,
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                spec.name
            );
        }
        out.push_str("\r\n");
        out
    }

    /// `# Latencystats`: `latency_percentiles_usec_get:p50=..,p99=..,p99.9=..`
    /// for every command called since the last reset. Values are the top
    /// of the histogram bucket the percentile falls in (at most 25% above
    /// the true value).
    pub fn latencystats_section(&self) -> String {
        let mut out = String::from("# Latencystats\r\n");
        for (spec, r) in table::all_specs().zip(self.rows.iter()) {
            let counts: Vec<u64> = r.hist.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            if counts.iter().all(|&n| n == 0) {
                continue;
            }
            let _ = write!(out, "latency_percentiles_usec_{}:", spec.name);
            for (i, (label, p)) in PERCENTILES.iter().enumerate() {
                let v = r.percentile(&counts, *p).unwrap_or(0);
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(out, "{sep}{label}={v}.000");
            }
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out
    }

    /// `# Errorstats`: `errorstat_ERR:count=N`, by name.
    pub fn errorstats_section(&self) -> String {
        let mut out = String::from("# Errorstats\r\n");
        for (kind, n) in self.errors.lock().iter() {
            let _ = write!(out, "errorstat_{kind}:count={n}\r\n");
        }
        out.push_str("\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_within_a_quarter() {
        for v in (0..5000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = bucket(v);
            assert!(i < BUCKETS, "{v}");
            let top = bucket_top(i);
            assert!(top >= v, "{v} -> {i} top {top}");
            assert!(i == 0 || bucket_top(i - 1) < v, "{v}");
            assert!(top - v <= v / 4, "{v}: {top}");
        }
    }

    #[test]
    fn counts_and_resets() {
        let s = CommandStats::default();
        let get = table::lookup(b"get").unwrap();
        let list = table::lookup_full(b"client|list").unwrap();
        s.call(get, Duration::from_micros(3), false);
        s.call(get, Duration::from_micros(4), true);
        s.rejected(list);
        s.error("ERR unknown command");
        s.error("MOVED 12 127.0.0.1:7000");
        s.error("ERR syntax error");
        let c = s.commandstats_section();
        assert!(
            c.contains(
                "cmdstat_get:calls=2,usec=7,usec_per_call=3.50,rejected_calls=0,failed_calls=1\r\n"
            ),
            "{c}"
        );
        assert!(
            c.contains("cmdstat_client|list:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n"),
            "{c}"
        );
        assert_eq!(
            s.errorstats_section(),
            "# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_MOVED:count=1\r\n\r\n"
        );
        assert_eq!(
            s.latencystats_section(),
            "# Latencystats\r\nlatency_percentiles_usec_get:p50=3.000,p99=4.000,p99.9=4.000\r\n\r\n"
        );
        s.reset();
        assert_eq!(s.commandstats_section(), "# Commandstats\r\n\r\n");
        assert_eq!(s.latencystats_section(), "# Latencystats\r\n\r\n");
        assert_eq!(s.errorstats_section(), "# Errorstats\r\n\r\n");
    }
}
