//! Property tests on random, internally consistent outcomes: the ledger is deterministic and
//! independent of the order of records, and rule totals conserve what the rules say.

use std::collections::BTreeSet;

use phase_engine::{
    AggProofRecord, AirIndex, Amount, Assignment, Attempt, BlockOutcome, CommitmentRecord,
    EquivocationRecord, FullProofRecord, Inclusion, PartRef, PartialRecord, Phase, ProverIndex,
    Root, RoundKey, RoundOutcome, Slot, SubBlockIndex, UnixMillis, ValidatorIndex,
};
use proptest::prelude::*;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rewards::{Account, Balances, Config, Ledger, LedgerEntry, Rule, settle};

const ROOT: [u8; 32] = [0x42; 32];

fn inclusion(rng: &mut ChaCha8Rng, from: u64, to: u64) -> Inclusion {
    let t = rng.random_range(from..to);
    // 4 s windows with 500 ms grace: a message counts for the first window still open.
    let phase = Phase::ALL[(t.saturating_sub(500) / 4_000).min(4) as usize];
    Inclusion {
        arrived_at: UnixMillis(t),
        phase,
        validator: ValidatorIndex(rng.random_range(0..4)),
    }
}

fn random_round(rng: &mut ChaCha8Rng, sub_block: u32, attempt: u32) -> RoundOutcome {
    let n: usize = rng.random_range(1..=10);
    let mut pool: Vec<ProverIndex> = (0..30).map(ProverIndex).collect();
    pool.shuffle(rng);
    let selected: Vec<ProverIndex> = pool[..n].to_vec();
    let num_airs: u32 = rng.random_range(1..=6);
    let redundancy = rng.random_range(1..=n.min(2));
    let mut airs: Vec<Vec<AirIndex>> = vec![Vec::new(); n];
    for air in 0..num_airs {
        let mut who: Vec<usize> = (0..n).collect();
        who.shuffle(rng);
        for &i in &who[..redundancy] {
            airs[i].push(AirIndex(air));
        }
    }
    let assignments: Vec<Assignment> =
        selected.iter().zip(airs).map(|(p, airs)| Assignment { prover: *p, airs }).collect();
    let declined: Vec<ProverIndex> =
        selected.iter().copied().filter(|_| rng.random_bool(0.15)).collect();
    let equivocations = selected
        .iter()
        .filter(|_| rng.random_bool(0.10))
        .map(|p| EquivocationRecord {
            prover: *p,
            first: Root::repeat_byte(1),
            second: Root::repeat_byte(2),
        })
        .collect();
    let mut commitments = Vec::new();
    let mut partials = Vec::new();
    for a in &assignments {
        if declined.contains(&a.prover) {
            continue;
        }
        if rng.random_bool(0.75) {
            commitments
                .push(CommitmentRecord { prover: a.prover, inclusion: inclusion(rng, 0, 4_500) });
            for air in &a.airs {
                if rng.random_bool(0.65) {
                    // Mostly in T2; sometimes in T2's grace or (as a fault) late in T3.
                    partials.push(PartialRecord {
                        prover: a.prover,
                        air: *air,
                        assigned: true,
                        inclusion: inclusion(rng, 4_000, 9_000),
                    });
                }
            }
        }
    }
    // Open-market partials for declined AIRs, from provers 30..40.
    for a in assignments.iter().filter(|a| declined.contains(&a.prover)) {
        for air in &a.airs {
            for outsider in 30..30 + rng.random_range(0..3) {
                partials.push(PartialRecord {
                    prover: ProverIndex(outsider),
                    air: *air,
                    assigned: false,
                    inclusion: inclusion(rng, 4_000, 8_500),
                });
            }
        }
    }
    let finalized_in = match rng.random_range(0..6_usize) {
        0 => None,
        k => Some(Phase::ALL[k - 1]),
    };
    let mut full_proofs = Vec::new();
    if let Some(phase) = finalized_in {
        let window = 4_000 * (phase as u64);
        let count: usize = rng.random_range(1..=3);
        let mut submitters: Vec<ProverIndex> = selected.clone();
        submitters.extend((40..44).map(ProverIndex)); // anyone may aggregate in T3..T5
        submitters.shuffle(rng);
        for &submitter in submitters.iter().take(count) {
            let parts: Vec<PartRef> = (0..num_airs)
                .map(|air| {
                    let holders: Vec<ProverIndex> = assignments
                        .iter()
                        .filter(|a| a.airs.contains(&AirIndex(air)))
                        .map(|a| a.prover)
                        .collect();
                    let author = if rng.random_bool(0.40) {
                        submitter
                    } else {
                        *holders.choose(rng).expect("every AIR has a holder")
                    };
                    PartRef { author, air: AirIndex(air) }
                })
                .collect();
            let reused = parts.iter().copied().filter(|p| p.author != submitter).collect();
            full_proofs.push(FullProofRecord {
                submitter,
                parts,
                reused,
                inclusion: Inclusion { phase, ..inclusion(rng, window, window + 4_000) },
            });
        }
    }
    RoundOutcome {
        key: RoundKey {
            block_root: Root::from(ROOT),
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

fn random_outcome(seed: u64) -> BlockOutcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rounds = Vec::new();
    let subs: u32 = rng.random_range(1..=3);
    for sub in 0..subs {
        for attempt in 0..rng.random_range(1..=2) {
            rounds.push(random_round(&mut rng, sub, attempt));
        }
    }
    let (aggregators, agg_proofs) = if subs > 1 && rng.random_bool(0.60) {
        let aggregators: Vec<ProverIndex> =
            (50..50 + rng.random_range(1..=5)).map(ProverIndex).collect();
        let proofs = (0..rng.random_range(0..4))
            .map(|i| AggProofRecord {
                submitter: ProverIndex(if i % 2 == 0 { 50 + i } else { i }),
                inclusion: inclusion(&mut rng, 0, 20_000),
            })
            .collect();
        (aggregators, proofs)
    } else {
        (Vec::new(), Vec::new())
    };
    BlockOutcome {
        block_root: Root::from(ROOT),
        slot: Slot(7),
        proposer: ValidatorIndex(3),
        rounds,
        aggregators,
        agg_proofs,
    }
}

/// The same outcome with every list permuted (rounds, selections, records, AIR lists).
fn permuted(outcome: &BlockOutcome, seed: u64) -> BlockOutcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut o = outcome.clone();
    o.rounds.shuffle(&mut rng);
    o.aggregators.shuffle(&mut rng);
    o.agg_proofs.shuffle(&mut rng);
    for r in &mut o.rounds {
        r.selected.shuffle(&mut rng);
        r.assignments.shuffle(&mut rng);
        for a in &mut r.assignments {
            a.airs.shuffle(&mut rng);
        }
        r.declined.shuffle(&mut rng);
        r.commitments.shuffle(&mut rng);
        r.partials.shuffle(&mut rng);
        r.full_proofs.shuffle(&mut rng);
        r.equivocations.shuffle(&mut rng);
    }
    o
}

fn round_total(ledger: &Ledger, round: &RoundOutcome, rule: Rule) -> i64 {
    ledger
        .entries()
        .iter()
        .filter(|e| e.sub_block == round.key.sub_block && e.attempt == round.key.attempt)
        .filter(|e| e.rule == rule)
        .map(|e| e.amount.0)
        .sum()
}

fn unit(rule: Rule) -> i64 {
    Config::default().table.amount(rule).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ledger_is_deterministic_and_independent_of_record_order(seed in any::<u64>(), perm in any::<u64>()) {
        let table = Config::default().table;
        let outcome = random_outcome(seed);
        let a = settle(&outcome, &table).unwrap();
        let b = settle(&outcome, &table).unwrap();
        let c = settle(&permuted(&outcome, perm), &table).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &c);
        prop_assert_eq!(a.settlement_root(), c.settlement_root());
        // Canonical: strictly ascending keys, no zero amounts, SSZ round trip.
        let key = |e: &LedgerEntry| (e.sub_block, e.attempt, e.phase, e.rule, e.account);
        prop_assert!(a.entries().windows(2).all(|w| key(&w[0]) < key(&w[1])));
        prop_assert!(a.entries().iter().all(|e| e.amount.0 != 0));
        prop_assert_eq!(Ledger::from_ssz_bytes(&a.as_ssz_bytes()).unwrap(), a);
    }

    #[test]
    fn totals_conserve_what_the_rules_say(seed in any::<u64>()) {
        let table = Config::default().table;
        let outcome = random_outcome(seed);
        let ledger = settle(&outcome, &table).unwrap();
        for e in ledger.entries() {
            // Signs follow the table; unaveraged amounts are whole multiples of the constant.
            if e.rule.is_penalty() {
                prop_assert!(e.amount.0 < 0);
            } else {
                prop_assert!(e.amount.0 > 0);
            }
            if !e.rule.is_averaged() {
                prop_assert_eq!(e.amount.0 % unit(e.rule), 0);
            }
            prop_assert_eq!(matches!(e.account, Account::Validator(_)), e.rule.pays_validator());
        }
        for r in &outcome.rounds {
            let declined: BTreeSet<_> = r.declined.iter().copied().collect();
            let cheats: BTreeSet<_> = r.equivocations.iter().map(|e| e.prover).collect();
            let eligible = r.selected.iter().filter(|p| !declined.contains(p) && !cheats.contains(p)).count() as i64;
            let t = |rule| round_total(&ledger, r, rule);
            match r.finalized_in {
                Some(Phase::T1) => {
                    prop_assert_eq!(t(Rule::RewardFullProofProverT1), 9000 * eligible);
                    prop_assert_eq!(t(Rule::RewardFullProofSenderT1), 50);
                    prop_assert_eq!(t(Rule::RewardFullProofValidatorT1), 1000);
                    prop_assert_eq!(t(Rule::RewardT1Validator), 0);
                    prop_assert_eq!(t(Rule::PenaltyT1Prover), 0);
                    continue;
                }
                Some(Phase::T2) => {
                    prop_assert_eq!(t(Rule::RewardFullProofProverT2), 8000 * eligible);
                    prop_assert_eq!(t(Rule::RewardFullProofSenderT2), 40);
                    prop_assert_eq!(t(Rule::RewardFullProofValidatorT2), 900);
                    prop_assert_eq!(t(Rule::RewardT2Prover), 0);
                }
                _ => {}
            }
            // Every valid, uncontested commitment pays its validator 3.
            let committed: BTreeSet<_> = r.commitments.iter().map(|c| c.prover).filter(|p| !cheats.contains(p)).collect();
            prop_assert_eq!(t(Rule::RewardT1Validator), 3 * committed.len() as i64);
            // Provers that neither committed nor declined, and every equivocator, pay 1.
            let failed = r.selected.iter().filter(|p| cheats.contains(p) || (!declined.contains(p) && !r.commitments.iter().any(|c| c.prover == **p))).count() as i64;
            prop_assert_eq!(t(Rule::PenaltyT1Prover), -failed);
            // Each counted partial pays its author 100 and its validator 3.
            prop_assert_eq!(t(Rule::RewardT2Prover) / 100, t(Rule::RewardT2Validator) / 3);
            if let Some(phase @ (Phase::T3 | Phase::T4 | Phase::T5)) = r.finalized_in {
                let i = phase as usize - 2;
                let submitter = [Rule::RewardProverT3, Rule::RewardProverT4, Rule::RewardProverT5][i];
                let validator = [Rule::RewardValidatorT3, Rule::RewardValidatorT4, Rule::RewardValidatorT5][i];
                let reused = [Rule::RewardProverReusedT3, Rule::RewardProverReusedT4, Rule::RewardProverReusedT5][i];
                let reusing = [Rule::RewardProverReusingT3, Rule::RewardProverReusingT4, Rule::RewardProverReusingT5][i];
                let n = r.full_proofs.len() as i64;
                prop_assert_eq!(t(submitter), unit(submitter) * n);
                prop_assert_eq!(t(validator), unit(validator) * n);
                // Averaging: the per-account floors lose less than one unit per account.
                let times: i64 = r.full_proofs.iter().map(|f| f.reused.len() as i64).sum();
                let authors: BTreeSet<_> = r.full_proofs.iter().flat_map(|f| f.reused.iter().map(|p| p.author)).collect();
                let submitters = r.full_proofs.iter().filter(|f| !f.reused.is_empty()).count();
                for (rule, accounts) in [(reused, authors.len()), (reusing, submitters)] {
                    // Sum over accounts of trunc(x / n), times n, is within (n - 1) per account.
                    let exact = unit(rule) * times;
                    let got = t(rule) * n;
                    let slack = (n - 1) * accounts as i64 * unit(rule);
                    prop_assert!(got <= exact && got >= exact - slack, "{rule}: {got} vs {exact}");
                }
            }
        }
        // Balances conserve the ledger.
        let balances = Balances::from_ledgers([&ledger]).unwrap();
        prop_assert_eq!(balances.total().unwrap(), ledger.total().unwrap());
        prop_assert_eq!(Amount(ledger.entries().iter().map(|e| e.amount.0).sum()), ledger.total().unwrap());
    }
}
