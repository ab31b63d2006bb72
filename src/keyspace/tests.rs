//! Keyspace behaviour tests (Redis 7 semantics).

use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn bulk(s: &str) -> Outcome {
    Outcome::Bulk(b(s))
}

fn set(ks: &mut Keyspace, k: &str, v: &str, now: u64) -> Outcome {
    ks.apply(
        &WriteOp::Set {
            key: b(k),
            value: b(v),
            cond: SetCond::Always,
            ttl: Ttl::Clear,
            get: false,
        },
        now,
        Limits::default(),
    )
}

fn get(ks: &Keyspace, k: &str, now: u64) -> Outcome {
    ks.read(&ReadOp::Get { key: b(k) }, now)
}

#[test]
fn set_get_basic() {
    let mut ks = Keyspace::default();
    assert_eq!(set(&mut ks, "a", "1", 0), Outcome::Ok);
    assert_eq!(get(&ks, "a", 0), bulk("1"));
    assert_eq!(get(&ks, "missing", 0), Outcome::Nil);
    assert_eq!(ks.len(), 1);
}

fn w(ks: &mut Keyspace, op: WriteOp, now: u64) -> Outcome {
    ks.apply(&op, now, Limits::default())
}

/// Apply under a given `proto-max-bulk-len` (what the proposal carries).
fn w_max(ks: &mut Keyspace, op: WriteOp, now: u64, proto_max_bulk_len: u64) -> Outcome {
    ks.apply(&op, now, Limits { proto_max_bulk_len })
}

fn r(ks: &Keyspace, op: ReadOp, now: u64) -> Outcome {
    ks.read(&op, now)
}

fn set_full(k: &str, v: &str, cond: SetCond, ttl: Ttl, get: bool) -> WriteOp {
    WriteOp::Set {
        key: b(k),
        value: b(v),
        cond,
        ttl,
        get,
    }
}

fn ttl_of(ks: &Keyspace, k: &str, q: TtlQuery, now: u64) -> Outcome {
    r(
        ks,
        ReadOp::Ttl {
            key: b(k),
            query: q,
        },
        now,
    )
}

fn wrongtype() -> Outcome {
    Outcome::Err(KeyspaceError::WrongType)
}

/// A keyspace with "list" holding a non-string value.
fn with_list() -> Keyspace {
    let mut ks = Keyspace::default();
    ks.insert_value(b"list", Value::TestList, 0);
    ks
}

/// Checks the expiry index against the maps (every deadline indexed once,
/// positions right) and the counters.
fn check_invariants(ks: &Keyspace) {
    let mut n = 0;
    let mut with_deadline = 0;
    let mut heap = 0;
    for (slot, m) in ks.slots.iter().enumerate() {
        for (k, e) in m.iter() {
            assert_eq!(slot_of(k.as_bytes()), slot);
            n += 1;
            heap += entry_cost(k, e);
            if e.exp != NO_EXP {
                with_deadline += 1;
                assert_eq!(ks.expires[e.exp as usize].0.as_bytes(), k.as_bytes());
                assert_ne!(ks.expires[e.exp as usize].1, 0);
            }
        }
    }
    assert_eq!(n, ks.len);
    assert_eq!(with_deadline, ks.expires.len());
    assert_eq!(heap, ks.heap);
}

// ---- SET ----------------------------------------------------------------

#[test]
fn set_nx_xx_get_table() {
    use SetCond::*;
    // (existing?, cond, get) -> (reply, value after)
    let cases = [
        (false, Always, false, Outcome::Ok, Some("new")),
        (true, Always, false, Outcome::Ok, Some("new")),
        (false, IfAbsent, false, Outcome::Ok, Some("new")),
        (true, IfAbsent, false, Outcome::Nil, Some("old")),
        (false, IfPresent, false, Outcome::Nil, None),
        (true, IfPresent, false, Outcome::Ok, Some("new")),
        (false, Always, true, Outcome::Nil, Some("new")),
        (true, Always, true, bulk("old"), Some("new")),
        (false, IfAbsent, true, Outcome::Nil, Some("new")),
        (true, IfAbsent, true, bulk("old"), Some("old")),
        (false, IfPresent, true, Outcome::Nil, None),
        (true, IfPresent, true, bulk("old"), Some("new")),
    ];
    for (existing, cond, getf, reply, after) in cases {
        let mut ks = Keyspace::default();
        if existing {
            set(&mut ks, "k", "old", 0);
        }
        let got = w(&mut ks, set_full("k", "new", cond, Ttl::Clear, getf), 0);
        assert_eq!(got, reply, "{existing} {cond:?} {getf}");
        let want = after.map_or(Outcome::Nil, bulk);
        assert_eq!(get(&ks, "k", 0), want, "{existing} {cond:?} {getf}");
        check_invariants(&ks);
    }
}

#[test]
fn set_get_wrongtype() {
    let mut ks = with_list();
    let got = w(
        &mut ks,
        set_full("list", "v", SetCond::Always, Ttl::Clear, true),
        0,
    );
    assert_eq!(got, wrongtype());
    assert_eq!(
        r(&ks, ReadOp::Type { key: b("list") }, 0),
        Outcome::Status("list".into())
    );
    // Plain SET overwrites any type.
    assert_eq!(set(&mut ks, "list", "v", 0), Outcome::Ok);
    assert_eq!(get(&ks, "list", 0), bulk("v"));
}

#[test]
fn set_ttl_keep_clear_and_past() {
    let mut ks = Keyspace::default();
    w(
        &mut ks,
        set_full("k", "1", SetCond::Always, Ttl::At(5000), false),
        1000,
    );
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 1000), Outcome::Int(4000));
    w(
        &mut ks,
        set_full("k", "2", SetCond::Always, Ttl::Keep, false),
        1000,
    );
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 1000), Outcome::Int(4000));
    assert_eq!(get(&ks, "k", 1000), bulk("2"));
    w(
        &mut ks,
        set_full("k", "3", SetCond::Always, Ttl::Clear, false),
        1000,
    );
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 1000), Outcome::Int(-1));
    assert_eq!(ks.expires_len(), 0);
    // KEEPTTL on a missing key: no deadline.
    w(
        &mut ks,
        set_full("n", "1", SetCond::Always, Ttl::Keep, false),
        1000,
    );
    assert_eq!(ttl_of(&ks, "n", TtlQuery::Millis, 1000), Outcome::Int(-1));
    // A deadline at or before now: OK, but the key is gone.
    let got = w(
        &mut ks,
        set_full("k", "4", SetCond::Always, Ttl::At(1000), false),
        1000,
    );
    assert_eq!(got, Outcome::Ok);
    assert_eq!(get(&ks, "k", 1000), Outcome::Nil);
    assert_eq!(ks.len(), 1);
    check_invariants(&ks);
}

#[test]
fn expiry_at_exactly_now() {
    let mut ks = Keyspace::default();
    w(
        &mut ks,
        set_full("k", "v", SetCond::Always, Ttl::At(100), false),
        0,
    );
    assert_eq!(get(&ks, "k", 99), bulk("v"));
    assert_eq!(get(&ks, "k", 100), Outcome::Nil);
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 99), Outcome::Int(1));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 100), Outcome::Int(-2));
    assert_eq!(
        r(&ks, ReadOp::Exists { keys: vec![b("k")] }, 100),
        Outcome::Int(0)
    );
    assert_eq!(
        r(&ks, ReadOp::DbSize, 100),
        Outcome::Int(1),
        "DBSIZE counts undeleted"
    );
    // NX treats the expired key as absent.
    let got = w(
        &mut ks,
        set_full("k", "n", SetCond::IfAbsent, Ttl::Clear, true),
        100,
    );
    assert_eq!(got, Outcome::Nil);
    assert_eq!(get(&ks, "k", 100), bulk("n"));
    check_invariants(&ks);
}

