//! Scenario tests: the phase engine runs on a virtual clock (`phase_engine::test_utils`), its
//! `BlockOutcome` is settled with the default reward table, and the exact ledger is compared with
//! amounts worked out by hand from the spec's table (the arithmetic is written in each entry).
//!
//! Set-up of every single-sub-block scenario: 8 provers, `PROVERS_PER_PROOF` = 4, redundancy 2,
//! 8 Mgas at 4 Mgas per AIR = 2 AIRs, so 4 selected provers hold one AIR each and each AIR has
//! two holders. Timeline (windows 4 s, grace 500 ms, S = slot 1 start): T1 [S, S+4s), T2 until
//! S+8s, T3 until S+12s, T4 until S+16s, T5 until S+20s. Block 2 starts at S+12s and block 3 at
//! S+24s, so a message before S+12s is included by validator 1002 (proposer of slot 2) and one in
//! [S+12s, S+24s) by validator 1003.

// Amounts are written as `constant * count` even when the count is 1.
#![allow(clippy::identity_op)]

use phase_engine::test_utils::{Scenario, proposer};
use phase_engine::{
    AirIndex, Amount, Attempt, BlockInfo, BlockOutcome, EngineConfig, Error as EngineError,
    GasPlan, PartRef, Phase, ProverIndex, Root, RoundKey, SubBlockIndex, UnixMillis,
};
use rewards::{Account, Config, Ledger, LedgerEntry, Rule, settle};

use Phase::*;
use Rule::*;

fn config() -> EngineConfig {
    EngineConfig {
        provers_per_proof: 4,
        provers_per_aggproof: 2,
        redundancy_factor: 2,
        max_retries: 1,
        gas: GasPlan { gas_per_air: 4_000_000, ..GasPlan::default() },
        ..EngineConfig::default()
    }
}

/// A started block-1 round with its selection split by AIR: `air0`/`air1` are the two holders
/// of AIR 0 and AIR 1, ascending.
struct Run {
    s: Scenario,
    block: BlockInfo,
    key: RoundKey,
    selected: Vec<ProverIndex>,
    air0: Vec<ProverIndex>,
    air1: Vec<ProverIndex>,
}

fn start() -> Run {
    let mut s = Scenario::new(config(), 8);
    let block = s.add_block(1, 8_000_000).unwrap();
    let key = s.round_keys(&block.root)[0];
    let mut selected = s.selected(&key);
    selected.sort();
    assert_eq!(selected.len(), 4);
    let holders = |air: u32| -> Vec<ProverIndex> {
        selected.iter().copied().filter(|p| s.assignment(&key, *p) == [AirIndex(air)]).collect()
    };
    let (air0, air1) = (holders(0), holders(1));
    assert_eq!((air0.len(), air1.len()), (2, 2), "each prover holds exactly one AIR");
    Run { s, block, key, selected, air0, air1 }
}

impl Run {
    fn at(&self, phase: Phase, offset_ms: u64) -> UnixMillis {
        self.s.time_in(&self.key, phase, offset_ms)
    }

    fn commit(&mut self, provers: &[ProverIndex]) {
        let t = self.at(T1, 100);
        for p in provers {
            self.s.deliver(self.s.commitment(&self.key, *p), t).unwrap();
        }
    }

    fn prove(&mut self, prover: ProverIndex, air: u32, t: UnixMillis) {
        self.s.deliver(self.s.partial(&self.key, prover, AirIndex(air)), t).unwrap();
    }

    fn full(&mut self, submitter: ProverIndex, authors: [ProverIndex; 2], t: UnixMillis) {
        let parts = parts(authors);
        self.s.deliver(self.s.full_proof(&self.key, submitter, &parts), t).unwrap();
    }

    /// Adds the following blocks and settles the block-1 outcome with the default table.
    fn settle(mut self, next_slots: &[u64]) -> (Ledger, BlockOutcome) {
        for slot in next_slots {
            self.s.add_block(*slot, 0).unwrap();
        }
        let outcome = self.s.run_until_outcome(&self.block.root).expect("outcome");
        (settle(&outcome, &Config::default().table).unwrap(), outcome)
    }
}

