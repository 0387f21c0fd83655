//! Scenario tests on a virtual clock: one per phase outcome, each checking the exact
//! `BlockOutcome`.
//!
//! Timeline of block 1 (default windows, 4 s each, 500 ms grace): T1 = [S, S+4s), T2 until S+8s,
//! T3 until S+12s, T4 until S+16s, T5 until S+20s, with S the slot start of slot 1. Block 2 starts
//! at S+12s, block 3 at S+24s: a message that arrived before S+12s is included by proposer 1002,
//! one that arrived in [S+12s, S+24s) by proposer 1003.

use phase_engine::{
    AggProofRecord, AirIndex, Assignment, BlockOutcome, CommitmentRecord, EngineConfig,
    EquivocationRecord, Error, FullProofRecord, Inclusion, PartRef, PartialRecord, Phase,
    ProverIndex, RoundKey, RoundOutcome, UnixMillis, ValidatorIndex,
    test_utils::{Fault, Scenario, proposer},
};

/// A small network: 4 provers per proof, redundancy 2, one retry, AggProof groups of 2.
pub(crate) fn config() -> EngineConfig {
    phase_engine::test_utils::small_network_config()
}

fn inclusion(at: UnixMillis, phase: Phase, slot_of_includer: u64) -> Inclusion {
    Inclusion { arrived_at: at, phase, validator: proposer(slot_of_includer) }
}

/// The outcome of a round with nothing but its selection and assignment.
pub(crate) fn bare_round(s: &Scenario, key: &RoundKey) -> RoundOutcome {
    let start = s.round_start(key).expect("round started");
    RoundOutcome {
        key: *key,
        num_airs: start.num_airs,
        selected: start.selected.clone(),
        assignments: start
            .selected
            .iter()
            .zip(&start.assignments)
            .map(|(p, airs)| Assignment { prover: *p, airs: airs.clone() })
            .collect(),
        declined: vec![],
        commitments: vec![],
        partials: vec![],
        full_proofs: vec![],
        finalized_in: None,
        equivocations: vec![],
    }
}

fn block_outcome(slot: u64, rounds: Vec<RoundOutcome>) -> BlockOutcome {
    BlockOutcome {
        block_root: phase_engine::test_utils::block_root(slot),
        slot: phase_engine::Slot(slot),
        proposer: proposer(slot),
        rounds,
        aggregators: vec![],
        agg_proofs: vec![],
    }
}

/// Every selected prover commits at `t` (ascending prover order is the outcome's tie order).
fn commit_all(s: &mut Scenario, key: &RoundKey, t: UnixMillis) -> Vec<CommitmentRecord> {
    let mut provers = s.selected(key);
    provers.sort();
    for p in &provers {
        s.deliver(s.commitment(key, *p), t).unwrap();
    }
    provers
        .iter()
        .map(|p| CommitmentRecord { prover: *p, inclusion: inclusion(t, Phase::T1, 2) })
        .collect()
}

/// Every selected prover sends the partial of every assigned AIR at `t`.
fn prove_all(s: &mut Scenario, key: &RoundKey, t: UnixMillis, includer: u64) -> Vec<PartialRecord> {
    let mut provers = s.selected(key);
    provers.sort();
    let mut records = Vec::new();
    for p in &provers {
        for air in s.assignment(key, *p) {
            s.deliver(s.partial(key, *p, air), t).unwrap();
            records.push(PartialRecord {
                prover: *p,
                air,
                assigned: true,
                // A partial always counts for T2 (its only phase).
                inclusion: inclusion(t, Phase::T2, includer),
            });
        }
    }
    records
}

fn full_record(
    s: &Scenario,
    submitter: ProverIndex,
    parts: Vec<PartRef>,
    inc: Inclusion,
) -> FullProofRecord {
    let _ = s;
    FullProofRecord {
        submitter,
        reused: parts.iter().filter(|p| p.author != submitter).copied().collect(),
        parts,
        inclusion: inc,
    }
}

fn first_key(s: &Scenario, slot: u64) -> RoundKey {
    s.round_keys(&phase_engine::test_utils::block_root(slot))[0]
}

