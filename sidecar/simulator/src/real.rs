//! Real proofs for `--real-proofs`: the simulated provers prove with the real STARK prover
//! (`plonky3_prover::Prover` over the segment workload, the same mapping from a block to its
//! workload as the node: [`plonky3_prover::block_plan`]) and sign with real BLS keys, and the
//! simulator answers the engine's verification requests by real verification.
//!
//! Virtual time is unchanged: proving still *takes* the latency the scenario gives it, whatever
//! the real prover's wall time, so a run with real proofs makes exactly the protocol decisions a
//! modelled run makes with the same seed (the tests compare the ledgers).
//!
//! The rules the verifier applies are those of modelled proofs (see [`super::modelled`]), now
//! checked on real objects: a partial proof must verify for its declared author's key, its AIR's
//! statement and the trace root it names; a full proof must be assembled by its submitter (the
//! bundle's builder key), cover the sub-block with STARK-valid parts by the authors and with the
//! committed trace roots the engine declares; an AggProof must be assembled by its submitter and
//! verify against the block's plan.
//!
//! Only small runs: at most [`MAX_REAL_PROVERS`] provers, [`MAX_REAL_BLOCKS`] blocks and
//! [`MAX_REAL_AIRS_PER_BLOCK`] AIRs per block (checked before the run starts).

use std::collections::{BTreeMap, HashMap};

use phase_engine::{
    AirIndex, BlsPublicKey, PartRef, ProverIndex, Root, RoundKey, StarkTarget, bls,
};
use plonky3_prover::{
    AggProof, AuthorKey, BlockInput, BlockPlan, FullProof, PartialProof, ProofParams, Prover,
    SegmentParams, SegmentWorkload, SubBlockPlan, TraceRoot, block_plan,
};
use sha2::{Digest, Sha256};

use super::dist::GasDistribution;
use super::error::{SimError, SimResult};
use super::scenario::Scenario;

/// Most provers (genesis and joining) a run with real proofs may have.
pub const MAX_REAL_PROVERS: usize = 64;
/// Most counted blocks a run with real proofs may have.
pub const MAX_REAL_BLOCKS: u64 = 32;
/// Most AIRs the largest block of the gas distribution may have (`ceil(gas / gas_per_air)`): 16
/// AIRs is 64 Mgas at the shipped 4 Mgas per AIR, 2^14-row segments.
pub const MAX_REAL_AIRS_PER_BLOCK: u64 = 16;

/// Checks that a scenario is small enough for real proofs.
///
/// # Errors
/// [`SimError::RealProofsTooLarge`] naming the limit exceeded.
pub fn check_size(scenario: &Scenario, engine: &phase_engine::EngineConfig) -> SimResult<()> {
    let too_large = |what: String| Err(SimError::RealProofsTooLarge { what });
    if scenario.provers.len() > MAX_REAL_PROVERS {
        return too_large(format!(
            "{} provers (at most {MAX_REAL_PROVERS})",
            scenario.provers.len()
        ));
    }
    if scenario.blocks > MAX_REAL_BLOCKS {
        return too_large(format!("{} blocks (at most {MAX_REAL_BLOCKS})", scenario.blocks));
    }
    let max_gas = max_gas(&scenario.gas);
    let airs = max_gas.div_ceil(engine.gas.gas_per_air.max(1));
    if airs > MAX_REAL_AIRS_PER_BLOCK {
        return too_large(format!(
            "blocks of up to {max_gas} gas, {airs} AIRs at {} gas per AIR (at most \
             {MAX_REAL_AIRS_PER_BLOCK} AIRs per block)",
            engine.gas.gas_per_air
        ));
    }
    Ok(())
}

/// The largest gas the distribution can draw.
fn max_gas(gas: &GasDistribution) -> u64 {
    match gas {
        GasDistribution::Fixed { gas } => *gas,
        GasDistribution::Uniform { max, .. } => *max,
        GasDistribution::Mix { components } => {
            components.iter().filter_map(|c| c.gas.or(c.max)).max().unwrap_or(0)
        }
    }
}

/// The BLS key of a simulated prover with real proofs: derived from the scenario's seed and
/// the prover's index.
fn secret_key(seed: u64, index: u64) -> SimResult<bls::SecretKey> {
    let ikm: [u8; 32] = Sha256::new()
        .chain_update(b"sidecar-sim-bls-key")
        .chain_update(seed.to_le_bytes())
        .chain_update(index.to_le_bytes())
        .finalize()
        .into();
    bls::SecretKey::from_ikm(&ikm).map_err(|e| SimError::Protocol {
        block: 0,
        reason: format!("deriving the key of prover {index}: {e}"),
    })
}

fn stark_err(block: u64, what: &str, e: impl std::fmt::Display) -> SimError {
    SimError::Protocol { block, reason: format!("real proofs: {what}: {e}") }
}

