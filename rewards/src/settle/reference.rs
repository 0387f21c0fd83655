//! The straightforward, map-based settlement that [`super::settle`] replaced, kept as the
//! reference it is tested (and benchmarked) against: the same rules written with `BTreeMap`s and
//! `BTreeSet`s, and the ledger built by merging entries through a `BTreeMap`. Any difference
//! between the two, in entries or in errors, is a bug of the fast one.

use std::collections::{BTreeMap, BTreeSet};

use phase_engine::{
    AggProofRecord, AirIndex, Amount, Attempt, BlockOutcome, FullProofRecord, PartRef, Phase,
    ProverIndex, Root, RoundOutcome, Slot, SubBlockIndex, UnixMillis, ValidatorIndex,
};

use crate::error::{Error, Result};
use crate::ledger::{Account, Ledger, LedgerEntry, MAX_LEDGER_ENTRIES};
use crate::table::{AggregationRules, RewardTable, Rule};

/// The reference `Ledger::new`: merges equal keys through a `BTreeMap` (checked sums, in input
/// order), drops zero amounts and bounds the length; the result is canonical, which the fast
/// `Ledger::new` keeps as it is.
pub(crate) fn ledger_new(
    block_root: Root,
    slot: Slot,
    entries: Vec<LedgerEntry>,
) -> Result<Ledger> {
    let mut merged: BTreeMap<(SubBlockIndex, Attempt, Phase, Rule, Account), Amount> =
        BTreeMap::new();
    for e in entries {
        let slot = merged.entry((e.sub_block, e.attempt, e.phase, e.rule, e.account)).or_default();
        slot.0 = slot.0.checked_add(e.amount.0).ok_or(Error::Overflow { context: "entry sum" })?;
    }
    let entries: Vec<LedgerEntry> = merged
        .into_iter()
        .filter(|(_, amount)| amount.0 != 0)
        .map(|((sub_block, attempt, phase, rule, account), amount)| LedgerEntry {
            sub_block,
            attempt,
            phase,
            rule,
            account,
            amount,
        })
        .collect();
    if entries.len() > MAX_LEDGER_ENTRIES {
        return Err(Error::LedgerTooLong { len: entries.len(), max: MAX_LEDGER_ENTRIES });
    }
    Ledger::new(block_root, slot, entries)
}

/// Settles one block: applies every rule of the reward table to every round of the outcome
/// (each sub-block, each attempt) and to the block's AggProof, and returns the ledger in
/// canonical order.
///
/// Errors on an inconsistent outcome (a round of another block, a duplicate round, an assignment
/// of an unselected prover, a full proof outside the finalising phase, a finalising phase without
/// a full proof, an AggProof without aggregator group) and on arithmetic overflow.
pub(crate) fn settle(outcome: &BlockOutcome, table: &RewardTable) -> Result<Ledger> {
    let mut entries = Vec::new();
    let mut seen = BTreeSet::new();
    for round in &outcome.rounds {
        let key = round.key;
        if key.block_root != outcome.block_root {
            return Err(Error::ForeignRound {
                sub_block: key.sub_block,
                attempt: key.attempt,
                got: key.block_root,
                expected: outcome.block_root,
            });
        }
        if !seen.insert((key.sub_block, key.attempt)) {
            return Err(Error::DuplicateRound { sub_block: key.sub_block, attempt: key.attempt });
        }
        let mut counter = Counter::default();
        let divisor = settle_round(round, &mut counter)?;
        counter.into_entries(key.sub_block, key.attempt, table, divisor, &mut entries)?;
    }
    let mut counter = Counter::default();
    settle_agg_proofs(outcome, &mut counter)?;
    counter.into_entries(SubBlockIndex(0), Attempt(0), table, 1, &mut entries)?;
    ledger_new(outcome.block_root, outcome.slot, entries)
}

/// How many times each rule applies to each account in one round (or at block level).
#[derive(Default)]
struct Counter {
    counts: BTreeMap<(Phase, Rule, Account), u64>,
}

impl Counter {
    fn add(&mut self, phase: Phase, rule: Rule, account: Account, times: u64) -> Result<()> {
        let count = self.counts.entry((phase, rule, account)).or_default();
        *count = count.checked_add(times).ok_or(Error::Overflow { context: "rule count" })?;
        Ok(())
    }

