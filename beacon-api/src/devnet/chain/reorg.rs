//! Reorgs: replacing the last blocks after the justified checkpoint by a new fork at the same
//! slots, and the events announcing it.

use super::{Block, Chain};
use crate::{
    error::{Error, Result},
    types::{BeaconEvent, BlockEvent, ChainReorgEvent, Slot},
};

impl Chain {
    /// How many blocks a reorg may replace: those after the head's justified checkpoint.
    pub(in crate::devnet) fn reorg_capacity(&self) -> u64 {
        let head = self.head();
        let justified =
            head.checkpoints.current_justified.epoch.start_slot(self.config.slots_per_epoch);
        head.slot().get().saturating_sub(justified.get())
    }

    /// Replaces the last `depth` canonical blocks by blocks of a new fork at the same slots.
    pub(in crate::devnet) fn reorg(&mut self, depth: u64) -> Result<Vec<BeaconEvent>> {
        let available = self.reorg_capacity();
        if depth == 0 || depth > available {
            return Err(Error::ReorgTooDeep { depth, available });
        }
        let old_head = self.head().clone();
        let fork_slot = Slot(old_head.slot().get() - depth);
        let mut parent = self
            .ancestor_at(old_head.root, fork_slot)
            .cloned()
            .ok_or(Error::ReorgTooDeep { depth, available: 0 })?;
        self.forks += 1;
        let fork = self.forks;
        let mut events = Vec::new();
        let mut new_blocks = Vec::new();
        for s in fork_slot.get() + 1..=old_head.slot().get() {
            let block = self
                .build(&parent, Slot(s), fork)
                .ok_or(Error::ReorgTooDeep { depth, available: 0 })?;
            events.push(BeaconEvent::Block(BlockEvent {
                slot: Slot(s),
                block: block.root,
                execution_optimistic: false,
            }));
            self.insert(block.clone());
            new_blocks.push(block.clone());
            parent = block;
        }
        for b in &new_blocks {
            self.canonical.insert(b.slot().get(), b.root);
        }
        let new_head = parent;
        self.head = new_head.root;
        events.push(BeaconEvent::ChainReorg(ChainReorgEvent {
            slot: new_head.slot(),
            depth,
            old_head_block: old_head.root,
            new_head_block: new_head.root,
            old_head_state: old_head.header.state_root,
            new_head_state: new_head.header.state_root,
            epoch: self.epoch_of(new_head.slot()),
            execution_optimistic: false,
        }));
        let parent_slot =
            self.blocks.get(&new_head.header.parent_root).map_or(Slot(0), Block::slot);
        events.push(self.head_event(&new_head, parent_slot));
        Ok(events)
    }
}
