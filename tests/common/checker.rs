//! Per-key linearizability checker for the fault tests (docs/testing.md).
//!
//! The algorithm is the Wing–Gong backtracking search with Lowe's memoisation
//! (the approach porcupine popularised; this is an independent implementation):
//! walk the history's call/return events in time order, try to "linearize" each
//! pending call whose effect is consistent with the model, and when a return
//! event is reached whose operation has not been linearized yet, backtrack.
//! Every (set of linearized operations, model state) pair that has already been
//! explored is cached, so the search never repeats a sub-problem; for a correct
//! history with bounded concurrency it is essentially linear.
//!
//! Operations whose fate is unknown (timeout, connection reset) may have taken
//! effect at any moment after their invocation, or never. They therefore get no
//! return event: the search may linearize them anywhere after their call, and
//! the history is accepted as soon as every *definite* operation is placed.
//!
//! Two reductions keep unknown operations from making the search exponential:
//! - identical unknown operations (e.g. the N timed-out `INCR`s of a counter)
//!   are interchangeable, so only the earliest-invoked not-yet-placed one of each
//!   class is ever tried (any placement of a later one could use the earlier one
//!   instead, since neither has a return deadline);
//! - an unknown `SET v` whose value `v` no reader ever saw is dropped: if a
//!   linearization uses it, the next operation after it is a write or nothing,
//!   so removing it leaves a valid linearization.
//!
//! A checker that gives up is not a pass: [`CheckResult::Timeout`] must be
//! counted as a failure by callers.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{Debug, Write as _};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the client learned about one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It completed with the recorded output, so it took effect between
    /// `invoke` and `ret`.
    Ok,
    /// It certainly did not take effect (e.g. the server answered with an error
    /// before doing anything, or the connection was refused). Dropped.
    Failed,
    /// Timeout, reset, or an ambiguous error: it may have taken effect at any
    /// time after `invoke`, or never. Its output (if any) is ignored.
    Unknown,
}

/// One client operation as recorded by the workload.
///
/// Times are nanoseconds on one monotonic clock shared by all clients (see
/// [`Recorder`]); only their order matters.
#[derive(Clone, Debug)]
pub struct Op<I, O> {
    pub key: String,
    pub client: usize,
    pub invoke: u64,
    /// `None`: the operation never returned. Ignored for `Unknown` outcomes,
    /// whose return time is +infinity by definition.
    pub ret: Option<u64>,
    pub input: I,
    /// `None` when the result was not observed. For an `Ok` operation this
    /// still means "took effect", just with no constraint on its result.
    pub output: Option<O>,
    pub outcome: Outcome,
}

impl<I, O> Op<I, O> {
    /// A completed operation with its observed output.
    pub fn ok(client: usize, key: &str, invoke: u64, ret: u64, input: I, output: O) -> Self {
        Op {
            key: key.to_string(),
            client,
            invoke,
            ret: Some(ret),
            input,
            output: Some(output),
            outcome: Outcome::Ok,
        }
    }

    /// An operation whose effect is unknown (timed out, connection lost).
    pub fn unknown(client: usize, key: &str, invoke: u64, input: I) -> Self {
        Op {
            key: key.to_string(),
            client,
            invoke,
            ret: None,
            input,
            output: None,
            outcome: Outcome::Unknown,
        }
    }

    /// An operation that certainly did not happen.
    pub fn failed(client: usize, key: &str, invoke: u64, ret: u64, input: I) -> Self {
        Op {
            key: key.to_string(),
            client,
            invoke,
            ret: Some(ret),
            input,
            output: None,
            outcome: Outcome::Failed,
        }
    }
}

/// Register model: `SET key value` / `GET key`; the initial state is "missing".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    Set(String),
    Get,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutput {
    /// Reply to `SET`.
    Ok,
    /// Reply to `GET` (`None` = nil, the key is missing).
    Value(Option<String>),
}

