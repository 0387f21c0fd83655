//! STARK verification off the async workers: checks with `plonky3-prover` on the blocking pool
//! (whose `verify_full`/`verify_agg` fan out on rayon), with a cache of block plans and of the
//! partial proofs verified, so that a full proof or AggProof carrying a partial already verified
//! costs its structural checks only (each distinct partial's STARK is verified once). BLS checks
//! are in [`crate::signatures`].

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use phase_engine::{StarkCheck, StarkTarget};
use plonky3_prover::{
    AggProof, AuthorKey, BlockPlan, FullProof, PartDigest, PartialProof, Prover, SegmentWorkload,
    SubBlockIndex, TraceRoot,
};

use super::log::BlockData;
use plonky3_prover::{BlockInput, block_plan};

/// What a block's STARK workload is built from.
#[derive(Clone, Debug)]
pub(crate) struct BlockWork {
    /// The block root.
    pub root: phase_engine::Root,
    /// Gas used.
    pub gas_used: u64,
    /// Payload data.
    pub data: BlockData,
    /// AIRs of each sub-block, by sub-block index (from the engine's `RoundStarted`).
    pub airs: BTreeMap<u32, u32>,
}

/// Most blocks whose plans and verified partials are kept (the oldest are dropped all at once
/// beyond it; the driver forgets a block's entries when it expires).
const MAX_CACHED_BLOCKS: usize = 256;

/// The STARK verifier with a cache of block plans and of the partials verified.
pub(crate) struct StarkVerifier {
    prover: Prover<SegmentWorkload>,
    plans: Mutex<HashMap<phase_engine::Root, Arc<BlockPlan>>>,
    /// By block: the sub-block and encoding digest of every partial proof that verified.
    verified: Mutex<HashMap<phase_engine::Root, HashSet<(SubBlockIndex, PartDigest)>>>,
}

impl std::fmt::Debug for StarkVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StarkVerifier").finish_non_exhaustive()
    }
}

impl StarkVerifier {
    /// A verifier with these proof parameters and segment workload.
    pub(crate) fn new(prover: Prover<SegmentWorkload>) -> Self {
        Self { prover, plans: Mutex::new(HashMap::new()), verified: Mutex::new(HashMap::new()) }
    }

    fn plan(&self, work: &BlockWork) -> Result<Arc<BlockPlan>, String> {
        let mut plans = self.plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(plan) = plans.get(&work.root) {
            return Ok(Arc::clone(plan));
        }
        let input = BlockInput {
            block_root: work.root.0,
            parent_hash: work.data.parent_hash.0,
            gas_used: work.gas_used,
            transactions: work.data.transactions.clone(),
        };
        let airs: Vec<u32> = work.airs.values().copied().collect();
        let plan =
            Arc::new(block_plan(self.prover.workload(), &input, &airs).map_err(|e| e.to_string())?);
        if plans.len() > MAX_CACHED_BLOCKS {
            plans.clear();
        }
        plans.insert(work.root, Arc::clone(&plan));
        Ok(plan)
    }

    /// Forgets a block's plan and verified partials.
    pub(crate) fn forget(&self, root: &phase_engine::Root) {
        self.plans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(root);
        self.verified_parts().remove(root);
    }

    fn verified_parts(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<phase_engine::Root, HashSet<(SubBlockIndex, PartDigest)>>>
    {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers that the partial proof `bytes` of sub-block `sub_block` of `block` verified.
    fn remember(&self, block: phase_engine::Root, sub_block: SubBlockIndex, bytes: &[u8]) {
        let mut verified = self.verified_parts();
        if verified.len() > MAX_CACHED_BLOCKS && !verified.contains_key(&block) {
            verified.clear();
        }
        verified.entry(block).or_default().insert((sub_block, PartDigest::of(bytes)));
    }

    /// The partials of `block` verified so far, for a full proof's or AggProof's check.
    fn verified_in(&self, block: &phase_engine::Root) -> HashSet<(SubBlockIndex, PartDigest)> {
        self.verified_parts().get(block).cloned().unwrap_or_default()
    }

    /// Checks one STARK target against the block's workload; `Err` says why it is invalid.
    /// `submitter` is the registered key of a full proof's or AggProof's submitter: the bundle
    /// must have been built by that key (its header names the builder), so nobody can submit
    /// another prover's bundle as their own.
    pub(crate) fn check(
        &self,
        check: &StarkCheck,
        work: &BlockWork,
        submitter: Option<phase_engine::BlsPublicKey>,
    ) -> Result<(), String> {
        let built_by_submitter = |builder: &AuthorKey| match submitter {
            Some(key) if builder.0 == key.0 => Ok(()),
            Some(_) => Err("the bundle was built by another prover than its submitter".to_owned()),
            None => Err("unknown submitter".to_owned()),
        };
        let plan = self.plan(work)?;
        match &check.target {
            StarkTarget::Partial { round, air, author_pubkey, trace_root, proof, .. } => {
                let sub =
                    plan.sub_blocks.get(round.sub_block.0 as usize).ok_or("no such sub-block")?;
                let spec = sub.segments.get(air.0 as usize).ok_or("no such AIR")?;
                let decoded = PartialProof::from_bytes(proof).map_err(|e| e.to_string())?;
                self.prover
                    .verify_partial(
                        &decoded,
                        spec,
                        &AuthorKey(author_pubkey.0),
                        Some(&TraceRoot(trace_root.0)),
                    )
                    .map_err(|e| e.to_string())?;
                self.remember(work.root, sub.sub_block_index, decoded.as_bytes());
                Ok(())
            }
            StarkTarget::FullProof { round, parts, bundle, .. } => {
                let sub =
                    plan.sub_blocks.get(round.sub_block.0 as usize).ok_or("no such sub-block")?;
                let full = FullProof::from_bytes(bundle).map_err(|e| e.to_string())?;
                let known = self.verified_in(&work.root);
                let report = self
                    .prover
                    .verify_full_reusing(&full, sub, &|sb, d| known.contains(&(sb, *d)))
                    .map_err(|e| e.to_string())?;
                built_by_submitter(&report.builder)?;
                // The engine's view of the parts (authors, committed roots) must match.
                let by_air: BTreeMap<u32, _> = parts.iter().map(|p| (p.part.air.0, p)).collect();
                for part in &report.parts {
                    let Some(expected) = by_air.get(&part.air_index.0) else {
                        return Err(format!("part of AIR {} not declared", part.air_index.0));
                    };
                    if part.author.0 != expected.author_pubkey.0 {
                        return Err(format!("part of AIR {} has another author", part.air_index.0));
                    }
                    if let Some(root) = expected.committed_trace_root
                        && root.0 != part.trace_root.0
                    {
                        return Err(format!(
                            "part of AIR {} does not open the committed trace root",
                            part.air_index.0
                        ));
                    }
                }
                if report.parts.len() != parts.len() {
                    return Err("declared parts and proof parts differ".into());
                }
                Ok(())
            }
            StarkTarget::AggProof { bundle, .. } => {
                let agg = AggProof::from_bytes(bundle).map_err(|e| e.to_string())?;
                let known = self.verified_in(&work.root);
                let report = self
                    .prover
                    .verify_agg_reusing(&agg, &plan, &|sb, d| known.contains(&(sb, *d)))
                    .map_err(|e| e.to_string())?;
                built_by_submitter(&report.builder)
            }
            _ => Err("unsupported STARK target".into()),
        }
    }
}
