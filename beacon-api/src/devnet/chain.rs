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

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, Bloom, Bytes, U256};
use blst::min_pk::SecretKey;
use sha2::{Digest, Sha256};

use super::DevnetConfig;
use crate::{
    error::{Error, Result},
    types::{
        BeaconBlock, BeaconBlockBody, BeaconBlockHeader, BeaconEvent, BlockEvent, BlockHeaderData,
        BlockId, BlsPubkey, BlsSignature, ChainReorgEvent, Checkpoint, Epoch, Eth1Data,
        ExecutionPayload, ExecutionRequests, FinalityCheckpoints, FinalizedCheckpointEvent,
        ForkVersion, GenesisData, HeadEvent, ProposerDuty, Root, SignedBeaconBlock,
        SignedBeaconBlockHeader, Slot, SyncAggregate, ValidatorIndex,
    },
};

/// The BLS signature DST of Ethereum (proof-of-possession scheme).
const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// `DOMAIN_BEACON_PROPOSER`.
pub(super) const DOMAIN_BEACON_PROPOSER: [u8; 4] = [0, 0, 0, 0];
/// `DOMAIN_RANDAO`.
pub(super) const DOMAIN_RANDAO: [u8; 4] = [2, 0, 0, 0];
/// `SHUFFLE_ROUND_COUNT` (mainnet preset).
const SHUFFLE_ROUND_COUNT: u8 = 90;
/// `MIN_SEED_LOOKAHEAD`.
const MIN_SEED_LOOKAHEAD: u64 = 1;
/// `EPOCHS_PER_HISTORICAL_VECTOR` (mainnet preset): how far back RANDAO mixes can be read.
pub(super) const EPOCHS_PER_HISTORICAL_VECTOR: u64 = 65_536;
/// Every devnet validator's effective balance (32 ETH in Gwei).
const EFFECTIVE_BALANCE: u64 = 32_000_000_000;
/// `MAX_EFFECTIVE_BALANCE_ELECTRA` in Gwei.
const MAX_EFFECTIVE_BALANCE_ELECTRA: u64 = 2_048_000_000_000;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `hash_tree_root` of a `uint64`: little-endian, zero-padded to 32 bytes.
fn u64_leaf(v: u64) -> [u8; 32] {
    let mut leaf = [0u8; 32];
    leaf[..8].copy_from_slice(&v.to_le_bytes());
    leaf
}

/// `compute_signing_root(object_root, domain)`.
fn signing_root(object_root: [u8; 32], domain: [u8; 32]) -> [u8; 32] {
    sha256(&[&object_root, &domain])
}

/// `compute_domain(domain_type, fork_version, genesis_validators_root)`.
pub(super) fn compute_domain(domain_type: [u8; 4], fork_version: [u8; 4], gvr: Root) -> [u8; 32] {
    let mut version_leaf = [0u8; 32];
    version_leaf[..4].copy_from_slice(&fork_version);
    let fork_data_root = sha256(&[&version_leaf, gvr.as_slice()]);
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(&domain_type);
    domain[4..].copy_from_slice(&fork_data_root[..28]);
    domain
}

/// SSZ `hash_tree_root` of a `BeaconBlockHeader`.
pub(super) fn header_root(h: &BeaconBlockHeader) -> Root {
    let leaves = [
        u64_leaf(h.slot.get()),
        u64_leaf(h.proposer_index.get()),
        h.parent_root.0,
        h.state_root.0,
        h.body_root.0,
        [0; 32],
        [0; 32],
        [0; 32],
    ];
    let l1: Vec<[u8; 32]> = leaves.chunks(2).map(|p| sha256(&[&p[0], &p[1]])).collect();
    let l2: Vec<[u8; 32]> = l1.chunks(2).map(|p| sha256(&[&p[0], &p[1]])).collect();
    Root::from(sha256(&[&l2[0], &l2[1]]))
}