/// Counter model: `INCR key` / `GET key`; the initial state is "missing" (0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CounterInput {
    Incr,
    Get,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterOutput {
    /// Reply to `INCR`: the new value.
    Value(i64),
    /// Reply to `GET` (`None` = nil, the key is missing).
    Read(Option<i64>),
}

pub type RegisterOp = Op<RegisterInput, RegisterOutput>;
pub type CounterOp = Op<CounterInput, CounterOutput>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    Ok,
    /// The history of `key` has no linearization. `explanation` shows the
    /// longest linearizable prefix found and the operation that could not be
    /// placed after it.
    Violation {
        key: String,
        explanation: String,
    },
    /// The search for `key` exceeded its time budget. Counts as a failure.
    Timeout {
        key: String,
    },
}

impl CheckResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }
}

/// Thread-safe history collector with a shared monotonic clock, for workloads
/// that run clients on several threads.
pub struct Recorder<I, O> {
    start: Instant,
    ops: Mutex<Vec<Op<I, O>>>,
}

impl<I, O> Default for Recorder<I, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I, O> Recorder<I, O> {
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the recorder was created. Take it just before sending
    /// a request (`invoke`) and just after reading its reply (`ret`).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn push(&self, op: Op<I, O>) {
        self.ops.lock().unwrap().push(op);
    }

    pub fn len(&self) -> usize {
        self.ops.lock().unwrap().len()
    }

    /// How many operations recorded so far satisfy `f`.
    pub fn count(&self, f: impl Fn(&Op<I, O>) -> bool) -> usize {
        self.ops.lock().unwrap().iter().filter(|o| f(o)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_history(self) -> Vec<Op<I, O>> {
        self.ops.into_inner().unwrap()
    }
}

/// Check a register history, each key independently, with `budget` of search
/// time per key. Stops at the first key that fails.
pub fn check_register(history: &[RegisterOp], budget: Duration) -> CheckResult {
    check_by_key(history, budget, lower_register)
}

/// Check a counter history, each key independently, with `budget` of search
/// time per key. Stops at the first key that fails.
pub fn check_counter(history: &[CounterOp], budget: Duration) -> CheckResult {
    check_by_key(history, budget, lower_counter)
}

/// The history split by key (in key order), to check and report each key on
/// its own: [`check_register`] and [`check_counter`] stop at the first key
/// that fails, and a negative control must show *which* keys fail.
pub fn by_key<I: Clone, O: Clone>(history: &[Op<I, O>]) -> BTreeMap<String, Vec<Op<I, O>>> {
    let mut out: BTreeMap<String, Vec<Op<I, O>>> = BTreeMap::new();
    for op in history {
        out.entry(op.key.clone()).or_default().push(op.clone());
    }
    out
}

/// The final-value check of a counter read after everything healed: with
/// `acked` INCRs acknowledged and `unknown` of unknown fate, the final value
/// must lie in `acked ..= acked + unknown` (a lost INCR makes it smaller, a
/// replayed one larger). `final_value` is `None` when the key is missing.
pub fn check_counter_final(
    history: &[CounterOp],
    key: &str,
    final_value: Option<i64>,
) -> Result<(), String> {
    let (mut acked, mut unknown) = (0i64, 0i64);
    for o in history
        .iter()
        .filter(|o| o.key == key && o.input == CounterInput::Incr)
    {
        match o.outcome {
            Outcome::Ok => acked += 1,
            Outcome::Unknown => unknown += 1,
            Outcome::Failed => {}
        }
    }
    let fin = final_value.unwrap_or(0);
    if acked <= fin && fin <= acked + unknown {
        Ok(())
    } else {
        Err(format!(
            "counter {key}: final {fin} not within acked {acked} .. acked+unknown {}",
            acked + unknown
        ))
    }
}

// ---------------------------------------------------------------------------
// Internals: both models are lowered to one tiny integer machine, so the search
// hashes and copies an `i64` state instead of strings.

/// Model state. Register: interned value id; counter: the count. `MISSING` is
/// the absent key.
type State = i64;
const MISSING: State = i64::MIN;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    /// Register SET (interned value id).
    Write(State),
    /// Any GET: the state must equal this.
    Read(State),
    /// Counter INCR, with the returned value when it is known.
    Incr(Option<i64>),
}

