//! Unit tests of settlement: hand-built rounds for each rule group (full proofs in T1 and T2,
//! aggregation in T3 and its T4/T5 fallbacks, retries, declines and open slots, equivocation,
//! late partials, AggProofs), the typed errors and overflow; the shared fixtures; and, in
//! `tests/vs_reference.rs`, the comparison with the map-based reference on random outcomes.

use phase_engine::{
    AggProofRecord, AirIndex, Amount, Assignment, Attempt, BlockOutcome, CommitmentRecord,
    EquivocationRecord, FullProofRecord, Inclusion, PartRef, PartialRecord, Phase, ProverIndex,
    Root, RoundKey, RoundOutcome, Slot, SubBlockIndex, UnixMillis, ValidatorIndex,
};

use super::settle;
use crate::Config;
use crate::error::Error;
use crate::ledger::{Account, Ledger, LedgerEntry};
use crate::table::{RewardTable, Rule};

mod vs_reference;

const V_T1: ValidatorIndex = ValidatorIndex(10);
const V_T2: ValidatorIndex = ValidatorIndex(11);
const V_T2B: ValidatorIndex = ValidatorIndex(12);
const V_FULL: ValidatorIndex = ValidatorIndex(13);

fn root() -> Root {
    Root::repeat_byte(7)
}

fn table() -> RewardTable {
    Config::default().table
}

fn p(i: u64) -> ProverIndex {
    ProverIndex(i)
}

fn at(t: u64, phase: Phase, validator: ValidatorIndex) -> Inclusion {
    Inclusion { arrived_at: UnixMillis(t), phase, validator }
}

/// Provers 0..4 selected; AIR 0 held by P0 and P2, AIR 1 by P1 and P3 (redundancy 2).
fn round(sub_block: u32, attempt: u32) -> RoundOutcome {
    let airs = [0, 1, 0, 1];
    RoundOutcome {
        key: RoundKey {
            block_root: root(),
            sub_block: SubBlockIndex(sub_block),
            attempt: Attempt(attempt),
        },
        num_airs: 2,
        selected: (0..4).map(p).collect(),
        assignments: (0..4)
            .map(|i| Assignment { prover: p(i), airs: vec![AirIndex(airs[i as usize])] })
            .collect(),
        declined: vec![],
        commitments: vec![],
        partials: vec![],
        full_proofs: vec![],
        finalized_in: None,
        equivocations: vec![],
    }
}

fn commit(r: &mut RoundOutcome, provers: &[u64]) {
    for (t, &i) in (100..).zip(provers) {
        r.commitments.push(CommitmentRecord { prover: p(i), inclusion: at(t, Phase::T1, V_T1) });
    }
}

fn partial(r: &mut RoundOutcome, prover: u64, air: u32, t: u64, v: ValidatorIndex) {
    let phase = if t < 8_000 { Phase::T2 } else { Phase::T3 };
    r.partials.push(PartialRecord {
        prover: p(prover),
        air: AirIndex(air),
        assigned: true,
        inclusion: at(t, phase, v),
    });
}

fn full(r: &mut RoundOutcome, submitter: u64, authors: &[u64], t: u64, phase: Phase) {
    let parts: Vec<PartRef> =
        (0..).zip(authors).map(|(air, &a)| PartRef { author: p(a), air: AirIndex(air) }).collect();
    let reused = parts.iter().copied().filter(|x| x.author != p(submitter)).collect();
    r.full_proofs.push(FullProofRecord {
        submitter: p(submitter),
        parts,
        reused,
        inclusion: at(t, phase, V_FULL),
    });
    r.finalized_in = Some(phase);
}

fn block(rounds: Vec<RoundOutcome>) -> BlockOutcome {
    BlockOutcome {
        block_root: root(),
        slot: Slot(5),
        proposer: ValidatorIndex(1),
        rounds,
        aggregators: vec![],
        agg_proofs: vec![],
    }
}

