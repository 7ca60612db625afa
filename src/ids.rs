//! Maps keyed by run ids (`u128` UUIDs), hashed for speed.
//!
//! Every callback event looks its run up by id, so the hash is on the per-call path. The
//! standard SipHash costs more than the rest of the lookup for a 16-byte key; a run id is
//! already random (uuid4) or half random (uuid7), so one seeded folded multiply of its two
//! halves spreads it as well. The seed is drawn per map from the standard library's random
//! keys, so ids chosen to collide cannot be precomputed.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A `HashMap` keyed by run id with [`RunIdState`] hashing.
pub type RunMap<V> = HashMap<u128, V, RunIdState>;

/// Builds [`RunIdHasher`]s with a seed drawn once per map.
#[derive(Clone, Debug)]
pub struct RunIdState {
    seed: [u64; 2],
}

impl Default for RunIdState {
    fn default() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        RunIdState {
            seed: [random.hash_one(0u8), random.hash_one(1u8)],
        }
    }
}

impl BuildHasher for RunIdState {
    type Hasher = RunIdHasher;

    fn build_hasher(&self) -> RunIdHasher {
        RunIdHasher {
            state: self.seed[0],
            seed: self.seed[1],
        }
    }
}

/// Multiplies and folds the 128-bit product's halves together.
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    #[allow(clippy::cast_possible_truncation)]
    let (lo, hi) = (p as u64, (p >> 64) as u64);
    lo ^ hi
}

/// A seeded folded-multiply hasher for `u128` keys (other writes fold in 8 bytes at a time).
#[derive(Clone, Debug)]
pub struct RunIdHasher {
    state: u64,
    seed: u64,
}

impl Hasher for RunIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.state = fold_mul(self.state ^ n, self.seed);
    }

    fn write_u128(&mut self, n: u128) {
        #[allow(clippy::cast_possible_truncation)]
        let (lo, hi) = (n as u64, (n >> 64) as u64);
        self.state = fold_mul(self.state ^ lo, self.seed ^ hi);
    }

    fn finish(&self) -> u64 {
        // One more round spreads every input bit over the low bits (the bucket) and the high
        // bits (hashbrown's tag) alike.
        fold_mul(self.state, self.seed | 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_sequential_and_uuid7_like_ids() {
        let s = RunIdState::default();
        // Ids that differ only in a few low or high bits still land in different buckets.
        for ids in [
            (0..4096u128).collect::<Vec<_>>(),
            (0..4096u128)
                .map(|i| i << 80 | 0x7000_0000_0000_0000)
                .collect(),
        ] {
            let buckets: std::collections::HashSet<u64> =
                ids.iter().map(|id| s.hash_one(id) & 0xfff).collect();
            // A random function fills 4096 * (1 - 1/e) = 2589 of them on average.
            assert!(buckets.len() > 2450, "{} buckets of 4096", buckets.len());
        }
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut m: RunMap<u32> = RunMap::default();
        for i in 0..10_000u32 {
            m.insert(
                u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
                i,
            );
        }
        for i in 0..10_000u32 {
            assert_eq!(
                m.remove(&u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
                Some(i)
            );
        }
        assert!(m.is_empty());
    }
}
