//! Counting rule applications: [`Counter`] collects every (phase, rule, account) application of
//! a round (or of the block level), merging runs as they come, and turns the counts into ledger
//! entries; [`ValidatorTally`] counts the including validators of a phase by runs.

use phase_engine::{Amount, Attempt, Phase, ProverIndex, SubBlockIndex, ValidatorIndex};

use crate::error::{Error, Result};
use crate::ledger::{Account, LedgerEntry};
use crate::table::{RewardTable, Rule};

/// How many times each rule applies to each account in one round (or at block level): every
/// application is pushed as it is found; [`Counter::drain_into_entries`] sorts and merges them.
#[derive(Default)]
pub(super) struct Counter {
    items: Vec<(Phase, Rule, Account, u64)>,
}

impl Counter {
    pub(super) fn add(&mut self, phase: Phase, rule: Rule, account: Account, times: u64) {
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
    pub(super) fn validators(&mut self, phase: Phase, rule: Rule, tally: &mut ValidatorTally) {
        tally.0.sort_unstable();
        for (v, times) in tally.0.drain(..) {
            self.add(phase, rule, Account::Validator(v), times);
        }
    }

    pub(super) fn prover(&mut self, phase: Phase, rule: Rule, prover: ProverIndex) {
        self.add(phase, rule, Account::Prover(prover), 1);
    }

    pub(super) fn validator(&mut self, phase: Phase, rule: Rule, validator: ValidatorIndex) {
        self.add(phase, rule, Account::Validator(validator), 1);
    }

    /// Sums the counts of each (phase, rule, account), multiplies each by its rule's amount
    /// (averaged rules are then divided by `divisor`, the number of valid full proofs of the
    /// phase, truncating toward zero) and appends the non-zero results in canonical order.
    /// Leaves the counter empty.
    pub(super) fn drain_into_entries(
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
pub(super) struct ValidatorTally(Vec<(ValidatorIndex, u64)>);

impl ValidatorTally {
    pub(super) fn push(&mut self, v: ValidatorIndex) {
        match self.0.last_mut() {
            // At most one count per message of the round: never near `u64::MAX`.
            Some((last, times)) if *last == v => *times = times.saturating_add(1),
            _ => self.0.push((v, 1)),
        }
    }
}
