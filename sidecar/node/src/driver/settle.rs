//! Settlement: a block's outcome turned into its ledger, the ledger and balances stored durably
//! in one transaction, and the settlement events; and what the live engine's outcome says when
//! the settling engine settles instead (whether the block is proven, its finalised proof).

use std::collections::BTreeMap;

use beacon_api::{BlockEventData, ProvingEvent};
use phase_engine::BlockOutcome;
use tracing::info;

use super::Driver;
use crate::{StoreBatch, error::NodeResult};

/// Blocks remembered as settled (a reorg reaches back at most `SNAPSHOTS_KEPT` slots).
const SETTLED_RECENT: usize = 256;

/// The store key (in the block root's message space) of a settled block's finalised proof.
pub(super) const FINALIZED_PROOF_KEY: crate::MessageKey = [0xff; 32];

impl Driver {
    /// Whether every sub-block of the block has an accepted full proof (and, with several, the
    /// block its AggProof).
    fn proven(&self, root: &phase_engine::Root) -> bool {
        self.blocks.get(root).is_some_and(|b| {
            let subs = b.work.as_ref().map_or(0, |w| w.airs.len());
            b.full_proofs.len() == subs && (subs <= 1 || b.agg_proof.is_some())
        })
    }

    /// The live engine's outcome of a block: settled, when this node settles from its own
    /// clock; else only the finalised proof it accepted is stored (served by the API), the
    /// ledger and the `block_proven` event waiting for the settling engine.
    pub(super) fn live_outcome(&mut self, outcome: BlockOutcome) -> NodeResult<()> {
        if self.settling.is_none() {
            return self.settle(outcome);
        }
        let root = outcome.block_root;
        if self.proven(&root)
            && self.store.message(root, FINALIZED_PROOF_KEY)?.is_none()
            && let Some(Ok(proof)) = self.finalized_in_memory(root)
        {
            let mut batch = StoreBatch::new();
            batch.put_message(root, FINALIZED_PROOF_KEY, &ssz::Encode::as_ssz_bytes(&proof));
            self.store.commit(batch)?;
        }
        Ok(())
    }

    /// Settles a block's outcome: its ledger, the balances, the events.
    pub(super) fn settle(&mut self, outcome: BlockOutcome) -> NodeResult<()> {
        let root = outcome.block_root;
        // The settling engine emits an outcome again after a reorg that undid records it used:
        // the new ledger replaces the first.
        if self.settled_recent.contains(&root) {
            return self.resettle(outcome);
        }
        self.settled_recent.push_back(root);
        while self.settled_recent.len() > SETTLED_RECENT {
            self.settled_recent.pop_front();
        }
        let ledger = rewards::settle(&outcome, &self.table)?;
        let data = BlockEventData { block_root: root, slot: outcome.slot };
        let canonical = self.settling.is_some();
        let proven = if canonical { proven_by(&outcome) } else { self.proven(&root) };
        // Durable: the ledger and the balances it changes land in one transaction (skipped when
        // a replay meets a ledger already stored).
        let stored = !self.store.ledger_entries(root)?.is_empty();
        self.balances.apply(&ledger)?;
        if !stored {
            let mut batch = StoreBatch::new();
            batch.put_ledger_entry(root, 0, &ledger.as_ssz_bytes());
            // The finalised proof, served from the store once it leaves memory.
            if !canonical
                && proven
                && let Some(Ok(proof)) = self.finalized_in_memory(root)
            {
                batch.put_message(root, FINALIZED_PROOF_KEY, &ssz::Encode::as_ssz_bytes(&proof));
            }
            for (account, amount) in self.balances.iter() {
                if let rewards::Account::Prover(p) = account {
                    batch.set_balance(p, amount);
                }
            }
            self.store.commit(batch)?;
            self.count_missed_deadlines(&ledger);
        }
        info!(slot = %outcome.slot, block = %root, settlement_root = %ledger.settlement_root(), proven, "block settled");
        if let Some(b) = self.blocks.get_mut(&root) {
            b.outcome = Some(outcome);
            b.ledger = Some(ledger.clone());
        }
        self.verifier.forget(&root);
        if proven {
            let _ = self.events.send(ProvingEvent::BlockProven(data.clone()));
        }
        let _ = self.events.send(ProvingEvent::BlockSettled(data));
        let _ = self.settled.send(ledger);
        self.prune();
        Ok(())
    }
}

