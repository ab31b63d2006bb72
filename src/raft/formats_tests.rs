//! Golden bytes: every format that outlives a process or crosses to another
//! node, pinned byte for byte. Log entries (each `WriteOp` variant, the
//! `Proposal` envelope, openraft's `Entry` around it) live in LMDB data dirs
//! for as long as they are not compacted; bus frames go between nodes that
//! may run different builds during an upgrade; snapshots are files that a
//! later build loads. See docs/storage.md, "Formats and versions".
//!
//! **When a test here fails, do not edit the bytes to make it pass.** The
//! failure means existing data dirs or nodes of the previous build would now
//! be misread. Instead:
//!
//! * if the change was not meant to change the format (a reordered variant,
//!   a renamed-and-retyped field, a dependency upgrade), undo it: append new
//!   variants at the end, never reorder or remove;
//! * if it was, bump the version of that format (`types::PROPOSAL_VERSION`
//!   for log entries, `network::BUS_VERSION` for the bus, the snapshot
//!   `VERSION` in keyspace/snapshot.rs or `SNAPSHOT_MAGIC` in
//!   raft/state_machine.rs), keep decoding the old version (a migration) or
//!   say in CHANGELOG.md that old data dirs must be wiped, update
//!   docs/storage.md, and only then add the new golden bytes next to the
//!   old ones.
//!
//! A new `WriteOp` (or `SetCond`, `Ttl`, `ExpireCond`, bus request or
//! response) variant does not compile until `tag` below knows it, and fails
//! `*_variants_all_pinned` until it has an example and golden bytes here.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    VoteRequest, VoteResponse,
};
use openraft::vote::RaftLeaderIdExt;
use openraft::{Membership, RaftTypeConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keyspace::{ExpireCond, Keyspace, Limits, SetCond, Ttl, WriteOp};
use crate::raft::identity::{GuestHello, Hello};
use crate::raft::network::{
    read_frame, write_frame, BusRequest, BusResponse, JoinReply, BUS_VERSION,
};
use crate::raft::types::{
    decode, Entry, LogId, NodeInfo, Proposal, SnapshotMeta, StoredMembership, TypeConfig, Vote,
    PROPOSAL_VERSION,
};

type LeaderId = <TypeConfig as RaftTypeConfig>::LeaderId;

// ---- helpers -----------------------------------------------------------------

/// `b"..."` text of `b`, to paste into a golden literal.
fn esc(b: &[u8]) -> String {
    let mut s = String::from("b\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

#[track_caller]
fn pinned(what: &str, got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "{what}: the encoding changed (see the module docs of raft::formats_tests: bump the \
         version, never edit the bytes)\n  want {}\n  got  {}",
        esc(want),
        esc(got)
    );
}

/// Encoded as the log store encodes, and decoded back to the same value.
#[track_caller]
fn pinned_value<T>(what: &str, v: &T, want: &[u8])
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    pinned(what, &crate::raft::log_store::encode(v).unwrap(), want);
    let back: T = decode(want).unwrap_or_else(|e| panic!("{what}: golden bytes undecodable: {e}"));
    assert_eq!(&back, v, "{what}: golden bytes decode to another value");
}

/// How many variants `T` has, counted by decoding: postcard writes a
/// variant as its index (one byte below 128) and the fields after it, and
/// every field type used here decodes from zero bytes.
fn variant_count<T: DeserializeOwned>() -> usize {
    (0u8..128)
        .take_while(|&t| {
            let mut b = vec![t];
            b.extend_from_slice(&[0u8; 64]);
            postcard::from_bytes::<T>(&b).is_ok()
        })
        .count()
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new_committed(term, 1), index)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

// ---- WriteOp -----------------------------------------------------------------

/// The hand-checked variant tag of each op (postcard writes the declaration
/// index). Exhaustive on purpose: a new variant does not compile until it
/// is listed here, with the next free tag.
fn tag(op: &WriteOp) -> u8 {
    match op {
        WriteOp::Set { .. } => 0,
        WriteOp::MSet { .. } => 1,
        WriteOp::GetDel { .. } => 2,
        WriteOp::GetEx { .. } => 3,
        WriteOp::Append { .. } => 4,
        WriteOp::IncrBy { .. } => 5,
        WriteOp::IncrByFloat { .. } => 6,
        WriteOp::SetRange { .. } => 7,
        WriteOp::Del { .. } => 8,
        WriteOp::Rename { .. } => 9,
        WriteOp::Expire { .. } => 10,
        WriteOp::Persist { .. } => 11,
        WriteOp::FlushAll => 12,
        WriteOp::DeleteExpired { .. } => 13,
        WriteOp::ExpireIn { .. } => 14,
        WriteOp::AclSetUser { .. } => 15,
        WriteOp::AclDelUser { .. } => 16,
    }
}

/// One fixed example per `WriteOp` variant, in tag order, with its golden
/// encoding.
fn write_op_goldens() -> Vec<(WriteOp, &'static [u8])> {
    vec![
        (
            WriteOp::Set {
                key: b("key"),
                value: b("value"),
                cond: SetCond::IfAbsent,
                ttl: Ttl::In(1500),
                get: true,
            },
            b"\x00\x03key\x05value\x01\x03\xdc\x0b\x01",
        ),
        (
            WriteOp::MSet {
                pairs: vec![(b("k1"), b("v1")), (b("k2"), b("v2"))],
                nx: true,
            },
            b"\x01\x02\x02k1\x02v1\x02k2\x02v2\x01",
        ),
        (WriteOp::GetDel { key: b("key") }, b"\x02\x03key"),
        (
            WriteOp::GetEx {
                key: b("key"),
                ttl: Ttl::At(1_700_000_000_000),
            },
            b"\x03\x03key\x02\x80\xd0\x95\xff\xbc1",
        ),
        (
            WriteOp::Append {
                key: b("key"),
                value: b("tail"),
            },
            b"\x04\x03key\x04tail",
        ),
        (
            WriteOp::IncrBy {
                key: b("n"),
                delta: -2,
            },
            b"\x05\x01n\x03",
        ),
        (
            WriteOp::IncrByFloat {
                key: b("f"),
                delta: 1.5,
            },
            b"\x06\x01f\x00\x00\x00\x00\x00\x00\xf8?",
        ),
        (
            WriteOp::SetRange {
                key: b("key"),
                offset: 300,
                value: b("xy"),
            },
            b"\x07\x03key\xac\x02\x02xy",
        ),
        (
            WriteOp::Del {
                keys: vec![b("a"), b("b")],
            },
            b"\x08\x02\x01a\x01b",
        ),
        (
            WriteOp::Rename {
                src: b("old"),
                dst: b("new"),
                nx: true,
            },
            b"\x09\x03old\x03new\x01",
        ),
        (
            WriteOp::Expire {
                key: b("key"),
                at_ms: 1_700_000_000_000,
                cond: ExpireCond::Gt,
            },
            b"\x0a\x03key\x80\xd0\x95\xff\xbc1\x03",
        ),
        (WriteOp::Persist { key: b("key") }, b"\x0b\x03key"),
        (WriteOp::FlushAll, b"\x0c"),
        (
            WriteOp::DeleteExpired { keys: vec![b("x")] },
            b"\x0d\x01\x01x",
        ),
        (
            WriteOp::ExpireIn {
                key: b("key"),
                ms: -1,
                cond: ExpireCond::Nx,
            },
            b"\x0e\x03key\x01\x01",
        ),
        (
            WriteOp::AclSetUser {
                name: b("al"),
                rules: vec![b("on"), b("~c:*")],
            },
            b"\x0f\x02al\x02\x02on\x04~c:*",
        ),
        (
            WriteOp::AclDelUser {
                names: vec![b("al")],
            },
            b"\x10\x01\x02al",
        ),
    ]
}

#[test]
fn write_op_encodings_are_pinned() {
    for (i, (op, want)) in write_op_goldens().iter().enumerate() {
        assert_eq!(usize::from(tag(op)), i, "examples must be in tag order");
        let what = format!("WriteOp tag {i} ({op:?})");
        assert_eq!(want.first(), Some(&tag(op)), "{what}: golden tag byte");
        pinned_value(&what, op, want);
    }
}

#[test]
fn write_op_variants_all_pinned() {
    assert_eq!(
        variant_count::<WriteOp>(),
        write_op_goldens().len(),
        "a WriteOp variant has no golden example here (see the module docs)"
    );
}

/// The small enums inside ops: every variant, in declaration order.
#[test]
fn op_field_enums_are_pinned() {
    let set_cond = |c: &SetCond| match c {
        SetCond::Always => 0u8,
        SetCond::IfAbsent => 1,
        SetCond::IfPresent => 2,
    };
    for c in [SetCond::Always, SetCond::IfAbsent, SetCond::IfPresent] {
        pinned_value(&format!("{c:?}"), &c, &[set_cond(&c)]);
    }
    assert_eq!(
        variant_count::<SetCond>(),
        3,
        "a SetCond variant is not pinned"
    );

    let ttls: [(Ttl, &[u8]); 4] = [
        (Ttl::Clear, b"\x00"),
        (Ttl::Keep, b"\x01"),
        (Ttl::At(1_700_000_000_000), b"\x02\x80\xd0\x95\xff\xbc1"),
        (Ttl::In(1500), b"\x03\xdc\x0b"),
    ];
    for (i, (t, want)) in ttls.iter().enumerate() {
        let tag = match t {
            Ttl::Clear => 0,
            Ttl::Keep => 1,
            Ttl::At(_) => 2,
            Ttl::In(_) => 3,
        };
        assert_eq!(tag, i);
        pinned_value(&format!("{t:?}"), t, want);
    }
    assert_eq!(
        variant_count::<Ttl>(),
        ttls.len(),
        "a Ttl variant is not pinned"
    );

    let expire_cond = |c: &ExpireCond| match c {
        ExpireCond::Always => 0u8,
        ExpireCond::Nx => 1,
        ExpireCond::Xx => 2,
        ExpireCond::Gt => 3,
        ExpireCond::Lt => 4,
    };
    for c in [
        ExpireCond::Always,
        ExpireCond::Nx,
        ExpireCond::Xx,
        ExpireCond::Gt,
        ExpireCond::Lt,
    ] {
        pinned_value(&format!("{c:?}"), &c, &[expire_cond(&c)]);
    }
    assert_eq!(
        variant_count::<ExpireCond>(),
        5,
        "an ExpireCond variant is not pinned"
    );

    pinned_value(
        "Limits",
        &Limits {
            proto_max_bulk_len: 512 * 1024 * 1024,
        },
        b"\x80\x80\x80\x80\x02",
    );
}

// ---- Proposal and Entry ------------------------------------------------------

fn proposal() -> Proposal {
    Proposal {
        now_ms: 1_700_000_000_000,
        limits: Limits::default(),
        ops: vec![
            WriteOp::Set {
                key: b("k"),
                value: b("v"),
                cond: SetCond::Always,
                ttl: Ttl::Clear,
                get: false,
            },
            WriteOp::Del { keys: vec![b("k")] },
        ],
    }
}

const PROPOSAL_GOLDEN: &[u8] =
    b"\x01\x80\xd0\x95\xff\xbc1\x80\x80\x80\x80\x02\x02\x00\x01k\x01v\x00\x00\x00\x08\x01\x01k";

#[test]
fn proposal_envelope_is_pinned() {
    assert_eq!(PROPOSAL_VERSION, 1);
    assert_eq!(
        PROPOSAL_GOLDEN[0], PROPOSAL_VERSION,
        "the version comes first"
    );
    pinned_value("Proposal", &proposal(), PROPOSAL_GOLDEN);
}

fn node(id: u64) -> NodeInfo {
    NodeInfo {
        addr: format!("h:{}", 6379 + id),
        bus_addr: format!("h:{}", 16379 + id),
        name: format!("n{id}"),
    }
}

fn membership() -> Membership<u64, NodeInfo> {
    Membership::new(
        vec![BTreeSet::from([1, 2])],
        BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3))]),
    )
    .unwrap()
}

