//! Crash points inside storage (docs/testing.md: "crash points inside storage via
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
//! | `log::after_commit` | writer thread, a group holding an append committed (NO_SYNC), before the syncer gets it |
//!
//! # Hold points
//!
//! A crash point kills; a *hold point* ([`hold`]) parks the thread that
//! reaches it for as long as a gate file exists, so a test can freeze one
//! exact step (the forced sync, a snapshot build) and observe what the rest
//! of the node does meanwhile. The gate is `<dir>/hold-<name>` where `<dir>`
//! is the directory of the component (`<data-dir>/raft-log` for the log
//! store, `<data-dir>/snapshots` for snapshots): per node and per test, no
//! global state. While held, the point creates `<dir>/held-<name>` (and
//! leaves it) so the test can wait until the thread is really parked.
//!
//! | name | where |
//! | --- | --- |
//! | `log-sync` | syncer thread, before the forced sync (nothing is synced or acknowledged while held) |
//! | `snapshot-build` | snapshot build, file written and renamed, before it is made current |

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

/// Hold point: park the calling (blocking, never async) thread while the
/// gate file `<dir>/hold-<name>` exists; see the module docs.
#[cfg(feature = "failpoints")]
pub fn hold(dir: &std::path::Path, name: &str) {
    let gate = dir.join(format!("hold-{name}"));
    if !gate.exists() {
        return;
    }
    let held = dir.join(format!("held-{name}"));
    if let Err(e) = std::fs::write(&held, b"") {
        eprintln!(
            "raftcache: hold point {name}: cannot create {}: {e}",
            held.display()
        );
    }
    eprintln!(
        "raftcache: hold point {name} held until {} is removed",
        gate.display()
    );
    while gate.exists() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    eprintln!("raftcache: hold point {name} released");
}

/// Without the `failpoints` feature: never holds.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hold(_dir: &std::path::Path, _name: &str) {}

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
