//! Shufflers built ahead of time: the prediction of the shuffles the next block needs
//! ([`Engine::upcoming_shuffles`]), the bounded cache of prepared ones
//! ([`Engine::prepare_shuffler`]) and its hit/miss counts.

use super::Engine;
use crate::{
    actions::BlockInfo,
    assign::assignment_shuffle_specs,
    error::Result,
    plan::plan_block,
    selection::{aggregator_seed, assignment_seed, selection_seed},
    shuffle::{ShuffleSpec, Shuffler},
    types::Attempt,
};

/// Most shufflers [`Engine::prepare_shuffler`] keeps; beyond it the oldest is dropped.
pub const PREPARED_SHUFFLERS_MAX: usize = 64;

/// How the shufflers the engine needed were obtained, since it was created: handed in by
/// [`Engine::prepare_shuffler`] with exactly the needed spec (`hits`), or built on the spot
/// (`misses`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ShufflerCacheStats {
    /// Shufflers taken from the prepared ones.
    pub hits: u64,
    /// Shufflers built because none with the needed spec was prepared.
    pub misses: u64,
}

impl Engine {
    /// Hands in a shuffler built ahead of time (for example on another thread, from a spec of
    /// [`Engine::upcoming_shuffles`]), kept under its [`Shuffler::spec`] until it is used, the
    /// next [`Engine::on_block`] returns, or [`PREPARED_SHUFFLERS_MAX`] newer ones push it out
    /// (a shuffler with the same spec replaces it). Whenever the engine needs a shuffle it takes
    /// the prepared shuffler with exactly that spec, if any, instead of building one: a
    /// shuffler is a pure function of its spec, so this never changes a result, and a shuffler
    /// nobody needs is only dropped unused.
    pub fn prepare_shuffler(&mut self, shuffler: Shuffler) {
        let spec = shuffler.spec();
        self.prepared.retain(|s| s.spec() != spec);
        self.prepared.push_back(shuffler);
        while self.prepared.len() > PREPARED_SHUFFLERS_MAX {
            self.prepared.pop_front();
        }
    }

    /// Number of prepared shufflers waiting (see [`Engine::prepare_shuffler`]).
    pub fn prepared_shufflers(&self) -> usize {
        self.prepared.len()
    }

    /// How many needed shufflers were prepared ones and how many were built on the spot.
    pub fn shuffler_cache_stats(&self) -> ShufflerCacheStats {
        self.shuffler_stats
    }

    /// The shuffles [`Engine::on_block`]`(info, ..)` would need if it were called now, with
    /// the engine as it is: for every sub-block of the plan
    /// ([`crate::plan_block`]`(info.gas_used, self.num_available_at(info.slot_start), ..)`), the selection of
    /// attempt 0 (the active list under [`selection_seed`]; the selection reads its whole
    /// list when the shuffler carries it) and the two shuffles of the AIR assignment (the
    /// expected selected provers under [`assignment_seed`], the AIRs under its complement),
    /// then the aggregator selection when the block has several sub-blocks. The selected
    /// counts assume, as `on_block` finds, that every eligible prover is picked until the
    /// count is reached.
    ///
    /// This is a prediction: the caller builds these ahead of time (e.g. on another thread,
    /// `Shuffler::from_spec(spec)?.with_whole_list()`; the whole list is cheap for lists with a
    /// digest table and skipped for larger ones) and hands them to
    /// [`Engine::prepare_shuffler`] before `on_block`. Anything that changes in between (a
    /// tick that closes rounds and frees provers, a registration, a reorg) only costs a miss:
    /// `on_block` then builds what it needs. Empty when the block cannot be planned.
    pub fn upcoming_shuffles(&self, info: &BlockInfo) -> Vec<ShuffleSpec> {
        let rounds = self.config.shuffle_round_count;
        let len = self.active.len() as u64;
        let mut eligible = self.num_available_at(info.slot_start);
        let Ok(plan) = plan_block(info.gas_used, eligible, &self.config) else {
            return Vec::new();
        };
        let mut specs = Vec::new();
        for sub in &plan.sub_blocks {
            let seed = selection_seed(&info.randao_mix, &info.root, sub.index, Attempt(0));
            if len > 0 && plan.provers_per_sub_block > 0 {
                specs.push(ShuffleSpec { index_count: len, seed, rounds });
            }
            let selected = plan.provers_per_sub_block.min(eligible);
            eligible = eligible.saturating_sub(selected);
            let selected = usize::try_from(selected).unwrap_or(usize::MAX);
            if let Some((provers, airs)) =
                assignment_shuffle_specs(sub.num_airs, selected, &assignment_seed(&seed), rounds)
            {
                specs.push(provers);
                specs.push(airs);
            }
        }
        if plan.sub_blocks.len() > 1 {
            let count = u64::from(self.config.provers_per_aggproof).min(eligible);
            if len > 0 && count > 0 {
                let seed = aggregator_seed(&info.randao_mix, &info.root);
                specs.push(ShuffleSpec { index_count: len, seed, rounds });
            }
        }
        specs
    }

