//! The latency monitor (LATENCY LATEST / HISTORY / RESET), as Redis's:
//! events whose duration reaches `latency-monitor-threshold` milliseconds
//! are sampled, one sample per event per second (the largest), the last
//! `HISTORY_LEN` kept. One monitor per process, so `raft/` (fsync, apply)
//! and `server/` (commands) record into the same place; this module
//! imports nothing of the crate.
//!
//! With the threshold 0 (the default) the monitor is off and recording
//! costs one atomic load.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const HISTORY_LEN: usize = 160;

/// Events recorded: a non-fast command, a fast command, a raft log fsync,
/// a state machine apply batch.
pub const COMMAND: &str = "command";
pub const FAST_COMMAND: &str = "fast-command";
pub const FSYNC: &str = "fsync";
pub const APPLY: &str = "apply";

#[derive(Debug, Default, Clone)]
pub struct Series {
    /// (unix seconds, milliseconds), oldest first.
    pub samples: VecDeque<(u64, u64)>,
    /// Largest sample since the last reset.
    pub max: u64,
}

static THRESHOLD_MS: AtomicU64 = AtomicU64::new(0);
static EVENTS: Mutex<BTreeMap<&'static str, Series>> = Mutex::new(BTreeMap::new());

/// `latency-monitor-threshold` (ms; 0 = off), set once at startup.
pub fn set_threshold_ms(ms: u64) {
    THRESHOLD_MS.store(ms, Ordering::Relaxed);
}

/// Record `event` if it took at least the threshold.
pub fn record(event: &'static str, took: Duration) {
    let threshold = THRESHOLD_MS.load(Ordering::Relaxed);
    if threshold == 0 {
        return;
    }
    let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    if ms < threshold {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    add_sample(event, now, ms);
}

fn add_sample(event: &'static str, now: u64, ms: u64) {
    let mut events = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = events.entry(event).or_default();
    s.max = s.max.max(ms);
    match s.samples.back_mut() {
        Some((t, v)) if *t == now => *v = (*v).max(ms),
        _ => {
            s.samples.push_back((now, ms));
            if s.samples.len() > HISTORY_LEN {
                s.samples.pop_front();
            }
        }
    }
}

/// Every event with samples, by name.
pub fn events() -> Vec<(&'static str, Series)> {
    let events = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    events.iter().map(|(n, s)| (*n, s.clone())).collect()
}

/// One event's samples.
pub fn history(event: &str) -> Option<Series> {
    let events = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    events.get(event).cloned()
}

/// LATENCY RESET [event ...]: forget these events (all if none); how many
/// were forgotten.
pub fn reset(names: &[String]) -> usize {
    let mut events = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    if names.is_empty() {
        let n = events.len();
        events.clear();
        return n;
    }
    let before = events.len();
    events.retain(|n, _| !names.iter().any(|w| w.eq_ignore_ascii_case(n)));
    before - events.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeping_the_max() {
        add_sample("test-event", 100, 5);
        add_sample("test-event", 100, 3);
        add_sample("test-event", 101, 2);
        let s = history("test-event").unwrap();
        assert_eq!(s.samples, [(100, 5), (101, 2)]);
        assert_eq!(s.max, 5);
        for t in 0..200 {
            add_sample("test-event", 200 + t, 1);
        }
        assert_eq!(history("test-event").unwrap().samples.len(), HISTORY_LEN);
        assert_eq!(reset(&["TEST-EVENT".into()]), 1);
        assert!(history("test-event").is_none());
    }
}
