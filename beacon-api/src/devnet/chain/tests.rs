//! Unit tests of the devnet chain: RANDAO, duties, finality, reorgs, gas, pruning and invariants.

use super::spec::{BLS_DST, compute_domain, signing_root, u64_leaf};
use super::*;
use crate::{
    error::Error,
    types::{BeaconEvent, BlockId},
};

fn chain() -> Chain {
    let config =
        DevnetConfig { validator_count: 16, slots_per_epoch: 4, ..DevnetConfig::default() };
    Chain::new(config, 1_700_000_000).unwrap()
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
        c.validators.pubkeys[usize::try_from(b1.header.proposer_index.get()).unwrap()].as_slice(),
    )
    .unwrap();
    let sig = blst::min_pk::Signature::from_bytes(b1.randao_reveal.as_slice()).unwrap();
    let domain = compute_domain(DOMAIN_RANDAO, c.config.fork_version, c.genesis_validators_root);
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