/// The consensus spec's `compute_shuffled_index` (swap-or-not, 90 rounds). `count` must be > 0.
pub(super) fn compute_shuffled_index(mut index: u64, count: u64, seed: &[u8; 32]) -> u64 {
    for round in 0..SHUFFLE_ROUND_COUNT {
        let pivot_hash = sha256(&[seed, &[round]]);
        let mut pivot_bytes = [0u8; 8];
        pivot_bytes.copy_from_slice(&pivot_hash[..8]);
        let pivot = u64::from_le_bytes(pivot_bytes) % count;
        let flip = (pivot + count - index) % count;
        let position = index.max(flip);
        let position_bytes = u32::try_from(position / 256).unwrap_or(u32::MAX).to_le_bytes();
        let source = sha256(&[seed, &[round], &position_bytes]);
        let byte = source[usize::try_from((position % 256) / 8).unwrap_or(0)];
        if (byte >> (position % 8)) & 1 == 1 {
            index = flip;
        }
    }
    index
}

/// Electra's `compute_proposer_index` for `count` validators of equal effective balance.
fn compute_proposer_index(count: u64, seed: &[u8; 32]) -> u64 {
    let mut i: u64 = 0;
    loop {
        let candidate = compute_shuffled_index(i % count, count, seed);
        let random_bytes = sha256(&[seed, &(i / 16).to_le_bytes()]);
        let offset = usize::try_from(i % 16).unwrap_or(0) * 2;
        let random_value =
            u64::from(u16::from_le_bytes([random_bytes[offset], random_bytes[offset + 1]]));
        if u128::from(EFFECTIVE_BALANCE) * 0xffff
            >= u128::from(MAX_EFFECTIVE_BALANCE_ELECTRA) * u128::from(random_value)
        {
            return candidate;
        }
        i += 1;
    }
}

/// The devnet's validators: BLS keys derived from the seed.
struct Validators {
    secret_keys: Vec<SecretKey>,
    pubkeys: Vec<BlsPubkey>,
}

impl Validators {
    fn new(seed: u64, count: u64) -> Result<Self> {
        let mut secret_keys = Vec::new();
        let mut pubkeys = Vec::new();
        for index in 0..count {
            let ikm = sha256(&[b"devnet validator key", &seed.to_le_bytes(), &index.to_le_bytes()]);
            let sk = SecretKey::key_gen(&ikm, &[]).map_err(|e| Error::Config {
                key: "validator_count",
                reason: format!("BLS key generation failed: {e:?}"),
            })?;
            pubkeys.push(BlsPubkey::from(sk.sk_to_pk().compress()));
            secret_keys.push(sk);
        }
        Ok(Self { secret_keys, pubkeys })
    }

    fn sign(&self, index: ValidatorIndex, message: &[u8; 32]) -> BlsSignature {
        let sk =
            &self.secret_keys[usize::try_from(index.get()).unwrap_or(0) % self.secret_keys.len()];
        BlsSignature::from(sk.sign(message, BLS_DST, &[]).compress())
    }
}

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

