//! Trace generation for the segment AIR (constraints live in `air.rs`).

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_matrix::dense::RowMajorMatrix;

use crate::air::{
    DIGEST_LIMBS, KEY_WIDTH, NUM_SEGMENT_COLS, ROUND_CONSTANTS, SegmentCols, SegmentPublics,
};
use crate::config::Val;
use crate::types::{ChainState, KeyDigest, STATE_WIDTH, SegmentSpec};

/// One round of the chain (see `air.rs`).
#[inline]
pub(crate) fn round(s: &[Val; STATE_WIDTH]) -> [Val; STATE_WIDTH] {
    let cubes: [Val; STATE_WIDTH] = core::array::from_fn(|j| s[j].cube());
    let sum: Val = cubes.iter().copied().sum();
    core::array::from_fn(|j| {
        sum + cubes[j] * Val::from_u64(j as u64 + 1) + Val::from_u32(ROUND_CONSTANTS[j])
    })
}

/// Runs `rounds` rounds of the chain from `start`.
pub(crate) fn run_chain(start: ChainState, rounds: u64) -> ChainState {
    let mut s = start.to_fields();
    for _ in 0..rounds {
        s = round(&s);
    }
    ChainState::from_fields(&s)
}

/// A 32-byte digest as 16 little-endian 16-bit limbs (an injective encoding).
pub(crate) fn digest_limbs(d: &[u8; 32]) -> [Val; DIGEST_LIMBS] {
    core::array::from_fn(|i| Val::from_u16(u16::from_le_bytes([d[2 * i], d[2 * i + 1]])))
}

fn u32_limbs(v: u32) -> [Val; 2] {
    [Val::from_u32(v & 0xffff), Val::from_u32(v >> 16)]
}

/// The initial values of the key-bound columns for a key digest.
pub(crate) fn key_seed(key: &KeyDigest) -> [Val; KEY_WIDTH] {
    let limbs = digest_limbs(&key.0);
    core::array::from_fn(|j| {
        (0..4).fold(Val::ZERO, |acc, i| acc + limbs[4 * j + i] * Val::from_u64(1u64 << (16 * i)))
    })
}

/// The public values (layout [`SegmentPublics`]) of a segment proven by the holder of `key`; a
/// replacement [`Workload`](crate::Workload) AIR must read them in this layout.
pub fn segment_public_values(spec: &SegmentSpec, key: &KeyDigest) -> Vec<Val> {
    SegmentPublics {
        round_digest: digest_limbs(&spec.round_digest.0),
        sub_block_index: u32_limbs(spec.sub_block_index.0),
        air_index: u32_limbs(spec.air_index.0),
        start_state: spec.start_state.to_fields(),
        end_state: spec.end_state.to_fields(),
        key_digest: digest_limbs(&key.0),
    }
    .to_vec()
}

/// Generates the trace of a segment for the author with key digest `key`. Returns the trace and
/// the state on its last row.
pub(crate) fn generate_segment_trace(
    spec: &SegmentSpec,
    key: &KeyDigest,
) -> (RowMajorMatrix<Val>, ChainState) {
    let rows = 1usize << spec.log_rows;
    let mut values = Val::zero_vec(rows * NUM_SEGMENT_COLS);
    let mut cur = SegmentCols { state: spec.start_state.to_fields(), key: key_seed(key) };
    let mut chunks = values.chunks_exact_mut(NUM_SEGMENT_COLS);
    let mut last = cur.state;
    for row in &mut chunks {
        cur.write_row(row);
        last = cur.state;
        let key_next = core::array::from_fn(|j| cur.key[j].cube() + cur.state[j]);
        cur = SegmentCols { state: round(&cur.state), key: key_next };
    }
    debug_assert!(last.iter().all(|v| v.as_canonical_u32() < Val::ORDER_U32));
    (RowMajorMatrix::new(values, NUM_SEGMENT_COLS), ChainState::from_fields(&last))
}

#[cfg(test)]
mod tests {
    use p3_matrix::Matrix;

    use super::*;
    use crate::air::SegmentAir;
    use crate::types::{AirIndex, RoundDigest, SubBlockIndex};

    #[test]
    fn trace_satisfies_constraints_and_differs_per_key() {
        let start = ChainState::from_digest(&[3u8; 32]);
        let spec = SegmentSpec {
            round_digest: RoundDigest([1; 32]),
            sub_block_index: SubBlockIndex(0),
            air_index: AirIndex(0),
            log_rows: 6,
            start_state: start,
            end_state: run_chain(start, 63),
        };
        let (a, end) = generate_segment_trace(&spec, &KeyDigest([1; 32]));
        let (b, end_b) = generate_segment_trace(&spec, &KeyDigest([2; 32]));
        assert_eq!(end, spec.end_state);
        assert_eq!(end, end_b);
        assert_eq!(a.height(), 64);
        assert_ne!(a.values, b.values);
        p3_air::check_constraints(
            &SegmentAir,
            &a,
            &segment_public_values(&spec, &KeyDigest([1; 32])),
        );
    }

    #[test]
    fn round_is_not_identity_on_zero() {
        let z = [Val::ZERO; STATE_WIDTH];
        assert_ne!(round(&z), z);
    }
}