fn e(phase: Phase, rule: Rule, account: Account, amount: i64) -> LedgerEntry {
    LedgerEntry {
        sub_block: SubBlockIndex(0),
        attempt: Attempt(0),
        phase,
        rule,
        account,
        amount: Amount(amount),
    }
}

fn pr(i: u64) -> Account {
    Account::Prover(p(i))
}

fn va(v: ValidatorIndex) -> Account {
    Account::Validator(v)
}

fn expect(ledger: &Ledger, expected: Vec<LedgerEntry>) {
    let expected = Ledger::new(ledger.block_root, ledger.slot, expected).unwrap();
    assert_eq!(ledger.entries(), expected.entries());
}

#[test]
fn full_proof_in_t1() {
    let mut r = round(0, 0);
    r.declined.push(p(3));
    commit(&mut r, &[0, 1]); // P2 neither commits nor declines: no penalty, T1 finalised
    full(&mut r, 0, &[0, 0], 150, Phase::T1);
    let ledger = settle(&block(vec![r]), &table()).unwrap();
    use Rule::*;
    expect(
        &ledger,
        vec![
            e(Phase::T1, RewardFullProofProverT1, pr(0), 9000),
            e(Phase::T1, RewardFullProofProverT1, pr(1), 9000),
            e(Phase::T1, RewardFullProofProverT1, pr(2), 9000),
            e(Phase::T1, RewardFullProofSenderT1, pr(0), 50),
            e(Phase::T1, RewardFullProofValidatorT1, va(V_FULL), 1000),
        ],
    );
    assert_eq!(ledger.total().unwrap(), Amount(3 * 9000 + 50 + 1000));
}

#[test]
fn full_proof_in_t2_keeps_t1_rules() {
    let mut r = round(0, 0);
    commit(&mut r, &[0, 1, 3]);
    partial(&mut r, 0, 0, 5_000, V_T2); // no T2 partial rewards once a full proof is in T2
    full(&mut r, 1, &[0, 1], 6_000, Phase::T2);
    let ledger = settle(&block(vec![r]), &table()).unwrap();
    use Rule::*;
    expect(
        &ledger,
        vec![
            e(Phase::T1, RewardT1Validator, va(V_T1), 3 * 3),
            e(Phase::T1, PenaltyT1Prover, pr(2), -1),
            e(Phase::T2, RewardFullProofProverT2, pr(0), 8000),
            e(Phase::T2, RewardFullProofProverT2, pr(1), 8000),
            e(Phase::T2, RewardFullProofProverT2, pr(2), 8000),
            e(Phase::T2, RewardFullProofProverT2, pr(3), 8000),
            e(Phase::T2, RewardFullProofSenderT2, pr(1), 40),
            e(Phase::T2, RewardFullProofValidatorT2, va(V_FULL), 900),
        ],
    );
}

/// All commit; P0, P1, P2 prove their AIR in T2, P3 does not; P0 aggregates in T3 reusing
/// P1's partial.
fn t3_round() -> RoundOutcome {
    let mut r = round(0, 0);
    commit(&mut r, &[0, 1, 2, 3]);
    partial(&mut r, 0, 0, 5_000, V_T2);
    partial(&mut r, 1, 1, 5_100, V_T2);
    partial(&mut r, 2, 0, 5_200, V_T2B);
    r
}

#[test]
fn aggregation_in_t3_with_reuse() {
    let mut r = t3_round();
    full(&mut r, 0, &[0, 1], 9_000, Phase::T3);
    let ledger = settle(&block(vec![r]), &table()).unwrap();
    use Rule::*;
    expect(
        &ledger,
        vec![
            e(Phase::T1, RewardT1Validator, va(V_T1), 4 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2), 2 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
            e(Phase::T2, RewardT2Prover, pr(0), 100),
            e(Phase::T2, RewardT2Prover, pr(1), 100),
            e(Phase::T2, RewardT2Prover, pr(2), 100),
            e(Phase::T2, PenaltyT2Prover, pr(3), -3),
            e(Phase::T3, RewardProverReusingT3, pr(0), 40),
            e(Phase::T3, RewardProverReusedT3, pr(1), 40),
            e(Phase::T3, RewardProverT3, pr(0), 50),
            e(Phase::T3, RewardValidatorT3, va(V_FULL), 1),
            e(Phase::T3, PenaltyProverT3, pr(3), -1),
            // P2's partial of AIR 0 was not reused (P0 used its own).
            e(Phase::T3, PenaltyProverNotreusedT3, pr(2), -1),
        ],
    );
}

