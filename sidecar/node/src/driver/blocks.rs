//! What the driver keeps about each block besides the engine (payload data, accepted proofs,
//! outcome, ledger), and the bounds on what of it stays in memory.

use std::{collections::BTreeMap, sync::Arc};

use phase_engine::{BlockOutcome, SignedAggProof, SignedFullProof, SignedPartialProof, Slot};

use super::Driver;
use crate::verify::BlockWork;

/// Blocks whose records (slot, outcome, ledger) the driver keeps in memory, the latest by slot.
const RECORD_BLOCKS: usize = 256;
/// Settled blocks whose proofs (accepted partial proofs, full proofs, AggProof) and payload
/// data stay in memory, the latest by slot: what provers download while a block's rounds are
/// open, and a margin for late readers. A settled, proven block's finalised proof is also in
/// the store and served from there once it leaves memory; its partial proofs are not (they
/// only matter while its rounds are open), so they are answered with 404 then.
pub(super) const PROOF_BLOCKS: usize = 2;
/// Blocks, settled or not, beyond which (counted from the latest, by slot) proofs and payload
/// data leave memory in any case: a block whose rounds never closed must not hold its proofs
/// for ever.
const MAX_PROOF_BLOCKS: usize = 64;

/// What the node keeps about a block besides the engine.
#[derive(Default, Debug)]
pub(super) struct BlockRecord {
    pub(super) slot: Slot,
    pub(super) work: Option<Arc<BlockWork>>,
    pub(super) partials: Vec<SignedPartialProof>,
    pub(super) full_proofs: BTreeMap<u32, SignedFullProof>,
    pub(super) agg_proof: Option<SignedAggProof>,
    pub(super) outcome: Option<BlockOutcome>,
    pub(super) ledger: Option<rewards::Ledger>,
    /// Its proofs and payload data have left memory ([`Driver::prune`]).
    pub(super) pruned: bool,
}

impl BlockRecord {
    /// Drops what is large: payload data and proofs.
    pub(super) fn drop_proofs(&mut self) {
        self.work = None;
        self.partials = Vec::new();
        self.full_proofs = BTreeMap::new();
        self.agg_proof = None;
        self.pruned = true;
    }
}

impl Driver {
    /// Bounds what the driver keeps in memory: the records of the latest [`RECORD_BLOCKS`]
    /// blocks (ledgers and finalised proofs stay in the store), and the proofs and payload data
    /// only of the latest [`PROOF_BLOCKS`] settled blocks, of the unsettled ones (their rounds
    /// may still be open), and never beyond the latest [`MAX_PROOF_BLOCKS`].
    pub(super) fn prune(&mut self) {
        while self.blocks.len() > RECORD_BLOCKS {
            let Some((&slot, &root)) = self.by_slot.iter().next() else { break };
            self.by_slot.remove(&slot);
            self.blocks.remove(&root);
        }
        let mut settled = 0usize;
        for (age, root) in self.by_slot.values().rev().enumerate() {
            let Some(record) = self.blocks.get_mut(root) else { continue };
            if record.pruned {
                continue;
            }
            let keep = if record.outcome.is_some() {
                settled = settled.saturating_add(1);
                settled <= PROOF_BLOCKS
            } else {
                true
            };
            if !keep || age >= MAX_PROOF_BLOCKS {
                record.drop_proofs();
            }
        }
    }

    /// Blocks whose proofs and payload data are in memory (for tests and metrics).
    #[cfg(test)]
    pub(super) fn blocks_with_proofs(&self) -> usize {
        self.blocks.values().filter(|b| !b.pruned).count()
    }
}