#[test]
fn full_proof_in_t1() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap(); // 10 Mgas / 4 Mgas = 3 AIRs
    let key = first_key(&s, 1);
    let selected = s.selected(&key);
    assert_eq!(selected.len(), 4); // min(4, 12 / 2)
    let t = s.time_in(&key, Phase::T1, 100);
    let submitter = selected[0];
    let parts = s.own_parts(&key, submitter);
    s.deliver(s.commitment_with_full_proof(&key, submitter, &parts), t).unwrap();
    let mut others: Vec<ProverIndex> = selected[1..].to_vec();
    others.sort();
    for p in &others {
        s.deliver(s.commitment(&key, *p), t).unwrap();
    }
    assert!(s.async_rejections.is_empty(), "{:?}", s.async_rejections);
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();

    let mut round = bare_round(&s, &key);
    let mut committers = selected.clone();
    committers.sort();
    round.commitments = committers
        .iter()
        .map(|p| CommitmentRecord { prover: *p, inclusion: inclusion(t, Phase::T1, 2) })
        .collect();
    round.full_proofs = vec![full_record(&s, submitter, parts, inclusion(t, Phase::T1, 2))];
    round.finalized_in = Some(Phase::T1);
    assert_eq!(got, block_outcome(1, vec![round]));
}

/// Canonical rounds: messages fed as inclusion records state them are credited to the record's
/// proposer, whatever block follows their arrival; messages fed without one keep the default
/// (the proposer of the first block after arrival).
#[test]
fn included_messages_are_credited_to_their_record_proposer() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let selected = s.selected(&key);
    let t = s.time_in(&key, Phase::T1, 100);
    let submitter = selected[0];
    let parts = s.own_parts(&key, submitter);
    let includer = ValidatorIndex(77);
    s.deliver_included(s.commitment_with_full_proof(&key, submitter, &parts), t, includer).unwrap();
    let mut others: Vec<ProverIndex> = selected[1..].to_vec();
    others.sort();
    for p in &others[..1] {
        s.deliver_included(s.commitment(&key, *p), t, includer).unwrap();
    }
    for p in &others[1..] {
        s.deliver(s.commitment(&key, *p), t).unwrap();
    }
    assert!(s.async_rejections.is_empty(), "{:?}", s.async_rejections);
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();

    let mut round = bare_round(&s, &key);
    let mut committers = selected.clone();
    committers.sort();
    let credited = |p: &ProverIndex| {
        if *p == submitter || *p == others[0] {
            Inclusion { arrived_at: t, phase: Phase::T1, validator: includer }
        } else {
            inclusion(t, Phase::T1, 2)
        }
    };
    round.commitments = committers
        .iter()
        .map(|p| CommitmentRecord { prover: *p, inclusion: credited(p) })
        .collect();
    let full = Inclusion { arrived_at: t, phase: Phase::T1, validator: includer };
    round.full_proofs = vec![full_record(&s, submitter, parts, full)];
    round.finalized_in = Some(Phase::T1);
    assert_eq!(got, block_outcome(1, vec![round]));
}

#[test]
fn full_proof_in_t2_reusing_partials() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let t1 = s.time_in(&key, Phase::T1, 200);
    let t2 = s.time_in(&key, Phase::T2, 1_000);
    let t2b = s.time_in(&key, Phase::T2, 2_000);
    let commitments = commit_all(&mut s, &key, t1);
    let partials = prove_all(&mut s, &key, t2, 2);
    let submitter = s.selected(&key)[1];
    let parts = s.assigned_parts(&key, submitter);
    s.deliver(s.full_proof(&key, submitter, &parts), t2b).unwrap();
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();

    let mut round = bare_round(&s, &key);
    round.commitments = commitments;
    round.partials = partials;
    let record = full_record(&s, submitter, parts, inclusion(t2b, Phase::T2, 2));
    assert!(!record.reused.is_empty() || round.assignments.iter().all(|a| a.prover == submitter));
    round.full_proofs = vec![record];
    round.finalized_in = Some(Phase::T2);
    assert_eq!(got, block_outcome(1, vec![round]));
}

