//! Fault cases against the real node and the embedded devnet beacon node over loopback HTTP, with
//! real prover workers (real STARKs at small sizes):
//!
//! * a prover that never submits: the round goes through the fallback phases and the settled
//!   ledger charges it every non-participation penalty of the phases reached;
//! * provers that submit another prover's partial proof or full proof as their own: refused by the
//!   node, nothing earned, the honest provers paid;
//! * the `sidecar run` binary killed with SIGKILL mid-round and restarted on the same data
//!   directory: it catches up and settles every block exactly as a never-killed reference node
//!   that received the same submissions.
//!
//! The beacon node restarting is covered in `node.rs`
//! (`the_node_reconnects_after_a_beacon_node_restart_and_fills_the_gap`).

use crate::support::{self, ctx_of, rewards_config};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use beacon_api::{
    AccountBalance, BeaconClient, BlockId, BlockRounds, DevnetConfig, DevnetNode, FinalizedProof,
    ProverDuties, ProvingBackend, ProvingClient, ProvingEvent, ProvingServerConfig, RegistryEntry,
    ServerHandle, SubmissionReceipt, VerificationVerdict,
};
use phase_engine::{
    AirIndex, Amount, Phase, ProtocolMessage, ProverIndex, ProverRecord, Root, RoundKey,
    SignedPartialProof, SignedProverRegistration, SigningContext, bls,
};
use rewards::{Account, Ledger, LedgerEntry, Rule};
use sidecar_node::{Node, NodeConfig, NodeHandle};
use sidecar_prover::{Behaviour, ProverWorker, WorkerConfig};
use tokio::sync::{RwLock, broadcast};
use tokio::task::JoinHandle;

// ---- shared set-up ----------------------------------------------------------------------------

fn key(i: u8) -> bls::SecretKey {
    support::prover_key(200, i)
}

fn record(i: u8) -> ProverRecord {
    support::genesis_record(&key(i))
}

async fn devnet(seconds_per_slot: u64, genesis_time: Option<u64>) -> (DevnetNode, ServerHandle) {
    let devnet = DevnetNode::spawn(DevnetConfig {
        seconds_per_slot,
        genesis_time,
        // 3 or 4 AIRs of ~100k gas each with `gas.gas_per_air = 100_000`.
        min_gas_used: 300_000,
        max_gas_used: 400_000,
        avg_transaction_gas: 50_000,
        ..DevnetConfig::default()
    })
    .unwrap();
    let server = devnet.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (devnet, server)
}

fn node_config(beacon_url: &str, dir: &Path, rewards: rewards::Config, provers: u8) -> NodeConfig {
    let mut config = NodeConfig::new(vec![beacon_url.to_owned()], dir.to_path_buf());
    config.rewards = rewards;
    config.genesis_provers = (0..provers).map(record).collect();
    config
}

/// A worker per `behaviours` entry (key `i` for entry `i`), submitting to `proving_url`.
fn workers(
    proving_url: &str,
    beacon_url: &str,
    ctx: &SigningContext,
    behaviours: &[Behaviour],
) -> (Vec<ProverWorker>, Vec<JoinHandle<()>>) {
    let mut handles = Vec::new();
    let mut workers = Vec::new();
    for (i, behaviour) in (0u8..).zip(behaviours) {
        let proving = ProvingClient::new(BeaconClient::new([proving_url.to_owned()]).unwrap());
        let beacon = BeaconClient::new([beacon_url.to_owned()]).unwrap();
        let config = WorkerConfig {
            poll_interval: Duration::from_millis(50),
            threads: 1,
            behaviour: *behaviour,
            ..WorkerConfig::default()
        };
        let worker = ProverWorker::new(key(i), proving, beacon, *ctx, config).unwrap();
        workers.push(worker.clone());
        handles.push(tokio::spawn(async move {
            let _ = worker.run(std::future::pending::<()>()).await;
        }));
    }
    (workers, handles)
}

/// The registry index of worker `i`'s key.
async fn index_of(client: &ProvingClient, i: u8) -> ProverIndex {
    let pubkey = key(i).public_key();
    client
        .registry()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.record.pubkey == pubkey)
        .map(|e| e.index)
        .unwrap()
}

