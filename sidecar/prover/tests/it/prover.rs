//! The prover worker over real loopback HTTP: the embedded devnet beacon node for blocks and the
//! proving extension server (on the in-memory backend, recording every submission) for duties.
//! Every submitted STARK is checked with the verifier.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_api::{
    AccountBalance, BeaconClient, BlockId, BlockRounds, DevnetConfig, DevnetNode, FinalizedProof,
    InMemoryBackend, ProverDuties, ProvingBackend, ProvingClient, ProvingEvent,
    ProvingServerConfig, RegistryEntry, SubmissionReceipt, VerificationVerdict,
};
use phase_engine::{
    AirIndex, Attempt, Deadlines, Duty, Phase, ProtocolMessage, ProverIndex, Root, RoundKey,
    RoundStatus, SignedPartialProof, SignedProverRegistration, SigningContext, Slot, SubBlockIndex,
    UnixMillis, bls,
};
use plonky3_prover::{AuthorKey, ProofParams, Prover, SegmentWorkload};
use sidecar_prover::{
    Behaviour, ProofFile, ProverWorker, WorkerConfig, block_input, prove_file, verify_file,
};
use tokio::sync::broadcast;

/// The in-memory backend, recording every accepted submission and serving the partials back.
struct Recording {
    inner: InMemoryBackend,
    log: Mutex<Vec<ProtocolMessage>>,
}

impl Recording {
    fn messages(&self) -> Vec<ProtocolMessage> {
        self.log.lock().unwrap().clone()
    }
}

