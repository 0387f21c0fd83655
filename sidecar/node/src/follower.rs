//! The beacon follower: `head` and `chain_reorg` events → block data → driver inputs.
//!
//! For each new head it fetches the block (v2: proposer, gas used, transactions, graffiti), the
//! RANDAO mix
//! of its post-state (`states/{state_root}/randao`; when a node does not serve it, the mix is
//! derived from the block as the spec's `process_randao` does: the payload's `prev_randao` xor
//! `sha256(randao_reveal)`), and feeds the engine in slot order. A head whose parent is not the
//! last block fed (missed events, a reconnect, a restart after downtime) is back-filled from its
//! ancestors, up to [`MAX_BACKFILL`] blocks: their headers are walked back to the fork point,
//! then the blocks are fetched and fed oldest first.

use std::collections::VecDeque;

use beacon_api::{BeaconClient, BlockId, EventStreamItem, EventTopic};
use futures::StreamExt;
use phase_engine::{BlockInfo, Root, Slot, UnixMillis, ValidatorIndex};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::{driver::Input, error::NodeResult, log::BlockData};

/// Blocks remembered to find the fork point of a reorg (deeper reorgs orphan everything fed after
/// the oldest remembered block).
pub const MAX_GAP: usize = 64;

/// Most ancestors fed to fill a gap (a restart after downtime, or a fresh start from genesis):
/// 16,384 blocks, about 55 hours of 12-second slots.
pub const MAX_BACKFILL: usize = 16_384;

/// Chain timing for `slot_start`.
#[derive(Clone, Copy, Debug)]
pub struct ChainTiming {
    /// Genesis time, unix seconds.
    pub genesis_time: u64,
    /// Seconds per slot.
    pub seconds_per_slot: u64,
}

impl ChainTiming {
    fn slot_start(&self, slot: u64) -> UnixMillis {
        UnixMillis(
            self.genesis_time
                .saturating_add(slot.saturating_mul(self.seconds_per_slot))
                .saturating_mul(1000),
        )
    }
}

/// Fetches one block and builds the engine's view of it.
pub async fn fetch_block(
    client: &BeaconClient,
    timing: ChainTiming,
    root: Root,
) -> NodeResult<(BlockInfo, BlockData, Root)> {
    let block = client.block(BlockId::Root(root)).await?.data.message;
    let payload = block.body.execution_payload.clone();
    let graffiti = block.body.graffiti;
    let randao_mix = match client.randao(BlockId::Root(block.state_root), None).await {
        Ok(r) => r.data.randao,
        Err(e) => {
            debug!(error = %e, "no randao endpoint: deriving the mix from the block");
            let prev = payload.as_ref().map_or(Root::ZERO, |p| p.prev_randao);
            let reveal: [u8; 32] = Sha256::digest(block.body.randao_reveal.as_slice()).into();
            let mut mix = [0u8; 32];
            for (i, m) in mix.iter_mut().enumerate() {
                *m = prev.0[i] ^ reveal[i];
            }
            Root::from(mix)
        }
    };
    let slot = block.slot.get();
    let info = BlockInfo {
        slot: Slot(slot),
        root,
        parent_root: block.parent_root,
        proposer: ValidatorIndex(block.proposer_index.get()),
        randao_mix,
        gas_used: payload.as_ref().map_or(0, |p| p.gas_used),
        slot_start: timing.slot_start(slot),
    };
    let data = BlockData {
        parent_hash: payload.as_ref().map_or(Root::ZERO, |p| Root::from(p.parent_hash.0)),
        transactions: payload
            .map(|p| p.transactions.iter().map(|t| t.to_vec()).collect())
            .unwrap_or_default(),
    };
    Ok((info, data, graffiti))
}

/// The chain fed so far (the latest [`MAX_GAP`] blocks).
type Known = VecDeque<(Slot, Root)>;

