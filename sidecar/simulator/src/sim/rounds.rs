//! What the simulator tracks of the rounds still open and of the blocks whose outcome is not
//! out yet, and each round's timing (its phase deadlines) and randomness (its seeded generator).

use std::sync::Arc;

use phase_engine::{
    AirIndex, BlockInfo, Deadlines, PartRef, Phase, ProverIndex, RoundKey, RoundRef, Slot,
    UnixMillis,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

use super::{Sim, digest};
use crate::pipeline::Outgoing;

/// A full proof built ahead of its aggregation, with the parts it was built from.
pub(super) type BuiltAhead = (Vec<PartRef>, Arc<Outgoing>);

/// What the simulator tracks of an open round.
#[derive(Debug)]
pub(super) struct RoundSim {
    pub(super) slot: Slot,
    pub(super) deadlines: Deadlines,
    pub(super) num_airs: u32,
    pub(super) selected: Vec<ProverIndex>,
    pub(super) assignments: Vec<Vec<AirIndex>>,
    /// Per AIR, the authors of accepted partial proofs, in acceptance order.
    pub(super) partials: Vec<Vec<ProverIndex>>,
    pub(super) finalized: Option<Phase>,
    /// Copiers of the round that already copied a full proof.
    pub(super) copied_full: Vec<ProverIndex>,
    /// AIRs already taken over from decliners.
    pub(super) taken: Vec<AirIndex>,
    /// The provers planned to aggregate the round in T3, by planned time.
    pub(super) aggregators: Vec<(u64, ProverIndex)>,
    /// Full proofs built ahead of their aggregation (modelled mode), with the parts they were
    /// built from; `None` until the round's first aggregation.
    pub(super) speculative: Option<FxHashMap<ProverIndex, BuiltAhead>>,
}

impl RoundSim {
    pub(super) fn round_ref(&self, key: &RoundKey) -> RoundRef {
        RoundRef {
            slot: self.slot,
            block_root: key.block_root,
            sub_block: key.sub_block,
            attempt: key.attempt,
        }
    }

    pub(super) fn airs_of(&self, prover: ProverIndex) -> Option<&[AirIndex]> {
        let i = self.selected.iter().position(|p| *p == prover)?;
        self.assignments.get(i).map(Vec::as_slice)
    }
}

/// What the simulator tracks of a block whose outcome is not out yet.
#[derive(Debug)]
pub(super) struct BlockSim {
    pub(super) index: u64,
    pub(super) info: BlockInfo,
    pub(super) sub_blocks: u32,
    pub(super) finalized_subs: Vec<bool>,
    pub(super) aggregators: Vec<ProverIndex>,
    pub(super) agg_scheduled: bool,
}

impl Sim<'_> {
    pub(super) fn round_rng(&self, key: &RoundKey) -> ChaCha8Rng {
        ChaCha8Rng::from_seed(digest(&[
            b"sidecar-sim-round",
            &self.scenario.seed.to_le_bytes(),
            key.block_root.as_slice(),
            &key.sub_block.0.to_le_bytes(),
            &key.attempt.0.to_le_bytes(),
        ]))
    }

    pub(super) fn deadlines(&self, start: UnixMillis) -> Deadlines {
        let w = &self.engine_config.phases;
        let mut closes = [start; 5];
        let mut t = start.0;
        for (close, len) in closes.iter_mut().zip([w.t1_ms, w.t2_ms, w.t3_ms, w.t4_ms, w.t5_ms]) {
            t += len;
            *close = UnixMillis(t);
        }
        Deadlines { start, closes, grace_ms: w.max_clock_disparity_ms }
    }
}