/// Statement of one AIR: (block root, sub-block, AIR).
type AirKey = (Root, u32, u32);

/// Real keys, plans and proofs of a run.
pub(crate) struct RealProofs {
    prover: Prover<SegmentWorkload>,
    keys: Vec<bls::SecretKey>,
    pubkeys: Vec<BlsPublicKey>,
    plans: HashMap<Root, BlockPlan>,
    /// Trace roots by (statement, author): the T1 commitment.
    commits: HashMap<(AirKey, ProverIndex), TraceRoot>,
    /// Partial proofs by (statement, author).
    partials: HashMap<(AirKey, ProverIndex), PartialProof>,
    /// Per (block, sub-block): the attempt and bytes of the last accepted full proof.
    accepted_full: BTreeMap<(Root, u32), (u32, Vec<u8>)>,
}

impl std::fmt::Debug for RealProofs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealProofs").field("provers", &self.keys.len()).finish_non_exhaustive()
    }
}

impl RealProofs {
    /// Keys for every prover of the scenario, the shipped proof and workload parameters.
    pub(crate) fn new(scenario: &Scenario) -> SimResult<Self> {
        plonky3_prover::check_cpu().map_err(|e| stark_err(0, "CPU", e))?;
        let workload = SegmentWorkload::new(SegmentParams::default())
            .map_err(|e| stark_err(0, "workload parameters", e))?;
        let prover = Prover::new(ProofParams::default(), workload)
            .map_err(|e| stark_err(0, "proof parameters", e))?;
        let keys = scenario
            .provers
            .iter()
            .map(|p| secret_key(scenario.seed, p.index.0))
            .collect::<SimResult<Vec<_>>>()?;
        let pubkeys = keys.iter().map(bls::SecretKey::public_key).collect();
        Ok(Self {
            prover,
            keys,
            pubkeys,
            plans: HashMap::new(),
            commits: HashMap::new(),
            partials: HashMap::new(),
            accepted_full: BTreeMap::new(),
        })
    }

    /// The registered key of a prover.
    pub(crate) fn pubkey(&self, p: ProverIndex) -> Option<BlsPublicKey> {
        usize::try_from(p.0).ok().and_then(|i| self.pubkeys.get(i)).copied()
    }

    fn author(&self, p: ProverIndex) -> AuthorKey {
        AuthorKey(self.pubkey(p).unwrap_or(BlsPublicKey::ZERO).0)
    }

    /// Signs a signing root as prover `p`.
    pub(crate) fn sign(&self, p: ProverIndex, root: &Root) -> phase_engine::BlsSignature {
        usize::try_from(p.0)
            .ok()
            .and_then(|i| self.keys.get(i))
            .map_or(phase_engine::BlsSignature::ZERO, |k| k.sign(root))
    }

    /// Plans a block's workload from the AIRs of each of its sub-blocks (the engine's
    /// `RoundStarted` of attempt 0). The simulator's blocks carry no transactions.
    pub(crate) fn plan_block(
        &mut self,
        block: u64,
        root: Root,
        parent: Root,
        gas_used: u64,
        airs: &[u32],
    ) -> SimResult<()> {
        let input = BlockInput {
            block_root: root.0,
            parent_hash: parent.0,
            gas_used,
            transactions: Vec::new(),
        };
        let plan = block_plan(self.prover.workload(), &input, airs)
            .map_err(|e| stark_err(block, "planning the block", e))?;
        self.plans.insert(root, plan);
        Ok(())
    }

    /// Forgets a block (its outcome is out).
    pub(crate) fn forget_block(&mut self, root: &Root) {
        self.plans.remove(root);
        self.commits.retain(|((r, _, _), _), _| r != root);
        self.partials.retain(|((r, _, _), _), _| r != root);
        self.accepted_full.retain(|(r, _), _| r != root);
    }

    fn sub_plan(&self, block_root: &Root, sub: u32) -> Option<&SubBlockPlan> {
        self.plans.get(block_root)?.sub_blocks.get(usize::try_from(sub).ok()?)
    }

    fn spec(&self, key: &RoundKey, air: AirIndex) -> Option<plonky3_prover::SegmentSpec> {
        self.sub_plan(&key.block_root, key.sub_block.0)?
            .segment(plonky3_prover::AirIndex(air.0))
            .copied()
    }

    fn air_key(key: &RoundKey, air: AirIndex) -> AirKey {
        (key.block_root, key.sub_block.0, air.0)
    }

    /// The T1 trace root `author` commits for `air` (computed once per statement and author).
    pub(crate) fn trace_root(
        &mut self,
        author: ProverIndex,
        key: &RoundKey,
        air: AirIndex,
    ) -> Root {
        let k = (Self::air_key(key, air), author);
        if let Some(root) = self.commits.get(&k) {
            return Root::from(root.0);
        }
        let root = self
            .spec(key, air)
            .and_then(|spec| self.prover.commit(&spec, &self.author(author)).ok())
            .unwrap_or(TraceRoot([0; 32]));
        self.commits.insert(k, root);
        Root::from(root.0)
    }