/// Follows the beacon node until `shutdown`. With no block fed yet (`last` is `None`), the
/// first head is fed with its ancestors back to genesis when `from_genesis` (canonical
/// settlement needs the whole chain; at most [`MAX_BACKFILL`] blocks), else alone.
pub(crate) async fn follow(
    client: BeaconClient,
    timing: ChainTiming,
    last: Option<(Slot, Root)>,
    from_genesis: bool,
    tx: mpsc::Sender<Input>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut known: Known = last.into_iter().collect();
    let mut from_genesis = from_genesis && known.is_empty();
    // The stream starts with the head read once the subscription stands (then after every
    // reconnect): a head produced while subscribing is either in that read or streamed.
    let mut events = client.events_from_head(&[EventTopic::Head, EventTopic::ChainReorg]);
    loop {
        let item = tokio::select! {
            item = events.next() => item,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Some(item) = item else { return };
        match item {
            Ok(EventStreamItem::Event(beacon_api::BeaconEvent::Head(head))) => {
                feed(&client, timing, &mut known, head.block, from_genesis, &tx).await;
            }
            Ok(EventStreamItem::Event(beacon_api::BeaconEvent::ChainReorg(reorg))) => {
                warn!(slot = %reorg.slot, depth = reorg.depth, old = %reorg.old_head_block, new = %reorg.new_head_block, "chain reorg");
                feed(&client, timing, &mut known, reorg.new_head_block, from_genesis, &tx).await;
            }
            Ok(EventStreamItem::Reconnected { url, head }) => {
                info!(%url, head = %head.data.root, "beacon event stream connected");
                feed(&client, timing, &mut known, head.data.root, from_genesis, &tx).await;
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "beacon event stream error"),
        }
        from_genesis = from_genesis && known.is_empty();
    }
}

/// Makes `head` the end of the fed chain: walks back from it by headers to a block already fed
/// (the fork point; with nothing fed yet, to genesis when `from_genesis`, else nowhere; at most
/// [`MAX_BACKFILL`] blocks), orphans what was fed after that point, and then fetches and feeds
/// the new blocks oldest first, one at a time (a long gap is never held in memory).
async fn feed(
    client: &BeaconClient,
    timing: ChainTiming,
    known: &mut Known,
    head: Root,
    from_genesis: bool,
    tx: &mpsc::Sender<Input>,
) {
    if known.back().is_some_and(|(_, r)| *r == head) {
        return;
    }
    // The new blocks, newest first.
    let mut path: Vec<Root> = Vec::new();
    let mut fork: Option<(Slot, Root)> = None;
    let mut next = head;
    loop {
        if let Some(&(slot, root)) = known.iter().find(|(_, r)| *r == next) {
            fork = Some((slot, root));
            break;
        }
        let header = match client.header(BlockId::Root(next)).await {
            Ok(h) => h.data.header.message,
            Err(e) => {
                warn!(block = %next, error = %e, "cannot fetch block header");
                return;
            }
        };
        let (slot, parent) = (Slot(header.slot.get()), header.parent_root);
        path.push(next);
        let below_window = known.front().is_none_or(|(s, _)| slot <= *s);
        let at_start = known.is_empty() && (!from_genesis || slot.0 == 0 || parent == Root::ZERO);
        if at_start || path.len() >= MAX_BACKFILL || (below_window && !known.is_empty()) {
            // No history (start at the head), or deeper than what we remember.
            if !known.is_empty() {
                fork = Some((Slot(slot.0.saturating_sub(1)), parent));
            }
            if path.len() >= MAX_BACKFILL {
                warn!(
                    blocks = path.len(),
                    "gap longer than the back-fill limit: older blocks are not fed"
                );
            }
            break;
        }
        next = parent;
    }
    if let Some(fork) = fork {
        let orphaned: Vec<Root> = known
            .iter()
            .filter(|(s, r)| *s > fork.0 || (*s == fork.0 && *r != fork.1))
            .map(|(_, r)| *r)
            .collect();
        if !orphaned.is_empty() {
            warn!(fork_slot = %fork.0, orphaned = orphaned.len(), "head does not extend the fed chain");
            known.retain(|(_, r)| !orphaned.contains(r));
            if tx.send(Input::Reorg { orphaned, fork }).await.is_err() {
                return;
            }
        }
    }
    let total = path.len();
    if total > 1 {
        info!(blocks = total, "back-filling the chain");
    }
    for (fed, root) in path.into_iter().rev().enumerate() {
        let (info, data, graffiti) = match fetch_block(client, timing, root).await {
            Ok(b) => b,
            Err(e) => {
                // The next head walks back to the last block fed and retries from there.
                warn!(block = %root, error = %e, "cannot fetch block");
                return;
            }
        };
        known.push_back((info.slot, info.root));
        while known.len() > MAX_GAP {
            known.pop_front();
        }
        debug!(slot = %info.slot, root = %info.root, "new block");
        if total > 1 && (fed + 1) % 64 == 0 {
            info!(fed = fed + 1, of = total, slot = %info.slot, "back-filling the chain");
        }
        if tx.send(Input::Block { info, data, graffiti }).await.is_err() {
            return;
        }
    }
}
