//! The devnet's chain: genesis, blocks, RANDAO, proposers, finality and reorgs, as plain data
//! with no I/O and no clock (the node feeds it slots).
//!
//! What follows the consensus specs exactly: the RANDAO update `mix = xor(mix, sha256(reveal))`
//! with the reveal a real BLS signature of the epoch under `DOMAIN_RANDAO`; the proposer index
//! (`compute_proposer_index` of Electra over a swap-or-not shuffle, seeded by `get_seed` with
//! `DOMAIN_BEACON_PROPOSER` and `MIN_SEED_LOOKAHEAD = 1`; every validator at 32 ETH); the block
//! header root (SSZ `hash_tree_root` of `BeaconBlockHeader`) and the proposer's BLS signature over
//! it; signing domains and roots. What is the devnet's own: validator keys derived from a seed;
//! the body, state and genesis-validators roots (SHA-256 digests, since the devnet keeps no SSZ
//! state); execution payloads whose transactions are opaque synthetic bytes; a block at every
//! slot; finality two epochs behind the head at every epoch boundary.
//!
//! * [`spec`]: the consensus-spec constants and functions (domains, signing roots, header roots,
//!   shuffling, proposer index).
//! * [`validators`]: the validators' seed-derived BLS keys.
//! * here: [`Block`], [`Chain`] and the genesis block.
//! * [`store`]: storing, pruning and looking up blocks and states.
//! * [`randao`]: RANDAO mixes and the proposer schedule seeded by them.
//! * [`production`]: building a block per slot, finality, and the events of new blocks.
//! * [`reorg`]: replacing the last blocks by a new fork.
//! * [`payload`]: the served block: the synthetic execution payload and its transactions.

mod graffiti;
mod payload;
mod production;
mod randao;
mod reorg;
mod spec;
mod store;
mod validators;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use super::DevnetConfig;
use crate::{
    error::Result,
    types::{
        BeaconBlockHeader, BlsSignature, Checkpoint, Epoch, FinalityCheckpoints, ForkVersion,
        GenesisData, Root, Slot, ValidatorIndex,
    },
};
use spec::{header_root, sha256};
use validators::Validators;

pub(super) use randao::RandaoError;
pub(super) use spec::{DOMAIN_BEACON_PROPOSER, DOMAIN_RANDAO, EPOCHS_PER_HISTORICAL_VECTOR};

/// One block of the devnet chain (its post-state included).
#[derive(Debug, Clone)]
pub(super) struct Block {
    pub(super) root: Root,
    pub(super) header: BeaconBlockHeader,
    pub(super) signature: BlsSignature,
    pub(super) randao_reveal: BlsSignature,
    pub(super) graffiti: Root,
    /// The RANDAO mix of the post-state's current epoch.
    pub(super) mix: Root,
    /// The parent's mix (`prev_randao` of the payload).
    pub(super) prev_randao: Root,
    pub(super) checkpoints: FinalityCheckpoints,
    pub(super) gas_used: u64,
    pub(super) block_number: u64,
    pub(super) block_hash: Root,
    pub(super) parent_hash: Root,
    pub(super) timestamp: u64,
}

impl Block {
    pub(super) fn slot(&self) -> Slot {
        self.header.slot
    }
}

/// The devnet chain.
pub(super) struct Chain {
    config: DevnetConfig,
    genesis_time: u64,
    validators: Validators,
    genesis_validators_root: Root,
    blocks: HashMap<Root, Block>,
    by_state: HashMap<Root, Root>,
    canonical: BTreeMap<u64, Root>,
    head: Root,
    genesis_root: Root,
    forks: u64,
    /// Blocks below this slot (except genesis) have been pruned.
    pruned_below: u64,
    /// Graffiti set through the keymanager API, by validator index.
    graffiti: HashMap<u64, [u8; 32]>,
}

impl Chain {
    pub(super) fn new(config: DevnetConfig, genesis_time: u64) -> Result<Self> {
        let validators = Validators::new(config.seed, config.validator_count)?;
        let mut all = Vec::new();
        for pk in &validators.pubkeys {
            all.extend_from_slice(pk.as_slice());
        }
        let genesis_validators_root = Root::from(sha256(&[b"devnet validators", &all]));
        let mix = Root::from(sha256(&[b"devnet genesis mix", &config.seed.to_le_bytes()]));
        let block_hash =
            Root::from(sha256(&[b"devnet genesis execution block", &config.seed.to_le_bytes()]));
        let header = BeaconBlockHeader {
            slot: Slot(0),
            proposer_index: ValidatorIndex(0),
            parent_root: Root::ZERO,
            state_root: Root::from(sha256(&[b"devnet genesis state", mix.as_slice()])),
            body_root: Root::from(sha256(&[b"devnet genesis body", block_hash.as_slice()])),
        };
        let root = header_root(&header);
        let genesis = Block {
            root,
            header,
            signature: BlsSignature::ZERO,
            randao_reveal: BlsSignature::ZERO,
            graffiti: Root::ZERO,
            mix,
            prev_randao: mix,
            checkpoints: FinalityCheckpoints {
                previous_justified: Checkpoint::default(),
                current_justified: Checkpoint::default(),
                finalized: Checkpoint::default(),
            },
            gas_used: 0,
            block_number: 0,
            block_hash,
            parent_hash: Root::ZERO,
            timestamp: genesis_time,
        };
        let mut chain = Self {
            config,
            genesis_time,
            validators,
            genesis_validators_root,
            blocks: HashMap::new(),
            by_state: HashMap::new(),
            canonical: BTreeMap::new(),
            head: root,
            genesis_root: root,
            forks: 0,
            pruned_below: 0,
            graffiti: HashMap::new(),
        };
        chain.insert(genesis);
        chain.canonical.insert(0, root);
        Ok(chain)
    }

    pub(super) fn config(&self) -> &DevnetConfig {
        &self.config
    }

    pub(super) fn genesis_time(&self) -> u64 {
        self.genesis_time
    }

    pub(super) fn genesis(&self) -> GenesisData {
        GenesisData {
            genesis_time: self.genesis_time,
            genesis_validators_root: self.genesis_validators_root,
            genesis_fork_version: ForkVersion::from(self.config.fork_version),
        }
    }

    pub(super) fn head(&self) -> &Block {
        // The head is always stored (it is never pruned).
        &self.blocks[&self.head]
    }

    fn epoch_of(&self, slot: Slot) -> Epoch {
        slot.epoch(self.config.slots_per_epoch)
    }
}
