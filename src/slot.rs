//! Redis Cluster hash slots: how many there are and which one a key hashes
//! to. Every layer that needs a slot (keyspace maps, CLUSTER KEYSLOT and the
//! slot arguments, the server's routing) uses these two, so they cannot
//! drift apart. Sits at the crate root and imports nothing from the crate.

/// Number of cluster slots; a slot is `0..SLOTS`.
pub const SLOTS: u16 = 16384;

/// The cluster slot of a key: CRC16-XMODEM of the key, or of its hash tag
/// (the bytes between the first `{` and the next `}`, when not empty),
/// modulo [`SLOTS`]. The CRC and the tag rule come from `redis-protocol`.
#[inline]
pub fn key_slot(key: &[u8]) -> u16 {
    redis_protocol::redis_keyslot(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        // Values from the Redis Cluster specification and `redis-cli`.
        assert_eq!(key_slot(b"123456789"), 0x31C3 % SLOTS);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(
            key_slot(b"foo{}{bar}"),
            key_slot(b"bar"),
            "empty tag: whole key"
        );
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert!(key_slot(b"") < SLOTS);
    }
}
