//! Which Redis instance a channel lives on: `jump(fnv1a64(channel), n)`.
//!
//! FNV-1a (64-bit) spreads channel names well and is a few lines; Jump
//! consistent hash (Lamping and Veach, 2014, "A Fast, Minimal Memory,
//! Consistent Hash Algorithm") maps the hash to one of `n` buckets so that
//! growing from `n` to `n + 1` shards moves only `1/(n+1)` of the channels,
//! with no ring to store. Every node computes the same shard from the same
//! URL list, so nodes agree without talking.

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Jump consistent hash: a bucket in `0..buckets` for `key` (0 when
/// `buckets` is 0).
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let (mut bucket, mut next) = (0i64, 0i64);
    while next < i64::from(buckets) {
        bucket = next;
        // The paper's linear congruential step, then a jump whose length
        // follows from the step's top 31 bits.
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let step = (1u64 << 31) as f64 / ((key >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * step) as i64;
    }
    bucket as u32
}

/// The shard of `channel` among `shards` instances.
pub fn shard_of(channel: &str, shards: usize) -> usize {
    let buckets = u32::try_from(shards).unwrap_or(u32::MAX);
    jump_consistent_hash(fnv1a64(channel.as_bytes()), buckets) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_vectors() {
        // Reference values of FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn jump_is_stable_and_spreads() {
        assert_eq!(jump_consistent_hash(42, 1), 0);
        assert_eq!(jump_consistent_hash(42, 0), 0);
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_of(&format!("chat:{i}"), 4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn growing_moves_only_a_share() {
        let moved = (0..10_000)
            .filter(|i| {
                let ch = format!("room:{i}");
                shard_of(&ch, 4) != shard_of(&ch, 5)
            })
            .count();
        // Ideal: 1/5 of the channels move, each to the new shard.
        assert!((1_700..2_300).contains(&moved), "{moved}");
        for i in 0..1000 {
            let ch = format!("room:{i}");
            let (before, after) = (shard_of(&ch, 4), shard_of(&ch, 5));
            assert!(before == after || after == 4);
        }
    }
}
