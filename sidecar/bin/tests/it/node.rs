//! The validator-mode node against the embedded devnet beacon node on loopback, with real prover
//! workers (real STARKs at small sizes) submitting over the proving API.

use crate::support::{self, ctx_of};
use std::time::Duration;

use beacon_api::{BeaconClient, BlockId, DevnetNode, ProvingClient, ProvingEvent, ServerHandle};
use phase_engine::{SigningContext, bls};
use sidecar_node::{Node, NodeConfig, NodeHandle};
use sidecar_prover::{ProverWorker, WorkerConfig};
use tokio::task::JoinHandle;

const PROVERS: u8 = 4;

fn key(i: u8) -> bls::SecretKey {
    support::prover_key(100, i)
}

fn rewards() -> rewards::Config {
    support::rewards_config(&[
        ("PROVERS_PER_PROOF", 2),
        ("phases.max_clock_disparity_ms", 100),
        ("phases.t1_ms", 700),
        ("phases.t2_ms", 700),
        ("phases.t3_ms", 500),
        ("phases.t4_ms", 500),
        ("phases.t5_ms", 500),
    ])
}

async fn devnet() -> (DevnetNode, ServerHandle) {
    super::support::small_devnet(2).await
}

fn node_config(beacon_url: &str, dir: &std::path::Path) -> NodeConfig {
    let mut config = NodeConfig::new(vec![beacon_url.to_owned()], dir.to_path_buf());
    config.rewards = rewards();
    config.genesis_provers = (0..PROVERS).map(|i| support::genesis_record(&key(i))).collect();
    config
}

fn workers(node: &NodeHandle, beacon_url: &str, ctx: &SigningContext) -> Vec<JoinHandle<()>> {
    (0..PROVERS)
        .map(|i| {
            let proving = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
            let beacon = BeaconClient::new([beacon_url.to_owned()]).unwrap();
            let config = WorkerConfig {
                poll_interval: Duration::from_millis(50),
                threads: 1,
                ..WorkerConfig::default()
            };
            let worker = ProverWorker::new(key(i), proving, beacon, *ctx, config).unwrap();
            tokio::spawn(async move {
                let _ = worker.run(std::future::pending::<()>()).await;
            })
        })
        .collect()
}

