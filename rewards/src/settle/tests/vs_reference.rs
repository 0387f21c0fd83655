//! The fast settlement equals the map-based reference: random outcomes (with every oddity and,
//! now and then, an inconsistency) and random reward tables give the same ledger, or the same
//! error, from [`settle`] and from `reference::settle`.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::settle::reference;

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
fn random_round(rng: &mut ChaCha8Rng, sub_block: u32, attempt: u32, faults: bool) -> RoundOutcome {
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
                errors.insert(format!("{e:?}").split([' ', '{', '(']).next().unwrap().to_owned());
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
