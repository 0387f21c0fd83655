//! New blocks and reorgs: planning a block, selecting the provers of its rounds and its
//! aggregator group, starting rounds (attempt 0 and retries), and dropping orphaned blocks.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    CLOSED_BLOCKS_KEPT, Engine,
    deadlines::deadlines,
    state::{BlockState, RoundState, SubBlockState},
};
use crate::{
    Phase,
    actions::{Action, BlockInfo, RoundStart},
    assign::{assign_airs_with, assignment_shuffle_specs},
    error::{Error, Result},
    merkle::round_ref_root,
    messages::RoundRef,
    outcome::RoundKey,
    plan::{SubBlockPlan, plan_block},
    selection::{Seed, aggregator_seed, assignment_seed, select_provers_with, selection_seed},
    shuffle::ShuffleSpec,
    types::{Attempt, ProverIndex, Root, Slot, UnixMillis},
};

impl Engine {
    /// A new beacon block (in slot order). Plans it, selects the prover sets of its
    /// sub-blocks (and the aggregator group), starts attempt 0 of every round at
    /// `slot_start`, and resolves the inclusions of earlier messages.
    ///
    /// Shuffles it needs are taken from those handed in by [`Engine::prepare_shuffler`] when
    /// one has exactly the needed [`ShuffleSpec`], else built here; whatever prepared shuffler
    /// is left is dropped when it returns (with or without an error).
    pub fn on_block(&mut self, info: BlockInfo, now: UnixMillis) -> Result<()> {
        let result = self.start_block(info, now);
        self.prepared.clear();
        result
    }

    /// [`Engine::on_block`] without dropping the prepared shufflers.
    fn start_block(&mut self, info: BlockInfo, now: UnixMillis) -> Result<()> {
        if self.blocks.contains_key(&info.root) || self.closed_blocks.contains(&info.root) {
            return Err(Error::DuplicateBlock { block_root: info.root });
        }
        if let Some(last) = self.last_slot
            && info.slot <= last
        {
            return Err(Error::StaleBlock { slot: info.slot, last });
        }
        self.last_slot = Some(info.slot);
        self.chain.insert(info.slot_start, (info.slot, info.proposer));
        // A new includer may let waiting outcomes out.
        self.changed = true;
        self.advance(now);
        // Busy-ness at the block's slot start, from the chain alone.
        let at = info.slot_start;
        self.prune_busy(at);
        let available = self.num_available_at(at);
        let plan = plan_block(info.gas_used, available, &self.config)?;
        let mut block = BlockState {
            info,
            sub_blocks: Vec::with_capacity(plan.sub_blocks.len()),
            aggregators: Vec::new(),
            aggregators_released: false,
            agg: BTreeMap::new(),
            agg_seen: BTreeSet::new(),
            agg_pending: 0,
        };
        for sub in &plan.sub_blocks {
            let round = self.start_round(
                &info,
                *sub,
                Attempt(0),
                plan.provers_per_sub_block,
                info.slot_start,
            )?;
            block.sub_blocks.push(SubBlockState { plan: *sub, rounds: vec![round], done: false });
        }
        if block.is_aggregating() {
            let count = u64::from(self.config.provers_per_aggproof).min(self.num_available_at(at));
            let seed = aggregator_seed(&info.randao_mix, &info.root);
            let aggregators = self.select(count, &seed, at)?;
            let until = deadlines(&self.config, at).close(Phase::T3);
            for p in &aggregators {
                self.mark_busy(*p, info.root, until);
            }
            self.actions.push_back(Action::AggregatorsSelected {
                block_root: info.root,
                aggregators: aggregators.clone(),
            });
            block.aggregators = aggregators;
        } else {
            block.aggregators_released = true;
        }
        self.blocks.insert(info.root, block);
        self.changed = true;
        self.advance(now);
        Ok(())
    }

