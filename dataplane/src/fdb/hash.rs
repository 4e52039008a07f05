//! MAC keys and their hasher: a MAC packed into a `u64`, hashed with one folded multiply
//! and a per-table random seed.

use std::hash::{BuildHasher, Hasher};
use vxdp_control::mac::Mac;

/// The MAC as a map key: its six bytes in the low 48 bits of a `u64`.
#[inline]
pub fn mac_key(mac: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(mac);
    u64::from_le_bytes(b)
}

pub(super) fn key_mac(key: u64) -> Mac {
    let b = key.to_le_bytes();
    Mac([b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// Hasher for [`mac_key`] keys: one 64x64->128 multiply whose halves are xor-folded
/// (as foldhash/ahash do), seeded per table so hash values are not predictable from
/// outside (learned MACs are chosen by whoever sends traffic).
#[derive(Clone, Copy)]
pub struct MacHasher {
    seed: u64,
    value: u64,
}

const FOLD_MUL: u64 = 0x5851_f42d_4c95_7f2d;

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = (a as u128).wrapping_mul(b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for MacHasher {
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.value = folded_multiply(self.value ^ x ^ self.seed, FOLD_MUL);
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.value
    }
}

/// Builds [`MacHasher`]s sharing one random seed.
#[derive(Clone, Copy)]
pub struct MacBuildHasher {
    seed: u64,
}

impl MacBuildHasher {
    pub fn with_seed(seed: u64) -> Self {
        MacBuildHasher { seed }
    }
}

impl Default for MacBuildHasher {
    /// A random seed (from std's per-process random keys).
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x7864_7076u64);
        MacBuildHasher { seed }
    }
}

impl BuildHasher for MacBuildHasher {
    type Hasher = MacHasher;
    #[inline]
    fn build_hasher(&self) -> MacHasher {
        MacHasher { seed: self.seed, value: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hasher_spreads_sequential_macs() {
        let h = MacBuildHasher::with_seed(12345);
        let buckets: HashSet<u64> =
            (0u64..1024).map(|i| h.hash_one(mac_key(&[2, 0, 0, 0, (i >> 8) as u8, i as u8])) >> 57).collect();
        assert_eq!(buckets.len(), 128, "top 7 bits (hashbrown's tag) must vary");
        let low: HashSet<u64> =
            (0u64..1024).map(|i| h.hash_one(mac_key(&[2, 0, 0, 0, (i >> 8) as u8, i as u8])) & 1023).collect();
        assert!(low.len() > 600, "low bits must vary: {}", low.len());
    }
}