#[test]
fn several_full_proofs_in_t3_are_averaged_truncating_toward_zero() {
    let mut r = t3_round();
    full(&mut r, 0, &[0, 1], 9_000, Phase::T3);
    full(&mut r, 2, &[2, 1], 9_100, Phase::T3);
    full(&mut r, 9, &[0, 1], 9_200, Phase::T3); // any prover may aggregate in T3
    let mut t = table();
    t.penalty_prover_notreused_t3 = Amount(-3);
    let ledger = settle(&block(vec![r]), &t).unwrap();
    let got = |rule, i| ledger.entries().iter().find(|x| x.rule == rule && x.account == pr(i));
    let amount = |rule, i| got(rule, i).map(|x| x.amount.0);
    use Rule::*;
    // n = 3 valid full proofs. Reusing: P0 reused 1, P2 reused 1, P9 reused 2.
    assert_eq!(amount(RewardProverReusingT3, 0), Some(40 / 3));
    assert_eq!(amount(RewardProverReusingT3, 2), Some(40 / 3));
    assert_eq!(amount(RewardProverReusingT3, 9), Some(40 * 2 / 3));
    // Reused: P1 by all three, P0 by P9.
    assert_eq!(amount(RewardProverReusedT3, 1), Some(40 * 3 / 3));
    assert_eq!(amount(RewardProverReusedT3, 0), Some(40 / 3));
    // Not reused: P2's partial by P0's and P9's proofs, P0's partial by P2's proof.
    assert_eq!(amount(PenaltyProverNotreusedT3, 2), Some(-3 * 2 / 3));
    assert_eq!(amount(PenaltyProverNotreusedT3, 0), Some(-3 / 3));
    // Not averaged: each submitter, each full proof's validator.
    for i in [0, 2, 9] {
        assert_eq!(amount(RewardProverT3, i), Some(50));
    }
    assert_eq!(ledger.rule_total(RewardValidatorT3).unwrap(), Amount(3));
    // With the default -1, -1 * 2 / 3 and -1 / 3 truncate to 0: no entry at all.
    let r = settle(
        &block(vec![{
            let mut r = t3_round();
            full(&mut r, 0, &[0, 1], 9_000, Phase::T3);
            full(&mut r, 2, &[2, 1], 9_100, Phase::T3);
            full(&mut r, 9, &[0, 1], 9_200, Phase::T3);
            r
        }]),
        &table(),
    )
    .unwrap();
    assert_eq!(r.rule_total(PenaltyProverNotreusedT3).unwrap(), Amount(0));
}

