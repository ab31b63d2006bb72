//! Tests of the linearizability checker itself: hand-written good and bad
//! histories, plus large random histories generated from a simulated
//! linearizable register/counter (must pass) and the same with one read
//! corrupted (must fail). A checker that cannot fail proves nothing.

#[path = "common/checker.rs"]
mod checker;

use std::time::{Duration, Instant};

use checker::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BUDGET: Duration = Duration::from_secs(5);
/// Budgets of the big-history tests: a debug build on a busy 2-core machine
/// gets a fraction of a core (a correct 5000-op history takes ~0.3 s there
/// when idle). They still catch what they guard against, an exponential
/// search, which would run for hours.
const BIG_PASS_BUDGET: Duration = Duration::from_secs(10);
const BIG_FAIL_BUDGET: Duration = Duration::from_secs(30);

fn set(c: usize, inv: u64, ret: u64, v: &str) -> RegisterOp {
    Op::ok(
        c,
        "k",
        inv,
        ret,
        RegisterInput::Set(v.into()),
        RegisterOutput::Ok,
    )
}

fn get(c: usize, inv: u64, ret: u64, v: Option<&str>) -> RegisterOp {
    let out = RegisterOutput::Value(v.map(str::to_string));
    Op::ok(c, "k", inv, ret, RegisterInput::Get, out)
}

fn set_unknown(c: usize, inv: u64, v: &str) -> RegisterOp {
    Op::unknown(c, "k", inv, RegisterInput::Set(v.into()))
}

fn incr(c: usize, inv: u64, ret: u64, v: i64) -> CounterOp {
    Op::ok(
        c,
        "n",
        inv,
        ret,
        CounterInput::Incr,
        CounterOutput::Value(v),
    )
}

fn cget(c: usize, inv: u64, ret: u64, v: Option<i64>) -> CounterOp {
    Op::ok(c, "n", inv, ret, CounterInput::Get, CounterOutput::Read(v))
}

fn incr_unknown(c: usize, inv: u64) -> CounterOp {
    Op::unknown(c, "n", inv, CounterInput::Incr)
}

#[track_caller]
fn assert_ok(r: CheckResult) {
    assert_eq!(r, CheckResult::Ok, "expected a linearizable history");
}