/// What the test saw of one round: its AIR assignment and how it ended.
#[derive(Clone, Debug, Default)]
struct RoundSeen {
    assignment: BTreeMap<ProverIndex, Vec<AirIndex>>,
    num_airs: u32,
    finalized: Option<(Phase, ProverIndex)>,
}

/// Follows a node's events and settled ledgers until `pick` accepts a settled block (given its
/// ledger and what was seen of its rounds); returns them.
async fn watch_until(
    node: &NodeHandle,
    limit: Duration,
    mut pick: impl FnMut(&Ledger, &BTreeMap<RoundKey, RoundSeen>) -> bool,
) -> (Ledger, BTreeMap<RoundKey, RoundSeen>) {
    let mut events = node.subscribe();
    let mut settled = node.subscribe_settled();
    let mut rounds: BTreeMap<Root, BTreeMap<RoundKey, RoundSeen>> = BTreeMap::new();
    let mut checked = 0usize;
    tokio::time::timeout(limit, async {
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(ProvingEvent::RoundStarted(e)) => {
                        let block = BlockId::Root(e.round.block_root);
                        let status = node.api().rounds(block).await;
                        let seen = rounds.entry(e.round.block_root).or_default();
                        let seen = seen.entry(e.round).or_default();
                        seen.num_airs = e.num_airs;
                        let round = status
                            .ok()
                            .and_then(|s| s.rounds.into_iter().find(|r| r.key == e.round));
                        if let Some(r) = round {
                            seen.assignment = r.selected.into_iter().collect();
                        }
                    }
                    Ok(ProvingEvent::RoundFinalized(e)) => {
                        let seen = rounds.entry(e.round.block_root).or_default();
                        seen.entry(e.round).or_default().finalized = Some((e.phase, e.submitter));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => panic!("lagged {n} events"),
                    Err(broadcast::error::RecvError::Closed) => panic!("the node stopped"),
                },
                ledger = settled.recv() => {
                    let ledger = ledger.expect("settled ledgers");
                    checked += 1;
                    let seen = rounds.remove(&ledger.block_root).unwrap_or_default();
                    if pick(&ledger, &seen) {
                        return (ledger, seen);
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no suitable block among {checked} settled in {limit:?}"))
}

/// The entries of `account` in `ledger`.
fn entries_of(ledger: &Ledger, account: Account) -> Vec<LedgerEntry> {
    ledger.entries().iter().copied().filter(|e| e.account == account).collect()
}

/// The expected entry: `times` × the table's amount of `rule`, in round (`key`) and `phase`.
fn entry(
    table: &rewards::RewardTable,
    key: &RoundKey,
    phase: Phase,
    rule: Rule,
    account: Account,
    times: i64,
) -> LedgerEntry {
    LedgerEntry {
        sub_block: key.sub_block,
        attempt: key.attempt,
        phase,
        rule,
        account,
        amount: Amount(table.amount(rule).0 * times),
    }
}

fn sorted(mut v: Vec<LedgerEntry>) -> Vec<LedgerEntry> {
    v.sort();
    v
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap()
}

// ---- a prover that never submits --------------------------------------------------------------

/// Four provers, two selected per block (`PROVERS_PER_PROOF = 2`), every AIR assigned once
/// (`redundancy_factor = 1`), 3-4 AIRs per block: when the silent prover is selected, its AIRs
/// have no other holder, so T2 ends without its partials and T3 without a full proof (nobody has
/// every partial). In T4 the honest selected prover proves the uncovered AIRs itself and
/// finalises. The ledger must charge the silent prover exactly: T1 no commitment, T2 one penalty
/// per assigned AIR, T3 and T4 non-participation (and T5 if the proof only came then).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_prover_is_covered_in_the_fallback_phases_and_charged_every_penalty() {
    let (devnet, beacon) = devnet(4, None).await;
    let dir = tempfile::tempdir().unwrap();
    let rewards = rewards_config(&[
        ("PROVERS_PER_PROOF", 2),
        ("selection.redundancy_factor", 1),
        ("gas.gas_per_air", 100_000),
        ("retries.max_retries", 0),
        ("phases.max_clock_disparity_ms", 100),
        ("phases.t1_ms", 800),
        ("phases.t2_ms", 700),
        ("phases.t3_ms", 400),
        ("phases.t4_ms", 1000),
        ("phases.t5_ms", 500),
    ]);
    let table = rewards.table;
    let node = Node::spawn(node_config(&beacon.url(), dir.path(), rewards, 4)).await.unwrap();
    const SILENT: u8 = 0;
    let behaviours = [Behaviour::Silent, Behaviour::Honest, Behaviour::Honest, Behaviour::Honest];
    let (provers, handles) = workers(&node.url(), &beacon.url(), &ctx_of(&devnet), &behaviours);
    let client = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
    let silent = index_of(&client, SILENT).await;

    // A block whose round selected the silent prover (with work) and an honest one.
    let (ledger, rounds) = watch_until(&node, Duration::from_secs(120), |_, rounds| {
        rounds.values().any(|r| {
            r.assignment.len() == 2
                && r.assignment.get(&silent).is_some_and(|airs| !airs.is_empty())
                && r.finalized.is_some()
        })
    })
    .await;
    let (key, round) = rounds
        .iter()
        .find(|(_, r)| r.assignment.contains_key(&silent))
        .map(|(k, r)| (*k, r.clone()))
        .unwrap();
    let (phase, submitter) = round.finalized.unwrap();
    // Through the fallback phases: T3 could not finalise (nobody had every partial).
    assert!(matches!(phase, Phase::T4 | Phase::T5), "finalised in {phase:?}");
    let honest = *round.assignment.keys().find(|p| **p != silent).unwrap();
    assert_eq!(submitter, honest, "the honest selected prover covered the silent one's AIRs");

    let silent_airs = count(round.assignment[&silent].len());
    let s = Account::Prover(silent);
    let mut expected = vec![
        entry(&table, &key, Phase::T1, Rule::PenaltyT1Prover, s, 1),
        entry(&table, &key, Phase::T2, Rule::PenaltyT2Prover, s, silent_airs),
        entry(&table, &key, Phase::T3, Rule::PenaltyProverT3, s, 1),
        entry(&table, &key, Phase::T4, Rule::PenaltyProverT4, s, 1),
    ];
    if phase == Phase::T5 {
        expected.push(entry(&table, &key, Phase::T5, Rule::PenaltyProverT5, s, 1));
    }
    assert_eq!(sorted(entries_of(&ledger, s)), sorted(expected), "the silent prover's entries");

    // The honest prover: paid for its partials and as the fallback submitter, charged nothing.
    let h = Account::Prover(honest);
    let honest_airs = count(round.assignment[&honest].len());
    let submitter_rule =
        if phase == Phase::T4 { Rule::RewardProverT4 } else { Rule::RewardProverT5 };
    assert_eq!(
        sorted(entries_of(&ledger, h)),
        sorted(vec![
            entry(&table, &key, Phase::T2, Rule::RewardT2Prover, h, honest_airs),
            entry(&table, &key, phase, submitter_rule, h, 1),
        ]),
        "the honest prover's entries"
    );
    // Provers not selected: no entries.
    for p in client.registry().await.unwrap() {
        if !round.assignment.contains_key(&p.index) {
            assert!(entries_of(&ledger, Account::Prover(p.index)).is_empty(), "{}", p.index);
        }
    }
    // The block is proven: the served full proof carries the honest prover's own proofs of the
    // silent prover's AIRs.
    let proof = client.finalized_proof(BlockId::Root(key.block_root)).await.unwrap();
    let full = proof.full_proofs.iter().find(|f| f.message.round.key() == key).unwrap();
    assert_eq!(full.message.submitter, honest);
    assert!(full.message.body.parts.iter().all(|p| p.author == honest));
    let verdict = client.verify(&ProtocolMessage::FullProof(full.clone())).await.unwrap();
    assert!(verdict.valid, "{:?}", verdict.reason);
    let stats = provers[usize::from(SILENT)].stats();
    assert_eq!(stats.commitments.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(stats.partials.load(std::sync::atomic::Ordering::Relaxed), 0);

    for h in handles {
        h.abort();
    }
    node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
}

// ---- provers that submit another prover's proof -----------------------------------------------

/// Six provers, three selected per block, every AIR assigned to two of them, 3-4 AIRs: nobody
/// holds every AIR (no full proof in T1/T2), every AIR has an honest holder, and the honest
/// selected provers aggregate in T3. Waits for a block that selected prover 0 (`behaviour`).
async fn copier_round(
    behaviour: Behaviour,
) -> (Ledger, RoundKey, RoundSeen, ProverIndex, ProverWorker, rewards::RewardTable) {
    let (devnet, beacon) = devnet(4, None).await;
    let dir = tempfile::tempdir().unwrap();
    let rewards = rewards_config(&[
        ("PROVERS_PER_PROOF", 3),
        ("selection.redundancy_factor", 2),
        ("gas.gas_per_air", 100_000),
        ("retries.max_retries", 0),
        ("phases.max_clock_disparity_ms", 100),
        ("phases.t1_ms", 800),
        ("phases.t2_ms", 900),
        ("phases.t3_ms", 1200),
        ("phases.t4_ms", 300),
        ("phases.t5_ms", 300),
    ]);
    let table = rewards.table;
    let node = Node::spawn(node_config(&beacon.url(), dir.path(), rewards, 6)).await.unwrap();
    let mut behaviours = vec![Behaviour::Honest; 6];
    behaviours[0] = behaviour;
    let (provers, handles) = workers(&node.url(), &beacon.url(), &ctx_of(&devnet), &behaviours);
    let client = ProvingClient::new(BeaconClient::new([node.url()]).unwrap());
    let copier = index_of(&client, 0).await;
    let (ledger, rounds) = watch_until(&node, Duration::from_secs(120), |_, rounds| {
        rounds.values().any(|r| {
            r.assignment.len() == 3
                && r.assignment.get(&copier).is_some_and(|airs| !airs.is_empty())
                && r.finalized.is_some()
        })
    })
    .await;
    let (key, round) = rounds
        .iter()
        .find(|(_, r)| r.assignment.contains_key(&copier))
        .map(|(k, r)| (*k, r.clone()))
        .unwrap();
    for h in handles {
        h.abort();
    }
    node.shutdown().await.unwrap();
    beacon.shutdown().await.unwrap();
    drop(devnet);
    (ledger, key, round, copier, provers[0].clone(), table)
}

/// What the copier and the honest provers of a copier round must have in the ledger: the copier
/// only its T2 penalties (one per assigned AIR: nothing of its own counted) and the T3
/// non-participation penalty; each honest selected prover paid for its partials and nothing
/// charged; the round finalised in T3 by an honest prover.
fn check_copier_ledger(
    ledger: &Ledger,
    key: &RoundKey,
    round: &RoundSeen,
    copier: ProverIndex,
    table: &rewards::RewardTable,
) {
    let (phase, submitter) = round.finalized.unwrap();
    assert_eq!(phase, Phase::T3, "finalised by aggregation");
    assert_ne!(submitter, copier);
    let c = Account::Prover(copier);
    let copier_airs = count(round.assignment[&copier].len());
    assert_eq!(
        sorted(entries_of(ledger, c)),
        sorted(vec![
            entry(table, key, Phase::T2, Rule::PenaltyT2Prover, c, copier_airs),
            entry(table, key, Phase::T3, Rule::PenaltyProverT3, c, 1),
        ]),
        "the copier's entries"
    );
    for (&p, airs) in &round.assignment {
        if p == copier {
            continue;
        }
        let h = Account::Prover(p);
        let mine = entries_of(ledger, h);
        assert!(
            mine.contains(&entry(
                table,
                key,
                Phase::T2,
                Rule::RewardT2Prover,
                h,
                count(airs.len())
            )),
            "honest prover {p} is paid for its partials: {mine:?}"
        );
        // (An honest prover may lose a unit for a partial another full proof did not reuse.)
        assert!(
            !mine.iter().any(|e| matches!(
                e.rule,
                Rule::PenaltyT1Prover | Rule::PenaltyT2Prover | Rule::PenaltyProverT3
            )),
            "honest prover {p} is charged: {mine:?}"
        );
    }
    assert!(
        entries_of(ledger, Account::Prover(submitter))
            .iter()
            .any(|e| e.rule == Rule::RewardProverT3 && e.amount.0 > 0),
        "the finalising submitter is paid"
    );
}

/// The copier commits honestly, then re-signs honest provers' partial proofs of its AIRs under
/// its own index. The partial's trace root is the author's (the trace is bound to the author's
/// key), so it does not open the copier's commitment: the node refuses it with 400, the copier
/// earns nothing and is charged as if it had sent nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copied_partial_proofs_are_refused_and_earn_nothing() {
    let (ledger, key, round, copier, worker, table) = copier_round(Behaviour::CopyPartials).await;
    let stats = worker.stats();
    let refused: Vec<_> =
        stats.rejections().into_iter().filter(|r| r.what == "copied partial proof").collect();
    assert!(!refused.is_empty(), "the copier never got to copy: {:?}", stats.rejections());
    for r in &refused {
        assert_eq!(r.status, Some(400), "{r:?}");
        assert!(r.message.contains("committed") && r.message.contains("opened"), "{r:?}");
    }
    assert_eq!(stats.partials.load(std::sync::atomic::Ordering::Relaxed), 0);
    check_copier_ledger(&ledger, &key, &round, copier, &table);
}

/// The copier commits honestly and proves nothing; when an honest full proof of its round is
/// finalised (T3), it resubmits it under its own index, with a reuse Bloom filter claiming every
/// part (so the engine's structural checks pass and only the proof's builder binding can catch
/// it). The node must refuse it; the copier earns nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copied_full_proof_is_refused_and_earns_nothing() {
    let (ledger, key, round, copier, worker, table) = copier_round(Behaviour::CopyFullProof).await;
    let stats = worker.stats();
    let refused: Vec<_> =
        stats.rejections().into_iter().filter(|r| r.what == "copied full proof").collect();
    assert_eq!(
        stats.full_proofs.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the node accepted a full proof built by another prover under the copier's index"
    );
    assert_eq!(refused.len(), 1, "{:?}", stats.rejections());
    assert_eq!(refused[0].status, Some(400), "{:?}", refused[0]);
    check_copier_ledger(&ledger, &key, &round, copier, &table);
}

// ---- a sidecar killed with SIGKILL mid-round --------------------------------------------------

/// Submissions go to the `sidecar run` child and to the reference node at once, so both receive
/// the same messages at the same moment; the test closes `gate` (waiting for submissions in
/// flight) while it kills and restarts the child, so no submission reaches one and not the other.
/// Reads go to the child, and to the reference while the child is down.
struct Tee {
    child: ProvingClient,
    reference: ProvingClient,
    gate: RwLock<()>,
    /// The first commitment of a block after genesis both nodes accepted: its round and its
    /// prover.
    committed: tokio::sync::watch::Sender<Option<(RoundKey, phase_engine::Slot, ProverIndex)>>,
    /// The event stream of the tee (the workers do not use it: nothing is sent).
    events: broadcast::Sender<ProvingEvent>,
}

/// A read from the child, or from the reference when the child does not answer at all.
macro_rules! read {
    ($tee:expr, |$c:ident| $call:expr) => {{
        let $c = &$tee.child;
        match $call.await {
            Err(e) if e.status().is_none() => {
                let $c = &$tee.reference;
                $call.await
            }
            other => other,
        }
    }};
}

impl ProvingBackend for Tee {
    async fn register_prover(
        &self,
        r: SignedProverRegistration,
    ) -> beacon_api::Result<SubmissionReceipt> {
        let _open = self.gate.read().await;
        let (child, reference) = tokio::join!(self.child.register(&r), self.reference.register(&r));
        let _ = reference;
        child
    }
    async fn submit(&self, m: ProtocolMessage) -> beacon_api::Result<SubmissionReceipt> {
        let _open = self.gate.read().await;
        let (child, reference) = tokio::join!(self.child.submit(&m), self.reference.submit(&m));
        if let (ProtocolMessage::Commitment(c), Ok(_), Ok(_)) = (&m, &child, &reference)
            && c.message.round.slot.0 > 0
        {
            self.committed.send_if_modified(|first| {
                first.is_none()
                    && first
                        .replace((c.message.round.key(), c.message.round.slot, c.message.prover))
                        .is_none()
            });
        }
        child
    }
    async fn rounds(&self, b: BlockId) -> beacon_api::Result<BlockRounds> {
        read!(self, |c| c.rounds(b))
    }
    async fn prover_duties(&self, p: ProverIndex) -> beacon_api::Result<ProverDuties> {
        read!(self, |c| c.duties(p))
    }
    async fn partial_proofs(&self, b: BlockId) -> beacon_api::Result<Vec<SignedPartialProof>> {
        read!(self, |c| c.partial_proofs(b))
    }
    async fn finalized_proof(&self, b: BlockId) -> beacon_api::Result<FinalizedProof> {
        read!(self, |c| c.finalized_proof(b))
    }
    async fn ledger(&self, b: BlockId) -> beacon_api::Result<rewards::Ledger> {
        read!(self, |c| c.ledger(b))
    }
    async fn balances(&self) -> beacon_api::Result<Vec<AccountBalance>> {
        read!(self, |c| c.balances())
    }
    async fn registry(&self) -> beacon_api::Result<Vec<RegistryEntry>> {
        read!(self, |c| c.registry())
    }
    async fn reward_config(&self) -> beacon_api::Result<rewards::RewardsFile> {
        read!(self, |c| c.reward_config())
    }
    async fn verify(&self, m: ProtocolMessage) -> beacon_api::Result<VerificationVerdict> {
        read!(self, |c| c.verify(&m))
    }
    fn subscribe(&self) -> broadcast::Receiver<ProvingEvent> {
        self.events.subscribe()
    }
}

/// A `sidecar run` child process (killed when dropped).
struct Sidecar {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Sidecar {
    async fn start(config: &Path, dir: &Path, run: u32) -> Self {
        let log = dir.join(format!("sidecar-{run}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sidecar"))
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or_default().to_owned()
    }

    /// Waits until its HTTP API answers.
    async fn wait_ready(&mut self, client: &ProvingClient) {
        let ready = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(status);
                }
                if client.registry().await.is_ok() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(status)) => panic!("sidecar run exited with {status}:\n{}", self.log_tail()),
            Err(_) => panic!("sidecar run did not answer in 60 s:\n{}", self.log_tail()),
        }
    }

    /// SIGKILL, then reap.
    async fn kill_9(&mut self) {
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "{status}");
    }
}

