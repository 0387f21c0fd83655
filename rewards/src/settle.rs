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

use phase_engine::{
    AggProofRecord, AirIndex, Amount, Attempt, BlockOutcome, FullProofRecord, PartRef, Phase,
    ProverIndex, RoundOutcome, SubBlockIndex, UnixMillis, ValidatorIndex,
};

use crate::error::{Error, Result};
use crate::ledger::{Account, Ledger, LedgerEntry};
use crate::table::{AggregationRules, RewardTable, Rule};

#[cfg(any(test, feature = "bench-reference"))]
pub(crate) mod reference;

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

/// How many times each rule applies to each account in one round (or at block level): every
/// application is pushed as it is found; [`Counter::drain_into_entries`] sorts and merges them.
#[derive(Default)]
struct Counter {
    items: Vec<(Phase, Rule, Account, u64)>,
}

impl Counter {
    fn add(&mut self, phase: Phase, rule: Rule, account: Account, times: u64) {
        // A rule applied zero times pays nothing: no entry.
        if times == 0 {
            return;
        }
        // Runs of the same key (one validator including many messages) merge as they come; a
        // sum that would overflow is pushed apart and reported by the final merge.
        if let Some(last) = self.items.last_mut()
            && (last.0, last.1, last.2) == (phase, rule, account)
            && let Some(sum) = last.3.checked_add(times)
        {
            last.3 = sum;
            return;
        }
        self.items.push((phase, rule, account, times));
    }

    /// Applies `rule` to each validator of the tally as many times as it was counted; leaves the
    /// tally empty.
    fn validators(&mut self, phase: Phase, rule: Rule, tally: &mut ValidatorTally) {
        tally.0.sort_unstable();
        for (v, times) in tally.0.drain(..) {
            self.add(phase, rule, Account::Validator(v), times);
        }
    }

    fn prover(&mut self, phase: Phase, rule: Rule, prover: ProverIndex) {
        self.add(phase, rule, Account::Prover(prover), 1);
    }

    fn validator(&mut self, phase: Phase, rule: Rule, validator: ValidatorIndex) {
        self.add(phase, rule, Account::Validator(validator), 1);
    }

    /// Sums the counts of each (phase, rule, account), multiplies each by its rule's amount
    /// (averaged rules are then divided by `divisor`, the number of valid full proofs of the
    /// phase, truncating toward zero) and appends the non-zero results in canonical order.
    /// Leaves the counter empty.
    fn drain_into_entries(
        &mut self,
        sub_block: SubBlockIndex,
        attempt: Attempt,
        table: &RewardTable,
        divisor: u64,
        out: &mut Vec<LedgerEntry>,
    ) -> Result<()> {
        let items = &mut self.items;
        items.sort_unstable_by_key(|&(phase, rule, account, _)| (phase, rule, account));
        let mut overflow = false;
        items.dedup_by(|next, kept| {
            if (next.0, next.1, next.2) != (kept.0, kept.1, kept.2) {
                return false;
            }
            match kept.3.checked_add(next.3) {
                Some(sum) => kept.3 = sum,
                None => overflow = true,
            }
            true
        });
        if overflow {
            return Err(Error::Overflow { context: "rule count" });
        }
        let divisor = i64::try_from(divisor).map_err(|_| Error::Overflow { context: "divisor" })?;
        out.reserve(items.len());
        for (phase, rule, account, count) in items.drain(..) {
            let count = i64::try_from(count).map_err(|_| Error::Overflow { context: "count" })?;
            // (`let else` rather than `ok_or`: no error value is built and dropped per entry.)
            let Some(mut amount) = table.amount(rule).0.checked_mul(count) else {
                return Err(Error::Overflow { context: "rule amount" });
            };
            if rule.is_averaged() {
                let Some(average) = amount.checked_div(divisor) else {
                    return Err(Error::Overflow { context: "average" });
                };
                amount = average;
            }
            // A zero amount is no entry (the ledger would drop it).
            if amount != 0 {
                out.push(LedgerEntry {
                    sub_block,
                    attempt,
                    phase,
                    rule,
                    account,
                    amount: Amount(amount),
                });
            }
        }
        Ok(())
    }
}

/// Including validators counted as they come: a run of the same validator (the proposer that
/// included most messages of a phase) is one item.
#[derive(Default)]
struct ValidatorTally(Vec<(ValidatorIndex, u64)>);

