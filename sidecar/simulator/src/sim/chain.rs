//! The simulated chain and the prover registry: the beacon block proposed at each slot (derived
//! from the seed), provers joining and exiting at their blocks, and real mode's planning of each
//! block's STARK workload.

use std::collections::BTreeMap;

use phase_engine::{
    Action, Attempt, BlockInfo, BlsPublicKey, Capabilities, Engine, ProverIndex, ProverRecord,
    Root, Slot, UnixMillis, ValidatorIndex,
};

use super::{GENESIS_MS, Sim, digest, protocol_err};
use crate::error::{SimError, SimResult};
use crate::scenario::{Behaviour, ProverSpec, Scenario};

/// The beacon block the simulator proposes at `index` (slot `index`): root, RANDAO mix and
/// proposer derived from the scenario's seed, slot start at [`GENESIS_MS`]` + index * slot_ms`.
pub fn simulated_block(scenario: &Scenario, index: u64, parent: Root, gas_used: u64) -> BlockInfo {
    let seed = scenario.seed.to_le_bytes();
    let i = index.to_le_bytes();
    let proposer_digest = digest(&[b"sidecar-sim-proposer", &seed, &i]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&proposer_digest[..8]);
    BlockInfo {
        slot: Slot(index),
        root: Root::from(digest(&[b"sidecar-sim-block", &seed, &i])),
        parent_root: parent,
        proposer: ValidatorIndex(u64::from_le_bytes(first) % scenario.validators),
        randao_mix: Root::from(digest(&[b"sidecar-sim-randao", &seed, &i])),
        gas_used,
        slot_start: UnixMillis(GENESIS_MS + index * scenario.slot_ms),
    }
}

impl Sim<'_> {
    pub(super) fn block_info(&mut self, index: u64, parent: Root) -> BlockInfo {
        let gas = self.scenario.gas.sample(&mut self.gas_rng);
        simulated_block(self.scenario, index, parent, gas)
    }

    /// Real mode: takes the engine's actions out ahead of handling, and plans the block's STARK
    /// workload from the AIRs of its sub-blocks (the `RoundStarted` actions of attempt 0).
    pub(super) fn plan_real_block(&mut self, index: u64, info: &BlockInfo) -> SimResult<()> {
        while let Some(a) = self.engine.poll_action() {
            self.backlog.push_back(a);
        }
        let airs: BTreeMap<u32, u32> = self
            .backlog
            .iter()
            .filter_map(|a| match a {
                Action::RoundStarted(s)
                    if s.key.block_root == info.root && s.key.attempt == Attempt(0) =>
                {
                    Some((s.key.sub_block.0, s.num_airs))
                }
                _ => None,
            })
            .collect();
        let airs: Vec<u32> = airs.into_values().collect();
        if let Some(real) = self.real.as_ref().filter(|_| !airs.is_empty()) {
            real.borrow_mut().plan_block(
                index,
                info.root,
                info.parent_root,
                info.gas_used,
                &airs,
            )?;
        }
        Ok(())
    }

    pub(super) fn registry_changes(&mut self, block: u64) -> SimResult<()> {
        if let Some(joiners) = self.joins_at.remove(&block) {
            for i in joiners {
                if let Some(spec) = self.scenario.provers.get(i) {
                    let key = self.real.as_ref().and_then(|r| r.borrow().pubkey(spec.index));
                    add_prover(&mut self.engine, spec, key)?;
                }
            }
        }
        if let Some(leavers) = self.exits_at.remove(&block) {
            for i in leavers {
                self.engine
                    .exit_prover(ProverIndex(i as u64))
                    .map_err(|e| protocol_err(block, "exit", e))?;
            }
        }
        self.aggregator_only = self
            .scenario
            .provers
            .iter()
            .filter(|p| p.behaviour == Behaviour::AggregatorOnly && p.active_at(block))
            .map(|p| p.index)
            .collect();
        Ok(())
    }
}

/// Registers a prover with its real key, or with its placeholder key in modelled mode.
pub(super) fn add_prover(
    engine: &mut Engine,
    spec: &ProverSpec,
    key: Option<BlsPublicKey>,
) -> SimResult<()> {
    let record = ProverRecord {
        pubkey: key.unwrap_or_else(|| modelled_pubkey(spec.index.0)),
        stake: spec.stake,
        capabilities: Capabilities::default(),
        active: true,
        reputation: spec.reputation,
    };
    let index = engine
        .add_prover(record)
        .map_err(|e| protocol_err(spec.join_at_block, "registering a prover", e))?;
    if index != spec.index {
        return Err(SimError::Protocol {
            block: spec.join_at_block,
            reason: format!("the registry numbered prover {} as {index}", spec.index),
        });
    }
    Ok(())
}

/// The placeholder key of a prover in modelled mode: unique per prover, never parsed (the
/// simulator is the verifier).
fn modelled_pubkey(index: u64) -> BlsPublicKey {
    let mut key = [0u8; 48];
    key[..8].copy_from_slice(&index.to_le_bytes());
    key[8..40].copy_from_slice(&digest(&[b"sidecar-sim-key", &index.to_le_bytes()]));
    BlsPublicKey::from(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_blocks_derive_from_the_seed() {
        let s =
            Scenario::from_toml_str("seed = 4\nblocks = 2\nprovers = 2\nvalidators = 7").unwrap();
        let a = simulated_block(&s, 3, Root::ZERO, 1);
        assert_eq!(a, simulated_block(&s, 3, Root::ZERO, 1));
        assert_eq!(a.slot, Slot(3));
        assert_eq!(a.slot_start, UnixMillis(GENESIS_MS + 3 * s.slot_ms));
        assert!(a.proposer.0 < 7);
        assert_ne!(a.root, simulated_block(&s, 4, Root::ZERO, 1).root);
        let other = Scenario { seed: 5, ..s };
        let b = simulated_block(&other, 3, Root::ZERO, 1);
        assert_ne!((a.root, a.randao_mix), (b.root, b.randao_mix));
    }
}