    /// The shuffler of `spec`: the prepared one if any, else built now.
    pub(super) fn shuffler(&mut self, spec: ShuffleSpec) -> Result<Shuffler> {
        if let Some(i) = self.prepared.iter().position(|s| s.spec() == spec)
            && let Some(shuffler) = self.prepared.remove(i)
        {
            self.shuffler_stats.hits = self.shuffler_stats.hits.saturating_add(1);
            return Ok(shuffler);
        }
        self.shuffler_stats.misses = self.shuffler_stats.misses.saturating_add(1);
        Shuffler::from_spec(spec)
    }
}

/// Serde of the prepared shufflers: each as its spec and whether it carries its whole list,
/// rebuilt on load (equal to the one saved: a shuffler is a pure function of its spec).
pub(super) mod prepared_serde {
    use std::collections::VecDeque;

    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::shuffle::{ShuffleSpec, Shuffler};

    pub(crate) fn serialize<S: Serializer>(
        prepared: &VecDeque<Shuffler>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer
            .collect_seq(prepared.iter().map(|s| (s.spec(), s.carried_whole_list().is_some())))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<VecDeque<Shuffler>, D::Error> {
        let specs = Vec::<(ShuffleSpec, bool)>::deserialize(deserializer)?;
        specs
            .into_iter()
            .map(|(spec, whole)| {
                let shuffler = Shuffler::from_spec(spec).map_err(D::Error::custom)?;
                Ok(if whole { shuffler.with_whole_list() } else { shuffler })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        actions::Action,
        test_utils::Scenario,
        types::{Phase, UnixMillis},
    };

    use crate::test_utils::small_network_config as config;

    /// How a run hands shufflers to the engine before each block.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Prep {
        /// Nothing prepared: every shuffler is built in `on_block`.
        None,
        /// Exactly the predicted specs, carrying their whole lists.
        Exact,
        /// The predicted specs without whole lists, after a flood of unrelated ones.
        ExactAfterFlood,
        /// Only shufflers whose specs differ from the predicted ones (other seeds, other
        /// lengths, other rounds).
        Wrong,
        /// The predicted ones first, then enough others to push them out of the cache.
        ExactThenFlood,
    }

    fn wrong_specs(spec: ShuffleSpec) -> Vec<ShuffleSpec> {
        let mut seed = spec.seed;
        if let Some(b) = seed.first_mut() {
            *b ^= 1;
        }
        let mut specs = vec![
            ShuffleSpec { seed, ..spec },
            ShuffleSpec { index_count: spec.index_count + 1, ..spec },
            ShuffleSpec { rounds: spec.rounds - 1, ..spec },
        ];
        if spec.index_count > 1 {
            specs.push(ShuffleSpec { index_count: spec.index_count - 1, ..spec });
        }
        specs
    }

    fn flood(engine: &mut Engine, tag: u8) {
        for i in 0..PREPARED_SHUFFLERS_MAX as u64 {
            let spec = ShuffleSpec { index_count: 3 + i, seed: [tag; 32], rounds: 10 };
            engine.prepare_shuffler(Shuffler::from_spec(spec).unwrap());
        }
    }

    fn prepare(engine: &mut Engine, specs: &[ShuffleSpec], prep: Prep, slot: u64) {
        let tag = u8::try_from(slot % 256).unwrap();
        match prep {
            Prep::None => {}
            Prep::Exact => {
                for spec in specs {
                    engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
                }
            }
            Prep::ExactAfterFlood => {
                flood(engine, tag);
                for spec in specs {
                    engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap());
                }
            }
            Prep::Wrong => {
                for spec in specs {
                    for wrong in wrong_specs(*spec) {
                        engine.prepare_shuffler(
                            Shuffler::from_spec(wrong).unwrap().with_whole_list(),
                        );
                    }
                }
            }
            Prep::ExactThenFlood => {
                for spec in specs {
                    engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
                }
                flood(engine, tag);
            }
        }
    }

    /// Blocks of every size (empty, one sub-block, several, a gigagas block split into many
    /// sub-blocks), some rounds proven in T1, the others left to retry; returns every action
    /// the engine emitted (verification requests answered by the scenario's verifier), the
    /// block outcomes and every delivery's result.
    fn run(prep: Prep) -> (Vec<Action>, Vec<String>, ShufflerCacheStats) {
        let mut s = Scenario::new(config(), 100);
        let mut results = Vec::new();
        let gas =
            [10_000_000u64, 120_000_000, 1_000_000_000, 0, 300_000_000, 1_000_000_000, 45_000_000];
        for (slot, gas_used) in (1u64..).zip(gas) {
            let info = crate::test_utils::block_info(slot, gas_used);
            s.advance_to(info.slot_start);
            let specs = s.engine.upcoming_shuffles(&info);
            assert!(!specs.is_empty());
            prepare(&mut s.engine, &specs, prep, slot);
            let before = s.engine.shuffler_cache_stats();
            s.add_block_info(info).unwrap();
            let after = s.engine.shuffler_cache_stats();
            assert_eq!(s.engine.prepared_shufflers(), 0);
            let (hits, misses) = (after.hits - before.hits, after.misses - before.misses);
            match prep {
                // The clock was moved to the slot start before predicting: `on_block` had
                // nothing else to do, and used exactly the predicted shuffles.
                Prep::Exact | Prep::ExactAfterFlood => {
                    assert_eq!((hits, misses), (specs.len() as u64, 0), "slot {slot}");
                }
                Prep::None | Prep::Wrong | Prep::ExactThenFlood => {
                    assert_eq!((hits, misses), (0, specs.len() as u64), "slot {slot}");
                }
            }
            // Even sub-blocks proven in T1 by their first prover; odd ones retried after T5.
            for key in s.round_keys(&info.root) {
                if key.sub_block.0 % 2 == 1 {
                    continue;
                }
                let Some(&submitter) = s.selected(&key).first() else { continue };
                let parts = s.own_parts(&key, submitter);
                let t = s.time_in(&key, Phase::T1, 100);
                let m = s.commitment_with_full_proof(&key, submitter, &parts);
                results.push(format!("{:?}", s.deliver(m, t)));
            }
        }
        let end = s.now().0 + 200_000;
        s.advance_to(UnixMillis(end));
        results.extend(s.outcomes.iter().map(|o| format!("{o:?}")));
        (s.log, results, s.engine.shuffler_cache_stats())
    }

    /// Engines handed the predicted shufflers, wrong ones, or prepared ones pushed out of the
    /// cache emit exactly the actions (round starts with their prover sets and assignments,
    /// aggregator groups, outcomes) of an engine that builds every shuffler itself.
    #[test]
    fn prepared_shufflers_never_change_the_actions() {
        let (log, results, stats) = run(Prep::None);
        assert_eq!(stats.hits, 0);
        assert!(log.iter().any(|a| matches!(a, Action::AggregatorsSelected { .. })));
        assert!(
            log.iter().any(|a| matches!(a, Action::RoundStarted(r) if r.key.attempt == Attempt(1)))
        );
        assert!(log.iter().any(|a| matches!(a, Action::BlockOutcome(_))));
        for prep in [Prep::Exact, Prep::ExactAfterFlood, Prep::Wrong, Prep::ExactThenFlood] {
            let (l, r, st) = run(prep);
            assert_eq!(l, log, "{prep:?}");
            assert_eq!(r, results, "{prep:?}");
            // The retries (started by ticks) always build their shufflers.
            assert!(st.misses > 0, "{prep:?}");
            assert_eq!(st.hits + st.misses, stats.misses, "{prep:?}");
        }
    }

    /// On a quiet block every predicted spec is used, each once, and nothing else is built.
    #[test]
    fn upcoming_shuffles_are_the_ones_used() {
        let mut s = Scenario::new(config(), 100);
        // 1 Ggas: 20 sub-blocks of 2 provers each, and an aggregator group.
        let info = crate::test_utils::block_info(1, 1_000_000_000);
        s.advance_to(info.slot_start);
        let specs = s.engine.upcoming_shuffles(&info);
        // Per sub-block: selection, provers' and AIRs' permutations; then the aggregators.
        assert_eq!(specs.len(), 20 * 3 + 1);
        let distinct: std::collections::BTreeSet<_> =
            specs.iter().map(|s| (s.index_count, s.seed)).collect();
        assert_eq!(distinct.len(), specs.len());
        for spec in &specs {
            s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap());
        }
        assert_eq!(s.engine.prepared_shufflers(), specs.len());
        s.add_block_info(info).unwrap();
        let stats = s.engine.shuffler_cache_stats();
        assert_eq!(stats, ShufflerCacheStats { hits: specs.len() as u64, misses: 0 });
        assert_eq!(s.engine.prepared_shufflers(), 0);
        // The specs match what was emitted: 100 provers shuffled, 2 selected per sub-block,
        // 13 AIRs per 50 Mgas sub-block.
        let starts = s.round_starts();
        assert_eq!(starts.len(), 20);
        for (start, chunk) in starts.iter().zip(specs.chunks(3)) {
            assert_eq!(chunk[0].index_count, 100);
            assert_eq!(chunk[1].index_count, start.selected.len() as u64);
            assert_eq!(chunk[2].index_count, u64::from(start.num_airs));
            assert_eq!(chunk[2].seed, chunk[1].seed.map(|b| !b));
        }
        assert_eq!(specs.last().unwrap().seed, aggregator_seed(&info.randao_mix, &info.root));
    }

