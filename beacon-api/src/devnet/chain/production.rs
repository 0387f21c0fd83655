//! Block production: the child block of each slot (RANDAO reveal, gas used, execution hash,
//! finality checkpoints, header and signature) and the events announcing it.

use super::{
    Block, Chain,
    spec::{
        DOMAIN_BEACON_PROPOSER, DOMAIN_RANDAO, compute_domain, header_root, sha256, signing_root,
        u64_leaf,
    },
};
use crate::types::{
    BeaconBlockHeader, BeaconEvent, BlockEvent, Checkpoint, Epoch, FinalityCheckpoints,
    FinalizedCheckpointEvent, HeadEvent, Root, Slot,
};

impl Chain {
    fn checkpoint(&self, tip: Root, epoch: Epoch) -> Option<Checkpoint> {
        let block = self.ancestor_at(tip, epoch.start_slot(self.config.slots_per_epoch))?;
        Some(Checkpoint { epoch, root: block.root })
    }

    fn pseudo_random(&self, parts: &[&[u8]]) -> u64 {
        let digest = sha256(&[
            &[b"devnet".as_slice(), &self.config.seed.to_le_bytes()].concat(),
            &parts.concat(),
        ]);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(bytes)
    }

    /// Builds the child of `parent` at `slot` on fork `fork`.
    pub(super) fn build(&self, parent: &Block, slot: Slot, fork: u64) -> Option<Block> {
        let epoch = self.epoch_of(slot);
        let proposer = self.proposer(parent, slot)?;
        let randao_domain =
            compute_domain(DOMAIN_RANDAO, self.config.fork_version, self.genesis_validators_root);
        let randao_reveal =
            self.validators.sign(proposer, &signing_root(u64_leaf(epoch.get()), randao_domain));
        // process_randao: mix = xor(get_randao_mix(state, epoch), hash(reveal)); the parent's
        // mix carries over an epoch boundary.
        let reveal_hash = sha256(&[randao_reveal.as_slice()]);
        let mut mix = parent.mix.0;
        for (m, r) in mix.iter_mut().zip(reveal_hash) {
            *m ^= r;
        }
        let mix = Root::from(mix);

        let (min, max) = (self.config.min_gas_used, self.config.max_gas_used);
        let span = max - min;
        let r = self.pseudo_random(&[b"gas", &slot.get().to_le_bytes(), &fork.to_le_bytes()]);
        let gas_used = min + if span == u64::MAX { r } else { r % (span + 1) };
        let block_number = parent.block_number + 1;
        let timestamp = self
            .genesis_time
            .saturating_add(slot.get().saturating_mul(self.config.seconds_per_slot));
        let block_hash = Root::from(sha256(&[
            b"devnet execution block",
            parent.block_hash.as_slice(),
            &block_number.to_le_bytes(),
            &gas_used.to_le_bytes(),
            &fork.to_le_bytes(),
        ]));
        let graffiti = self.block_graffiti(proposer.get(), fork);

        let checkpoints = if self.epoch_of(parent.slot()) < epoch {
            // Epoch boundary: justify the previous epoch, finalize the one before.
            let justified = self.checkpoint(parent.root, Epoch(epoch.get() - 1))?;
            let finalized = match epoch.get().checked_sub(2) {
                Some(e) => self.checkpoint(parent.root, Epoch(e))?,
                None => parent.checkpoints.finalized,
            };
            FinalityCheckpoints {
                previous_justified: parent.checkpoints.current_justified,
                current_justified: justified,
                finalized,
            }
        } else {
            parent.checkpoints
        };

        let state_root = Root::from(sha256(&[
            b"devnet state",
            &slot.get().to_le_bytes(),
            parent.root.as_slice(),
            mix.as_slice(),
            block_hash.as_slice(),
        ]));
        let body_root = Root::from(sha256(&[
            b"devnet body",
            randao_reveal.as_slice(),
            graffiti.as_slice(),
            block_hash.as_slice(),
        ]));
        let header = BeaconBlockHeader {
            slot,
            proposer_index: proposer,
            parent_root: parent.root,
            state_root,
            body_root,
        };
        let root = header_root(&header);
        let proposer_domain = compute_domain(
            DOMAIN_BEACON_PROPOSER,
            self.config.fork_version,
            self.genesis_validators_root,
        );
        let signature = self.validators.sign(proposer, &signing_root(root.0, proposer_domain));
        Some(Block {
            root,
            header,
            signature,
            randao_reveal,
            graffiti,
            mix,
            prev_randao: parent.mix,
            checkpoints,
            gas_used,
            block_number,
            block_hash,
            parent_hash: parent.block_hash,
            timestamp,
        })
    }

    pub(super) fn head_event(&self, block: &Block, parent_slot: Slot) -> BeaconEvent {
        let epoch = self.epoch_of(block.slot());
        let spe = self.config.slots_per_epoch;
        let dependent = |e: u64| {
            e.checked_mul(spe)
                .and_then(|s| s.checked_sub(1))
                .and_then(|s| self.ancestor_at(block.root, Slot(s)))
                .map_or(self.genesis_root, |b| b.root)
        };
        BeaconEvent::Head(HeadEvent {
            slot: block.slot(),
            block: block.root,
            state: block.header.state_root,
            epoch_transition: self.epoch_of(parent_slot) < epoch,
            previous_duty_dependent_root: Some(dependent(epoch.get().saturating_sub(1))),
            current_duty_dependent_root: Some(dependent(epoch.get())),
            execution_optimistic: false,
        })
    }

    fn finality_event(&self, before: &Checkpoint, block: &Block) -> Option<BeaconEvent> {
        let finalized = block.checkpoints.finalized;
        if finalized == *before || finalized.root == Root::ZERO {
            return None;
        }
        let state = self.blocks.get(&finalized.root)?.header.state_root;
        Some(BeaconEvent::FinalizedCheckpoint(FinalizedCheckpointEvent {
            block: finalized.root,
            state,
            epoch: finalized.epoch,
            execution_optimistic: false,
        }))
    }

    /// Produces one block per slot up to `slot`; returns the events, in order.
    pub(in crate::devnet) fn advance_to(&mut self, slot: Slot) -> Vec<BeaconEvent> {
        let mut events = Vec::new();
        while self.head().slot() < slot {
            let parent = self.head().clone();
            let next = Slot(parent.slot().get() + 1);
            let Some(block) = self.build(&parent, next, 0) else { break };
            events.push(BeaconEvent::Block(BlockEvent {
                slot: next,
                block: block.root,
                execution_optimistic: false,
            }));
            events.push(self.head_event(&block, parent.slot()));
            if let Some(e) = self.finality_event(&parent.checkpoints.finalized, &block) {
                events.push(e);
            }
            self.canonical.insert(next.get(), block.root);
            self.head = block.root;
            self.insert(block);
        }
        self.prune();
        events
    }
}
