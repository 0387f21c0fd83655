//! The segment AIR: constraints only (trace generation lives in `generation.rs`).
//!
//! Columns ([`SegmentCols`]): 8 chain-state columns and 4 key-bound columns.
//!
//! * Round function (every transition): with `c_k = s_k^3`,
//!   `s'_j = (c_0 + ... + c_7) + (j + 1) * c_j + RC_j`. The S-box `x^3` is a permutation of
//!   KoalaBear and the matrix `J + diag(1..8)` is invertible, so each round is a permutation of
//!   the state; a segment of `2^n` rows runs `2^n - 1` rounds.
//! * First row: state = start state; last row: state = end state (public values).
//! * Key-bound columns: on the first row `k_j = sum_i pk[4j+i] * 2^(16 i)` (the author's key
//!   digest, 16-bit limbs), then `k'_j = k_j^3 + s_j`. They make every trace row, hence the
//!   trace commitment, depend on the author's key.
//!
//! The public values ([`SegmentPublics`]) are all observed by the Fiat-Shamir transcript.

use p3_air::symbolic::SymbolicAirBuilder;
use p3_air::{Air, AirBuilder, BaseAir, WindowAccess};
use p3_field::PrimeCharacteristicRing;
use p3_uni_stark::{ProverConstraintFolder, VerifierConstraintFolder};

use crate::config::{Challenge, StarkCfg, Val};
use crate::types::STATE_WIDTH;

/// Number of key-bound columns.
pub const KEY_WIDTH: usize = 4;
/// Number of 16-bit limbs of a 32-byte digest in the public values.
pub(crate) const DIGEST_LIMBS: usize = 16;

/// One row of the segment trace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentCols<T> {
    /// The chain state after `row` rounds.
    pub state: [T; STATE_WIDTH],
    /// Key-bound columns.
    pub key: [T; KEY_WIDTH],
}

/// Number of columns of the segment trace.
pub const NUM_SEGMENT_COLS: usize = core::mem::size_of::<SegmentCols<u8>>();

impl<T: Copy> SegmentCols<T> {
    /// Reads a row.
    pub(crate) fn from_row(row: &[T]) -> Self {
        Self {
            state: core::array::from_fn(|i| row[i]),
            key: core::array::from_fn(|i| row[STATE_WIDTH + i]),
        }
    }

    /// Writes a row.
    pub(crate) fn write_row(&self, row: &mut [T]) {
        row[..STATE_WIDTH].copy_from_slice(&self.state);
        row[STATE_WIDTH..NUM_SEGMENT_COLS].copy_from_slice(&self.key);
    }
}

/// The public values of one segment, in order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentPublics<T> {
    /// Round (block) digest, 16-bit little-endian limbs.
    pub round_digest: [T; DIGEST_LIMBS],
    /// Sub-block index, two 16-bit limbs.
    pub sub_block_index: [T; 2],
    /// AIR index, two 16-bit limbs.
    pub air_index: [T; 2],
    /// Chain state on the first row.
    pub start_state: [T; STATE_WIDTH],
    /// Chain state on the last row.
    pub end_state: [T; STATE_WIDTH],
    /// Author key digest, 16-bit little-endian limbs.
    pub key_digest: [T; DIGEST_LIMBS],
}

/// Number of public values of the segment AIR.
pub const NUM_SEGMENT_PUBLICS: usize = core::mem::size_of::<SegmentPublics<u8>>();

impl<T: Copy> SegmentPublics<T> {
    pub(crate) fn from_slice(v: &[T]) -> Self {
        let mut i = 0;
        let mut take = |n: usize| {
            let s = &v[i..i + n];
            i += n;
            s
        };
        Self {
            round_digest: core::array::from_fn({
                let s = take(DIGEST_LIMBS);
                move |k| s[k]
            }),
            sub_block_index: core::array::from_fn({
                let s = take(2);
                move |k| s[k]
            }),
            air_index: core::array::from_fn({
                let s = take(2);
                move |k| s[k]
            }),
            start_state: core::array::from_fn({
                let s = take(STATE_WIDTH);
                move |k| s[k]
            }),
            end_state: core::array::from_fn({
                let s = take(STATE_WIDTH);
                move |k| s[k]
            }),
            key_digest: core::array::from_fn({
                let s = take(DIGEST_LIMBS);
                move |k| s[k]
            }),
        }
    }

    pub(crate) fn to_vec(self) -> Vec<T> {
        let mut v = Vec::with_capacity(NUM_SEGMENT_PUBLICS);
        v.extend_from_slice(&self.round_digest);
        v.extend_from_slice(&self.sub_block_index);
        v.extend_from_slice(&self.air_index);
        v.extend_from_slice(&self.start_state);
        v.extend_from_slice(&self.end_state);
        v.extend_from_slice(&self.key_digest);
        v
    }
}

