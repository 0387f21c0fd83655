//! The settling engine of canonical rounds ([`CanonicalRounds`]): what it settles depends only on
//! the canonical blocks, the records they commit to and the messages those name; the order the
//! inputs arrive in does not matter; the first record that includes a message is credited;
//! entries past `max_delay_slots` never count; missing data is asked for; a reorg undoes the
//! orphaned records.
//!
//! Timeline (12 s slots, default inclusion parameters: cut-off 2 s before the slot, 4 slots of
//! delay): block 1's commitments arrive 100 ms into its T1 (slot 1), so the record of slot 2 may
//! include them (cut-off: slot 2's start - 2 s), and the records up to slot 5 may.

use phase_engine::{
    Action, BlockInfo, BlockOutcome, CanonicalAction, CanonicalRounds, Engine, Error,
    InclusionCandidate, InclusionParams, InclusionRecord, Phase, ProtocolMessage, ProverIndex,
    RecordCommitment, Root, RoundKey, SealedMessage, Slot, UnixMillis, ValidatorIndex,
    build_record,
    test_utils::{GENESIS_MILLIS, SLOT_MILLIS, Scenario, Verifier, block_info, proposer},
};

use crate::scenarios::config;

struct Round {
    fresh: Engine,
    key: RoundKey,
    t: UnixMillis,
    /// The full proof's submitter first, then the other selected provers in index order.
    provers: Vec<ProverIndex>,
    /// Their T1 messages (the submitter's carries its full proof).
    messages: Vec<SealedMessage>,
}

/// Block 1 (3 AIRs, 4 selected provers) and its T1 messages: the first selected prover commits
/// with a full proof of all AIRs, the others commit.
fn round() -> Round {
    let mut s = Scenario::new(config(), 12);
    let fresh = s.engine.clone();
    s.add_block(1, 10_000_000).unwrap();
    let key = s.round_keys(&block_info(1, 0).root)[0];
    let t = s.time_in(&key, Phase::T1, 100);
    let selected = s.selected(&key);
    let submitter = selected[0];
    let mut others: Vec<ProverIndex> = selected[1..].to_vec();
    others.sort();
    let sealer = fresh.sealer();
    let parts = s.own_parts(&key, submitter);
    let mut messages =
        vec![sealer.seal(s.commitment_with_full_proof(&key, submitter, &parts).into())];
    for p in &others {
        messages.push(sealer.seal(ProtocolMessage::from(s.commitment(&key, *p))));
    }
    let mut provers = vec![submitter];
    provers.extend(others);
    Round { fresh, key, t, provers, messages }
}

fn canonical(fresh: &Engine) -> CanonicalRounds {
    CanonicalRounds::new(
        fresh.clone(),
        InclusionParams::default(),
        UnixMillis(GENESIS_MILLIS),
        SLOT_MILLIS,
    )
    .unwrap()
}

/// The record of `slot` by `proposer`, naming `messages` at `t`.
fn record(
    slot: u64,
    proposer: ValidatorIndex,
    t: UnixMillis,
    messages: &[&SealedMessage],
) -> InclusionRecord {
    let cutoff =
        UnixMillis(block_info(slot, 0).slot_start.0 - InclusionParams::default().cutoff_margin_ms);
    build_record(
        Slot(slot),
        proposer,
        cutoff,
        messages.iter().map(|m| InclusionCandidate {
            id: m.signing_root(),
            round_start: t,
            arrived_at: t,
        }),
    )
}

fn commitment(r: &InclusionRecord) -> Option<RecordCommitment> {
    Some(RecordCommitment::of(&r.root()))
}

/// Answers every verification request; returns the outcomes and every other canonical action.
fn run(c: &mut CanonicalRounds) -> (Vec<BlockOutcome>, Vec<CanonicalAction>) {
    let verifier = Verifier::default();
    let (mut outcomes, mut other) = (Vec::new(), Vec::new());
    while let Some(action) = c.poll_action() {
        match action {
            CanonicalAction::Engine(Action::BlockOutcome(o)) => outcomes.push(*o),
            CanonicalAction::Engine(a) => {
                if let Some(v) = verifier.verdict(&a) {
                    c.on_verification(v).unwrap();
                }
            }
            a => other.push(a),
        }
    }
    (outcomes, other)
}

