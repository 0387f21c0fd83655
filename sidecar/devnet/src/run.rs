//! [`run`]: the whole network started, watched until enough blocks are reported, and shut down.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use beacon_api::{BeaconClient, DevnetNode, ProvingClient};
use phase_engine::{ProverRecord, Root, bls};
use rewards::{Account, Balances};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use sidecar_node::{
    GOSSIP_TOPICS, InclusionConfig, Node, NodeConfig, NodeHandle, ValidatorClientConfig,
};
use sidecar_p2p::{NetworkConfig, NetworkHandle, NodeKey};
use sidecar_prover::{ProverError, ProverWorker, WorkerConfig};

use crate::catch_up::{self, CatchUpReport};
use crate::chaos::{self, ChaosFaults};
use crate::collector::{collect, forward_heads, forward_node};
use crate::error::{DevnetError, DevnetResult, out_err};
use crate::options::{DevnetOptions, KEYMANAGER_TOKEN, PROVER_STAKE, prover_key};
use crate::report::{BlockReport, DevnetSummary, LatencyStats};
use crate::table::{Table, write_summary};

/// The sidecars' data directory: the given one, or a temporary one removed on drop.
pub(crate) enum DataDir {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl DataDir {
    fn path(&self) -> &Path {
        match self {
            Self::Given(p) => p,
            Self::Temp(t) => t.path(),
        }
    }
}

/// The validators each sidecar includes for: the first `proposers_with_sidecar` share of the
/// devnet's validators (as its keymanager lists them), dealt to the sidecars in turn. Empty
/// without canonical rounds.
async fn validator_shares(
    opts: &DevnetOptions,
    beacon_url: &str,
) -> DevnetResult<Vec<Vec<String>>> {
    if !opts.inclusion {
        return Ok(Vec::new());
    }
    let keymanager = beacon_api::KeymanagerClient::new(beacon_url, KEYMANAGER_TOKEN)
        .map_err(|source| DevnetError::Beacon { source })?;
    let all = keymanager.validators().await.map_err(|source| DevnetError::Beacon { source })?;
    // The share rounds to whole validators; a share above 0 serves at least one.
    let served = (all.len() as f64 * opts.proposers_with_sidecar).round() as usize;
    let served = if opts.proposers_with_sidecar > 0.0 { served.max(1) } else { 0 };
    let mut shares = vec![Vec::new(); opts.sidecars.max(1)];
    for (i, key) in all.into_iter().take(served).enumerate() {
        if let Some(share) = shares.get_mut(i % opts.sidecars.max(1)) {
            share.push(key);
        }
    }
    Ok(shares)
}

/// Runs the devnet until `opts.blocks` blocks are reported or `shutdown` resolves, writing the
/// live table and then the summary to `out`. Every node is shut down cleanly (store closed)
/// before it returns.
///
/// # Errors
/// Start-up failures (beacon node, sidecars, provers, data directory) and a failing writer. A
/// block that fails is not an error here: see [`DevnetSummary::check`].
pub async fn run(
    opts: &DevnetOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> DevnetResult<DevnetSummary> {
    let data_dir = match &opts.data_dir {
        Some(p) => DataDir::Given(p.clone()),
        None => {
            DataDir::Temp(tempfile::Builder::new().prefix("sidecar-devnet-").tempdir().map_err(
                |source| DevnetError::Io { action: "creating", path: std::env::temp_dir(), source },
            )?)
        }
    };
    let devnet =
        DevnetNode::spawn(opts.chain.clone()).map_err(|source| DevnetError::Beacon { source })?;
    let beacon =
        devnet.serve(opts.beacon_address).await.map_err(|source| DevnetError::Beacon { source })?;
    let beacon_url = beacon.url();
    let genesis = devnet.genesis();
    let shares = match validator_shares(opts, &beacon_url).await {
        Ok(shares) => shares,
        Err(e) => {
            let _ = beacon.shutdown().await;
            return Err(e);
        }
    };
    let ctx = genesis.signing_context();
    let keys: Vec<bls::SecretKey> = (0..opts.provers).map(|i| prover_key(opts.seed, i)).collect();
    let worker_config = WorkerConfig {
        stake: PROVER_STAKE,
        threads: opts.prover_threads,
        poll_interval: Duration::from_millis(100),
        ..WorkerConfig::default()
    };
    let genesis_provers: Vec<ProverRecord> = keys
        .iter()
        .map(|k| ProverRecord {
            pubkey: k.public_key(),
            stake: PROVER_STAKE,
            capabilities: worker_config.capabilities,
            active: true,
            reputation: 0,
        })
        .collect();

    writeln!(
        out,
        "devnet beacon node {beacon_url} · {} sidecar(s) · {} prover(s) × {} thread(s) · {} s slots · \
         {:.1}–{:.1} Mgas blocks",
        opts.sidecars,
        opts.provers,
        opts.prover_threads,
        opts.chain.seconds_per_slot,
        opts.chain.min_gas_used as f64 / 1e6,
        opts.chain.max_gas_used as f64 / 1e6,
    )
    .map_err(out_err)?;

    let mut nodes: Vec<NodeHandle> = Vec::with_capacity(opts.sidecars);
    // The sidecar index of each entry of `nodes` (a late starter is not in it yet).
    let mut indices: Vec<usize> = Vec::with_capacity(opts.sidecars);
    let faults = opts.chaos.unwrap_or(ChaosFaults::NONE);
    let (mut late_config, mut killed_config) = (None, None);
    // Sidecar `index`'s settings; `share`: the validators it includes for.
    let sidecar_config = |index: usize, share: Vec<String>, gossip: bool| {
        let dir = data_dir.path().join(format!("sidecar-{index}"));
        let mut config = NodeConfig::new(vec![beacon_url.clone()], dir);
        config.rewards = opts.rewards;
        config.genesis_provers.clone_from(&genesis_provers);
        if opts.inclusion {
            config.inclusion = Some(InclusionConfig {
                validator_client: (!share.is_empty()).then(|| ValidatorClientConfig {
                    keymanager_url: beacon_url.clone(),
                    token: KEYMANAGER_TOKEN.to_owned(),
                    validators: share,
                }),
            });
        }
        config.min_stake = 1;
        if gossip {
            let key =
                NodeKey::generate().map_err(|e| DevnetError::Gossip { reason: e.to_string() })?;
            config.p2p = Some(NetworkConfig::loopback(key));
        }
        Ok::<_, DevnetError>(config)
    };
    // With --catch-up the fresh sidecar gossips too.
    let gossip = opts.sidecars > 1 || opts.catch_up;
    for index in 0..opts.sidecars {
        let share = shares.get(index).cloned().unwrap_or_default();
        let mut config = match sidecar_config(index, share, gossip) {
            Ok(config) => config,
            Err(e) => {
                let _ = shutdown_nodes(nodes).await;
                return Err(e);
            }
        };
        if faults.late_gossip && index == 0 {
            config.gossip_delay = chaos::GOSSIP_DELAY;
        }
        if faults.late_start && index == 1 {
            // Starts late (the chaos task starts it).
            late_config = Some(config);
            continue;
        }
        if faults.restart && index == 2 {
            killed_config = Some(config.clone());
        }
        match Node::spawn(config).await {
            Ok(node) => {
                nodes.push(node);
                indices.push(index);
            }
            Err(e) => {
                let _ = shutdown_nodes(nodes).await;
                return Err(DevnetError::Node { index, source: Box::new(e) });
            }
        }
    }
    if let Err(e) = connect(&nodes).await {
        let _ = shutdown_nodes(nodes).await;
        return Err(e);
    }
    for (node, i) in nodes.iter().zip(&indices) {
        let p2p =
            node.p2p().map_or(String::new(), |n| format!(", gossip on {}", n.listen_address()));
        writeln!(out, "sidecar {i}: proving API and /metrics on {}{p2p}", node.url())
            .map_err(out_err)?;
    }
    if opts.chaos.is_some() {
        writeln!(out, "chaos: {}; every prover submits to sidecar 0", faults.describe())
            .map_err(out_err)?;
    }
    writeln!(out, "data: {}", data_dir.path().display()).map_err(out_err)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for (index, key) in keys.into_iter().enumerate() {
        // With --chaos every prover submits to sidecar 0, the one up the whole time.
        let node = if opts.chaos.is_some() { &nodes[0] } else { &nodes[index % nodes.len()] };
        let built = BeaconClient::new([node.url()])
            .and_then(|s| Ok((ProvingClient::new(s), BeaconClient::new([beacon_url.clone()])?)))
            .map_err(|e| ProverError::Api { what: "building clients", source: e })
            .and_then(|(proving, beacon)| {
                ProverWorker::new(key, proving, beacon, ctx, worker_config.clone())
            });
        let worker = match built {
            Ok(w) => w,
            Err(source) => {
                let _ = stop_tx.send(true);
                let _ = shutdown_nodes(nodes).await;
                return Err(DevnetError::Prover { index, source });
            }
        };
        let mut stop = stop_rx.clone();
        workers.spawn(async move {
            let until = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = worker.run(until).await {
                warn!(prover = index, error = %e, "prover stopped");
            }
        });
    }

    // Everything is up: blocks from here on are reported.
    let (tx, rx) = mpsc::unbounded_channel();
    let mut forwarders = Vec::new();
    forwarders.push(tokio::spawn(forward_heads(&devnet, beacon_url.clone(), tx.clone())));
    let mut chaos_task = None;
    if late_config.is_some() || killed_config.is_some() {
        // Sidecar 2 moves to the chaos task, which kills and restarts it.
        let killed = match (killed_config.take(), indices.iter().position(|i| *i == 2)) {
            (Some(config), Some(position)) => {
                indices.remove(position);
                Some((nodes.remove(position), config))
            }
            _ => None,
        };
        let peers = nodes.iter().filter_map(|n| n.p2p()).map(|n| n.listen_address().clone());
        let faults = chaos::Chaos {
            late: late_config.take(),
            killed,
            peers: peers.collect(),
            kill_at: faults.kill_at,
        };
        chaos_task = Some(faults.spawn(&devnet, tx.clone(), stop_rx.clone()));
    }
    for (node, sidecar) in nodes.iter().zip(&indices) {
        forwarders.push(tokio::spawn(forward_node(*sidecar, node, tx.clone())));
    }
    drop(tx);
    match opts.blocks {
        Some(n) => writeln!(out, "proving the next {n} blocks; Ctrl-C to stop"),
        None => writeln!(out, "proving every block; Ctrl-C to stop"),
    }
    .map_err(out_err)?;
    writeln!(out).map_err(out_err)?;

    let table = Table { sidecars: opts.sidecars, provers: opts.provers };
    let collected = collect(opts, &table, out, rx, shutdown).await;

    // Clean shutdown: provers first (no more submissions), then the nodes (queues drained,
    // stores closed), then the beacon node.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    // With the provers stopped (their proving would share the cores with the measured sidecar),
    // a fresh sidecar catches up with the blocks settled so far.
    let catch_up = match &collected {
        Ok((reported, false)) if opts.catch_up => {
            // The reported blocks, which every sidecar settled with this root.
            let expected: BTreeMap<Root, Root> = reported
                .iter()
                .filter_map(|(b, _)| b.agreed_root().map(|root| (b.block_root, root)))
                .collect();
            match sidecar_config(opts.sidecars, Vec::new(), true) {
                Ok(config) => Some(run_catch_up(opts, config, &nodes, &expected, out).await),
                Err(e) => Some(Err(e)),
            }
        }
        _ => None,
    };
    if let Some(task) = chaos_task
        && let Ok(chaos) = task.await
    {
        for (_, node) in chaos.nodes {
            nodes.push(node);
        }
        forwarders.extend(chaos.forwarders);
    }
    for f in forwarders {
        f.abort();
    }
    let node_result = shutdown_nodes(nodes).await;
    if let Err(e) = beacon.shutdown().await {
        debug!(error = %e, "beacon server shutdown");
    }
    drop(devnet);
    let (blocks, interrupted) = collected?;
    node_result?;
    let catch_up = catch_up.transpose()?;

    let mut balances = Balances::new();
    for ledger in blocks.iter().filter_map(|(_, l)| l.as_ref()) {
        if let Err(e) = balances.apply(ledger) {
            warn!(error = %e, "balance overflow in the summary");
        }
    }
    let reports: Vec<BlockReport> = blocks.into_iter().map(|(b, _)| b).collect();
    let mut earnings: Vec<(Account, i64)> = balances
        .iter()
        .filter(|(a, _)| matches!(a, Account::Prover(_)))
        .map(|(a, n)| (a, n.0))
        .collect();
    earnings.sort_by_key(|(a, n)| (std::cmp::Reverse(*n), *a));
    let summary = DevnetSummary {
        sidecars: opts.sidecars,
        provers: opts.provers,
        seconds_per_slot: opts.chain.seconds_per_slot,
        requested: opts.blocks,
        interrupted,
        full_proof_latency: LatencyStats::of(reports.iter().filter_map(|b| b.full_proof_after)),
        settled_latency: LatencyStats::of(
            reports
                .iter()
                .filter(|b| b.roots.iter().all(Option::is_some))
                .filter_map(|b| b.settled_after),
        ),
        blocks: reports,
        earnings,
        catch_up,
    };
    write_summary(out, &summary).map_err(out_err)?;
    Ok(summary)
}

/// `--catch-up`: a fresh sidecar (`config`) settles the chain from genesis from what its peers
/// serve, and must settle each `expected` block (block root → settlement root) as the others
/// did; measured by [`catch_up::catch_up`].
async fn run_catch_up(
    opts: &DevnetOptions,
    config: NodeConfig,
    nodes: &[NodeHandle],
    expected: &BTreeMap<Root, Root>,
    out: &mut (dyn Write + Send),
) -> DevnetResult<CatchUpReport> {
    let peers: Vec<_> =
        nodes.iter().filter_map(|n| n.p2p()).map(|n| n.listen_address().clone()).collect();
    let slot = opts.chain.seconds_per_slot;
    writeln!(
        out,
        "catch-up: a fresh sidecar starts with an empty store and settles the chain from \
         genesis; the {} reported blocks are compared",
        expected.len()
    )
    .map_err(out_err)?;
    // Slower than the live chain is a failure.
    let timeout = Duration::from_secs(slot.saturating_mul(expected.len() as u64).max(30));
    catch_up::catch_up(config, opts.sidecars, &peers, expected, slot, timeout).await
}

/// How long the sidecars may take to find each other on gossip.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects every sidecar to every other one (each dials the earlier ones) and waits until each
/// has them as peers and in its mesh of every topic (gossipsub's mesh holds at most a handful).
pub(crate) async fn connect(nodes: &[NodeHandle]) -> DevnetResult<()> {
    let gossip = |e: sidecar_p2p::Error| DevnetError::Gossip { reason: e.to_string() };
    let networks: Vec<&NetworkHandle> = nodes.iter().filter_map(NodeHandle::p2p).collect();
    if networks.len() < 2 {
        return Ok(());
    }
    for (i, network) in networks.iter().enumerate() {
        for earlier in networks.iter().take(i) {
            network.dial(earlier.listen_address().clone()).await.map_err(gossip)?;
        }
    }
    let others = networks.len() - 1;
    let wanted_mesh = others.min(4);
    let ready = async {
        loop {
            let mut ready = true;
            for network in &networks {
                ready &= network.peer_count() >= others;
                for topic in GOSSIP_TOPICS {
                    ready &= network.mesh_peers(topic).await.map_err(gossip)? >= wanted_mesh;
                }
            }
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, ready).await.map_err(|_| DevnetError::Gossip {
        reason: format!("the sidecars did not form a gossip mesh within {CONNECT_TIMEOUT:?}"),
    })?
}

/// Shuts every node down cleanly; the first error is returned after all were tried.
pub(crate) async fn shutdown_nodes(nodes: Vec<NodeHandle>) -> DevnetResult<()> {
    let mut first = Ok(());
    for (index, node) in nodes.into_iter().enumerate() {
        if let Err(e) = node.shutdown().await {
            warn!(sidecar = index, error = %e, "sidecar shutdown failed");
            if first.is_ok() {
                first = Err(DevnetError::Node { index, source: Box::new(e) });
            }
        }
    }
    first
}