    fn prover(&mut self, phase: Phase, rule: Rule, prover: ProverIndex) -> Result<()> {
        self.add(phase, rule, Account::Prover(prover), 1)
    }

    fn validator(&mut self, phase: Phase, rule: Rule, validator: ValidatorIndex) -> Result<()> {
        self.add(phase, rule, Account::Validator(validator), 1)
    }

    /// Multiplies each count by its rule's amount; averaged rules are then divided by `divisor`
    /// (the number of valid full proofs of the phase), truncating toward zero.
    fn into_entries(
        self,
        sub_block: SubBlockIndex,
        attempt: Attempt,
        table: &RewardTable,
        divisor: u64,
        out: &mut Vec<LedgerEntry>,
    ) -> Result<()> {
        let divisor = i64::try_from(divisor).map_err(|_| Error::Overflow { context: "divisor" })?;
        for ((phase, rule, account), count) in self.counts {
            let count = i64::try_from(count).map_err(|_| Error::Overflow { context: "count" })?;
            let mut amount = table
                .amount(rule)
                .0
                .checked_mul(count)
                .ok_or(Error::Overflow { context: "rule amount" })?;
            if rule.is_averaged() {
                amount =
                    amount.checked_div(divisor).ok_or(Error::Overflow { context: "average" })?;
                if amount == 0 {
                    continue;
                }
            }
            out.push(LedgerEntry {
                sub_block,
                attempt,
                phase,
                rule,
                account,
                amount: Amount(amount),
            });
        }
        Ok(())
    }
}

/// A partial proof that counts (assigned to a prover that did not decline, or the first valid
/// ones for the open slots of a declined AIR), with its including validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Counted {
    author: ProverIndex,
    air: AirIndex,
    validator: ValidatorIndex,
}