    /// A reorg: the blocks `orphaned` left the canonical chain. Their rounds are dropped without
    /// an outcome (nothing of them is settled), their provers and aggregators are free again,
    /// their pending verification requests are forgotten (a late verdict is
    /// [`Error::UnknownRequest`]), and later messages for them are [`Error::RoundClosed`]. The
    /// next block may then have any slot after `fork_slot` (the slot of the common ancestor).
    /// Returns the rounds dropped, in order; unknown roots are ignored.
    pub fn on_reorg(&mut self, orphaned: &[Root], fork_slot: Slot) -> Vec<RoundKey> {
        let mut dropped = Vec::new();
        for root in orphaned {
            let Some(block) = self.blocks.remove(root) else { continue };
            for sub in &block.sub_blocks {
                for round in sub.rounds.iter().filter(|r| !r.closed) {
                    dropped.push(round.key);
                }
            }
            self.release_block(root);
            self.pending.retain(|_, p| {
                p.block_root != Some(*root) && p.round.is_none_or(|k| k.block_root != *root)
            });
            self.chain.remove(&block.info.slot_start);
            self.closed_blocks.push_back(*root);
            if self.closed_blocks.len() > CLOSED_BLOCKS_KEPT {
                self.closed_blocks.pop_front();
            }
        }
        if self.last_slot.is_some_and(|last| last > fork_slot) {
            self.last_slot = Some(fork_slot);
        }
        self.changed = true;
        dropped
    }

    /// `count` active provers not busy at `at`, by the shuffle of `seed`.
    fn select(&mut self, count: u64, seed: &Seed, at: UnixMillis) -> Result<Vec<ProverIndex>> {
        let len = self.active.len() as u64;
        if len == 0 || count == 0 {
            return Ok(Vec::new());
        }
        let spec =
            ShuffleSpec { index_count: len, seed: *seed, rounds: self.config.shuffle_round_count };
        let shuffler = self.shuffler(spec)?;
        select_provers_with(&self.active, count, &shuffler, &self.config.reputation, |p| {
            if self.is_busy_at(p, at) {
                return None;
            }
            self.prover(p).filter(|r| r.active).map(|r| r.reputation)
        })
    }

    pub(super) fn start_round(
        &mut self,
        info: &BlockInfo,
        sub: SubBlockPlan,
        attempt: Attempt,
        count: u64,
        start: UnixMillis,
    ) -> Result<RoundState> {
        let key = RoundKey { block_root: info.root, sub_block: sub.index, attempt };
        let seed = selection_seed(&info.randao_mix, &info.root, sub.index, attempt);
        let selected = self.select(count, &seed, start)?;
        let assignments = match assignment_shuffle_specs(
            sub.num_airs,
            selected.len(),
            &assignment_seed(&seed),
            self.config.shuffle_round_count,
        ) {
            Some((provers, airs)) => {
                let prover_perm = self.shuffler(provers)?;
                let air_perm = self.shuffler(airs)?;
                assign_airs_with(
                    sub.num_airs,
                    selected.len(),
                    self.config.redundancy_factor,
                    &prover_perm,
                    &air_perm,
                )?
            }
            None => vec![Vec::new(); selected.len()],
        };
        let round_deadlines = deadlines(&self.config, start);
        if attempt.0 == 0 {
            let until = round_deadlines.close(Phase::T3);
            for p in &selected {
                self.mark_busy(*p, info.root, until);
            }
        }
        let position = selected.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let open_len = usize::try_from(sub.num_airs).unwrap_or(0);
        let round = RoundState {
            key,
            slot: info.slot,
            ref_root: round_ref_root(&RoundRef {
                slot: info.slot,
                block_root: key.block_root,
                sub_block: key.sub_block,
                attempt: key.attempt,
            }),
            deadlines: deadlines(&self.config, start),
            num_airs: sub.num_airs,
            selected: selected.clone(),
            assignments: assignments.clone(),
            position,
            announced: None,
            seen: BTreeSet::new(),
            t1: BTreeMap::new(),
            partials: BTreeMap::new(),
            full: BTreeMap::new(),
            open: vec![0; open_len],
            equivocations: Vec::new(),
            pending: 0,
            finalized_in: None,
            closed: false,
        };
        self.actions.push_back(Action::RoundStarted(RoundStart {
            key,
            slot: info.slot,
            start,
            num_airs: sub.num_airs,
            selected,
            assignments,
        }));
        Ok(round)
    }
}
