//! A scenario harness on a virtual clock (feature `test-utils`), shared by this crate's tests,
//! `rewards` and the simulator.
//!
//! [`Scenario`] owns an [`Engine`] with `N` registered provers whose BLS keys are derived from
//! their index ([`secret_key`]), adds beacon blocks at their slot start, builds correctly signed
//! messages for any prover, and delivers them at a given time. Verification requests are
//! answered by a [`Verifier`]: signatures are really checked with BLS; STARK checks are answered
//! "valid" unless the test marked the proof invalid (proof bytes are opaque to the engine, so the
//! verdict is the test's input — that is the engine's contract). Time only moves when the test
//! says so: [`Scenario::advance_to`] walks the engine's timeouts up to the target.
//!
//! ```
//! use phase_engine::{EngineConfig, Phase, test_utils::Scenario};
//!
//! let mut s = Scenario::new(EngineConfig::default(), 8);
//! let block = s.add_block(1, 10_000_000).unwrap();
//! let key = s.round_keys(&block.root)[0];
//! let provers = s.selected(&key);
//! // Everybody commits in T1, the first prover attaches a full proof made of its own parts.
//! let t = s.time_in(&key, Phase::T1, 100);
//! let parts = s.own_parts(&key, provers[0]);
//! s.deliver(s.commitment_with_full_proof(&key, provers[0], &parts), t).unwrap();
//! for p in &provers[1..] {
//!     s.deliver(s.commitment(&key, *p), t).unwrap();
//! }
//! s.add_block(2, 0).unwrap();
//! s.add_block(3, 0).unwrap();
//! let outcome = s.run_until_outcome(&block.root).unwrap();
//! assert_eq!(outcome.rounds[0].finalized_in, Some(Phase::T1));
//! ```

// Test harness arithmetic works on small, test-chosen numbers.
#![allow(clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::{
    actions::{
        Action, BlockInfo, Progress, ProverRecord, RequestId, RoundStart, StarkTarget, Verdict,
    },
    bloom::ReuseBloom,
    bls::{self, SecretKey},
    config::EngineConfig,
    engine::Engine,
    error::{Error, Result},
    messages::{
        AggProof, AirCommitment, Capabilities, Commitment, Decline, FullProof, FullProofBody,
        PartialProof, ProtocolMessage, ProverRegistration, RoundRef, SignedAggProof,
        SignedCommitment, SignedDecline, SignedFullProof, SignedPartialProof,
        SignedProverRegistration,
    },
    outcome::{BlockOutcome, PartRef, RoundKey},
    signing::SigningContext,
    types::{AirIndex, Phase, ProverIndex, Root, Slot, UnixMillis, ValidatorIndex},
};

/// Genesis time of the scenarios (ms).
pub const GENESIS_MILLIS: u64 = 1_700_000_000_000;
/// Slot length of the scenarios (ms).
pub const SLOT_MILLIS: u64 = 12_000;
/// Stake of every scenario prover.
pub const STAKE: u64 = 32_000_000_000;
/// Size of the reuse Bloom filters the harness builds.
pub const BLOOM_BYTES: usize = 64;

fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(tag);
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// A small network for tests: 4 provers per proof, redundancy 2, one retry, AggProof groups
/// of 2.
pub fn small_network_config() -> EngineConfig {
    EngineConfig {
        provers_per_proof: 4,
        provers_per_aggproof: 2,
        redundancy_factor: 2,
        max_retries: 1,
        ..EngineConfig::default()
    }
}

/// The deterministic BLS key of scenario prover `index`.
pub fn secret_key(index: u64) -> SecretKey {
    let ikm = tagged_hash(b"phase-engine test key", &[&index.to_le_bytes()]);
    // key_gen accepts any 32-byte input key material.
    SecretKey::from_ikm(&ikm).unwrap_or_else(|_| unreachable!("32-byte IKM is always accepted"))
}

/// The signing context of the scenarios.
pub fn signing_context() -> SigningContext {
    SigningContext {
        fork_version: [0x10, 0, 0, 0x38],
        genesis_validators_root: Root::from(tagged_hash(b"genesis", &[])),
    }
}

/// Start of `slot`.
pub fn slot_start(slot: u64) -> UnixMillis {
    UnixMillis(GENESIS_MILLIS + slot * SLOT_MILLIS)
}

