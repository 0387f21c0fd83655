//! The outcome of a finished block: its rounds' records (commitments, counted partials, full
//! proofs of the finalising phase, equivocations), its AggProofs, and who includes each.

use std::collections::BTreeMap;

use super::{
    Engine,
    state::{FullEntry, RoundState, T1Kind},
};
use crate::{
    outcome::{
        AggProofRecord, Assignment, BlockOutcome, CommitmentRecord, FullProofRecord, Inclusion,
        PartialRecord, RoundOutcome,
    },
    types::{AirIndex, Phase, ProverIndex, Root, UnixMillis, ValidatorIndex},
};

impl Engine {
    /// The proposer of the first known block whose slot starts after `t`.
    fn includer(&self, t: UnixMillis) -> Option<ValidatorIndex> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.chain.range((Excluded(t), Unbounded)).next().map(|(_, (_, v))| *v)
    }

    /// A message's inclusion: the includer the caller named for it, else the proposer of the
    /// first known block after its arrival.
    fn inclusion(
        &self,
        phase: Phase,
        arrived: UnixMillis,
        includer: Option<ValidatorIndex>,
    ) -> Option<Inclusion> {
        let validator = match includer {
            Some(v) => v,
            None => self.includer(arrived)?,
        };
        Some(Inclusion { arrived_at: arrived, phase, validator })
    }

    fn round_outcome(&self, r: &RoundState) -> Option<RoundOutcome> {
        let mut declined: Vec<(UnixMillis, ProverIndex)> = Vec::new();
        let mut commitments: Vec<CommitmentRecord> = Vec::new();
        for (&prover, e) in &r.t1 {
            match e.kind {
                T1Kind::Decline => declined.push((e.arrived, prover)),
                T1Kind::Commit(_) => commitments.push(CommitmentRecord {
                    prover,
                    inclusion: self.inclusion(Phase::T1, e.arrived, e.includer)?,
                }),
            }
        }
        declined.sort();
        commitments.sort_by_key(|c| (c.inclusion.arrived_at, c.prover));
        // Assigned partials all count; open ones only the first `open[air]` per AIR.
        let mut valid: Vec<(UnixMillis, ProverIndex, AirIndex, bool, Option<ValidatorIndex>)> = r
            .partials
            .iter()
            .filter(|(_, e)| e.valid)
            .map(|(&(p, a), e)| (e.arrived, p, a, e.assigned, e.includer))
            .collect();
        valid.sort();
        let mut taken: BTreeMap<AirIndex, u32> = BTreeMap::new();
        let mut partials = Vec::new();
        for (arrived, prover, air, assigned, includer) in valid {
            if !assigned {
                let n = taken.entry(air).or_insert(0);
                if *n >= r.open_slots(air) {
                    continue;
                }
                *n = n.saturating_add(1);
            }
            partials.push(PartialRecord {
                prover,
                air,
                assigned,
                inclusion: self.inclusion(Phase::T2, arrived, includer)?,
            });
        }
        let mut full_proofs = Vec::new();
        if let Some(phase) = r.finalized_in {
            let mut list: Vec<(&ProverIndex, &FullEntry)> =
                r.full.iter().filter(|(_, e)| e.valid && e.phase == phase).collect();
            list.sort_by_key(|(p, e)| (e.arrived, **p));
            for (&submitter, e) in list {
                full_proofs.push(FullProofRecord {
                    submitter,
                    parts: e.parts.clone(),
                    reused: e.parts.iter().filter(|p| p.author != submitter).copied().collect(),
                    inclusion: self.inclusion(e.phase, e.arrived, e.includer)?,
                });
            }
        }
        Some(RoundOutcome {
            key: r.key,
            num_airs: r.num_airs,
            selected: r.selected.clone(),
            assignments: r
                .selected
                .iter()
                .zip(&r.assignments)
                .map(|(&prover, airs)| Assignment { prover, airs: airs.clone() })
                .collect(),
            declined: declined.into_iter().map(|(_, p)| p).collect(),
            commitments,
            partials,
            full_proofs,
            finalized_in: r.finalized_in,
            equivocations: r.equivocations.clone(),
        })
    }

    pub(super) fn build_outcome(&self, root: Root) -> Option<BlockOutcome> {
        let block = self.blocks.get(&root)?;
        let mut rounds = Vec::new();
        for sub in &block.sub_blocks {
            for r in &sub.rounds {
                rounds.push(self.round_outcome(r)?);
            }
        }
        let mut agg: Vec<(UnixMillis, ProverIndex, Option<ValidatorIndex>)> = block
            .agg
            .iter()
            .filter(|(_, e)| e.valid)
            .map(|(&p, e)| (e.arrived, p, e.includer))
            .collect();
        agg.sort();
        let mut agg_proofs = Vec::new();
        for (arrived, submitter, includer) in agg {
            agg_proofs.push(AggProofRecord {
                submitter,
                inclusion: self.inclusion(Phase::T1, arrived, includer)?,
            });
        }
        Some(BlockOutcome {
            block_root: root,
            slot: block.info.slot,
            proposer: block.info.proposer,
            rounds,
            aggregators: block.aggregators.clone(),
            agg_proofs,
        })
    }
}