/// Applies every per-round rule; returns the divisor for averaged rules.
fn settle_round(round: &RoundOutcome, c: &mut Counter) -> Result<u64> {
    let (sub_block, attempt) = (round.key.sub_block, round.key.attempt);
    let mismatch = |prover| Error::AssignmentMismatch { sub_block, attempt, prover };

    // --- who is who ---------------------------------------------------------------------
    let mut selected = BTreeSet::new();
    for &p in &round.selected {
        if !selected.insert(p) {
            return Err(mismatch(p));
        }
    }
    let mut assigned: BTreeMap<ProverIndex, BTreeSet<AirIndex>> = BTreeMap::new();
    for a in &round.assignments {
        if !selected.contains(&a.prover)
            || assigned.insert(a.prover, a.airs.iter().copied().collect()).is_some()
        {
            return Err(mismatch(a.prover));
        }
    }
    let mut declined = BTreeSet::new();
    for &p in &round.declined {
        if !selected.contains(&p) {
            return Err(mismatch(p));
        }
        declined.insert(p);
    }
    let active: BTreeSet<ProverIndex> = selected.difference(&declined).copied().collect();
    let equivocators: BTreeSet<ProverIndex> =
        round.equivocations.iter().map(|e| e.prover).collect();
    // Paid "for each selected prover" when a full proof arrives in T1 or T2.
    let eligible: Vec<ProverIndex> =
        active.iter().copied().filter(|p| !equivocators.contains(p)).collect();

    // --- full proofs: all in the finalising phase, canonical order, one per submitter ----
    let mut proofs: Vec<&FullProofRecord> = round.full_proofs.iter().collect();
    for f in &proofs {
        if Some(f.inclusion.phase) != round.finalized_in {
            return Err(Error::FullProofOutsideFinalizingPhase {
                sub_block,
                attempt,
                submitter: f.submitter,
                phase: f.inclusion.phase,
                finalized_in: round.finalized_in,
            });
        }
    }
    proofs.sort_by(|a, b| full_proof_key(a).cmp(&full_proof_key(b)));
    let mut submitters = BTreeSet::new();
    proofs.retain(|f| submitters.insert(f.submitter));
    let first = proofs.first().copied();
    if let (Some(phase), None) = (round.finalized_in, first) {
        return Err(Error::FinalizedWithoutFullProof { sub_block, attempt, phase });
    }

    // --- T1 ----------------------------------------------------------------------------------
    if let (Some(Phase::T1), Some(first)) = (round.finalized_in, first) {
        full_proof_rules(c, Phase::T1, &eligible, first)?;
        return Ok(1);
    }
    // Earliest valid T1 commitment of each selected prover.
    let mut commitments: BTreeMap<ProverIndex, (UnixMillis, ValidatorIndex)> = BTreeMap::new();
    for rec in &round.commitments {
        if rec.inclusion.phase != Phase::T1 || !selected.contains(&rec.prover) {
            continue;
        }
        let at = (rec.inclusion.arrived_at, rec.inclusion.validator);
        commitments.entry(rec.prover).and_modify(|cur| *cur = (*cur).min(at)).or_insert(at);
    }
    for (prover, (_, validator)) in &commitments {
        if !equivocators.contains(prover) {
            c.validator(Phase::T1, Rule::RewardT1Validator, *validator)?;
        }
    }
    // A prover that neither committed nor declined failed to commit; an equivocator is treated
    // as one that failed to commit, whatever its first T1 message was.
    for p in &selected {
        let failed = !commitments.contains_key(p) && !declined.contains(p);
        if failed || equivocators.contains(p) {
            c.prover(Phase::T1, Rule::PenaltyT1Prover, *p)?;
        }
    }

    // --- T2 ----------------------------------------------------------------------------------
    // Earliest valid partial of each (author, AIR) that arrived by the end of T2.
    let mut partials: BTreeMap<(ProverIndex, AirIndex), (UnixMillis, ValidatorIndex)> =
        BTreeMap::new();
    for rec in &round.partials {
        if rec.inclusion.phase > Phase::T2 {
            continue;
        }
        let at = (rec.inclusion.arrived_at, rec.inclusion.validator);
        partials.entry((rec.prover, rec.air)).and_modify(|cur| *cur = (*cur).min(at)).or_insert(at);
    }
    let mut counted: Vec<Counted> = Vec::new();
    let mut missing: BTreeMap<ProverIndex, u64> = BTreeMap::new();
    // Holders of each AIR (declined or not) and the open slots that declines leave.
    let mut holders: BTreeMap<AirIndex, BTreeSet<ProverIndex>> = BTreeMap::new();
    let mut open_slots: BTreeMap<AirIndex, usize> = BTreeMap::new();
    for (prover, airs) in &assigned {
        for &air in airs {
            holders.entry(air).or_default().insert(*prover);
            if declined.contains(prover) {
                let slots = open_slots.entry(air).or_default();
                *slots = slots.checked_add(1).ok_or(Error::Overflow { context: "open slots" })?;
            } else if let Some((_, validator)) = partials.get(&(*prover, air)) {
                counted.push(Counted { author: *prover, air, validator: *validator });
            } else {
                let m = missing.entry(*prover).or_default();
                *m = m.checked_add(1).ok_or(Error::Overflow { context: "missing partials" })?;
            }
        }
    }
    for (&air, &slots) in &open_slots {
        let no_holders = BTreeSet::new();
        let air_holders = holders.get(&air).unwrap_or(&no_holders);
        let mut candidates: Vec<(UnixMillis, ProverIndex, ValidatorIndex)> = partials
            .iter()
            .filter(|((author, a), _)| {
                *a == air && !air_holders.contains(author) && !declined.contains(author)
            })
            .map(|((author, _), (at, validator))| (*at, *author, *validator))
            .collect();
        candidates.sort_unstable();
        counted.extend(candidates.into_iter().take(slots).map(|(_, author, validator)| Counted {
            author,
            air,
            validator,
        }));
    }
    counted.sort_unstable();

    if let (Some(Phase::T2), Some(first)) = (round.finalized_in, first) {
        full_proof_rules(c, Phase::T2, &eligible, first)?;
        return Ok(1);
    }
    for k in &counted {
        c.prover(Phase::T2, Rule::RewardT2Prover, k.author)?;
        c.validator(Phase::T2, Rule::RewardT2Validator, k.validator)?;
    }
    for (prover, times) in &missing {
        c.add(Phase::T2, Rule::PenaltyT2Prover, Account::Prover(*prover), *times)?;
    }

    // --- T3, T4, T5 --------------------------------------------------------------------------
    let participants: BTreeSet<ProverIndex> = counted.iter().map(|k| k.author).collect();
    let last = round.finalized_in.unwrap_or(Phase::T5);
    for phase in [Phase::T3, Phase::T4, Phase::T5].into_iter().filter(|p| *p <= last) {
        let Some(rules) = AggregationRules::of(phase) else { continue };
        let finalizing = round.finalized_in == Some(phase);
        for p in &active {
            let submitted = finalizing && submitters.contains(p);
            let has_work = assigned.get(p).is_some_and(|airs| !airs.is_empty());
            if has_work && !participants.contains(p) && !submitted {
                c.prover(phase, rules.non_participation, *p)?;
            }
        }
        if !finalizing {
            continue;
        }
        for f in &proofs {
            c.prover(phase, rules.submitter, f.submitter)?;
            c.validator(phase, rules.validator, f.inclusion.validator)?;
            let reused: BTreeSet<PartRef> =
                f.reused.iter().copied().filter(|r| r.author != f.submitter).collect();
            let times =
                u64::try_from(reused.len()).map_err(|_| Error::Overflow { context: "reuse" })?;
            c.add(phase, rules.reusing, Account::Prover(f.submitter), times)?;
            for r in &reused {
                c.prover(phase, rules.reused, r.author)?;
            }
            for k in &counted {
                let part = PartRef { author: k.author, air: k.air };
                if k.author != f.submitter && !reused.contains(&part) {
                    c.prover(phase, rules.not_reused, k.author)?;
                }
            }
        }
        return u64::try_from(proofs.len()).map_err(|_| Error::Overflow { context: "proof count" });
    }
    Ok(1)
}

