//! End to end over real loopback networking: the embedded devnet beacon node, three validator
//! sidecars connected by libp2p gossip, eight real prover workers (real STARKs at small sizes)
//! spread over the three sidecars' HTTP APIs. Every block must reach a valid full proof on every
//! sidecar, and the three sidecars must settle every block to the same ledger.

use crate::support::{self, ctx_of};
use std::collections::BTreeMap;
use std::time::Duration;

use beacon_api::{BeaconClient, BlockId, ProvingClient};
use phase_engine::{ProverIndex, Root, bls};
use sidecar_node::{GOSSIP_TOPICS, Node, NodeConfig, NodeHandle};
use sidecar_p2p::{NetworkConfig, NodeKey};
use sidecar_prover::{ProverWorker, WorkerConfig};

const SIDECARS: usize = 3;
const PROVERS: u8 = 8;
const BLOCKS: u64 = 10;
const LIMIT: Duration = Duration::from_secs(300);

fn key(i: u8) -> bls::SecretKey {
    support::prover_key(40, i)
}

/// Small rounds: two provers per sub-block, one or two sub-blocks per block (so AggProofs run
/// too), phase windows that fit a 3-second slot.
fn rewards() -> rewards::Config {
    support::rewards_config(&[
        ("PROVERS_PER_PROOF", 2),
        ("PROVERS_PER_AGGPROOF", 2),
        ("gas.sub_block_gas", 300_000),
        ("gas.gas_per_air", 300_000),
        ("phases.max_clock_disparity_ms", 250),
        ("phases.t1_ms", 800),
        ("phases.t2_ms", 900),
        ("phases.t3_ms", 600),
        ("phases.t4_ms", 350),
        ("phases.t5_ms", 350),
    ])
}

fn sidecar_config(beacon_url: &str, dir: &std::path::Path) -> NodeConfig {
    let mut config = NodeConfig::new(vec![beacon_url.to_owned()], dir.to_path_buf());
    config.rewards = rewards();
    config.genesis_provers = (0..PROVERS).map(|i| support::genesis_record(&key(i))).collect();
    config.p2p = Some(NetworkConfig::loopback(NodeKey::generate().unwrap()));
    config
}

fn p2p(node: &NodeHandle) -> &sidecar_p2p::NetworkHandle {
    node.p2p().expect("the sidecar runs gossip")
}

