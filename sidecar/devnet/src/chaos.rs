//! `--chaos`: the same network with three faults (all at once, or any of them alone), none of
//! which may change a ledger.
//!
//! * Sidecar 0 receives every gossip message [`GOSSIP_DELAY`] late.
//! * Sidecar 1 starts only after [`LATE_START_AFTER`] reported blocks, with an empty store: it
//!   follows the chain from genesis and fetches the inclusion records and messages it missed
//!   from its peers (sync).
//! * Sidecar 2 is killed after [`KILL_AT`] reported blocks (every task aborted, nothing
//!   flushed: what a `kill -9` leaves), and restarted on the same data directory
//!   [`KILL_FOR`] blocks later; it replays its log and syncs what it missed.
//!
//! Every prover submits to sidecar 0 (the only one up the whole time). The run passes only if
//! every sidecar settles every reported block with the same ledger root.

use std::time::Duration;

use beacon_api::{BeaconEvent, DevnetNode};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use sidecar_node::{Node, NodeConfig, NodeHandle};
use sidecar_p2p::Multiaddr;

use crate::collector::{Observed, forward_node};

/// How late sidecar 0 receives gossip.
pub(crate) const GOSSIP_DELAY: Duration = Duration::from_secs(5);
/// Reported blocks before sidecar 1 starts.
pub(crate) const LATE_START_AFTER: u64 = 3;
/// Reported blocks before sidecar 2 is killed.
pub(crate) const KILL_AT: u64 = 4;
/// Blocks sidecar 2 stays down.
pub(crate) const KILL_FOR: u64 = 3;
/// The fewest blocks a chaos run reports: every fault happens, and the restarted sidecar
/// settles some blocks it was up for again.
pub(crate) const MIN_BLOCKS: u64 = KILL_AT + KILL_FOR + 2;

/// Which faults a `--chaos` run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChaosFaults {
    /// Sidecar 0 receives every gossip message [`GOSSIP_DELAY`] late.
    pub late_gossip: bool,
    /// Sidecar 1 starts after [`LATE_START_AFTER`] blocks with an empty store.
    pub late_start: bool,
    /// Sidecar 2 is killed after [`ChaosFaults::kill_at`] blocks and restarts [`KILL_FOR`]
    /// blocks later.
    pub restart: bool,
    /// The block after which sidecar 2 is killed (default [`KILL_AT`]; `--kill-at`): a late
    /// kill measures a restart after a long chain.
    pub kill_at: u64,
}

impl ChaosFaults {
    /// Every fault.
    pub const ALL: Self =
        Self { late_gossip: true, late_start: true, restart: true, kill_at: KILL_AT };

    /// No fault.
    pub const NONE: Self =
        Self { late_gossip: false, late_start: false, restart: false, kill_at: KILL_AT };

    /// The fewest blocks a run with these faults reports: every fault happens, and the
    /// restarted sidecar settles blocks after its restart.
    pub fn min_blocks(self) -> u64 {
        MIN_BLOCKS.max(self.kill_at.saturating_add(KILL_FOR + 2))
    }

    /// Parses `all` or a comma-separated list of `late-gossip`, `late-start` and `restart`.
    ///
    /// # Errors
    /// The unknown name, or an empty list.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut faults = Self::NONE;
        for name in text.split(',').map(str::trim) {
            match name {
                "all" => faults = Self::ALL,
                "late-gossip" => faults.late_gossip = true,
                "late-start" => faults.late_start = true,
                "restart" => faults.restart = true,
                "" => return Err("an empty fault name".into()),
                other => {
                    return Err(format!(
                        "unknown fault `{other}` (expected all, late-gossip, late-start or restart)"
                    ));
                }
            }
        }
        Ok(faults)
    }

    /// What the faults do, for the run's header.
    pub(crate) fn describe(self) -> String {
        let mut parts = Vec::new();
        if self.late_gossip {
            parts.push(format!("sidecar 0 gets gossip {} s late", GOSSIP_DELAY.as_secs()));
        }
        if self.late_start {
            parts.push(format!("sidecar 1 starts after block {LATE_START_AFTER}"));
        }
        if self.restart {
            parts.push(format!(
                "sidecar 2 is killed after block {} and restarts {KILL_FOR} blocks later",
                self.kill_at
            ));
        }
        parts.join("; ")
    }
}