#[test]
fn fallback_in_t4_and_t5_applies_every_reached_non_participation_penalty() {
    use Rule::*;
    for (phase, reusing, reused, submitter, validator, penalties) in [
        (
            Phase::T4,
            RewardProverReusingT4,
            RewardProverReusedT4,
            RewardProverT4,
            RewardValidatorT4,
            vec![(Phase::T3, PenaltyProverT3, -1), (Phase::T4, PenaltyProverT4, -2)],
        ),
        (
            Phase::T5,
            RewardProverReusingT5,
            RewardProverReusedT5,
            RewardProverT5,
            RewardValidatorT5,
            vec![
                (Phase::T3, PenaltyProverT3, -1),
                (Phase::T4, PenaltyProverT4, -2),
                (Phase::T5, PenaltyProverT5, -4),
            ],
        ),
    ] {
        let mut r = t3_round();
        // P2 reuses both P0's and P1's partials: nobody's partial goes unreused.
        full(&mut r, 2, &[0, 1], 13_000, phase);
        let ledger = settle(&block(vec![r]), &table()).unwrap();
        let unit = |rule| table().amount(rule).0;
        let mut expected = vec![
            e(Phase::T1, RewardT1Validator, va(V_T1), 4 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2), 2 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
            e(Phase::T2, RewardT2Prover, pr(0), 100),
            e(Phase::T2, RewardT2Prover, pr(1), 100),
            e(Phase::T2, RewardT2Prover, pr(2), 100),
            e(Phase::T2, PenaltyT2Prover, pr(3), -3),
            e(phase, reusing, pr(2), 2 * unit(reusing)),
            e(phase, reused, pr(0), unit(reused)),
            e(phase, reused, pr(1), unit(reused)),
            e(phase, submitter, pr(2), unit(submitter)),
            e(phase, validator, va(V_FULL), 1),
        ];
        expected.extend(penalties.into_iter().map(|(ph, rule, a)| e(ph, rule, pr(3), a)));
        expect(&ledger, expected);
    }
}

#[test]
fn failed_attempt_and_retry_settle_separately() {
    let failed = t3_round(); // no full proof at all: finalized_in None
    let mut retry = round(0, 1);
    retry.selected = (4..8).map(p).collect();
    for (a, i) in retry.assignments.iter_mut().zip(4..) {
        a.prover = p(i);
    }
    commit(&mut retry, &[4, 5, 6, 7]);
    full(&mut retry, 5, &[5, 5], 200, Phase::T1);
    let ledger = settle(&block(vec![failed, retry]), &table()).unwrap();
    use Rule::*;
    let mut expected = vec![
        e(Phase::T1, RewardT1Validator, va(V_T1), 4 * 3),
        e(Phase::T2, RewardT2Validator, va(V_T2), 2 * 3),
        e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
        e(Phase::T2, RewardT2Prover, pr(0), 100),
        e(Phase::T2, RewardT2Prover, pr(1), 100),
        e(Phase::T2, RewardT2Prover, pr(2), 100),
        e(Phase::T2, PenaltyT2Prover, pr(3), -3),
        e(Phase::T3, PenaltyProverT3, pr(3), -1),
        e(Phase::T4, PenaltyProverT4, pr(3), -2),
        e(Phase::T5, PenaltyProverT5, pr(3), -4),
    ];
    let in_retry = |mut x: LedgerEntry| {
        x.attempt = Attempt(1);
        x
    };
    for i in 4..8 {
        expected.push(in_retry(e(Phase::T1, RewardFullProofProverT1, pr(i), 9000)));
    }
    expected.push(in_retry(e(Phase::T1, RewardFullProofSenderT1, pr(5), 50)));
    expected.push(in_retry(e(Phase::T1, RewardFullProofValidatorT1, va(V_FULL), 1000)));
    expect(&ledger, expected);
}

