//! The reuse Bloom filter of a full proof ("BloomHash" in the spec): which partial proofs of
//! other authors the full proof reuses. A filter of `m = 8 * len` bits (1 to 256 bytes) with
//! `k = 3` bit positions per part, taken from `sha256(author as u64 LE || air as u32 LE)`:
//! bytes `4i..4i+4` as a little-endian `u32`, modulo `m`, for `i` in 0..3. Bit `b` is bit
//! `b % 8` of byte `b / 8`.

use sha2::{Digest, Sha256};

use crate::outcome::PartRef;

/// Bit positions per part.
pub const BLOOM_HASHES: usize = 3;

/// A reuse Bloom filter over [`PartRef`]s.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReuseBloom {
    bits: Vec<u8>,
}

fn positions(part: &PartRef, num_bits: u64) -> [u64; BLOOM_HASHES] {
    let mut h = Sha256::new();
    h.update(part.author.0.to_le_bytes());
    h.update(part.air.0.to_le_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut out = [0u64; BLOOM_HASHES];
    for (slot, chunk) in out.iter_mut().zip(digest.chunks_exact(4)) {
        let mut word = [0u8; 4];
        word.copy_from_slice(chunk);
        *slot = u64::from(u32::from_le_bytes(word)).checked_rem(num_bits).unwrap_or(0);
    }
    out
}

impl ReuseBloom {
    /// An empty filter of `num_bytes` bytes (at least 1).
    pub fn new(num_bytes: usize) -> Self {
        Self { bits: vec![0; num_bytes.max(1)] }
    }

    /// A filter of `num_bytes` bytes holding `parts`.
    pub fn from_parts<'a>(num_bytes: usize, parts: impl IntoIterator<Item = &'a PartRef>) -> Self {
        let mut bloom = Self::new(num_bytes);
        for part in parts {
            bloom.insert(part);
        }
        bloom
    }

    /// Wraps the bytes of a received filter.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self { bits: bytes.to_vec() }
    }

    /// The filter's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn num_bits(&self) -> u64 {
        (self.bits.len() as u64).saturating_mul(8)
    }

    /// Adds a part.
    pub fn insert(&mut self, part: &PartRef) {
        for bit in positions(part, self.num_bits()) {
            if let Some(byte) = usize::try_from(bit / 8).ok().and_then(|i| self.bits.get_mut(i)) {
                *byte |= 1 << (bit % 8);
            }
        }
    }

    /// Whether the part may be in the filter (no false negatives). An empty filter contains
    /// nothing.
    pub fn contains(&self, part: &PartRef) -> bool {
        if self.bits.is_empty() {
            return false;
        }
        positions(part, self.num_bits()).iter().all(|&bit| {
            usize::try_from(bit / 8)
                .ok()
                .and_then(|i| self.bits.get(i))
                .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AirIndex, ProverIndex};

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let parts: Vec<PartRef> = (0..20)
            .map(|i| PartRef { author: ProverIndex(i * 7), air: AirIndex(i as u32) })
            .collect();
        let bloom = ReuseBloom::from_parts(64, &parts);
        assert!(parts.iter().all(|p| bloom.contains(p)));
        let false_positives = (1000..2000)
            .filter(|&i| bloom.contains(&PartRef { author: ProverIndex(i), air: AirIndex(1) }))
            .count();
        assert!(false_positives < 50, "{false_positives}");
        assert!(!ReuseBloom::from_bytes(&[]).contains(&parts[0]));
        assert!(!ReuseBloom::new(64).contains(&parts[0]));
    }
}
