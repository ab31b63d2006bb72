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

#[derive(Debug, Default)]
struct Row {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
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
        s.reset();
        assert_eq!(s.commandstats_section(), "# Commandstats\r\n\r\n");
        assert_eq!(s.errorstats_section(), "# Errorstats\r\n\r\n");
    }
}