/// Dials every earlier sidecar from every later one, then waits until every sidecar has the
/// two others as peers and in its mesh of every topic.
async fn connect(sidecars: &[NodeHandle]) {
    for (i, node) in sidecars.iter().enumerate() {
        for earlier in &sidecars[..i] {
            p2p(node).dial(p2p(earlier).listen_address().clone()).await.unwrap();
        }
    }
    let others = SIDECARS - 1;
    loop {
        let mut ready = true;
        for node in sidecars {
            ready &= p2p(node).peer_count() == others;
            for topic in GOSSIP_TOPICS {
                ready &= p2p(node).mesh_peers(topic).await.unwrap() == others;
            }
        }
        if ready {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `node` has settled every block of slots `from..from + BLOCKS`; returns their
/// ledgers by slot.
async fn settled(node: &NodeHandle, from: u64) -> BTreeMap<u64, rewards::Ledger> {
    let mut rx = node.subscribe_settled();
    let mut ledgers = BTreeMap::new();
    // Ledgers settled before we subscribed are still in memory.
    for ledger in node.ledgers().await.unwrap() {
        ledgers.insert(ledger.slot.0, ledger);
    }
    let done =
        |l: &BTreeMap<u64, rewards::Ledger>| (from..from + BLOCKS).all(|s| l.contains_key(&s));
    while !done(&ledgers) {
        let ledger = rx.recv().await.expect("the sidecar settles blocks");
        ledgers.insert(ledger.slot.0, ledger);
    }
    ledgers.into_iter().filter(|(s, _)| (from..from + BLOCKS).contains(s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sidecars_and_eight_provers_over_gossip_prove_every_block_and_settle_identically() {
    let test = async {
        let (devnet, beacon) = super::support::small_devnet(3).await;
        let dirs: Vec<_> = (0..SIDECARS).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut sidecars = Vec::new();
        for dir in &dirs {
            sidecars.push(Node::spawn(sidecar_config(&beacon.url(), dir.path())).await.unwrap());
        }
        connect(&sidecars).await;

        // Prover i submits to sidecar i % 3 only: the others learn its messages by gossip.
        let ctx = ctx_of(&devnet);
        let provers: Vec<_> = (0..PROVERS)
            .map(|i| {
                let node = &sidecars[usize::from(i) % SIDECARS];
                let proving = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
                let chain = BeaconClient::new([beacon.url()]).unwrap();
                let config = WorkerConfig {
                    poll_interval: Duration::from_millis(50),
                    threads: 1,
                    ..WorkerConfig::default()
                };
                let worker = ProverWorker::new(key(i), proving, chain, ctx, config).unwrap();
                tokio::spawn(async move {
                    let _ = worker.run(std::future::pending::<()>()).await;
                })
            })
            .collect();
        // The first block counted is the one after the provers started.
        let from = devnet.head().header.message.slot.get() + 2;

        let mut all = Vec::new();
        for node in &sidecars {
            all.push(settled(node, from).await);
        }
        for p in &provers {
            p.abort();
        }

        // Which sidecar each prover index talks to (indices follow public-key order).
        let registry = ProvingClient::new(BeaconClient::new([sidecars[0].url()]).unwrap())
            .registry()
            .await
            .unwrap();
        let home: BTreeMap<ProverIndex, usize> = registry
            .iter()
            .map(|e| {
                let i = (0..PROVERS).find(|&i| key(i).public_key() == e.record.pubkey).unwrap();
                (e.index, usize::from(i) % SIDECARS)
            })
            .collect();
        let mut gossiped_full_proofs = [0usize; SIDECARS];

        for slot in from..from + BLOCKS {
            let reference = &all[0][&slot];
            let root: Root = reference.block_root;
            for (i, (ledgers, node)) in all.iter().zip(&sidecars).enumerate() {
                let ledger = &ledgers[&slot];
                assert_eq!(ledger.block_root, root, "sidecar {i}, slot {slot}: same chain");
                assert_eq!(
                    ledger.settlement_root(),
                    reference.settlement_root(),
                    "sidecar {i}, slot {slot}: settlement differs\n{ledger:?}\nvs\n{reference:?}"
                );
                assert!(!ledger.is_empty(), "sidecar {i}, slot {slot}: empty ledger");
                // Through the sidecar's API: a valid (STARK-verified on this sidecar) full
                // proof of the block, and the same ledger.
                let client = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
                let proof = match client.finalized_proof(BlockId::Root(root)).await {
                    Ok(proof) => proof,
                    Err(e) => {
                        let rounds = client.rounds(BlockId::Root(root)).await;
                        panic!("sidecar {i}, slot {slot}: no full proof: {e}\n{rounds:?}")
                    }
                };
                assert_eq!(proof.block_root, root);
                assert!(!proof.full_proofs.is_empty());
                // A block of several sub-blocks is proven with its AggProof.
                assert!(
                    proof.full_proofs.len() == 1 || proof.agg_proof.len() == 1,
                    "sidecar {i}, slot {slot}: {} sub-blocks proven but no AggProof",
                    proof.full_proofs.len()
                );
                gossiped_full_proofs[i] +=
                    proof.full_proofs.iter().filter(|f| home[&f.message.submitter] != i).count();
                let served = client.ledger(BlockId::Root(root)).await.unwrap();
                assert_eq!(served.settlement_root(), reference.settlement_root());
            }
        }
        // Gossip carried the provers' messages: every sidecar holds full proofs submitted by
        // provers that never talked to it.
        for (i, n) in gossiped_full_proofs.iter().enumerate() {
            assert!(*n > 0, "sidecar {i} got no full proof by gossip: {gossiped_full_proofs:?}");
        }
        for node in &sidecars {
            assert_eq!(p2p(node).peer_count(), SIDECARS - 1);
            let metrics = node.metrics().encode();
            assert!(metrics.contains("sidecar_peers 2"), "{metrics}");
        }
        for node in sidecars {
            node.shutdown().await.unwrap();
        }
        beacon.shutdown().await.unwrap();
    };
    tokio::time::timeout(LIMIT, test).await.expect("the devnet proved and settled in time");
}

/// A peer publishes to sidecar A, which is B's only peer: A forwards a valid message to B and
/// drops a forged one (gossip is validated by the engine before it is forwarded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_forwards_valid_gossip_and_drops_forged_gossip() {
    use phase_engine::{Decline, ProtocolMessage, RoundRef, SignedDecline, UnixMillis};
    use sidecar_p2p::{GossipMessage, MessageVerdict, spawn_validation, start_network};

    let test = async {
        let (devnet, beacon) = super::support::small_devnet(3).await;
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let a = Node::spawn(sidecar_config(&beacon.url(), dirs[0].path())).await.unwrap();
        let b = Node::spawn(sidecar_config(&beacon.url(), dirs[1].path())).await.unwrap();
        let peer = start_network(NetworkConfig::loopback(NodeKey::generate().unwrap()), None)
            .await
            .unwrap();
        for topic in GOSSIP_TOPICS {
            peer.handle.subscribe(topic).await.unwrap();
        }
        let (_seen, _task) = spawn_validation(
            peer.handle.clone(),
            peer.messages,
            |_: &GossipMessage| async { MessageVerdict::Accept },
            64,
        );
        p2p(&b).dial(p2p(&a).listen_address().clone()).await.unwrap();
        peer.handle.dial(p2p(&a).listen_address().clone()).await.unwrap();
        while p2p(&a).peer_count() < 2
            || p2p(&a).mesh_peers("prover_decline").await.unwrap() < 2
            || peer.handle.mesh_peers("prover_decline").await.unwrap() < 1
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // A fresh block, in T1 on both sidecars, whose first round has two selected provers.
        let client = ProvingClient::new(BeaconClient::new([a.url()]).unwrap());
        let mut last = a.head().await.unwrap();
        let (slot, root, round) = loop {
            let head = a.head().await.unwrap();
            if head != last
                && let Some((slot, root)) = head
                && b.head().await.unwrap() == head
            {
                last = head;
                let rounds = client.rounds(BlockId::Root(root)).await.unwrap();
                if let Some(round) = rounds.rounds.into_iter().find(|r| r.selected.len() >= 2) {
                    break (slot, root, round);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let registry = client.registry().await.unwrap();
        let key_of = |p: ProverIndex| {
            let pubkey = registry.iter().find(|e| e.index == p).unwrap().record.pubkey;
            key((0..PROVERS).find(|&i| key(i).public_key() == pubkey).unwrap())
        };
        let decline = |nth: usize| Decline {
            round: RoundRef {
                slot,
                block_root: root,
                sub_block: round.key.sub_block,
                attempt: round.key.attempt,
            },
            prover: round.selected[nth].0,
        };
        let ctx = ctx_of(&devnet);
        let now = || {
            UnixMillis(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64,
            )
        };
        // The second selected prover's decline, signed with the first one's key: forged.
        let forged = SignedDecline::sign(decline(1), &key_of(round.selected[0].0), &ctx);
        let (topic, bytes) = sidecar_node::gossip_payload(&ProtocolMessage::Decline(forged), now());
        peer.handle.publish(topic, bytes).await.unwrap();
        let valid = SignedDecline::sign(decline(0), &key_of(round.selected[0].0), &ctx);
        let (topic, bytes) = sidecar_node::gossip_payload(&ProtocolMessage::Decline(valid), now());
        peer.handle.publish(topic, bytes).await.unwrap();

        // B gets the valid decline through A (its AIRs open on B) ...
        let b_client = ProvingClient::new(BeaconClient::new([b.url()]).unwrap());
        loop {
            let rounds = b_client.rounds(BlockId::Root(root)).await.unwrap();
            if rounds.rounds.iter().any(|r| r.key == round.key && !r.open_airs.is_empty()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // ... while A rejected the forged one after its signature check and did not forward it.
        let rejected = "kind=\"decline\",verdict=\"reject\"";
        while !a.metrics().encode().contains(rejected) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let b_metrics = b.metrics().encode();
        assert!(!b_metrics.contains(rejected), "B saw the forged decline:\n{b_metrics}");
        assert!(b_metrics.contains("kind=\"decline\",verdict=\"accept\""), "{b_metrics}");

        peer.handle.shutdown().await;
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        beacon.shutdown().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(120), test).await.expect("finished in time");
}