/// The three kinds of log entry as the log store keeps them (and the bus
/// carries them): openraft's `Entry` (log id, payload tag, payload).
#[test]
fn log_entries_are_pinned() {
    let entries: [(&str, Entry, &[u8]); 3] = [
        ("blank entry", Entry::new_blank(log_id(3, 41)), b"\x03\x01)\x00"),
        (
            "normal entry",
            Entry::new_normal(log_id(3, 42), proposal()),
            b"\x03\x01*\x01\x01\x80\xd0\x95\xff\xbc1\x80\x80\x80\x80\x02\x02\x00\x01k\x01v\x00\x00\x00\x08\x01\x01k",
        ),
        (
            "membership entry",
            Entry::new_membership(log_id(3, 43), membership()),
            b"\x03\x01+\x02\x01\x02\x01\x02\x03\x01\x06h:6380\x07h:16380\x02n1\x02\x06h:6381\x07h:16381\x02n2\x03\x06h:6382\x07h:16382\x02n3",
        ),
    ];
    for (what, entry, want) in &entries {
        pinned_value(what, entry, want);
    }
}

/// An entry of another format version fails loudly, naming both versions,
/// in the log store and on the bus alike; it is never misread.
#[test]
fn unknown_entry_version_is_refused_by_name() {
    let mut p = PROPOSAL_GOLDEN.to_vec();
    p[0] = 7;
    let e = decode::<Proposal>(&p).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    let msg = e.to_string();
    assert!(
        msg.contains("format version 7") && msg.contains("reads version 1"),
        "{msg}"
    );

    let mut entry =
        crate::raft::log_store::encode(&Entry::new_normal(log_id(3, 42), proposal())).unwrap();
    let at = entry.len() - PROPOSAL_GOLDEN.len();
    assert_eq!(entry[at..], *PROPOSAL_GOLDEN);
    entry[at] = 2;
    let msg = crate::raft::log_store::decode::<Entry>(&entry)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("format version 2"), "{msg}");

    // An entry written before versions existed: its first byte is the
    // clock's varint (>= 0x80), never a version this build reads.
    #[derive(Serialize)]
    struct Unversioned {
        now_ms: u64,
        limits: Limits,
        ops: Vec<WriteOp>,
    }
    let p = proposal();
    let old = postcard::to_stdvec(&Unversioned {
        now_ms: p.now_ms,
        limits: p.limits,
        ops: p.ops,
    })
    .unwrap();
    let msg = decode::<Proposal>(&old).unwrap_err().to_string();
    assert!(msg.contains(&format!("format version {}", old[0])), "{msg}");

    // The same refusal through the bus's frame reader.
    let req = BusRequest::Append(AppendEntriesRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: None,
        entries: vec![Entry::new_normal(log_id(3, 42), proposal())],
        leader_commit: None,
    });
    let mut frame = frame_of(&req);
    let at = frame.len() - 1 - PROPOSAL_GOLDEN.len(); // leader_commit: None is 1 byte
    assert_eq!(frame[at], PROPOSAL_VERSION);
    frame[at] = 9;
    let e = futures::executor::block_on(read_frame::<_, BusRequest>(&mut &frame[..])).unwrap_err();
    assert!(e.to_string().contains("format version 9"), "{e}");
}