fn step(state: State, act: Act) -> Option<State> {
    match act {
        Act::Write(v) => Some(v),
        Act::Read(v) => (state == v).then_some(state),
        Act::Incr(out) => {
            let base = if state == MISSING { 0 } else { state };
            let new = base.checked_add(1)?;
            match out {
                Some(o) if o != new => None,
                _ => Some(new),
            }
        }
    }
}

/// Lowering of one model's operations. `None` act: the op has no effect and no
/// constraint (e.g. a GET whose reply was not seen), so it is left out.
struct Lowered {
    act: Option<Act>,
    /// Printable form of the state, for explanations.
    show: fn(&Interner, State) -> String,
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, State>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> State {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as State;
        self.names.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    fn show_register(&self, s: State) -> String {
        if s == MISSING {
            "nil".to_string()
        } else {
            format!("{:?}", self.names[s as usize])
        }
    }

    fn show_counter(&self, s: State) -> String {
        if s == MISSING {
            "nil".to_string()
        } else {
            s.to_string()
        }
    }
}

fn lower_register(op: &RegisterOp, int: &mut Interner) -> Result<Lowered, String> {
    let show = Interner::show_register;
    let act = match (&op.input, &op.output) {
        (RegisterInput::Set(v), None | Some(RegisterOutput::Ok)) => Some(Act::Write(int.id(v))),
        (RegisterInput::Get, None) => None,
        (RegisterInput::Get, Some(RegisterOutput::Value(v))) => Some(Act::Read(match v {
            Some(v) => int.id(v),
            None => MISSING,
        })),
        _ => {
            return Err(format!(
                "malformed register op (input/output mismatch): {op:?}"
            ))
        }
    };
    Ok(Lowered { act, show })
}

fn lower_counter(op: &CounterOp, _: &mut Interner) -> Result<Lowered, String> {
    let show = Interner::show_counter;
    let act = match (&op.input, &op.output) {
        (CounterInput::Incr, None) => Some(Act::Incr(None)),
        (CounterInput::Incr, Some(CounterOutput::Value(v))) => Some(Act::Incr(Some(*v))),
        (CounterInput::Get, None) => None,
        (CounterInput::Get, Some(CounterOutput::Read(v))) => Some(Act::Read(v.unwrap_or(MISSING))),
        _ => {
            return Err(format!(
                "malformed counter op (input/output mismatch): {op:?}"
            ))
        }
    };
    Ok(Lowered { act, show })
}

fn check_by_key<I: Debug, O: Debug>(
    history: &[Op<I, O>],
    budget: Duration,
    lower: fn(&Op<I, O>, &mut Interner) -> Result<Lowered, String>,
) -> CheckResult {
    let mut by_key: HashMap<&str, Vec<&Op<I, O>>> = HashMap::new();
    for op in history {
        if op.outcome != Outcome::Failed {
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let mut keys: Vec<&str> = by_key.keys().copied().collect();
    keys.sort_unstable();
    for key in keys {
        let r = check_key(key, &by_key[key], budget, lower);
        if !r.is_ok() {
            return r;
        }
    }
    CheckResult::Ok
}

/// One key's history, lowered and indexed for the search.
struct Problem<'a, I, O> {
    ops: Vec<&'a Op<I, O>>,
    acts: Vec<Act>,
    definite: Vec<bool>,
    int: Interner,
    show: fn(&Interner, State) -> String,
}

fn check_key<I: Debug, O: Debug>(
    key: &str,
    ops: &[&Op<I, O>],
    budget: Duration,
    lower: fn(&Op<I, O>, &mut Interner) -> Result<Lowered, String>,
) -> CheckResult {
    let violation = |explanation: String| CheckResult::Violation {
        key: key.to_string(),
        explanation,
    };
    let mut int = Interner::default();
    let mut show: fn(&Interner, State) -> String = Interner::show_counter;
    let mut lowered = Vec::with_capacity(ops.len());
    for &op in ops {
        match lower(op, &mut int) {
            Ok(l) => {
                show = l.show;
                if let Some(act) = l.act {
                    lowered.push((op, act));
                }
            }
            Err(e) => return violation(e),
        }
    }

    // Values some reader observed, and values some (possible) write produced.
    let read: HashSet<State> = lowered
        .iter()
        .filter_map(|(op, a)| match a {
            Act::Read(v) if op.outcome == Outcome::Ok => Some(*v),
            _ => None,
        })
        .collect();
    let written: HashSet<State> = lowered
        .iter()
        .filter_map(|(_, a)| match a {
            Act::Write(v) => Some(*v),
            _ => None,
        })
        .collect();
    let has_incr = lowered.iter().any(|(_, a)| matches!(a, Act::Incr(_)));

    // A read of a value no write could have produced: report it directly, it
    // is the clearest explanation there is (the search would find it too).
    if !has_incr {
        if let Some((op, _)) = lowered.iter().find(|(op, a)| {
            op.outcome == Outcome::Ok
                && matches!(a, Act::Read(v) if *v != MISSING && !written.contains(v))
        }) {
            return violation(format!(
                "read of a value that was never written: {}",
                describe(op)
            ));
        }
    }

    let mut p = Problem {
        ops: Vec::new(),
        acts: Vec::new(),
        definite: Vec::new(),
        int,
        show,
    };
    for (op, mut act) in lowered {
        let unknown = op.outcome == Outcome::Unknown;
        match act {
            // What an unknown op returned (if anything) is not evidence.
            Act::Incr(Some(_)) if unknown => act = Act::Incr(None),
            // An unknown read constrains nothing.
            Act::Read(_) if unknown => continue,
            // An unknown write nobody read can be dropped (see module docs).
            Act::Write(v) if unknown && !read.contains(&v) => continue,
            _ => {}
        }
        p.ops.push(op);
        p.acts.push(act);
        p.definite.push(!unknown);
    }
    search(key, &p, budget)
}

fn describe<I: Debug, O: Debug>(op: &Op<I, O>) -> String {
    let ret = match (op.outcome, op.ret) {
        (Outcome::Unknown, _) | (_, None) => "?".to_string(),
        (_, Some(r)) => r.to_string(),
    };
    match (&op.output, op.outcome) {
        (Some(out), Outcome::Ok) => format!(
            "client {} {:?} -> {:?} [{}..{}]",
            op.client, op.input, out, op.invoke, ret
        ),
        _ => format!(
            "client {} {:?} ({:?}) [{}..{}]",
            op.client, op.input, op.outcome, op.invoke, ret
        ),
    }
}

const NIL: u32 = u32::MAX;

/// Doubly linked list of the definite ops' call/return events in time order
/// (node 0 is the head sentinel), so that lifting a linearized op out and
/// putting it back on backtrack are both O(1).
struct Events {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Node -> (op index, is_call, time).
    node: Vec<(u32, bool, u64)>,
    call_node: Vec<u32>,
    ret_node: Vec<u32>,
}

impl Events {
    fn new(p: &Problem<impl Debug, impl Debug>) -> Events {
        let n = p.ops.len();
        // At equal times calls sort first, so ops that touch at an instant
        // count as concurrent (never a false alarm).
        let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
        for i in (0..n).filter(|&i| p.definite[i]) {
            let op = p.ops[i];
            evs.push((op.invoke, false, i as u32));
            let ret = op.ret.unwrap_or(u64::MAX).max(op.invoke);
            evs.push((ret, true, i as u32));
        }
        evs.sort_unstable();
        let nodes = evs.len() + 1;
        let mut ev = Events {
            next: (1..=nodes)
                .map(|x| if x == nodes { NIL } else { x as u32 })
                .collect(),
            prev: (0..nodes).map(|x| (x as u32).wrapping_sub(1)).collect(),
            node: Vec::with_capacity(nodes),
            call_node: vec![NIL; n],
            ret_node: vec![NIL; n],
        };
        ev.node.push((NIL, false, 0));
        for (k, &(time, is_ret, op)) in evs.iter().enumerate() {
            ev.node.push((op, !is_ret, time));
            let slot = if is_ret {
                &mut ev.ret_node
            } else {
                &mut ev.call_node
            };
            slot[op as usize] = (k + 1) as u32;
        }
        ev
    }

    fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Inverse of `unlink`; valid because relinking happens in exact reverse
    /// order of unlinking (the search is a stack).
    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        if n != NIL {
            self.prev[n as usize] = x;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        self.unlink(self.ret_node[op]);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(self.ret_node[op]);
        self.relink(self.call_node[op]);
    }
}

/// Unknown ops, grouped into classes of interchangeable ones (same act); each
/// class is placed strictly in invoke order (see module docs).
struct Unknowns {
    members: Vec<Vec<u32>>,
    class_of: Vec<u32>,
    /// How many members of each class are placed (always a prefix).
    placed: Vec<u32>,
}

impl Unknowns {
    fn new(p: &Problem<impl Debug, impl Debug>) -> Unknowns {
        let n = p.ops.len();
        let mut by_invoke: Vec<usize> = (0..n).filter(|&i| !p.definite[i]).collect();
        by_invoke.sort_by_key(|&i| (p.ops[i].invoke, i));
        let mut ids: HashMap<Act, u32> = HashMap::new();
        let mut u = Unknowns {
            members: Vec::new(),
            class_of: vec![NIL; n],
            placed: Vec::new(),
        };
        for i in by_invoke {
            let next_id = ids.len() as u32;
            let c = *ids.entry(p.acts[i]).or_insert(next_id);
            if c as usize == u.members.len() {
                u.members.push(Vec::new());
                u.placed.push(0);
            }
            u.members[c as usize].push(i as u32);
            u.class_of[i] = c;
        }
        u
    }

    /// The next member of class `c` that may be placed.
    fn head(&self, c: usize) -> Option<u32> {
        self.members[c].get(self.placed[c] as usize).copied()
    }
}

/// Where the search is looking for the next op to place.
#[derive(Clone, Copy)]
enum Cursor {
    /// A new search node: look for a read to place eagerly first.
    Start,
    /// Phase 0: a node of the definite events list.
    Definite(u32),
    /// Phase 1: a class of unknown ops; only members invoked by `limit` (the
    /// time of the earliest pending return) may go next.
    Unknown { class: usize, limit: u64 },
}

struct Frame {
    op: u32,
    prev_state: State,
    prev_block: Option<State>,
    /// The cursor to resume from if this choice is undone.
    resume: Cursor,
}

/// Set fingerprints for the cache: each op gets a random 128-bit key and a
/// set is the XOR of its members' keys, updated in O(1) per step instead of
/// hashing an n-bit set. Two different sets collide with probability 2^-128
/// per pair, i.e. never in practice (a collision could only hide a
/// linearization, never invent one).
struct Zobrist {
    keys: Vec<u128>,
}

impl Zobrist {
    fn new(n: usize) -> Zobrist {
        // splitmix64: fixed seed, so runs are reproducible.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Zobrist {
            keys: (0..n)
                .map(|_| (u128::from(next()) << 64) | u128::from(next()))
                .collect(),
        }
    }
}

/// The cache keys are already uniformly random: a cheap hasher suffices.
type FastHash = foldhash::fast::FixedState;

struct Best {
    placed: usize,
    order: Vec<u32>,
    state: State,
    /// The definite op whose return stopped the search at that depth.
    blocked_by: Option<u32>,
}

/// Lowe-style search. Invariants: `placed_set` fingerprints the set of placed
/// ops (see [`Zobrist`]), `state`
/// the model state after them, `block` is `Some(s0)` iff the last placed ops
/// are a run of unknown ops that started from state `s0`.
///
/// Besides the cache, two dominance rules cut the work that unknown ops add
/// (each is checked for this machine's three acts):
/// - a run B of unknown ops may only be followed by a definite op d that was
///   *not* applicable before B. If d was applicable at `s0`, then `d; B`
///   (counter: INCRs commute; register reads: B must end with the value d
///   read, so the state is the same) or `d` alone (register write: B is
///   overwritten) is an equally valid order that moves d earlier past ops
///   without deadlines, and the search explores it from the earlier node;
/// - a register write in a run is never followed by another unknown write:
///   the first would be overwritten unseen, so it may as well not happen.
///
/// Because these rules make what is explored depend on `block`, `block` is
/// part of the cache key.
fn search<I: Debug, O: Debug>(key: &str, p: &Problem<I, O>, budget: Duration) -> CheckResult {
    let n = p.ops.len();
    let n_definite = p.definite.iter().filter(|d| **d).count();
    if n_definite == 0 {
        return CheckResult::Ok;
    }
    let started = Instant::now();
    let mut ev = Events::new(p);
    let mut un = Unknowns::new(p);

    let zobrist = Zobrist::new(n);
    let mut placed_set: u128 = 0;
    let mut seen: HashSet<(u128, State, Option<State>), FastHash> = HashSet::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut state: State = MISSING;
    let mut block: Option<State> = None;
    let mut placed = 0usize;
    // `best.order[..agree]` is known to equal the bottom of `stack`.
    let mut agree = 0usize;
    let mut best = Best {
        placed: 0,
        order: Vec::new(),
        state,
        blocked_by: None,
    };
    let mut cursor = Cursor::Start;
    let exhausted = Cursor::Unknown {
        class: un.members.len(),
        limit: 0,
    };
    let mut iters: u64 = 0;

    loop {
        iters += 1;
        if iters % 4096 == 0 && started.elapsed() > budget {
            return CheckResult::Timeout {
                key: key.to_string(),
            };
        }

        // Find the next candidate: (op, new state, new block, resume cursor).
        let candidate = match cursor {
            Cursor::Start => {
                // A read that fits now is placed now, with no alternative
                // tried at this node: it changes nothing, and any valid order
                // that places it later stays valid with it moved here (every
                // op still pending returns after this read's call).
                cursor = Cursor::Definite(ev.next[0]);
                let mut node = ev.next[0];
                let mut found = None;
                while node != NIL {
                    let (op, is_call, _) = ev.node[node as usize];
                    if !is_call {
                        break;
                    }
                    let act = p.acts[op as usize];
                    if let Act::Read(v) = act {
                        if v == state && block.is_none_or(|s0| s0 != v) {
                            found = Some((op, state, None, exhausted));
                            break;
                        }
                    }
                    node = ev.next[node as usize];
                }
                match found {
                    Some(c) => c,
                    None => continue,
                }
            }
            Cursor::Definite(node) => {
                let (op, is_call, time) = if node == NIL {
                    (NIL, false, u64::MAX)
                } else {
                    ev.node[node as usize]
                };
                if !is_call {
                    // A pending return (or the end): no definite op after
                    // this point may go next. Try the unknown ops.
                    if placed == best.placed && best.blocked_by.is_none() && op != NIL {
                        best.blocked_by = Some(op);
                    }
                    cursor = Cursor::Unknown {
                        class: 0,
                        limit: time,
                    };
                    continue;
                }
                let next = Cursor::Definite(ev.next[node as usize]);
                let act = p.acts[op as usize];
                let fresh = block.is_none_or(|s0| step(s0, act).is_none());
                // Reads were settled at `Start`: one that fits was placed,
                // and the others cannot fit in this node's state.
                let is_read = matches!(act, Act::Read(_));
                match step(state, act).filter(|_| fresh && !is_read) {
                    Some(s2) => (op, s2, None, next),
                    None => {
                        cursor = next;
                        continue;
                    }
                }
            }
            Cursor::Unknown { class, limit } => {
                if class == un.members.len() {
                    // Every candidate of this node was tried: backtrack.
                    let Some(f) = stack.pop() else {
                        return CheckResult::Violation {
                            key: key.to_string(),
                            explanation: explain(p, &best),
                        };
                    };
                    agree = agree.min(stack.len());
                    let i = f.op as usize;
                    placed_set ^= zobrist.keys[i];
                    state = f.prev_state;
                    block = f.prev_block;
                    if p.definite[i] {
                        ev.unlift(i);
                        placed -= 1;
                    } else {
                        un.placed[un.class_of[i] as usize] -= 1;
                    }
                    cursor = f.resume;
                    continue;
                }
                cursor = Cursor::Unknown {
                    class: class + 1,
                    limit,
                };
                let Some(op) = un.head(class) else { continue };
                let act = p.acts[op as usize];
                let redundant = matches!(act, Act::Write(_))
                    && block.is_some()
                    && stack
                        .last()
                        .is_some_and(|f| matches!(p.acts[f.op as usize], Act::Write(_)));
                if p.ops[op as usize].invoke > limit || redundant {
                    continue;
                }
                match step(state, act) {
                    Some(s2) => (op, s2, Some(block.unwrap_or(state)), cursor),
                    None => continue,
                }
            }
        };

        let (op, s2, new_block, resume) = candidate;
        let i = op as usize;
        placed_set ^= zobrist.keys[i];
        if !seen.insert((placed_set, s2, new_block)) {
            placed_set ^= zobrist.keys[i];
            cursor = resume;
            continue;
        }
        stack.push(Frame {
            op,
            prev_state: state,
            prev_block: block,
            resume,
        });
        state = s2;
        block = new_block;
        if p.definite[i] {
            ev.lift(i);
            placed += 1;
            if placed == n_definite {
                return CheckResult::Ok;
            }
            if placed > best.placed {
                // Copy only the part of the stack that differs from the last
                // snapshot, so a search that mostly moves forward stays O(n).
                best.order.truncate(agree);
                best.order.extend(stack[agree..].iter().map(|f| f.op));
                agree = stack.len();
                best.placed = placed;
                best.state = state;
                best.blocked_by = None;
            }
        } else {
            un.placed[un.class_of[i] as usize] += 1;
        }
        cursor = Cursor::Start;
    }
}

fn explain<I: Debug, O: Debug>(p: &Problem<I, O>, best: &Best) -> String {
    const SHOWN: usize = 12;
    let mut s = String::new();
    let total = p.definite.iter().filter(|d| **d).count();
    let _ = writeln!(
        s,
        "no linearization: at most {} of {} completed ops could be ordered; \
         state after that prefix: {}",
        best.placed,
        total,
        (p.show)(&p.int, best.state)
    );
    let skip = best.order.len().saturating_sub(SHOWN);
    let _ = writeln!(
        s,
        "longest linearizable prefix (last {} of {} ops):",
        best.order.len() - skip,
        best.order.len()
    );
    for &o in &best.order[skip..] {
        let _ = writeln!(s, "  {}", describe(p.ops[o as usize]));
    }
    match best.blocked_by {
        Some(o) => {
            let _ = writeln!(
                s,
                "could not place (it had returned, nothing pending fits before it): {}",
                describe(p.ops[o as usize])
            );
        }
        None => {
            let _ = writeln!(s, "ran out of candidate ops");
        }
    }
    s
}