#[test]
fn declined_airs_pay_the_first_open_partials_as_if_assigned() {
    let mut r = round(0, 0);
    r.declined.push(p(2)); // AIR 0 gets one open slot
    commit(&mut r, &[0, 1, 3]);
    partial(&mut r, 0, 0, 5_000, V_T2);
    partial(&mut r, 1, 1, 5_000, V_T2);
    partial(&mut r, 3, 1, 5_000, V_T2);
    // Open market: P9 first, P8 second (unpaid), P0 holds AIR 0 already (never a slot).
    for (prover, t) in [(8, 5_600), (9, 5_500)] {
        r.partials.push(PartialRecord {
            prover: p(prover),
            air: AirIndex(0),
            assigned: false,
            inclusion: at(t, Phase::T2, V_T2B),
        });
    }
    full(&mut r, 1, &[9, 1], 9_000, Phase::T3);
    let ledger = settle(&block(vec![r]), &table()).unwrap();
    use Rule::*;
    expect(
        &ledger,
        vec![
            e(Phase::T1, RewardT1Validator, va(V_T1), 3 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2), 3 * 3),
            e(Phase::T2, RewardT2Validator, va(V_T2B), 3),
            e(Phase::T2, RewardT2Prover, pr(0), 100),
            e(Phase::T2, RewardT2Prover, pr(1), 100),
            e(Phase::T2, RewardT2Prover, pr(3), 100),
            e(Phase::T2, RewardT2Prover, pr(9), 100),
            e(Phase::T3, RewardProverReusingT3, pr(1), 40),
            e(Phase::T3, RewardProverReusedT3, pr(9), 40),
            e(Phase::T3, RewardProverT3, pr(1), 50),
            e(Phase::T3, RewardValidatorT3, va(V_FULL), 1),
            e(Phase::T3, PenaltyProverNotreusedT3, pr(0), -1),
            e(Phase::T3, PenaltyProverNotreusedT3, pr(3), -1),
        ],
    );
}

#[test]
fn equivocator_counts_as_not_committed_and_loses_the_full_proof_share() {
    let mut r = round(0, 0);
    commit(&mut r, &[0, 1, 2, 3]);
    r.equivocations.push(EquivocationRecord {
        prover: p(1),
        first: Root::repeat_byte(1),
        second: Root::repeat_byte(2),
    });
    let mut t1 = r.clone();
    full(&mut t1, 0, &[0, 0], 150, Phase::T1);
    let ledger = settle(&block(vec![t1]), &table()).unwrap();
    assert_eq!(ledger.net(pr(1)).unwrap(), Amount(0));
    assert_eq!(ledger.rule_total(Rule::RewardFullProofProverT1).unwrap(), Amount(3 * 9000));

    full(&mut r, 0, &[0, 0], 5_000, Phase::T2);
    let ledger = settle(&block(vec![r]), &table()).unwrap();
    use Rule::*;
    expect(
        &ledger,
        vec![
            e(Phase::T1, RewardT1Validator, va(V_T1), 3 * 3), // P1's commitment is void
            e(Phase::T1, PenaltyT1Prover, pr(1), -1),
            e(Phase::T2, RewardFullProofProverT2, pr(0), 8000),
            e(Phase::T2, RewardFullProofProverT2, pr(2), 8000),
            e(Phase::T2, RewardFullProofProverT2, pr(3), 8000),
            e(Phase::T2, RewardFullProofSenderT2, pr(0), 40),
            e(Phase::T2, RewardFullProofValidatorT2, va(V_FULL), 900),
        ],
    );
}

#[test]
fn late_partials_do_not_count() {
    let mut r = round(0, 0);
    commit(&mut r, &[0, 1, 2, 3]);
    partial(&mut r, 0, 0, 5_000, V_T2);
    partial(&mut r, 1, 1, 8_100, V_T2); // phase T3: late for T2
    let ledger = settle(&block(vec![r]), &table()).unwrap();
    assert_eq!(ledger.net(pr(0)).unwrap(), Amount(100));
    assert_eq!(ledger.net(pr(1)).unwrap(), Amount(-3 - 1 - 2 - 4));
    assert_eq!(ledger.rule_total(Rule::RewardT2Validator).unwrap(), Amount(3));
}

