//! Settlement: a [`BlockOutcome`] and a [`RewardTable`] in, a [`Ledger`] out.
//!
//! The rules, and every decision where the spec is silent, are described in `docs/protocol.md`,
//! section "Rewards and settlement". Settlement depends only on the *content* of the outcome,
//! never on the order of its lists: every "first" is the earliest by arrival time, ties broken by
//! prover index, then by the remaining fields.
//!
//! Settlement runs once per block (in the simulator, for every simulated block), so it is written
//! for speed with plain data: the selected provers of a round are sorted once and everything
//! known about one of them lives in a per-prover record, found through a position table (or by
//! binary search when prover indices are too sparse for one); partial proofs are a sorted,
//! deduplicated vector; rule applications are pushed to a vector that is sorted and merged once
//! per round. The map-based formulation it replaced is kept as the reference it is tested
//! against (`settle/reference.rs`): both give the same ledger, and the same error, for every
//! outcome.
//!
//! This module holds the entry point, [`settle`], and the block-level checks on the list of
//! rounds. The rest is one concept per file:
//!
//! - `round.rs`: one round, phase by phase, and where it stops (the finalising phase);
//! - `provers.rs`: the selected provers of a round, their per-prover records and position table;
//! - `full_proof.rs`: the valid full proofs of a round, and the rules of a full proof in T1/T2;
//! - `commitment.rs`: the T1 commitment rules;
//! - `partial.rs`: the partial proofs that count (assigned and open slots) and the T2 rules;
//! - `aggregation.rs`: T3 aggregation and its T4/T5 fallbacks: non-participation and full proofs;
//! - `agg_proof.rs`: the block-level AggProof rules;
//! - `counter.rs`: rule applications counted by runs and turned into ledger entries.

use phase_engine::{Attempt, BlockOutcome, RoundOutcome, SubBlockIndex};

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::table::RewardTable;

mod agg_proof;
mod aggregation;
mod commitment;
mod counter;
mod full_proof;
mod partial;
mod provers;
mod round;

#[cfg(any(test, feature = "bench-reference"))]
pub(crate) mod reference;

#[cfg(test)]
mod tests;

use agg_proof::settle_agg_proofs;
use counter::Counter;
use round::settle_round;

/// The map-based settlement [`settle`] replaced, for benchmarks that measure the two side by
/// side (feature `bench-reference`). Same result as [`settle`], slower.
#[cfg(feature = "bench-reference")]
#[doc(hidden)]
pub fn settle_reference(outcome: &BlockOutcome, table: &RewardTable) -> Result<Ledger> {
    reference::settle(outcome, table)
}

/// Settles one block: applies every rule of the reward table to every round of the outcome
/// (each sub-block, each attempt) and to the block's AggProof, and returns the ledger in
/// canonical order.
///
/// Errors on an inconsistent outcome (a round of another block, a duplicate round, an assignment
/// of an unselected prover, a full proof outside the finalising phase, a finalising phase without
/// a full proof, an AggProof without aggregator group) and on arithmetic overflow.
pub fn settle(outcome: &BlockOutcome, table: &RewardTable) -> Result<Ledger> {
    let mut entries = Vec::new();
    let first_duplicate = first_duplicate_round(&outcome.rounds);
    let mut counter = Counter::default();
    for (i, round) in outcome.rounds.iter().enumerate() {
        let key = round.key;
        if key.block_root != outcome.block_root {
            return Err(Error::ForeignRound {
                sub_block: key.sub_block,
                attempt: key.attempt,
                got: key.block_root,
                expected: outcome.block_root,
            });
        }
        if first_duplicate == Some(i) {
            return Err(Error::DuplicateRound { sub_block: key.sub_block, attempt: key.attempt });
        }
        let divisor = settle_round(round, &mut counter)?;
        counter.drain_into_entries(key.sub_block, key.attempt, table, divisor, &mut entries)?;
    }
    settle_agg_proofs(outcome, &mut counter)?;
    counter.drain_into_entries(SubBlockIndex(0), Attempt(0), table, 1, &mut entries)?;
    Ledger::new(outcome.block_root, outcome.slot, entries)
}

/// The position of the first round whose (sub-block, attempt) an earlier round already had.
fn first_duplicate_round(rounds: &[RoundOutcome]) -> Option<usize> {
    if rounds.len() < 2 {
        return None;
    }
    let mut keys: Vec<(SubBlockIndex, Attempt, usize)> =
        rounds.iter().enumerate().map(|(i, r)| (r.key.sub_block, r.key.attempt, i)).collect();
    keys.sort_unstable();
    // Within a run of equal keys (ascending by position), the second position is the first
    // repetition of that key; the earliest of those is the first duplicate.
    keys.windows(2)
        .filter_map(|w| match w {
            [(s, a, _), (s2, a2, i)] if (s, a) == (s2, a2) => Some(*i),
            _ => None,
        })
        .min()
}
