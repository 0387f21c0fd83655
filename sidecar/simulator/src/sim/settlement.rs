//! Settlement and the report: each counted block's outcome is settled with the reward table and
//! fed back into the provers' reputations on the engine's thread, then turned into ledger rows
//! and folded into the report (totals, fates, chained settlement roots) on the helper thread, in
//! block order, the rows coming back to the caller's `on_block`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::mpsc;

use phase_engine::{Phase, ProverIndex};
use rewards::{Account, Ledger};

use super::helper::Work;
use super::{Sim, protocol_err};
use crate::error::SimResult;
use crate::report::{AccountKind, Accumulator, BlockFate, BlockRecord, LedgerRow};

impl Sim<'_> {
    pub(super) fn on_outcome(
        &mut self,
        outcome: phase_engine::BlockOutcome,
        on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>,
    ) -> SimResult<()> {
        let Some(b) = self.blocks.remove(&outcome.block_root) else { return Ok(()) };
        if let Some(real) = &self.real {
            real.borrow_mut().forget_block(&outcome.block_root);
        }
        if b.index >= self.scenario.blocks {
            return Ok(());
        }
        let ledger: Ledger = rewards::settle(&outcome, &self.table)
            .map_err(|e| protocol_err(b.index, "settlement failed", e))?;
        // Reputation follows settled history: one point up for a block that paid the prover,
        // one down for a block that penalised it (the engine bounds its effect on selection).
        let mut net: BTreeMap<u64, i64> = BTreeMap::new();
        for e in ledger.entries() {
            if let Account::Prover(p) = e.account {
                *net.entry(p.0).or_default() += e.amount.0;
            }
        }
        for (prover, amount) in net {
            let Some(score) = usize::try_from(prover).ok().and_then(|i| self.reputation.get_mut(i))
            else {
                continue;
            };
            *score = match amount.cmp(&0) {
                Ordering::Greater => score.saturating_add(1),
                Ordering::Less => score.saturating_sub(1),
                Ordering::Equal => *score,
            };
            self.engine
                .set_reputation(ProverIndex(prover), *score)
                .map_err(|e| protocol_err(b.index, "updating reputation", e))?;
        }
        // The rest (rows, report, settlement root) runs on the helper thread.
        self.settlement.send(SettleJob { index: b.index, gas: b.info.gas_used, outcome, ledger });
        self.counted_done += 1;
        self.settlement.deliver(on_block, false)
    }
}

/// What the helper thread needs of a settled block.
pub(super) struct SettleJob {
    index: u64,
    gas: u64,
    outcome: phase_engine::BlockOutcome,
    ledger: Ledger,
}

/// The ledger rows of a settled block, in the callback's form.
pub(super) fn ledger_rows(job: &SettleJob) -> Vec<LedgerRow> {
    job.ledger
        .entries()
        .iter()
        .filter_map(|e| {
            let (kind, account) = match e.account {
                Account::Prover(p) => (AccountKind::Prover, p.0),
                Account::Validator(v) => (AccountKind::Validator, v.0),
                _ => return None,
            };
            Some(LedgerRow {
                block: job.index,
                slot: job.outcome.slot,
                account_kind: kind,
                account,
                sub_block: e.sub_block.0,
                attempt: e.attempt.0,
                phase: e.phase,
                rule: e.rule.constant_name(),
                amount: e.amount.0,
            })
        })
        .collect()
}

/// Folds a settled block into the report: its rows, rounds, fate and settlement root.
pub(super) fn account_block(acc: &mut Accumulator, job: &SettleJob, rows: &[LedgerRow]) {
    let (mut provers_total, mut validators_total) = (0i64, 0i64);
    for row in rows {
        acc.add_entry(row);
        match row.account_kind {
            AccountKind::Prover => provers_total += row.amount,
            AccountKind::Validator => validators_total += row.amount,
        }
    }
    // Per round: who was selected and how it ended; per sub-block: the final attempt.
    let mut sub_fate: BTreeMap<u32, Option<Phase>> = BTreeMap::new();
    for r in &job.outcome.rounds {
        acc.add_round(&r.selected, r.finalized_in);
        sub_fate.insert(r.key.sub_block.0, r.finalized_in);
    }
    let fate = if sub_fate.values().all(Option::is_some) {
        BlockFate::Finalized(sub_fate.values().flatten().copied().max().unwrap_or(Phase::T1))
    } else {
        BlockFate::Failed
    };
    let sub_blocks = u32::try_from(sub_fate.len()).unwrap_or(u32::MAX);
    let rounds = u32::try_from(job.outcome.rounds.len()).unwrap_or(u32::MAX);
    acc.end_block(
        BlockRecord {
            block: job.index,
            slot: job.outcome.slot,
            gas: job.gas,
            sub_blocks,
            rounds,
            retries: rounds.saturating_sub(sub_blocks),
            fate,
            agg_proof: !job.outcome.agg_proofs.is_empty(),
            provers_total,
            validators_total,
            entries: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        },
        job.ledger.settlement_root().0,
    );
}

/// The settlement side of a run, on the helper thread: it builds each settled block's rows,
/// folds them into the report and computes the chained settlement roots, in block order, while
/// the engine goes on (the results do not depend on it). Rows come back to the caller's thread
/// for `on_block`, in block order.
pub(super) struct Settlement {
    pub(super) jobs: Option<mpsc::Sender<Work>>,
    pub(super) rows: mpsc::Receiver<Vec<LedgerRow>>,
    /// Blocks sent whose rows have not been handed to `on_block` yet.
    pub(super) outstanding: u64,
}

impl Settlement {
    fn send(&mut self, job: SettleJob) {
        if let Some(jobs) = &self.jobs
            && jobs.send(Work::Settle(Box::new(job))).is_ok()
        {
            self.outstanding += 1;
        }
    }

    /// Hands the rows that are ready (all of them, waiting, when `all`) to `on_block`.
    pub(super) fn deliver(
        &mut self,
        on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>,
        all: bool,
    ) -> SimResult<()> {
        while self.outstanding > 0 {
            let rows = if all { self.rows.recv().ok() } else { self.rows.try_recv().ok() };
            let Some(rows) = rows else { break };
            self.outstanding -= 1;
            on_block(&rows)?;
        }
        Ok(())
    }
}