/// Round constants `RC_j` of the round function.
pub(crate) const ROUND_CONSTANTS: [u32; STATE_WIDTH] = [
    0x1c2b_3a49,
    0x5867_7685,
    0x1493_a2b1,
    0x40cf_dee0,
    0x2d4c_5b6a,
    0x7988_97a6,
    0x35c4_d3e2,
    0x0a10_2f3e,
];

/// Everything the uni-STARK and batch-STARK provers and verifiers need from an AIR over
/// [`StarkCfg`].
pub trait StarkAir:
    BaseAir<Val>
    + Air<SymbolicAirBuilder<Val>>
    + Air<SymbolicAirBuilder<Val, Challenge>>
    + for<'a> Air<ProverConstraintFolder<'a, StarkCfg>>
    + for<'a> Air<VerifierConstraintFolder<'a, StarkCfg>>
    + for<'a> Air<p3_air::DebugConstraintBuilder<'a, Val>>
    + for<'a> Air<p3_air::DebugConstraintBuilder<'a, Val, Challenge>>
    + Air<p3_lookup::InteractionSymbolicBuilder<Val, Challenge>>
    + for<'a> Air<p3_batch_stark::folder::ProverConstraintFolderWithLookups<'a, StarkCfg>>
    + for<'a> Air<p3_batch_stark::folder::VerifierConstraintFolderWithLookups<'a, StarkCfg>>
    + Clone
    + Send
    + Sync
{
}

impl<A> StarkAir for A where
    A: BaseAir<Val>
        + Air<SymbolicAirBuilder<Val>>
        + Air<SymbolicAirBuilder<Val, Challenge>>
        + for<'a> Air<ProverConstraintFolder<'a, StarkCfg>>
        + for<'a> Air<VerifierConstraintFolder<'a, StarkCfg>>
        + for<'a> Air<p3_air::DebugConstraintBuilder<'a, Val>>
        + for<'a> Air<p3_air::DebugConstraintBuilder<'a, Val, Challenge>>
        + Air<p3_lookup::InteractionSymbolicBuilder<Val, Challenge>>
        + for<'a> Air<p3_batch_stark::folder::ProverConstraintFolderWithLookups<'a, StarkCfg>>
        + for<'a> Air<p3_batch_stark::folder::VerifierConstraintFolderWithLookups<'a, StarkCfg>>
        + Clone
        + Send
        + Sync
{
}

/// The segment AIR (see the module docs for its constraints).
#[derive(Clone, Copy, Debug, Default)]
pub struct SegmentAir;

impl<F> BaseAir<F> for SegmentAir {
    fn width(&self) -> usize {
        NUM_SEGMENT_COLS
    }

    fn num_public_values(&self) -> usize {
        NUM_SEGMENT_PUBLICS
    }

    fn max_constraint_degree(&self) -> Option<usize> {
        Some(3)
    }
}

impl<AB: AirBuilder> Air<AB> for SegmentAir {
    fn eval(&self, builder: &mut AB) {
        let main = builder.main();
        let local = SegmentCols::<AB::Var>::from_row(main.current_slice());
        let next = SegmentCols::<AB::Var>::from_row(main.next_slice());
        let pis = SegmentPublics::<AB::PublicVar>::from_slice(builder.public_values());

        // Boundary: start and end states.
        {
            let mut first = builder.when_first_row();
            for j in 0..STATE_WIDTH {
                first.assert_eq(local.state[j], pis.start_state[j]);
            }
            // Key-bound columns start from the author's key digest.
            for j in 0..KEY_WIDTH {
                let mut acc = AB::Expr::ZERO;
                for i in 0..4 {
                    let limb: AB::Expr = pis.key_digest[4 * j + i].into();
                    acc += limb * AB::Expr::from(AB::F::from_u64(1u64 << (16 * i)));
                }
                first.assert_eq(local.key[j], acc);
            }
        }
        {
            let mut last = builder.when_last_row();
            for j in 0..STATE_WIDTH {
                last.assert_eq(local.state[j], pis.end_state[j]);
            }
        }

        // Transitions.
        let cubes: [AB::Expr; STATE_WIDTH] = core::array::from_fn(|j| {
            let s: AB::Expr = local.state[j].into();
            s.cube()
        });
        let sum: AB::Expr = cubes.iter().cloned().sum();
        let mut tr = builder.when_transition();
        for j in 0..STATE_WIDTH {
            let expected = sum.clone()
                + cubes[j].clone() * AB::Expr::from(AB::F::from_u64(j as u64 + 1))
                + AB::Expr::from(AB::F::from_u32(ROUND_CONSTANTS[j]));
            tr.assert_eq(next.state[j], expected);
        }
        for j in 0..KEY_WIDTH {
            let k: AB::Expr = local.key[j].into();
            tr.assert_eq(next.key[j], k.cube() + local.state[j].into());
        }
    }
}