    /// The partial proof `author` makes of `air` (proved once per statement and author).
    fn partial(
        &mut self,
        author: ProverIndex,
        key: &RoundKey,
        air: AirIndex,
    ) -> Option<&PartialProof> {
        let k = (Self::air_key(key, air), author);
        if !self.partials.contains_key(&k) {
            let spec = self.spec(key, air)?;
            let proof = self.prover.prove_partial(&spec, &self.author(author)).ok()?;
            self.partials.insert(k, proof);
        }
        self.partials.get(&k)
    }

    /// The encoded partial proof of `air` by `author` (empty if it cannot be made).
    pub(crate) fn partial_bytes(
        &mut self,
        author: ProverIndex,
        key: &RoundKey,
        air: AirIndex,
    ) -> Vec<u8> {
        self.partial(author, key, air).map(|p| p.as_bytes().to_vec()).unwrap_or_default()
    }

    /// The bundle of a full proof assembled by `builder` from `parts` (each part the partial
    /// proof of its author). Empty if it cannot be built.
    pub(crate) fn full_bundle(
        &mut self,
        builder: ProverIndex,
        key: &RoundKey,
        parts: &[PartRef],
    ) -> Vec<u8> {
        let mut proofs = Vec::with_capacity(parts.len());
        for part in parts {
            match self.partial(part.author, key, part.air) {
                Some(p) => proofs.push(p.clone()),
                None => return Vec::new(),
            }
        }
        let author = self.author(builder);
        self.sub_plan(&key.block_root, key.sub_block.0)
            .and_then(|plan| FullProof::build(author, plan, proofs).ok())
            .map(|f| f.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Records an accepted full proof (the AggProof is built from the last one of each
    /// sub-block).
    pub(crate) fn full_accepted(&mut self, key: &RoundKey, bundle: &[u8]) {
        let slot = self.accepted_full.entry((key.block_root, key.sub_block.0)).or_default();
        if slot.1.is_empty() || key.attempt.0 >= slot.0 {
            *slot = (key.attempt.0, bundle.to_vec());
        }
    }

    /// The AggProof `builder` assembles from the accepted full proofs of every sub-block. Empty
    /// if a sub-block has none.
    pub(crate) fn agg_bundle(&self, builder: ProverIndex, block_root: &Root) -> Vec<u8> {
        let Some(plan) = self.plans.get(block_root) else { return Vec::new() };
        let mut fulls = Vec::with_capacity(plan.sub_blocks.len());
        for sub in 0..plan.sub_blocks.len() {
            let Ok(sub) = u32::try_from(sub) else { return Vec::new() };
            let Some((_, bytes)) = self.accepted_full.get(&(*block_root, sub)) else {
                return Vec::new();
            };
            match FullProof::from_bytes(bytes) {
                Ok(f) => fulls.push(f),
                Err(_) => return Vec::new(),
            }
        }
        AggProof::build(self.author(builder), plan, fulls)
            .map(|a| a.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// Verifies a STARK target as a node would, with the simulator's rules on who built a
    /// bundle (see the module docs).
    pub(crate) fn verify(&self, target: &StarkTarget) -> bool {
        match target {
            StarkTarget::Partial { round, air, author_pubkey, trace_root, proof, .. } => {
                let Some(spec) = self.spec(round, *air) else { return false };
                let Ok(proof) = PartialProof::from_bytes(proof) else { return false };
                self.prover
                    .verify_partial(
                        &proof,
                        &spec,
                        &AuthorKey(author_pubkey.0),
                        Some(&TraceRoot(trace_root.0)),
                    )
                    .is_ok()
            }
            StarkTarget::FullProof { round, submitter, parts, bundle, .. } => {
                let Some(plan) = self.sub_plan(&round.block_root, round.sub_block.0) else {
                    return false;
                };
                let Ok(full) = FullProof::from_bytes(bundle) else { return false };
                if full.header().builder != self.author(*submitter) {
                    return false;
                }
                let Ok(report) = self.prover.verify_full(&full, plan) else { return false };
                report.parts.len() == parts.len()
                    && report.parts.iter().zip(parts).all(|(got, declared)| {
                        got.air_index.0 == declared.part.air.0
                            && got.author.0 == declared.author_pubkey.0
                            && declared.committed_trace_root.is_none_or(|c| c.0 == got.trace_root.0)
                    })
            }
            StarkTarget::AggProof { block_root, submitter, bundle, .. } => {
                let Some(plan) = self.plans.get(block_root) else { return false };
                let Ok(agg) = AggProof::from_bytes(bundle) else { return false };
                agg.header().builder == self.author(*submitter)
                    && self.prover.verify_agg(&agg, plan).is_ok()
            }
            _ => false,
        }
    }
}