#[test]
fn aggregation_in_t3_by_two_provers_with_reuse() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let t1 = s.time_in(&key, Phase::T1, 0);
    let t2 = s.time_in(&key, Phase::T2, 0);
    let commitments = commit_all(&mut s, &key, t1);
    let partials = prove_all(&mut s, &key, t2, 2);
    // A prover that was not selected aggregates everything it did not prove (all of it), and
    // a selected one aggregates too, a bit later in T3.
    let outsider = (0..12).map(ProverIndex).find(|p| !s.selected(&key).contains(p)).unwrap();
    let insider = s.selected(&key)[2];
    let ta = s.time_in(&key, Phase::T3, 100);
    let tb = s.time_in(&key, Phase::T3, 3_900);
    let parts_a = s.assigned_parts(&key, outsider);
    let parts_b = s.assigned_parts(&key, insider);
    s.deliver(s.full_proof(&key, outsider, &parts_a), ta).unwrap();
    s.deliver(s.full_proof(&key, insider, &parts_b), tb).unwrap();
    // A full proof in T4 no longer counts: T3 finalised.
    let late = s.selected(&key)[3];
    let t4 = s.time_in(&key, Phase::T4, 600);
    let err = s.deliver(s.full_proof(&key, late, &s.assigned_parts(&key, late)), t4).unwrap_err();
    assert!(matches!(err, Error::RoundClosed { .. }), "{err:?}");
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();

    let mut round = bare_round(&s, &key);
    round.commitments = commitments;
    round.partials = partials;
    let a = full_record(&s, outsider, parts_a, inclusion(ta, Phase::T3, 2));
    assert_eq!(a.reused.len(), 3); // the outsider reused every AIR
    round.full_proofs = vec![a, full_record(&s, insider, parts_b, inclusion(tb, Phase::T3, 2))];
    round.finalized_in = Some(Phase::T3);
    assert_eq!(got, block_outcome(1, vec![round]));
}

#[test]
fn fallback_to_t4_and_t5() {
    for (phase, includer) in [(Phase::T4, 3), (Phase::T5, 3)] {
        let mut s = Scenario::new(config(), 12);
        s.add_block(1, 10_000_000).unwrap();
        let key = first_key(&s, 1);
        let (t1, t2) = (s.time_in(&key, Phase::T1, 0), s.time_in(&key, Phase::T2, 0));
        let commitments = commit_all(&mut s, &key, t1);
        let partials = prove_all(&mut s, &key, t2, 2);
        s.add_block(2, 0).unwrap();
        // 600 ms in: past the previous phase's grace (500 ms), so it counts for `phase`.
        let t = s.time_in(&key, phase, 600);
        let submitter = s.selected(&key)[0];
        let parts = s.assigned_parts(&key, submitter);
        s.deliver(s.full_proof(&key, submitter, &parts), t).unwrap();
        s.add_block(3, 0).unwrap();
        let got = s.run_until_outcome(&key.block_root).unwrap();

        let mut round = bare_round(&s, &key);
        round.commitments = commitments;
        round.partials = partials;
        round.full_proofs = vec![full_record(&s, submitter, parts, inclusion(t, phase, includer))];
        round.finalized_in = Some(phase);
        assert_eq!(got, block_outcome(1, vec![round]), "{phase}");
    }
}

#[test]
fn retry_with_a_new_prover_set_after_t5() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    // Only one prover commits; nobody proves anything.
    let first = s.selected(&key)[0];
    let t1 = s.time_in(&key, Phase::T1, 10);
    s.deliver(s.commitment(&key, first), t1).unwrap();
    s.add_block(2, 0).unwrap();
    // T5 closes at S+20s (+500 ms grace): attempt 1 starts there with a new set.
    let retry_key = RoundKey { attempt: phase_engine::Attempt(1), ..key };
    s.advance_to(s.time_in(&key, Phase::T5, 4_500));
    let start = s.round_start(&retry_key).expect("retry started").clone();
    assert_eq!(start.start, s.time_in(&key, Phase::T5, 4_500));
    assert!(!start.selected.is_empty());
    // The retry finalises in its own T1.
    let submitter = start.selected[0];
    let tr = s.time_in(&retry_key, Phase::T1, 100);
    let parts = s.own_parts(&retry_key, submitter);
    s.deliver(s.commitment_with_full_proof(&retry_key, submitter, &parts), tr).unwrap();
    // A message for the failed attempt is refused.
    let err = s.deliver(s.decline(&key, s.selected(&key)[1]), tr).unwrap_err();
    assert!(matches!(err, Error::RoundClosed { .. }), "{err:?}");
    s.add_block(3, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();

    let mut failed = bare_round(&s, &key);
    failed.commitments =
        vec![CommitmentRecord { prover: first, inclusion: inclusion(t1, Phase::T1, 2) }];
    let mut retry = bare_round(&s, &retry_key);
    retry.commitments =
        vec![CommitmentRecord { prover: submitter, inclusion: inclusion(tr, Phase::T1, 3) }];
    retry.full_proofs = vec![full_record(&s, submitter, parts, inclusion(tr, Phase::T1, 3))];
    retry.finalized_in = Some(Phase::T1);
    assert_eq!(got, block_outcome(1, vec![failed, retry]));
}

