//! The identity of metrics and series: 128-bit keys, so the checker remembers a hash per
//! metric instead of its labels.
//!
//! A label set's key is the wrapping sum of a hash per (name, value) pair, so label order does
//! not matter, and leaving a label out (`le`, `quantile`, a stateset's state) is a subtraction.
//! An empty value counts as an absent label, as OpenMetrics says it should. The hash is a
//! two-lane folded multiply over 16 bytes a round; with 128 bits, two different label sets of
//! an exposition share a key with a probability near 2^-128 per pair.

use std::hash::{BuildHasherDefault, Hasher};

use super::lexer::RawSample;

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K2: u64 = 0x1656_67b1_9e37_79f9;
const K3: u64 = 0x85eb_ca77_c2b2_ae63;

/// The keys of the sample's metric (its labels without `excluded`) and of its series (its
/// name and all its labels).
pub(crate) fn identity(s: &RawSample<'_>, excluded: Option<&str>) -> (u128, u128) {
    let mut total: u128 = 0;
    let mut left_out: u128 = 0;
    for (n, v) in &s.labels {
        if v.is_empty() {
            continue;
        }
        let h = pair_hash(n, v);
        total = total.wrapping_add(h);
        if Some(*n) == excluded {
            left_out = h;
        }
    }
    (total.wrapping_sub(left_out), total ^ name_hash(s.name))
}

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Eight bytes of `b` from `i`, little-endian.
fn r64(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"))
}

/// Four bytes of `b` from `i`, little-endian.
fn r32(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        b[i..i + 4].try_into().expect("four bytes"),
    ))
}

/// Two independent 64-bit lanes.
struct Hash128 {
    a: u64,
    b: u64,
}

impl Hash128 {
    fn new(a: u64, b: u64) -> Hash128 {
        Hash128 { a, b }
    }

    fn round(&mut self, x: u64, y: u64) {
        let a = fold(self.a ^ x, K1 ^ y);
        let b = fold(self.b ^ y, K2 ^ x);
        self.a = a;
        self.b = b;
    }

    /// Takes `bytes` and their length (so `"ab", ""` and `"a", "b"` differ). Short tails
    /// are read as overlapping words, as wyhash does, rather than copied.
    fn absorb(&mut self, b: &[u8]) -> &mut Self {
        let len = b.len();
        let (x, y) = if len > 16 {
            let mut i = 0;
            while len - i > 16 {
                self.round(r64(b, i), r64(b, i + 8));
                i += 16;
            }
            (r64(b, len - 16), r64(b, len - 8))
        } else if len >= 8 {
            (r64(b, 0), r64(b, len - 8))
        } else if len >= 4 {
            (r32(b, 0), r32(b, len - 4))
        } else if len > 0 {
            let x = u64::from(b[0]) << 16 | u64::from(b[len / 2]) << 8 | u64::from(b[len - 1]);
            (x, 0)
        } else {
            (0, 0)
        };
        self.round(x, y ^ (len as u64).wrapping_mul(K3));
        self
    }

    fn finish(&self) -> u128 {
        (u128::from(fold(self.a, K0)) << 64) | u128::from(fold(self.b ^ K3, K1))
    }
}

/// A 128-bit hash of a label pair.
fn pair_hash(name: &str, value: &str) -> u128 {
    Hash128::new(0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344)
        .absorb(name.as_bytes())
        .absorb(value.as_bytes())
        .finish()
}

/// A 128-bit hash of a sample name (in another domain than label pairs).
fn name_hash(name: &str) -> u128 {
    Hash128::new(0xa409_3822_299f_31d0, 0x082e_fa98_ec4e_6c89)
        .absorb(name.as_bytes())
        .finish()
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(K0);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// Hash maps keyed by [`identity`] keys.
pub(crate) type NoHash = BuildHasherDefault<KeyHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_order_does_not_change_identity() {
        let a = pair_hash("a", "1").wrapping_add(pair_hash("b", "2"));
        let b = pair_hash("b", "2").wrapping_add(pair_hash("a", "1"));
        assert_eq!(a, b);
        assert_ne!(pair_hash("a", "12"), pair_hash("a1", "2"));
        assert_ne!(pair_hash("ab", ""), pair_hash("a", "b"));
        assert_ne!(pair_hash("a", "b\0"), pair_hash("a", "b"));
        assert_ne!(pair_hash("a", "b"), pair_hash("b", "a"));
    }

    #[test]
    fn no_collisions_among_many_similar_pairs() {
        let mut seen = std::collections::HashSet::new();
        for n in ["a", "ab", "abcdefghijklmnop", "abcdefghijklmnopq"] {
            for v in 0..20_000 {
                assert!(seen.insert(pair_hash(n, &v.to_string())));
            }
        }
    }
}
