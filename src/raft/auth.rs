//! Bus authentication: a cluster secret shared by every node, proved by an
//! HMAC-SHA256 challenge–response when a bus connection opens. The secret
//! itself never crosses the wire.
//!
//! The exchange (`raft::network` dials, `raft::service::admit` listens):
//!
//! 1. dialer → listener: its hello (`Hello` or `GuestHello`);
//! 2. listener → dialer: `Challenge { nonce: N_l }`, 32 fresh random bytes;
//! 3. dialer → listener: `Proof { nonce: N_d, mac: M_d }`, with
//!    `M_d = HMAC(secret, transcript("dialer", hello, N_l, N_d))`;
//! 4. the listener checks `M_d` in constant time, then the hello itself
//!    (`raft::identity`), and answers `Proof { mac: M_l }` with
//!    `M_l = HMAC(secret, transcript("listener", hello, N_l, N_d))`;
//! 5. the dialer checks `M_l`: a node never replicates to, joins or
//!    believes an impostor that does not know the secret.
//!
//! The transcript holds the hello exactly as it was sent (its postcard
//! body: bus version, the sender's raft id, name and cluster id, and for a
//! full hello the raft id and name it addressed), both nonces and the
//! direction. A recorded handshake replayed to a listener fails: its
//! `Challenge` nonce is new, so the recorded `M_d` does not match. A MAC
//! of one direction is never accepted for the other.
//!
//! What this does not give: secrecy or integrity of the frames after the
//! handshake. An attacker on the path between two nodes can read the
//! traffic and inject into an established connection; keep the bus on a
//! private network (see docs/membership.md, "Bus authentication").

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Random bytes each side contributes to a handshake.
pub type Nonce = [u8; 32];
/// An HMAC-SHA256 tag.
pub type Tag = [u8; 32];

/// Largest frame read before a connection is authenticated: a hello, a
/// proof. Checked on the declared length, before anything is allocated
/// or decoded.
pub const HANDSHAKE_FRAME_MAX: u32 = 4096;
/// A connection must complete its handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many bus connections may be in their handshake at once;
/// more are closed as soon as they are accepted.
pub const MAX_UNAUTHENTICATED: usize = 64;

const DOMAIN: &[u8] = b"raftcache bus auth v1\0";

/// Which side of a handshake a MAC speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Dialer,
    Listener,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Dialer => b"dialer\0",
            Side::Listener => b"listener\0",
        }
    }
}

/// What both sides of one handshake MAC.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// The dialer's first frame body (postcard of its `BusRequest` hello).
    pub hello: &'a [u8],
    pub listener_nonce: &'a Nonce,
    pub dialer_nonce: &'a Nonce,
}

/// The cluster secret (`cluster-secret`, `cluster-secret-file`). Its
/// `Debug` never shows it.
#[derive(Clone)]
pub struct ClusterSecret(Box<[u8]>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(<redacted>)")
    }
}

impl ClusterSecret {
    pub fn new(secret: &str) -> ClusterSecret {
        ClusterSecret(secret.as_bytes().into())
    }

    fn mac(&self, side: Side, t: &Transcript<'_>) -> Hmac<Sha256> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        m.update(DOMAIN);
        m.update(side.label());
        m.update(&(t.hello.len() as u64).to_be_bytes());
        m.update(t.hello);
        m.update(t.listener_nonce);
        m.update(t.dialer_nonce);
        m
    }

    /// This side's proof of knowing the secret.
    pub fn prove(&self, side: Side, t: &Transcript<'_>) -> Tag {
        self.mac(side, t).finalize().into_bytes().into()
    }

    /// Whether `tag` is `side`'s proof for `t` (constant-time compare).
    pub fn verify(&self, side: Side, t: &Transcript<'_>, tag: &Tag) -> bool {
        self.mac(side, t).verify_slice(tag).is_ok()
    }
}

/// A fresh nonce.
pub fn nonce() -> Nonce {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<'a>(hello: &'a [u8], l: &'a Nonce, d: &'a Nonce) -> Transcript<'a> {
        Transcript {
            hello,
            listener_nonce: l,
            dialer_nonce: d,
        }
    }

    #[test]
    fn proofs_bind_secret_side_hello_and_both_nonces() {
        let s = ClusterSecret::new("s3cret");
        let (l, d) = ([1u8; 32], [2u8; 32]);
        let tag = s.prove(Side::Dialer, &t(b"hello", &l, &d));
        assert!(s.verify(Side::Dialer, &t(b"hello", &l, &d), &tag));
        // Another direction, hello, nonce or secret: refused.
        assert!(!s.verify(Side::Listener, &t(b"hello", &l, &d), &tag));
        assert!(!s.verify(Side::Dialer, &t(b"hellO", &l, &d), &tag));
        assert!(!s.verify(Side::Dialer, &t(b"hello", &[3; 32], &d), &tag));
        assert!(!s.verify(Side::Dialer, &t(b"hello", &l, &[3; 32]), &tag));
        let other = ClusterSecret::new("s3cret ");
        assert!(!other.verify(Side::Dialer, &t(b"hello", &l, &d), &tag));
        // Pinned: HMAC-SHA256 over the documented transcript layout.
        let mut m = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        m.update(b"raftcache bus auth v1\0dialer\0\0\0\0\0\0\0\0\x05hello");
        m.update(&l);
        m.update(&d);
        assert_eq!(tag, <Tag>::from(m.finalize().into_bytes()));
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = format!("{:?}", ClusterSecret::new("hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
    }
}