impl ValidatorTally {
    fn push(&mut self, v: ValidatorIndex) {
        match self.0.last_mut() {
            // At most one count per message of the round: never near `u64::MAX`.
            Some((last, times)) if *last == v => *times = times.saturating_add(1),
            _ => self.0.push((v, 1)),
        }
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

/// Everything settlement needs to know about one selected prover of a round.
#[derive(Clone, Copy, Debug, Default)]
struct Selected {
    /// Its AIRs (ascending, without repeats): `airs[airs_from..airs_to]` of the round.
    airs_from: usize,
    airs_to: usize,
    /// It has an assignment (an empty one counts).
    assigned: bool,
    declined: bool,
    equivocator: bool,
    /// It submitted one of the round's valid full proofs.
    submitted: bool,
    /// One of its partial proofs counts.
    participant: bool,
    /// Its earliest valid T1 commitment: arrival and including validator.
    commitment: Option<(UnixMillis, ValidatorIndex)>,
    /// Its assigned AIRs (not declined) without a valid partial by the end of T2.
    missing: u64,
}

/// The selected provers of a round, sorted, with their [`Selected`] records.
struct Provers {
    ids: Vec<ProverIndex>,
    /// `table[p]` is the position of prover `p` in `ids` (`u32::MAX`: not selected), when the
    /// largest selected index is small enough for a table (registry indices usually are);
    /// empty otherwise, and positions are found by binary search.
    table: Vec<u32>,
    state: Vec<Selected>,
    /// The AIRs of every assignment, one ascending segment per prover.
    airs: Vec<AirIndex>,
}

impl Provers {
    fn position(&self, p: ProverIndex) -> Option<usize> {
        if self.table.is_empty() {
            return self.ids.binary_search(&p).ok();
        }
        let at = *usize::try_from(p.0).ok().and_then(|i| self.table.get(i))?;
        if at == u32::MAX { None } else { usize::try_from(at).ok() }
    }

    /// The position table of `ids` (sorted, without repeats), if it is small: at most 16 entries
    /// per selected prover, or 4096.
    fn table(ids: &[ProverIndex]) -> Vec<u32> {
        let Some(len) = ids.last().and_then(|max| usize::try_from(max.0).ok()?.checked_add(1))
        else {
            return Vec::new();
        };
        if len > ids.len().saturating_mul(16).max(4096) || u32::try_from(ids.len()).is_err() {
            return Vec::new();
        }
        let mut table = vec![u32::MAX; len];
        for (at, p) in (0u32..).zip(ids) {
            if let Some(slot) = usize::try_from(p.0).ok().and_then(|i| table.get_mut(i)) {
                *slot = at;
            }
        }
        table
    }

    fn get(&self, p: ProverIndex) -> Option<&Selected> {
        self.position(p).and_then(|i| self.state.get(i))
    }

    fn get_mut(&mut self, p: ProverIndex) -> Option<&mut Selected> {
        self.position(p).and_then(|i| self.state.get_mut(i))
    }

    fn airs_of(&self, s: &Selected) -> &[AirIndex] {
        self.airs.get(s.airs_from..s.airs_to).unwrap_or_default()
    }

    /// `p` is selected and `air` is in its assignment (declined or not).
    fn holds(&self, p: ProverIndex, air: AirIndex) -> bool {
        self.get(p).is_some_and(|s| self.airs_of(s).binary_search(&air).is_ok())
    }

    fn declined(&self, p: ProverIndex) -> bool {
        self.get(p).is_some_and(|s| s.declined)
    }

    /// Selected provers, ascending, with their records.
    fn iter(&self) -> impl Iterator<Item = (ProverIndex, &Selected)> {
        self.ids.iter().copied().zip(&self.state)
    }
}

/// Sorts the selected provers and reads the assignments, declines and equivocations into their
/// records. Errors, in the order of the lists, on a repeated selected prover, an assignment of an
/// unselected prover or a second assignment, and a decline of an unselected prover.
fn read_provers(round: &RoundOutcome) -> Result<Provers> {
    let (sub_block, attempt) = (round.key.sub_block, round.key.attempt);
    let mismatch = |prover| Error::AssignmentMismatch { sub_block, attempt, prover };

    let mut ids = round.selected.clone();
    ids.sort_unstable();
    if ids.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
        // Report the first repetition in list order.
        let mut seen = std::collections::BTreeSet::new();
        for &p in &round.selected {
            if !seen.insert(p) {
                return Err(mismatch(p));
            }
        }
    }
    let mut provers = Provers {
        state: vec![Selected::default(); ids.len()],
        table: Provers::table(&ids),
        ids,
        airs: Vec::with_capacity(round.assignments.iter().map(|a| a.airs.len()).sum()),
    };
    for a in &round.assignments {
        let Some(i) = provers.position(a.prover) else { return Err(mismatch(a.prover)) };
        let from = provers.airs.len();
        provers.airs.extend_from_slice(&a.airs);
        let ascending = provers.airs.get(from..).unwrap_or_default().windows(2).all(|w| match w {
            [x, y] => x < y,
            _ => true,
        });
        if !ascending {
            let mut own = provers.airs.split_off(from);
            own.sort_unstable();
            own.dedup();
            provers.airs.append(&mut own);
        }
        let to = provers.airs.len();
        let Some(s) = provers.state.get_mut(i) else { return Err(mismatch(a.prover)) };
        if s.assigned {
            return Err(mismatch(a.prover));
        }
        *s = Selected { airs_from: from, airs_to: to, assigned: true, ..*s };
    }
    for &p in &round.declined {
        let Some(s) = provers.get_mut(p) else { return Err(mismatch(p)) };
        s.declined = true;
    }
    for e in &round.equivocations {
        // Only a selected equivocator changes anything.
        if let Some(s) = provers.get_mut(e.prover) {
            s.equivocator = true;
        }
    }
    Ok(provers)
}

/// Applies every per-round rule; returns the divisor for averaged rules.
fn settle_round(round: &RoundOutcome, c: &mut Counter) -> Result<u64> {
    let (sub_block, attempt) = (round.key.sub_block, round.key.attempt);
    let mut provers = read_provers(round)?;

    // --- full proofs: all in the finalising phase, canonical order, one per submitter ----
    for f in &round.full_proofs {
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
    let mut proofs: Vec<&FullProofRecord> = round.full_proofs.iter().collect();
    proofs.sort_by(|a, b| full_proof_key(a).cmp(&full_proof_key(b)));
    if proofs.len() > 1 {
        // Keep the first proof of each submitter: sort positions by (submitter, position).
        let mut by_submitter: Vec<(ProverIndex, usize)> =
            proofs.iter().enumerate().map(|(i, f)| (f.submitter, i)).collect();
        by_submitter.sort_unstable();
        let mut keep = vec![false; proofs.len()];
        let mut last = None;
        for (submitter, i) in by_submitter {
            if last != Some(submitter) {
                last = Some(submitter);
                if let Some(k) = keep.get_mut(i) {
                    *k = true;
                }
            }
        }
        let mut keep = keep.into_iter();
        proofs.retain(|_| keep.next().unwrap_or(false));
    }
    for f in &proofs {
        if let Some(s) = provers.get_mut(f.submitter) {
            s.submitted = true;
        }
    }
    let first = proofs.first().copied();
    if let (Some(phase), None) = (round.finalized_in, first) {
        return Err(Error::FinalizedWithoutFullProof { sub_block, attempt, phase });
    }

    // --- T1 ----------------------------------------------------------------------------------
    if let (Some(Phase::T1), Some(first)) = (round.finalized_in, first) {
        full_proof_rules(c, Phase::T1, &provers, first);
        return Ok(1);
    }
    // Earliest valid T1 commitment of each selected prover.
    for rec in &round.commitments {
        if rec.inclusion.phase != Phase::T1 {
            continue;
        }
        if let Some(s) = provers.get_mut(rec.prover) {
            let at = (rec.inclusion.arrived_at, rec.inclusion.validator);
            s.commitment = Some(s.commitment.map_or(at, |cur| cur.min(at)));
        }
    }
    let mut validators = ValidatorTally::default();
    for (p, s) in provers.iter() {
        if let Some((_, validator)) = s.commitment
            && !s.equivocator
        {
            validators.push(validator);
        }
        // A prover that neither committed nor declined failed to commit; an equivocator is
        // treated as one that failed to commit, whatever its first T1 message was.
        let failed = s.commitment.is_none() && !s.declined;
        if failed || s.equivocator {
            c.prover(Phase::T1, Rule::PenaltyT1Prover, p);
        }
    }
    c.validators(Phase::T1, Rule::RewardT1Validator, &mut validators);

    // --- T2 ----------------------------------------------------------------------------------
    // Earliest valid partial of each (author, AIR) that arrived by the end of T2: sorted by
    // (author, AIR, arrival, validator), the first of each (author, AIR).
    let mut partials: Vec<(ProverIndex, AirIndex, UnixMillis, ValidatorIndex)> = round
        .partials
        .iter()
        .filter(|r| r.inclusion.phase <= Phase::T2)
        .map(|r| (r.prover, r.air, r.inclusion.arrived_at, r.inclusion.validator))
        .collect();
    partials.sort_unstable();
    partials.dedup_by(|next, kept| (next.0, next.1) == (kept.0, kept.1));

    let mut counted: Vec<Counted> = Vec::with_capacity(partials.len());
    // AIRs of declined assignments, once per decline: the open slots.
    let mut open: Vec<AirIndex> = Vec::new();
    // Provers ascending, their AIRs ascending: one merge pass over the sorted partials.
    let mut cursor = partials.iter().peekable();
    for (i, p) in provers.ids.iter().enumerate() {
        let Some(s) = provers.state.get_mut(i) else { continue };
        let airs = provers.airs.get(s.airs_from..s.airs_to).unwrap_or_default();
        if s.declined {
            open.extend_from_slice(airs);
            continue;
        }
        for &air in airs {
            while cursor.next_if(|x| (x.0, x.1) < (*p, air)).is_some() {}
            match cursor.peek() {
                Some(&&(author, a, _, validator)) if (author, a) == (*p, air) => {
                    counted.push(Counted { author, air, validator });
                    s.participant = true;
                }
                _ => {
                    let Some(missing) = s.missing.checked_add(1) else {
                        return Err(Error::Overflow { context: "missing partials" });
                    };
                    s.missing = missing;
                }
            }
        }
    }
    if !open.is_empty() {
        open.sort_unstable();
        let mut candidates: Vec<(UnixMillis, ProverIndex, ValidatorIndex)> = Vec::new();
        for run in open.chunk_by(|a, b| a == b) {
            let (Some(&air), slots) = (run.first(), run.len()) else { continue };
            // The first valid partials of the AIR by provers that neither hold it nor declined.
            candidates.clear();
            candidates.extend(
                partials
                    .iter()
                    .filter(|x| x.1 == air && !provers.holds(x.0, air) && !provers.declined(x.0))
                    .map(|x| (x.2, x.0, x.3)),
            );
            candidates.sort_unstable();
            for &(_, author, validator) in candidates.iter().take(slots) {
                counted.push(Counted { author, air, validator });
                if let Some(s) = provers.get_mut(author) {
                    s.participant = true;
                }
            }
        }
        counted.sort_unstable();
    }

    if let (Some(Phase::T2), Some(first)) = (round.finalized_in, first) {
        full_proof_rules(c, Phase::T2, &provers, first);
        return Ok(1);
    }
    for k in &counted {
        c.prover(Phase::T2, Rule::RewardT2Prover, k.author);
        validators.push(k.validator);
    }
    c.validators(Phase::T2, Rule::RewardT2Validator, &mut validators);
    for (p, s) in provers.iter() {
        c.add(Phase::T2, Rule::PenaltyT2Prover, Account::Prover(p), s.missing);
    }

    // --- T3, T4, T5 --------------------------------------------------------------------------
    let last = round.finalized_in.unwrap_or(Phase::T5);
    for phase in [Phase::T3, Phase::T4, Phase::T5].into_iter().filter(|p| *p <= last) {
        let Some(rules) = AggregationRules::of(phase) else { continue };
        let finalizing = round.finalized_in == Some(phase);
        for (p, s) in provers.iter() {
            let submitted = finalizing && s.submitted;
            let has_work = s.airs_to > s.airs_from;
            if !s.declined && has_work && !s.participant && !submitted {
                c.prover(phase, rules.non_participation, p);
            }
        }
        if !finalizing {
            continue;
        }
        aggregation_rules(c, phase, rules, &proofs, &counted)?;
        return u64::try_from(proofs.len()).map_err(|_| Error::Overflow { context: "proof count" });
    }
    Ok(1)
}

/// What the full proofs of an aggregation phase did with one author's counted partials.
#[derive(Clone, Copy, Debug)]
struct AuthorTally {
    author: ProverIndex,
    /// Its counted partials.
    partials: u64,
    /// Valid full proofs it submitted (at most one: one per submitter).
    submitted: u64,
    /// Its counted partials reused by another prover's full proof, summed over the proofs.
    reused: u64,
}

/// The rules of the full proofs of the finalising aggregation phase: each submitter, each
/// including validator, each reused partial (for the reusing and the reused prover), and each
/// counted partial that a full proof of another prover did not reuse.
fn aggregation_rules(
    c: &mut Counter,
    phase: Phase,
    rules: AggregationRules,
    proofs: &[&FullProofRecord],
    counted: &[Counted],
) -> Result<()> {
    let overflow = || Error::Overflow { context: "rule count" };
    let reuse_overflow = || Error::Overflow { context: "reuse" };
    // `counted` is ascending by author, one entry per (author, AIR): tally each author's run.
    let mut tallies: Vec<AuthorTally> = Vec::new();
    let mut tally_of: Vec<usize> = Vec::with_capacity(counted.len());
    for k in counted {
        match tallies.last_mut() {
            Some(t) if t.author == k.author => {
                t.partials = t.partials.checked_add(1).ok_or_else(overflow)?;
            }
            _ => {
                tallies.push(AuthorTally { author: k.author, partials: 1, submitted: 0, reused: 0 })
            }
        }
        tally_of.push(tallies.len().saturating_sub(1));
    }
    // Authors of reused partials that do not count (late, or never sent): reused all the same.
    let mut uncounted_reused: Vec<ProverIndex> = Vec::new();
    let mut validators = ValidatorTally::default();
    let mut sorted: Vec<PartRef> = Vec::new();
    for f in proofs {
        c.prover(phase, rules.submitter, f.submitter);
        validators.push(f.inclusion.validator);
        // The distinct reused parts. A list ascending by AIR (as engines write it) has no
        // repeats and is used as it is; any other list is sorted and deduplicated.
        let by_air = f.reused.windows(2).all(|w| matches!(w, [a, b] if a.air < b.air));
        let reused: &[PartRef] = if by_air {
            &f.reused
        } else {
            sorted.clear();
            sorted.extend_from_slice(&f.reused);
            sorted.sort_unstable();
            sorted.dedup();
            &sorted
        };
        let mut times = 0u64;
        // A proof never reuses its own submitter's partials.
        for r in reused.iter().filter(|r| r.author != f.submitter) {
            times = times.checked_add(1).ok_or_else(reuse_overflow)?;
            let found = counted.binary_search_by(|k| (k.author, k.air).cmp(&(r.author, r.air)));
            match found.ok().and_then(|i| tally_of.get(i)).and_then(|&t| tallies.get_mut(t)) {
                Some(t) => t.reused = t.reused.checked_add(1).ok_or_else(overflow)?,
                None => uncounted_reused.push(r.author),
            }
        }
        c.add(phase, rules.reusing, Account::Prover(f.submitter), times);
        if let Ok(t) = tallies.binary_search_by_key(&f.submitter, |t| t.author)
            && let Some(t) = tallies.get_mut(t)
        {
            t.submitted = t.submitted.checked_add(1).ok_or_else(overflow)?;
        }
    }
    c.validators(phase, rules.validator, &mut validators);
    let proofs = u64::try_from(proofs.len()).map_err(|_| Error::Overflow { context: "reuse" })?;
    for t in &tallies {
        c.add(phase, rules.reused, Account::Prover(t.author), t.reused);
        // Every proof of another prover leaves each of the author's counted partials it did not
        // reuse (a proof never "reuses" its own submitter's partials).
        let not_reused = t
            .partials
            .checked_mul(proofs.checked_sub(t.submitted).ok_or_else(overflow)?)
            .and_then(|n| n.checked_sub(t.reused))
            .ok_or_else(overflow)?;
        c.add(phase, rules.not_reused, Account::Prover(t.author), not_reused);
    }
    uncounted_reused.sort_unstable();
    for run in uncounted_reused.chunk_by(|a, b| a == b) {
        if let Some(&author) = run.first() {
            let times = u64::try_from(run.len()).map_err(|_| overflow())?;
            c.add(phase, rules.reused, Account::Prover(author), times);
        }
    }
    Ok(())
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

/// The rules of a full proof in T1 or T2: each selected prover that neither declined nor
/// equivocated, the sender extra, and the validator that included the first valid full proof.
fn full_proof_rules(c: &mut Counter, phase: Phase, provers: &Provers, first: &FullProofRecord) {
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
    for (p, s) in provers.iter() {
        if !s.declined && !s.equivocator {
            c.prover(phase, prover, p);
        }
    }
    c.prover(phase, sender, first.submitter);
    c.validator(phase, validator, first.inclusion.validator);
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
    let mut group: Vec<ProverIndex> = outcome.aggregators.clone();
    group.push(first.submitter);
    group.sort_unstable();
    group.dedup();
    for p in group {
        c.prover(phase, Rule::RewardAggProofProver, p);
    }
    // Each validator once, in the phase of the first (canonical order) proof it included.
    let mut validators: Vec<(ValidatorIndex, usize, Phase)> = proofs
        .iter()
        .enumerate()
        .map(|(i, a)| (a.inclusion.validator, i, a.inclusion.phase))
        .collect();
    validators.sort_unstable();
    validators.dedup_by_key(|v| v.0);
    for (validator, _, phase) in validators {
        c.validator(phase, Rule::RewardAggProofValidator, validator);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use phase_engine::{
        Assignment, CommitmentRecord, EquivocationRecord, Inclusion, PartialRecord, Root, RoundKey,
        Slot,
    };

    use rand::seq::{IndexedRandom, SliceRandom};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::Config;

    const V_T1: ValidatorIndex = ValidatorIndex(10);
    const V_T2: ValidatorIndex = ValidatorIndex(11);
    const V_T2B: ValidatorIndex = ValidatorIndex(12);
    const V_FULL: ValidatorIndex = ValidatorIndex(13);

    fn root() -> Root {
        Root::repeat_byte(7)
    }

    fn table() -> RewardTable {
        Config::default().table
    }

    fn p(i: u64) -> ProverIndex {
        ProverIndex(i)
    }

    fn at(t: u64, phase: Phase, validator: ValidatorIndex) -> Inclusion {
        Inclusion { arrived_at: UnixMillis(t), phase, validator }
    }

    /// Provers 0..4 selected; AIR 0 held by P0 and P2, AIR 1 by P1 and P3 (redundancy 2).
    fn round(sub_block: u32, attempt: u32) -> RoundOutcome {
        let airs = [0, 1, 0, 1];
        RoundOutcome {
            key: RoundKey {
                block_root: root(),
                sub_block: SubBlockIndex(sub_block),
                attempt: Attempt(attempt),
            },
            num_airs: 2,
            selected: (0..4).map(p).collect(),
            assignments: (0..4)
                .map(|i| Assignment { prover: p(i), airs: vec![AirIndex(airs[i as usize])] })
                .collect(),
            declined: vec![],
            commitments: vec![],
            partials: vec![],
            full_proofs: vec![],
            finalized_in: None,
            equivocations: vec![],
        }
    }

    fn commit(r: &mut RoundOutcome, provers: &[u64]) {
        for (t, &i) in (100..).zip(provers) {
            r.commitments
                .push(CommitmentRecord { prover: p(i), inclusion: at(t, Phase::T1, V_T1) });
        }
    }

    fn partial(r: &mut RoundOutcome, prover: u64, air: u32, t: u64, v: ValidatorIndex) {
        let phase = if t < 8_000 { Phase::T2 } else { Phase::T3 };
        r.partials.push(PartialRecord {
            prover: p(prover),
            air: AirIndex(air),
            assigned: true,
            inclusion: at(t, phase, v),
        });
    }

    fn full(r: &mut RoundOutcome, submitter: u64, authors: &[u64], t: u64, phase: Phase) {
        let parts: Vec<PartRef> = (0..)
            .zip(authors)
            .map(|(air, &a)| PartRef { author: p(a), air: AirIndex(air) })
            .collect();
        let reused = parts.iter().copied().filter(|x| x.author != p(submitter)).collect();
        r.full_proofs.push(FullProofRecord {
            submitter: p(submitter),
            parts,
            reused,
            inclusion: at(t, phase, V_FULL),
        });
        r.finalized_in = Some(phase);
    }

    fn block(rounds: Vec<RoundOutcome>) -> BlockOutcome {
        BlockOutcome {
            block_root: root(),
            slot: Slot(5),
            proposer: ValidatorIndex(1),
            rounds,
            aggregators: vec![],
            agg_proofs: vec![],
        }
    }

    fn e(phase: Phase, rule: Rule, account: Account, amount: i64) -> LedgerEntry {
        LedgerEntry {
            sub_block: SubBlockIndex(0),
            attempt: Attempt(0),
            phase,
            rule,
            account,
            amount: Amount(amount),
        }
    }

    fn pr(i: u64) -> Account {
        Account::Prover(p(i))
    }

    fn va(v: ValidatorIndex) -> Account {
        Account::Validator(v)
    }

    fn expect(ledger: &Ledger, expected: Vec<LedgerEntry>) {
        let expected = Ledger::new(ledger.block_root, ledger.slot, expected).unwrap();
        assert_eq!(ledger.entries(), expected.entries());
    }

    #[test]
    fn full_proof_in_t1() {
        let mut r = round(0, 0);
        r.declined.push(p(3));
        commit(&mut r, &[0, 1]); // P2 neither commits nor declines: no penalty, T1 finalised
        full(&mut r, 0, &[0, 0], 150, Phase::T1);
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        use Rule::*;
        expect(
            &ledger,
            vec![
                e(Phase::T1, RewardFullProofProverT1, pr(0), 9000),
                e(Phase::T1, RewardFullProofProverT1, pr(1), 9000),
                e(Phase::T1, RewardFullProofProverT1, pr(2), 9000),
                e(Phase::T1, RewardFullProofSenderT1, pr(0), 50),
                e(Phase::T1, RewardFullProofValidatorT1, va(V_FULL), 1000),
            ],
        );
        assert_eq!(ledger.total().unwrap(), Amount(3 * 9000 + 50 + 1000));
    }

    #[test]
    fn full_proof_in_t2_keeps_t1_rules() {
        let mut r = round(0, 0);
        commit(&mut r, &[0, 1, 3]);
        partial(&mut r, 0, 0, 5_000, V_T2); // no T2 partial rewards once a full proof is in T2
        full(&mut r, 1, &[0, 1], 6_000, Phase::T2);
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        use Rule::*;
        expect(
            &ledger,
            vec![
                e(Phase::T1, RewardT1Validator, va(V_T1), 3 * 3),
                e(Phase::T1, PenaltyT1Prover, pr(2), -1),
                e(Phase::T2, RewardFullProofProverT2, pr(0), 8000),
                e(Phase::T2, RewardFullProofProverT2, pr(1), 8000),
                e(Phase::T2, RewardFullProofProverT2, pr(2), 8000),
                e(Phase::T2, RewardFullProofProverT2, pr(3), 8000),
                e(Phase::T2, RewardFullProofSenderT2, pr(1), 40),
                e(Phase::T2, RewardFullProofValidatorT2, va(V_FULL), 900),
            ],
        );
    }

    /// All commit; P0, P1, P2 prove their AIR in T2, P3 does not; P0 aggregates in T3 reusing
    /// P1's partial.
    fn t3_round() -> RoundOutcome {
        let mut r = round(0, 0);
        commit(&mut r, &[0, 1, 2, 3]);
        partial(&mut r, 0, 0, 5_000, V_T2);
        partial(&mut r, 1, 1, 5_100, V_T2);
        partial(&mut r, 2, 0, 5_200, V_T2B);
        r
    }

    #[test]
    fn aggregation_in_t3_with_reuse() {
        let mut r = t3_round();
        full(&mut r, 0, &[0, 1], 9_000, Phase::T3);
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        use Rule::*;
        expect(
            &ledger,
            vec![
                e(Phase::T1, RewardT1Validator, va(V_T1), 4 * 3),
                e(Phase::T2, RewardT2Validator, va(V_T2), 2 * 3),
                e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
                e(Phase::T2, RewardT2Prover, pr(0), 100),
                e(Phase::T2, RewardT2Prover, pr(1), 100),
                e(Phase::T2, RewardT2Prover, pr(2), 100),
                e(Phase::T2, PenaltyT2Prover, pr(3), -3),
                e(Phase::T3, RewardProverReusingT3, pr(0), 40),
                e(Phase::T3, RewardProverReusedT3, pr(1), 40),
                e(Phase::T3, RewardProverT3, pr(0), 50),
                e(Phase::T3, RewardValidatorT3, va(V_FULL), 1),
                e(Phase::T3, PenaltyProverT3, pr(3), -1),
                // P2's partial of AIR 0 was not reused (P0 used its own).
                e(Phase::T3, PenaltyProverNotreusedT3, pr(2), -1),
            ],
        );
    }

    #[test]
    fn several_full_proofs_in_t3_are_averaged_truncating_toward_zero() {
        let mut r = t3_round();
        full(&mut r, 0, &[0, 1], 9_000, Phase::T3);
        full(&mut r, 2, &[2, 1], 9_100, Phase::T3);
        full(&mut r, 9, &[0, 1], 9_200, Phase::T3); // any prover may aggregate in T3
        let mut t = table();
        t.penalty_prover_notreused_t3 = Amount(-3);
        let ledger = settle(&block(vec![r]), &t).unwrap();
        let got = |rule, i| ledger.entries().iter().find(|x| x.rule == rule && x.account == pr(i));
        let amount = |rule, i| got(rule, i).map(|x| x.amount.0);
        use Rule::*;
        // n = 3 valid full proofs. Reusing: P0 reused 1, P2 reused 1, P9 reused 2.
        assert_eq!(amount(RewardProverReusingT3, 0), Some(40 / 3));
        assert_eq!(amount(RewardProverReusingT3, 2), Some(40 / 3));
        assert_eq!(amount(RewardProverReusingT3, 9), Some(40 * 2 / 3));
        // Reused: P1 by all three, P0 by P9.
        assert_eq!(amount(RewardProverReusedT3, 1), Some(40 * 3 / 3));
        assert_eq!(amount(RewardProverReusedT3, 0), Some(40 / 3));
        // Not reused: P2's partial by P0's and P9's proofs, P0's partial by P2's proof.
        assert_eq!(amount(PenaltyProverNotreusedT3, 2), Some(-3 * 2 / 3));
        assert_eq!(amount(PenaltyProverNotreusedT3, 0), Some(-3 / 3));
        // Not averaged: each submitter, each full proof's validator.
        for i in [0, 2, 9] {
            assert_eq!(amount(RewardProverT3, i), Some(50));
        }
        assert_eq!(ledger.rule_total(RewardValidatorT3).unwrap(), Amount(3));
        // With the default -1, -1 * 2 / 3 and -1 / 3 truncate to 0: no entry at all.
        let r = settle(
            &block(vec![{
                let mut r = t3_round();
                full(&mut r, 0, &[0, 1], 9_000, Phase::T3);
                full(&mut r, 2, &[2, 1], 9_100, Phase::T3);
                full(&mut r, 9, &[0, 1], 9_200, Phase::T3);
                r
            }]),
            &table(),
        )
        .unwrap();
        assert_eq!(r.rule_total(PenaltyProverNotreusedT3).unwrap(), Amount(0));
    }

    #[test]
    fn fallback_in_t4_and_t5_applies_every_reached_non_participation_penalty() {
        use Rule::*;
        for (phase, reusing, reused, submitter, validator, penalties) in [
            (
                Phase::T4,
                RewardProverReusingT4,
                RewardProverReusedT4,
                RewardProverT4,
                RewardValidatorT4,
                vec![(Phase::T3, PenaltyProverT3, -1), (Phase::T4, PenaltyProverT4, -2)],
            ),
            (
                Phase::T5,
                RewardProverReusingT5,
                RewardProverReusedT5,
                RewardProverT5,
                RewardValidatorT5,
                vec![
                    (Phase::T3, PenaltyProverT3, -1),
                    (Phase::T4, PenaltyProverT4, -2),
                    (Phase::T5, PenaltyProverT5, -4),
                ],
            ),
        ] {
            let mut r = t3_round();
            // P2 reuses both P0's and P1's partials: nobody's partial goes unreused.
            full(&mut r, 2, &[0, 1], 13_000, phase);
            let ledger = settle(&block(vec![r]), &table()).unwrap();
            let unit = |rule| table().amount(rule).0;
            let mut expected = vec![
                e(Phase::T1, RewardT1Validator, va(V_T1), 4 * 3),
                e(Phase::T2, RewardT2Validator, va(V_T2), 2 * 3),
                e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
                e(Phase::T2, RewardT2Prover, pr(0), 100),
                e(Phase::T2, RewardT2Prover, pr(1), 100),
                e(Phase::T2, RewardT2Prover, pr(2), 100),
                e(Phase::T2, PenaltyT2Prover, pr(3), -3),
                e(phase, reusing, pr(2), 2 * unit(reusing)),
                e(phase, reused, pr(0), unit(reused)),
                e(phase, reused, pr(1), unit(reused)),
                e(phase, submitter, pr(2), unit(submitter)),
                e(phase, validator, va(V_FULL), 1),
            ];
            expected.extend(penalties.into_iter().map(|(ph, rule, a)| e(ph, rule, pr(3), a)));
            expect(&ledger, expected);
        }
    }

    #[test]
    fn failed_attempt_and_retry_settle_separately() {
        let failed = t3_round(); // no full proof at all: finalized_in None
        let mut retry = round(0, 1);
        retry.selected = (4..8).map(p).collect();
        for (a, i) in retry.assignments.iter_mut().zip(4..) {
            a.prover = p(i);
        }
        commit(&mut retry, &[4, 5, 6, 7]);
        full(&mut retry, 5, &[5, 5], 200, Phase::T1);
        let ledger = settle(&block(vec![failed, retry]), &table()).unwrap();
        use Rule::*;
        let mut expected = vec![
            e(Phase::T1, RewardT1Validator, va(V_T1), 4 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2), 2 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
            e(Phase::T2, RewardT2Prover, pr(0), 100),
            e(Phase::T2, RewardT2Prover, pr(1), 100),
            e(Phase::T2, RewardT2Prover, pr(2), 100),
            e(Phase::T2, PenaltyT2Prover, pr(3), -3),
            e(Phase::T3, PenaltyProverT3, pr(3), -1),
            e(Phase::T4, PenaltyProverT4, pr(3), -2),
            e(Phase::T5, PenaltyProverT5, pr(3), -4),
        ];
        let in_retry = |mut x: LedgerEntry| {
            x.attempt = Attempt(1);
            x
        };
        for i in 4..8 {
            expected.push(in_retry(e(Phase::T1, RewardFullProofProverT1, pr(i), 9000)));
        }
        expected.push(in_retry(e(Phase::T1, RewardFullProofSenderT1, pr(5), 50)));
        expected.push(in_retry(e(Phase::T1, RewardFullProofValidatorT1, va(V_FULL), 1000)));
        expect(&ledger, expected);
    }

    #[test]
    fn declined_airs_pay_the_first_open_partials_as_if_assigned() {
        let mut r = round(0, 0);
        r.declined.push(p(2)); // AIR 0 gets one open slot
        commit(&mut r, &[0, 1, 3]);
        partial(&mut r, 0, 0, 5_000, V_T2);
        partial(&mut r, 1, 1, 5_000, V_T2);
        partial(&mut r, 3, 1, 5_000, V_T2);
        // Open market: P9 first, P8 second (unpaid), P0 holds AIR 0 already (never a slot).
        for (prover, t) in [(8, 5_600), (9, 5_500)] {
            r.partials.push(PartialRecord {
                prover: p(prover),
                air: AirIndex(0),
                assigned: false,
                inclusion: at(t, Phase::T2, V_T2B),
            });
        }
        full(&mut r, 1, &[9, 1], 9_000, Phase::T3);
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        use Rule::*;
        expect(
            &ledger,
            vec![
                e(Phase::T1, RewardT1Validator, va(V_T1), 3 * 3),
                e(Phase::T2, RewardT2Validator, va(V_T2), 3 * 3),
                e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
                e(Phase::T2, RewardT2Prover, pr(0), 100),
                e(Phase::T2, RewardT2Prover, pr(1), 100),
                e(Phase::T2, RewardT2Prover, pr(3), 100),
                e(Phase::T2, RewardT2Prover, pr(9), 100),
                e(Phase::T3, RewardProverReusingT3, pr(1), 40),
                e(Phase::T3, RewardProverReusedT3, pr(9), 40),
                e(Phase::T3, RewardProverT3, pr(1), 50),
                e(Phase::T3, RewardValidatorT3, va(V_FULL), 1),
                e(Phase::T3, PenaltyProverNotreusedT3, pr(0), -1),
                e(Phase::T3, PenaltyProverNotreusedT3, pr(3), -1),
            ],
        );
    }

    #[test]
    fn equivocator_counts_as_not_committed_and_loses_the_full_proof_share() {
        let mut r = round(0, 0);
        commit(&mut r, &[0, 1, 2, 3]);
        r.equivocations.push(EquivocationRecord {
            prover: p(1),
            first: Root::repeat_byte(1),
            second: Root::repeat_byte(2),
        });
        let mut t1 = r.clone();
        full(&mut t1, 0, &[0, 0], 150, Phase::T1);
        let ledger = settle(&block(vec![t1]), &table()).unwrap();
        assert_eq!(ledger.net(pr(1)).unwrap(), Amount(0));
        assert_eq!(ledger.rule_total(Rule::RewardFullProofProverT1).unwrap(), Amount(3 * 9000));

        full(&mut r, 0, &[0, 0], 5_000, Phase::T2);
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        use Rule::*;
        expect(
            &ledger,
            vec![
                e(Phase::T1, RewardT1Validator, va(V_T1), 3 * 3), // P1's commitment is void
                e(Phase::T1, PenaltyT1Prover, pr(1), -1),
                e(Phase::T2, RewardFullProofProverT2, pr(0), 8000),
                e(Phase::T2, RewardFullProofProverT2, pr(2), 8000),
                e(Phase::T2, RewardFullProofProverT2, pr(3), 8000),
                e(Phase::T2, RewardFullProofSenderT2, pr(0), 40),
                e(Phase::T2, RewardFullProofValidatorT2, va(V_FULL), 900),
            ],
        );
    }

    #[test]
    fn late_partials_do_not_count() {
        let mut r = round(0, 0);
        commit(&mut r, &[0, 1, 2, 3]);
        partial(&mut r, 0, 0, 5_000, V_T2);
        partial(&mut r, 1, 1, 8_100, V_T2); // phase T3: late for T2
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        assert_eq!(ledger.net(pr(0)).unwrap(), Amount(100));
        assert_eq!(ledger.net(pr(1)).unwrap(), Amount(-3 - 1 - 2 - 4));
        assert_eq!(ledger.rule_total(Rule::RewardT2Validator).unwrap(), Amount(3));
    }

    #[test]
    fn agg_proof_pays_the_group_the_first_sender_and_each_including_validator() {
        let mut r0 = round(0, 0);
        full(&mut r0, 0, &[0, 0], 150, Phase::T1);
        let mut r1 = round(1, 0);
        full(&mut r1, 1, &[1, 1], 150, Phase::T1);
        let mut b = block(vec![r0, r1]);
        b.aggregators = (20..25).map(p).collect();
        b.agg_proofs = vec![
            AggProofRecord { submitter: p(2), inclusion: at(400, Phase::T1, ValidatorIndex(31)) },
            AggProofRecord { submitter: p(21), inclusion: at(500, Phase::T1, ValidatorIndex(31)) },
            AggProofRecord { submitter: p(22), inclusion: at(600, Phase::T1, ValidatorIndex(32)) },
        ];
        let ledger = settle(&b, &table()).unwrap();
        let agg: Vec<_> = ledger.entries().iter().filter(|x| x.rule.is_block_level()).collect();
        let mut expected: Vec<(Account, i64)> = vec![(pr(2), 50)]; // the first sender
        expected.extend((20..25).map(|i| (pr(i), 50)));
        expected.extend([(va(ValidatorIndex(31)), 3), (va(ValidatorIndex(32)), 3)]);
        assert_eq!(agg.iter().map(|x| (x.account, x.amount.0)).collect::<Vec<_>>(), expected);
        assert!(agg.iter().all(|x| x.sub_block == SubBlockIndex(0) && x.attempt == Attempt(0)));
        // Two sub-blocks of 4 provers each finalised in T1, plus the AggProof rewards.
        let total = 2 * (4 * 9000 + 50 + 1000) + 6 * 50 + 2 * 3;
        assert_eq!(ledger.total().unwrap(), Amount(total));
    }

    #[test]
    fn inconsistent_outcomes_are_typed_errors() {
        let t = table();
        let mut r = round(0, 0);
        r.key.block_root = Root::repeat_byte(9);
        assert!(matches!(settle(&block(vec![r]), &t), Err(Error::ForeignRound { .. })));

        assert!(matches!(
            settle(&block(vec![round(0, 0), round(0, 0)]), &t),
            Err(Error::DuplicateRound { .. })
        ));

        let mut r = round(0, 0);
        r.assignments[0].prover = p(99);
        assert!(matches!(settle(&block(vec![r]), &t), Err(Error::AssignmentMismatch { .. })));
        let mut r = round(0, 0);
        r.declined.push(p(99));
        assert!(matches!(settle(&block(vec![r]), &t), Err(Error::AssignmentMismatch { .. })));

        let mut r = round(0, 0);
        r.finalized_in = Some(Phase::T3);
        assert!(matches!(
            settle(&block(vec![r]), &t),
            Err(Error::FinalizedWithoutFullProof { phase: Phase::T3, .. })
        ));

        let mut r = round(0, 0);
        full(&mut r, 0, &[0, 0], 150, Phase::T1);
        r.finalized_in = Some(Phase::T2);
        assert!(matches!(
            settle(&block(vec![r]), &t),
            Err(Error::FullProofOutsideFinalizingPhase { .. })
        ));

        let mut b = block(vec![]);
        b.agg_proofs.push(AggProofRecord { submitter: p(1), inclusion: at(1, Phase::T1, V_T1) });
        assert!(matches!(settle(&b, &t), Err(Error::AggProofWithoutAggregators)));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let mut t = table();
        t.reward_full_proof_prover_t1 = Amount(i64::MAX);
        let mut r = round(0, 0);
        full(&mut r, 0, &[0, 0], 150, Phase::T1);
        // One entry of i64::MAX per prover is fine; the ledger total overflows.
        let ledger = settle(&block(vec![r.clone()]), &t).unwrap();
        assert!(matches!(ledger.total(), Err(Error::Overflow { .. })));
        // Two rounds paying the same account i64::MAX in the same key cannot happen, but a
        // count times a large amount can.
        t.reward_t1_validator = Amount(i64::MAX);
        let mut r = round(0, 0);
        commit(&mut r, &[0, 1]);
        assert!(matches!(settle(&block(vec![r]), &t), Err(Error::Overflow { .. })));
    }

    #[test]
    fn empty_outcome_settles_to_an_empty_ledger() {
        let ledger = settle(&block(vec![]), &table()).unwrap();
        assert!(ledger.is_empty());
        assert_eq!(ledger.block_root, root());
        assert_eq!(ledger.slot, Slot(5));
    }

    // --- the fast settlement equals the map-based reference ------------------------------------

    /// One element of a non-empty slice, chosen uniformly.
    fn pick<T: Copy>(rng: &mut ChaCha8Rng, v: &[T]) -> T {
        *v.choose(rng).expect("picks from a non-empty slice")
    }

    /// An inclusion at a coarse time in `[from, to)` (coarse so that ties happen), in the phase
    /// of 4 s windows with 500 ms grace, by one of 4 validators.
    fn random_inclusion(rng: &mut ChaCha8Rng, from: u64, to: u64) -> Inclusion {
        let t = from + 100 * rng.random_range(0..(to - from) / 100);
        let phase = Phase::ALL[(t.saturating_sub(500) / 4_000).min(4) as usize];
        at(t, phase, ValidatorIndex(rng.random_range(0..4)))
    }

    /// A random round: mostly consistent, with every oddity settlement must handle (repeated
    /// AIRs, unsorted lists, repeated and late messages, messages of unselected provers, open
    /// market partials, several proofs of one submitter, reuse of missing partials) and, with
    /// `faults`, now and then an inconsistency that settlement rejects.
    fn random_round(
        rng: &mut ChaCha8Rng,
        sub_block: u32,
        attempt: u32,
        faults: bool,
    ) -> RoundOutcome {
        let large = rng.random_bool(0.10);
        let pool_size = if large { 260 } else { 24 };
        let mut pool: Vec<ProverIndex> = (0..pool_size).map(p).collect();
        pool.shuffle(rng);
        let n: usize = rng.random_range(1..=if large { 200 } else { 12 });
        let mut selected: Vec<ProverIndex> = pool[..n].to_vec();
        let outsiders: Vec<ProverIndex> = pool[n..].to_vec();
        let num_airs: u32 = rng.random_range(1..=if large { 20 } else { 6 });
        let redundancy = rng.random_range(1..=n.min(3));
        let mut airs: Vec<Vec<AirIndex>> = vec![Vec::new(); n];
        for air in 0..num_airs {
            let mut who: Vec<usize> = (0..n).collect();
            who.shuffle(rng);
            for &i in &who[..redundancy] {
                airs[i].push(AirIndex(air));
            }
        }
        for a in &mut airs {
            if rng.random_bool(0.10) {
                a.shuffle(rng);
            }
            if !a.is_empty() && rng.random_bool(0.05) {
                let again = pick(rng, a);
                a.push(again);
            }
        }
        let mut assignments: Vec<Assignment> = selected
            .iter()
            .zip(airs)
            .filter(|(_, airs)| !airs.is_empty() || !rng.random_bool(0.20))
            .map(|(p, airs)| Assignment { prover: *p, airs })
            .collect();
        assignments.shuffle(rng);
        let holders = |air: AirIndex, assignments: &[Assignment]| -> Vec<ProverIndex> {
            assignments.iter().filter(|a| a.airs.contains(&air)).map(|a| a.prover).collect()
        };
        let declined: Vec<ProverIndex> =
            selected.iter().copied().filter(|_| rng.random_bool(0.12)).collect();
        let mut equivocations: Vec<EquivocationRecord> = selected
            .iter()
            .copied()
            .chain(outsiders.iter().copied().take(3))
            .filter(|_| rng.random_bool(0.08))
            .map(|prover| EquivocationRecord {
                prover,
                first: Root::repeat_byte(1),
                second: Root::repeat_byte(2),
            })
            .collect();
        if let Some(e) = equivocations.first().cloned()
            && rng.random_bool(0.30)
        {
            equivocations.push(e);
        }
        let mut commitments = Vec::new();
        for &prover in selected.iter().chain(outsiders.iter().take(2)) {
            let times = rng.random_range(0..if declined.contains(&prover) { 2 } else { 3 });
            for _ in 0..times {
                commitments
                    .push(CommitmentRecord { prover, inclusion: random_inclusion(rng, 0, 5_000) });
            }
        }
        let mut partials = Vec::new();
        for a in &assignments {
            for &air in &a.airs {
                let times = rng.random_range(0..if declined.contains(&a.prover) { 2 } else { 3 });
                for _ in 0..times {
                    partials.push(PartialRecord {
                        prover: a.prover,
                        air,
                        assigned: true,
                        inclusion: random_inclusion(rng, 4_000, 10_000),
                    });
                }
            }
        }
        // Open market: outsiders, selected non-holders and decliners prove any AIR (even one
        // past `num_airs`).
        for _ in 0..rng.random_range(0..if large { 40 } else { 8 }) {
            let prover = if rng.random_bool(0.50) || outsiders.is_empty() {
                pick(rng, &selected)
            } else {
                pick(rng, &outsiders)
            };
            partials.push(PartialRecord {
                prover,
                air: AirIndex(rng.random_range(0..=num_airs)),
                assigned: false,
                inclusion: random_inclusion(rng, 4_000, 9_000),
            });
        }
        let mut finalized_in = match rng.random_range(0..6_usize) {
            0 => None,
            k => Some(Phase::ALL[k - 1]),
        };
        let mut full_proofs = Vec::new();
        if let Some(phase) = finalized_in {
            let window = 4_000 * (phase as u64);
            let many = large && rng.random_bool(0.50);
            let count = rng.random_range(1..=if many { 120 } else { 4 });
            let mut submitters: Vec<ProverIndex> = selected.clone();
            submitters.extend(outsiders.iter().take(4));
            for _ in 0..count {
                let submitter = pick(rng, &submitters);
                let parts: Vec<PartRef> = (0..num_airs)
                    .map(|air| {
                        let air = AirIndex(air);
                        let holders = holders(air, &assignments);
                        let author = match rng.random_range(0..10) {
                            0..=2 => submitter,
                            3 => pick(rng, &pool),
                            _ if holders.is_empty() => submitter,
                            _ => pick(rng, &holders),
                        };
                        PartRef { author, air }
                    })
                    .collect();
                let mut reused: Vec<PartRef> =
                    parts.iter().copied().filter(|x| x.author != submitter).collect();
                if let Some(&again) = reused.first()
                    && rng.random_bool(0.10)
                {
                    reused.push(again);
                }
                if rng.random_bool(0.05) {
                    // A malformed list naming the submitter's own part: never a reuse.
                    reused.push(PartRef { author: submitter, air: AirIndex(0) });
                }
                full_proofs.push(FullProofRecord {
                    submitter,
                    parts,
                    reused,
                    inclusion: Inclusion { phase, ..random_inclusion(rng, window, window + 4_000) },
                });
            }
        }
        commitments.shuffle(rng);
        partials.shuffle(rng);
        full_proofs.shuffle(rng);
        if faults {
            match rng.random_range(0..8) {
                0 => {
                    let again = pick(rng, &selected);
                    selected.push(again);
                    selected.shuffle(rng);
                }
                1 => assignments
                    .push(Assignment { prover: pick(rng, &selected), airs: vec![AirIndex(0)] }),
                2 if !outsiders.is_empty() => assignments
                    .push(Assignment { prover: pick(rng, &outsiders), airs: vec![AirIndex(0)] }),
                3 => finalized_in = Some(Phase::ALL[rng.random_range(0..5_usize)]),
                _ => {}
            }
        }
        let mut declined = declined;
        if faults && !outsiders.is_empty() && rng.random_bool(0.10) {
            declined.push(pick(rng, &outsiders));
        }
        RoundOutcome {
            key: RoundKey {
                block_root: root(),
                sub_block: SubBlockIndex(sub_block),
                attempt: Attempt(attempt),
            },
            num_airs,
            selected,
            assignments,
            declined,
            commitments,
            partials,
            full_proofs,
            finalized_in,
            equivocations,
        }
    }

    fn random_outcome(rng: &mut ChaCha8Rng) -> BlockOutcome {
        let faults = rng.random_bool(0.25);
        let mut rounds = Vec::new();
        let subs: u32 = rng.random_range(1..=3);
        for sub in 0..subs {
            for attempt in 0..rng.random_range(1..=3) {
                rounds.push(random_round(rng, sub, attempt, faults));
            }
        }
        if faults && rng.random_bool(0.15) {
            let again = rounds[rng.random_range(0..rounds.len())].clone();
            rounds.push(again);
        }
        if faults && rng.random_bool(0.10) {
            let i = rng.random_range(0..rounds.len());
            rounds[i].key.block_root = Root::repeat_byte(9);
        }
        rounds.shuffle(rng);
        let mut b = block(rounds);
        if rng.random_bool(0.60) {
            b.aggregators = (50..50 + rng.random_range(0..5)).map(p).collect();
            if let Some(&a) = b.aggregators.first()
                && rng.random_bool(0.20)
            {
                b.aggregators.push(a);
            }
            b.agg_proofs = (0..rng.random_range(0..5))
                .map(|i| AggProofRecord {
                    submitter: p(if rng.random_bool(0.50) { 50 + i } else { i }),
                    inclusion: random_inclusion(rng, 0, 20_000),
                })
                .collect();
        }
        b
    }

    /// The outcome with every prover index `i` replaced by `f(i)`.
    fn map_provers(o: &mut BlockOutcome, f: impl Fn(ProverIndex) -> ProverIndex) {
        for r in &mut o.rounds {
            r.selected.iter_mut().for_each(|p| *p = f(*p));
            r.assignments.iter_mut().for_each(|a| a.prover = f(a.prover));
            r.declined.iter_mut().for_each(|p| *p = f(*p));
            r.equivocations.iter_mut().for_each(|e| e.prover = f(e.prover));
            r.commitments.iter_mut().for_each(|c| c.prover = f(c.prover));
            r.partials.iter_mut().for_each(|x| x.prover = f(x.prover));
            for proof in &mut r.full_proofs {
                proof.submitter = f(proof.submitter);
                proof.parts.iter_mut().for_each(|x| x.author = f(x.author));
                proof.reused.iter_mut().for_each(|x| x.author = f(x.author));
            }
        }
        o.aggregators.iter_mut().for_each(|p| *p = f(*p));
        o.agg_proofs.iter_mut().for_each(|a| a.submitter = f(a.submitter));
    }

    /// The default table, or one with other (small, zero, or huge) amounts: remainders of the
    /// averaged rules, rules that pay nothing, and overflow.
    fn random_table(rng: &mut ChaCha8Rng) -> RewardTable {
        let mode = rng.random_range(0..4);
        if mode == 0 {
            return table();
        }
        let mut json = serde_json::to_value(table()).unwrap();
        for rule in Rule::ALL {
            let amount: i64 = match (mode, rng.random_range(0..20)) {
                (3, 0) => i64::MAX,
                (3, 1) => i64::MIN,
                (3, 2) => 1 << 61,
                (_, 3..=5) => 0,
                (_, 6..=14) => rng.random_range(-7..=7),
                _ => continue,
            };
            json[rule.constant_name().to_lowercase()] = amount.to_string().into();
        }
        serde_json::from_value(json).unwrap()
    }

    fn assert_same_as_reference(
        outcome: &BlockOutcome,
        table: &RewardTable,
    ) -> std::result::Result<(), proptest::test_runner::TestCaseError> {
        match (settle(outcome, table), reference::settle(outcome, table)) {
            (Ok(fast), Ok(slow)) => proptest::prop_assert_eq!(fast, slow),
            (Err(fast), Err(slow)) => {
                proptest::prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"))
            }
            (fast, slow) => proptest::prop_assert!(false, "settle {fast:?}, reference {slow:?}"),
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: 768,
            ..proptest::test_runner::Config::default()
        })]

        /// `settle` gives exactly the reference's ledger, or exactly its error, on random outcomes
        /// (several sub-blocks and attempts, every finalising phase, declines and open slots,
        /// equivocations, reuse, AggProofs, inconsistencies) and random reward tables.
        #[test]
        fn settle_equals_the_map_based_reference(seed in proptest::prelude::any::<u64>()) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut outcome = random_outcome(&mut rng);
            let table = random_table(&mut rng);
            assert_same_as_reference(&outcome, &table)?;
            // Sparse prover indices (positions by binary search rather than by table), in the
            // same order: the same settlement, up to the names.
            map_provers(&mut outcome, |p| ProverIndex(p.0 * 1_000_003 + (1 << 40)));
            assert_same_as_reference(&outcome, &table)?;
        }
    }

    /// The generator reaches every path: many successful settlements with every kind of entry,
    /// and every error.
    #[test]
    fn reference_comparison_covers_every_rule_and_error() {
        let mut rules = std::collections::BTreeSet::new();
        let mut errors = std::collections::BTreeSet::new();
        let mut ok = 0;
        for seed in 0..3_000 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let outcome = random_outcome(&mut rng);
            let table = random_table(&mut rng);
            assert_same_as_reference(&outcome, &table).unwrap();
            match settle(&outcome, &table) {
                Ok(ledger) => {
                    ok += 1;
                    rules.extend(ledger.entries().iter().map(|e| e.rule));
                }
                Err(e) => {
                    errors
                        .insert(format!("{e:?}").split([' ', '{', '(']).next().unwrap().to_owned());
                }
            }
        }
        assert!(ok > 1_500, "{ok} of 3000 outcomes settled");
        assert_eq!(rules.len(), Rule::ALL.len(), "rules seen: {rules:?}");
        for e in [
            "ForeignRound",
            "DuplicateRound",
            "AssignmentMismatch",
            "FullProofOutsideFinalizingPhase",
            "FinalizedWithoutFullProof",
            "AggProofWithoutAggregators",
            "Overflow",
        ] {
            assert!(errors.contains(e), "{e} never happened: {errors:?}");
        }
    }
}