fn blocks(
    c: &mut CanonicalRounds,
    slots: std::ops::RangeInclusive<u64>,
    with: &[(u64, &InclusionRecord)],
) {
    for slot in slots {
        let gas = if slot == 1 { 10_000_000 } else { 0 };
        let committed = with.iter().find(|(s, _)| *s == slot).and_then(|(_, r)| commitment(r));
        c.on_block(block_info(slot, gas), committed).unwrap();
    }
}

/// Who each commitment of block 1's round is credited to, by prover.
fn credited(outcomes: &[BlockOutcome], key: &RoundKey) -> Vec<(ProverIndex, ValidatorIndex)> {
    let block = outcomes.iter().find(|o| o.block_root == key.block_root).expect("block 1 settled");
    let round = block.rounds.iter().find(|r| r.key == *key).expect("its round");
    assert_eq!(round.finalized_in, Some(Phase::T1));
    let mut v: Vec<_> =
        round.commitments.iter().map(|c| (c.prover, c.inclusion.validator)).collect();
    v.sort();
    v
}

#[test]
fn the_settled_outcome_depends_on_the_records_not_on_input_order() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let rec = record(2, proposer(2), r.t, &all);

    // Blocks, then the record, then the messages.
    let mut a = canonical(&r.fresh);
    blocks(&mut a, 1..=8, &[(2, &rec)]);
    a.on_record(rec.clone());
    for m in &r.messages {
        a.on_message(m.clone());
    }
    let (outcomes_a, _) = run(&mut a);

    // Messages in reverse, the record, then the blocks.
    let mut b = canonical(&r.fresh);
    for m in r.messages.iter().rev() {
        b.on_message(m.clone());
    }
    b.on_record(rec.clone());
    blocks(&mut b, 1..=8, &[(2, &rec)]);
    let (outcomes_b, _) = run(&mut b);

    assert_eq!(outcomes_a, outcomes_b);
    let mut expected: Vec<_> = r.provers.iter().map(|p| (*p, proposer(2))).collect();
    expected.sort();
    assert_eq!(credited(&outcomes_a, &r.key), expected);
    let block = &outcomes_a[0];
    let full = &block.rounds[0].full_proofs[0];
    assert_eq!(
        (full.submitter, full.inclusion.validator, full.inclusion.arrived_at),
        (r.provers[0], proposer(2), r.t)
    );
}

#[test]
fn the_first_record_counts_and_records_past_the_delay_never_do() {
    let r = round();
    let m = &r.messages;
    // Slot 2: the full proof and prover 1; slot 3: prover 1 again (ignored) and prover 2;
    // slot 7 (arrival in slot 1 + 4 < 7): prover 3, too late.
    let r2 = record(2, proposer(2), r.t, &[&m[0], &m[1]]);
    let r3 = record(3, proposer(3), r.t, &[&m[1], &m[2]]);
    let r7 = record(7, proposer(7), r.t, &[&m[3]]);
    let mut c = canonical(&r.fresh);
    for x in m {
        c.on_message(x.clone());
    }
    for x in [&r2, &r3, &r7] {
        c.on_record(x.clone());
    }
    blocks(&mut c, 1..=12, &[(2, &r2), (3, &r3), (7, &r7)]);
    let (outcomes, other) = run(&mut c);
    let mut expected =
        vec![(r.provers[0], proposer(2)), (r.provers[1], proposer(2)), (r.provers[2], proposer(3))];
    expected.sort();
    assert_eq!(credited(&outcomes, &r.key), expected);
    assert!(
        other.iter().any(|a| matches!(
            a,
            CanonicalAction::EntryIgnored {
                slot: Slot(7),
                reason: Error::IncludedTooLate { .. },
                ..
            }
        )),
        "{other:?}"
    );
}