impl ProvingBackend for Recording {
    async fn register_prover(
        &self,
        r: SignedProverRegistration,
    ) -> beacon_api::Result<SubmissionReceipt> {
        self.inner.register_prover(r).await
    }
    async fn submit(&self, m: ProtocolMessage) -> beacon_api::Result<SubmissionReceipt> {
        let receipt = self.inner.submit(m.clone()).await?;
        let mut log = self.log.lock().unwrap();
        log.push(m);
        let partials: Vec<SignedPartialProof> = log
            .iter()
            .filter_map(|m| match m {
                ProtocolMessage::PartialProof(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        if let Some(p) = partials.first() {
            self.inner.insert_partial_proofs(p.message.round.block_root, partials);
        }
        Ok(receipt)
    }
    async fn rounds(&self, b: BlockId) -> beacon_api::Result<BlockRounds> {
        self.inner.rounds(b).await
    }
    async fn prover_duties(&self, p: ProverIndex) -> beacon_api::Result<ProverDuties> {
        self.inner.prover_duties(p).await
    }
    async fn partial_proofs(&self, b: BlockId) -> beacon_api::Result<Vec<SignedPartialProof>> {
        self.inner.partial_proofs(b).await
    }
    async fn finalized_proof(&self, b: BlockId) -> beacon_api::Result<FinalizedProof> {
        self.inner.finalized_proof(b).await
    }
    async fn ledger(&self, b: BlockId) -> beacon_api::Result<rewards::Ledger> {
        self.inner.ledger(b).await
    }
    async fn balances(&self) -> beacon_api::Result<Vec<AccountBalance>> {
        self.inner.balances().await
    }
    async fn registry(&self) -> beacon_api::Result<Vec<RegistryEntry>> {
        self.inner.registry().await
    }
    async fn reward_config(&self) -> beacon_api::Result<rewards::RewardsFile> {
        self.inner.reward_config().await
    }
    async fn verify(&self, m: ProtocolMessage) -> beacon_api::Result<VerificationVerdict> {
        self.inner.verify(m).await
    }
    fn subscribe(&self) -> broadcast::Receiver<ProvingEvent> {
        self.inner.subscribe()
    }
}

struct Setup {
    _devnet: DevnetNode,
    _servers: Vec<beacon_api::ServerHandle>,
    backend: Arc<Recording>,
    beacon_url: String,
    proving_url: String,
    ctx: SigningContext,
}

async fn setup() -> Setup {
    let devnet = DevnetNode::spawn(DevnetConfig {
        seconds_per_slot: 1,
        min_gas_used: 1_000_000,
        max_gas_used: 2_000_000,
        avg_transaction_gas: 100_000,
        ..DevnetConfig::default()
    })
    .unwrap();
    let beacon = devnet.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let genesis = devnet.genesis();
    let ctx = genesis.signing_context();
    let backend = Arc::new(Recording { inner: InMemoryBackend::new(ctx), log: Mutex::new(vec![]) });
    let server = beacon_api::serve(
        Arc::clone(&backend),
        ProvingServerConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    Setup {
        beacon_url: beacon.url(),
        proving_url: server.url(),
        _devnet: devnet,
        _servers: vec![beacon, server],
        backend,
        ctx,
    }
}

fn worker(s: &Setup, seed: u8, behaviour: Behaviour) -> ProverWorker {
    let key = bls::SecretKey::from_ikm(&[seed; 32]).unwrap();
    let proving = ProvingClient::new(BeaconClient::new([s.proving_url.clone()]).unwrap());
    let beacon = BeaconClient::new([s.beacon_url.clone()]).unwrap();
    let config = WorkerConfig {
        poll_interval: Duration::from_millis(50),
        behaviour,
        ..WorkerConfig::default()
    };
    ProverWorker::new(key, proving, beacon, s.ctx, config).unwrap()
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
    )
    .unwrap()
}

/// A round of `num_airs` AIRs of the block at slot 2, T2 opening `t2_in_ms` from now.
async fn open_round(s: &Setup, num_airs: u32, t2_in_ms: u64) -> (Root, Slot, Deadlines) {
    let beacon = BeaconClient::new([s.beacon_url.clone()]).unwrap();
    let header = loop {
        if let Ok(h) = beacon.header(BlockId::Slot(beacon_api::Slot(2))).await {
            break h.data;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let now = now_ms();
    let t = |ms: u64| UnixMillis(now + t2_in_ms + ms);
    let deadlines = Deadlines {
        start: UnixMillis(now),
        closes: [t(0), t(20_000), t(40_000), t(50_000), t(60_000)],
        grace_ms: 500,
    };
    let key =
        RoundKey { block_root: header.root, sub_block: SubBlockIndex(0), attempt: Attempt(0) };
    s.backend.inner.insert_rounds(BlockRounds {
        block_root: header.root,
        slot: Slot(2),
        rounds: vec![RoundStatus {
            key,
            slot: Slot(2),
            phase: Some(Phase::T1),
            deadlines,
            num_airs,
            selected: vec![],
            open_airs: vec![],
            commitments: 0,
            partials: 0,
            finalized_in: None,
            closed: false,
        }],
        closed: vec![],
        outcome: None,
    });
    (header.root, Slot(2), deadlines)
}

fn duty(root: Root, slot: Slot, deadlines: Deadlines, num_airs: u32, airs: &[u32]) -> Duty {
    Duty {
        round: RoundKey { block_root: root, sub_block: SubBlockIndex(0), attempt: Attempt(0) },
        slot,
        num_airs,
        airs: airs.iter().map(|&a| AirIndex(a)).collect(),
        phase: Phase::T1,
        committed: None,
        deadlines,
    }
}

async fn wait_for(backend: &Recording, what: impl Fn(&[ProtocolMessage]) -> bool) {
    for _ in 0..1200 {
        if what(&backend.messages()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out; got {} messages", backend.messages().len());
}

fn stark() -> Prover<SegmentWorkload> {
    Prover::new(ProofParams::default(), SegmentWorkload::default()).unwrap()
}

async fn plan_of(s: &Setup, root: Root, num_airs: u32) -> plonky3_prover::SubBlockPlan {
    let beacon = BeaconClient::new([s.beacon_url.clone()]).unwrap();
    let block = beacon.block(BlockId::Root(root)).await.unwrap().data;
    let payload = block.message.body.execution_payload.unwrap();
    let input = block_input(root, &payload);
    plonky3_prover::block_plan(stark().workload(), &input, &[num_airs])
        .unwrap()
        .sub_blocks
        .remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_commits_then_proves_every_air_and_sends_a_valid_full_proof() {
    let s = setup().await;
    let w = worker(&s, 1, Behaviour::Honest);
    let (root, slot, deadlines) = open_round(&s, 2, 1_500).await;
    let task = tokio::spawn(w.clone().run(std::future::pending()));
    // The worker registers first; then it gets the duty.
    while s.backend.inner.registry_len() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let index = ProverIndex(0);
    s.backend.inner.set_duties(ProverDuties {
        prover: index,
        duties: vec![duty(root, slot, deadlines, 2, &[0, 1])],
        aggregation: vec![],
    });
    wait_for(&s.backend, |m| m.iter().any(|m| matches!(m, ProtocolMessage::FullProof(_)))).await;
    task.abort();

    let messages = s.backend.messages();
    let plan = plan_of(&s, root, 2).await;
    let prover = stark();
    let author = AuthorKey(w.pubkey().0);
    // Commitment first, before any proof.
    let ProtocolMessage::Commitment(c) = &messages[0] else { panic!("first is {messages:?}") };
    assert_eq!(c.message.prover, index);
    assert_eq!(c.message.trace_roots.len(), 2);
    let mut partials = 0;
    for m in &messages {
        if let ProtocolMessage::PartialProof(p) = m {
            partials += 1;
            let proof = plonky3_prover::PartialProof::from_bytes(&p.message.proof).unwrap();
            let committed = c.message.trace_roots.iter().find(|t| t.air == p.message.air).unwrap();
            assert_eq!(committed.trace_root, p.message.trace_root);
            let spec = plan.segment(plonky3_prover::AirIndex(p.message.air.0)).unwrap();
            let root = plonky3_prover::TraceRoot(committed.trace_root.0);
            prover.verify_partial(&proof, spec, &author, Some(&root)).unwrap();
        }
    }
    assert_eq!(partials, 2);
    let full = messages
        .iter()
        .find_map(|m| match m {
            ProtocolMessage::FullProof(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert!(now_ms() >= deadlines.open(Phase::T2).0, "full proof sent from T2 on");
    assert_eq!(full.message.submitter, index);
    assert_eq!(full.message.body.parts.len(), 2);
    let bundle = plonky3_prover::FullProof::from_bytes(&full.message.body.bundle).unwrap();
    let report = prover.verify_full(&bundle, &plan).unwrap();
    assert_eq!(report.reused().count(), 0);
    assert_eq!(w.stats().missed_deadlines.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_full_proof_reuses_another_provers_partial_and_copied_partials_fail_verification() {
    let s = setup().await;
    let a = worker(&s, 2, Behaviour::Honest);
    let b = worker(&s, 3, Behaviour::Honest);
    let thief = worker(&s, 4, Behaviour::CopyPartials);
    let (root, slot, deadlines) = open_round(&s, 2, 1_000).await;
    // T3 opens soon after T2 so the test stays short.
    let mut d = deadlines;
    d.closes[1] = UnixMillis(d.closes[0].0 + 6_000);
    let mut rounds = s.backend.inner.rounds(BlockId::Root(root)).await.unwrap();
    rounds.rounds[0].deadlines = d;
    s.backend.inner.insert_rounds(rounds);
    let (ia, ib, it) =
        (a.register().await.unwrap(), b.register().await.unwrap(), thief.register().await.unwrap());
    for (i, airs) in [(ia, vec![0]), (ib, vec![1]), (it, vec![1])] {
        s.backend.inner.set_duties(ProverDuties {
            prover: i,
            duties: vec![duty(root, slot, d, 2, &airs)],
            aggregation: vec![],
        });
    }
    let tasks: Vec<_> = [a.clone(), b.clone(), thief.clone()]
        .into_iter()
        .map(|w| tokio::spawn(w.run(std::future::pending())))
        .collect();
    wait_for(&s.backend, |m| m.iter().any(|m| matches!(m, ProtocolMessage::FullProof(_)))).await;
    for t in tasks {
        t.abort();
    }
    let messages = s.backend.messages();
    let plan = plan_of(&s, root, 2).await;
    let prover = stark();
    let full = messages
        .iter()
        .find_map(|m| match m {
            ProtocolMessage::FullProof(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    let bundle = plonky3_prover::FullProof::from_bytes(&full.message.body.bundle).unwrap();
    let report = prover.verify_full(&bundle, &plan).unwrap();
    assert_eq!(report.reused().count(), 1, "one part came from the other prover");
    let bloom = phase_engine::ReuseBloom::from_bytes(&full.message.body.reuse_bloom);
    for part in full.message.body.parts.iter() {
        if part.author != full.message.submitter {
            assert!(bloom.contains(part));
        }
        assert_ne!(part.author, it, "the thief's copies are never used");
    }
    // The thief's re-signed copy names it as prover, but the STARK is bound to b's key.
    let copied: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            ProtocolMessage::PartialProof(p) if p.message.prover == it => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert!(!copied.is_empty(), "the thief submitted a copy");
    for p in copied {
        let proof = plonky3_prover::PartialProof::from_bytes(&p.message.proof).unwrap();
        let spec = plan.segment(plonky3_prover::AirIndex(p.message.air.0)).unwrap();
        let err = prover.verify_partial(&proof, spec, &AuthorKey(thief.pubkey().0), None);
        assert!(err.is_err(), "a copied partial must not verify under the thief's key");
    }
}

/// Nobody covers AIR 1 (its holder withheld it): T3 cannot be completed from accepted partials,
/// so once T3's grace has passed the worker proves AIR 1 itself and sends a full proof of its own
/// parts only, counted for the first fallback phase (T4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncovered_air_is_proven_by_the_worker_itself_in_the_fallback_phase() {
    let s = setup().await;
    let w = worker(&s, 5, Behaviour::Honest);
    let (root, slot, deadlines) = open_round(&s, 2, 1_000).await;
    let mut d = deadlines;
    d.closes[1] = UnixMillis(d.closes[0].0 + 1_000);
    d.closes[2] = UnixMillis(d.closes[1].0 + 1_000);
    let mut rounds = s.backend.inner.rounds(BlockId::Root(root)).await.unwrap();
    rounds.rounds[0].deadlines = d;
    s.backend.inner.insert_rounds(rounds);
    let index = w.register().await.unwrap();
    s.backend.inner.set_duties(ProverDuties {
        prover: index,
        duties: vec![duty(root, slot, d, 2, &[0])],
        aggregation: vec![],
    });
    let task = tokio::spawn(w.clone().run(std::future::pending()));
    wait_for(&s.backend, |m| m.iter().any(|m| matches!(m, ProtocolMessage::FullProof(_)))).await;
    let sent_at = now_ms();
    task.abort();
    assert!(sent_at >= d.graced_close(Phase::T3).0, "not before T3 (and its grace) is over");

    let messages = s.backend.messages();
    let partials: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            ProtocolMessage::PartialProof(p) => Some(p.message.air),
            _ => None,
        })
        .collect();
    assert_eq!(partials, vec![AirIndex(0)], "only the assigned AIR is sent as a partial");
    let full = messages
        .iter()
        .find_map(|m| match m {
            ProtocolMessage::FullProof(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(full.message.submitter, index);
    assert!(full.message.body.parts.iter().all(|p| p.author == index));
    let plan = plan_of(&s, root, 2).await;
    let bundle = plonky3_prover::FullProof::from_bytes(&full.message.body.bundle).unwrap();
    let report = stark().verify_full(&bundle, &plan).unwrap();
    assert_eq!(report.parts.len(), 2);
    assert_eq!(report.reused().count(), 0);
    assert_eq!(report.builder, AuthorKey(w.pubkey().0));
    assert_eq!(w.stats().fallback_airs.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[test]
fn proof_files_round_trip_and_tampering_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("work.json");
    std::fs::write(
        &input,
        r#"{"round_digest":"0x1111111111111111111111111111111111111111111111111111111111111111",
            "sub_block_index":0,
            "prev_state":"0x0000000000000000000000000000000000000000000000000000000000000000",
            "gas":600000,"num_airs":2,"transactions":["0x01020304","0xdeadbeef"]}"#,
    )
    .unwrap();
    let prover = stark();
    let key = bls::SecretKey::from_ikm(&[5; 32]).unwrap();
    let file = prove_file(&prover, &input, &key).unwrap();
    let out = dir.path().join("proof.json");
    file.write(&out).unwrap();
    let report = verify_file(&prover, &out).unwrap();
    assert_eq!(report.num_airs, 2);
    assert_eq!(report.builder, key.public_key());

    // Other transactions: the proof no longer matches.
    let mut other = ProofFile::read(&out).unwrap();
    other.input.transactions[0] = vec![9u8].into();
    assert!(other.verify(&prover).is_err());
    // Another key claimed as builder.
    let mut claimed = ProofFile::read(&out).unwrap();
    claimed.builder = bls::SecretKey::from_ikm(&[6; 32]).unwrap().public_key();
    assert!(claimed.verify(&prover).is_err());
    // A flipped byte in the proof.
    let mut flipped = ProofFile::read(&out).unwrap();
    let mut bytes = flipped.full_proof.to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    flipped.full_proof = bytes.into();
    assert!(flipped.verify(&prover).is_err());
    // Not a proof file.
    std::fs::write(&out, "{}").unwrap();
    assert!(verify_file(&prover, &out).is_err());
}
