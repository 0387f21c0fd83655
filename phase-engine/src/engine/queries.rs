//! Read-only views of the open blocks and rounds: duties, aggregation duties, open rounds,
//! round status.

use super::{Engine, state::T1Kind};
use crate::{
    actions::{AggregationDuty, Duty, RoundStatus},
    outcome::RoundKey,
    types::{AirIndex, Phase, ProverIndex, Root},
};

impl Engine {
    /// Blocks whose rounds are closed but whose outcome waits for a later beacon block (the
    /// includer of their last messages).
    pub fn awaiting_inclusion(&self) -> Vec<Root> {
        self.blocks
            .iter()
            .filter(|(_, b)| b.sub_blocks.iter().all(|s| s.done) && b.aggregators_released)
            .map(|(r, _)| *r)
            .collect()
    }

    /// A prover's duties in open rounds where it is selected.
    pub fn duties(&self, prover: ProverIndex) -> Vec<Duty> {
        let mut out = Vec::new();
        for block in self.blocks.values() {
            for sub in &block.sub_blocks {
                let Some(r) = sub.current() else { continue };
                if r.closed {
                    continue;
                }
                let Some(airs) = r.assigned_airs(prover) else { continue };
                let committed = r.t1.get(&prover).map(|e| matches!(e.kind, T1Kind::Commit(_)));
                out.push(Duty {
                    round: r.key,
                    slot: r.slot,
                    num_airs: r.num_airs,
                    airs: if committed == Some(false) { Vec::new() } else { airs.to_vec() },
                    phase: r.phase_now(self.now).unwrap_or(Phase::T5),
                    committed,
                    deadlines: r.deadlines,
                });
            }
        }
        out
    }

    /// Blocks whose AggProof `prover` may submit.
    pub fn aggregation_duties(&self, prover: ProverIndex) -> Vec<AggregationDuty> {
        self.blocks
            .values()
            .filter(|b| {
                b.is_aggregating() && !b.aggregators_released && self.agg_standing(b, prover)
            })
            .map(|b| AggregationDuty {
                block_root: b.info.root,
                slot: b.info.slot,
                aggregator: b.aggregators.contains(&prover),
                ready: b.first_unproven().is_none(),
            })
            .collect()
    }

    /// The open rounds.
    pub fn open_rounds(&self) -> Vec<RoundKey> {
        self.blocks
            .values()
            .flat_map(|b| b.sub_blocks.iter())
            .filter_map(|s| s.current())
            .filter(|r| !r.closed)
            .map(|r| r.key)
            .collect()
    }

    /// The state of a round (open, or closed but not yet settled).
    pub fn round_status(&self, key: &RoundKey) -> Option<RoundStatus> {
        let block = self.blocks.get(&key.block_root)?;
        let sub = block.sub_blocks.get(usize::try_from(key.sub_block.0).ok()?)?;
        let r = sub.rounds.get(usize::try_from(key.attempt.0).ok()?)?;
        Some(RoundStatus {
            key: r.key,
            slot: r.slot,
            phase: r.phase_now(self.now),
            deadlines: r.deadlines,
            num_airs: r.num_airs,
            selected: r.selected.iter().copied().zip(r.assignments.iter().cloned()).collect(),
            open_airs: (0..r.num_airs)
                .map(AirIndex)
                .filter_map(|a| {
                    let n = r.open_slots(a);
                    (n > 0).then_some((a, n))
                })
                .collect(),
            commitments: u32::try_from(
                r.t1.values().filter(|e| matches!(e.kind, T1Kind::Commit(_))).count(),
            )
            .unwrap_or(u32::MAX),
            partials: u32::try_from(r.partials.values().filter(|e| e.valid).count())
                .unwrap_or(u32::MAX),
            finalized_in: r.finalized_in,
            closed: r.closed,
        })
    }

    /// AIRs of a round open to any active prover (declined by a holder), with open slot counts.
    pub fn open_airs(&self, key: &RoundKey) -> Vec<(AirIndex, u32)> {
        self.round_status(key).map(|s| s.open_airs).unwrap_or_default()
    }
}