#[test]
fn retries_exhausted_leave_the_block_unproven() {
    let mut s = Scenario::new(EngineConfig { max_retries: 0, ..config() }, 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    s.add_block(2, 0).unwrap();
    s.add_block(3, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();
    assert_eq!(got, block_outcome(1, vec![bare_round(&s, &key)]));
}

#[test]
fn declined_airs_open_to_any_prover_first_valid_paid() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let selected = s.selected(&key);
    let decliner = selected[0];
    let declined_airs = s.assignment(&key, decliner);
    assert!(!declined_airs.is_empty());
    let t1 = s.time_in(&key, Phase::T1, 0);
    s.deliver(s.decline(&key, decliner), t1).unwrap();
    let mut rest: Vec<ProverIndex> = selected[1..].to_vec();
    rest.sort();
    for p in &rest {
        s.deliver(s.commitment(&key, *p), t1).unwrap();
    }
    // The decliner may not prove any more; open AIRs are listed.
    let open: Vec<AirIndex> = s.engine.open_airs(&key).iter().map(|(a, _)| *a).collect();
    assert_eq!(open, declined_airs);
    let air = declined_airs[0];
    let t2 = s.time_in(&key, Phase::T2, 0);
    let err = s.deliver(s.partial(&key, decliner, air), t2).unwrap_err();
    assert_eq!(err, Error::Declined { prover: decliner });
    // Two outsiders take the open AIR: only the first is paid (one slot was opened).
    let outsiders: Vec<ProverIndex> =
        (0..12).map(ProverIndex).filter(|p| !selected.contains(p)).collect();
    let (first, second) = (outsiders[0], outsiders[1]);
    s.deliver(s.partial(&key, first, air), t2).unwrap();
    s.deliver(s.partial(&key, second, air), UnixMillis(t2.0 + 1)).unwrap();
    // An outsider may not take an AIR nobody declined.
    let closed_air = (0..3).map(AirIndex).find(|a| !declined_airs.contains(a));
    if let Some(a) = closed_air {
        let err = s.deliver(s.partial(&key, first, a), t2).unwrap_err();
        assert_eq!(err, Error::NotAssigned { prover: first, air: a });
    }
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();

    let mut round = bare_round(&s, &key);
    round.declined = vec![decliner];
    round.commitments = rest
        .iter()
        .map(|p| CommitmentRecord { prover: *p, inclusion: inclusion(t1, Phase::T1, 2) })
        .collect();
    round.partials = vec![PartialRecord {
        prover: first,
        air,
        assigned: false,
        inclusion: inclusion(t2, Phase::T2, 2),
    }];
    // Nobody sent a full proof: attempt 1 ran (and failed) too.
    let retry = bare_round(&s, &RoundKey { attempt: phase_engine::Attempt(1), ..key });
    assert_eq!(got, block_outcome(1, vec![round, retry]));
}

#[test]
fn sub_blocks_and_agg_proof() {
    // 120 Mgas / 50 Mgas = 3 sub-blocks (capped at 30 / (2 * 2) = 7 by availability).
    let mut s = Scenario::new(config(), 30);
    let block = s.add_block(1, 120_000_000).unwrap();
    let keys = s.round_keys(&block.root);
    assert_eq!(keys.len(), 3);
    let aggregators = s.aggregators(&block.root);
    assert_eq!(aggregators.len(), 2);
    // Prover sets and aggregators are disjoint: a prover serves one proof at a time.
    let mut all: Vec<ProverIndex> =
        keys.iter().flat_map(|k| s.selected(k)).chain(aggregators.clone()).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n);

    let t = s.time_in(&keys[0], Phase::T1, 100);
    // Not yet: sub-blocks unproven.
    let err = s.deliver(s.agg_proof(&block, aggregators[0]), t).unwrap_err();
    assert!(matches!(err, Error::NotReady { .. }), "{err:?}");
    let mut rounds = Vec::new();
    for key in &keys {
        let submitter = s.selected(key)[0];
        let parts = s.own_parts(key, submitter);
        s.deliver(s.commitment_with_full_proof(key, submitter, &parts), t).unwrap();
        let mut round = bare_round(&s, key);
        round.commitments =
            vec![CommitmentRecord { prover: submitter, inclusion: inclusion(t, Phase::T1, 2) }];
        round.full_proofs = vec![full_record(&s, submitter, parts, inclusion(t, Phase::T1, 2))];
        round.finalized_in = Some(Phase::T1);
        rounds.push(round);
    }
    // The AggProof window: until one T1 length after the sub-blocks' T1 closed (+ grace).
    let ta = s.time_in(&keys[0], Phase::T2, 2_000);
    s.deliver(s.agg_proof(&block, aggregators[0]), ta).unwrap();
    // A selected prover of a sub-block may submit one too; the verifier rejects this one.
    let other = s.selected(&keys[1])[1];
    s.verifier.fail(Fault::AggProof { submitter: other });
    let err = s.deliver(s.agg_proof(&block, other), ta).unwrap_err();
    assert!(matches!(err, Error::InvalidProof { .. }), "{err:?}");
    let tl = s.time_in(&keys[0], Phase::T3, 600);
    let err = s.deliver(s.agg_proof(&block, aggregators[1]), tl).unwrap_err();
    assert!(matches!(err, Error::Late { .. }), "{err:?}");
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&block.root).unwrap();

    let mut expected = block_outcome(1, rounds);
    expected.aggregators = aggregators.clone();
    expected.agg_proofs =
        vec![AggProofRecord { submitter: aggregators[0], inclusion: inclusion(ta, Phase::T1, 2) }];
    assert_eq!(got, expected);
}