#[track_caller]
fn assert_violation(r: CheckResult) -> String {
    match r {
        CheckResult::Violation { explanation, .. } => {
            eprintln!("{explanation}");
            explanation
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

// ---- register: good histories ---------------------------------------------

#[test]
fn empty_and_sequential_register() {
    assert_ok(check_register(&[], BUDGET));
    let h = vec![
        get(0, 0, 1, None),
        set(0, 2, 3, "a"),
        get(1, 4, 5, Some("a")),
        set(1, 6, 7, "b"),
        get(0, 8, 9, Some("b")),
    ];
    assert_ok(check_register(&h, BUDGET));
}

#[test]
fn concurrent_overlapping_reads() {
    // Two overlapping writes; the reads may see them in either order as long
    // as a consistent order exists: b at 5.5, read@7 sees b, a at 8 (< a's
    // return at 10), read@13 sees a.
    let h = vec![
        set(0, 0, 10, "a"),
        set(1, 5, 20, "b"),
        get(2, 6, 12, Some("b")),
        get(3, 13, 15, Some("a")),
        // a read concurrent with everything may still see the initial state
        get(4, 0, 30, None),
    ];
    assert_ok(check_register(&h, BUDGET));
}

#[test]
fn touching_intervals_count_as_concurrent() {
    // ret == invoke: the checker must not assume an order it cannot know.
    let h = vec![set(0, 0, 5, "a"), get(1, 5, 6, None)];
    assert_ok(check_register(&h, BUDGET));
}

#[test]
fn unknown_write_that_took_effect() {
    let h = vec![
        set(0, 0, 1, "a"),
        set_unknown(1, 2, "b"),
        get(2, 100, 101, Some("b")),
    ];
    assert_ok(check_register(&h, BUDGET));
}

#[test]
fn unknown_write_that_did_not_take_effect() {
    let h = vec![
        set(0, 0, 1, "a"),
        set_unknown(1, 2, "b"),
        get(2, 100, 101, Some("a")),
        get(2, 200, 201, Some("a")),
    ];
    assert_ok(check_register(&h, BUDGET));
}

#[test]
fn unknown_write_may_take_effect_much_later() {
    // Its return time is +infinity: applied after the first read.
    let h = vec![
        set(0, 0, 1, "a"),
        set_unknown(1, 2, "b"),
        get(2, 100, 101, Some("a")),
        get(2, 200, 201, Some("b")),
    ];
    assert_ok(check_register(&h, BUDGET));
}

#[test]
fn unknown_write_cannot_take_effect_before_its_invocation() {
    let h = vec![get(2, 0, 1, Some("b")), set_unknown(1, 2, "b")];
    assert_violation(check_register(&h, BUDGET));
}

#[test]
fn failed_ops_are_dropped() {
    let h = vec![
        set(0, 0, 1, "a"),
        Op::failed(1, "k", 2, 3, RegisterInput::Set("b".into())),
        get(2, 4, 5, Some("a")),
    ];
    assert_ok(check_register(&h, BUDGET));
    // ...so reading the failed write's value is a read of a never-written value.
    let h = vec![
        Op::failed(1, "k", 2, 3, RegisterInput::Set("b".into())),
        get(2, 4, 5, Some("b")),
    ];
    let e = assert_violation(check_register(&h, BUDGET));
    assert!(e.contains("never written"), "{e}");
}

// ---- register: bad histories ----------------------------------------------

#[test]
fn stale_read_is_a_violation() {
    let h = vec![
        set(0, 0, 1, "a"),
        set(0, 2, 3, "b"),
        get(1, 4, 5, Some("a")),
    ];
    let e = assert_violation(check_register(&h, BUDGET));
    assert!(e.contains("could not place"), "{e}");
}

#[test]
fn stale_read_after_concurrent_phase_is_a_violation() {
    // Read sees b, then a later read sees the older a again.
    let h = vec![
        set(0, 0, 10, "a"),
        set(1, 11, 20, "b"),
        get(2, 21, 22, Some("b")),
        get(3, 23, 24, Some("a")),
    ];
    assert_violation(check_register(&h, BUDGET));
}

#[test]
fn lost_acknowledged_write_is_a_violation() {
    let h = vec![set(0, 0, 1, "a"), get(1, 2, 3, None)];
    let e = assert_violation(check_register(&h, BUDGET));
    assert!(e.contains("Set(\"a\")"), "explanation names the write: {e}");
}

#[test]
fn read_of_never_written_value_is_a_violation() {
    let h = vec![set(0, 0, 1, "a"), get(1, 2, 3, Some("ghost"))];
    let e = assert_violation(check_register(&h, BUDGET));
    assert!(e.contains("never written") && e.contains("ghost"), "{e}");
}

#[test]
fn violation_names_the_failing_key() {
    let mut h = vec![set(0, 0, 1, "a"), get(1, 2, 3, Some("a"))];
    let mut bad = vec![set(0, 0, 1, "x"), get(1, 2, 3, None)];
    for op in &mut bad {
        op.key = "other".into();
    }
    h.append(&mut bad);
    match check_register(&h, BUDGET) {
        CheckResult::Violation { key, .. } => assert_eq!(key, "other"),
        r => panic!("expected violation on key other, got {r:?}"),
    }
}

#[test]
fn malformed_op_is_reported_not_ignored() {
    let h = vec![Op::ok(0, "k", 0, 1, RegisterInput::Get, RegisterOutput::Ok)];
    assert_violation(check_register(&h, BUDGET));
}

// ---- counter ----------------------------------------------------------------

#[test]
fn counter_good_histories() {
    let h = vec![
        cget(0, 0, 1, None),
        incr(0, 2, 3, 1),
        incr(1, 2, 5, 2),
        cget(2, 6, 7, Some(2)),
    ];
    assert_ok(check_counter(&h, BUDGET));
    // Concurrent increments may return in either order.
    let h = vec![
        incr(0, 0, 10, 2),
        incr(1, 1, 9, 1),
        cget(2, 11, 12, Some(2)),
    ];
    assert_ok(check_counter(&h, BUDGET));
    // An unknown INCR explains a gap, and may apply late.
    let h = vec![
        incr(0, 0, 1, 1),
        incr_unknown(1, 2),
        cget(2, 10, 11, Some(1)),
        incr(0, 20, 21, 3),
    ];
    assert_ok(check_counter(&h, BUDGET));
}

#[test]
fn counter_going_backwards_is_a_violation() {
    let h = vec![incr(0, 0, 1, 1), incr(0, 2, 3, 2), cget(1, 4, 5, Some(1))];
    assert_violation(check_counter(&h, BUDGET));
}

#[test]
fn counter_skipping_is_a_violation() {
    let h = vec![incr(0, 0, 1, 1), incr(0, 2, 3, 3)];
    assert_violation(check_counter(&h, BUDGET));
    // One unknown INCR explains one skipped value, not two.
    let h = vec![incr(0, 0, 1, 1), incr_unknown(1, 0), incr(0, 2, 3, 4)];
    assert_violation(check_counter(&h, BUDGET));
}

#[test]
fn counter_duplicate_value_is_a_violation() {
    let h = vec![incr(0, 0, 10, 1), incr(1, 0, 10, 1)];
    assert_violation(check_counter(&h, BUDGET));
}

#[test]
fn counter_lost_increment_is_a_violation() {
    let h = vec![incr(0, 0, 1, 1), cget(1, 2, 3, None)];
    assert_violation(check_counter(&h, BUDGET));
}

#[test]
fn many_unknown_increments_stay_fast() {
    // 40 timed-out INCRs, of which the reads show that exactly 17 applied.
    // Without treating identical unknown ops as interchangeable this is a
    // C(40,17) search; with it, it is trivial.
    let mut h: Vec<CounterOp> = (0..40).map(|i| incr_unknown(i, i as u64)).collect();
    h.push(cget(100, 1000, 1001, Some(17)));
    h.push(incr(100, 1002, 1003, 18));
    // ...and this read, if 18 is impossible, must be detected too.
    // (Microseconds when idle; 5 s leaves room for a busy machine and is
    // still nothing next to a C(40,17) search.)
    let t = Instant::now();
    assert_ok(check_counter(&h, Duration::from_secs(5)));
    h.push(cget(100, 1004, 1005, Some(17)));
    assert_violation(check_counter(&h, Duration::from_secs(5)));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

// ---- large random histories ---------------------------------------------------

struct Sim {
    clients: usize,
    ops_per_client: usize,
    keys: usize,
    /// Probability that an op's fate is unknown to the client.
    unknown: f64,
}

/// One simulated op: its interval, the moment it "really" took effect (None
/// = never), and what it did.
struct SimOp {
    key: usize,
    client: usize,
    invoke: u64,
    ret: u64,
    lin: Option<u64>,
    write: bool,
    unknown: bool,
}

impl Sim {
    /// Clients issue ops back to back; each op takes effect at a random point
    /// of its interval (an unknown one possibly much later, or never).
    fn schedule(&self, rng: &mut StdRng) -> Vec<SimOp> {
        let mut ops = Vec::new();
        for client in 0..self.clients {
            let mut t = rng.random_range(0..100);
            for _ in 0..self.ops_per_client {
                let invoke = t;
                let ret = invoke + rng.random_range(1..200);
                let unknown = rng.random_bool(self.unknown);
                let lin = if !unknown {
                    Some(rng.random_range(invoke..=ret))
                } else if rng.random_bool(0.5) {
                    Some(invoke + rng.random_range(0..2000))
                } else {
                    None
                };
                ops.push(SimOp {
                    key: rng.random_range(0..self.keys),
                    client,
                    invoke,
                    ret,
                    lin,
                    write: rng.random_bool(0.5),
                    unknown,
                });
                t = ret + rng.random_range(0..50);
            }
        }
        ops
    }

    fn register_history(&self, seed: u64) -> Vec<RegisterOp> {
        let mut rng = StdRng::seed_from_u64(seed);
        let sim = self.schedule(&mut rng);
        let mut order: Vec<usize> = (0..sim.len()).filter(|&i| sim[i].lin.is_some()).collect();
        order.sort_by_key(|&i| sim[i].lin);
        let mut outputs = vec![None; sim.len()];
        let mut regs: Vec<Option<String>> = vec![None; self.keys];
        for i in order {
            let s = &sim[i];
            if s.write {
                regs[s.key] = Some(format!("v{i}"));
                outputs[i] = Some(RegisterOutput::Ok);
            } else {
                outputs[i] = Some(RegisterOutput::Value(regs[s.key].clone()));
            }
        }
        sim.iter()
            .zip(outputs)
            .enumerate()
            .map(|(i, (s, out))| {
                let key = format!("key{}", s.key);
                let input = if s.write {
                    RegisterInput::Set(format!("v{i}"))
                } else {
                    RegisterInput::Get
                };
                if s.unknown {
                    Op::unknown(s.client, &key, s.invoke, input)
                } else {
                    Op::ok(s.client, &key, s.invoke, s.ret, input, out.unwrap())
                }
            })
            .collect()
    }

    fn counter_history(&self, seed: u64) -> Vec<CounterOp> {
        let mut rng = StdRng::seed_from_u64(seed);
        let sim = self.schedule(&mut rng);
        let mut order: Vec<usize> = (0..sim.len()).filter(|&i| sim[i].lin.is_some()).collect();
        order.sort_by_key(|&i| sim[i].lin);
        let mut outputs = vec![None; sim.len()];
        let mut counts: Vec<i64> = vec![0; self.keys];
        for i in order {
            let s = &sim[i];
            if s.write {
                counts[s.key] += 1;
                outputs[i] = Some(CounterOutput::Value(counts[s.key]));
            } else {
                let c = counts[s.key];
                outputs[i] = Some(CounterOutput::Read((c > 0).then_some(c)));
            }
        }
        sim.iter()
            .zip(outputs)
            .map(|(s, out)| {
                let key = format!("key{}", s.key);
                let input = if s.write {
                    CounterInput::Incr
                } else {
                    CounterInput::Get
                };
                if s.unknown {
                    Op::unknown(s.client, &key, s.invoke, input)
                } else {
                    Op::ok(s.client, &key, s.invoke, s.ret, input, out.unwrap())
                }
            })
            .collect()
    }
}

/// Indexes of the ops invoked in the second half of the run, earliest first
/// (the history is stored client by client, so index order is not time).
fn from_the_middle<I, O>(h: &[Op<I, O>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..h.len()).collect();
    idx.sort_by_key(|&i| h[i].invoke);
    idx.split_off(h.len() / 2)
}

/// Turn one read in the second half of the history into a stale read: it
/// returns the value of a write that was certainly overwritten before the
/// read began (write `s` returned before write `s2` began, and `s2` returned
/// before the read began; values are unique).
fn corrupt_register(h: &mut [RegisterOp]) {
    let is_set =
        |o: &RegisterOp| matches!(o.input, RegisterInput::Set(_)) && o.outcome == Outcome::Ok;
    for r in from_the_middle(h) {
        if h[r].input != RegisterInput::Get || h[r].outcome != Outcome::Ok {
            continue;
        }
        let (key, inv) = (h[r].key.clone(), h[r].invoke);
        let same = |o: &RegisterOp| o.key == key && is_set(o);
        let Some(s2) = h
            .iter()
            .filter(|o| same(o) && o.ret.unwrap() < inv)
            .max_by_key(|o| o.invoke)
        else {
            continue;
        };
        let Some(s) = h
            .iter()
            .filter(|o| same(o) && o.ret.unwrap() < s2.invoke)
            .max_by_key(|o| o.ret)
        else {
            continue;
        };
        let RegisterInput::Set(stale) = s.input.clone() else {
            unreachable!()
        };
        if h[r].output == Some(RegisterOutput::Value(Some(stale.clone()))) {
            continue;
        }
        h[r].output = Some(RegisterOutput::Value(Some(stale)));
        return;
    }
    panic!("no read to corrupt");
}

/// Make one read in the second half return less than an INCR that returned
/// before the read began: the counter went backwards.
fn corrupt_counter(h: &mut [CounterOp]) {
    for r in from_the_middle(h) {
        if h[r].input != CounterInput::Get || h[r].outcome != Outcome::Ok {
            continue;
        }
        let (key, inv) = (h[r].key.clone(), h[r].invoke);
        let max_before = h
            .iter()
            .filter(|o| o.key == key && o.outcome == Outcome::Ok && o.ret.unwrap() < inv)
            .filter_map(|o| match o.output {
                Some(CounterOutput::Value(v)) => Some(v),
                _ => None,
            })
            .max();
        if let Some(v) = max_before.filter(|v| *v >= 2) {
            h[r].output = Some(CounterOutput::Read(Some(v - 1)));
            return;
        }
    }
    panic!("no read to corrupt");
}

const BIG: Sim = Sim {
    clients: 8,
    ops_per_client: 625, // 5000 ops on one key
    keys: 1,
    unknown: 0.02,
};

#[test]
fn big_random_register_history_passes_fast() {
    let h = BIG.register_history(1);
    assert_eq!(h.len(), 5000);
    let t = Instant::now();
    // The budget is the assertion: a timeout is a failure.
    assert_ok(check_register(&h, BIG_PASS_BUDGET));
    eprintln!("5000-op register history, 8 clients: {:?}", t.elapsed());
}

#[test]
fn big_random_register_history_with_one_stale_read_fails() {
    let mut h = BIG.register_history(1);
    corrupt_register(&mut h);
    let t = Instant::now();
    assert_violation(check_register(&h, BIG_FAIL_BUDGET));
    eprintln!(
        "corrupted 5000-op register history rejected in {:?}",
        t.elapsed()
    );
}

#[test]
fn big_random_counter_history_passes_and_corruption_fails() {
    let h = BIG.counter_history(2);
    let t = Instant::now();
    assert_ok(check_counter(&h, BIG_PASS_BUDGET));
    eprintln!("5000-op counter history, 8 clients: {:?}", t.elapsed());
    let mut bad = h.clone();
    corrupt_counter(&mut bad);
    assert_violation(check_counter(&bad, BIG_FAIL_BUDGET));
}

#[test]
fn many_seeds_many_keys() {
    let sim = Sim {
        clients: 8,
        ops_per_client: 200,
        keys: 3,
        unknown: 0.05,
    };
    for seed in 0..20 {
        let h = sim.register_history(seed);
        assert_ok(check_register(&h, BIG_PASS_BUDGET));
        let mut bad = h;
        corrupt_register(&mut bad);
        assert_violation(check_register(&bad, BIG_FAIL_BUDGET));

        let h = sim.counter_history(seed);
        assert_ok(check_counter(&h, BIG_PASS_BUDGET));
        let mut bad = h;
        corrupt_counter(&mut bad);
        assert_violation(check_counter(&bad, BIG_FAIL_BUDGET));
    }
}

#[test]
fn exhausted_budget_is_a_timeout_not_a_pass() {
    let h = BIG.register_history(3);
    match check_register(&h, Duration::ZERO) {
        CheckResult::Timeout { key } => assert_eq!(key, "key0"),
        r => panic!("expected timeout, got {r:?}"),
    }
}

#[test]
fn recorder_collects_from_threads() {
    let rec: Recorder<RegisterInput, RegisterOutput> = Recorder::new();
    std::thread::scope(|s| {
        for c in 0..4 {
            let rec = &rec;
            s.spawn(move || {
                let inv = rec.now();
                let ret = rec.now();
                rec.push(Op::ok(
                    c,
                    "k",
                    inv,
                    ret,
                    RegisterInput::Get,
                    RegisterOutput::Value(None),
                ));
            });
        }
    });
    let h = rec.into_history();
    assert_eq!(h.len(), 4);
    assert_ok(check_register(&h, BUDGET));
}

// ---- cross-check against brute force ----------------------------------------

/// Reference semantics, by exhaustive search over orders: an op may go next if
/// no other remaining completed op returned before it was invoked; unknown
/// ops may also never happen. Exponential, for tiny histories only.
fn brute<S: Clone>(
    ops: &[(u64, Option<u64>, bool)],
    left: &mut Vec<usize>,
    state: S,
    step: &dyn Fn(&S, usize) -> Option<S>,
) -> bool {
    if left.iter().all(|&i| !ops[i].2) {
        return true;
    }
    for k in 0..left.len() {
        let i = left[k];
        let blocked = left
            .iter()
            .any(|&j| ops[j].2 && ops[j].1.unwrap_or(u64::MAX) < ops[i].0);
        if blocked {
            continue;
        }
        if let Some(s2) = step(&state, i) {
            left.remove(k);
            let ok = brute(ops, left, s2, step);
            left.insert(k, i);
            if ok {
                return true;
            }
        }
    }
    false
}

#[test]
fn agrees_with_brute_force_on_small_random_histories() {
    let mut rng = StdRng::seed_from_u64(7);
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..5000 {
        let counter = case % 2 == 1;
        let n = rng.random_range(1..=7);
        let mut meta = Vec::new();
        let mut reg: Vec<RegisterOp> = Vec::new();
        let mut cnt: Vec<CounterOp> = Vec::new();
        for c in 0..n {
            let invoke = rng.random_range(0..20u64);
            let ret = invoke + rng.random_range(0..10);
            let unknown = rng.random_bool(0.25);
            let write = rng.random_bool(0.5);
            // Few distinct values, so values repeat and outputs often fit.
            let v = rng.random_range(0..3i64);
            let read_v = (v > 0).then_some(v);
            meta.push((invoke, (!unknown).then_some(ret), !unknown));
            if counter {
                let (input, output) = if write {
                    (CounterInput::Incr, CounterOutput::Value(v + 1))
                } else {
                    (CounterInput::Get, CounterOutput::Read(read_v))
                };
                cnt.push(if unknown {
                    Op::unknown(c, "k", invoke, input)
                } else {
                    Op::ok(c, "k", invoke, ret, input, output)
                });
            } else {
                let (input, output) = if write {
                    (RegisterInput::Set(v.to_string()), RegisterOutput::Ok)
                } else {
                    (
                        RegisterInput::Get,
                        RegisterOutput::Value(read_v.map(|v| v.to_string())),
                    )
                };
                reg.push(if unknown {
                    Op::unknown(c, "k", invoke, input)
                } else {
                    Op::ok(c, "k", invoke, ret, input, output)
                });
            }
        }
        let mut left: Vec<usize> = (0..n).collect();
        let (expected, got) = if counter {
            let step = |s: &i64, i: usize| match (&cnt[i].input, &cnt[i].output) {
                (CounterInput::Incr, Some(CounterOutput::Value(v))) => {
                    (*v == s + 1).then_some(s + 1)
                }
                (CounterInput::Incr, None) => Some(s + 1),
                (CounterInput::Get, Some(CounterOutput::Read(v))) => {
                    (v.unwrap_or(0) == *s).then_some(*s)
                }
                (CounterInput::Get, None) => Some(*s),
                _ => unreachable!(),
            };
            (
                brute(&meta, &mut left, 0i64, &step),
                check_counter(&cnt, BUDGET),
            )
        } else {
            let step = |s: &Option<String>, i: usize| match (&reg[i].input, &reg[i].output) {
                (RegisterInput::Set(v), _) => Some(Some(v.clone())),
                (RegisterInput::Get, Some(RegisterOutput::Value(v))) => (v == s).then(|| s.clone()),
                (RegisterInput::Get, _) => Some(s.clone()),
            };
            (
                brute(&meta, &mut left, None, &step),
                check_register(&reg, BUDGET),
            )
        };
        assert!(
            !matches!(got, CheckResult::Timeout { .. }),
            "case {case} timed out"
        );
        if expected {
            valid += 1;
        } else {
            invalid += 1;
        }
        assert_eq!(
            got.is_ok(),
            expected,
            "case {case}: checker says {got:?}, brute force says {expected}\n{reg:#?}{cnt:#?}"
        );
    }
    // Both outcomes must be well represented for the comparison to mean much.
    assert!(
        valid > 500 && invalid > 500,
        "valid {valid}, invalid {invalid}"
    );
}