/// Waits for `n` settled ledgers of blocks that got a full proof.
async fn proven_blocks(node: &NodeHandle, n: usize, limit: Duration) -> Vec<rewards::Ledger> {
    let mut events = node.subscribe();
    let mut settled = node.subscribe_settled();
    let mut proven = std::collections::BTreeSet::new();
    let mut ledgers = Vec::new();
    tokio::time::timeout(limit, async {
        loop {
            tokio::select! {
                Ok(event) = events.recv() => {
                    if let ProvingEvent::BlockProven(b) = event {
                        proven.insert(b.block_root);
                    }
                }
                Ok(ledger) = settled.recv() => {
                    if proven.contains(&ledger.block_root) {
                        ledgers.push(ledger);
                        if ledgers.len() >= n {
                            return;
                        }
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} proven blocks settled in {limit:?}", ledgers.len()));
    ledgers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_proves_settles_and_serves_real_stark_proofs() {
    let (devnet, beacon) = devnet().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(node_config(&beacon.url(), dir.path())).await.unwrap();
    let provers = workers(&node, &beacon.url(), &ctx_of(&devnet));
    let ledgers = proven_blocks(&node, 2, Duration::from_secs(60)).await;

    let client = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
    // Partial proofs are kept only for the latest settled blocks (what T3 needs): read those of
    // the block that settled last right away, before the window moves on.
    let latest = ledgers.last().unwrap().block_root;
    let partials = client.partial_proofs(BlockId::Root(latest)).await.unwrap();
    assert!(!partials.is_empty(), "accepted partial proofs are downloadable");
    for ledger in &ledgers {
        // The finalised proof is served, and it verifies again through the API.
        let proof = client.finalized_proof(BlockId::Root(ledger.block_root)).await.unwrap();
        assert_eq!(proof.block_root, ledger.block_root);
        assert!(!proof.full_proofs.is_empty());
        let served = client.ledger(BlockId::Root(ledger.block_root)).await.unwrap();
        assert_eq!(served.settlement_root(), ledger.settlement_root());
        assert!(!ledger.is_empty());
        for full in proof.full_proofs.iter() {
            let verdict = client
                .verify(&phase_engine::ProtocolMessage::FullProof(full.clone()))
                .await
                .unwrap();
            assert!(verdict.valid, "{:?}", verdict.reason);
        }
    }
    assert!(!client.balances().await.unwrap().is_empty());
    assert_eq!(client.registry().await.unwrap().len(), usize::from(PROVERS));
    // The Beacon API's sync status (this node settles from its own clock: always in sync).
    let sync = BeaconClient::new([node.url()]).unwrap().syncing().await.unwrap();
    assert!(!sync.is_syncing && sync.sync_distance == 0, "{sync:?}");
    assert!(sync.head_slot.get() > 0, "{sync:?}");
    let metrics = node.metrics().encode();
    assert!(metrics.contains("accept"), "{metrics}");

    for p in provers {
        p.abort();
    }
    node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_node_replays_its_log_and_settles_the_same() {
    let (devnet, beacon) = devnet().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(node_config(&beacon.url(), dir.path())).await.unwrap();
    let provers = workers(&node, &beacon.url(), &ctx_of(&devnet));
    let before = proven_blocks(&node, 1, Duration::from_secs(60)).await;
    for p in &provers {
        p.abort();
    }
    // Crash: no shutdown, tasks killed wherever they are (mid-round: later blocks are open).
    node.abort().await;

    let node = Node::spawn(node_config(&beacon.url(), dir.path())).await.unwrap();
    // The replayed engine settled the same ledgers, entry for entry.
    let replayed = node.ledgers().await.unwrap();
    for ledger in &before {
        let again = replayed.iter().find(|l| l.block_root == ledger.block_root).unwrap();
        assert_eq!(again.settlement_root(), ledger.settlement_root());
        assert_eq!(again, ledger);
    }
    // And it goes on: provers back, new blocks proven and settled.
    let provers = workers(&node, &beacon.url(), &ctx_of(&devnet));
    proven_blocks(&node, 1, Duration::from_secs(60)).await;
    for p in provers {
        p.abort();
    }
    node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
}

/// Waits until the node has fed a block at `slot` or later; returns it.
async fn head_at_least(node: &NodeHandle, slot: u64) -> (phase_engine::Slot, phase_engine::Root) {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(head) = node.head().await.unwrap()
                && head.0.0 >= slot
            {
                return head;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the node never reached slot {slot}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_drops_the_orphaned_rounds_and_opens_the_new_chains() {
    use beacon_api::ProvingBackend as _;
    let (devnet, beacon) = devnet().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(node_config(&beacon.url(), dir.path())).await.unwrap();
    let (slot, old_root) = head_at_least(&node, 2).await;
    assert!(node.api().rounds(BlockId::Root(old_root)).await.is_ok());
    // Reorg the last block away (the devnet may have moved on by a slot: reorg its head).
    let reorg = devnet.inject_reorg(1).unwrap();
    let new_head = reorg.new_head_block;
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if node.api().rounds(BlockId::Root(new_head)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the new head's rounds were opened");
    if reorg.old_head_block == old_root || slot.0 == reorg.slot.get() {
        let err = node.api().rounds(BlockId::Root(reorg.old_head_block)).await.unwrap_err();
        assert!(matches!(err, beacon_api::Error::NotFound { .. }), "{err}");
    }
    let metrics = node.metrics().encode();
    assert!(metrics.contains("orphaned"), "{metrics}");
    node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reconnects_after_a_beacon_node_restart_and_fills_the_gap() {
    use beacon_api::ProvingBackend as _;
    let (devnet, beacon) = devnet().await;
    let addr = beacon.addr();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(node_config(&beacon.url(), dir.path())).await.unwrap();
    let (before, _) = head_at_least(&node, 1).await;
    beacon.shutdown().await.unwrap();
    // The chain goes on without the node seeing it.
    devnet.wait_for_slot(beacon_api::Slot::from(before.0 + 2)).await;
    let beacon = devnet.serve(addr).await.unwrap();
    let target = devnet.head().header.message.slot.get();
    let (after, _) = head_at_least(&node, target).await;
    assert!(after.0 >= target);
    // Every slot in between has its rounds (no gap).
    for slot in before.0..=target {
        let rounds = node.api().rounds(BlockId::Slot(beacon_api::Slot::from(slot))).await;
        assert!(rounds.is_ok(), "slot {slot}: {rounds:?}");
    }
    node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
}

/// A prover that is not a genesis prover registers through the API, waits for its registration
/// to activate at a later block, then gets an index (the `sidecar prover` path for a new key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_prover_key_registers_and_waits_for_its_index() {
    let (devnet, beacon) = devnet().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::spawn(node_config(&beacon.url(), dir.path())).await.unwrap();
    let proving = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
    let worker = ProverWorker::new(
        key(PROVERS + 7),
        proving.clone(),
        BeaconClient::new([beacon.url()]).unwrap(),
        ctx_of(&devnet),
        WorkerConfig {
            poll_interval: Duration::from_millis(50),
            threads: 1,
            ..WorkerConfig::default()
        },
    )
    .unwrap();
    let pubkey = worker.pubkey();
    let probe = worker.clone();
    let run = tokio::spawn(async move { worker.run(std::future::pending::<()>()).await });
    let index = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(index) = probe.index() {
                return index;
            }
            assert!(!run.is_finished(), "the worker stopped before it got an index");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the new key got no index within 30 s");
    let registry = proving.registry().await.unwrap();
    let entry = registry.iter().find(|e| e.record.pubkey == pubkey).expect("in the registry");
    assert_eq!(entry.index, index);
    assert_eq!(usize::from(PROVERS), registry.len() - 1, "genesis provers, then the new key");
    node.shutdown().await.unwrap();
}