/// The sidecars the faults act on, and how to bring them (back) up.
pub(crate) struct Chaos {
    /// Sidecar 1's settings (not started yet), with `late-start`.
    pub(crate) late: Option<NodeConfig>,
    /// Sidecar 2, running, and its settings for the restart, with `restart`.
    pub(crate) killed: Option<(NodeHandle, NodeConfig)>,
    /// Where the other sidecars listen (to dial after a (re)start).
    pub(crate) peers: Vec<Multiaddr>,
    /// The block after which sidecar 2 is killed.
    pub(crate) kill_at: u64,
}

/// What the chaos task hands back: the sidecars it runs at the end, by index, and their
/// forwarders.
pub(crate) struct ChaosNodes {
    pub(crate) nodes: Vec<(usize, NodeHandle)>,
    pub(crate) forwarders: Vec<JoinHandle<()>>,
}

impl Chaos {
    /// Runs the faults on the devnet's heads until `stop`.
    pub(crate) fn spawn(
        self,
        devnet: &DevnetNode,
        tx: mpsc::UnboundedSender<Observed>,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<ChaosNodes> {
        let mut heads = devnet.subscribe();
        tokio::spawn(async move {
            let Self { mut late, killed, peers, kill_at } = self;
            let (mut killed_node, killed_config) = match killed {
                Some((node, config)) => (Some(node), Some(config)),
                None => (None, None),
            };
            let mut forwarders: Vec<JoinHandle<()>> = killed_node
                .iter()
                .map(|node| tokio::spawn(forward_node(2, node, tx.clone())))
                .collect();
            let mut late_node = None;
            let mut seen = 0u64;
            loop {
                let event = tokio::select! {
                    e = heads.recv() => e,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match event {
                    Ok(BeaconEvent::Head(_)) => seen += 1,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
                if seen == LATE_START_AFTER
                    && let Some(config) = late.take()
                {
                    info!("chaos: sidecar 1 starts late");
                    if let Some(node) = start(config, &peers, 1).await {
                        forwarders.push(tokio::spawn(forward_node(1, &node, tx.clone())));
                        late_node = Some(node);
                    }
                }
                if seen == kill_at
                    && let Some(node) = killed_node.take()
                {
                    info!("chaos: sidecar 2 killed");
                    if let Some(forwarder) = forwarders.first() {
                        forwarder.abort();
                    }
                    node.abort().await;
                }
                if seen == kill_at + KILL_FOR
                    && killed_node.is_none()
                    && let Some(config) = killed_config.clone()
                {
                    info!("chaos: sidecar 2 restarts");
                    let mut dial = peers.clone();
                    if let Some(addr) = late_node.as_ref().and_then(|n| n.p2p()) {
                        dial.push(addr.listen_address().clone());
                    }
                    if let Some(node) = start(config, &dial, 2).await {
                        forwarders.push(tokio::spawn(forward_node(2, &node, tx.clone())));
                        killed_node = Some(node);
                    }
                }
            }
            let nodes = [(1, late_node), (2, killed_node)]
                .into_iter()
                .filter_map(|(i, n)| n.map(|n| (i, n)))
                .collect();
            ChaosNodes { nodes, forwarders }
        })
    }
}

/// Starts a sidecar and dials `peers`.
async fn start(config: NodeConfig, peers: &[Multiaddr], index: usize) -> Option<NodeHandle> {
    let started = std::time::Instant::now();
    let node = match Node::spawn(config).await {
        Ok(node) => {
            // From the start to serving: store opened, checkpoint restored, log replayed.
            let ms = started.elapsed().as_millis();
            info!(sidecar = index, start_ms = ms, "chaos: sidecar {index} started in {ms} ms");
            node
        }
        Err(e) => {
            warn!(sidecar = index, error = %e, "chaos: the sidecar does not start");
            return None;
        }
    };
    if let Some(network) = node.p2p() {
        for peer in peers {
            if let Err(e) = network.dial(peer.clone()).await {
                warn!(sidecar = index, error = %e, "chaos: cannot dial a peer");
            }
        }
    }
    Some(node)
}
