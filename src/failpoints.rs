//! Crash points inside storage (TESTING.md: "crash points inside storage via
//! failpoints").
//!
//! With the cargo feature `failpoints` on, [`crash_point!`] marks a place in
//! the log store or the state machine where `tests/crashpoints.rs` can make
//! the process die on the spot, and [`setup`] arms the points named in the
//! `FAILPOINTS` environment variable (the `fail` crate's syntax, e.g.
//! `FAILPOINTS="log::after_sync=return"` or `"log::after_sync=20*off->return"`
//! to crash on the 21st pass). The only action that does anything is
//! `return`, and what it does is `abort()`: the whole process dies like under
//! `kill -9` (no destructor, no flush), which a `panic` action would not do
//! (it would only unwind one thread).
//!
//! Without the feature the macro expands to nothing, its condition included,
//! and `setup` is an empty function: no runtime cost.
//!
//! The points (see each site for the exact place):
//!
//! | name | where |
//! | --- | --- |
//! | `log::before_commit` | writer thread, a group holding an append, before its txn commits |
//! | `log::before_sync` | syncer thread, batches committed, before the fsync |
//! | `log::after_sync` | syncer thread, fsync done, before any callback fires |
//! | `log::after_save_vote` | `save_vote`, the vote durable, before returning |
//! | `log::during_purge` | writer thread, a group holding a purge, before its txn commits |
//! | `snapshot::before_rename` | snapshot build, temp file written and fsynced, before the rename |
//! | `snapshot::after_rename` | snapshot build, renamed, before the directory fsync |
//! | `snapshot::install_before_swap` | install, file renamed and dir fsynced, before the state swap |

/// Arm the crash points named in `FAILPOINTS` (once per process; later calls
/// do nothing). Called by `LogStore::open` and `StateMachine::open`, so the
/// binary needs no extra call. Panics on a malformed `FAILPOINTS`.
#[cfg(feature = "failpoints")]
pub fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let scenario = fail::FailScenario::setup();
        // Dropping the scenario would disarm every point: keep it for the
        // life of the process.
        std::mem::forget(scenario);
        if let Ok(points) = std::env::var("FAILPOINTS") {
            tracing::warn!(%points, "storage crash points armed (FAILPOINTS)");
        }
    });
}

/// Without the `failpoints` feature: nothing to arm.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn setup() {}

/// The action of every crash point: say which, then die at once.
#[cfg(feature = "failpoints")]
#[cold]
pub fn crash(name: &str) -> ! {
    eprintln!("raftcache: crash point {name} hit: aborting");
    std::process::abort()
}

/// `crash_point!("name")`, or `crash_point!("name", if cond)` to evaluate the
/// point only when `cond` holds. The enclosing function must return a value
/// (the `fail` crate's closure form returns from it; ours never does).
#[cfg(feature = "failpoints")]
macro_rules! crash_point {
    ($name:literal) => {
        ::fail::fail_point!($name, |_| $crate::failpoints::crash($name))
    };
    ($name:literal, if $cond:expr) => {
        ::fail::fail_point!($name, $cond, |_| $crate::failpoints::crash($name))
    };
}

/// Without the `failpoints` feature: nothing at all.
#[cfg(not(feature = "failpoints"))]
macro_rules! crash_point {
    ($name:literal) => {};
    ($name:literal, if $cond:expr) => {};
}

pub(crate) use crash_point;