// ---- MSET / GETDEL / GETEX ---------------------------------------------

#[test]
fn relative_ttls_resolve_at_the_entrys_clock() {
    // The deadline is counted from the applying entry's time, not from when
    // the proposer parsed the command: even an entry applied long after a
    // 500 ms TTL was asked for leaves the key present for 500 ms.
    let mut ks = Keyspace::default();
    let set_px = set_full("k", "v", SetCond::Always, Ttl::In(500), false);
    assert_eq!(w(&mut ks, set_px, 10_000), Outcome::Ok);
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::AbsMillis, 10_000),
        Outcome::Int(10_500)
    );
    assert_eq!(get(&ks, "k", 10_499), bulk("v"));
    assert_eq!(get(&ks, "k", 10_500), Outcome::Nil);
    let expire_in = |ms| WriteOp::ExpireIn {
        key: b("k"),
        ms,
        cond: ExpireCond::Always,
    };
    assert_eq!(w(&mut ks, expire_in(2_000), 10_100), Outcome::Int(1));
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::Millis, 10_100),
        Outcome::Int(2_000)
    );
    let getex = WriteOp::GetEx {
        key: b("k"),
        ttl: Ttl::In(300),
    };
    assert_eq!(w(&mut ks, getex, 11_000), bulk("v"));
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::AbsMillis, 11_000),
        Outcome::Int(11_300)
    );
    // Zero or negative relative EXPIRE deletes, as in Redis.
    assert_eq!(w(&mut ks, expire_in(0), 11_000), Outcome::Int(1));
    assert_eq!(get(&ks, "k", 11_000), Outcome::Nil);
    assert_eq!(ks.len(), 0);
    check_invariants(&ks);
}

#[test]
fn mset_and_msetnx() {
    let mut ks = Keyspace::default();
    w(
        &mut ks,
        set_full("a", "x", SetCond::Always, Ttl::At(10_000), false),
        0,
    );
    let pairs = vec![(b("a"), b("1")), (b("b"), b("2")), (b("a"), b("3"))];
    assert_eq!(
        w(&mut ks, WriteOp::MSet { pairs, nx: false }, 0),
        Outcome::Ok
    );
    assert_eq!(get(&ks, "a", 0), bulk("3"), "last duplicate wins");
    assert_eq!(
        ttl_of(&ks, "a", TtlQuery::Millis, 0),
        Outcome::Int(-1),
        "MSET clears TTL"
    );
    let pairs = vec![(b("c"), b("1")), (b("b"), b("9"))];
    assert_eq!(
        w(&mut ks, WriteOp::MSet { pairs, nx: true }, 0),
        Outcome::Int(0)
    );
    assert_eq!(get(&ks, "c", 0), Outcome::Nil, "all or nothing");
    let pairs = vec![(b("c"), b("1")), (b("d"), b("2"))];
    assert_eq!(
        w(&mut ks, WriteOp::MSet { pairs, nx: true }, 0),
        Outcome::Int(1)
    );
    assert_eq!(get(&ks, "d", 0), bulk("2"));
    check_invariants(&ks);
}

#[test]
fn getdel_getex() {
    let mut ks = with_list();
    set(&mut ks, "k", "v", 0);
    assert_eq!(w(&mut ks, WriteOp::GetDel { key: b("k") }, 0), bulk("v"));
    assert_eq!(w(&mut ks, WriteOp::GetDel { key: b("k") }, 0), Outcome::Nil);
    assert_eq!(
        w(&mut ks, WriteOp::GetDel { key: b("list") }, 0),
        wrongtype()
    );
    assert_eq!(ks.len(), 1);

    set(&mut ks, "k", "v", 0);
    let ex = |ttl| WriteOp::GetEx { key: b("k"), ttl };
    assert_eq!(w(&mut ks, ex(Ttl::At(5000)), 0), bulk("v"));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 0), Outcome::Int(5000));
    assert_eq!(w(&mut ks, ex(Ttl::Keep), 0), bulk("v"));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 0), Outcome::Int(5000));
    assert_eq!(w(&mut ks, ex(Ttl::Clear), 0), bulk("v"));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 0), Outcome::Int(-1));
    assert_eq!(
        w(&mut ks, ex(Ttl::At(10)), 10),
        bulk("v"),
        "past deadline deletes"
    );
    assert_eq!(get(&ks, "k", 10), Outcome::Nil);
    assert_eq!(w(&mut ks, ex(Ttl::Clear), 10), Outcome::Nil);
    let exl = WriteOp::GetEx {
        key: b("list"),
        ttl: Ttl::Clear,
    };
    assert_eq!(w(&mut ks, exl, 0), wrongtype());
    check_invariants(&ks);
}

// ---- APPEND / SETRANGE ---------------------------------------------------

#[test]
fn append_and_limits() {
    let mut ks = Keyspace::default();
    let w = |ks: &mut Keyspace, op, now| w_max(ks, op, now, 10);
    let ap = |k: &str, v: &str| WriteOp::Append {
        key: b(k),
        value: b(v),
    };
    assert_eq!(w(&mut ks, ap("k", "hello"), 0), Outcome::Int(5));
    assert_eq!(w(&mut ks, ap("k", " wor"), 0), Outcome::Int(9));
    assert_eq!(
        w(&mut ks, ap("k", "ld"), 0),
        Outcome::Err(KeyspaceError::TooBig)
    );
    assert_eq!(w(&mut ks, ap("k", ""), 0), Outcome::Int(9));
    assert_eq!(get(&ks, "k", 0), bulk("hello wor"));
    assert_eq!(
        w(&mut ks, ap("n", "01234567890"), 0),
        Outcome::Err(KeyspaceError::TooBig)
    );
    // APPEND keeps the deadline.
    w(
        &mut ks,
        WriteOp::Expire {
            key: b("k"),
            at_ms: 100,
            cond: ExpireCond::Always,
        },
        0,
    );
    w(&mut ks, ap("k", "!"), 0);
    assert_eq!(ttl_of(&ks, "k", TtlQuery::AbsMillis, 0), Outcome::Int(100));
    ks.insert_value(b"list", Value::TestList, 0);
    assert_eq!(w(&mut ks, ap("list", "x"), 0), wrongtype());
    // The limit is the one the write carries, not the keyspace's: the
    // same state accepts the append under a larger limit.
    assert_eq!(w_max(&mut ks, ap("k", "ld"), 0, 12), Outcome::Int(12));
    check_invariants(&ks);
}