#[test]
fn missing_records_and_messages_are_asked_for_and_hold_settlement() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let rec = record(2, proposer(2), r.t, &all);
    let mut c = canonical(&r.fresh);
    blocks(&mut c, 1..=8, &[(2, &rec)]);
    let (outcomes, other) = run(&mut c);
    assert!(outcomes.is_empty());
    assert_eq!(c.resolved_through(), Some(Slot(1)));
    assert!(
        matches!(other.as_slice(), [CanonicalAction::FetchRecord { slot: Slot(2), .. }]),
        "{other:?}"
    );

    c.on_record(rec.clone());
    let (outcomes, other) = run(&mut c);
    assert!(outcomes.is_empty());
    let asked: Vec<Root> = other
        .iter()
        .filter_map(|a| match a {
            CanonicalAction::FetchMessage { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), r.messages.len());
    for m in &r.messages {
        c.on_message(m.clone());
    }
    let (outcomes, _) = run(&mut c);
    assert_eq!(c.resolved_through(), Some(Slot(8)));
    let mut expected: Vec<_> = r.provers.iter().map(|p| (*p, proposer(2))).collect();
    expected.sort();
    assert_eq!(credited(&outcomes, &r.key), expected);
}

/// A sidecar catching up asks for a window of slots at once: the records later blocks commit to
/// and the messages of later records it holds, while the next slot still waits for its record.
/// Asking ahead changes no outcome.
#[test]
fn records_and_messages_of_later_slots_are_asked_for_ahead() {
    let r = round();
    let (first, rest) = r.messages.split_at(1);
    let early = record(2, proposer(2), r.t, &[&first[0]]);
    let later: Vec<&SealedMessage> = rest.iter().collect();
    let late = record(3, proposer(3), r.t, &later);
    let mut c = canonical(&r.fresh);
    blocks(&mut c, 1..=8, &[(2, &early), (3, &late)]);
    let (_, other) = run(&mut c);
    let records: Vec<Slot> = other
        .iter()
        .filter_map(|a| match a {
            CanonicalAction::FetchRecord { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    assert_eq!(records, [Slot(2), Slot(3)], "{other:?}");

    // Slot 3's record comes first: its messages are asked for although slot 2 is not resolved.
    c.on_record(late.clone());
    let (outcomes, other) = run(&mut c);
    assert!(outcomes.is_empty());
    assert_eq!(c.resolved_through(), Some(Slot(1)));
    let asked: Vec<(Slot, Root)> = other
        .iter()
        .filter_map(|a| match a {
            CanonicalAction::FetchMessage { slot, id } => Some((*slot, *id)),
            _ => None,
        })
        .collect();
    let expected: Vec<(Slot, Root)> = rest.iter().map(|m| (Slot(3), m.signing_root())).collect();
    assert_eq!(asked.len(), expected.len());
    assert!(expected.iter().all(|e| asked.contains(e)), "{asked:?}");

    // Nothing is asked twice; with everything given, the outcome is the one without look-ahead.
    c.on_record(early.clone());
    for m in &r.messages {
        c.on_message(m.clone());
    }
    let (outcomes, other) = run(&mut c);
    assert!(
        other.iter().all(|a| !matches!(a, CanonicalAction::FetchRecord { slot: Slot(3), .. })),
        "{other:?}"
    );
    assert_eq!(c.resolved_through(), Some(Slot(8)));
    let mut expected: Vec<_> = vec![(r.provers[0], proposer(2))];
    expected.extend(r.provers[1..].iter().map(|p| (*p, proposer(3))));
    expected.sort();
    assert_eq!(credited(&outcomes, &r.key), expected);
}

#[test]
fn a_reorg_drops_the_orphaned_record_and_the_new_chain_includes_again() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let orphaned = record(2, proposer(2), r.t, &all);
    let mut c = canonical(&r.fresh);
    for m in &r.messages {
        c.on_message(m.clone());
    }
    c.on_record(orphaned.clone());
    blocks(&mut c, 1..=3, &[(2, &orphaned)]);
    assert_eq!(c.resolved_through(), Some(Slot(3)));

    // Slot 2 and 3 are replaced: 2' by another proposer without a record, 3' with a record.
    c.on_reorg(Slot(2)).unwrap();
    let other_proposer = ValidatorIndex(900);
    let b2 =
        BlockInfo { root: Root::repeat_byte(0x22), proposer: other_proposer, ..block_info(2, 0) };
    c.on_block(b2, None).unwrap();
    let r3 = record(3, proposer(3), r.t, &all);
    c.on_record(r3.clone());
    let b3 = BlockInfo { root: Root::repeat_byte(0x33), parent_root: b2.root, ..block_info(3, 0) };
    c.on_block(b3, commitment(&r3)).unwrap();
    blocks(&mut c, 4..=8, &[]);
    let (outcomes, other) = run(&mut c);
    assert!(other.iter().any(|a| matches!(a, CanonicalAction::Reorged { fork_slot: Slot(2) })));
    let mut expected: Vec<_> = r.provers.iter().map(|p| (*p, proposer(3))).collect();
    expected.sort();
    assert_eq!(credited(&outcomes, &r.key), expected);
}

#[test]
fn a_committed_record_that_fails_its_checks_counts_as_none() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    // The block of slot 2 commits to a record that names another proposer.
    let bad = record(2, ValidatorIndex(4242), r.t, &all);
    let good = record(3, proposer(3), r.t, &all);
    let mut c = canonical(&r.fresh);
    for m in &r.messages {
        c.on_message(m.clone());
    }
    c.on_record(bad.clone());
    c.on_record(good.clone());
    blocks(&mut c, 1..=8, &[(2, &bad), (3, &good)]);
    let (outcomes, other) = run(&mut c);
    assert!(
        other.iter().any(|a| matches!(
            a,
            CanonicalAction::RecordRejected { slot: Slot(2), reason: Error::InvalidRecord { .. } }
        )),
        "{other:?}"
    );
    let mut expected: Vec<_> = r.provers.iter().map(|p| (*p, proposer(3))).collect();
    expected.sort();
    assert_eq!(credited(&outcomes, &r.key), expected);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// One input of a settling engine.
    #[derive(Clone, Debug)]
    enum Input {
        Record(usize),
        Message(usize),
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// However records and messages are interleaved with each other and with the blocks,
        /// and whichever records commit (records spread over slots 2..=5, some messages named by
        /// two of them), the settled outcomes are those of the in-order run.
        #[test]
        fn any_input_order_settles_the_same(
            split in proptest::collection::vec(0usize..4, 4),
            order in Just((0..8usize).collect::<Vec<_>>()).prop_shuffle(),
            blocks_at in 0usize..9,
        ) {
            let r = round();
            // Message i goes to the record of slot 2 + split[i]; message 0 also to slot 5.
            let mut named: Vec<Vec<&SealedMessage>> = vec![Vec::new(); 4];
            for (i, m) in r.messages.iter().enumerate() {
                named[split[i]].push(m);
            }
            named[3].push(&r.messages[0]);
            let records: Vec<InclusionRecord> = named
                .iter()
                .enumerate()
                .map(|(k, ms)| record(2 + k as u64, proposer(2 + k as u64), r.t, ms))
                .collect();
            let committed: Vec<(u64, &InclusionRecord)> =
                records.iter().enumerate().map(|(k, rec)| (2 + k as u64, rec)).collect();

            let mut reference = canonical(&r.fresh);
            blocks(&mut reference, 1..=10, &committed);
            for rec in &records {
                reference.on_record(rec.clone());
            }
            for m in &r.messages {
                reference.on_message(m.clone());
            }
            let (expected, _) = run(&mut reference);
            prop_assert!(!expected.is_empty());

            let inputs: Vec<Input> =
                (0..4).map(Input::Record).chain((0..4).map(Input::Message)).collect();
            let mut c = canonical(&r.fresh);
            let mut outcomes = Vec::new();
            for (n, &i) in order.iter().enumerate() {
                if n == blocks_at {
                    blocks(&mut c, 1..=10, &committed);
                }
                match &inputs[i] {
                    Input::Record(k) => c.on_record(records[*k].clone()),
                    Input::Message(k) => c.on_message(r.messages[*k].clone()),
                }
                outcomes.extend(run(&mut c).0);
            }
            if blocks_at >= order.len() {
                blocks(&mut c, 1..=10, &committed);
            }
            outcomes.extend(run(&mut c).0);
            prop_assert_eq!(outcomes, expected);
        }
    }

    proptest! {
        /// Untrusted bytes: decoding never panics, and what decodes re-encodes to the same bytes.
        #[test]
        fn records_decode_without_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            use ssz::{Decode as _, Encode as _};
            if let Ok(record) = InclusionRecord::from_ssz_bytes(&bytes) {
                prop_assert_eq!(record.as_ssz_bytes(), bytes);
            }
        }

        /// Any graffiti: only the canonical `pv1:` encoding of 21 bytes is a commitment, and it
        /// round-trips.
        #[test]
        fn only_canonical_graffiti_commits(graffiti in any::<[u8; 32]>(), root in any::<[u8; 32]>()) {
            if let Some(c) = RecordCommitment::from_graffiti(&graffiti) {
                prop_assert_eq!(c.to_graffiti(), graffiti);
                prop_assert!(graffiti.starts_with(b"pv1:"));
            }
            let c = RecordCommitment::of(&Root::from(root));
            prop_assert_eq!(RecordCommitment::from_graffiti(&c.to_graffiti()), Some(c));
            prop_assert!(c.matches(&Root::from(root)));
        }
    }
}