// ---- bus frames --------------------------------------------------------------

fn frame_of<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = Vec::new();
    futures::executor::block_on(write_frame(&mut out, msg)).unwrap();
    out
}

fn hello() -> Hello {
    Hello {
        version: BUS_VERSION,
        from: 1,
        from_name: "n1".into(),
        cluster: Some("c".into()),
        to: 2,
        to_name: "n2".into(),
    }
}

fn request_tag(r: &BusRequest) -> u8 {
    match r {
        BusRequest::Hello(_) => 0,
        BusRequest::Append(_) => 1,
        BusRequest::Vote(_) => 2,
        BusRequest::PreVote(_) => 3,
        BusRequest::TransferLeader(_) => 4,
        BusRequest::SnapshotChunk { .. } => 5,
        BusRequest::ReadIndex { .. } => 6,
        BusRequest::GuestHello(_) => 7,
        BusRequest::WhoAreYou => 8,
        BusRequest::Join { .. } => 9,
        BusRequest::TransferLeadership { .. } => 10,
        BusRequest::Proof { .. } => 11,
    }
}

fn response_tag(r: &BusResponse) -> u8 {
    match r {
        BusResponse::Hello => 0,
        BusResponse::Append(_) => 1,
        BusResponse::Vote(_) => 2,
        BusResponse::TransferLeader(_) => 3,
        BusResponse::ChunkAccepted => 4,
        BusResponse::Snapshot(_) => 5,
        BusResponse::Error(_) => 6,
        BusResponse::ReadIndex(_) => 7,
        BusResponse::Identity { .. } => 8,
        BusResponse::Join(_) => 9,
        BusResponse::Done => 10,
        BusResponse::Challenge { .. } => 11,
        BusResponse::Proof { .. } => 12,
    }
}

