//! The prover worker: registers a BLS key with a sidecar, follows its duties and proves.
//!
//! Per round (one [`Duty`]): plan the block's workload from its transactions ([`plonky3_prover::block_plan`]),
//! compute the T1 trace roots of the assigned AIRs (commit only, in parallel) and send the signed
//! commitment, then prove the partials (all cores, rayon) and send them; a prover holding every
//! AIR also sends a full proof from T2. In T3 (once T2's grace is over, so that every partial
//! that counts is in and every node counts the proof for T3), if the round has no full proof yet,
//! it downloads the round's accepted partials and sends a full proof reusing other provers' parts
//! (declared in the reuse Bloom filter). If T3 cannot be completed from accepted partials (an
//! assigned prover withheld its work), the worker proves the uncovered AIRs itself once T3 and its
//! grace are over, and sends the full proof in the first fallback phase (T4). Aggregation duties
//! get the AggProof once every sub-block is proven.
//!
//! CPU work (planning, commitments, proofs, bundles) runs on a rayon pool, never on async
//! workers. A step finished after its phase's close (plus grace) is logged and counted
//! ([`WorkerStats::missed_deadlines`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beacon_api::{BeaconClient, BlockId, ProvingClient};
use phase_engine::{
    AggProof, AirCommitment, AirIndex, Capabilities, Commitment, Duty, FullProof, FullProofBody,
    PartRef, PartialProof, Phase, ProtocolMessage, ProverIndex, ProverRegistration, ReuseBloom,
    Root, RoundKey, RoundRef, SignedAggProof, SignedCommitment, SignedFullProof,
    SignedPartialProof, SignedProverRegistration, SigningContext, UnixMillis, bls,
};
use plonky3_prover::{
    AuthorKey, BlockPlan, ProofParams, Prover, SegmentParams, SegmentWorkload, SubBlockPlan,
};
use ssz_types::VariableList;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::block_input::block_input;
use super::error::{ProverError, ProverResult};
use sidecar_metrics::{Metrics, VerdictLabel};

/// Size of the reuse Bloom filter the worker sends (the protocol's maximum, 256 bytes).
pub const REUSE_BLOOM_BYTES: usize = 256;

/// How a worker behaves. Anything but [`Behaviour::Honest`] exists to exercise the protocol's
/// fault handling on devnets and in tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Follows the protocol.
    #[default]
    Honest,
    /// Registers, then never submits anything (the fallback phases must cover for it).
    Silent,
    /// Commits honestly, then in T2 submits other provers' partial proofs of its AIRs as its own
    /// (re-signed); they must be rejected and earn nothing.
    CopyPartials,
    /// Commits honestly and proves nothing; once another prover's full proof of its round is
    /// finalised, resubmits it under its own index (same parts and bundle, re-signed, with the
    /// reuse Bloom filter claiming every part as reused); it must be rejected and earn nothing.
    CopyFullProof,
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Stake declared at registration (Gwei).
    pub stake: u64,
    /// Hardware declared at registration.
    pub capabilities: Capabilities,
    /// How often duties are polled.
    pub poll_interval: Duration,
    /// Proving threads; 0 for all cores.
    pub threads: usize,
    /// STARK parameters (must match the sidecars').
    pub proof_params: ProofParams,
    /// Workload parameters (must match the sidecars').
    pub segment_params: SegmentParams,
    /// Behaviour (honest unless testing faults).
    pub behaviour: Behaviour,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            stake: 32_000_000_000,
            capabilities: Capabilities { gpu_count: 0, gpu_memory_mib: 0, max_trace_log_rows: 20 },
            poll_interval: Duration::from_millis(200),
            threads: 0,
            proof_params: ProofParams::default(),
            segment_params: SegmentParams::default(),
            behaviour: Behaviour::Honest,
        }
    }
}

/// How many refusals [`WorkerStats::rejections`] keeps (the most recent ones).
pub const REJECTIONS_KEPT: usize = 64;