#[test]
fn setrange_rules() {
    let mut ks = Keyspace::default();
    let w = |ks: &mut Keyspace, op, now| w_max(ks, op, now, 100);
    let sr = |k: &str, off: u64, v: &str| WriteOp::SetRange {
        key: b(k),
        offset: off,
        value: b(v),
    };
    assert_eq!(w(&mut ks, sr("k", 5, ""), 0), Outcome::Int(0));
    assert_eq!(ks.len(), 0, "empty value creates nothing");
    assert_eq!(
        w(&mut ks, sr("k", 1000, ""), 0),
        Outcome::Int(0),
        "no size check when empty"
    );
    assert_eq!(w(&mut ks, sr("k", 3, "ab"), 0), Outcome::Int(5));
    assert_eq!(
        get(&ks, "k", 0),
        Outcome::Bulk(Bytes::from_static(b"\0\0\0ab"))
    );
    set(&mut ks, "h", "Hello World", 0);
    assert_eq!(w(&mut ks, sr("h", 6, "Redis"), 0), Outcome::Int(11));
    assert_eq!(get(&ks, "h", 0), bulk("Hello Redis"));
    assert_eq!(w(&mut ks, sr("h", 0, "J"), 0), Outcome::Int(11));
    assert_eq!(get(&ks, "h", 0), bulk("Jello Redis"));
    assert_eq!(w(&mut ks, sr("h", 0, ""), 0), Outcome::Int(11));
    assert_eq!(
        w(&mut ks, sr("h", 99, "ab"), 0),
        Outcome::Err(KeyspaceError::TooBig)
    );
    assert_eq!(w(&mut ks, sr("h", 98, "ab"), 0), Outcome::Int(100));
    assert_eq!(
        w(&mut ks, sr("z", u64::MAX, "ab"), 0),
        Outcome::Err(KeyspaceError::TooBig),
        "offset overflow"
    );
    ks.insert_value(b"list", Value::TestList, 0);
    assert_eq!(w(&mut ks, sr("list", 0, "x"), 0), wrongtype());
    assert_eq!(w(&mut ks, sr("list", 0, ""), 0), wrongtype());
    check_invariants(&ks);
}

// ---- INCR family ---------------------------------------------------------

#[test]
fn incrby_rules() {
    let mut ks = with_list();
    let inc = |k: &str, d: i64| WriteOp::IncrBy {
        key: b(k),
        delta: d,
    };
    assert_eq!(w(&mut ks, inc("n", 1), 0), Outcome::Int(1));
    assert_eq!(w(&mut ks, inc("n", -11), 0), Outcome::Int(-10));
    assert_eq!(get(&ks, "n", 0), bulk("-10"));
    set(&mut ks, "m", &i64::MAX.to_string(), 0);
    assert_eq!(
        w(&mut ks, inc("m", 1), 0),
        Outcome::Err(KeyspaceError::Overflow)
    );
    assert_eq!(
        get(&ks, "m", 0),
        bulk(&i64::MAX.to_string()),
        "unchanged on error"
    );
    set(&mut ks, "m", &i64::MIN.to_string(), 0);
    assert_eq!(
        w(&mut ks, inc("m", -1), 0),
        Outcome::Err(KeyspaceError::Overflow)
    );
    for bad in [
        " 1",
        "1 ",
        "+1",
        "01",
        "abc",
        "",
        "1.5",
        "99999999999999999999",
    ] {
        set(&mut ks, "s", bad, 0);
        assert_eq!(
            w(&mut ks, inc("s", 1), 0),
            Outcome::Err(KeyspaceError::NotInteger),
            "{bad:?}"
        );
    }
    assert_eq!(w(&mut ks, inc("list", 1), 0), wrongtype());
    // INCR keeps the deadline.
    w(
        &mut ks,
        set_full("t", "5", SetCond::Always, Ttl::At(900), false),
        0,
    );
    assert_eq!(w(&mut ks, inc("t", 1), 0), Outcome::Int(6));
    assert_eq!(ttl_of(&ks, "t", TtlQuery::AbsMillis, 0), Outcome::Int(900));
    // An expired key counts as missing.
    assert_eq!(w(&mut ks, inc("t", 1), 900), Outcome::Int(1));
    assert_eq!(ttl_of(&ks, "t", TtlQuery::AbsMillis, 900), Outcome::Int(-1));
    check_invariants(&ks);
}

#[test]
fn incrbyfloat_rules() {
    let mut ks = with_list();
    let f = |k: &str, d: f64| WriteOp::IncrByFloat {
        key: b(k),
        delta: d,
    };
    set(&mut ks, "foo", "10", 0);
    assert_eq!(w(&mut ks, f("foo", 10.5), 0), bulk("20.5"));
    assert_eq!(get(&ks, "foo", 0), bulk("20.5"));
    assert_eq!(w(&mut ks, f("new", 1.0), 0), bulk("1"));
    assert_eq!(w(&mut ks, f("new", 0.25), 0), bulk("1.25"));
    set(&mut ks, "e", "5.0e3", 0);
    assert_eq!(w(&mut ks, f("e", 2.0e2), 0), bulk("5200"));
    set(&mut ks, "n", "-5000", 0);
    assert_eq!(w(&mut ks, f("n", 0.0), 0), bulk("-5000"));
    set(&mut ks, "p", "0.1", 0);
    assert_eq!(w(&mut ks, f("p", 0.2), 0), bulk("0.3"));
    set(&mut ks, "q", "1.5", 0);
    assert_eq!(w(&mut ks, f("q", 1.1), 0), bulk("2.6"));
    set(&mut ks, "z", "1", 0);
    assert_eq!(w(&mut ks, f("z", -1.0), 0), bulk("0"), "no negative zero");
    set(&mut ks, "big", "1.7e308", 0);
    assert_eq!(
        w(&mut ks, f("big", 1.7e308), 0),
        Outcome::Err(KeyspaceError::NanOrInfinity)
    );
    assert_eq!(get(&ks, "big", 0), bulk("1.7e308"));
    set(&mut ks, "inf", "inf", 0);
    assert_eq!(
        w(&mut ks, f("inf", 1.0), 0),
        Outcome::Err(KeyspaceError::NanOrInfinity)
    );
    for bad in ["abc", " 1", "1 ", "nan", "1\u{0}2", ""] {
        set(&mut ks, "s", bad, 0);
        assert_eq!(
            w(&mut ks, f("s", 1.0), 0),
            Outcome::Err(KeyspaceError::NotFloat),
            "{bad:?}"
        );
    }
    assert_eq!(w(&mut ks, f("list", 1.0), 0), wrongtype());
    check_invariants(&ks);
}

// ---- DEL / RENAME --------------------------------------------------------

#[test]
fn del_counts() {
    let mut ks = Keyspace::default();
    set(&mut ks, "a", "1", 0);
    set(&mut ks, "b", "1", 0);
    w(
        &mut ks,
        set_full("c", "1", SetCond::Always, Ttl::At(5), false),
        0,
    );
    let del = WriteOp::Del {
        keys: vec![b("a"), b("a"), b("b"), b("c"), b("zz")],
    };
    assert_eq!(
        w(&mut ks, del, 5),
        Outcome::Int(2),
        "repeats and expired not counted"
    );
    assert_eq!(ks.len(), 0, "expired key removed lazily");
    check_invariants(&ks);
}

