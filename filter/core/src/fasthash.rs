//! A fast, non-keyed hasher (the Fx multiply-rotate scheme) for the per-request
//! maps: host name → service, pod name → index, context id → request.
//!
//! Safe here because no request can insert a key: the name maps are built
//! from the validated weights table, and the stats keys are table indexes, so
//! hash flooding has nothing to grow. std's SipHash costs more than the
//! lookup itself on the filter's hot path.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// The Fx hasher: `h = (h.rotl(5) ^ word) * K` per 64-bit word.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            word[7] = rest.len() as u8; // "a" and "a\0" hash apart
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The low bits pick the bucket: rotate the well-mixed high bits down.
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_similar_keys_hash_apart() {
        let mut m: FastMap<String, u32> = FastMap::default();
        let names: Vec<String> = (0..2000).map(|i| format!("svc-{i}.ns.svc")).collect();
        for (i, n) in names.iter().enumerate() {
            m.insert(n.clone(), i as u32);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(m.get(n.as_str()), Some(&(i as u32)));
        }
        assert_eq!(m.get("svc-2000.ns.svc"), None);
        let mut pairs: FastMap<(u32, u32), u64> = FastMap::default();
        pairs.insert((1, 2), 3);
        assert_eq!(pairs.get(&(1, 2)), Some(&3));
        assert_eq!(pairs.get(&(2, 1)), None);
        // Distinct short keys give distinct hashes (no trivial collisions).
        let hash = |s: &str| {
            let mut h = FxHasher::default();
            std::hash::Hash::hash(s, &mut h);
            h.finish()
        };
        let hashes: std::collections::HashSet<u64> = names.iter().map(|n| hash(n)).collect();
        assert_eq!(hashes.len(), names.len());
        assert_ne!(hash("a"), hash("a\0"));
    }
}