#[test]
fn equivocation_is_recorded_and_the_first_stands() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let p = s.selected(&key)[0];
    let t = s.time_in(&key, Phase::T1, 0);
    let honest = s.commitment(&key, p);
    s.deliver(honest.clone(), t).unwrap();
    let airs = s.assignment(&key, p);
    let other_roots: Vec<(AirIndex, phase_engine::Root)> =
        airs.iter().map(|a| (*a, phase_engine::Root::repeat_byte(0xee))).collect();
    let second = s.commitment_with_roots(&key, p, &other_roots);
    let err = s.deliver(second.clone(), UnixMillis(t.0 + 5)).unwrap_err();
    let record = EquivocationRecord {
        prover: p,
        first: honest.signing_root(s.ctx()),
        second: second.signing_root(s.ctx()),
    };
    assert_eq!(err, Error::Equivocation { prover: p, first: record.first, second: record.second });
    // Declining after committing is equivocation too.
    let decline = s.decline(&key, p);
    let err = s.deliver(decline.clone(), UnixMillis(t.0 + 6)).unwrap_err();
    assert!(matches!(err, Error::Equivocation { .. }));
    let record2 = EquivocationRecord {
        prover: p,
        first: record.first,
        second: decline.signing_root(s.ctx()),
    };
    // The same message again is a duplicate, not evidence.
    let err = s.deliver(honest.clone(), UnixMillis(t.0 + 7)).unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }));
    s.add_block(2, 0).unwrap();
    s.add_block(3, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();
    let mut round = bare_round(&s, &key);
    round.commitments = vec![CommitmentRecord { prover: p, inclusion: inclusion(t, Phase::T1, 2) }];
    round.equivocations = vec![record, record2];
    // No retry here would change attempt 0; with max_retries = 1 a retry round follows.
    let retry_key = RoundKey { attempt: phase_engine::Attempt(1), ..key };
    let retry = bare_round(&s, &retry_key);
    assert_eq!(got, block_outcome(1, vec![round, retry]));
}