    /// Predictions follow the eligible provers: with most provers busy, the assignment specs
    /// have the capped selected counts and the aggregator group shrinks or disappears.
    #[test]
    fn upcoming_shuffles_follow_availability() {
        let mut s = Scenario::new(config(), 9);
        let info = crate::test_utils::block_info(1, 120_000_000);
        s.advance_to(info.slot_start);
        let specs = s.engine.upcoming_shuffles(&info);
        // 9 available: 2 sub-blocks (9 / 4), 2 provers each, aggregators min(2, 5).
        assert_eq!(specs.len(), 2 * 3 + 1);
        for spec in &specs {
            s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
        }
        s.add_block_info(info).unwrap();
        assert_eq!(s.engine.shuffler_cache_stats().hits, specs.len() as u64);
        // 3 left available (the others are busy until block 1's T3 closes): one sub-block of
        // one prover, no aggregators.
        let mut next = crate::test_utils::block_info(2, 120_000_000);
        next.slot_start = UnixMillis(info.slot_start.0 + 1_000);
        s.advance_to(next.slot_start);
        let specs = s.engine.upcoming_shuffles(&next);
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[1].index_count, 1);
        for spec in &specs {
            s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap());
        }
        let before = s.engine.shuffler_cache_stats();
        s.add_block_info(next).unwrap();
        let after = s.engine.shuffler_cache_stats();
        assert_eq!((after.hits - before.hits, after.misses - before.misses), (3, 0));
        // Nobody active: nothing to shuffle.
        let empty = Engine::new(config(), *s.ctx());
        assert!(empty.upcoming_shuffles(&crate::test_utils::block_info(3, 10_000_000)).is_empty());
    }

    #[test]
    fn the_prepared_cache_is_bounded_and_emptied_by_on_block() {
        let mut s = Scenario::new(config(), 12);
        flood(&mut s.engine, 1);
        flood(&mut s.engine, 2);
        assert_eq!(s.engine.prepared_shufflers(), PREPARED_SHUFFLERS_MAX);
        // The same spec again replaces, not adds.
        let spec = ShuffleSpec { index_count: 3, seed: [2; 32], rounds: 10 };
        s.engine.prepare_shuffler(Shuffler::from_spec(spec).unwrap().with_whole_list());
        assert_eq!(s.engine.prepared_shufflers(), PREPARED_SHUFFLERS_MAX);
        s.add_block(1, 10_000_000).unwrap();
        assert_eq!(s.engine.prepared_shufflers(), 0);
        // A rejected block empties it too.
        flood(&mut s.engine, 3);
        let info = crate::test_utils::block_info(1, 10_000_000);
        assert!(s.engine.on_block(info, s.now()).is_err());
        assert_eq!(s.engine.prepared_shufflers(), 0);
    }
}