fn snapshot_meta() -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(log_id(3, 43)),
        last_membership: StoredMembership::new(Some(log_id(3, 43)), membership()),
    }
}

/// Every bus request, as a whole frame (`u32` big-endian length, postcard
/// body). The hello is what a node of another build meets first: its
/// layout must stay readable for the version check to refuse cleanly.
fn request_goldens() -> Vec<(BusRequest, &'static [u8])> {
    let vote = Vote::new_committed(3, 1);
    vec![
        (BusRequest::Hello(hello()), b"\x00\x00\x00\x0d\x00\x04\x01\x02n1\x01\x01c\x02\x02n2"),
        (
            BusRequest::Append(AppendEntriesRequest {
                vote,
                prev_log_id: Some(log_id(3, 41)),
                entries: vec![Entry::new_normal(log_id(3, 42), proposal())],
                leader_commit: Some(log_id(3, 41)),
            }),
            b"\x00\x00\x00*\x01\x03\x01\x01\x01\x03\x01)\x01\x03\x01*\x01\x01\x80\xd0\x95\xff\xbc1\x80\x80\x80\x80\x02\x02\x00\x01k\x01v\x00\x00\x00\x08\x01\x01k\x01\x03\x01)",
        ),
        (
            BusRequest::Vote(VoteRequest::new(Vote::new(4, 2), Some(log_id(3, 42)))),
            b"\x00\x00\x00\x09\x02\x04\x02\x00\x01\x03\x01*\x00",
        ),
        (
            BusRequest::PreVote(VoteRequest::new(Vote::new(4, 2), Some(log_id(3, 42)))),
            b"\x00\x00\x00\x09\x03\x04\x02\x00\x01\x03\x01*\x00",
        ),
        (
            BusRequest::TransferLeader(TransferLeaderRequest::new(vote, 2, Some(log_id(3, 42)))),
            b"\x00\x00\x00\x09\x04\x03\x01\x01\x02\x01\x03\x01*",
        ),
        (
            BusRequest::SnapshotChunk {
                vote,
                meta: snapshot_meta(),
                offset: 1 << 20,
                data: b("chunk"),
                done: true,
            },
            b"\x00\x00\x00U\x05\x03\x01\x01\x01\x03\x01+\x01\x03\x01+\x01\x02\x01\x02\x03\x01\x06h:6380\x07h:16380\x02n1\x02\x06h:6381\x07h:16381\x02n2\x03\x06h:6382\x07h:16382\x02n3\x00\x80\x80@\x05chunk\x01",
        ),
        (BusRequest::ReadIndex { lease: true }, b"\x00\x00\x00\x02\x06\x01"),
        (
            BusRequest::GuestHello(GuestHello {
                version: BUS_VERSION,
                from: 1,
                from_name: "n1".into(),
                cluster: None,
            }),
            b"\x00\x00\x00\x07\x07\x04\x01\x02n1\x00",
        ),
        (BusRequest::WhoAreYou, b"\x00\x00\x00\x01\x08"),
        (BusRequest::Join { id: 4, info: node(4) }, b"\x00\x00\x00\x14\x09\x04\x06h:6383\x07h:16383\x02n4"),
        (BusRequest::TransferLeadership { to: 2 }, b"\x00\x00\x00\x02\x0a\x02"),
        (
            BusRequest::Proof {
                nonce: [0xaa; 32],
                mac: [0x55; 32],
            },
            b"\x00\x00\x00A\x0b\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaaUUUUUUUUUUUUUUUUUUUUUUUUUUUUUUUU",
        ),
    ]
}

