//! Properties of the engine as a whole (proptest).

use std::collections::{BTreeMap, BTreeSet};

use phase_engine::{
    Action, AirIndex, EngineConfig, Phase, ProtocolMessage, ProverIndex, UnixMillis,
    test_utils::Scenario,
};
use proptest::prelude::*;

use crate::scenarios::config;

/// The messages of one busy round of block 1: every commitment (T1), every partial (T2) and
/// full proofs by two provers (T3), all signed once.
struct Script {
    phases: Vec<(UnixMillis, Vec<ProtocolMessage>)>,
}

fn script() -> Script {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = s.round_keys(&phase_engine::test_utils::block_root(1))[0];
    let selected = s.selected(&key);
    let t1: Vec<ProtocolMessage> = selected.iter().map(|p| s.commitment(&key, *p).into()).collect();
    let t2: Vec<ProtocolMessage> = selected
        .iter()
        .flat_map(|p| s.assignment(&key, *p).into_iter().map(move |a| (*p, a)))
        .map(|(p, a)| s.partial(&key, p, a).into())
        .collect();
    let outsider = (0..12).map(ProverIndex).find(|p| !selected.contains(p)).unwrap();
    let t3: Vec<ProtocolMessage> = [selected[0], outsider]
        .iter()
        .map(|p| s.full_proof(&key, *p, &s.assigned_parts(&key, *p)).into())
        .collect();
    Script {
        phases: vec![
            (s.time_in(&key, Phase::T1, 100), t1),
            (s.time_in(&key, Phase::T2, 100), t2),
            (s.time_in(&key, Phase::T3, 700), t3),
        ],
    }
}

fn run(script: &Script, orders: &[Vec<usize>]) -> phase_engine::BlockOutcome {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    for ((t, msgs), order) in script.phases.iter().zip(orders) {
        for &i in order {
            s.deliver(msgs[i].clone(), *t).unwrap();
        }
    }
    s.add_block(2, 0).unwrap();
    s.run_until_outcome(&phase_engine::test_utils::block_root(1)).unwrap()
}

/// [`run`] in the given order, every message sealed by `sealer` ahead of delivery.
fn run_sealed(
    script: &Script,
    orders: &[Vec<usize>],
    sealer: &phase_engine::Sealer,
) -> phase_engine::BlockOutcome {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    for ((t, msgs), order) in script.phases.iter().zip(orders) {
        for &i in order {
            s.deliver_sealed(msgs[i].clone(), sealer, *t).unwrap();
        }
    }
    s.add_block(2, 0).unwrap();
    s.run_until_outcome(&phase_engine::test_utils::block_root(1)).unwrap()
}

fn run_verified(script: &Script, orders: &[Vec<usize>]) -> phase_engine::BlockOutcome {
    let mut s = Scenario::new(config(), 12);
    let sealer = phase_engine::Sealer::new(s.ctx());
    s.add_block(1, 10_000_000).unwrap();
    for ((t, msgs), order) in script.phases.iter().zip(orders) {
        for &i in order {
            s.deliver_verified(msgs[i].clone(), &sealer, *t).unwrap();
        }
    }
    s.add_block(2, 0).unwrap();
    s.run_until_outcome(&phase_engine::test_utils::block_root(1)).unwrap()
}

/// A message whose signature the caller checked (`on_verified_message`) is accepted exactly as
/// one whose check the engine requested and got a valid verdict for, in any arrival order.
#[test]
fn verified_messages_give_the_outcome_of_plain_ones() {
    let script = script();
    let identity: Vec<Vec<usize>> =
        script.phases.iter().map(|(_, m)| (0..m.len()).collect()).collect();
    assert_eq!(run_verified(&script, &identity), run(&script, &identity));
    let reversed: Vec<Vec<usize>> =
        script.phases.iter().map(|(_, m)| (0..m.len()).rev().collect()).collect();
    assert_eq!(run_verified(&script, &reversed), run(&script, &reversed));
}

/// A sealed message (its signing root computed outside the engine) is accepted exactly as the
/// plain message is; a duplicate is refused by the sealed root; a message sealed under another
/// signing context is hashed again by the engine, so a wrong root never reaches it.
#[test]
fn sealed_messages_give_the_outcome_of_plain_ones() {
    let script = script();
    let identity: Vec<Vec<usize>> =
        script.phases.iter().map(|(_, m)| (0..m.len()).collect()).collect();
    let plain = run(&script, &identity);
    let ctx = *Scenario::new(config(), 12).ctx();
    let own = phase_engine::Sealer::new(&ctx);
    assert_eq!(run_sealed(&script, &identity, &own), plain);
    let other = phase_engine::SigningContext { fork_version: [9, 9, 9, 9], ..ctx };
    let foreign = phase_engine::Sealer::new(&other);
    assert_eq!(run_sealed(&script, &identity, &foreign), plain);

    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let (t, msgs) = &script.phases[0];
    s.deliver_sealed(msgs[0].clone(), &own, *t).unwrap();
    let again = s.deliver_sealed(msgs[0].clone(), &own, *t).unwrap_err();
    let root = msgs[0].signing_root(&ctx);
    assert!(
        matches!(again, phase_engine::Error::Duplicate { signing_root } if signing_root == root),
        "{again:?}"
    );
}

fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// The outcome does not depend on the order in which messages of one phase arrive.
    #[test]
    fn outcome_independent_of_arrival_order_within_a_phase(seeds in any::<[u64; 3]>()) {
        let script = script();
        let identity: Vec<Vec<usize>> = script.phases.iter().map(|(_, m)| (0..m.len()).collect()).collect();
        let shuffled: Vec<Vec<usize>> = script
            .phases
            .iter()
            .zip(seeds)
            .map(|((_, m), seed)| permutation(m.len(), seed))
            .collect();
        let a = run(&script, &identity);
        let b = run(&script, &shuffled);
        prop_assert_eq!(a.rounds[0].finalized_in, Some(Phase::T3));
        prop_assert_eq!(a, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Over several overlapping blocks (some split into sub-blocks): no prover is ever selected
    /// while busy (busy: from a first attempt's start, or its block's as an aggregator, until
    /// that attempt's T3 closes, whatever its messages), every round selects `min(PROVERS_PER_PROOF, available / (2k))` (at least
    /// one), every AIR is assigned `min(redundancy, n)` times to distinct provers, and two
    /// engines fed the same inputs act identically.
    #[test]
    fn selection_never_picks_a_busy_prover(
        num_provers in 4u64..60,
        gases in proptest::collection::vec(0u64..200_000_000, 1..6),
    ) {
        let cfg = EngineConfig { provers_per_proof: 6, provers_per_aggproof: 3, ..config() };
        let mut s = Scenario::new(cfg, num_provers);
        let mut twin = Scenario::new(cfg, num_provers);
        for (i, gas) in gases.iter().enumerate() {
            s.add_block(i as u64 + 1, *gas).unwrap();
            twin.add_block(i as u64 + 1, *gas).unwrap();
        }
        let end = phase_engine::test_utils::slot_start(gases.len() as u64 + 10);
        s.advance_to(end);
        twin.advance_to(end);
        prop_assert_eq!(&s.log, &twin.log);

        // Busy spans from the chain alone: a first attempt's provers and a block's aggregators
        // are busy from the round's start until its T3 closes; retries mark nobody.
        let t3 = cfg.phases.t1_ms + cfg.phases.t2_ms + cfg.phases.t3_ms;
        let mut busy: Vec<(ProverIndex, u64, u64)> = Vec::new();
        let busy_at = |busy: &[(ProverIndex, u64, u64)], p: ProverIndex, t: u64| {
            busy.iter().any(|(q, from, until)| *q == p && *from <= t && t < *until)
        };
        let mut block_start: BTreeMap<phase_engine::Root, u64> = BTreeMap::new();
        for action in &s.log {
            match action {
                Action::RoundStarted(start) => {
                    let t = start.start.0;
                    block_start.entry(start.key.block_root).or_insert(t);
                    let distinct: BTreeSet<_> = start.selected.iter().collect();
                    prop_assert_eq!(distinct.len(), start.selected.len());
                    if start.selected.is_empty() {
                        // Only when every prover is busy.
                        let taken = (0..num_provers)
                            .filter(|p| busy_at(&busy, ProverIndex(*p), t))
                            .count();
                        prop_assert_eq!(taken as u64, num_provers);
                    }
                    for p in &start.selected {
                        prop_assert!(!busy_at(&busy, *p, t), "{p} busy at {t}");
                        if start.key.attempt.0 == 0 {
                            busy.push((*p, t, t + t3));
                        }
                    }
                    let r = (cfg.redundancy_factor as usize).min(start.selected.len());
                    for air in 0..start.num_airs {
                        let holders = start.assignments.iter().filter(|a| a.contains(&AirIndex(air))).count();
                        prop_assert_eq!(holders, r);
                    }
                }
                Action::AggregatorsSelected { block_root, aggregators } => {
                    let Some(&t) = block_start.get(block_root) else { continue };
                    for p in aggregators {
                        prop_assert!(!busy_at(&busy, *p, t));
                        busy.push((*p, t, t + t3));
                    }
                }
                _ => {}
            }
        }
    }
}

proptest! {
    /// Decoding untrusted bytes never panics, and whatever decodes re-encodes to the same bytes.
    #[test]
    fn ssz_decoders_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        use ssz::{Decode, Encode};
        fn check<T: Decode + Encode>(bytes: &[u8]) -> Result<(), TestCaseError> {
            if let Ok(v) = T::from_ssz_bytes(bytes) {
                prop_assert_eq!(v.as_ssz_bytes(), bytes);
            }
            Ok(())
        }
        check::<phase_engine::SignedCommitment>(&bytes)?;
        check::<phase_engine::SignedDecline>(&bytes)?;
        check::<phase_engine::SignedPartialProof>(&bytes)?;
        check::<phase_engine::SignedFullProof>(&bytes)?;
        check::<phase_engine::SignedAggProof>(&bytes)?;
        check::<phase_engine::SignedProverRegistration>(&bytes)?;
    }
}