/// When verdicts come does not matter: nothing is fed while a verdict is pending, so block 2's
/// selection (which depends on whether block 1's round, finalised by a full proof waiting for
/// its STARK check, has freed its provers) is the same whether every verdict is given at once
/// or only after every block is in.
#[test]
fn the_settled_outcome_does_not_depend_on_when_verdicts_come() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let rec = record(2, proposer(2), r.t, &all);
    let feed = |c: &mut CanonicalRounds, slot: u64| {
        let gas = if slot <= 2 { 10_000_000 } else { 0 };
        let committed = (slot == 2).then(|| commitment(&rec)).flatten();
        c.on_block(block_info(slot, gas), committed).unwrap();
    };
    /// Answers what is asked; returns the selections of the rounds started and the outcomes.
    fn drain(
        c: &mut CanonicalRounds,
        answer: bool,
        held: &mut Vec<phase_engine::Verdict>,
    ) -> (Vec<(RoundKey, Vec<ProverIndex>)>, Vec<BlockOutcome>) {
        let verifier = Verifier::default();
        let (mut started, mut outcomes) = (Vec::new(), Vec::new());
        loop {
            while let Some(action) = c.poll_action() {
                match action {
                    CanonicalAction::Engine(Action::BlockOutcome(o)) => outcomes.push(*o),
                    CanonicalAction::Engine(Action::RoundStarted(s)) => {
                        started.push((s.key, s.selected.clone()));
                    }
                    CanonicalAction::Engine(a) => held.extend(verifier.verdict(&a)),
                    _ => {}
                }
            }
            if !answer || held.is_empty() {
                return (started, outcomes);
            }
            for v in std::mem::take(held) {
                c.on_verification(v).unwrap();
            }
        }
    }
    let (mut eager, mut late) = (canonical(&r.fresh), canonical(&r.fresh));
    let (mut eager_held, mut late_held) = (Vec::new(), Vec::new());
    let (mut eager_started, mut eager_outcomes) = (Vec::new(), Vec::new());
    let (mut late_started, mut late_outcomes) = (Vec::new(), Vec::new());
    for c in [&mut eager, &mut late] {
        c.on_record(rec.clone());
        for m in &r.messages {
            c.on_message(m.clone());
        }
    }
    for slot in 1..=12 {
        feed(&mut eager, slot);
        let (s, o) = drain(&mut eager, true, &mut eager_held);
        eager_started.extend(s);
        eager_outcomes.extend(o);
        feed(&mut late, slot);
        let (s, o) = drain(&mut late, false, &mut late_held);
        late_started.extend(s);
        late_outcomes.extend(o);
    }
    let (s, o) = drain(&mut late, true, &mut late_held);
    late_started.extend(s);
    late_outcomes.extend(o);
    assert!(eager_started.len() >= 2, "{eager_started:?}");
    assert_eq!(eager_started, late_started);
    assert!(!eager_outcomes.is_empty());
    assert_eq!(eager_outcomes, late_outcomes);
}