/// Proposer of the scenario block at `slot`: validator `1000 + slot`.
pub fn proposer(slot: u64) -> ValidatorIndex {
    ValidatorIndex(1000 + slot)
}

/// Root of the scenario block at `slot`.
pub fn block_root(slot: u64) -> Root {
    Root::from(tagged_hash(b"block", &[&slot.to_le_bytes()]))
}

/// The scenario block at `slot`.
pub fn block_info(slot: u64, gas_used: u64) -> BlockInfo {
    BlockInfo {
        slot: Slot(slot),
        root: block_root(slot),
        parent_root: block_root(slot.saturating_sub(1)),
        proposer: proposer(slot),
        randao_mix: Root::from(tagged_hash(b"randao", &[&slot.to_le_bytes()])),
        gas_used,
        slot_start: slot_start(slot),
    }
}

/// The trace root prover `prover` commits for `air` in `key` (distinct per prover, round, AIR).
pub fn trace_root(key: &RoundKey, prover: ProverIndex, air: AirIndex) -> Root {
    Root::from(tagged_hash(
        b"trace",
        &[
            key.block_root.as_slice(),
            &key.sub_block.0.to_le_bytes(),
            &key.attempt.0.to_le_bytes(),
            &prover.0.to_le_bytes(),
            &air.0.to_le_bytes(),
        ],
    ))
}

/// Opaque stand-in proof bytes (the engine never reads them; the [`Verifier`] decides).
pub fn proof_bytes(tag: &[u8], prover: ProverIndex) -> Vec<u8> {
    tagged_hash(tag, &[&prover.0.to_le_bytes()]).to_vec()
}

/// A registration signed by scenario key `index`.
pub fn registration(index: u64, stake: u64, ctx: &SigningContext) -> SignedProverRegistration {
    let key = secret_key(index);
    SignedProverRegistration::sign(
        ProverRegistration {
            pubkey: key.public_key(),
            stake,
            capabilities: Capabilities {
                gpu_count: 1,
                gpu_memory_mib: 24_576,
                max_trace_log_rows: 20,
            },
            proof_of_possession: key.proof_of_possession(),
        },
        &key,
        ctx,
    )
}

/// A proof the [`Verifier`] should judge invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The partial proof of `prover` for `air`.
    Partial {
        /// Author.
        prover: ProverIndex,
        /// AIR.
        air: AirIndex,
    },
    /// The full proof of `submitter` (any round).
    FullProof {
        /// Submitter.
        submitter: ProverIndex,
    },
    /// The AggProof of `submitter`.
    AggProof {
        /// Submitter.
        submitter: ProverIndex,
    },
}

/// Answers verification requests: BLS for real, STARK valid unless marked as a [`Fault`].
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    faults: BTreeSet<Fault>,
}

impl Verifier {
    /// Marks a proof invalid.
    pub fn fail(&mut self, fault: Fault) {
        self.faults.insert(fault);
    }

    /// The verdict for a verification action, `None` for other actions.
    pub fn verdict(&self, action: &Action) -> Option<Verdict> {
        match action {
            Action::VerifySignature(check) => {
                Some(Verdict { request: check.request, valid: bls::verify_check(check) })
            }
            Action::VerifyStark(check) => {
                let fault = match &check.target {
                    StarkTarget::Partial { author, air, .. } => {
                        Fault::Partial { prover: *author, air: *air }
                    }
                    StarkTarget::FullProof { submitter, .. } => {
                        Fault::FullProof { submitter: *submitter }
                    }
                    StarkTarget::AggProof { submitter, .. } => {
                        Fault::AggProof { submitter: *submitter }
                    }
                };
                Some(Verdict { request: check.request, valid: !self.faults.contains(&fault) })
            }
            _ => None,
        }
    }
}

/// A scenario: an engine, its provers' keys, a verifier and a virtual clock.
#[derive(Debug)]
pub struct Scenario {
    /// The engine under test.
    pub engine: Engine,
    /// The verifier answering requests.
    pub verifier: Verifier,
    /// Every action other than verification requests, in order.
    pub log: Vec<Action>,
    /// Rejections that came back from verification of messages other than the one being
    /// delivered (for example the full proof attached to a commitment).
    pub async_rejections: Vec<Error>,
    /// Block outcomes, in order.
    pub outcomes: Vec<BlockOutcome>,
    ctx: SigningContext,
    keys: Vec<SecretKey>,
    now: UnixMillis,
}