/// A submission the sidecar refused, with its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What was submitted (`"commitment"`, `"partial proof"`, `"copied partial proof"`, ...).
    pub what: &'static str,
    /// The HTTP status of the refusal, when the sidecar answered one.
    pub status: Option<u16>,
    /// The error: the sidecar's `{code, message}` message, or the transport error.
    pub message: String,
}

/// Counters of a worker's work, shared with whoever watches it (the devnet display, tests).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Commitments accepted by the sidecar.
    pub commitments: AtomicU64,
    /// Partial proofs accepted.
    pub partials: AtomicU64,
    /// Full proofs accepted.
    pub full_proofs: AtomicU64,
    /// AggProofs accepted.
    pub agg_proofs: AtomicU64,
    /// Submissions the sidecar refused.
    pub rejected: AtomicU64,
    /// Steps finished after their phase closed.
    pub missed_deadlines: AtomicU64,
    /// Rounds abandoned on an error.
    pub failed_rounds: AtomicU64,
    /// Total proving time (partials), in milliseconds.
    pub proving_ms: AtomicU64,
    /// AIRs proven in a fallback phase because nobody had covered them.
    pub fallback_airs: AtomicU64,
    /// The most recent refusals (at most [`REJECTIONS_KEPT`]).
    rejections: Mutex<std::collections::VecDeque<Rejection>>,
}

impl WorkerStats {
    fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn reject(&self, rejection: Rejection) {
        Self::inc(&self.rejected);
        let mut kept = self.rejections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= REJECTIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back(rejection);
    }

    /// The most recent refusals, oldest first.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.rejections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

/// The block data and plan shared by every round of a block.
struct BlockWork {
    plan: BlockPlan,
}

struct Inner {
    key: bls::SecretKey,
    pubkey: phase_engine::BlsPublicKey,
    author: AuthorKey,
    proving: ProvingClient,
    beacon: BeaconClient,
    prover: Arc<Prover<SegmentWorkload>>,
    ctx: SigningContext,
    config: WorkerConfig,
    pool: Arc<rayon::ThreadPool>,
    index: Mutex<Option<ProverIndex>>,
    blocks: Mutex<HashMap<Root, Arc<BlockWork>>>,
    stats: Arc<WorkerStats>,
    metrics: Option<Metrics>,
}

/// A prover worker bound to one BLS key and one or more sidecars. Cheap to clone.
#[derive(Clone)]
pub struct ProverWorker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ProverWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProverWorker").field("pubkey", &self.inner.pubkey).finish_non_exhaustive()
    }
}

