//! What the engine keeps per block, per sub-block and per round (attempt): the selected provers
//! and their assignments, the T1 messages, partial, full and AggProofs received, and the
//! counters that hold a round or block open.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    actions::{BlockInfo, Deadlines},
    config::EngineConfig,
    outcome::{EquivocationRecord, PartRef, RoundKey},
    plan::SubBlockPlan,
    types::{AirIndex, Phase, ProverIndex, Root, Slot, UnixMillis, ValidatorIndex},
};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum T1Kind {
    /// Trace roots, aligned with the prover's assigned AIRs.
    Commit(Vec<Root>),
    Decline,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct T1Entry {
    pub(super) signing_root: Root,
    pub(super) arrived: UnixMillis,
    pub(super) includer: Option<ValidatorIndex>,
    pub(super) kind: T1Kind,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PartialEntry {
    pub(super) arrived: UnixMillis,
    pub(super) includer: Option<ValidatorIndex>,
    pub(super) assigned: bool,
    pub(super) valid: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct FullEntry {
    pub(super) arrived: UnixMillis,
    pub(super) includer: Option<ValidatorIndex>,
    pub(super) phase: Phase,
    pub(super) parts: Vec<PartRef>,
    pub(super) valid: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct RoundState {
    pub(super) key: RoundKey,
    pub(super) slot: Slot,
    /// `hash_tree_root` of the round's `RoundRef`: every message that passes
    /// [`Engine::open_round`](super::Engine::open_round) names exactly this round.
    pub(super) ref_root: Root,
    pub(super) deadlines: Deadlines,
    pub(super) num_airs: u32,
    pub(super) selected: Vec<ProverIndex>,
    pub(super) assignments: Vec<Vec<AirIndex>>,
    pub(super) position: BTreeMap<ProverIndex, usize>,
    /// Phases announced so far (the last one).
    pub(super) announced: Option<Phase>,
    /// Signing roots received (pending or accepted).
    pub(super) seen: BTreeSet<Root>,
    pub(super) t1: BTreeMap<ProverIndex, T1Entry>,
    pub(super) partials: BTreeMap<(ProverIndex, AirIndex), PartialEntry>,
    pub(super) full: BTreeMap<ProverIndex, FullEntry>,
    /// Per AIR: number of holders that declined (open slots).
    pub(super) open: Vec<u32>,
    pub(super) equivocations: Vec<EquivocationRecord>,
    pub(super) pending: u32,
    pub(super) finalized_in: Option<Phase>,
    pub(super) closed: bool,
}

impl RoundState {
    pub(super) fn assigned_airs(&self, prover: ProverIndex) -> Option<&[AirIndex]> {
        self.position.get(&prover).and_then(|&i| self.assignments.get(i)).map(Vec::as_slice)
    }

    pub(super) fn committed_root(&self, prover: ProverIndex, air: AirIndex) -> Option<Root> {
        let entry = self.t1.get(&prover)?;
        let T1Kind::Commit(roots) = &entry.kind else { return None };
        let airs = self.assigned_airs(prover)?;
        let i = airs.iter().position(|&a| a == air)?;
        roots.get(i).copied()
    }

    pub(super) fn open_slots(&self, air: AirIndex) -> u32 {
        usize::try_from(air.0).ok().and_then(|i| self.open.get(i)).copied().unwrap_or(0)
    }

    pub(super) fn phase_now(&self, now: UnixMillis) -> Option<Phase> {
        self.deadlines.phase_at(now)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct SubBlockState {
    pub(super) plan: SubBlockPlan,
    /// Attempts so far; the last is the current one.
    pub(super) rounds: Vec<RoundState>,
    /// No further attempt will run (finalised, or retries exhausted).
    pub(super) done: bool,
}

impl SubBlockState {
    pub(super) fn current(&self) -> Option<&RoundState> {
        self.rounds.last()
    }

    fn finalized(&self) -> Option<(Phase, UnixMillis)> {
        let r = self.rounds.last()?;
        r.finalized_in.map(|p| (p, r.deadlines.close(p)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct AggEntry {
    pub(super) arrived: UnixMillis,
    pub(super) includer: Option<ValidatorIndex>,
    pub(super) valid: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct BlockState {
    pub(super) info: BlockInfo,
    pub(super) sub_blocks: Vec<SubBlockState>,
    pub(super) aggregators: Vec<ProverIndex>,
    pub(super) aggregators_released: bool,
    pub(super) agg: BTreeMap<ProverIndex, AggEntry>,
    pub(super) agg_seen: BTreeSet<Root>,
    pub(super) agg_pending: u32,
}

impl BlockState {
    /// Whether every sub-block has a valid full proof; else the first that has none.
    pub(super) fn first_unproven(&self) -> Option<&SubBlockState> {
        self.sub_blocks.iter().find(|s| s.finalized().is_none())
    }

    /// Close of the AggProof window (nominal): one T1 length after the latest finalising
    /// phase close of the sub-blocks. `None` until every sub-block is proven.
    pub(super) fn agg_close(&self, config: &EngineConfig) -> Option<UnixMillis> {
        let mut latest = UnixMillis(0);
        for s in &self.sub_blocks {
            let (_, close) = s.finalized()?;
            latest = latest.max(close);
        }
        Some(UnixMillis(latest.0.saturating_add(config.phases.t1_ms)))
    }

    pub(super) fn is_aggregating(&self) -> bool {
        self.sub_blocks.len() > 1
    }
}