/// Why a RANDAO query failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RandaoError {
    /// The epoch is after the state's epoch or older than the mixes vector.
    OutOfRange,
    /// The history needed has been pruned.
    Pruned,
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
        };
        chain.insert(genesis);
        chain.canonical.insert(0, root);
        Ok(chain)
    }

    fn insert(&mut self, block: Block) {
        self.by_state.insert(block.header.state_root, block.root);
        self.blocks.insert(block.root, block);
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

    /// The block at `slot` on the chain ending at `tip` (the latest at or before `slot`).
    pub(super) fn ancestor_at(&self, tip: Root, slot: Slot) -> Option<&Block> {
        if slot.get() != 0 && slot.get() < self.pruned_below {
            return None;
        }
        let mut block = self.blocks.get(&tip)?;
        loop {
            if block.slot() <= slot {
                return Some(block);
            }
            if self.canonical.get(&block.slot().get()) == Some(&block.root) {
                let (_, root) = self.canonical.range(..=slot.get()).next_back()?;
                return self.blocks.get(root);
            }
            block = self.blocks.get(&block.header.parent_root)?;
        }
    }

    /// `get_randao_mix(state, epoch)` of the post-state of `tip` (for `epoch <= tip's epoch`).
    fn mix_for_epoch(&self, tip: &Block, epoch: Epoch) -> Option<Root> {
        let last_slot = Slot(
            epoch
                .get()
                .saturating_add(1)
                .saturating_mul(self.config.slots_per_epoch)
                .saturating_sub(1),
        );
        self.ancestor_at(tip.root, last_slot).map(|b| b.mix)
    }

    /// `GET .../states/{id}/randao?epoch=`: the mix of `epoch` (default: the state's epoch).
    pub(super) fn randao(&self, state: &Block, epoch: Option<Epoch>) -> Result<Root, RandaoError> {
        let state_epoch = self.epoch_of(state.slot());
        let epoch = epoch.unwrap_or(state_epoch);
        if epoch > state_epoch
            || epoch.get().saturating_add(EPOCHS_PER_HISTORICAL_VECTOR) <= state_epoch.get()
        {
            return Err(RandaoError::OutOfRange);
        }
        self.mix_for_epoch(state, epoch).ok_or(RandaoError::Pruned)
    }

    /// The proposer of `slot` on the chain ending at `tip` (`tip` must be in `slot`'s epoch or
    /// the one before).
    fn proposer(&self, tip: &Block, slot: Slot) -> Option<ValidatorIndex> {
        let epoch = self.epoch_of(slot);
        // get_seed: the mix of epoch - MIN_SEED_LOOKAHEAD - 1 (the genesis mix before that).
        let mix = match epoch.get().checked_sub(MIN_SEED_LOOKAHEAD + 1) {
            Some(e) => self.mix_for_epoch(tip, Epoch(e))?,
            None => self.blocks.get(&self.genesis_root)?.mix,
        };
        let epoch_seed =
            sha256(&[&DOMAIN_BEACON_PROPOSER, &epoch.get().to_le_bytes(), mix.as_slice()]);
        let seed = sha256(&[&epoch_seed, &slot.get().to_le_bytes()]);
        Some(ValidatorIndex(compute_proposer_index(self.config.validator_count, &seed)))
    }

    /// `GET /eth/v1/validator/duties/proposer/{epoch}` on the canonical chain: the dependent root
    /// and the duties, or `None` beyond the next epoch.
    pub(super) fn proposer_duties(&self, epoch: Epoch) -> Option<(Root, Vec<ProposerDuty>)> {
        let head = self.head();
        if epoch.get() > self.epoch_of(head.slot()).get().saturating_add(1) {
            return None;
        }
        let start = epoch.start_slot(self.config.slots_per_epoch);
        let dependent_root = match start.get().checked_sub(1) {
            Some(s) => self.ancestor_at(head.root, Slot(s))?.root,
            None => self.genesis_root,
        };
        let mut duties = Vec::new();
        for offset in 0..self.config.slots_per_epoch {
            let slot = Slot(start.get().saturating_add(offset));
            if slot.get() == 0 {
                continue;
            }
            let index = self.proposer(head, slot)?;
            let pubkey = self.validators.pubkeys[usize::try_from(index.get()).ok()?];
            duties.push(ProposerDuty { pubkey, validator_index: index, slot });
        }
        Some((dependent_root, duties))
    }

    fn checkpoint(&self, tip: Root, epoch: Epoch) -> Option<Checkpoint> {
        let block = self.ancestor_at(tip, epoch.start_slot(self.config.slots_per_epoch))?;
        Some(Checkpoint { epoch, root: block.root })
    }

    fn pseudo_random(&self, parts: &[&[u8]]) -> u64 {
        let digest = sha256(&[
            &[b"devnet".as_slice(), &self.config.seed.to_le_bytes()].concat(),
            &parts.concat(),
        ]);
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(bytes)
    }

    /// Builds the child of `parent` at `slot` on fork `fork`.
    fn build(&self, parent: &Block, slot: Slot, fork: u64) -> Option<Block> {
        let epoch = self.epoch_of(slot);
        let proposer = self.proposer(parent, slot)?;
        let randao_domain =
            compute_domain(DOMAIN_RANDAO, self.config.fork_version, self.genesis_validators_root);
        let randao_reveal =
            self.validators.sign(proposer, &signing_root(u64_leaf(epoch.get()), randao_domain));
        // process_randao: mix = xor(get_randao_mix(state, epoch), hash(reveal)); the parent's
        // mix carries over an epoch boundary.
        let reveal_hash = sha256(&[randao_reveal.as_slice()]);
        let mut mix = parent.mix.0;
        for (m, r) in mix.iter_mut().zip(reveal_hash) {
            *m ^= r;
        }
        let mix = Root::from(mix);

        let (min, max) = (self.config.min_gas_used, self.config.max_gas_used);
        let span = max - min;
        let r = self.pseudo_random(&[b"gas", &slot.get().to_le_bytes(), &fork.to_le_bytes()]);
        let gas_used = min + if span == u64::MAX { r } else { r % (span + 1) };
        let block_number = parent.block_number + 1;
        let timestamp = self
            .genesis_time
            .saturating_add(slot.get().saturating_mul(self.config.seconds_per_slot));
        let block_hash = Root::from(sha256(&[
            b"devnet execution block",
            parent.block_hash.as_slice(),
            &block_number.to_le_bytes(),
            &gas_used.to_le_bytes(),
            &fork.to_le_bytes(),
        ]));
        let mut graffiti = [0u8; 32];
        let text = format!("devnet fork {fork}");
        graffiti[..text.len().min(32)].copy_from_slice(&text.as_bytes()[..text.len().min(32)]);
        let graffiti = Root::from(graffiti);

        let checkpoints = if self.epoch_of(parent.slot()) < epoch {
            // Epoch boundary: justify the previous epoch, finalize the one before.
            let justified = self.checkpoint(parent.root, Epoch(epoch.get() - 1))?;
            let finalized = match epoch.get().checked_sub(2) {
                Some(e) => self.checkpoint(parent.root, Epoch(e))?,
                None => parent.checkpoints.finalized,
            };
            FinalityCheckpoints {
                previous_justified: parent.checkpoints.current_justified,
                current_justified: justified,
                finalized,
            }
        } else {
            parent.checkpoints
        };

        let state_root = Root::from(sha256(&[
            b"devnet state",
            &slot.get().to_le_bytes(),
            parent.root.as_slice(),
            mix.as_slice(),
            block_hash.as_slice(),
        ]));
        let body_root = Root::from(sha256(&[
            b"devnet body",
            randao_reveal.as_slice(),
            graffiti.as_slice(),
            block_hash.as_slice(),
        ]));
        let header = BeaconBlockHeader {
            slot,
            proposer_index: proposer,
            parent_root: parent.root,
            state_root,
            body_root,
        };
        let root = header_root(&header);
        let proposer_domain = compute_domain(
            DOMAIN_BEACON_PROPOSER,
            self.config.fork_version,
            self.genesis_validators_root,
        );
        let signature = self.validators.sign(proposer, &signing_root(root.0, proposer_domain));
        Some(Block {
            root,
            header,
            signature,
            randao_reveal,
            graffiti,
            mix,
            prev_randao: parent.mix,
            checkpoints,
            gas_used,
            block_number,
            block_hash,
            parent_hash: parent.block_hash,
            timestamp,
        })
    }

    fn head_event(&self, block: &Block, parent_slot: Slot) -> BeaconEvent {
        let epoch = self.epoch_of(block.slot());
        let spe = self.config.slots_per_epoch;
        let dependent = |e: u64| {
            e.checked_mul(spe)
                .and_then(|s| s.checked_sub(1))
                .and_then(|s| self.ancestor_at(block.root, Slot(s)))
                .map_or(self.genesis_root, |b| b.root)
        };
        BeaconEvent::Head(HeadEvent {
            slot: block.slot(),
            block: block.root,
            state: block.header.state_root,
            epoch_transition: self.epoch_of(parent_slot) < epoch,
            previous_duty_dependent_root: Some(dependent(epoch.get().saturating_sub(1))),
            current_duty_dependent_root: Some(dependent(epoch.get())),
            execution_optimistic: false,
        })
    }

    fn finality_event(&self, before: &Checkpoint, block: &Block) -> Option<BeaconEvent> {
        let finalized = block.checkpoints.finalized;
        if finalized == *before || finalized.root == Root::ZERO {
            return None;
        }
        let state = self.blocks.get(&finalized.root)?.header.state_root;
        Some(BeaconEvent::FinalizedCheckpoint(FinalizedCheckpointEvent {
            block: finalized.root,
            state,
            epoch: finalized.epoch,
            execution_optimistic: false,
        }))
    }

    /// Produces one block per slot up to `slot`; returns the events, in order.
    pub(super) fn advance_to(&mut self, slot: Slot) -> Vec<BeaconEvent> {
        let mut events = Vec::new();
        while self.head().slot() < slot {
            let parent = self.head().clone();
            let next = Slot(parent.slot().get() + 1);
            let Some(block) = self.build(&parent, next, 0) else { break };
            events.push(BeaconEvent::Block(BlockEvent {
                slot: next,
                block: block.root,
                execution_optimistic: false,
            }));
            events.push(self.head_event(&block, parent.slot()));
            if let Some(e) = self.finality_event(&parent.checkpoints.finalized, &block) {
                events.push(e);
            }
            self.canonical.insert(next.get(), block.root);
            self.head = block.root;
            self.insert(block);
        }
        self.prune();
        events
    }

    /// How many blocks a reorg may replace: those after the head's justified checkpoint.
    pub(super) fn reorg_capacity(&self) -> u64 {
        let head = self.head();
        let justified =
            head.checkpoints.current_justified.epoch.start_slot(self.config.slots_per_epoch);
        head.slot().get().saturating_sub(justified.get())
    }

    /// Replaces the last `depth` canonical blocks by blocks of a new fork at the same slots.
    pub(super) fn reorg(&mut self, depth: u64) -> Result<Vec<BeaconEvent>> {
        let available = self.reorg_capacity();
        if depth == 0 || depth > available {
            return Err(Error::ReorgTooDeep { depth, available });
        }
        let old_head = self.head().clone();
        let fork_slot = Slot(old_head.slot().get() - depth);
        let mut parent = self
            .ancestor_at(old_head.root, fork_slot)
            .cloned()
            .ok_or(Error::ReorgTooDeep { depth, available: 0 })?;
        self.forks += 1;
        let fork = self.forks;
        let mut events = Vec::new();
        let mut new_blocks = Vec::new();
        for s in fork_slot.get() + 1..=old_head.slot().get() {
            let block = self
                .build(&parent, Slot(s), fork)
                .ok_or(Error::ReorgTooDeep { depth, available: 0 })?;
            events.push(BeaconEvent::Block(BlockEvent {
                slot: Slot(s),
                block: block.root,
                execution_optimistic: false,
            }));
            self.insert(block.clone());
            new_blocks.push(block.clone());
            parent = block;
        }
        for b in &new_blocks {
            self.canonical.insert(b.slot().get(), b.root);
        }
        let new_head = parent;
        self.head = new_head.root;
        events.push(BeaconEvent::ChainReorg(ChainReorgEvent {
            slot: new_head.slot(),
            depth,
            old_head_block: old_head.root,
            new_head_block: new_head.root,
            old_head_state: old_head.header.state_root,
            new_head_state: new_head.header.state_root,
            epoch: self.epoch_of(new_head.slot()),
            execution_optimistic: false,
        }));
        let parent_slot =
            self.blocks.get(&new_head.header.parent_root).map_or(Slot(0), Block::slot);
        events.push(self.head_event(&new_head, parent_slot));
        Ok(events)
    }

    /// Drops blocks more than `history_slots` behind the head (never the genesis block).
    fn prune(&mut self) {
        let Some(horizon) = self.head().slot().get().checked_sub(self.config.history_slots) else {
            return;
        };
        if horizon == 0 {
            return;
        }
        let genesis = self.genesis_root;
        let old: Vec<Root> = self
            .blocks
            .values()
            .filter(|b| b.slot().get() < horizon && b.root != genesis)
            .map(|b| b.root)
            .collect();
        for root in old {
            if let Some(b) = self.blocks.remove(&root) {
                self.by_state.remove(&b.header.state_root);
            }
        }
        let keep = self.canonical.split_off(&horizon);
        self.canonical = keep;
        self.pruned_below = horizon;
        self.canonical.insert(0, genesis);
    }

    /// Resolves a `{block_id}`.
    pub(super) fn block(&self, id: BlockId) -> Option<&Block> {
        match id {
            BlockId::Head => Some(self.head()),
            BlockId::Genesis => self.blocks.get(&self.genesis_root),
            BlockId::Finalized => self.checkpoint_block(self.head().checkpoints.finalized),
            BlockId::Justified => self.checkpoint_block(self.head().checkpoints.current_justified),
            BlockId::Slot(slot) => self.canonical.get(&slot.get()).and_then(|r| self.blocks.get(r)),
            BlockId::Root(root) => self.blocks.get(&root),
            // Future variants of the identifier: not served by the devnet.
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    fn checkpoint_block(&self, checkpoint: Checkpoint) -> Option<&Block> {
        if checkpoint.root == Root::ZERO {
            return self.blocks.get(&self.genesis_root);
        }
        self.blocks.get(&checkpoint.root)
    }

    /// Resolves a `{state_id}` to the block whose post-state it is.
    pub(super) fn state(&self, id: BlockId) -> Option<&Block> {
        match id {
            BlockId::Root(state_root) => {
                self.by_state.get(&state_root).and_then(|r| self.blocks.get(r))
            }
            other => self.block(other),
        }
    }

    pub(super) fn is_canonical(&self, block: &Block) -> bool {
        self.canonical.get(&block.slot().get()) == Some(&block.root)
    }

    pub(super) fn is_finalized(&self, block: &Block) -> bool {
        let finalized = self.head().checkpoints.finalized;
        let finalized_slot = finalized.epoch.start_slot(self.config.slots_per_epoch);
        self.is_canonical(block)
            && (block.slot() <= finalized_slot && finalized.root != Root::ZERO
                || block.slot().get() == 0)
    }

    pub(super) fn header(&self, block: &Block) -> BlockHeaderData {
        BlockHeaderData {
            root: block.root,
            canonical: self.is_canonical(block),
            header: SignedBeaconBlockHeader {
                message: block.header.clone(),
                signature: block.signature,
            },
        }
    }

    /// The number of transactions of a block with this gas used.
    pub(super) fn transaction_count(&self, gas_used: u64) -> u64 {
        if gas_used == 0 {
            return 0;
        }
        gas_used.div_ceil(self.config.avg_transaction_gas).clamp(1, self.config.max_transactions)
    }

    /// The synthetic transactions of a block: opaque bytes derived from its execution hash.
    pub(super) fn transactions(&self, block: &Block) -> Vec<Bytes> {
        let size = self.config.transaction_size;
        (0..self.transaction_count(block.gas_used))
            .map(|i| {
                let mut tx = Vec::with_capacity(size);
                let mut counter: u64 = 0;
                while tx.len() < size {
                    let chunk = sha256(&[
                        block.block_hash.as_slice(),
                        &i.to_le_bytes(),
                        &counter.to_le_bytes(),
                    ]);
                    let take = (size - tx.len()).min(32);
                    tx.extend_from_slice(&chunk[..take]);
                    counter += 1;
                }
                Bytes::from(tx)
            })
            .collect()
    }

    pub(super) fn signed_block(&self, block: &Block) -> SignedBeaconBlock {
        let payload = ExecutionPayload {
            parent_hash: block.parent_hash,
            fee_recipient: Address::ZERO,
            state_root: Root::from(sha256(&[
                b"devnet execution state",
                block.block_hash.as_slice(),
            ])),
            receipts_root: Root::from(sha256(&[b"devnet receipts", block.block_hash.as_slice()])),
            logs_bloom: Bloom::ZERO,
            prev_randao: block.prev_randao,
            block_number: block.block_number,
            gas_limit: self.config.gas_limit(),
            gas_used: block.gas_used,
            timestamp: block.timestamp,
            extra_data: Bytes::new(),
            base_fee_per_gas: U256::from(7u64),
            block_hash: block.block_hash,
            transactions: self.transactions(block),
            withdrawals: Some(Vec::new()),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
        };
        let body = BeaconBlockBody {
            randao_reveal: block.randao_reveal,
            eth1_data: Eth1Data::default(),
            graffiti: block.graffiti,
            proposer_slashings: Vec::new(),
            attester_slashings: Vec::new(),
            attestations: Vec::new(),
            deposits: Vec::new(),
            voluntary_exits: Vec::new(),
            sync_aggregate: Some(SyncAggregate {
                sync_committee_bits: Bytes::from(vec![0u8; 64]),
                sync_committee_signature: BlsSignature::ZERO,
            }),
            execution_payload: Some(payload),
            bls_to_execution_changes: Some(Vec::new()),
            blob_kzg_commitments: Some(Vec::new()),
            execution_requests: Some(ExecutionRequests::default()),
            other: BTreeMap::new(),
        };
        SignedBeaconBlock {
            message: BeaconBlock {
                slot: block.slot(),
                proposer_index: block.header.proposer_index,
                parent_root: block.header.parent_root,
                state_root: block.header.state_root,
                body,
            },
            signature: block.signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        let config =
            DevnetConfig { validator_count: 16, slots_per_epoch: 4, ..DevnetConfig::default() };
        Chain::new(config, 1_700_000_000).unwrap()
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let seed = [7u8; 32];
        let mut seen: Vec<u64> = (0..100).map(|i| compute_shuffled_index(i, 100, &seed)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn randao_mix_is_xor_of_reveal_hash() {
        let mut c = chain();
        c.advance_to(Slot(1));
        let genesis = c.block(BlockId::Genesis).unwrap().clone();
        let b1 = c.head().clone();
        let h = sha256(&[b1.randao_reveal.as_slice()]);
        let expected: Vec<u8> = genesis.mix.iter().zip(h).map(|(m, r)| m ^ r).collect();
        assert_eq!(b1.mix.as_slice(), expected.as_slice());
        assert_eq!(b1.prev_randao, genesis.mix);
    }

    #[test]
    fn randao_reveal_is_a_valid_bls_signature() {
        let mut c = chain();
        c.advance_to(Slot(1));
        let b1 = c.head().clone();
        let pk = blst::min_pk::PublicKey::from_bytes(
            c.validators.pubkeys[usize::try_from(b1.header.proposer_index.get()).unwrap()]
                .as_slice(),
        )
        .unwrap();
        let sig = blst::min_pk::Signature::from_bytes(b1.randao_reveal.as_slice()).unwrap();
        let domain =
            compute_domain(DOMAIN_RANDAO, c.config.fork_version, c.genesis_validators_root);
        let msg = signing_root(u64_leaf(0), domain);
        assert_eq!(sig.verify(true, &msg, BLS_DST, &[], &pk, true), blst::BLST_ERROR::BLST_SUCCESS);
    }

    #[test]
    fn duties_match_the_proposers_of_produced_blocks() {
        let mut c = chain();
        c.advance_to(Slot(5));
        let (_, duties) = c.proposer_duties(Epoch(2)).unwrap();
        c.advance_to(Slot(11));
        for duty in duties {
            assert_eq!(
                c.block(BlockId::Slot(duty.slot)).unwrap().header.proposer_index,
                duty.validator_index
            );
        }
        assert!(c.proposer_duties(Epoch(4)).is_none());
    }

    #[test]
    fn finality_trails_by_two_epochs() {
        let mut c = chain();
        let events = c.advance_to(Slot(12));
        let finalized: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                BeaconEvent::FinalizedCheckpoint(f) => Some(f.epoch),
                _ => None,
            })
            .collect();
        // Entering epoch 2 finalizes epoch 0 (the genesis block), entering epoch 3 finalizes 1.
        assert_eq!(finalized, vec![Epoch(0), Epoch(1)]);
        assert_eq!(c.head().checkpoints.current_justified.epoch, Epoch(2));
    }

    #[test]
    fn reorg_replaces_blocks_and_keeps_old_ones() {
        let mut c = chain();
        c.advance_to(Slot(10));
        let old = c.head().clone();
        assert!(matches!(c.reorg(100), Err(Error::ReorgTooDeep { .. })));
        let events = c.reorg(2).unwrap();
        let new = c.head().clone();
        assert_eq!(new.slot(), old.slot());
        assert_ne!(new.root, old.root);
        assert!(!c.is_canonical(c.block(BlockId::Root(old.root)).unwrap()));
        assert!(
            matches!(events.iter().rev().nth(1), Some(BeaconEvent::ChainReorg(r)) if r.depth == 2 && r.old_head_block == old.root)
        );
        assert_eq!(
            c.ancestor_at(new.root, Slot(8)).unwrap().root,
            c.ancestor_at(old.root, Slot(8)).unwrap().root
        );
    }

    #[test]
    fn gas_and_transactions_follow_the_config() {
        let config = DevnetConfig {
            min_gas_used: 1_000_000_000,
            max_gas_used: 2_000_000_000,
            max_transactions: 50,
            ..DevnetConfig::default()
        };
        let mut c = Chain::new(config, 0).unwrap();
        c.advance_to(Slot(20));
        let gas: Vec<u64> =
            (1..=20).map(|s| c.block(BlockId::Slot(Slot(s))).unwrap().gas_used).collect();
        assert!(gas.iter().all(|g| (1_000_000_000..=2_000_000_000).contains(g)));
        assert!(gas.windows(2).any(|w| w[0] != w[1]));
        let block = c.signed_block(c.head());
        let payload = block.message.body.execution_payload.unwrap();
        assert_eq!(payload.transactions.len(), 50);
        assert!(payload.gas_limit >= payload.gas_used);
    }

    #[test]
    fn pruned_history_is_not_found_rather_than_wrong() {
        let config = DevnetConfig {
            slots_per_epoch: 4,
            history_slots: 16,
            validator_count: 8,
            ..DevnetConfig::default()
        };
        let mut c = Chain::new(config, 0).unwrap();
        c.advance_to(Slot(40));
        assert!(c.block(BlockId::Slot(Slot(10))).is_none());
        assert!(c.block(BlockId::Genesis).is_some());
        let head = c.head().clone();
        assert_eq!(c.randao(&head, Some(Epoch(2))), Err(RandaoError::Pruned));
        assert!(c.randao(&head, Some(Epoch(9))).is_ok());
        // Finality keeps working at the head.
        assert_eq!(head.checkpoints.finalized.epoch, Epoch(8));
        assert!(c.block(BlockId::Finalized).is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        #[test]
        fn chain_invariants_hold_for_any_config(
            seed: u64,
            validators in 1u64..48,
            spe in 1u64..6,
            min_gas in 0u64..50_000_000,
            span in 0u64..2_000_000_000,
        ) {
            let config = DevnetConfig {
                seed,
                validator_count: validators,
                slots_per_epoch: spe,
                min_gas_used: min_gas,
                max_gas_used: min_gas + span,
                max_transactions: 16,
                ..DevnetConfig::default()
            };
            let mut c = Chain::new(config, 1_000).unwrap();
            let duties: Vec<_> = (0..=1).map(|e| c.proposer_duties(Epoch(e)).unwrap().1).collect();
            c.advance_to(Slot(3 * spe));
            for slot in 1..=3 * spe {
                let b = c.block(BlockId::Slot(Slot(slot))).unwrap();
                let parent = c.block(BlockId::Root(b.header.parent_root)).unwrap();
                proptest::prop_assert_eq!(parent.slot(), Slot(slot - 1));
                let h = sha256(&[b.randao_reveal.as_slice()]);
                let mix: Vec<u8> = parent.mix.iter().zip(h).map(|(m, r)| m ^ r).collect();
                proptest::prop_assert_eq!(b.mix.as_slice(), mix.as_slice());
                proptest::prop_assert!((min_gas..=min_gas + span).contains(&b.gas_used));
                proptest::prop_assert!(b.header.proposer_index.get() < validators);
                proptest::prop_assert_eq!(header_root(&b.header), b.root);
            }
            // Duties announced before the blocks match their proposers.
            for duty in duties.iter().flatten() {
                let block = c.block(BlockId::Slot(duty.slot)).unwrap();
                proptest::prop_assert_eq!(block.header.proposer_index, duty.validator_index);
            }
        }
    }

    #[test]
    fn header_root_matches_ssz() {
        // hash_tree_root of an all-zero BeaconBlockHeader is a well-known constant.
        let zero = BeaconBlockHeader {
            slot: Slot(0),
            proposer_index: ValidatorIndex(0),
            parent_root: Root::ZERO,
            state_root: Root::ZERO,
            body_root: Root::ZERO,
        };
        assert_eq!(
            header_root(&zero).to_string(),
            "0xc78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c"
        );
    }
}