impl Scenario {
    /// An engine with `num_provers` active provers (indices `0..num_provers`).
    pub fn new(config: EngineConfig, num_provers: u64) -> Self {
        let ctx = signing_context();
        let mut engine = Engine::new(config, ctx);
        let mut keys = Vec::new();
        for i in 0..num_provers {
            let key = secret_key(i);
            engine
                .add_prover(ProverRecord {
                    pubkey: key.public_key(),
                    stake: STAKE,
                    capabilities: Capabilities::default(),
                    active: true,
                    reputation: 0,
                })
                .unwrap_or_else(|e| unreachable!("distinct keys: {e}"));
            keys.push(key);
        }
        Self {
            engine,
            verifier: Verifier::default(),
            log: Vec::new(),
            async_rejections: Vec::new(),
            outcomes: Vec::new(),
            ctx,
            keys,
            now: UnixMillis(0),
        }
    }

    /// The signing context.
    pub fn ctx(&self) -> &SigningContext {
        &self.ctx
    }

    /// The virtual time now.
    pub fn now(&self) -> UnixMillis {
        self.now
    }

    /// The key of scenario prover `prover`.
    pub fn key(&self, prover: ProverIndex) -> SecretKey {
        usize::try_from(prover.0)
            .ok()
            .and_then(|i| self.keys.get(i).cloned())
            .unwrap_or_else(|| secret_key(prover.0))
    }

    /// Answers every queued verification request, logs every other action.
    pub fn pump(&mut self) -> Vec<(RequestId, Result<Progress>)> {
        let mut results = Vec::new();
        while let Some(action) = self.engine.poll_action() {
            if let Some(verdict) = self.verifier.verdict(&action) {
                let result = self.engine.on_verification(verdict);
                results.push((verdict.request, result));
            } else {
                if let Action::BlockOutcome(outcome) = &action {
                    self.outcomes.push((**outcome).clone());
                }
                self.log.push(action);
            }
        }
        results
    }

    /// Moves the clock to `t`, ticking the engine at every timeout on the way.
    pub fn advance_to(&mut self, t: UnixMillis) {
        while let Some(next) = self.engine.poll_timeout() {
            if next > t {
                break;
            }
            self.now = self.now.max(next);
            self.engine.on_tick(next);
            self.collect_async();
        }
        self.now = self.now.max(t);
        self.engine.on_tick(self.now);
        self.collect_async();
    }

    fn collect_async(&mut self) {
        for (_, r) in self.pump() {
            if let Err(e) = r {
                self.async_rejections.push(e);
            }
        }
    }

    /// Adds the scenario block at `slot` at its slot start (moving the clock there).
    pub fn add_block(&mut self, slot: u64, gas_used: u64) -> Result<BlockInfo> {
        let info = block_info(slot, gas_used);
        self.add_block_info(info)?;
        Ok(info)
    }

    /// Adds a block, moving the clock to its slot start.
    pub fn add_block_info(&mut self, info: BlockInfo) -> Result<()> {
        self.advance_to(info.slot_start);
        let result = self.engine.on_block(info, self.now);
        self.collect_async();
        result
    }

    /// Delivers a message at `at` (moving the clock there) and answers its verification
    /// requests; returns its final verdict: `Ok(())` if accepted, else the rejection.
    pub fn deliver(&mut self, message: impl Into<ProtocolMessage>, at: UnixMillis) -> Result<()> {
        self.advance_to(at);
        let waiting = self.engine.on_message(message.into(), self.now)?;
        self.settle_request(waiting)
    }

    /// [`Scenario::deliver`] through [`Engine::on_included_message`]: the message as a canonical
    /// inclusion record states it, at `at`, credited to `includer`.
    pub fn deliver_included(
        &mut self,
        message: impl Into<ProtocolMessage>,
        at: UnixMillis,
        includer: ValidatorIndex,
    ) -> Result<()> {
        self.advance_to(at);
        let sealed = self.engine.sealer().seal(message.into());
        let waiting = self.engine.on_included_message(sealed, self.now, includer)?;
        self.settle_request(waiting)
    }