fn now_ms() -> UnixMillis {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    UnixMillis(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn wait_until(t: UnixMillis) -> Duration {
    Duration::from_millis(t.0.saturating_sub(now_ms().0))
}

impl ProverWorker {
    /// A worker with `key`, submitting to the sidecars of `proving` and reading blocks from
    /// `beacon`. The signing context comes from the beacon node's genesis.
    ///
    /// # Errors
    /// The genesis request failing, or invalid proving parameters.
    pub async fn connect(
        key: bls::SecretKey,
        proving: ProvingClient,
        beacon: BeaconClient,
        config: WorkerConfig,
    ) -> ProverResult<Self> {
        let genesis = beacon.genesis().await.map_err(ProverError::api("reading genesis"))?;
        let ctx = genesis.signing_context();
        Self::new(key, proving, beacon, ctx, config)
    }

    /// A worker with an explicit signing context.
    ///
    /// # Errors
    /// Invalid proving parameters or a thread pool that cannot start.
    pub fn new(
        key: bls::SecretKey,
        proving: ProvingClient,
        beacon: BeaconClient,
        ctx: SigningContext,
        config: WorkerConfig,
    ) -> ProverResult<Self> {
        let workload = SegmentWorkload::new(config.segment_params.clone())
            .map_err(ProverError::stark("workload parameters"))?;
        let prover = Prover::new(config.proof_params.clone(), workload)
            .map_err(ProverError::stark("proof parameters"))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(|i| format!("prover-{i}"))
            .build()
            .map_err(|e| ProverError::Job { reason: e.to_string() })?;
        let pubkey = key.public_key();
        Ok(Self {
            inner: Arc::new(Inner {
                author: AuthorKey(pubkey.0),
                key,
                pubkey,
                proving,
                beacon,
                prover: Arc::new(prover),
                ctx,
                config,
                pool: Arc::new(pool),
                index: Mutex::new(None),
                blocks: Mutex::new(HashMap::new()),
                stats: Arc::new(WorkerStats::default()),
                metrics: None,
            }),
        })
    }

    /// Reports proof times and missed deadlines to `metrics` too. Call before cloning.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.metrics = Some(metrics);
        }
        self
    }

    /// The worker's public key.
    pub fn pubkey(&self) -> phase_engine::BlsPublicKey {
        self.inner.pubkey
    }

    /// The worker's counters.
    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(&self.inner.stats)
    }

    /// The prover index, once registered.
    pub fn index(&self) -> Option<ProverIndex> {
        *self.inner.index.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The signed registration of this worker's key (with its proof of possession).
    pub fn registration(&self) -> SignedProverRegistration {
        let i = &self.inner;
        let message = ProverRegistration {
            pubkey: i.pubkey,
            stake: i.config.stake,
            capabilities: i.config.capabilities,
            proof_of_possession: i.key.proof_of_possession(),
        };
        SignedProverRegistration::sign(message, &i.key, &i.ctx)
    }

    /// Registers the key (idempotent: a known key gets its index back).
    ///
    /// # Errors
    /// The submission failing or answered without an index.
    pub async fn register(&self) -> ProverResult<ProverIndex> {
        let index = match self.inner.proving.register(&self.registration()).await {
            Ok(receipt) => receipt.prover_index.ok_or(ProverError::NoProverIndex)?,
            // Already known (a genesis prover, or registered through another sidecar): find
            // the key in the registry.
            Err(e) => self
                .inner
                .proving
                .registry()
                .await
                .ok()
                .and_then(|r| r.into_iter().find(|e| e.record.pubkey == self.inner.pubkey))
                .map(|e| e.index)
                .ok_or(ProverError::Api { what: "registering", source: e })?,
        };
        *self.inner.index.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(index);
        info!(prover = %index, pubkey = %self.inner.pubkey, "registered");
        Ok(index)
    }

    /// Registers (retrying until the sidecar answers) and follows duties until `shutdown`
    /// resolves.
    ///
    /// A key the sidecar does not know yet is registered and waited for until it activates.
    ///
    /// # Errors
    /// Never on network trouble (it retries); only if registration is refused for good.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> ProverResult<()> {
        tokio::pin!(shutdown);
        let mut pending = false;
        let index = loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                r = self.register() => match r {
                    Ok(index) => break index,
                    // A new key is accepted now and gets its index when it activates, at the
                    // first block after every sidecar has seen it: ask again until then.
                    Err(ProverError::NoProverIndex) => {
                        if !pending {
                            info!(pubkey = %self.inner.pubkey, "registration accepted; waiting for it to activate at the next block");
                            pending = true;
                        }
                        tokio::time::sleep(self.inner.config.poll_interval.max(Duration::from_millis(500))).await;
                    }
                    Err(e) => {
                        debug!(error = %e, "registration not answered yet; retrying");
                        tokio::time::sleep(self.inner.config.poll_interval.max(Duration::from_millis(500))).await;
                    }
                }
            }
        };
        let mut started: HashSet<RoundKey> = HashSet::new();
        let mut aggregated: HashSet<Root> = HashSet::new();
        let mut tasks = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(self.inner.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            while tasks.try_join_next().is_some() {}
            let duties = match self.inner.proving.duties(index).await {
                Ok(d) => d,
                Err(e) => {
                    debug!(error = %e, "duties not available");
                    continue;
                }
            };
            for duty in duties.duties {
                if duty.committed.is_none() && started.insert(duty.round) {
                    let me = self.clone();
                    tasks.spawn(async move { me.round_task(index, duty).await });
                }
            }
            for agg in duties.aggregation {
                if agg.ready && aggregated.insert(agg.block_root) {
                    let me = self.clone();
                    tasks.spawn(async move { me.aggregate_task(index, agg.block_root).await });
                }
            }
            // Forget old rounds: keep the sets bounded.
            if started.len() > 4096 {
                started.clear();
            }
            if aggregated.len() > 4096 {
                aggregated.clear();
            }
            self.prune_blocks(256);
        }
        tasks.shutdown().await;
        Ok(())
    }

    fn prune_blocks(&self, keep: usize) {
        let mut blocks =
            self.inner.blocks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if blocks.len() > keep {
            blocks.clear();
        }
    }

    async fn round_task(self, index: ProverIndex, duty: Duty) {
        let key = duty.round;
        if let Err(e) = self.prove_round(index, &duty).await {
            WorkerStats::inc(&self.inner.stats.failed_rounds);
            warn!(block = %key.block_root, sub_block = %key.sub_block.0, attempt = %key.attempt.0, error = %e, "round abandoned");
        }
    }

    async fn aggregate_task(self, index: ProverIndex, block_root: Root) {
        if self.inner.config.behaviour == Behaviour::Silent {
            return;
        }
        if let Err(e) = self.aggregate(index, block_root).await {
            warn!(block = %block_root, error = %e, "AggProof not built");
        }
    }

    /// Runs `f` on the proving pool and awaits it without blocking async workers.
    async fn cpu<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Prover<SegmentWorkload>) -> T + Send + 'static,
    ) -> ProverResult<T> {
        let (tx, rx) = oneshot::channel();
        let prover = Arc::clone(&self.inner.prover);
        let pool = Arc::clone(&self.inner.pool);
        pool.spawn(move || {
            let _ = tx.send(f(&prover));
        });
        rx.await.map_err(|_| ProverError::Job { reason: "the proving job was dropped".into() })
    }

    /// Proves the partial proofs of `specs` under this worker's key, in parallel on the
    /// proving pool; `what` names the step in the error.
    async fn prove_partials(
        &self,
        specs: Vec<plonky3_prover::SegmentSpec>,
        what: &'static str,
    ) -> ProverResult<Vec<plonky3_prover::PartialProof>> {
        let author = self.inner.author;
        self.cpu(move |p| {
            use rayon::prelude::*;
            specs.par_iter().map(|s| p.prove_partial(s, &author)).collect::<Result<Vec<_>, _>>()
        })
        .await?
        .map_err(ProverError::stark(what))
    }

    /// The plan of a block (fetched and computed once, then cached).
    async fn block_work(&self, block_root: Root) -> ProverResult<Arc<BlockWork>> {
        if let Some(w) = self
            .inner
            .blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&block_root)
        {
            return Ok(Arc::clone(w));
        }
        let block = self
            .inner
            .beacon
            .block(BlockId::Root(block_root))
            .await
            .map_err(ProverError::api("fetching the block"))?
            .data;
        let payload = block
            .message
            .body
            .execution_payload
            .as_ref()
            .ok_or(ProverError::NoPayload { block_root })?;
        let input = block_input(block_root, payload);
        let rounds = self
            .inner
            .proving
            .rounds(BlockId::Root(block_root))
            .await
            .map_err(ProverError::api("fetching the block's rounds"))?;
        let mut airs: BTreeMap<u32, u32> = BTreeMap::new();
        for r in &rounds.rounds {
            airs.insert(r.key.sub_block.0, r.num_airs);
        }
        let airs: Vec<u32> = airs.into_values().collect();
        if airs.is_empty() {
            return Err(ProverError::RoundView { block_root, reason: "no rounds" });
        }
        let plan = self
            .cpu(move |p| plonky3_prover::block_plan(p.workload(), &input, &airs))
            .await?
            .map_err(|e| ProverError::Plan { reason: e.to_string() })?;
        let work = Arc::new(BlockWork { plan });
        self.inner
            .blocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(block_root, Arc::clone(&work));
        Ok(work)
    }

    fn missed(&self, what: &'static str, phase: Phase, key: &RoundKey, deadline: UnixMillis) {
        let late = now_ms().0.saturating_sub(deadline.0);
        WorkerStats::inc(&self.inner.stats.missed_deadlines);
        if let Some(m) = &self.inner.metrics {
            m.message_verdict(what, VerdictLabel::Ignore, "prover_missed_deadline");
        }
        warn!(block = %key.block_root, sub_block = %key.sub_block.0, ?phase, late_ms = late, "{what} misses its deadline");
    }

    async fn submit(&self, what: &'static str, message: ProtocolMessage) -> bool {
        match self.inner.proving.submit(&message).await {
            Ok(receipt) => {
                debug!(kind = ?receipt.kind, status = ?receipt.status, "{what} submitted");
                true
            }
            Err(e) => {
                warn!(error = %e, "{what} refused");
                let message = e.api_error().map_or_else(|| e.to_string(), |b| b.message.clone());
                self.inner.stats.reject(Rejection { what, status: e.status(), message });
                false
            }
        }
    }

    fn round_ref(duty: &Duty) -> RoundRef {
        RoundRef {
            slot: duty.slot,
            block_root: duty.round.block_root,
            sub_block: duty.round.sub_block,
            attempt: duty.round.attempt,
        }
    }

    fn sub_plan(work: &BlockWork, duty: &Duty) -> ProverResult<SubBlockPlan> {
        let plan = usize::try_from(duty.round.sub_block.0)
            .ok()
            .and_then(|i| work.plan.sub_blocks.get(i))
            .ok_or(ProverError::RoundView {
                block_root: duty.round.block_root,
                reason: "sub-block out of range",
            })?;
        if plan.num_airs() != duty.num_airs {
            return Err(ProverError::RoundView {
                block_root: duty.round.block_root,
                reason: "number of AIRs differs from the plan",
            });
        }
        Ok(plan.clone())
    }

    async fn prove_round(&self, index: ProverIndex, duty: &Duty) -> ProverResult<()> {
        if self.inner.config.behaviour == Behaviour::Silent || duty.airs.is_empty() {
            return Ok(());
        }
        let key = duty.round;
        let round = Self::round_ref(duty);
        let work = self.block_work(key.block_root).await?;
        let plan = Self::sub_plan(&work, duty)?;
        let specs: Vec<_> = duty
            .airs
            .iter()
            .map(|a| {
                plan.segment(plonky3_prover::AirIndex(a.0)).copied().ok_or(ProverError::RoundView {
                    block_root: key.block_root,
                    reason: "assigned AIR out of range",
                })
            })
            .collect::<ProverResult<_>>()?;

        // T1: trace roots only, in parallel.
        let author = self.inner.author;
        let commit_specs = specs.clone();
        let roots = self
            .cpu(move |p| {
                use rayon::prelude::*;
                commit_specs.par_iter().map(|s| p.commit(s, &author)).collect::<Result<Vec<_>, _>>()
            })
            .await?
            .map_err(ProverError::stark("committing"))?;
        let t1_close = duty.deadlines.graced_close(Phase::T1);
        if now_ms() >= t1_close {
            self.missed("commitment", Phase::T1, &key, t1_close);
        }
        let mut trace_roots: Vec<AirCommitment> = duty
            .airs
            .iter()
            .zip(&roots)
            .map(|(air, root)| AirCommitment { air: *air, trace_root: Root::from(root.0) })
            .collect();
        trace_roots.sort_by_key(|c| c.air);
        let commitment = Commitment {
            round,
            prover: index,
            trace_roots: VariableList::new(trace_roots).map_err(|e| ProverError::Message {
                what: "commitment",
                reason: format!("{e:?}"),
            })?,
            full_proof: VariableList::empty(),
        };
        let signed = SignedCommitment::sign(commitment, &self.inner.key, &self.inner.ctx);
        if self.submit("commitment", ProtocolMessage::Commitment(signed)).await {
            WorkerStats::inc(&self.inner.stats.commitments);
        }

        match self.inner.config.behaviour {
            Behaviour::CopyPartials => return self.copy_partials(index, duty).await,
            Behaviour::CopyFullProof => return self.copy_full_proof(index, duty).await,
            _ => {}
        }

        // T2: the partial proofs, in parallel on all cores.
        let started = Instant::now();
        let partials = self.prove_partials(specs.clone(), "proving").await?;
        let elapsed = started.elapsed();
        self.inner
            .stats
            .proving_ms
            .fetch_add(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if let Some(m) = &self.inner.metrics {
            m.observe_proof_time(elapsed);
        }
        let t2_close = duty.deadlines.graced_close(Phase::T2);
        if now_ms() >= t2_close {
            self.missed("partial_proof", Phase::T2, &key, t2_close);
        }
        for (air, proof) in duty.airs.iter().zip(&partials) {
            let message = PartialProof {
                round,
                prover: index,
                air: *air,
                trace_root: Root::from(proof.trace_root().0),
                proof: VariableList::new(proof.as_bytes().to_vec()).map_err(|e| {
                    ProverError::Message { what: "partial proof", reason: format!("{e:?}") }
                })?,
            };
            let signed = SignedPartialProof::sign(message, &self.inner.key, &self.inner.ctx);
            if self.submit("partial proof", ProtocolMessage::PartialProof(signed)).await {
                WorkerStats::inc(&self.inner.stats.partials);
            }
        }

        // Holding every AIR: the full proof, from T2 on.
        if usize::try_from(duty.num_airs).ok() == Some(duty.airs.len()) {
            tokio::time::sleep(wait_until(duty.deadlines.open(Phase::T2))).await;
            let own: Vec<(AirIndex, ProverIndex, plonky3_prover::PartialProof)> =
                duty.airs.iter().copied().zip(partials).map(|(a, p)| (a, index, p)).collect();
            self.send_full_proof(index, round, &plan, own, &duty.deadlines).await?;
            return Ok(());
        }

        // T3: combine the round's partials if nobody has finalised it. Waits for T2's grace to
        // pass: every partial that counts is in, and every node counts the proof for T3.
        tokio::time::sleep(wait_until(duty.deadlines.graced_close(Phase::T2))).await;
        if self.aggregate_round(index, duty, round, &plan, &partials, false).await? {
            return Ok(());
        }
        // T4 (first fallback): T3 could not be completed from accepted partials; prove the AIRs
        // nobody covered and send the full proof.
        tokio::time::sleep(wait_until(duty.deadlines.graced_close(Phase::T3))).await;
        self.aggregate_round(index, duty, round, &plan, &partials, true).await.map(drop)
    }

    /// Sends a full proof of the round built from `own` partials and the round's accepted ones,
    /// unless the round is finalised or closed already. Without `prove_missing`, gives up if an
    /// AIR has no partial; with it, proves such AIRs itself. Returns whether the round needs
    /// nothing more from this worker (finalised, closed, or a full proof sent).
    async fn aggregate_round(
        &self,
        index: ProverIndex,
        duty: &Duty,
        round: RoundRef,
        plan: &SubBlockPlan,
        own: &[plonky3_prover::PartialProof],
        prove_missing: bool,
    ) -> ProverResult<bool> {
        let key = duty.round;
        let status = self
            .inner
            .proving
            .rounds(BlockId::Root(key.block_root))
            .await
            .map_err(ProverError::api("fetching the round"))?;
        let done = status
            .rounds
            .iter()
            .find(|r| r.key == key)
            .is_none_or(|r| r.finalized_in.is_some() || r.closed);
        if done {
            return Ok(true);
        }
        let mut parts: BTreeMap<AirIndex, (ProverIndex, plonky3_prover::PartialProof)> =
            BTreeMap::new();
        for (air, p) in duty.airs.iter().zip(own) {
            parts.insert(*air, (index, p.clone()));
        }
        let downloaded = self
            .inner
            .proving
            .partial_proofs(BlockId::Root(key.block_root))
            .await
            .map_err(ProverError::api("downloading partial proofs"))?;
        for signed in downloaded {
            let m = signed.message;
            if m.round.key() != key || parts.contains_key(&m.air) {
                continue;
            }
            match plonky3_prover::PartialProof::from_bytes(&m.proof) {
                Ok(p) => {
                    parts.insert(m.air, (m.prover, p));
                }
                Err(e) => debug!(air = m.air.0, error = %e, "undecodable partial skipped"),
            }
        }
        let missing: Vec<AirIndex> =
            (0..duty.num_airs).map(AirIndex).filter(|a| !parts.contains_key(a)).collect();
        if !missing.is_empty() {
            if !prove_missing {
                debug!(
                    have = parts.len(),
                    need = duty.num_airs,
                    "not enough partials for a full proof"
                );
                return Ok(false);
            }
            info!(block = %key.block_root, sub_block = %key.sub_block.0, airs = missing.len(), "proving the AIRs nobody covered");
            let specs = missing
                .iter()
                .map(|a| {
                    plan.segment(plonky3_prover::AirIndex(a.0)).copied().ok_or(
                        ProverError::RoundView {
                            block_root: key.block_root,
                            reason: "AIR out of range",
                        },
                    )
                })
                .collect::<ProverResult<Vec<_>>>()?;
            let proofs = self.prove_partials(specs, "proving uncovered AIRs").await?;
            for (air, proof) in missing.into_iter().zip(proofs) {
                WorkerStats::inc(&self.inner.stats.fallback_airs);
                parts.insert(air, (index, proof));
            }
        }
        let parts = parts.into_iter().map(|(a, (i, p))| (a, i, p)).collect();
        self.send_full_proof(index, round, plan, parts, &duty.deadlines).await?;
        Ok(true)
    }

    async fn send_full_proof(
        &self,
        index: ProverIndex,
        round: RoundRef,
        plan: &SubBlockPlan,
        parts: Vec<(AirIndex, ProverIndex, plonky3_prover::PartialProof)>,
        deadlines: &phase_engine::Deadlines,
    ) -> ProverResult<()> {
        let refs: Vec<PartRef> =
            parts.iter().map(|(air, author, _)| PartRef { author: *author, air: *air }).collect();
        let reused: Vec<&PartRef> = refs.iter().filter(|r| r.author != index).collect();
        let bloom = ReuseBloom::from_parts(REUSE_BLOOM_BYTES, reused);
        let author = self.inner.author;
        let plan = plan.clone();
        let proofs: Vec<_> = parts.into_iter().map(|(_, _, p)| p).collect();
        let bundle = self
            .cpu(move |_| plonky3_prover::FullProof::build(author, &plan, proofs))
            .await?
            .map_err(ProverError::stark("building the full proof"))?;
        let body = FullProofBody {
            parts: VariableList::new(refs).map_err(|e| ProverError::Message {
                what: "full proof",
                reason: format!("{e:?}"),
            })?,
            reuse_bloom: VariableList::new(bloom.as_bytes().to_vec()).map_err(|e| {
                ProverError::Message { what: "full proof", reason: format!("{e:?}") }
            })?,
            bundle: VariableList::new(bundle.as_bytes().to_vec()).map_err(|e| {
                ProverError::Message { what: "full proof", reason: format!("{e:?}") }
            })?,
        };
        let close = deadlines.graced_close(Phase::T5);
        if now_ms() >= close {
            self.missed("full_proof", Phase::T5, &round.key(), close);
        }
        let message = FullProof { round, submitter: index, body };
        let signed = SignedFullProof::sign(message, &self.inner.key, &self.inner.ctx);
        if self.submit("full proof", ProtocolMessage::FullProof(signed)).await {
            WorkerStats::inc(&self.inner.stats.full_proofs);
        }
        Ok(())
    }

    /// Fault injection: re-sign other provers' partials of our AIRs as ours.
    async fn copy_partials(&self, index: ProverIndex, duty: &Duty) -> ProverResult<()> {
        let key = duty.round;
        let deadline = duty.deadlines.graced_close(Phase::T2);
        while now_ms() < deadline {
            let downloaded = self
                .inner
                .proving
                .partial_proofs(BlockId::Root(key.block_root))
                .await
                .map_err(ProverError::api("downloading partial proofs"))?;
            let stolen: Vec<_> = downloaded
                .into_iter()
                .filter(|s| {
                    s.message.round.key() == key
                        && s.message.prover != index
                        && duty.airs.contains(&s.message.air)
                })
                .collect();
            if !stolen.is_empty() {
                for s in stolen {
                    let mut message = s.message;
                    message.prover = index;
                    let signed =
                        SignedPartialProof::sign(message, &self.inner.key, &self.inner.ctx);
                    if self
                        .submit("copied partial proof", ProtocolMessage::PartialProof(signed))
                        .await
                    {
                        WorkerStats::inc(&self.inner.stats.partials);
                    }
                }
                return Ok(());
            }
            tokio::time::sleep(self.inner.config.poll_interval).await;
        }
        Ok(())
    }

    /// Fault injection: resubmit another prover's finalised full proof of the round as ours.
    async fn copy_full_proof(&self, index: ProverIndex, duty: &Duty) -> ProverResult<()> {
        let key = duty.round;
        tokio::time::sleep(wait_until(duty.deadlines.open(Phase::T2))).await;
        let deadline = duty.deadlines.graced_close(Phase::T5);
        while now_ms() < deadline {
            // Not found until the block's rounds are finalised.
            let original =
                match self.inner.proving.finalized_proof(BlockId::Root(key.block_root)).await {
                    Ok(f) => f.full_proofs.iter().find(|f| f.message.round.key() == key).cloned(),
                    Err(_) => None,
                };
            if let Some(original) = original.filter(|f| f.message.submitter != index) {
                let parts: Vec<PartRef> = original.message.body.parts.iter().copied().collect();
                let bloom = ReuseBloom::from_parts(
                    REUSE_BLOOM_BYTES,
                    parts.iter().filter(|p| p.author != index),
                );
                let mut message = original.message;
                message.submitter = index;
                message.body.reuse_bloom =
                    VariableList::new(bloom.as_bytes().to_vec()).map_err(|e| {
                        ProverError::Message { what: "copied full proof", reason: format!("{e:?}") }
                    })?;
                let signed = SignedFullProof::sign(message, &self.inner.key, &self.inner.ctx);
                if self.submit("copied full proof", ProtocolMessage::FullProof(signed)).await {
                    WorkerStats::inc(&self.inner.stats.full_proofs);
                }
                return Ok(());
            }
            tokio::time::sleep(self.inner.config.poll_interval).await;
        }
        Ok(())
    }

    /// Builds and submits the AggProof of a block whose sub-blocks are all proven.
    async fn aggregate(&self, index: ProverIndex, block_root: Root) -> ProverResult<()> {
        let work = self.block_work(block_root).await?;
        let finalized = self
            .inner
            .proving
            .finalized_proof(BlockId::Root(block_root))
            .await
            .map_err(ProverError::api("downloading the finalised full proofs"))?;
        if !finalized.agg_proof.is_empty() {
            return Ok(());
        }
        let mut fulls = Vec::with_capacity(finalized.full_proofs.len());
        for f in finalized.full_proofs.iter() {
            fulls.push(
                plonky3_prover::FullProof::from_bytes(&f.message.body.bundle)
                    .map_err(ProverError::stark("decoding a finalised full proof"))?,
            );
        }
        let author = self.inner.author;
        let plan = work.plan.clone();
        let agg = self
            .cpu(move |_| plonky3_prover::AggProof::build(author, &plan, fulls))
            .await?
            .map_err(ProverError::stark("building the AggProof"))?;
        let message = AggProof {
            slot: finalized.slot,
            block_root,
            submitter: index,
            bundle: VariableList::new(agg.as_bytes().to_vec())
                .map_err(|e| ProverError::Message { what: "AggProof", reason: format!("{e:?}") })?,
        };
        let signed = SignedAggProof::sign(message, &self.inner.key, &self.inner.ctx);
        if self.submit("AggProof", ProtocolMessage::AggProof(signed)).await {
            WorkerStats::inc(&self.inner.stats.agg_proofs);
        }
        Ok(())
    }
}
