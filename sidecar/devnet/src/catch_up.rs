//! `--catch-up`: once the reported blocks are settled, one more sidecar starts with an empty
//! store, follows the chain from genesis, fetches every inclusion record and message it lacks
//! from its peers (sync), verifies them as if gossiped (signatures, STARKs) and settles the
//! same blocks. The run measures how fast it catches up, against the live rate of one block
//! per slot, and checks that its ledgers equal the others'.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use phase_engine::Root;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

use sidecar_node::{Node, NodeConfig};
use sidecar_p2p::Multiaddr;

use crate::error::{DevnetError, DevnetResult};

/// What the catching-up sidecar did.
#[derive(Clone, Debug, Serialize)]
pub struct CatchUpReport {
    /// Blocks compared: the reported ones, which every other sidecar settled identically (it
    /// settles the start-up blocks before them too, uncompared; the rate counts only these).
    pub blocks: usize,
    /// Of these, the blocks it settled with the others' settlement root.
    pub identical: usize,
    /// Of these, the blocks it settled with another root.
    pub differing: usize,
    /// From its start to its last of these blocks settled (or to the time-out).
    pub seconds: f64,
    /// `blocks / seconds` (settled ones only).
    pub blocks_per_second: f64,
    /// The live rate it is measured against: one block per this many seconds.
    pub seconds_per_slot: u64,
}

impl CatchUpReport {
    /// How many times faster than the live chain it caught up.
    pub fn speedup(&self) -> f64 {
        self.blocks_per_second * self.seconds_per_slot as f64
    }

    /// Why the catch-up failed, if it did: a block missing or settled differently.
    pub fn problem(&self) -> Option<String> {
        if self.differing > 0 {
            return Some(format!(
                "the fresh sidecar settled {} block(s) differently",
                self.differing
            ));
        }
        let missing = self.blocks.saturating_sub(self.identical);
        (missing > 0).then(|| format!("the fresh sidecar did not settle {missing} block(s)"))
    }
}

/// Starts the fresh sidecar from `config`, dials `peers`, and waits until it has settled every
/// block of `expected` (block root → the others' settlement root) or `timeout` passed. The
/// sidecar is shut down before it returns.
///
/// # Errors
/// [`DevnetError::Node`] if it does not start.
pub(crate) async fn catch_up(
    config: NodeConfig,
    index: usize,
    peers: &[Multiaddr],
    expected: &BTreeMap<Root, Root>,
    seconds_per_slot: u64,
    timeout: Duration,
) -> DevnetResult<CatchUpReport> {
    let started = Instant::now();
    let node =
        Node::spawn(config).await.map_err(|e| DevnetError::Node { index, source: Box::new(e) })?;
    let mut settled = node.subscribe_settled();
    if let Some(network) = node.p2p() {
        for peer in peers {
            if let Err(e) = network.dial(peer.clone()).await {
                warn!(sidecar = index, error = %e, "catch-up: cannot dial a peer");
            }
        }
    }
    info!(sidecar = index, blocks = expected.len(), "catch-up: a fresh sidecar starts");
    let mut got: BTreeMap<Root, Root> = BTreeMap::new();
    let mut last = started;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    while got.len() < expected.len() {
        let ledger = tokio::select! {
            l = settled.recv() => l,
            _ = tokio::time::sleep_until(deadline) => break,
            _ = progress.tick() => {
                info!(settled = got.len(), of = expected.len(), "catch-up: progress");
                continue;
            }
        };
        match ledger {
            Ok(ledger) => {
                if expected.contains_key(&ledger.block_root) {
                    got.entry(ledger.block_root).or_insert_with(|| ledger.settlement_root());
                    last = Instant::now();
                }
            }
            Err(RecvError::Lagged(n)) => warn!(missed = n, "catch-up: settled ledgers lagged"),
            Err(RecvError::Closed) => break,
        }
    }
    // Ledgers the subscription may have missed (it starts after the node): read them back.
    if got.len() < expected.len()
        && let Ok(ledgers) = node.ledgers().await
    {
        for ledger in ledgers {
            if expected.contains_key(&ledger.block_root) {
                got.entry(ledger.block_root).or_insert_with(|| ledger.settlement_root());
            }
        }
    }
    if got.len() < expected.len() {
        last = Instant::now();
    }
    if let Err(e) = node.shutdown().await {
        warn!(sidecar = index, error = %e, "catch-up: shutdown");
    }
    let identical = expected.iter().filter(|&(block, root)| got.get(block) == Some(root)).count();
    let differing = got
        .iter()
        .filter(|&(block, root)| {
            let other = expected.get(block);
            if other != Some(root) {
                warn!(%block, fresh = %root, others = ?other, "catch-up: a block settled differently");
            }
            other != Some(root)
        })
        .count();
    let seconds = last.duration_since(started).as_secs_f64().max(1e-3);
    Ok(CatchUpReport {
        blocks: expected.len(),
        identical,
        differing,
        seconds,
        blocks_per_second: got.len() as f64 / seconds,
        seconds_per_slot,
    })
}