fn parts(authors: [ProverIndex; 2]) -> Vec<PartRef> {
    (0..).zip(authors).map(|(air, author)| PartRef { author, air: AirIndex(air) }).collect()
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

fn pr(p: ProverIndex) -> Account {
    Account::Prover(p)
}

fn val(slot: u64) -> Account {
    Account::Validator(proposer(slot))
}

fn assert_ledger(got: &Ledger, expected: Vec<LedgerEntry>) {
    let expected = Ledger::new(got.block_root, got.slot, expected).unwrap();
    assert_eq!(got.entries(), expected.entries());
    assert_eq!(got.settlement_root(), expected.settlement_root());
}

#[test]
fn full_proof_in_t1() {
    let mut r = start();
    let submitter = r.selected[0];
    let t = r.at(T1, 100);
    let own = r.s.own_parts(&r.key, submitter);
    r.s.deliver(r.s.commitment_with_full_proof(&r.key, submitter, &own), t).unwrap();
    let others = [r.selected[1], r.selected[2]]; // selected[3] stays silent: no T1 penalty
    r.commit(&others);
    let selected = r.selected.clone();
    let (ledger, _) = r.settle(&[2]);
    let mut expected: Vec<LedgerEntry> =
        selected.iter().map(|p| e(T1, RewardFullProofProverT1, pr(*p), 9000)).collect();
    expected.push(e(T1, RewardFullProofSenderT1, pr(submitter), 50));
    expected.push(e(T1, RewardFullProofValidatorT1, val(2), 1000));
    assert_ledger(&ledger, expected);
    assert_eq!(ledger.total().unwrap(), Amount(4 * 9000 + 50 + 1000));
}

#[test]
fn full_proof_in_t2() {
    let mut r = start();
    let silent = r.selected[3];
    r.commit(&r.selected.clone()[..3]);
    let submitter = r.selected[1];
    let own = r.s.own_parts(&r.key, submitter);
    let t = r.at(T2, 200);
    r.s.deliver(r.s.full_proof(&r.key, submitter, &own), t).unwrap();
    let selected = r.selected.clone();
    let (ledger, _) = r.settle(&[2]);
    let mut expected = vec![
        e(T1, RewardT1Validator, val(2), 3 * 3), // 3 valid commitments
        e(T1, PenaltyT1Prover, pr(silent), -1),  // T1 closed without a full proof
    ];
    expected.extend(selected.iter().map(|p| e(T2, RewardFullProofProverT2, pr(*p), 8000)));
    expected.push(e(T2, RewardFullProofSenderT2, pr(submitter), 40));
    expected.push(e(T2, RewardFullProofValidatorT2, val(2), 900));
    assert_ledger(&ledger, expected);
    assert_eq!(ledger.total().unwrap(), Amount(9 - 1 + 4 * 8000 + 40 + 900));
}

/// Everybody commits; both holders of AIR 0 and the first holder of AIR 1 prove in T2, the
/// second holder of AIR 1 (`air1[1]`) sends nothing.
fn through_t2() -> Run {
    let mut r = start();
    r.commit(&r.selected.clone());
    let t = r.at(T2, 100);
    r.prove(r.air0[0], 0, t);
    r.prove(r.air0[1], 0, t);
    r.prove(r.air1[0], 1, t);
    r
}

/// The T1 and T2 entries of [`through_t2`] when no full proof arrives by T2.
fn t1_t2_entries(r: &Run) -> Vec<LedgerEntry> {
    vec![
        e(T1, RewardT1Validator, val(2), 4 * 3),
        e(T2, RewardT2Prover, pr(r.air0[0]), 100),
        e(T2, RewardT2Prover, pr(r.air0[1]), 100),
        e(T2, RewardT2Prover, pr(r.air1[0]), 100),
        e(T2, RewardT2Validator, val(2), 3 * 3),
        e(T2, PenaltyT2Prover, pr(r.air1[1]), -3), // one assigned AIR without a partial
    ]
}

#[test]
fn aggregation_in_t3_with_reuse() {
    let mut r = through_t2();
    // air0[0] aggregates its own AIR 0 and reuses air1[0]'s AIR 1.
    let submitter = r.air0[0];
    r.full(submitter, [submitter, r.air1[0]], r.at(T3, 600));
    let mut expected = t1_t2_entries(&r);
    expected.extend([
        e(T3, RewardProverReusingT3, pr(submitter), 40 * 1),
        e(T3, RewardProverReusedT3, pr(r.air1[0]), 40 * 1),
        e(T3, PenaltyProverNotreusedT3, pr(r.air0[1]), -1), // its AIR 0 partial went unused
        e(T3, RewardProverT3, pr(submitter), 50),
        e(T3, RewardValidatorT3, val(2), 1),
        e(T3, PenaltyProverT3, pr(r.air1[1]), -1), // no partial, no full proof
    ]);
    let (ledger, outcome) = r.settle(&[2]);
    assert_eq!(outcome.rounds[0].finalized_in, Some(T3));
    assert_ledger(&ledger, expected);
}

#[test]
fn two_full_proofs_in_t3_average_the_reuse_rewards() {
    let mut r = through_t2();
    let submitter = r.air0[0];
    r.full(submitter, [submitter, r.air1[0]], r.at(T3, 600));
    // Any prover may aggregate in T3: an unselected one reuses air0[1] and air1[0].
    let outsider = (0..8).map(ProverIndex).find(|p| !r.selected.contains(p)).unwrap();
    r.full(outsider, [r.air0[1], r.air1[0]], r.at(T3, 800));
    let mut expected = t1_t2_entries(&r);
    // n = 2 valid full proofs; averaged amounts are (sum over proofs) / 2, toward zero.
    expected.extend([
        e(T3, RewardProverReusingT3, pr(submitter), 40 * 1 / 2),
        e(T3, RewardProverReusingT3, pr(outsider), 40 * 2 / 2),
        e(T3, RewardProverReusedT3, pr(r.air1[0]), 40 * 2 / 2),
        e(T3, RewardProverReusedT3, pr(r.air0[1]), 40 * 1 / 2),
        // Not reused: air0[1] by the first proof, air0[0] by the second: -1 / 2 = 0 each.
        e(T3, RewardProverT3, pr(submitter), 50),
        e(T3, RewardProverT3, pr(outsider), 50),
        e(T3, RewardValidatorT3, val(2), 2 * 1),
        e(T3, PenaltyProverT3, pr(r.air1[1]), -1),
    ]);
    let (ledger, outcome) = r.settle(&[2]);
    assert_eq!(outcome.rounds[0].full_proofs.len(), 2);
    assert_ledger(&ledger, expected);
}

#[test]
fn fallback_to_t4() {
    let mut r = through_t2();
    r.s.add_block(2, 0).unwrap();
    let submitter = r.air0[0];
    // T3's grace runs until S+12.5s: at S+12.6s the full proof counts for T4.
    r.full(submitter, [submitter, r.air1[0]], r.at(T4, 600));
    let mut expected = t1_t2_entries(&r);
    expected.extend([
        e(T3, PenaltyProverT3, pr(r.air1[1]), -1),
        e(T4, PenaltyProverT4, pr(r.air1[1]), -2),
        e(T4, RewardProverReusingT4, pr(submitter), 30 * 1),
        e(T4, RewardProverReusedT4, pr(r.air1[0]), 30 * 1),
        e(T4, PenaltyProverNotreusedT4, pr(r.air0[1]), -1),
        e(T4, RewardProverT4, pr(submitter), 40),
        e(T4, RewardValidatorT4, val(3), 1), // arrived after block 2 started
    ]);
    let (ledger, _) = r.settle(&[3]);
    assert_ledger(&ledger, expected);
}

#[test]
fn fallback_to_t5() {
    let mut r = through_t2();
    r.s.add_block(2, 0).unwrap();
    let submitter = r.air1[0];
    // air1[0] aggregates reusing air0[1]'s AIR 0: air0[0]'s partial goes unused.
    r.full(submitter, [r.air0[1], submitter], r.at(T5, 600));
    let mut expected = t1_t2_entries(&r);
    expected.extend([
        e(T3, PenaltyProverT3, pr(r.air1[1]), -1),
        e(T4, PenaltyProverT4, pr(r.air1[1]), -2),
        e(T5, PenaltyProverT5, pr(r.air1[1]), -4),
        e(T5, RewardProverReusingT5, pr(submitter), 20 * 1),
        e(T5, RewardProverReusedT5, pr(r.air0[1]), 20 * 1),
        e(T5, PenaltyProverNotreusedT5, pr(r.air0[0]), -1),
        e(T5, RewardProverT5, pr(submitter), 40),
        e(T5, RewardValidatorT5, val(3), 1),
    ]);
    let (ledger, _) = r.settle(&[3]);
    assert_ledger(&ledger, expected);
}

#[test]
fn retry_after_t5() {
    let mut r = through_t2();
    r.s.add_block(2, 0).unwrap();
    // Nobody aggregates: attempt 0 fails when T5 closes (+ grace) and attempt 1 starts there.
    let retry_key = RoundKey { attempt: Attempt(1), ..r.key };
    r.s.advance_to(r.at(T5, 4_500));
    let retry = r.s.round_start(&retry_key).expect("retry started").clone();
    let submitter = retry.selected[0];
    let own = r.s.own_parts(&retry_key, submitter);
    let t = r.s.time_in(&retry_key, T1, 100);
    r.s.deliver(r.s.commitment_with_full_proof(&retry_key, submitter, &own), t).unwrap();
    let mut expected = t1_t2_entries(&r);
    // Attempt 0 reached T3, T4 and T5: the prover that did nothing pays all three.
    expected.extend([
        e(T3, PenaltyProverT3, pr(r.air1[1]), -1),
        e(T4, PenaltyProverT4, pr(r.air1[1]), -2),
        e(T5, PenaltyProverT5, pr(r.air1[1]), -4),
    ]);
    // Attempt 1 settles its own rules: a full proof in its T1.
    let in_retry = |mut x: LedgerEntry| {
        x.attempt = Attempt(1);
        x
    };
    for p in &retry.selected {
        expected.push(in_retry(e(T1, RewardFullProofProverT1, pr(*p), 9000)));
    }
    expected.push(in_retry(e(T1, RewardFullProofSenderT1, pr(submitter), 50)));
    expected.push(in_retry(e(T1, RewardFullProofValidatorT1, val(3), 1000)));
    let (ledger, outcome) = r.settle(&[3]);
    assert_eq!(outcome.rounds.len(), 2);
    assert_eq!(outcome.rounds[0].finalized_in, None);
    assert_ledger(&ledger, expected);
}

#[test]
fn declines_open_airs_and_the_first_outsider_is_paid() {
    let mut r = start();
    let decliner = r.air1[1];
    let t1 = r.at(T1, 50);
    r.s.deliver(r.s.decline(&r.key, decliner), t1).unwrap();
    r.commit(&[r.air0[0], r.air0[1], r.air1[0]]);
    let t2 = r.at(T2, 100);
    r.prove(r.air0[0], 0, t2);
    r.prove(r.air0[1], 0, t2);
    r.prove(r.air1[0], 1, t2);
    let mut outsiders = (0..8).map(ProverIndex).filter(|p| !r.selected.contains(p));
    let (first, second) = (outsiders.next().unwrap(), outsiders.next().unwrap());
    r.prove(first, 1, r.at(T2, 200));
    r.prove(second, 1, r.at(T2, 300)); // valid but the one open slot is taken: unpaid
    let submitter = r.air0[0];
    r.full(submitter, [submitter, first], r.at(T3, 600));
    let expected = vec![
        e(T1, RewardT1Validator, val(2), 3 * 3), // the decliner is not penalised
        e(T2, RewardT2Prover, pr(r.air0[0]), 100),
        e(T2, RewardT2Prover, pr(r.air0[1]), 100),
        e(T2, RewardT2Prover, pr(r.air1[0]), 100),
        e(T2, RewardT2Prover, pr(first), 100), // paid as if assigned
        e(T2, RewardT2Validator, val(2), 4 * 3),
        e(T3, RewardProverReusingT3, pr(submitter), 40 * 1),
        e(T3, RewardProverReusedT3, pr(first), 40 * 1),
        e(T3, PenaltyProverNotreusedT3, pr(r.air0[1]), -1),
        e(T3, PenaltyProverNotreusedT3, pr(r.air1[0]), -1),
        e(T3, RewardProverT3, pr(submitter), 50),
        e(T3, RewardValidatorT3, val(2), 1),
    ];
    let (ledger, _) = r.settle(&[2]);
    assert_ledger(&ledger, expected);
    assert_eq!(ledger.net(pr(second)).unwrap(), Amount(0));
    assert_eq!(ledger.net(pr(decliner)).unwrap(), Amount(0));
}

#[test]
fn equivocation_voids_the_commitment() {
    let mut r = start();
    let cheat = r.selected[0];
    r.commit(&r.selected.clone());
    let t = r.at(T1, 200);
    let air = r.s.assignment(&r.key, cheat)[0];
    let other = r.s.commitment_with_roots(&r.key, cheat, &[(air, Root::repeat_byte(1))]);
    let err = r.s.deliver(other, t).unwrap_err();
    assert!(matches!(err, EngineError::Equivocation { .. }), "{err:?}");
    let submitter = r.selected[1];
    let own = r.s.own_parts(&r.key, submitter);
    let t2 = r.at(T2, 100);
    r.s.deliver(r.s.full_proof(&r.key, submitter, &own), t2).unwrap();
    let mut expected = vec![
        e(T1, RewardT1Validator, val(2), 3 * 3), // 4 commitments, the cheat's is void
        e(T1, PenaltyT1Prover, pr(cheat), -1),
    ];
    for p in &r.selected[1..] {
        expected.push(e(T2, RewardFullProofProverT2, pr(*p), 8000)); // not the cheat
    }
    expected.push(e(T2, RewardFullProofSenderT2, pr(submitter), 40));
    expected.push(e(T2, RewardFullProofValidatorT2, val(2), 900));
    let (ledger, outcome) = r.settle(&[2]);
    assert_eq!(outcome.rounds[0].equivocations.len(), 1);
    assert_ledger(&ledger, expected);
    assert_eq!(ledger.net(pr(cheat)).unwrap(), Amount(-1));
}

#[test]
fn late_messages_count_as_missing() {
    let mut r = start();
    r.commit(&[r.air0[0], r.air0[1], r.air1[0]]);
    // air1[1] commits after T1's grace: refused, so it failed to commit.
    let late = r.s.commitment(&r.key, r.air1[1]);
    let err = r.s.deliver(late, r.at(T2, 500)).unwrap_err();
    assert!(matches!(err, EngineError::Late { .. }), "{err:?}");
    r.prove(r.air0[0], 0, r.at(T2, 100));
    // Inside T2's grace (T2 closes at S+8s, grace until S+8.5s): still counts for T2.
    r.prove(r.air1[0], 1, r.at(T3, 400));
    // After the grace: refused, so air0[1] misses its partial.
    let late = r.s.partial(&r.key, r.air0[1], AirIndex(0));
    let err = r.s.deliver(late, r.at(T3, 500)).unwrap_err();
    assert!(matches!(err, EngineError::Late { .. }), "{err:?}");
    let submitter = r.air0[0];
    r.full(submitter, [submitter, r.air1[0]], r.at(T3, 1_000));
    let expected = vec![
        e(T1, RewardT1Validator, val(2), 3 * 3),
        e(T1, PenaltyT1Prover, pr(r.air1[1]), -1),
        e(T2, RewardT2Prover, pr(r.air0[0]), 100),
        e(T2, RewardT2Prover, pr(r.air1[0]), 100),
        e(T2, RewardT2Validator, val(2), 2 * 3),
        e(T2, PenaltyT2Prover, pr(r.air0[1]), -3),
        e(T2, PenaltyT2Prover, pr(r.air1[1]), -3),
        e(T3, RewardProverReusingT3, pr(submitter), 40),
        e(T3, RewardProverReusedT3, pr(r.air1[0]), 40),
        e(T3, RewardProverT3, pr(submitter), 50),
        e(T3, RewardValidatorT3, val(2), 1),
        e(T3, PenaltyProverT3, pr(r.air0[1]), -1),
        e(T3, PenaltyProverT3, pr(r.air1[1]), -1),
    ];
    let (ledger, _) = r.settle(&[2]);
    assert_ledger(&ledger, expected);
}

#[test]
fn sub_blocks_with_agg_proof() {
    // 16 Mgas at 8 Mgas per sub-block: 2 sub-blocks of 2 AIRs; 16 provers / (2 * 2) = 4 per
    // sub-block; an aggregator group of 2 from the 8 left.
    let cfg = EngineConfig {
        gas: GasPlan { sub_block_gas: 8_000_000, gas_per_air: 4_000_000, max_sub_blocks: 32 },
        ..config()
    };
    let mut s = Scenario::new(cfg, 16);
    let block = s.add_block(1, 16_000_000).unwrap();
    let keys = s.round_keys(&block.root);
    assert_eq!(keys.len(), 2);
    let aggregators = s.aggregators(&block.root);
    assert_eq!(aggregators.len(), 2);
    let t = s.time_in(&keys[0], T1, 100);
    let mut expected = Vec::new();
    for key in &keys {
        let selected = s.selected(key);
        let submitter = selected[0];
        let own = s.own_parts(key, submitter);
        s.deliver(s.commitment_with_full_proof(key, submitter, &own), t).unwrap();
        let in_sub = |mut x: LedgerEntry| {
            x.sub_block = key.sub_block;
            x
        };
        for p in &selected {
            expected.push(in_sub(e(T1, RewardFullProofProverT1, pr(*p), 9000)));
        }
        expected.push(in_sub(e(T1, RewardFullProofSenderT1, pr(submitter), 50)));
        expected.push(in_sub(e(T1, RewardFullProofValidatorT1, val(2), 1000)));
    }
    // A selected prover of sub-block 1 sends the first AggProof, then an aggregator.
    let first = s.selected(&keys[1])[1];
    s.deliver(s.agg_proof(&block, first), s.time_in(&keys[0], T2, 1_000)).unwrap();
    s.deliver(s.agg_proof(&block, aggregators[0]), s.time_in(&keys[0], T2, 2_000)).unwrap();
    // The group and the first sender, 50 each; the one including validator, 3 once.
    for p in [first, aggregators[0], aggregators[1]] {
        expected.push(e(T1, RewardAggProofProver, pr(p), 50));
    }
    expected.push(e(T1, RewardAggProofValidator, val(2), 3));
    s.add_block(2, 0).unwrap();
    let outcome = s.run_until_outcome(&block.root).unwrap();
    assert_eq!(outcome.agg_proofs.len(), 2);
    let ledger = settle(&outcome, &Config::default().table).unwrap();
    assert_ledger(&ledger, expected);
    assert_eq!(ledger.total().unwrap(), Amount(2 * (4 * 9000 + 50 + 1000) + 3 * 50 + 3));
}

/// Delivers the messages of [`two_full_proofs_in_t3_average_the_reuse_rewards`] with the order
/// (and so the arrival instants) shuffled within each phase; returns the settled ledger.
fn shuffled_run(order: &[usize; 4], partial_order: &[usize; 3], proofs_swapped: bool) -> Ledger {
    let mut r = start();
    for (slot, &i) in order.iter().enumerate() {
        let p = r.selected[i];
        let t = r.at(T1, 100 + 10 * slot as u64);
        r.s.deliver(r.s.commitment(&r.key, p), t).unwrap();
    }
    let partials = [(r.air0[0], 0), (r.air0[1], 0), (r.air1[0], 1)];
    for (slot, &i) in partial_order.iter().enumerate() {
        let (p, air) = partials[i];
        r.prove(p, air, r.at(T2, 100 + 10 * slot as u64));
    }
    let outsider = (0..8).map(ProverIndex).find(|p| !r.selected.contains(p)).unwrap();
    let mut proofs = [(r.air0[0], [r.air0[0], r.air1[0]]), (outsider, [r.air0[1], r.air1[0]])];
    if proofs_swapped {
        proofs.swap(0, 1);
    }
    for (slot, (submitter, authors)) in proofs.into_iter().enumerate() {
        r.full(submitter, authors, r.at(T3, 600 + 100 * slot as u64));
    }
    r.settle(&[2]).0
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Driving the real engine, the ledger does not depend on the order in which the messages of
    /// a phase arrive (no "first" is at stake here: commitments, assigned partials, and T3 full
    /// proofs whose rewards are averaged).
    #[test]
    fn engine_ledger_is_independent_of_arrival_order_within_a_phase(
        order in proptest::sample::select(permutations4()),
        partial_order in proptest::sample::select(permutations3()),
        swapped in proptest::bool::ANY,
    ) {
        let reference = shuffled_run(&[0, 1, 2, 3], &[0, 1, 2], false);
        let got = shuffled_run(&order, &partial_order, swapped);
        proptest::prop_assert_eq!(got.settlement_root(), reference.settlement_root());
        proptest::prop_assert_eq!(got, reference);
    }
}

fn permutations3() -> Vec<[usize; 3]> {
    let mut out = Vec::new();
    for a in 0..3 {
        for b in 0..3 {
            for c in 0..3 {
                if a != b && b != c && a != c {
                    out.push([a, b, c]);
                }
            }
        }
    }
    out
}

fn permutations4() -> Vec<[usize; 4]> {
    let mut out = Vec::new();
    for p in permutations3() {
        for pos in 0..4 {
            let mut v: Vec<usize> = p.to_vec();
            v.insert(pos, 3);
            out.push([v[0], v[1], v[2], v[3]]);
        }
    }
    out
}
