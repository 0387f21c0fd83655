//! Reads of the driver's state, answered for the HTTP API (run as [`super::Query`]s on the
//! driver task): blocks and their rounds, proofs, duties, ledgers, balances, the registry.

use beacon_api::{AccountBalance, BlockRounds, FinalizedProof, ProverDuties, RegistryEntry};
use phase_engine::{Engine, ProverIndex, Root, SignedPartialProof, Slot};

use super::{Driver, blocks::PROOF_BLOCKS, settle::FINALIZED_PROOF_KEY};

fn not_found(what: String) -> beacon_api::Error {
    beacon_api::Error::NotFound { what }
}

impl Driver {
    /// The engine (read-only, for queries).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The latest block fed to the engine.
    pub(crate) fn last_block(&self) -> Option<(Slot, Root)> {
        self.last_block
    }

    /// Resolves a block id among the blocks this node knows.
    pub(crate) fn resolve(&self, id: beacon_api::BlockId) -> beacon_api::Result<Root> {
        let found = match id {
            beacon_api::BlockId::Head => self.last_block.map(|(_, r)| r),
            beacon_api::BlockId::Slot(slot) => self.by_slot.get(&Slot(slot.get())).copied(),
            beacon_api::BlockId::Root(root) => self.blocks.contains_key(&root).then_some(root),
            _ => None,
        };
        found.ok_or_else(|| not_found(format!("block {id}")))
    }

    /// The rounds of a block.
    pub(crate) fn rounds(&self, id: beacon_api::BlockId) -> beacon_api::Result<BlockRounds> {
        let root = self.resolve(id)?;
        let record = self.blocks.get(&root).ok_or_else(|| not_found(format!("block {root}")))?;
        let rounds = self
            .engine
            .open_rounds()
            .into_iter()
            .filter(|k| k.block_root == root)
            .filter_map(|k| self.engine.round_status(&k))
            .collect();
        Ok(BlockRounds {
            block_root: root,
            slot: record.slot,
            rounds,
            closed: record.outcome.as_ref().map(|o| o.rounds.clone()).unwrap_or_default(),
            outcome: record.outcome.clone(),
        })
    }

    /// The accepted partial proofs of a block.
    pub(crate) fn partial_proofs(
        &self,
        id: beacon_api::BlockId,
    ) -> beacon_api::Result<Vec<SignedPartialProof>> {
        let root = self.resolve(id)?;
        if self.blocks.get(&root).is_some_and(|b| b.pruned) {
            return Err(not_found(format!(
                "partial proofs of block {root} (kept for the latest {PROOF_BLOCKS} settled blocks)"
            )));
        }
        let mut partials = self.blocks.get(&root).map(|b| b.partials.clone()).unwrap_or_default();
        partials.sort_by_key(|p| {
            (p.message.round.sub_block, p.message.round.attempt, p.message.prover, p.message.air)
        });
        Ok(partials)
    }

    /// A prover's duties.
    pub(crate) fn duties(&self, prover: ProverIndex) -> beacon_api::Result<ProverDuties> {
        if self.engine.prover(prover).is_none() {
            return Err(not_found(format!("prover {prover}")));
        }
        Ok(ProverDuties {
            prover,
            duties: self.engine.duties(prover),
            aggregation: self.engine.aggregation_duties(prover),
        })
    }

    /// The finalised proof of a block: served once every sub-block has a valid full proof. A
    /// block of several sub-blocks has its AggProof in it once one is accepted; until then the
    /// list is empty (the aggregators download the full proofs from here to build it).
    /// Settled blocks out of memory are served from the store (where a block's finalised proof
    /// is written when it settles proven).
    pub(crate) fn finalized_proof(
        &self,
        id: beacon_api::BlockId,
    ) -> beacon_api::Result<FinalizedProof> {
        let root = match id {
            beacon_api::BlockId::Root(root) => root,
            other => self.resolve(other)?,
        };
        if let Some(proof) = self.finalized_in_memory(root) {
            return proof;
        }
        let unavailable = |reason: String| beacon_api::Error::Unavailable { reason };
        let bytes = self
            .store
            .message(root, FINALIZED_PROOF_KEY)
            .map_err(|e| unavailable(e.to_string()))?
            .ok_or_else(|| not_found(format!("finalised proof of block {root}")))?;
        <FinalizedProof as ssz::Decode>::from_ssz_bytes(&bytes)
            .map_err(|e| unavailable(format!("{e:?}")))
    }

    /// The finalised proof of a block from memory: `None` if its record or proofs are not in
    /// memory, an error if they are but incomplete.
    pub(super) fn finalized_in_memory(
        &self,
        root: Root,
    ) -> Option<beacon_api::Result<FinalizedProof>> {
        let b = self.blocks.get(&root).filter(|b| !b.pruned)?;
        let subs = b.work.as_ref().map_or(0, |w| w.airs.len());
        if subs == 0 || b.full_proofs.len() != subs {
            return Some(Err(not_found(format!("finalised proof of block {root}"))));
        }
        let unavailable =
            |e: ssz_types::Error| beacon_api::Error::Unavailable { reason: format!("{e:?}") };
        let proof = (|| {
            Ok(FinalizedProof {
                slot: b.slot,
                block_root: root,
                full_proofs: b
                    .full_proofs
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
                    .try_into()
                    .map_err(unavailable)?,
                agg_proof: b
                    .agg_proof
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .try_into()
                    .map_err(unavailable)?,
            })
        })();
        Some(proof)
    }

    /// The settled ledger of a block (memory, else the store).
    pub(crate) fn ledger(&self, id: beacon_api::BlockId) -> beacon_api::Result<rewards::Ledger> {
        let root = match id {
            beacon_api::BlockId::Root(root) => root,
            other => self.resolve(other)?,
        };
        if let Some(ledger) = self.blocks.get(&root).and_then(|b| b.ledger.clone()) {
            return Ok(ledger);
        }
        let entries = self
            .store
            .ledger_entries(root)
            .map_err(|e| beacon_api::Error::Unavailable { reason: e.to_string() })?;
        let (_, bytes) = entries
            .into_iter()
            .next()
            .ok_or_else(|| not_found(format!("ledger of block {root}")))?;
        rewards::Ledger::from_ssz_bytes(&bytes)
            .map_err(|e| beacon_api::Error::Unavailable { reason: e.to_string() })
    }

    /// Every balance.
    pub(crate) fn balances(&self) -> Vec<AccountBalance> {
        self.balances.iter().map(|(account, balance)| AccountBalance { account, balance }).collect()
    }

    /// The registry.
    pub(crate) fn registry(&self) -> Vec<RegistryEntry> {
        (0..self.engine.num_provers())
            .filter_map(|i| {
                self.engine
                    .prover(ProverIndex(i))
                    .map(|r| RegistryEntry { index: ProverIndex(i), record: r.clone() })
            })
            .collect()
    }

    /// The reward constants.
    pub(crate) fn reward_file(&self) -> rewards::RewardsFile {
        self.reward_file
    }

    /// The settled ledgers in memory, by slot.
    pub(crate) fn ledgers(&self) -> Vec<rewards::Ledger> {
        self.by_slot
            .values()
            .filter_map(|r| self.blocks.get(r).and_then(|b| b.ledger.clone()))
            .collect()
    }
}