#[test]
fn late_and_invalid_messages_get_typed_reasons() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let selected = s.selected(&key);
    let (a, b, c) = (selected[0], selected[1], selected[2]);
    let outsider = (0..12).map(ProverIndex).find(|p| !selected.contains(p)).unwrap();
    let t = s.time_in(&key, Phase::T1, 0);

    // Not selected.
    let err = s.deliver(s.decline(&key, outsider), t).unwrap_err();
    assert_eq!(err, Error::NotSelected { prover: outsider, key });
    // Bad signature: b's commitment signed by a's key.
    let mut forged = s.commitment(&key, b);
    forged.signature = s.key(a).sign(&forged.signing_root(s.ctx()));
    let err = s.deliver(forged, t).unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
    // Wrong AIR set.
    let err = s.deliver(s.commitment_with_roots(&key, b, &[]), t).unwrap_err();
    assert!(matches!(err, Error::WrongAirSet { .. }), "{err:?}");
    // A standalone full proof in T1 (it must ride in the commitment).
    let err = s.deliver(s.full_proof(&key, a, &s.own_parts(&key, a)), t).unwrap_err();
    assert_eq!(
        err,
        Error::WrongPhase { kind: phase_engine::MessageKind::FullProof, phase: Phase::T1 }
    );
    // Unknown round and block.
    let bogus = RoundKey { sub_block: phase_engine::SubBlockIndex(5), ..key };
    let err = s.deliver(s.decline(&bogus, a), t).unwrap_err();
    assert!(matches!(err, Error::UnknownRound { .. }), "{err:?}");
    let err = s.engine.on_message(
        s.decline(&RoundKey { block_root: phase_engine::Root::repeat_byte(3), ..key }, a).into(),
        t,
    );
    assert!(matches!(err, Err(Error::UnknownBlock { .. })), "{err:?}");

    s.deliver(s.commitment(&key, a), t).unwrap();
    s.deliver(s.commitment(&key, c), t).unwrap();
    // Late commitment (T1 closed, grace over).
    let late = s.time_in(&key, Phase::T2, 500);
    let err = s.deliver(s.commitment(&key, b), late).unwrap_err();
    assert!(matches!(err, Error::Late { .. }), "{err:?}");
    // Within the grace it still counts for T1.
    // (b is too late now; the grace case is covered by `grace_counts_for_the_earlier_phase`.)
    let air_a = s.assignment(&key, a)[0];
    // Partial without commitment.
    if let Some(&air_b) = s.assignment(&key, b).first() {
        let err = s.deliver(s.partial(&key, b, air_b), late).unwrap_err();
        assert_eq!(err, Error::NoCommitment { prover: b, key });
    }
    // Commitment mismatch: a partial opening another root.
    let mut wrong = s.partial(&key, a, air_a).message;
    wrong.trace_root = phase_engine::Root::repeat_byte(1);
    let wrong = phase_engine::SignedPartialProof::sign(wrong, &s.key(a), s.ctx());
    let err = s.deliver(wrong, late).unwrap_err();
    assert!(matches!(err, Error::CommitmentMismatch { .. }), "{err:?}");
    // Invalid STARK.
    s.verifier.fail(Fault::Partial { prover: a, air: air_a });
    let err = s.deliver(s.partial(&key, a, air_a), late).unwrap_err();
    assert!(matches!(err, Error::InvalidProof { .. }), "{err:?}");
    // AIR out of range.
    let err = s.deliver(s.partial(&key, a, AirIndex(99)), late).unwrap_err();
    assert!(matches!(err, Error::AirOutOfRange { .. }), "{err:?}");
    // Late partial (T2 closed).
    let t3 = s.time_in(&key, Phase::T3, 500);
    let air_c = s.assignment(&key, c)[0];
    let err = s.deliver(s.partial(&key, c, air_c), t3).unwrap_err();
    assert!(matches!(err, Error::Late { .. }), "{err:?}");
    // Full proof with a part missing from the Bloom filter.
    let mut fp = s.full_proof(&key, a, &s.assigned_parts(&key, a)).message;
    if fp.body.parts.iter().any(|p| p.author != a) {
        fp.body.reuse_bloom = vec![0u8; 64].try_into().unwrap();
        let fp = phase_engine::SignedFullProof::sign(fp, &s.key(a), s.ctx());
        let err = s.deliver(fp, t3).unwrap_err();
        assert!(matches!(err, Error::BloomMismatch { .. }), "{err:?}");
    }
    // Parts that skip an AIR.
    let mut parts = s.own_parts(&key, a);
    parts.pop();
    let err = s.deliver(s.full_proof(&key, a, &parts), t3).unwrap_err();
    assert!(matches!(err, Error::InvalidParts { .. }), "{err:?}");
    // Unknown verification request.
    let err = s.engine.on_verification(phase_engine::Verdict {
        request: phase_engine::RequestId(9_999),
        valid: true,
    });
    assert!(matches!(err, Err(Error::UnknownRequest { .. })));
}

#[test]
fn grace_counts_for_the_earlier_phase() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let p = s.selected(&key)[0];
    // 499 ms after T1's nominal close: still T1.
    let t = s.time_in(&key, Phase::T2, 499);
    s.deliver(s.commitment(&key, p), t).unwrap();
    s.add_block(2, 0).unwrap();
    s.add_block(3, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();
    assert_eq!(
        got.rounds[0].commitments,
        vec![CommitmentRecord { prover: p, inclusion: inclusion(t, Phase::T1, 2) }]
    );
}

#[test]
fn late_next_block_delays_the_outcome_until_a_block_includes() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let submitter = s.selected(&key)[0];
    let t = s.time_in(&key, Phase::T1, 0);
    let parts = s.own_parts(&key, submitter);
    s.deliver(s.commitment_with_full_proof(&key, submitter, &parts), t).unwrap();
    // Slot 2 is empty: the round is closed but nobody has included its messages yet.
    s.advance_to(phase_engine::test_utils::slot_start(3).saturating_sub_ms(1));
    assert!(s.outcomes.is_empty());
    assert_eq!(s.engine.awaiting_inclusion(), vec![key.block_root]);
    s.add_block(3, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();
    assert_eq!(got.rounds[0].full_proofs[0].inclusion.validator, ValidatorIndex(1003));
}

