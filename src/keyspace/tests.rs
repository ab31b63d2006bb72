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