/// A block that commits to a record nobody can provide, or a record naming a message nobody
/// has, would hold settlement for ever; once the caller gives up on the slot it is resolved
/// with what is known (no record; the entries whose messages are known) and settlement goes on.
#[test]
fn giving_up_on_an_unavailable_record_or_message_resolves_the_slot_without_it() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let rec = record(2, proposer(2), r.t, &all);

    let mut c = canonical(&r.fresh);
    blocks(&mut c, 1..=8, &[(2, &rec)]);
    let _ = run(&mut c);
    assert_eq!(c.resolved_through(), Some(Slot(1)));
    c.give_up(Slot(2));
    let (_, other) = run(&mut c);
    assert_eq!(c.resolved_through(), Some(Slot(8)));
    assert!(
        other.iter().any(|a| matches!(a, CanonicalAction::RecordRejected { slot: Slot(2), .. })),
        "{other:?}"
    );

    let missing = r.messages[0].signing_root();
    let mut d = canonical(&r.fresh);
    d.on_record(rec.clone());
    for m in &r.messages[1..] {
        d.on_message(m.clone());
    }
    blocks(&mut d, 1..=8, &[(2, &rec)]);
    let _ = run(&mut d);
    assert_eq!(d.resolved_through(), Some(Slot(1)));
    d.give_up(Slot(2));
    let (_, other) = run(&mut d);
    assert_eq!(d.resolved_through(), Some(Slot(8)));
    assert!(
        other.iter().any(
            |a| matches!(a, CanonicalAction::EntryIgnored { slot: Slot(2), id, .. } if *id == missing)
        ),
        "{other:?}"
    );
    // Giving up on a resolved slot changes nothing.
    d.give_up(Slot(1));
    assert_eq!(d.resolved_through(), Some(Slot(8)));
}

