//! SLOWLOG, as Redis keeps it: per node, the last `slowlog-max-len`
//! commands that took at least `slowlog-log-slower-than` microseconds.
//!
//! The threshold is checked first, without a lock: a command under it
//! costs one comparison.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::protocol::Reply;

/// At most this many arguments are kept (the last one then says how
/// many more there were), as Redis's `SLOWLOG_ENTRY_MAX_ARGC`.
pub const MAX_ARGC: usize = 32;
/// Each argument is cut to this many bytes, as `SLOWLOG_ENTRY_MAX_STRING`.
pub const MAX_STRING: usize = 128;

#[derive(Debug)]
struct Entry {
    id: u64,
    unix_secs: u64,
    usec: u64,
    args: Vec<Bytes>,
    addr: String,
    name: String,
}

#[derive(Debug, Default)]
struct Log {
    next_id: u64,
    /// Newest first.
    entries: VecDeque<Entry>,
}

#[derive(Debug)]
pub struct SlowLog {
    /// Microseconds; negative = off.
    threshold: i64,
    max_len: usize,
    log: Mutex<Log>,
}

impl SlowLog {
    pub fn new(threshold: i64, max_len: usize) -> SlowLog {
        SlowLog {
            threshold,
            max_len,
            log: Mutex::new(Log::default()),
        }
    }

    /// Whether a command that took `took` is logged.
    pub fn is_slow(&self, took: Duration) -> bool {
        u64::try_from(self.threshold)
            .is_ok_and(|t| u64::try_from(took.as_micros()).unwrap_or(u64::MAX) >= t)
    }

    /// Log this command line if it took long enough.
    pub fn record(&self, args: &[Bytes], took: Duration, addr: &str, name: &str) {
        if !self.is_slow(took) || self.max_len == 0 {
            return;
        }
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let argc = args.len().min(MAX_ARGC);
        let mut kept: Vec<Bytes> = Vec::with_capacity(argc);
        for (i, a) in args.iter().take(argc).enumerate() {
            if i == MAX_ARGC - 1 && args.len() > MAX_ARGC {
                let more = args.len() - MAX_ARGC + 1;
                kept.push(Bytes::from(format!("... ({more} more arguments)")));
            } else if a.len() > MAX_STRING {
                let mut cut = a[..MAX_STRING].to_vec();
                cut.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                kept.push(Bytes::from(cut));
            } else {
                kept.push(a.clone());
            }
        }
        let mut log = self.log.lock();
        let id = log.next_id;
        log.next_id += 1;
        log.entries.push_front(Entry {
            id,
            unix_secs,
            usec: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            args: kept,
            addr: addr.to_string(),
            name: name.to_string(),
        });
        log.entries.truncate(self.max_len);
    }

    /// SLOWLOG GET [count]: the newest `count` entries (all if `None`).
    pub fn get(&self, count: Option<usize>) -> Reply {
        let log = self.log.lock();
        let n = count.unwrap_or(usize::MAX);
        let bulk = |b: &[u8]| Reply::Bulk(Bytes::copy_from_slice(b));
        Reply::Array(
            log.entries
                .iter()
                .take(n)
                .map(|e| {
                    Reply::Array(vec![
                        Reply::Int(e.id as i64),
                        Reply::Int(e.unix_secs as i64),
                        Reply::Int(i64::try_from(e.usec).unwrap_or(i64::MAX)),
                        Reply::Array(e.args.iter().map(|a| Reply::Bulk(a.clone())).collect()),
                        bulk(e.addr.as_bytes()),
                        bulk(e.name.as_bytes()),
                    ])
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.log.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.log.lock().entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|a| Bytes::copy_from_slice(a)).collect()
    }

    #[test]
    fn threshold_limits_and_truncation() {
        let off = SlowLog::new(-1, 10);
        off.record(&args(&[b"get", b"k"]), Duration::from_secs(9), "a", "");
        assert!(off.is_empty());

        let log = SlowLog::new(10, 2);
        log.record(&args(&[b"get", b"k"]), Duration::from_micros(9), "a", "");
        assert!(log.is_empty());
        for _ in 0..3 {
            log.record(&args(&[b"get", b"k"]), Duration::from_micros(10), "a", "n");
        }
        assert_eq!(log.len(), 2);
        let Reply::Array(entries) = log.get(Some(1)) else {
            panic!()
        };
        assert_eq!(entries.len(), 1);
        let Reply::Array(e) = &entries[0] else {
            panic!()
        };
        // Newest first: ids 0, 1, 2 were given, 2 is shown.
        assert_eq!(e[0], Reply::Int(2));
        assert_eq!(e[2], Reply::Int(10));
        log.reset();
        assert!(log.is_empty());

        let long = vec![b'x'; 200];
        let mut many: Vec<&[u8]> = vec![b"mset", &long];
        many.extend(std::iter::repeat_n(&b"v"[..], 40));
        let log = SlowLog::new(0, 5);
        log.record(&args(&many), Duration::ZERO, "a", "");
        let Reply::Array(entries) = log.get(None) else {
            panic!()
        };
        let Reply::Array(e) = &entries[0] else {
            panic!()
        };
        let Reply::Array(kept) = &e[3] else { panic!() };
        assert_eq!(kept.len(), MAX_ARGC);
        let mut cut = vec![b'x'; 128];
        cut.extend_from_slice(b"... (72 more bytes)");
        assert_eq!(kept[1], Reply::Bulk(Bytes::from(cut)));
        assert_eq!(
            kept[31],
            Reply::Bulk(Bytes::from_static(b"... (11 more arguments)"))
        );
    }
}