/// Canonical order of full proofs: earliest arrival first, then by submitter, then by the rest.
fn full_proof_key(
    f: &FullProofRecord,
) -> (UnixMillis, ProverIndex, ValidatorIndex, Phase, &[PartRef], &[PartRef]) {
    (
        f.inclusion.arrived_at,
        f.submitter,
        f.inclusion.validator,
        f.inclusion.phase,
        f.parts.as_slice(),
        f.reused.as_slice(),
    )
}

/// The rules of a full proof in T1 or T2: each eligible selected prover, the sender extra, and
/// the validator that included the first valid full proof.
fn full_proof_rules(
    c: &mut Counter,
    phase: Phase,
    eligible: &[ProverIndex],
    first: &FullProofRecord,
) -> Result<()> {
    let (prover, sender, validator) = match phase {
        Phase::T1 => (
            Rule::RewardFullProofProverT1,
            Rule::RewardFullProofSenderT1,
            Rule::RewardFullProofValidatorT1,
        ),
        _ => (
            Rule::RewardFullProofProverT2,
            Rule::RewardFullProofSenderT2,
            Rule::RewardFullProofValidatorT2,
        ),
    };
    for p in eligible {
        c.prover(phase, prover, *p)?;
    }
    c.prover(phase, sender, first.submitter)?;
    c.validator(phase, validator, first.inclusion.validator)
}

fn agg_key(a: &AggProofRecord) -> (UnixMillis, ProverIndex, ValidatorIndex, Phase) {
    (a.inclusion.arrived_at, a.submitter, a.inclusion.validator, a.inclusion.phase)
}

/// The AggProof rules: each aggregator (and the sender of the first valid AggProof), and each
/// validator that included a valid AggProof, once.
fn settle_agg_proofs(outcome: &BlockOutcome, c: &mut Counter) -> Result<()> {
    let mut proofs: Vec<&AggProofRecord> = outcome.agg_proofs.iter().collect();
    proofs.sort_by_key(|a| agg_key(a));
    let Some(first) = proofs.first() else { return Ok(()) };
    if outcome.aggregators.is_empty() {
        return Err(Error::AggProofWithoutAggregators);
    }
    let phase = first.inclusion.phase;
    let mut group: BTreeSet<ProverIndex> = outcome.aggregators.iter().copied().collect();
    group.insert(first.submitter);
    for p in group {
        c.prover(phase, Rule::RewardAggProofProver, p)?;
    }
    let mut validators = BTreeSet::new();
    for a in proofs {
        if validators.insert(a.inclusion.validator) {
            c.validator(a.inclusion.phase, Rule::RewardAggProofValidator, a.inclusion.validator)?;
        }
    }
    Ok(())
}
