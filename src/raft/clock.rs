//! This node's estimate of the replicated clock (see docs/time.md).
//!
//! The replicated clock is the `now_ms` carried by each log entry; the state
//! machine applies entries at `max(previous, now_ms)`. What this module
//! decides is which `now_ms` a leader proposes, and what "now" means for
//! local reads (TTL/PTTL, hiding expired keys) and active expiry:
//!
//! * the estimate advances with this process's **monotonic** clock
//!   (`Instant`), never with the wall clock, so an NTP step or a manual
//!   `date -s` cannot make it jump;
//! * every applied entry pulls the estimate up to at least that entry's
//!   clock (`observe`): a follower follows the leader, and a node that takes
//!   over continues from the last clock it saw plus the monotonic time since
//!   it saw it — never behind the replicated clock, so nothing reappears;
//! * the wall clock only **seeds** the clock of a brand-new cluster and
//!   **nudges** a leader's estimate forward when it is ahead by at most
//!   `max_skew_ms` (keeping the replicated clock near real time, which is
//!   what EXAT/PXAT/EXPIREAT compare against). A wall clock further ahead,
//!   or behind, is logged and ignored: never applied.
//!
//! The estimate is `offset + monotonic ms since start`, and `offset` only
//! ever grows (`fetch_max`), so the estimate never goes backwards and is
//! lock-free to read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// At most one disagreement warning per this many monotonic ms.
const WARN_EVERY_MS: u64 = 10_000;

/// The node's wall clock in unix ms (TIME's clock; not the replicated one).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug)]
pub struct Clock {
    origin: Instant,
    /// Estimate minus monotonic ms since `origin`; only grows.
    offset: AtomicU64,
    /// Some replicated time has been seen (or seeded): the wall clock no
    /// longer sets the clock, it may only nudge it.
    seeded: AtomicBool,
    max_skew_ms: u64,
    /// Monotonic ms + 1 of the last disagreement warning (0 = never).
    last_warn: AtomicU64,
}

impl Clock {
    pub fn new(max_skew_ms: u64) -> Clock {
        Clock {
            origin: Instant::now(),
            offset: AtomicU64::new(0),
            seeded: AtomicBool::new(false),
            max_skew_ms,
            last_warn: AtomicU64::new(0),
        }
    }

    fn mono_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// The replicated clock as this node estimates it now (unix ms).
    pub fn now_ms(&self) -> u64 {
        self.now_at(self.mono_ms())
    }

    /// An entry (or snapshot) applied here says the replicated clock has
    /// reached `ms`: never estimate less from now on.
    pub fn observe(&self, ms: u64) {
        self.observe_at(ms, self.mono_ms());
    }

    /// The `now_ms` a leader stamps on a proposal: the estimate, nudged to
    /// the wall clock `wall_ms` only within the skew bound.
    pub fn leader_now_ms(&self, wall_ms: u64) -> u64 {
        self.leader_now_at(wall_ms, self.mono_ms())
    }

    fn now_at(&self, mono: u64) -> u64 {
        self.offset.load(Ordering::Acquire).saturating_add(mono)
    }

    fn observe_at(&self, ms: u64, mono: u64) {
        if ms == 0 {
            return;
        }
        self.offset
            .fetch_max(ms.saturating_sub(mono), Ordering::AcqRel);
        self.seeded.store(true, Ordering::Release);
    }

    fn leader_now_at(&self, wall: u64, mono: u64) -> u64 {
        if !self.seeded.load(Ordering::Acquire) {
            // A new cluster: nothing replicated yet, the wall clock seeds it.
            tracing::info!(
                wall_ms = wall,
                "replicated clock seeded from the wall clock"
            );
            self.observe_at(wall, mono);
            return self.now_at(mono);
        }
        let est = self.now_at(mono);
        if wall > est && wall - est <= self.max_skew_ms {
            self.observe_at(wall, mono);
            return self.now_at(mono);
        }
        let (dir, by) = if wall > est {
            ("ahead of", wall - est)
        } else {
            ("behind", est - wall)
        };
        if by <= self.max_skew_ms {
            return est;
        }
        metrics::counter!(crate::metrics::CLOCK_WALL_IGNORED_TOTAL).increment(1);
        if self.may_warn(mono) {
            tracing::warn!(
                wall_ms = wall,
                replicated_ms = est,
                by_ms = by,
                clock_max_skew = self.max_skew_ms,
                "wall clock is {dir} the replicated clock by more than clock-max-skew; \
                 ignored (TTLs keep counting monotonic time)"
            );
        }
        est
    }

    fn may_warn(&self, mono: u64) -> bool {
        let last = self.last_warn.load(Ordering::Relaxed);
        (last == 0 || mono + 1 >= last + WARN_EVERY_MS)
            && self
                .last_warn
                .compare_exchange(last, mono + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_700_000_000_000;

    #[test]
    fn seeds_from_the_wall_clock_then_runs_monotonic() {
        let c = Clock::new(1000);
        assert_eq!(c.leader_now_at(T, 5), T);
        // A wall clock an hour ahead is ignored; monotonic time counts.
        assert_eq!(c.leader_now_at(T + 3_600_000, 105), T + 100);
        // One that went back 5 s is ignored too: never backwards.
        assert_eq!(c.leader_now_at(T - 5_000, 205), T + 200);
        assert_eq!(c.now_at(305), T + 300);
    }

    #[test]
    fn nudged_forward_within_the_bound_only() {
        let c = Clock::new(1000);
        c.observe_at(T, 0);
        assert_eq!(c.leader_now_at(T + 900, 0), T + 900, "within the bound");
        assert_eq!(c.leader_now_at(T + 1_901, 0), T + 900, "beyond it");
        assert_eq!(c.leader_now_at(T + 1_900, 0), T + 1_900, "at the bound");
    }

    #[test]
    fn observing_never_moves_back() {
        let c = Clock::new(1000);
        c.observe_at(T, 10);
        c.observe_at(T - 50_000, 20);
        assert_eq!(c.now_at(20), T + 10);
        // A follower that saw an entry at T continues from it: a new
        // leader's estimate is the last clock seen plus time since.
        c.observe_at(T + 500, 30);
        assert_eq!(c.now_at(1030), T + 1500);
        // Not seeded by an empty clock.
        let fresh = Clock::new(1000);
        fresh.observe_at(0, 1);
        assert!(!fresh.seeded.load(Ordering::Acquire));
    }
}
