//! Gossip messages for a block this node has not seen yet (its beacon node is behind the
//! sender's): held, with their validation result, until their block comes or will not.

use phase_engine::{ProtocolMessage, Root, Slot, UnixMillis};
use tracing::debug;

use super::{Driver, GossipReply, Waiter};
use crate::{error::NodeResult, gossip::GossipResult};

/// Gossip messages held until their block arrives, at most.
const EARLY_CAPACITY: usize = 512;
/// Blocks a held message waits for its own before it is dropped.
const EARLY_BLOCKS: u32 = 2;

/// A gossip message for a block this node has not seen yet.
pub(super) struct Early {
    message: ProtocolMessage,
    arrived: UnixMillis,
    reply: GossipReply,
    /// Blocks fed since it was held.
    waited: u32,
}

impl Driver {
    /// Whether a gossip message names a block after the last one this node fed (its beacon
    /// node is behind the sender's).
    pub(super) fn is_early(&self, message: &ProtocolMessage) -> bool {
        let Some((slot, root)) = message_block(message) else { return false };
        !self.blocks.contains_key(&root) && self.last_block.is_none_or(|(last, _)| slot > last)
    }

    /// Holds an early gossip message (its validation result waits with it).
    pub(super) fn hold_early(
        &mut self,
        message: ProtocolMessage,
        arrived: UnixMillis,
        reply: GossipReply,
    ) {
        if self.early.len() >= EARLY_CAPACITY {
            let _ = reply.send(GossipResult::Expired);
            return;
        }
        debug!(kind = ?message.kind(), "gossip for a block not seen yet: held");
        self.early.push_back(Early { message, arrived, reply, waited: 0 });
    }

    /// After a block: takes the held messages whose block is now known, drops those whose block
    /// will not come (its slot is past) or did not come within [`EARLY_BLOCKS`] blocks.
    pub(super) async fn retry_early(&mut self) -> NodeResult<()> {
        for mut held in std::mem::take(&mut self.early) {
            let Some((slot, root)) = message_block(&held.message) else { continue };
            if self.blocks.contains_key(&root) {
                let waiter = Some(Waiter::Gossip(held.reply));
                self.take_message(held.message, held.arrived, waiter, true).await?;
                continue;
            }
            held.waited = held.waited.saturating_add(1);
            let passed = self.last_block.is_some_and(|(last, _)| slot <= last);
            if passed || held.waited > EARLY_BLOCKS {
                let _ = held.reply.send(GossipResult::Expired);
            } else {
                self.early.push_back(held);
            }
        }
        Ok(())
    }
}

/// The block a message names: (slot, root).
pub(super) fn message_block(message: &ProtocolMessage) -> Option<(Slot, Root)> {
    match message {
        ProtocolMessage::Commitment(m) => Some((m.message.round.slot, m.message.round.block_root)),
        ProtocolMessage::Decline(m) => Some((m.message.round.slot, m.message.round.block_root)),
        ProtocolMessage::PartialProof(m) => {
            Some((m.message.round.slot, m.message.round.block_root))
        }
        ProtocolMessage::FullProof(m) => Some((m.message.round.slot, m.message.round.block_root)),
        ProtocolMessage::AggProof(m) => Some((m.message.slot, m.message.block_root)),
        _ => None,
    }
}