/// Helper for the test above.
trait SubMs {
    fn saturating_sub_ms(self, ms: u64) -> UnixMillis;
}

impl SubMs for UnixMillis {
    fn saturating_sub_ms(self, ms: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(ms))
    }
}

#[test]
fn registration_with_proof_of_possession() {
    let mut s = Scenario::new(config(), 3);
    let t = phase_engine::test_utils::slot_start(1);
    let p = s.register(3, t).unwrap();
    assert_eq!(p, ProverIndex(3));
    assert!(s.engine.prover(p).unwrap().active);
    // Twice: already registered.
    let err = s.register(3, t).unwrap_err();
    assert_eq!(err, Error::AlreadyRegistered { prover: p });
    // A registration whose proof of possession is another key's fails verification.
    let mut reg =
        phase_engine::test_utils::registration(4, phase_engine::test_utils::STAKE, s.ctx());
    reg.message.proof_of_possession = phase_engine::test_utils::secret_key(5).proof_of_possession();
    let reg = phase_engine::SignedProverRegistration::sign(
        reg.message,
        &phase_engine::test_utils::secret_key(4),
        s.ctx(),
    );
    let id = s.engine.on_registration(reg, t).unwrap();
    let results = s.pump();
    assert!(
        results.iter().any(|(r, res)| *r == id && matches!(res, Err(Error::BadSignature { .. })))
    );
    assert_eq!(s.engine.num_provers(), 4);
}

#[test]
fn prover_duties_follow_the_round() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let p = s.selected(&key)[0];
    let duties = s.engine.duties(p);
    assert_eq!(duties.len(), 1);
    assert_eq!(duties[0].round, key);
    assert_eq!(duties[0].airs, s.assignment(&key, p));
    assert_eq!(duties[0].phase, Phase::T1);
    assert_eq!(duties[0].committed, None);
    s.deliver(s.commitment(&key, p), s.time_in(&key, Phase::T1, 1)).unwrap();
    assert_eq!(s.engine.duties(p)[0].committed, Some(true));
    s.advance_to(s.time_in(&key, Phase::T2, 600));
    assert_eq!(s.engine.duties(p)[0].phase, Phase::T2);
    assert!(s.engine.is_busy(p));
    let outsider = (0..12).map(ProverIndex).find(|q| !s.selected(&key).contains(q)).unwrap();
    assert!(s.engine.duties(outsider).is_empty());
}

#[test]
fn attached_full_proof_that_fails_leaves_the_commitment_valid() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let p = s.selected(&key)[0];
    s.verifier.fail(Fault::FullProof { submitter: p });
    let t = s.time_in(&key, Phase::T1, 0);
    s.deliver(s.commitment_with_full_proof(&key, p, &s.own_parts(&key, p)), t).unwrap();
    assert!(
        matches!(s.async_rejections.as_slice(), [Error::InvalidProof { .. }]),
        "{:?}",
        s.async_rejections
    );
    let status = s.engine.round_status(&key).unwrap();
    assert_eq!(status.commitments, 1);
    assert_eq!(status.finalized_in, None);
    // It may still send a (valid) full proof later, from T2 on.
    let t2 = s.time_in(&key, Phase::T2, 600);
    s.verifier = Default::default();
    s.deliver(s.full_proof(&key, p, &s.own_parts(&key, p)), t2).unwrap();
    assert_eq!(s.engine.round_status(&key).unwrap().finalized_in, Some(Phase::T2));
}

