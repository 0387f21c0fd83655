//! The reuse Bloom filter: which partial proofs a full proof took from other authors.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::types::{AirIndex, AuthorKey, RoundDigest, SubBlockIndex};

/// Bits of the reuse Bloom filter.
pub const REUSE_FILTER_BITS: usize = 2048;
/// Hash functions (bit positions per item) of the reuse Bloom filter.
pub const REUSE_FILTER_HASHES: usize = 4;
const REUSE_DOMAIN: &[u8] = b"plonky3-prover/reuse/v1";

/// Bloom filter of the partial proofs a full proof reused from other authors.
///
/// Parameters: `m = 2048` bits (256 bytes), `k = 4`. An item is
/// `sha256("plonky3-prover/reuse/v1" || round_digest || u32le(sub_block) || u32le(air) || author)`;
/// its bit positions are the first four little-endian `u16`s of that hash modulo 2048.
/// False-positive rate `(1 - e^(-k n / m))^k`: about `1e-7` for the 9 AIRs of a 36M-gas block,
/// `2.4e-3` for the maximum of 128. There are no false negatives; verification requires every
/// reused partial to be in the filter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReuseFilter(Vec<u8>);

impl core::fmt::Debug for ReuseFilter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ReuseFilter({} bits set)", self.0.iter().map(|b| b.count_ones()).sum::<u32>())
    }
}

impl Default for ReuseFilter {
    fn default() -> Self {
        Self(vec![0; REUSE_FILTER_BITS / 8])
    }
}

impl ReuseFilter {
    fn positions(
        round: &RoundDigest,
        sub_block: SubBlockIndex,
        air: AirIndex,
        author: &AuthorKey,
    ) -> [usize; REUSE_FILTER_HASHES] {
        let mut h = Sha256::new();
        h.update(REUSE_DOMAIN);
        h.update(round.0);
        h.update(sub_block.0.to_le_bytes());
        h.update(air.0.to_le_bytes());
        h.update(author.0);
        let d: [u8; 32] = h.finalize().into();
        core::array::from_fn(|i| {
            usize::from(u16::from_le_bytes([d[2 * i], d[2 * i + 1]])) % REUSE_FILTER_BITS
        })
    }

    /// Adds the partial proof of `air` by `author`.
    pub fn insert(
        &mut self,
        round: &RoundDigest,
        sub_block: SubBlockIndex,
        air: AirIndex,
        author: &AuthorKey,
    ) {
        for p in Self::positions(round, sub_block, air, author) {
            if let Some(b) = self.0.get_mut(p / 8) {
                *b |= 1 << (p % 8);
            }
        }
    }

    /// Whether the partial proof of `air` by `author` may be in the filter.
    #[must_use]
    pub fn contains(
        &self,
        round: &RoundDigest,
        sub_block: SubBlockIndex,
        air: AirIndex,
        author: &AuthorKey,
    ) -> bool {
        Self::positions(round, sub_block, air, author)
            .iter()
            .all(|p| self.0.get(p / 8).is_some_and(|b| b & (1 << (p % 8)) != 0))
    }

    /// The filter's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}