#[test]
fn rename_rules() {
    let mut ks = Keyspace::default();
    let ren = |s: &str, d: &str, nx| WriteOp::Rename {
        src: b(s),
        dst: b(d),
        nx,
    };
    assert_eq!(
        w(&mut ks, ren("a", "b", false), 0),
        Outcome::Err(KeyspaceError::NoSuchKey)
    );
    assert_eq!(
        w(&mut ks, ren("a", "a", true), 0),
        Outcome::Err(KeyspaceError::NoSuchKey)
    );
    w(
        &mut ks,
        set_full("a", "1", SetCond::Always, Ttl::At(1000), false),
        0,
    );
    assert_eq!(w(&mut ks, ren("a", "a", false), 0), Outcome::Ok);
    assert_eq!(w(&mut ks, ren("a", "a", true), 0), Outcome::Int(0));
    assert_eq!(w(&mut ks, ren("a", "b", false), 0), Outcome::Ok);
    assert_eq!(get(&ks, "a", 0), Outcome::Nil);
    assert_eq!(get(&ks, "b", 0), bulk("1"));
    assert_eq!(
        ttl_of(&ks, "b", TtlQuery::AbsMillis, 0),
        Outcome::Int(1000),
        "deadline moves"
    );
    set(&mut ks, "c", "2", 0);
    assert_eq!(w(&mut ks, ren("b", "c", true), 0), Outcome::Int(0));
    assert_eq!(w(&mut ks, ren("c", "b", false), 0), Outcome::Ok);
    assert_eq!(
        ttl_of(&ks, "b", TtlQuery::AbsMillis, 0),
        Outcome::Int(-1),
        "dst deadline gone"
    );
    assert_eq!(ks.len(), 1);
    set(&mut ks, "x", "3", 0);
    assert_eq!(w(&mut ks, ren("x", "y", true), 0), Outcome::Int(1));
    // A long (heap) key renamed to a short one and back.
    let long = "k".repeat(40);
    assert_eq!(w(&mut ks, ren("y", &long, false), 0), Outcome::Ok);
    assert_eq!(get(&ks, &long, 0), bulk("3"));
    // Renaming over an expired destination with NX succeeds.
    w(
        &mut ks,
        set_full("old", "1", SetCond::Always, Ttl::At(10), false),
        0,
    );
    assert_eq!(w(&mut ks, ren(&long, "old", true), 10), Outcome::Int(1));
    check_invariants(&ks);
}

// ---- EXPIRE / PERSIST / TTL ----------------------------------------------

#[test]
fn expire_condition_table() {
    use ExpireCond::*;
    // (current deadline (0 = none), cond, new) -> applied?
    let cases = [
        (0, Always, 500, true),
        (0, Nx, 500, true),
        (0, Xx, 500, false),
        (0, Gt, 500, false),
        (0, Lt, 500, true),
        (300, Always, 500, true),
        (300, Nx, 500, false),
        (300, Xx, 500, true),
        (300, Gt, 500, true),
        (300, Gt, 300, false),
        (300, Gt, 200, false),
        (300, Lt, 500, false),
        (300, Lt, 300, false),
        (300, Lt, 200, true),
    ];
    for (cur, cond, new, applied) in cases {
        let mut ks = Keyspace::default();
        let ttl = if cur == 0 { Ttl::Clear } else { Ttl::At(cur) };
        w(
            &mut ks,
            set_full("k", "v", SetCond::Always, ttl, false),
            100,
        );
        let got = w(
            &mut ks,
            WriteOp::Expire {
                key: b("k"),
                at_ms: new,
                cond,
            },
            100,
        );
        assert_eq!(got, Outcome::Int(applied as i64), "{cur} {cond:?} {new}");
        let want = if applied {
            new
        } else if cur == 0 {
            -1i64 as u64
        } else {
            cur
        };
        assert_eq!(
            ttl_of(&ks, "k", TtlQuery::AbsMillis, 100),
            Outcome::Int(want as i64),
            "{cur} {cond:?} {new}"
        );
        check_invariants(&ks);
    }
}

#[test]
fn expire_in_past_and_missing() {
    let mut ks = Keyspace::default();
    let ex = |at| WriteOp::Expire {
        key: b("k"),
        at_ms: at,
        cond: ExpireCond::Always,
    };
    assert_eq!(w(&mut ks, ex(5000), 0), Outcome::Int(0));
    set(&mut ks, "k", "v", 1000);
    assert_eq!(
        w(&mut ks, ex(1000), 1000),
        Outcome::Int(1),
        "at == now deletes"
    );
    assert_eq!(ks.len(), 0);
    set(&mut ks, "k", "v", 1000);
    assert_eq!(w(&mut ks, ex(1), 1000), Outcome::Int(1));
    assert_eq!(ks.len(), 0);
    check_invariants(&ks);
}

#[test]
fn persist_and_ttl_queries() {
    let mut ks = Keyspace::default();
    let p = || WriteOp::Persist { key: b("k") };
    assert_eq!(w(&mut ks, p(), 0), Outcome::Int(0));
    set(&mut ks, "k", "v", 0);
    assert_eq!(w(&mut ks, p(), 0), Outcome::Int(0));
    w(
        &mut ks,
        WriteOp::Expire {
            key: b("k"),
            at_ms: 10_499,
            cond: ExpireCond::Always,
        },
        0,
    );
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Seconds, 0), Outcome::Int(10));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Seconds, 1), Outcome::Int(10));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Millis, 1), Outcome::Int(10_498));
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::AbsMillis, 1),
        Outcome::Int(10_499)
    );
    assert_eq!(ttl_of(&ks, "k", TtlQuery::AbsSeconds, 1), Outcome::Int(10));
    w(
        &mut ks,
        WriteOp::Expire {
            key: b("k"),
            at_ms: 10_500,
            cond: ExpireCond::Always,
        },
        0,
    );
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::Seconds, 0),
        Outcome::Int(11),
        "(ms+500)/1000"
    );
    assert_eq!(ttl_of(&ks, "k", TtlQuery::AbsSeconds, 0), Outcome::Int(11));
    assert_eq!(w(&mut ks, p(), 0), Outcome::Int(1));
    assert_eq!(ttl_of(&ks, "k", TtlQuery::Seconds, 0), Outcome::Int(-1));
    assert_eq!(ttl_of(&ks, "none", TtlQuery::Seconds, 0), Outcome::Int(-2));
    // Far-future deadlines neither overflow nor panic.
    w(
        &mut ks,
        WriteOp::Expire {
            key: b("k"),
            at_ms: u64::MAX,
            cond: ExpireCond::Always,
        },
        0,
    );
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::AbsMillis, 0),
        Outcome::Int(i64::MAX)
    );
    assert_eq!(
        ttl_of(&ks, "k", TtlQuery::Seconds, 0),
        Outcome::Int((u64::MAX / 1000) as i64)
    );
    w(&mut ks, WriteOp::Persist { key: b("k") }, 0);
    assert_eq!(ks.expires_len(), 0);
    check_invariants(&ks);
}

#[test]
fn flushall_and_delete_expired() {
    let mut ks = Keyspace::default();
    for i in 0..100 {
        let ttl = if i % 2 == 0 {
            Ttl::At(50 + i)
        } else {
            Ttl::Clear
        };
        w(
            &mut ks,
            set_full(&format!("k{i}"), "v", SetCond::Always, ttl, false),
            0,
        );
    }
    assert_eq!(ks.expires_len(), 50);
    let keys: Vec<Bytes> = (0..100).map(|i| b(&format!("k{i}"))).collect();
    // At now=100: even keys with 50+i <= 100, i.e. i in 0..=50 even: 26 keys.
    let got = w(&mut ks, WriteOp::DeleteExpired { keys: keys.clone() }, 100);
    assert_eq!(got, Outcome::Int(26));
    assert_eq!(ks.len(), 74);
    assert_eq!(
        w(&mut ks, WriteOp::DeleteExpired { keys }, 100),
        Outcome::Int(0)
    );
    check_invariants(&ks);
    assert_eq!(w(&mut ks, WriteOp::FlushAll, 100), Outcome::Ok);
    assert_eq!(ks.len(), 0);
    assert_eq!(ks.expires_len(), 0);
    assert_eq!(r(&ks, ReadOp::DbSize, 0), Outcome::Int(0));
    check_invariants(&ks);
}

