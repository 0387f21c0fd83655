//! Block storage: inserting, pruning history behind the head, and resolving block, state and
//! checkpoint identifiers (canonical or not, finalized or not).

use super::{Block, Chain};
use crate::types::{BlockHeaderData, BlockId, Checkpoint, Root, SignedBeaconBlockHeader, Slot};

impl Chain {
    pub(super) fn insert(&mut self, block: Block) {
        self.by_state.insert(block.header.state_root, block.root);
        self.blocks.insert(block.root, block);
    }

    /// The block at `slot` on the chain ending at `tip` (the latest at or before `slot`).
    pub(in crate::devnet) fn ancestor_at(&self, tip: Root, slot: Slot) -> Option<&Block> {
        if slot.get() != 0 && slot.get() < self.pruned_below {
            return None;
        }
        let mut block = self.blocks.get(&tip)?;
        loop {
            if block.slot() <= slot {
                return Some(block);
            }
            if self.canonical.get(&block.slot().get()) == Some(&block.root) {
                let (_, root) = self.canonical.range(..=slot.get()).next_back()?;
                return self.blocks.get(root);
            }
            block = self.blocks.get(&block.header.parent_root)?;
        }
    }

    /// Drops blocks more than `history_slots` behind the head (never the genesis block).
    pub(super) fn prune(&mut self) {
        let Some(horizon) = self.head().slot().get().checked_sub(self.config.history_slots) else {
            return;
        };
        if horizon == 0 {
            return;
        }
        let genesis = self.genesis_root;
        let old: Vec<Root> = self
            .blocks
            .values()
            .filter(|b| b.slot().get() < horizon && b.root != genesis)
            .map(|b| b.root)
            .collect();
        for root in old {
            if let Some(b) = self.blocks.remove(&root) {
                self.by_state.remove(&b.header.state_root);
            }
        }
        let keep = self.canonical.split_off(&horizon);
        self.canonical = keep;
        self.pruned_below = horizon;
        self.canonical.insert(0, genesis);
    }

    /// Resolves a `{block_id}`.
    pub(in crate::devnet) fn block(&self, id: BlockId) -> Option<&Block> {
        match id {
            BlockId::Head => Some(self.head()),
            BlockId::Genesis => self.blocks.get(&self.genesis_root),
            BlockId::Finalized => self.checkpoint_block(self.head().checkpoints.finalized),
            BlockId::Justified => self.checkpoint_block(self.head().checkpoints.current_justified),
            BlockId::Slot(slot) => self.canonical.get(&slot.get()).and_then(|r| self.blocks.get(r)),
            BlockId::Root(root) => self.blocks.get(&root),
            // Future variants of the identifier: not served by the devnet.
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn checkpoint_block(&self, checkpoint: Checkpoint) -> Option<&Block> {
        if checkpoint.root == Root::ZERO {
            return self.blocks.get(&self.genesis_root);
        }
        self.blocks.get(&checkpoint.root)
    }

    /// Resolves a `{state_id}` to the block whose post-state it is.
    pub(in crate::devnet) fn state(&self, id: BlockId) -> Option<&Block> {
        match id {
            BlockId::Root(state_root) => {
                self.by_state.get(&state_root).and_then(|r| self.blocks.get(r))
            }
            other => self.block(other),
        }
    }

    pub(in crate::devnet) fn is_canonical(&self, block: &Block) -> bool {
        self.canonical.get(&block.slot().get()) == Some(&block.root)
    }

    pub(in crate::devnet) fn is_finalized(&self, block: &Block) -> bool {
        let finalized = self.head().checkpoints.finalized;
        let finalized_slot = finalized.epoch.start_slot(self.config.slots_per_epoch);
        self.is_canonical(block)
            && (block.slot() <= finalized_slot && finalized.root != Root::ZERO
                || block.slot().get() == 0)
    }

    pub(in crate::devnet) fn header(&self, block: &Block) -> BlockHeaderData {
        BlockHeaderData {
            root: block.root,
            canonical: self.is_canonical(block),
            header: SignedBeaconBlockHeader {
                message: block.header.clone(),
                signature: block.signature,
            },
        }
    }
}