/// A registration the live engine activates at a block joins the settling engine's registry
/// right before that block is fed there, whenever the caller announces it (before the block is
/// fed, or after: then before the next one).
#[test]
fn a_prover_joins_the_settling_registry_at_the_block_it_joined_the_live_one() {
    let r = round();
    let key = phase_engine::bls::SecretKey::from_ikm(&[42; 32]).unwrap();
    let record = phase_engine::ProverRecord {
        pubkey: key.public_key(),
        stake: phase_engine::test_utils::STAKE,
        capabilities: phase_engine::Capabilities::default(),
        active: true,
        reputation: 0,
    };
    let before = r.fresh.num_active();
    let mut c = canonical(&r.fresh);
    c.add_prover_at(record.clone(), Slot(3));
    blocks(&mut c, 1..=2, &[]);
    let _ = run(&mut c);
    assert_eq!(c.engine().num_active(), before, "not before slot 3's block");
    blocks(&mut c, 3..=12, &[]);
    let _ = run(&mut c);
    assert_eq!(c.engine().num_active(), before + 1);
    assert!(c.engine().prover_by_pubkey(&record.pubkey).is_some());
    // Announced once every block is fed: it joins with the next block.
    let mut late = canonical(&r.fresh);
    blocks(&mut late, 1..=12, &[]);
    let _ = run(&mut late);
    late.add_prover_at(record.clone(), Slot(3));
    blocks(&mut late, 13..=20, &[]);
    let _ = run(&mut late);
    assert_eq!(late.engine().num_active(), before + 1);
}
