//! One round from the worker's side: plan, T1 commitment, T2 partial proofs, and the full proof
//! (from T2 when it holds every AIR, in T3 from accepted partials, in T4 proving what is missing).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use beacon_api::BlockId;
use phase_engine::{
    AirCommitment, AirIndex, Commitment, Duty, FullProof, FullProofBody, PartRef, PartialProof,
    Phase, ProtocolMessage, ProverIndex, ReuseBloom, Root, RoundRef, SignedCommitment,
    SignedFullProof, SignedPartialProof,
};
use plonky3_prover::SubBlockPlan;
use ssz_types::VariableList;
use tracing::{debug, info};

use crate::error::{ProverError, ProverResult};

use super::{Behaviour, ProverWorker, REUSE_BLOOM_BYTES, WorkerStats, now_ms, wait_until};

impl ProverWorker {
    pub(super) async fn prove_round(&self, index: ProverIndex, duty: &Duty) -> ProverResult<()> {
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
    pub(super) async fn aggregate_round(
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

    pub(super) async fn send_full_proof(
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
}