/// The slot of the killed round's block once settled (until then: `Slot(u64::MAX)`).
fn killed_round_slot(ledgers: &BTreeMap<Root, Ledger>, key: &RoundKey) -> phase_engine::Slot {
    ledgers.get(&key.block_root).map_or(phase_engine::Slot(u64::MAX), |l| l.slot)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The config file of the child: everything the reference node gets, through `sidecar.toml`
/// keys (`node.rewards_file`, `[[genesis.provers]]`).
fn write_config(
    dir: &Path,
    beacon_url: &str,
    http_port: u16,
    rewards: &rewards::Config,
) -> PathBuf {
    let rewards_path = dir.join("rewards.toml");
    std::fs::write(&rewards_path, rewards.to_file().to_toml_string()).unwrap();
    let mut text = format!(
        "[node]\ndata_dir = {data:?}\nhttp_address = \"127.0.0.1:{http_port}\"\n\
         rewards_file = {rewards:?}\n\n\
         [beacon]\nurls = [{beacon_url:?}]\n\n\
         [p2p]\nlisten_address = \"127.0.0.1\"\ntcp_port = 0\ndiscovery_port = 0\n\n\
         [inclusion]\nenabled = false\n\n\
         [logging]\nfilter = \"info\"\n",
        data = dir.join("data").display().to_string(),
        rewards = rewards_path.display().to_string(),
    );
    for i in 0..4 {
        let r = record(i);
        text.push_str(&format!(
            "\n[[genesis.provers]]\npubkey = \"{}\"\nstake = {}\n",
            r.pubkey, r.stake
        ));
    }
    let path = dir.join("sidecar.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `sidecar run` (a child process) and an in-process reference node follow the same devnet from
/// genesis and receive the same submissions from four honest provers (one selected per block).
/// Once the child has accepted a commitment of an open round, it is killed with SIGKILL, and
/// restarted on the same data directory. It must resume the open round, catch up with the blocks it missed, and settle every
/// block with exactly the reference node's ledger (same settlement roots, entry for entry), the
/// killed round's included.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sidecar_killed_mid_round_restarts_and_settles_like_a_node_never_killed() {
    const SLOT: u64 = 3;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    // Genesis in the future: both nodes start before the first block, so both see every block.
    let (devnet, beacon) = devnet(SLOT, Some(now.as_secs() + 6)).await;
    let dir = tempfile::tempdir().unwrap();
    // One prover per round: one full proof per round. (With two provers racing to send the
    // full proof at the same instant, nodes order them by their own millisecond arrival times, so
    // two nodes can pay the T2 sender reward to different provers, a kill or not: see the final
    // report. That race is not what this test is about.)
    let rewards = rewards_config(&[
        ("selection.redundancy_factor", 1),
        ("PROVERS_PER_PROOF", 1),
        ("phases.max_clock_disparity_ms", 100),
        ("phases.t1_ms", 800),
        ("phases.t2_ms", 900),
        // Rounds outlast the slot: the killed round is still open when the child restarts.
        ("phases.t3_ms", 1500),
        ("phases.t4_ms", 400),
        ("phases.t5_ms", 400),
    ]);
    let port = free_port();
    let config = write_config(dir.path(), &beacon.url(), port, &rewards);
    let child_url = format!("http://127.0.0.1:{port}");
    let child_client = ProvingClient::new(
        BeaconClient::builder()
            .url(child_url.clone())
            .request_timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    let mut sidecar = Sidecar::start(&config, dir.path(), 0).await;
    let reference =
        Node::spawn(node_config(&beacon.url(), &dir.path().join("reference"), rewards, 4))
            .await
            .unwrap();
    sidecar.wait_ready(&child_client).await;
    assert_eq!(
        child_client.reward_config().await.unwrap(),
        rewards.to_file(),
        "the child runs with the rewards file"
    );
    assert_eq!(child_client.registry().await.unwrap().len(), 4, "and the genesis provers");

    let (committed, mut committed_rx) = tokio::sync::watch::channel(None);
    let tee = Arc::new(Tee {
        child: child_client.clone(),
        reference: ProvingClient::new(BeaconClient::new([reference.url()]).unwrap()),
        gate: RwLock::new(()),
        committed,
        events: broadcast::channel(1).0,
    });
    let server = beacon_api::serve(
        Arc::clone(&tee),
        ProvingServerConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let behaviours = [Behaviour::Honest; 4];
    let (_provers, handles) = workers(&server.url(), &beacon.url(), &ctx_of(&devnet), &behaviours);

    // Kill once a commitment was accepted by both: its round is open (T1).
    let mut settled = reference.subscribe_settled();
    let (killed_round, killed_slot, committer) =
        tokio::time::timeout(Duration::from_secs(60), committed_rx.wait_for(Option::is_some))
            .await
            .expect("no commitment accepted in 60 s")
            .unwrap()
            .unwrap();
    {
        // No submission in flight or let through until the restarted child has caught up.
        let _closed = tee.gate.write().await;
        let status = child_client.rounds(BlockId::Root(killed_round.block_root)).await.unwrap();
        let open = status.rounds.iter().find(|r| r.key == killed_round).unwrap();
        assert!(!open.closed && open.commitments >= 1, "killed mid-round: {open:?}");
        sidecar.kill_9().await;
        // Down across a slot boundary: the restarted child has a block to catch up with.
        devnet.wait_for_slot(beacon_api::Slot::from(killed_slot.0 + 1)).await;
        sidecar = Sidecar::start(&config, dir.path(), 1).await;
        sidecar.wait_ready(&child_client).await;
        // Nothing acknowledged is lost: the replayed round still has the commitment.
        let status = child_client.rounds(BlockId::Root(killed_round.block_root)).await.unwrap();
        let kept = match status.rounds.iter().find(|r| r.key == killed_round) {
            Some(open) => open.commitments >= 1,
            None => status
                .closed
                .iter()
                .find(|o| o.key == killed_round)
                .is_some_and(|o| o.commitments.iter().any(|c| c.prover == committer)),
        };
        assert!(kept, "the accepted commitment was lost: {status:?}");
        let head = devnet.head().root;
        tokio::time::timeout(Duration::from_secs(30), async {
            while child_client.rounds(BlockId::Root(head)).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!("the restarted sidecar did not catch up:\n{}", sidecar.log_tail())
        });
    }

    // The reference settles the killed block and three more.
    let mut reference_ledgers: BTreeMap<Root, Ledger> = BTreeMap::new();
    tokio::time::timeout(Duration::from_secs(90), async {
        let mut after = 0;
        loop {
            let ledger = settled.recv().await.unwrap();
            let later = ledger.slot > killed_round_slot(&reference_ledgers, &killed_round);
            reference_ledgers.insert(ledger.block_root, ledger);
            if reference_ledgers.contains_key(&killed_round.block_root) && later {
                after += 1;
                if after >= 3 {
                    return;
                }
            }
        }
    })
    .await
    .expect("the reference node settled the killed block and three more");
    // Every block the reference settled so far (from genesis on, pruned ones from its API).
    for ledger in reference.ledgers().await.unwrap() {
        reference_ledgers.insert(ledger.block_root, ledger);
    }
    let killed = &reference_ledgers[&killed_round.block_root];
    let in_round = |e: &&LedgerEntry| {
        e.sub_block == killed_round.sub_block && e.attempt == killed_round.attempt
    };
    // The commitment accepted before the kill counts: its includer is paid (or the round was
    // finalised in T1), and its prover is not charged for a missing commitment.
    assert!(
        killed
            .entries()
            .iter()
            .filter(in_round)
            .any(|e| matches!(e.rule, Rule::RewardT1Validator | Rule::RewardFullProofValidatorT1)),
        "{killed:?}"
    );
    assert!(
        !killed
            .entries()
            .iter()
            .filter(in_round)
            .any(|e| e.rule == Rule::PenaltyT1Prover && e.account == Account::Prover(committer)),
        "{killed:?}"
    );

    // The restarted child has settled every one of them identically.
    let mut compared = BTreeSet::new();
    for (root, expected) in &reference_ledgers {
        let got = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match child_client.ledger(BlockId::Root(*root)).await {
                    Ok(l) => return l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the restarted sidecar never settled slot {}:\n{}",
                expected.slot.0,
                sidecar.log_tail()
            )
        });
        let only = |a: &Ledger, b: &Ledger| -> Vec<LedgerEntry> {
            a.entries().iter().filter(|e| !b.entries().contains(e)).copied().collect()
        };
        assert_eq!(
            got.settlement_root(),
            expected.settlement_root(),
            "slot {}: only the restarted sidecar has {:?}; only the reference has {:?}",
            expected.slot.0,
            only(&got, expected),
            only(expected, &got),
        );
        assert_eq!(&got, expected, "slot {}", expected.slot.0);
        compared.insert(expected.slot.0);
    }
    assert!(compared.len() >= 4, "{compared:?}");

    for h in handles {
        h.abort();
    }
    server.shutdown().await.unwrap();
    reference.shutdown().await.unwrap();
    sidecar.kill_9().await;
    beacon.shutdown().await.unwrap();
    drop(devnet);
}