    /// [`Scenario::deliver`] through [`Engine::on_sealed_message`]: the message sealed by
    /// `sealer` (the engine's own, or one of another signing context).
    pub fn deliver_sealed(
        &mut self,
        message: impl Into<ProtocolMessage>,
        sealer: &crate::Sealer,
        at: UnixMillis,
    ) -> Result<()> {
        self.advance_to(at);
        let waiting = self.engine.on_sealed_message(sealer.seal(message.into()), self.now)?;
        self.settle_request(waiting)
    }

    /// [`Scenario::deliver`] through [`Engine::on_verified_message`]: the message sealed by
    /// `sealer`, its signature taken as checked (no signature request is queued).
    pub fn deliver_verified(
        &mut self,
        message: impl Into<ProtocolMessage>,
        sealer: &crate::Sealer,
        at: UnixMillis,
    ) -> Result<()> {
        self.advance_to(at);
        let progress = self.engine.on_verified_message(sealer.seal(message.into()), self.now)?;
        if self.engine_queues_signature_check() {
            return Err(Error::UnknownRequest { request: RequestId(u64::MAX) });
        }
        match progress {
            Progress::Pending(waiting) => self.settle_request(waiting),
            Progress::Accepted(_) => {
                for (_, result) in self.pump() {
                    if let Err(e) = result {
                        self.async_rejections.push(e);
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether a signature check waits in the engine's action queue (none may after
    /// [`Engine::on_verified_message`]).
    fn engine_queues_signature_check(&self) -> bool {
        self.engine.queued_signature_checks() > 0
    }

    /// Answers the verification requests until `waiting` (a message's request) is decided.
    fn settle_request(&mut self, mut waiting: RequestId) -> Result<()> {
        let mut outcome: Option<Result<()>> = None;
        loop {
            let results = self.pump();
            if results.is_empty() {
                break;
            }
            for (request, result) in results {
                if request == waiting && outcome.is_none() {
                    match result {
                        Ok(Progress::Pending(next)) => waiting = next,
                        Ok(_) => outcome = Some(Ok(())),
                        Err(e) => outcome = Some(Err(e)),
                    }
                } else if let Err(e) = result {
                    self.async_rejections.push(e);
                }
            }
        }
        outcome.unwrap_or(Err(Error::UnknownRequest { request: waiting }))
    }

    /// Registers a new prover through the signed-registration path (scenario key `index`).
    pub fn register(&mut self, index: u64, at: UnixMillis) -> Result<ProverIndex> {
        self.advance_to(at);
        let reg = registration(index, STAKE, &self.ctx);
        let request = self.engine.on_registration(reg, self.now)?;
        let mut got = Err(Error::UnknownRequest { request });
        for (r, result) in self.pump() {
            if r == request {
                got = result.map(|p| match p {
                    Progress::Accepted(a) => a.prover,
                    Progress::Pending(_) => ProverIndex(u64::MAX),
                });
            }
        }
        let prover = got?;
        let key = secret_key(index);
        if usize::try_from(prover.0).ok() == Some(self.keys.len()) {
            self.keys.push(key);
        }
        Ok(prover)
    }

    /// Ticks until the outcome of `block_root` is out (at most ten minutes of virtual time) and
    /// returns it.
    pub fn run_until_outcome(&mut self, block_root: &Root) -> Option<BlockOutcome> {
        let limit = UnixMillis(self.now.0.saturating_add(600_000));
        loop {
            if let Some(o) = self.outcomes.iter().find(|o| o.block_root == *block_root) {
                return Some(o.clone());
            }
            match self.engine.poll_timeout() {
                Some(t) if t <= limit => self.advance_to(t),
                _ => return None,
            }
        }
    }

    /// Every `RoundStarted` so far.
    pub fn round_starts(&self) -> Vec<&RoundStart> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::RoundStarted(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The start of a round.
    pub fn round_start(&self, key: &RoundKey) -> Option<&RoundStart> {
        self.round_starts().into_iter().find(|s| s.key == *key)
    }

    /// Keys of the attempt-0 rounds of a block, by sub-block.
    pub fn round_keys(&self, block_root: &Root) -> Vec<RoundKey> {
        self.round_starts()
            .into_iter()
            .filter(|s| s.key.block_root == *block_root && s.key.attempt.0 == 0)
            .map(|s| s.key)
            .collect()
    }

    /// The selected provers of a round.
    pub fn selected(&self, key: &RoundKey) -> Vec<ProverIndex> {
        self.round_start(key).map(|s| s.selected.clone()).unwrap_or_default()
    }

    /// The AIRs assigned to `prover` in a round.
    pub fn assignment(&self, key: &RoundKey, prover: ProverIndex) -> Vec<AirIndex> {
        self.round_start(key)
            .and_then(|s| {
                s.selected.iter().position(|p| *p == prover).and_then(|i| s.assignments.get(i))
            })
            .cloned()
            .unwrap_or_default()
    }

    /// The aggregator group of a block.
    pub fn aggregators(&self, block_root: &Root) -> Vec<ProverIndex> {
        self.log
            .iter()
            .find_map(|a| match a {
                Action::AggregatorsSelected { block_root: r, aggregators } if r == block_root => {
                    Some(aggregators.clone())
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// `offset_ms` after the nominal opening of `phase` in a round.
    pub fn time_in(&self, key: &RoundKey, phase: Phase, offset_ms: u64) -> UnixMillis {
        let start = self.round_start(key).map(|s| s.start).unwrap_or_default();
        let w = &self.engine.config().phases;
        let lens = [w.t1_ms, w.t2_ms, w.t3_ms, w.t4_ms, w.t5_ms];
        let before: u64 = lens.iter().take(phase.ordinal()).sum();
        UnixMillis(start.0 + before + offset_ms)
    }

    fn round_ref(&self, key: &RoundKey) -> RoundRef {
        let slot = self
            .round_start(key)
            .map(|s| s.slot)
            .or_else(|| self.engine.round_status(key).map(|s| s.slot))
            .or_else(|| {
                self.round_starts()
                    .into_iter()
                    .find(|s| s.key.block_root == key.block_root)
                    .map(|s| s.slot)
            })
            .unwrap_or_default();
        RoundRef {
            slot,
            block_root: key.block_root,
            sub_block: key.sub_block,
            attempt: key.attempt,
        }
    }

    /// Parts where `submitter` authored every AIR of the round.
    pub fn own_parts(&self, key: &RoundKey, submitter: ProverIndex) -> Vec<PartRef> {
        let n = self.round_start(key).map(|s| s.num_airs).unwrap_or(0);
        (0..n).map(|a| PartRef { author: submitter, air: AirIndex(a) }).collect()
    }

    /// Parts taking each AIR from the first selected prover it is assigned to, except those
    /// `submitter` holds itself.
    pub fn assigned_parts(&self, key: &RoundKey, submitter: ProverIndex) -> Vec<PartRef> {
        let Some(start) = self.round_start(key) else { return Vec::new() };
        (0..start.num_airs)
            .map(AirIndex)
            .map(|air| {
                let holders: Vec<ProverIndex> = start
                    .selected
                    .iter()
                    .zip(&start.assignments)
                    .filter(|(_, airs)| airs.contains(&air))
                    .map(|(p, _)| *p)
                    .collect();
                let author = if holders.contains(&submitter) {
                    submitter
                } else {
                    holders.first().copied().unwrap_or(submitter)
                };
                PartRef { author, air }
            })
            .collect()
    }

    /// A full-proof body over `parts`, with the Bloom filter of those reused by `submitter`.
    pub fn full_body(&self, submitter: ProverIndex, parts: &[PartRef]) -> FullProofBody {
        let reused: Vec<&PartRef> = parts.iter().filter(|p| p.author != submitter).collect();
        let bloom = ReuseBloom::from_parts(BLOOM_BYTES, reused);
        FullProofBody {
            parts: parts.to_vec().try_into().unwrap_or_default(),
            reuse_bloom: bloom.as_bytes().to_vec().try_into().unwrap_or_default(),
            bundle: proof_bytes(b"bundle", submitter).try_into().unwrap_or_default(),
        }
    }

    /// The commitment of `prover` to its assigned AIRs ([`trace_root`]s).
    pub fn commitment(&self, key: &RoundKey, prover: ProverIndex) -> SignedCommitment {
        self.commitment_inner(key, prover, None)
    }

    /// The commitment of `prover` with a full proof over `parts` attached.
    pub fn commitment_with_full_proof(
        &self,
        key: &RoundKey,
        prover: ProverIndex,
        parts: &[PartRef],
    ) -> SignedCommitment {
        self.commitment_inner(key, prover, Some(self.full_body(prover, parts)))
    }

    /// A commitment with arbitrary trace roots (for equivocation and mismatch tests).
    pub fn commitment_with_roots(
        &self,
        key: &RoundKey,
        prover: ProverIndex,
        roots: &[(AirIndex, Root)],
    ) -> SignedCommitment {
        let message = Commitment {
            round: self.round_ref(key),
            prover,
            trace_roots: roots
                .iter()
                .map(|(air, trace_root)| AirCommitment { air: *air, trace_root: *trace_root })
                .collect::<Vec<_>>()
                .try_into()
                .unwrap_or_default(),
            full_proof: Default::default(),
        };
        SignedCommitment::sign(message, &self.key(prover), &self.ctx)
    }

    fn commitment_inner(
        &self,
        key: &RoundKey,
        prover: ProverIndex,
        full: Option<FullProofBody>,
    ) -> SignedCommitment {
        let roots: Vec<AirCommitment> = self
            .assignment(key, prover)
            .into_iter()
            .map(|air| AirCommitment { air, trace_root: trace_root(key, prover, air) })
            .collect();
        let message = Commitment {
            round: self.round_ref(key),
            prover,
            trace_roots: roots.try_into().unwrap_or_default(),
            full_proof: full.into_iter().collect::<Vec<_>>().try_into().unwrap_or_default(),
        };
        SignedCommitment::sign(message, &self.key(prover), &self.ctx)
    }

    /// The decline of `prover`.
    pub fn decline(&self, key: &RoundKey, prover: ProverIndex) -> SignedDecline {
        SignedDecline::sign(
            Decline { round: self.round_ref(key), prover },
            &self.key(prover),
            &self.ctx,
        )
    }

    /// The partial proof of `prover` for `air`, opening its [`trace_root`].
    pub fn partial(
        &self,
        key: &RoundKey,
        prover: ProverIndex,
        air: AirIndex,
    ) -> SignedPartialProof {
        let message = PartialProof {
            round: self.round_ref(key),
            prover,
            air,
            trace_root: trace_root(key, prover, air),
            proof: proof_bytes(b"partial", prover).try_into().unwrap_or_default(),
        };
        SignedPartialProof::sign(message, &self.key(prover), &self.ctx)
    }

    /// A standalone full proof of `submitter` over `parts`.
    pub fn full_proof(
        &self,
        key: &RoundKey,
        submitter: ProverIndex,
        parts: &[PartRef],
    ) -> SignedFullProof {
        let message = FullProof {
            round: self.round_ref(key),
            submitter,
            body: self.full_body(submitter, parts),
        };
        SignedFullProof::sign(message, &self.key(submitter), &self.ctx)
    }

    /// Every selected prover of a round commits at `at`, in ascending prover order, except
    /// those in `skip`. Stops at the first rejection.
    pub fn commit_all(
        &mut self,
        key: &RoundKey,
        at: UnixMillis,
        skip: &[ProverIndex],
    ) -> Result<()> {
        let mut provers = self.selected(key);
        provers.sort();
        for p in provers.into_iter().filter(|p| !skip.contains(p)) {
            self.deliver(self.commitment(key, p), at)?;
        }
        Ok(())
    }

    /// Every selected prover except those in `skip` sends the partial of each of its assigned
    /// AIRs at `at`, in ascending (prover, AIR) order. Stops at the first rejection.
    pub fn prove_all(
        &mut self,
        key: &RoundKey,
        at: UnixMillis,
        skip: &[ProverIndex],
    ) -> Result<()> {
        let mut provers = self.selected(key);
        provers.sort();
        for p in provers.into_iter().filter(|p| !skip.contains(p)) {
            for air in self.assignment(key, p) {
                self.deliver(self.partial(key, p, air), at)?;
            }
        }
        Ok(())
    }

    /// The AggProof of `submitter` for a block.
    pub fn agg_proof(&self, block: &BlockInfo, submitter: ProverIndex) -> SignedAggProof {
        let message = AggProof {
            slot: block.slot,
            block_root: block.root,
            submitter,
            bundle: proof_bytes(b"agg", submitter).try_into().unwrap_or_default(),
        };
        SignedAggProof::sign(message, &self.key(submitter), &self.ctx)
    }
}