impl Driver {
    /// Settles a block settled before again (canonical rounds, after a reorg that orphaned a
    /// record its outcome used): if the ledger differs, the new one replaces the stored one
    /// and the balances move from the old to the new, in one transaction; the settlement is
    /// announced again.
    fn resettle(&mut self, outcome: BlockOutcome) -> NodeResult<()> {
        let root = outcome.block_root;
        let ledger = rewards::settle(&outcome, &self.table)?;
        let old = match self.blocks.get(&root).and_then(|b| b.ledger.clone()) {
            Some(old) => old,
            None => match self.store.ledger_entries(root)?.first() {
                Some((_, bytes)) => rewards::Ledger::from_ssz_bytes(bytes)?,
                None => {
                    tracing::warn!(slot = %outcome.slot, block = %root, "settled again but its first ledger is gone: kept as it was");
                    return Ok(());
                }
            },
        };
        if old == ledger {
            tracing::debug!(slot = %outcome.slot, block = %root, "settled again: the same ledger");
            return Ok(());
        }
        let mut balances = self.balances.clone();
        balances.revert(&old)?;
        balances.apply(&ledger)?;
        let mut batch = StoreBatch::new();
        batch.put_ledger_entry(root, 0, &ledger.as_ssz_bytes());
        for (account, amount) in balances.iter() {
            if let rewards::Account::Prover(p) = account {
                batch.set_balance(p, amount);
            }
        }
        self.store.commit(batch)?;
        self.balances = balances;
        tracing::warn!(
            slot = %outcome.slot,
            block = %root,
            old = %old.settlement_root(),
            new = %ledger.settlement_root(),
            "a reorg changed the records a settled block's ledger used: its ledger is replaced"
        );
        if let Some(b) = self.blocks.get_mut(&root) {
            b.outcome = Some(outcome.clone());
            b.ledger = Some(ledger.clone());
        }
        let data = BlockEventData { block_root: root, slot: outcome.slot };
        let _ = self.events.send(ProvingEvent::BlockSettled(data));
        let _ = self.settled.send(ledger);
        Ok(())
    }
}

/// Whether an outcome proves its block: every sub-block has a round that finalised with a full
/// proof, and a block of several sub-blocks has an AggProof.
fn proven_by(outcome: &BlockOutcome) -> bool {
    let subs: std::collections::BTreeMap<u32, bool> =
        outcome.rounds.iter().fold(std::collections::BTreeMap::new(), |mut subs, round| {
            let done = subs.entry(round.key.sub_block.0).or_insert(false);
            *done |= round.finalized_in.is_some();
            subs
        });
    !subs.is_empty()
        && subs.values().all(|done| *done)
        && (subs.len() <= 1 || !outcome.agg_proofs.is_empty())
}

impl Driver {
    /// Counts, per prover, the non-participation penalties of a newly settled ledger: each is a
    /// phase deadline the prover missed.
    fn count_missed_deadlines(&self, ledger: &rewards::Ledger) {
        use rewards::Rule as R;
        let mut missed: BTreeMap<u64, u64> = BTreeMap::new();
        for entry in ledger.entries() {
            let deadline = matches!(
                entry.rule,
                R::PenaltyT1Prover
                    | R::PenaltyT2Prover
                    | R::PenaltyProverT3
                    | R::PenaltyProverT4
                    | R::PenaltyProverT5
            );
            if let (true, rewards::Account::Prover(p)) = (deadline, entry.account) {
                *missed.entry(p.0).or_default() += 1;
            }
        }
        for (prover, n) in missed {
            self.metrics.missed_deadlines(prover, n);
        }
    }
}