fn response_goldens() -> Vec<(BusResponse, &'static [u8])> {
    let vote = Vote::new_committed(3, 1);
    vec![
        (BusResponse::Hello, b"\x00\x00\x00\x01\x00"),
        (
            BusResponse::Append(AppendEntriesResponse::PartialSuccess(Some(log_id(3, 42)))),
            b"\x00\x00\x00\x06\x01\x01\x01\x03\x01*",
        ),
        (
            BusResponse::Vote(VoteResponse::new(vote, Some(log_id(3, 42)), true)),
            b"\x00\x00\x00\x09\x02\x03\x01\x01\x01\x01\x03\x01*",
        ),
        (
            BusResponse::TransferLeader(Ok(())),
            b"\x00\x00\x00\x02\x03\x00",
        ),
        (BusResponse::ChunkAccepted, b"\x00\x00\x00\x01\x04"),
        (
            BusResponse::Snapshot(SnapshotResponse::new(vote)),
            b"\x00\x00\x00\x04\x05\x03\x01\x01",
        ),
        (
            BusResponse::Error("refused".into()),
            b"\x00\x00\x00\x09\x06\x07refused",
        ),
        (
            BusResponse::ReadIndex(log_id(3, 42)),
            b"\x00\x00\x00\x04\x07\x03\x01*",
        ),
        (
            BusResponse::Identity {
                id: 2,
                info: node(2),
                cluster: Some("c".into()),
            },
            b"\x00\x00\x00\x17\x08\x02\x06h:6381\x07h:16381\x02n2\x01\x01c",
        ),
        (
            BusResponse::Join(JoinReply::Redirect {
                leader: 1,
                bus_addr: "h:16380".into(),
            }),
            b"\x00\x00\x00\x0b\x09\x01\x01\x07h:16380",
        ),
        (BusResponse::Done, b"\x00\x00\x00\x01\x0a"),
        (
            BusResponse::Challenge { nonce: [0xaa; 32] },
            b"\x00\x00\x00!\x0b\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa",
        ),
        (
            BusResponse::Proof { mac: [0x55; 32] },
            b"\x00\x00\x00!\x0cUUUUUUUUUUUUUUUUUUUUUUUUUUUUUUUU",
        ),
    ]
}