#[test]
fn agg_proof_pays_the_group_the_first_sender_and_each_including_validator() {
    let mut r0 = round(0, 0);
    full(&mut r0, 0, &[0, 0], 150, Phase::T1);
    let mut r1 = round(1, 0);
    full(&mut r1, 1, &[1, 1], 150, Phase::T1);
    let mut b = block(vec![r0, r1]);
    b.aggregators = (20..25).map(p).collect();
    b.agg_proofs = vec![
        AggProofRecord { submitter: p(2), inclusion: at(400, Phase::T1, ValidatorIndex(31)) },
        AggProofRecord { submitter: p(21), inclusion: at(500, Phase::T1, ValidatorIndex(31)) },
        AggProofRecord { submitter: p(22), inclusion: at(600, Phase::T1, ValidatorIndex(32)) },
    ];
    let ledger = settle(&b, &table()).unwrap();
    let agg: Vec<_> = ledger.entries().iter().filter(|x| x.rule.is_block_level()).collect();
    let mut expected: Vec<(Account, i64)> = vec![(pr(2), 50)]; // the first sender
    expected.extend((20..25).map(|i| (pr(i), 50)));
    expected.extend([(va(ValidatorIndex(31)), 3), (va(ValidatorIndex(32)), 3)]);
    assert_eq!(agg.iter().map(|x| (x.account, x.amount.0)).collect::<Vec<_>>(), expected);
    assert!(agg.iter().all(|x| x.sub_block == SubBlockIndex(0) && x.attempt == Attempt(0)));
    // Two sub-blocks of 4 provers each finalised in T1, plus the AggProof rewards.
    let total = 2 * (4 * 9000 + 50 + 1000) + 6 * 50 + 2 * 3;
    assert_eq!(ledger.total().unwrap(), Amount(total));
}

#[test]
fn inconsistent_outcomes_are_typed_errors() {
    let t = table();
    let mut r = round(0, 0);
    r.key.block_root = Root::repeat_byte(9);
    assert!(matches!(settle(&block(vec![r]), &t), Err(Error::ForeignRound { .. })));

    assert!(matches!(
        settle(&block(vec![round(0, 0), round(0, 0)]), &t),
        Err(Error::DuplicateRound { .. })
    ));

    let mut r = round(0, 0);
    r.assignments[0].prover = p(99);
    assert!(matches!(settle(&block(vec![r]), &t), Err(Error::AssignmentMismatch { .. })));
    let mut r = round(0, 0);
    r.declined.push(p(99));
    assert!(matches!(settle(&block(vec![r]), &t), Err(Error::AssignmentMismatch { .. })));

    let mut r = round(0, 0);
    r.finalized_in = Some(Phase::T3);
    assert!(matches!(
        settle(&block(vec![r]), &t),
        Err(Error::FinalizedWithoutFullProof { phase: Phase::T3, .. })
    ));

    let mut r = round(0, 0);
    full(&mut r, 0, &[0, 0], 150, Phase::T1);
    r.finalized_in = Some(Phase::T2);
    assert!(matches!(
        settle(&block(vec![r]), &t),
        Err(Error::FullProofOutsideFinalizingPhase { .. })
    ));

    let mut b = block(vec![]);
    b.agg_proofs.push(AggProofRecord { submitter: p(1), inclusion: at(1, Phase::T1, V_T1) });
    assert!(matches!(settle(&b, &t), Err(Error::AggProofWithoutAggregators)));
}

#[test]
fn overflow_is_an_error_not_a_panic() {
    let mut t = table();
    t.reward_full_proof_prover_t1 = Amount(i64::MAX);
    let mut r = round(0, 0);
    full(&mut r, 0, &[0, 0], 150, Phase::T1);
    // One entry of i64::MAX per prover is fine; the ledger total overflows.
    let ledger = settle(&block(vec![r.clone()]), &t).unwrap();
    assert!(matches!(ledger.total(), Err(Error::Overflow { .. })));
    // Two rounds paying the same account i64::MAX in the same key cannot happen, but a
    // count times a large amount can.
    t.reward_t1_validator = Amount(i64::MAX);
    let mut r = round(0, 0);
    commit(&mut r, &[0, 1]);
    assert!(matches!(settle(&block(vec![r]), &t), Err(Error::Overflow { .. })));
}

#[test]
fn empty_outcome_settles_to_an_empty_ledger() {
    let ledger = settle(&block(vec![]), &table()).unwrap();
    assert!(ledger.is_empty());
    assert_eq!(ledger.block_root, root());
    assert_eq!(ledger.slot, Slot(5));
}