#[test]
fn outsiders_wait_for_t3() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let outsider = (0..12).map(ProverIndex).find(|p| !s.selected(&key).contains(p)).unwrap();
    let parts = s.own_parts(&key, outsider);
    let err = s.deliver(s.full_proof(&key, outsider, &parts), s.time_in(&key, Phase::T1, 0));
    assert_eq!(
        err,
        Err(Error::WrongPhase { kind: phase_engine::MessageKind::FullProof, phase: Phase::T1 })
    );
    let err = s.deliver(s.full_proof(&key, outsider, &parts), s.time_in(&key, Phase::T2, 0));
    assert_eq!(err, Err(Error::NotSelected { prover: outsider, key }));
    // Right at T3's opening (inside T2's grace) an outsider's proof counts for T3.
    let t3 = s.time_in(&key, Phase::T3, 0);
    s.deliver(s.full_proof(&key, outsider, &parts), t3).unwrap();
    // One per submitter per round.
    let mut again = s.full_proof(&key, outsider, &parts);
    again.message.body.bundle = vec![9u8; 3].try_into().unwrap();
    let again = phase_engine::SignedFullProof::sign(again.message, &s.key(outsider), s.ctx());
    let err = s.deliver(again, t3);
    assert!(matches!(err, Err(Error::AlreadySubmitted { .. })), "{err:?}");
    s.add_block(2, 0).unwrap();
    let got = s.run_until_outcome(&key.block_root).unwrap();
    assert_eq!(got.rounds[0].finalized_in, Some(Phase::T3));
    assert_eq!(got.rounds[0].full_proofs[0].inclusion.phase, Phase::T3);
}

#[test]
fn exited_provers_are_not_selected_and_reputation_is_bounded() {
    let mut s = Scenario::new(config(), 12);
    for p in 0..6 {
        s.engine.exit_prover(ProverIndex(p)).unwrap();
    }
    s.engine.set_reputation(ProverIndex(11), u64::MAX).unwrap();
    assert_eq!(s.engine.num_active(), 6);
    assert_eq!(
        s.engine.exit_prover(ProverIndex(99)),
        Err(Error::UnknownProver { prover: ProverIndex(99) })
    );
    s.add_block(1, 0).unwrap();
    let key = first_key(&s, 1);
    let selected = s.selected(&key);
    assert_eq!(selected.len(), 3); // min(4, 6 / 2)
    assert!(selected.iter().all(|p| p.0 >= 6));
    // An exited prover's messages are refused.
    let err =
        s.deliver(s.partial(&key, ProverIndex(0), AirIndex(0)), s.time_in(&key, Phase::T2, 0));
    assert_eq!(err, Err(Error::ProverNotActive { prover: ProverIndex(0) }));
}

#[test]
fn timeouts_walk_the_phases() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let key = first_key(&s, 1);
    let deadlines = s.engine.round_status(&key).unwrap().deadlines;
    // The next thing to do is T1's close (T2 opens), then T1's grace ends.
    assert_eq!(s.engine.poll_timeout(), Some(deadlines.close(Phase::T1)));
    s.advance_to(deadlines.close(Phase::T1));
    assert_eq!(s.engine.poll_timeout(), Some(deadlines.graced_close(Phase::T1)));
    let phases: Vec<Phase> = s
        .log
        .iter()
        .filter_map(|a| match a {
            phase_engine::Action::PhaseChanged { key: k, phase, .. } if *k == key => Some(*phase),
            _ => None,
        })
        .collect();
    assert_eq!(phases, vec![Phase::T1, Phase::T2]);
}

#[test]
fn a_reorg_drops_the_orphaned_rounds_frees_their_provers_and_settles_nothing_of_them() {
    let mut s = Scenario::new(config(), 8);
    let orphan = s.add_block(1, 1_000_000).unwrap();
    let keys = s.round_keys(&orphan.root);
    assert!(!keys.is_empty());
    assert!(s.engine.num_available() < 8, "the orphan's provers are busy");
    let selected = s.selected(&keys[0]);
    let commitment = s.commitment(&keys[0], selected[0]);

    let dropped = s.engine.on_reorg(&[orphan.root], phase_engine::Slot(0));
    assert_eq!(dropped, keys);
    assert_eq!(s.engine.num_available(), 8);
    assert!(s.engine.open_rounds().is_empty());
    // Unknown roots are ignored; a second drop drops nothing.
    assert!(s.engine.on_reorg(&[orphan.root], phase_engine::Slot(0)).is_empty());

    // Messages for the orphan are refused as closed.
    let at = s.now();
    assert!(matches!(s.deliver(commitment, at), Err(Error::RoundClosed { .. })));

    // A replacing block at the same slot opens rounds, and only it is ever settled.
    let mut replacement = phase_engine::test_utils::block_info(1, 1_000_000);
    replacement.root = phase_engine::Root::repeat_byte(0xaa);
    s.add_block_info(replacement).unwrap();
    let new_keys = s.round_keys(&replacement.root);
    assert_eq!(new_keys.len(), keys.len());
    assert!(s.run_until_outcome(&replacement.root).is_some());
    assert!(s.run_until_outcome(&orphan.root).is_none());
}