#[test]
fn sample_expired_finds_them() {
    let mut ks = Keyspace::default();
    assert_eq!(ks.sample_expired(0, 20), (0, vec![]));
    for i in 0..1000u64 {
        let at = if i < 500 { 10 } else { 1_000_000 };
        w(
            &mut ks,
            set_full(&format!("k{i}"), "v", SetCond::Always, Ttl::At(at), false),
            0,
        );
    }
    set(&mut ks, "plain", "v", 0);
    let (looked, expired) = ks.sample_expired(10, 20);
    assert_eq!(looked, 20);
    assert!(!expired.is_empty() && expired.len() <= 20);
    for k in &expired {
        let idx: u64 = std::str::from_utf8(&k[1..]).unwrap().parse().unwrap();
        assert!(idx < 500);
    }
    // Active expiry loop: sample, delete, repeat while > 25% expired.
    let mut rounds = 0;
    loop {
        let (looked, expired) = ks.sample_expired(10, 20);
        w(
            &mut ks,
            WriteOp::DeleteExpired {
                keys: expired.clone(),
            },
            10,
        );
        rounds += 1;
        if expired.len() * 4 <= looked || rounds > 10_000 {
            break;
        }
    }
    assert!(ks.len() < 1001, "some expired keys deleted");
    // Keep going and every expired key is eventually found.
    for _ in 0..20_000 {
        let (_, expired) = ks.sample_expired(10, 20);
        w(&mut ks, WriteOp::DeleteExpired { keys: expired }, 10);
        if ks.len() == 501 {
            break;
        }
    }
    assert_eq!(ks.len(), 501);
    assert_eq!(ks.expires_len(), 500);
    check_invariants(&ks);
    // Small index: everything is examined.
    let mut small = Keyspace::default();
    w(
        &mut small,
        set_full("a", "v", SetCond::Always, Ttl::At(5), false),
        0,
    );
    w(
        &mut small,
        set_full("b", "v", SetCond::Always, Ttl::At(50), false),
        0,
    );
    assert_eq!(small.sample_expired(5, 20), (2, vec![b("a")]));
}

// ---- reads ----------------------------------------------------------------

#[test]
fn read_ops_strings() {
    let mut ks = with_list();
    set(&mut ks, "s", "Hello World", 0);
    assert_eq!(get(&ks, "list", 0), wrongtype());
    let mget = ReadOp::MGet {
        keys: vec![b("s"), b("list"), b("nope")],
    };
    assert_eq!(
        r(&ks, mget, 0),
        Outcome::Array(vec![bulk("Hello World"), Outcome::Nil, Outcome::Nil])
    );
    assert_eq!(r(&ks, ReadOp::StrLen { key: b("s") }, 0), Outcome::Int(11));
    assert_eq!(r(&ks, ReadOp::StrLen { key: b("x") }, 0), Outcome::Int(0));
    assert_eq!(r(&ks, ReadOp::StrLen { key: b("list") }, 0), wrongtype());
    let exists = ReadOp::Exists {
        keys: vec![b("s"), b("s"), b("list"), b("x")],
    };
    assert_eq!(r(&ks, exists, 0), Outcome::Int(3));
    assert_eq!(
        r(&ks, ReadOp::Type { key: b("s") }, 0),
        Outcome::Status("string".into())
    );
    assert_eq!(
        r(&ks, ReadOp::Type { key: b("x") }, 0),
        Outcome::Status("none".into())
    );
}

#[test]
fn getrange_rules() {
    let mut ks = with_list();
    set(&mut ks, "s", "Hello World", 0);
    set(&mut ks, "e", "", 0);
    let gr = |k: &str, s, e| ReadOp::GetRange {
        key: b(k),
        start: s,
        end: e,
    };
    let cases = [
        (0, 3, "Hell"),
        (-3, -1, "rld"),
        (0, -1, "Hello World"),
        (5, 3, ""),
        (20, 30, ""),
        (0, 100, "Hello World"),
        (-100, 2, "Hel"),
        (-1, -3, ""),
        (-100, -50, "H"),
        (10, 10, "d"),
        (i64::MIN, i64::MAX, "Hello World"),
        (i64::MAX, i64::MAX, ""),
    ];
    for (s, e, want) in cases {
        assert_eq!(r(&ks, gr("s", s, e), 0), bulk(want), "{s} {e}");
    }
    assert_eq!(r(&ks, gr("e", 0, -1), 0), bulk(""));
    assert_eq!(r(&ks, gr("missing", 0, -1), 0), bulk(""));
    assert_eq!(r(&ks, gr("list", 0, -1), 0), wrongtype());
}

fn keys_of(o: Outcome) -> Vec<String> {
    let Outcome::Array(items) = o else {
        panic!("not an array: {o:?}")
    };
    let mut v: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            Outcome::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    v.sort();
    v
}

#[test]
fn keys_with_patterns() {
    let mut ks = Keyspace::default();
    for k in [
        "hello",
        "hallo",
        "hxllo",
        "hllo",
        "{user1}:a",
        "{user1}:b",
        "{user2}:a",
    ] {
        set(&mut ks, k, "v", 0);
    }
    w(
        &mut ks,
        set_full("hzllo", "v", SetCond::Always, Ttl::At(5), false),
        0,
    );
    let keys = |p: &str, now| keys_of(r(&ks, ReadOp::Keys { pattern: b(p) }, now));
    assert_eq!(keys("h?llo", 5), ["hallo", "hello", "hxllo"]);
    assert_eq!(keys("h[ae]llo", 0), ["hallo", "hello"]);
    assert_eq!(
        keys("h*llo", 5),
        ["hallo", "hello", "hllo", "hxllo"],
        "expired hidden"
    );
    assert_eq!(keys("h*llo", 0).len(), 5);
    assert_eq!(keys("hello", 0), ["hello"]);
    assert_eq!(keys("nope", 0), Vec::<String>::new());
    assert_eq!(keys("{user1}:*", 0), ["{user1}:a", "{user1}:b"]);
    assert_eq!(keys("*:a", 0), ["{user1}:a", "{user2}:a"]);
    assert_eq!(keys("*", 5).len(), 7);
}

fn scan_page(
    ks: &Keyspace,
    cursor: u64,
    pat: Option<&str>,
    count: usize,
    ty: Option<&str>,
) -> (u64, Vec<String>) {
    let op = ReadOp::Scan {
        cursor,
        pattern: pat.map(b),
        count,
        type_name: ty.map(b),
    };
    let Outcome::Array(mut parts) = r(ks, op, 0) else {
        panic!()
    };
    let keys = keys_of(parts.pop().unwrap());
    let Outcome::Bulk(c) = parts.pop().unwrap() else {
        panic!()
    };
    (std::str::from_utf8(&c).unwrap().parse().unwrap(), keys)
}

