//! RANDAO mixes (`get_randao_mix`, the `randao` endpoint) and the proposer schedule seeded by
//! them (`get_seed`, proposer duties).

use super::{
    Block, Chain,
    spec::{
        DOMAIN_BEACON_PROPOSER, EPOCHS_PER_HISTORICAL_VECTOR, MIN_SEED_LOOKAHEAD,
        compute_proposer_index, sha256,
    },
};
use crate::types::{Epoch, ProposerDuty, Root, Slot, ValidatorIndex};

/// Why a RANDAO query failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::devnet) enum RandaoError {
    /// The epoch is after the state's epoch or older than the mixes vector.
    OutOfRange,
    /// The history needed has been pruned.
    Pruned,
}

impl Chain {
    /// `get_randao_mix(state, epoch)` of the post-state of `tip` (for `epoch <= tip's epoch`).
    fn mix_for_epoch(&self, tip: &Block, epoch: Epoch) -> Option<Root> {
        let last_slot = Slot(
            epoch
                .get()
                .saturating_add(1)
                .saturating_mul(self.config.slots_per_epoch)
                .saturating_sub(1),
        );
        self.ancestor_at(tip.root, last_slot).map(|b| b.mix)
    }

    /// `GET .../states/{id}/randao?epoch=`: the mix of `epoch` (default: the state's epoch).
    pub(in crate::devnet) fn randao(
        &self,
        state: &Block,
        epoch: Option<Epoch>,
    ) -> Result<Root, RandaoError> {
        let state_epoch = self.epoch_of(state.slot());
        let epoch = epoch.unwrap_or(state_epoch);
        if epoch > state_epoch
            || epoch.get().saturating_add(EPOCHS_PER_HISTORICAL_VECTOR) <= state_epoch.get()
        {
            return Err(RandaoError::OutOfRange);
        }
        self.mix_for_epoch(state, epoch).ok_or(RandaoError::Pruned)
    }

    /// The proposer of `slot` on the chain ending at `tip` (`tip` must be in `slot`'s epoch or
    /// the one before).
    pub(super) fn proposer(&self, tip: &Block, slot: Slot) -> Option<ValidatorIndex> {
        let epoch = self.epoch_of(slot);
        // get_seed: the mix of epoch - MIN_SEED_LOOKAHEAD - 1 (the genesis mix before that).
        let mix = match epoch.get().checked_sub(MIN_SEED_LOOKAHEAD + 1) {
            Some(e) => self.mix_for_epoch(tip, Epoch(e))?,
            None => self.blocks.get(&self.genesis_root)?.mix,
        };
        let epoch_seed =
            sha256(&[&DOMAIN_BEACON_PROPOSER, &epoch.get().to_le_bytes(), mix.as_slice()]);
        let seed = sha256(&[&epoch_seed, &slot.get().to_le_bytes()]);
        Some(ValidatorIndex(compute_proposer_index(self.config.validator_count, &seed)))
    }

    /// `GET /eth/v1/validator/duties/proposer/{epoch}` on the canonical chain: the dependent root
    /// and the duties, or `None` beyond the next epoch.
    pub(in crate::devnet) fn proposer_duties(
        &self,
        epoch: Epoch,
    ) -> Option<(Root, Vec<ProposerDuty>)> {
        let head = self.head();
        if epoch.get() > self.epoch_of(head.slot()).get().saturating_add(1) {
            return None;
        }
        let start = epoch.start_slot(self.config.slots_per_epoch);
        let dependent_root = match start.get().checked_sub(1) {
            Some(s) => self.ancestor_at(head.root, Slot(s))?.root,
            None => self.genesis_root,
        };
        let mut duties = Vec::new();
        for offset in 0..self.config.slots_per_epoch {
            let slot = Slot(start.get().saturating_add(offset));
            if slot.get() == 0 {
                continue;
            }
            let index = self.proposer(head, slot)?;
            let pubkey = self.validators.pubkeys[usize::try_from(index.get()).ok()?];
            duties.push(ProposerDuty { pubkey, validator_index: index, slot });
        }
        Some((dependent_root, duties))
    }
}