#[test]
fn bus_frames_are_pinned() {
    assert_eq!(BUS_VERSION, 4);
    check_frames("bus request", &request_goldens(), request_tag);
    check_frames("bus response", &response_goldens(), response_tag);
}

/// The hellos of bus versions 3 (before the cluster-secret handshake) as a
/// node of that build sends them: they still decode, so a node of this
/// build refuses them cleanly with `bus protocol version 3` rather than
/// as garbage (and a version 3 node reads version 4 hellos the same way).
#[test]
fn previous_version_hellos_still_decode() {
    let v3: &[u8] = b"\x00\x00\x00\x0d\x00\x03\x01\x02n1\x01\x01c\x02\x02n2";
    let h: BusRequest = futures::executor::block_on(read_frame(&mut &v3[..]))
        .unwrap()
        .unwrap();
    assert!(
        matches!(h, BusRequest::Hello(Hello { version: 3, .. })),
        "{h:?}"
    );
    let v3: &[u8] = b"\x00\x00\x00\x07\x07\x03\x01\x02n1\x00";
    let h: BusRequest = futures::executor::block_on(read_frame(&mut &v3[..]))
        .unwrap()
        .unwrap();
    assert!(
        matches!(h, BusRequest::GuestHello(GuestHello { version: 3, .. })),
        "{h:?}"
    );
}