#[test]
fn scan_returns_every_stable_key() {
    let mut ks = with_list();
    for i in 0..2000 {
        set(&mut ks, &format!("key:{i}"), "v", 0);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0;
    let mut pages = 0;
    loop {
        let (next, keys) = scan_page(&ks, cursor, None, 10, None);
        // Churn between pages: delete and add other keys.
        w(
            &mut ks,
            WriteOp::Del {
                keys: vec![b(&format!("tmp:{pages}"))],
            },
            0,
        );
        set(&mut ks, &format!("tmp:{}", pages + 1), "v", 0);
        for k in keys {
            seen.insert(k);
        }
        pages += 1;
        if next == 0 {
            break;
        }
        assert!(next > cursor);
        cursor = next;
    }
    for i in 0..2000 {
        assert!(seen.contains(&format!("key:{i}")), "key:{i} missed");
    }
    assert!(seen.contains("list"));
    assert!(pages > 10, "paged: {pages}");
}

#[test]
fn scan_match_type_and_bounds() {
    let mut ks = with_list();
    for i in 0..300 {
        set(&mut ks, &format!("a:{i}"), "v", 0);
        set(&mut ks, &format!("b:{i}"), "v", 0);
    }
    let mut all = Vec::new();
    let mut cursor = 0;
    loop {
        let (next, keys) = scan_page(&ks, cursor, Some("a:*"), 50, Some("STRING"));
        all.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(all.len(), 300);
    assert!(all.iter().all(|k| k.starts_with("a:")));
    let (next, keys) = scan_page(&ks, 0, None, 100_000, Some("list"));
    assert_eq!((next, keys), (0, vec!["list".to_string()]));
    assert_eq!(scan_page(&ks, 16384, None, 10, None), (0, vec![]));
    assert_eq!(scan_page(&ks, u64::MAX, None, 10, None), (0, vec![]));
    // Hash-tagged pattern: a single slot is visited.
    set(&mut ks, "{t}1", "v", 0);
    set(&mut ks, "{t}2", "v", 0);
    assert_eq!(
        scan_page(&ks, 0, Some("{t}*"), 1, None),
        (0, vec!["{t}1".into(), "{t}2".into()])
    );
    let past = slot_of(b"{t}") as u64 + 1;
    assert_eq!(scan_page(&ks, past, Some("{t}*"), 1, None), (0, vec![]));
}

#[test]
fn randomkey_and_slots() {
    let mut ks = Keyspace::default();
    assert_eq!(r(&ks, ReadOp::RandomKey, 0), Outcome::Nil);
    set(&mut ks, "only", "v", 0);
    assert_eq!(r(&ks, ReadOp::RandomKey, 0), bulk("only"));
    w(
        &mut ks,
        WriteOp::Expire {
            key: b("only"),
            at_ms: 10,
            cond: ExpireCond::Always,
        },
        0,
    );
    assert_eq!(
        r(&ks, ReadOp::RandomKey, 10),
        Outcome::Nil,
        "only expired keys"
    );
    for i in 0..100 {
        set(&mut ks, &format!("k{i}"), "v", 0);
    }
    let mut distinct = std::collections::HashSet::new();
    for _ in 0..200 {
        let Outcome::Bulk(k) = r(&ks, ReadOp::RandomKey, 10) else {
            panic!()
        };
        assert_ne!(&k[..], b"only");
        distinct.insert(k);
    }
    assert!(distinct.len() > 20, "{}", distinct.len());

    // somekey -> 11058, foo{hash_tag} -> 2515 (Redis Cluster key-slot facts).
    assert_eq!(key_slot(b"somekey"), 11058);
    assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
    set(&mut ks, "somekey", "v", 0);
    set(&mut ks, "{somekey}x", "v", 0);
    assert_eq!(
        r(&ks, ReadOp::CountKeysInSlot { slot: 11058 }, 0),
        Outcome::Int(2)
    );
    let got = keys_of(r(
        &ks,
        ReadOp::GetKeysInSlot {
            slot: 11058,
            count: 10,
        },
        0,
    ));
    assert_eq!(got, ["somekey", "{somekey}x"]);
    assert_eq!(
        keys_of(r(
            &ks,
            ReadOp::GetKeysInSlot {
                slot: 11058,
                count: 1
            },
            0
        ))
        .len(),
        1
    );
    assert_eq!(
        r(&ks, ReadOp::CountKeysInSlot { slot: 20000 }, 0),
        Outcome::Int(0)
    );
    assert_eq!(r(&ks, ReadOp::DbSize, 0), Outcome::Int(103));
}

// ---- digest / determinism / clone ----------------------------------------

/// A deterministic mixed workload (simple LCG, no external RNG).
fn workload(seed: u64, n: usize) -> Vec<(WriteOp, u64)> {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let mut ops = Vec::new();
    for i in 0..n {
        let now = 1000 + i as u64;
        let key = b(&format!("k{}", next() % 200));
        let key2 = b(&format!("k{}", next() % 200));
        let op = match next() % 12 {
            0 => WriteOp::Set {
                key,
                value: b(&format!("v{}", next())),
                cond: SetCond::Always,
                ttl: if next() % 2 == 0 {
                    Ttl::Clear
                } else {
                    Ttl::At(now + next() % 500)
                },
                get: false,
            },
            1 => WriteOp::Append { key, value: b("x") },
            2 => WriteOp::IncrBy { key, delta: 3 },
            3 => WriteOp::Del { keys: vec![key] },
            4 => WriteOp::Rename {
                src: key,
                dst: key2,
                nx: next() % 2 == 0,
            },
            5 => WriteOp::Expire {
                key,
                at_ms: now + next() % 300,
                cond: ExpireCond::Gt,
            },
            6 => WriteOp::Persist { key },
            7 => WriteOp::SetRange {
                key,
                offset: next() % 10,
                value: b("ab"),
            },
            8 => WriteOp::GetEx {
                key,
                ttl: Ttl::At(now + 100),
            },
            9 => WriteOp::MSet {
                pairs: vec![(key, b("m")), (key2, b("n"))],
                nx: true,
            },
            10 => WriteOp::IncrByFloat { key, delta: 0.5 },
            _ => WriteOp::DeleteExpired {
                keys: vec![key, key2],
            },
        };
        ops.push((op, now));
    }
    ops
}

#[test]
fn determinism_same_ops_same_digest() {
    let ops = workload(42, 20_000);
    let mut a = Keyspace::default();
    let mut bks = Keyspace::default();
    let mut outs_a = Vec::new();
    for (op, now) in &ops {
        outs_a.push(a.apply(op, *now, Limits::default()));
        check_every(&a, 997, outs_a.len());
    }
    let outs_b: Vec<Outcome> = ops
        .iter()
        .map(|(op, now)| bks.apply(op, *now, Limits::default()))
        .collect();
    assert_eq!(outs_a, outs_b);
    assert_eq!(a.digest(), bks.digest());
    check_invariants(&a);
    // Different history, different digest.
    let mut c = Keyspace::default();
    for (op, now) in workload(43, 20_000) {
        c.apply(&op, now, Limits::default());
    }
    assert_ne!(a.digest(), c.digest());
    // Digest covers value and deadline.
    let mut d = Keyspace::default();
    set(&mut d, "k", "v", 0);
    let d1 = d.digest();
    set(&mut d, "k", "w", 0);
    let d2 = d.digest();
    w(
        &mut d,
        WriteOp::Expire {
            key: b("k"),
            at_ms: 99,
            cond: ExpireCond::Always,
        },
        0,
    );
    let d3 = d.digest();
    assert!(d1 != d2 && d2 != d3 && d1 != d3);
    assert_ne!(Keyspace::default().digest(), d1);
}

fn check_every(ks: &Keyspace, every: usize, i: usize) {
    if i % every == 0 {
        check_invariants(ks);
    }
}

#[test]
fn clone_is_independent() {
    let mut a = Keyspace::default();
    set(&mut a, "k", "v1", 0);
    let snap = a.clone();
    set(&mut a, "k", "v2", 0);
    w(
        &mut a,
        WriteOp::Append {
            key: b("k"),
            value: b("!"),
        },
        0,
    );
    assert_eq!(get(&snap, "k", 0), bulk("v1"));
    assert_eq!(get(&a, "k", 0), bulk("v2!"));
}

// ---- snapshots ------------------------------------------------------------

fn snapshot_bytes(ks: &Keyspace) -> Vec<u8> {
    let mut out = Vec::new();
    ks.write_snapshot(&mut out).unwrap();
    out
}

#[test]
fn snapshot_round_trip() {
    let mut ks = Keyspace::default();
    for (op, now) in workload(7, 5000) {
        ks.apply(&op, now, Limits::default());
    }
    set(&mut ks, "", "empty key", 0);
    set(&mut ks, "empty value", "", 0);
    let long_key = "L".repeat(300);
    let long_val = "V".repeat(200_000);
    set(&mut ks, &long_key, &long_val, 0);
    let bytes = snapshot_bytes(&ks);
    let back = Keyspace::read_snapshot(&bytes[..]).unwrap();
    assert_eq!(back.digest(), ks.digest());
    assert_eq!(back.len(), ks.len());
    assert_eq!(back.expires_len(), ks.expires_len());
    assert_eq!(get(&back, &long_key, 0), bulk(&long_val));
    check_invariants(&back);
    // Empty keyspace too.
    let empty = snapshot_bytes(&Keyspace::default());
    let back = Keyspace::read_snapshot(&empty[..]).unwrap();
    assert!(back.is_empty());
}

#[test]
fn snapshot_corruption_is_invalid_data() {
    let mut ks = Keyspace::default();
    for i in 0..40 {
        let ttl = if i % 3 == 0 {
            Ttl::At(1_000_000 + i)
        } else {
            Ttl::Clear
        };
        w(
            &mut ks,
            set_full(
                &format!("key{i}"),
                &"x".repeat(i as usize),
                SetCond::Always,
                ttl,
                false,
            ),
            0,
        );
    }
    let good = snapshot_bytes(&ks);
    let invalid = |data: &[u8]| {
        let e = Keyspace::read_snapshot(data).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    };
    // Every truncation point.
    for cut in (0..good.len()).step_by(2).chain([good.len() - 1]) {
        invalid(&good[..cut]);
    }
    // Single-bit flips everywhere (sampled).
    for pos in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[pos] ^= 0x10;
        invalid(&bad);
    }
    let mut trailing = good.clone();
    trailing.push(0);
    invalid(&trailing);
    let mut ver = good.clone();
    ver[8] = 9;
    invalid(&ver);
}

#[test]
fn snapshot_huge_declared_length_is_capped() {
    // Hand-made: header, a string entry declaring a `len`-byte key.
    let declaring = |len: u64| {
        let mut data = Vec::new();
        data.extend_from_slice(b"RCKS\r\n\x1a\n");
        data.extend_from_slice(&1u32.to_le_bytes());
        data.push(1);
        data.extend_from_slice(&0u64.to_le_bytes());
        let mut v = len;
        while v >= 0x80 {
            data.push((v as u8) | 0x80);
            v >>= 7;
        }
        data.push(v as u8);
        data.extend_from_slice(b"abc");
        data
    };
    let e = Keyspace::read_snapshot(&declaring(1 << 60)[..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("exceeds"), "{e}");
    // Under the cap but longer than the input: fails without allocating it.
    let e = Keyspace::read_snapshot(&declaring(1 << 39)[..]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains("truncated"), "{e}");
    // Duplicate keys are rejected.
    let mut ks = Keyspace::default();
    set(&mut ks, "a", "1", 0);
    let one = snapshot_bytes(&ks);
    let entry = &one[12..one.len() - 13];
    let mut dup = one[..12].to_vec();
    dup.extend_from_slice(entry);
    dup.extend_from_slice(entry);
    dup.push(0xFF);
    dup.extend_from_slice(&2u64.to_le_bytes());
    let crc = crc32fast::hash(&dup);
    dup.extend_from_slice(&crc.to_le_bytes());
    let e = Keyspace::read_snapshot(&dup[..]).unwrap_err();
    assert!(e.to_string().contains("duplicate"), "{e}");
}

#[test]
fn snapshot_100k_keys_timed() {
    use std::time::Instant;
    let mut ks = Keyspace::default();
    for i in 0..100_000u64 {
        let k = format!("key:{i:010}:abcd");
        let ttl = if i % 4 == 0 {
            Ttl::At(u64::MAX / 2)
        } else {
            Ttl::Clear
        };
        w(
            &mut ks,
            set_full(
                &k,
                "0123456789abcdef0123456789abcdef",
                SetCond::Always,
                ttl,
                false,
            ),
            0,
        );
    }
    let t = Instant::now();
    let copy = ks.clone();
    let clone_t = t.elapsed();
    let t = Instant::now();
    let mut out = Vec::new();
    copy.write_snapshot(&mut out).unwrap();
    let write_t = t.elapsed();
    let t = Instant::now();
    let back = Keyspace::read_snapshot(&out[..]).unwrap();
    let read_t = t.elapsed();
    println!(
        "100k keys: clone {clone_t:?}, write {write_t:?} ({} bytes), read {read_t:?}",
        out.len()
    );
    assert_eq!(back.digest(), ks.digest());
}

// ---- memory per key ---------------------------------------------------------

/// Counts this thread's live heap bytes, rounded up like a glibc-style
/// allocator would (see `value::malloc_size`), so the memory test measures
/// what the keyspace really allocates rather than trusting its own estimate.
#[allow(unsafe_code)]
mod counting_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static NET: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: usize, sign: isize) {
        let n = super::value::malloc_size(n) as isize * sign;
        let _ = NET.try_with(|c| c.set(c.get() + n));
    }

    pub struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            add(l.size(), 1);
            unsafe { System.alloc(l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            add(l.size(), 1);
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            add(l.size(), -1);
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            add(l.size(), -1);
            add(new, 1);
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static A: Counting = Counting;

    pub fn net() -> isize {
        NET.with(|c| c.get())
    }
}

#[test]
fn memory_per_key() {
    const N: usize = 200_000;
    let keys: Vec<Bytes> = (0..N).map(|i| b(&format!("key:{i:012}"))).collect();
    // Cloning a `Bytes` made from a Vec allocates its shared header on the
    // first clone; do that now so the test's own keys are not measured.
    let _: Vec<Bytes> = keys.to_vec();
    assert_eq!(keys[0].len(), 16);
    let value = b("0123456789abcdef0123456789abcdef");
    let before = counting_alloc::net();
    let mut ks = Keyspace::default();
    let empty = counting_alloc::net() - before;
    for k in &keys {
        let op = WriteOp::Set {
            key: k.clone(),
            value: value.clone(),
            cond: SetCond::Always,
            ttl: Ttl::Clear,
            get: false,
        };
        ks.apply(&op, 0, Limits::default());
    }
    let plain = counting_alloc::net() - before - empty;
    // Cloning promotes each value's `Bytes` to its shared form (one extra
    // small allocation per value, kept after the clone is dropped).
    drop(ks.clone());
    let after_clone = counting_alloc::net() - before - empty;
    // Now with a deadline on every key (expiry index entry).
    for k in &keys {
        let op = WriteOp::Expire {
            key: k.clone(),
            at_ms: 1 << 50,
            cond: ExpireCond::Always,
        };
        ks.apply(&op, 0, Limits::default());
    }
    let with_ttl = counting_alloc::net() - before - empty;
    let per = |x: isize| x as f64 / N as f64;
    println!(
        "memory per key (16 B key, 32 B value, {N} keys): {:.1} B fresh, {:.1} B after a \
         clone, {:.1} B with a deadline; used_memory() estimate {:.1} B/key; empty \
         keyspace {} KB",
        per(plain),
        per(after_clone),
        per(with_ttl),
        (ks.used_memory() as f64 - empty as f64) / N as f64,
        empty / 1024
    );
    assert!(per(after_clone) < 200.0);
    let est = ks.used_memory() as f64 - empty as f64;
    let real = with_ttl as f64;
    assert!(
        (est - real).abs() / real < 0.25,
        "estimate {est} vs measured {real}"
    );
}

/// Release-mode benchmark: `cargo test --release --lib snapshot_1m -- --ignored --nocapture`.
#[test]
#[ignore]
fn snapshot_1m_keys_timed() {
    use std::time::Instant;
    let mut ks = Keyspace::default();
    let t = Instant::now();
    for i in 0..1_000_000u64 {
        let k = format!("key:{i:012}");
        let ttl = if i % 4 == 0 {
            Ttl::At(u64::MAX / 2)
        } else {
            Ttl::Clear
        };
        w(
            &mut ks,
            set_full(
                &k,
                "0123456789abcdef0123456789abcdef",
                SetCond::Always,
                ttl,
                false,
            ),
            0,
        );
    }
    let fill_t = t.elapsed();
    let t = Instant::now();
    let copy = ks.clone();
    let clone_t = t.elapsed();
    let t = Instant::now();
    let mut out = Vec::new();
    copy.write_snapshot(&mut out).unwrap();
    let write_t = t.elapsed();
    let mut sink_t = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        copy.write_snapshot(io::sink()).unwrap();
        sink_t.push(t.elapsed());
    }
    let t = Instant::now();
    let crc = crc32fast::hash(&out);
    let crc_t = t.elapsed();
    let t = Instant::now();
    let mut n = 0usize;
    for m in copy.slots.iter() {
        for (k, e) in m.iter() {
            n += k.len() + copy.deadline(e) as usize;
        }
    }
    let iter_t = t.elapsed();
    println!(
        "1M keys: write to io::sink {sink_t:?}; crc32 of the output {crc_t:?} ({}), bare iteration {iter_t:?} ({n})",
        crc
    );
    let t = Instant::now();
    let back = Keyspace::read_snapshot(&out[..]).unwrap();
    let read_t = t.elapsed();
    let t = Instant::now();
    let d = back.digest();
    let digest_t = t.elapsed();
    println!(
        "1M keys: fill {fill_t:?}, clone {clone_t:?}, write {write_t:?} ({} MB), read {read_t:?}, digest {digest_t:?}, used_memory {} MB",
        out.len() >> 20,
        ks.used_memory() >> 20
    );
    assert_eq!(d, ks.digest());
}

#[test]
fn tables_shrink_after_mass_delete() {
    let mut ks = Keyspace::default();
    let keys: Vec<Bytes> = (0..5000).map(|i| b(&format!("{{tag}}{i}"))).collect();
    for k in &keys {
        w(
            &mut ks,
            set_full(
                std::str::from_utf8(k).unwrap(),
                "v",
                SetCond::Always,
                Ttl::At(1 << 40),
                false,
            ),
            0,
        );
    }
    let full = ks.used_memory();
    w(
        &mut ks,
        WriteOp::Del {
            keys: keys[10..].to_vec(),
        },
        0,
    );
    assert_eq!(ks.len(), 10);
    let base = Keyspace::default().used_memory();
    let after = ks.used_memory() - base;
    let full = full - base;
    assert!(after * 20 < full, "{after} vs {full}");
    check_invariants(&ks);
    for k in &keys[..10] {
        assert_eq!(
            r(
                &ks,
                ReadOp::Exists {
                    keys: vec![k.clone()]
                },
                0
            ),
            Outcome::Int(1)
        );
    }
}

#[test]
fn keyspace_is_send_sync_and_unencodable_types_error() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Keyspace>();
    let ks = with_list();
    let e = ks.write_snapshot(Vec::new()).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn large_values_are_shared_not_pinned() {
    let mut ks = Keyspace::default();
    // The request buffer the value arrives in is much larger than the value.
    let buf = Bytes::from(vec![b'x'; 64 * 1024]);
    let op = WriteOp::Set {
        key: buf.slice(0..16),
        value: buf.slice(16..16 + 1000),
        cond: SetCond::Always,
        ttl: Ttl::Clear,
        get: false,
    };
    ks.apply(&op, 0, Limits::default());
    drop(op);
    // Stored copies are exact-size: the 64 KB buffer is not referenced.
    assert!(buf.is_unique());
    let Outcome::Bulk(v) = get(&ks, &"x".repeat(16), 0) else {
        panic!()
    };
    assert_eq!(v.len(), 1000);
    assert!(ks.used_memory() - Keyspace::default().used_memory() < 2048);
}

/// A clone (what a snapshot serializes) is a point-in-time view: writes to
/// the original afterwards copy only the slots they touch and never show up
/// in the clone. Cloning 100k keys is reference bumps, not a data copy.
#[test]
fn clone_is_copy_on_write_per_slot() {
    let mut ks = Keyspace::default();
    for i in 0..100_000u32 {
        let op = WriteOp::Set {
            key: Bytes::from(format!("key:{i}")),
            value: Bytes::from_static(b"v"),
            cond: SetCond::Always,
            ttl: if i % 2 == 0 {
                Ttl::At(u64::MAX / 2)
            } else {
                Ttl::Clear
            },
            get: false,
        };
        ks.apply(&op, 1, Limits::default());
    }
    let started = std::time::Instant::now();
    let snap = ks.clone();
    let cloned_in = started.elapsed();
    let digest = snap.digest();
    ks.apply(
        &WriteOp::Del {
            keys: vec![Bytes::from_static(b"key:1")],
        },
        2,
        Limits::default(),
    );
    ks.apply(
        &WriteOp::Set {
            key: Bytes::from_static(b"key:2"),
            value: Bytes::from_static(b"changed"),
            cond: SetCond::Always,
            ttl: Ttl::Clear,
            get: false,
        },
        2,
        Limits::default(),
    );
    assert_eq!(
        snap.digest(),
        digest,
        "the clone changed after writes to the original"
    );
    assert_eq!(snap.len(), 100_000);
    assert_eq!(ks.len(), 99_999);
    assert_eq!(snap.expires_len(), 50_000);
    assert_eq!(ks.expires_len(), 49_999);
    assert!(
        cloned_in < std::time::Duration::from_millis(50),
        "clone took {cloned_in:?}"
    );
}

/// Key listings stop at their reply budget instead of materialising
/// everything (the connection passes what is left of the client's
/// output-buffer limit); a listing that fits is unchanged.
#[test]
fn key_listings_stop_at_the_reply_budget() {
    let mut ks = Keyspace::default();
    for i in 0..100 {
        set(&mut ks, &format!("key:{i:04}"), "v", 0);
    }
    let too_large = Outcome::Err(KeyspaceError::ReplyTooLarge);
    let listings = [
        ReadOp::Keys { pattern: b("*") },
        ReadOp::Scan {
            cursor: 0,
            pattern: None,
            count: 1_000_000,
            type_name: None,
        },
    ];
    for op in &listings {
        // 100 keys of 8 bytes cost 100 * (8 + 16) bytes of budget.
        assert_eq!(ks.read_bounded(op, 0, 1000), too_large, "{op:?}");
        assert_ne!(ks.read_bounded(op, 0, 2400), too_large, "{op:?}");
        assert_eq!(ks.read_bounded(op, 0, 2400), ks.read(op, 0), "{op:?}");
    }
    let slot = slot_of(b"key:0000") as u16;
    let in_slot = ReadOp::GetKeysInSlot { slot, count: 10 };
    assert_eq!(ks.read_bounded(&in_slot, 0, 10), too_large);
    assert_eq!(ks.read_bounded(&in_slot, 0, 1000), ks.read(&in_slot, 0));
}
