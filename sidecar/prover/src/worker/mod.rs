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
//!
//! The worker's steps are split by concern: [`config`] and [`stats`] (its settings and counters),
//! `round` (T1–T3 of one round), `aggregate` (a block's AggProof), `faults` (fault injection).

mod aggregate;
mod config;
mod faults;
mod round;
mod stats;

pub use config::{Behaviour, REUSE_BLOOM_BYTES, WorkerConfig};
pub use stats::{REJECTIONS_KEPT, Rejection, WorkerStats};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use beacon_api::{BeaconClient, BlockId, ProvingClient};
use phase_engine::{
    Duty, Phase, ProtocolMessage, ProverIndex, ProverRegistration, Root, RoundKey, RoundRef,
    SignedProverRegistration, SigningContext, UnixMillis, bls,
};
use plonky3_prover::{AuthorKey, BlockPlan, Prover, SegmentWorkload, SubBlockPlan};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::block_input::block_input;
use crate::error::{ProverError, ProverResult};
use sidecar_metrics::{Metrics, VerdictLabel};

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
}