/// Each frame is pinned, carries its tag right after the length, and the
/// golden frame reads back to the same message.
fn check_frames<T: Serialize + DeserializeOwned>(
    kind: &str,
    goldens: &[(T, &[u8])],
    tag: fn(&T) -> u8,
) {
    for (i, (msg, want)) in goldens.iter().enumerate() {
        assert_eq!(usize::from(tag(msg)), i, "{kind}s in tag order");
        let what = format!("{kind} tag {i}");
        let got = frame_of(msg);
        pinned(&what, &got, want);
        assert_eq!(want[4], tag(msg), "{what}: tag after the length");
        let back: T = futures::executor::block_on(read_frame(&mut &want[..]))
            .unwrap()
            .unwrap();
        assert_eq!(frame_of(&back), got, "{what}: golden frame reads back");
    }
}

#[test]
fn bus_variants_all_pinned() {
    // A hello's fields decode from zeros too (version 0, empty names, None).
    assert_eq!(
        variant_count::<BusRequest>(),
        request_goldens().len(),
        "a bus request has no golden frame here"
    );
    assert_eq!(
        variant_count::<BusResponse>(),
        response_goldens().len(),
        "a bus response has no golden frame here"
    );
}

// ---- snapshots ---------------------------------------------------------------

/// The keyspace part of a snapshot file: header (magic, version), one entry
/// with a deadline, end marker with count, CRC-32.
#[test]
fn keyspace_snapshot_is_pinned() {
    let mut ks = Keyspace::new();
    ks.apply(
        &WriteOp::Set {
            key: b("key"),
            value: b("value"),
            cond: SetCond::Always,
            ttl: Ttl::At(1_700_000_000_000),
            get: false,
        },
        1_600_000_000_000,
        Limits::default(),
    );
    let mut got = Vec::new();
    ks.write_snapshot(&mut got).unwrap();
    pinned("keyspace snapshot", &got, b"RCKS\x0d\x0a\x1a\x0a\x01\x00\x00\x00\x01\x00h\xe5\xcf\x8b\x01\x00\x00\x03key\x05value\xff\x01\x00\x00\x00\x00\x00\x00\x00\xb1\xc2\x0a!");
    let back = Keyspace::read_snapshot(&got[..]).unwrap();
    assert_eq!(back.digest(), ks.digest());
}

/// What a snapshot file holds before the keyspace: magic, header length,
/// postcard(meta, replicated clock).
#[test]
fn snapshot_file_header_is_pinned() {
    let got =
        crate::raft::state_machine::snapshot_prefix(&snapshot_meta(), 1_700_000_000_000).unwrap();
    pinned("snapshot file header", &got, b"RCSNAP01M\x00\x00\x00\x01\x03\x01+\x01\x03\x01+\x01\x02\x01\x02\x03\x01\x06h:6380\x07h:16380\x02n1\x02\x06h:6381\x07h:16381\x02n2\x03\x06h:6382\x07h:16382\x02n3\x00\x80\xd0\x95\xff\xbc1");
}
