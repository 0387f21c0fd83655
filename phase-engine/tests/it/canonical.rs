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
    test_utils::{GENESIS_MILLIS, SLOT_MILLIS, STAKE, Scenario, Verifier, block_info, proposer},
};

use crate::scenarios::config;

pub(crate) struct Round {
    pub(crate) fresh: Engine,
    pub(crate) key: RoundKey,
    pub(crate) t: UnixMillis,
    /// The full proof's submitter first, then the other selected provers in index order.
    pub(crate) provers: Vec<ProverIndex>,
    /// Their T1 messages (the submitter's carries its full proof).
    pub(crate) messages: Vec<SealedMessage>,
}

/// Block 1 (3 AIRs, 4 selected provers) and its T1 messages: the first selected prover commits
/// with a full proof of all AIRs, the others commit.
pub(crate) fn round() -> Round {
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

pub(crate) fn canonical(fresh: &Engine) -> CanonicalRounds {
    CanonicalRounds::new(
        fresh.clone(),
        InclusionParams::default(),
        UnixMillis(GENESIS_MILLIS),
        SLOT_MILLIS,
    )
    .unwrap()
}

/// The record of `slot` by `proposer`, naming `messages` at `t`.
pub(crate) fn record(
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

pub(crate) fn commitment(r: &InclusionRecord) -> Option<RecordCommitment> {
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

/// Two records name the same message, and the later one is known first: the message is asked
/// for under the later slot. The caller giving up on that slot must not leave the earlier one
/// waiting for a message nobody asks for any more: it is asked for again under the earlier slot,
/// and `waiting_for` names that slot all along, so a caller that gives up on it settles on.
#[test]
fn giving_up_on_a_later_slot_asks_again_for_what_an_earlier_slot_lacks() {
    let r = round();
    let missing = r.messages[0].signing_root();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let (early, late) = (record(2, proposer(2), r.t, &all), record(3, proposer(3), r.t, &all));

    let mut c = canonical(&r.fresh);
    c.on_record(late.clone());
    for m in &r.messages[1..] {
        c.on_message(m.clone());
    }
    blocks(&mut c, 1..=8, &[(2, &early), (3, &late)]);
    let (_, asked) = run(&mut c);
    assert!(
        asked.iter().any(
            |a| matches!(a, CanonicalAction::FetchMessage { slot: Slot(3), id } if *id == missing)
        ),
        "asked for under the later slot: {asked:?}"
    );
    c.on_record(early.clone());
    let _ = run(&mut c);
    assert_eq!(c.resolved_through(), Some(Slot(1)));
    assert_eq!(c.waiting_for(), Some(Slot(2)), "slot 2 waits for the message");

    c.give_up(Slot(3));
    let (_, asked) = run(&mut c);
    assert!(
        asked.iter().any(
            |a| matches!(a, CanonicalAction::FetchMessage { slot: Slot(2), id } if *id == missing)
        ),
        "asked for again under slot 2: {asked:?}"
    );
    assert_eq!(c.waiting_for(), Some(Slot(2)));
    c.give_up(Slot(2));
    let _ = run(&mut c);
    assert_eq!(c.resolved_through(), Some(Slot(8)));
    assert_eq!(c.waiting_for(), None);
}

/// Pruning forgets the inclusions and chain of old slots (the checkpoint does not grow with the
/// chain) and changes no outcome: the same inputs settle the same with or without it.
#[test]
fn pruning_forgets_old_inclusions_and_changes_no_outcome() {
    let r = round();
    let all: Vec<&SealedMessage> = r.messages.iter().collect();
    let rec = record(2, proposer(2), r.t, &all);
    let settle = |prune: bool| {
        let mut c = canonical(&r.fresh);
        c.on_record(rec.clone());
        for m in &r.messages {
            c.on_message(m.clone());
        }
        let mut outcomes = Vec::new();
        for slot in 1..=40 {
            blocks(&mut c, slot..=slot, &[(2, &rec)]);
            outcomes.extend(run(&mut c).0);
            if prune && slot > 20 {
                c.prune_before(Slot(slot - 10));
            }
        }
        let id = r.messages[0].signing_root();
        let at_40 = (c.included_at(&id), c.checkpoint().unwrap().len());
        // A proposer naming the old messages again, long after: nothing of it counts.
        let again = record(41, proposer(41), UnixMillis(block_info(38, 0).slot_start.0), &all);
        c.on_record(again.clone());
        // Fetched again where they were pruned, as a node does for what a record names.
        for m in &r.messages {
            c.on_message(m.clone());
        }
        blocks(&mut c, 41..=48, &[(41, &again)]);
        outcomes.extend(run(&mut c).0);
        (outcomes, at_40)
    };
    let (kept, (included, full)) = settle(false);
    let (pruned, (forgotten, small)) = settle(true);
    assert!(!kept.is_empty());
    assert_eq!(kept, pruned, "the same outcomes, the re-inclusion at slot 41 included");
    assert_eq!(included, Some(Slot(2)));
    assert_eq!(forgotten, None, "forgotten by slot 40");
    assert!(small < full, "checkpoint {small} < {full} bytes");
}

/// The record of `slot` by its proposer naming `ids` (registrations or messages) at `t`.
fn record_of_ids(slot: u64, t: UnixMillis, ids: &[Root]) -> InclusionRecord {
    let cutoff =
        UnixMillis(block_info(slot, 0).slot_start.0 - InclusionParams::default().cutoff_margin_ms);
    build_record(
        Slot(slot),
        proposer(slot),
        cutoff,
        ids.iter().map(|id| InclusionCandidate { id: *id, round_start: t, arrived_at: t }),
    )
}

/// A registration a canonical record of slot `R` includes joins the settling registry right
/// before the block of `R + registration_delay_slots` (2), and `provers_at` tells the live
/// engine so from that block on; a record naming an unknown registration asks for it.
#[test]
fn an_included_registration_joins_the_registry_two_slots_after_its_record() {
    let r = round();
    let ctx = *r.fresh.signing_context();
    let registration = phase_engine::test_utils::registration(100, STAKE, &ctx);
    let id = registration.signing_root(&ctx);
    let pubkey = registration.message.pubkey;
    let before = r.fresh.num_provers();
    let rec = record_of_ids(2, UnixMillis(GENESIS_MILLIS), &[id]);
    let mut c = canonical(&r.fresh);
    c.on_record(rec.clone());
    blocks(&mut c, 1..=2, &[(2, &rec)]);
    let (_, actions) = run(&mut c);
    assert!(
        actions.iter().any(
            |a| matches!(a, CanonicalAction::FetchMessage { slot: Slot(2), id: x } if *x == id)
        ),
        "the named registration is asked for: {actions:?}"
    );
    assert_eq!(c.resolved_through(), Some(Slot(1)), "slot 2 waits for it");
    c.on_registration(registration.clone());
    assert_eq!(c.resolved_through(), Some(Slot(2)));
    assert_eq!(c.included_at(&id), Some(Slot(2)));
    assert!(c.provers_at(Slot(3), before).is_empty(), "not before slot 4's block");
    let due = c.provers_at(Slot(4), before);
    assert_eq!(due.iter().map(|p| p.pubkey).collect::<Vec<_>>(), [pubkey]);
    // Blocks are fed `max_delay_slots` (4) behind resolution: up to block 7, block 3 is fed.
    blocks(&mut c, 3..=7, &[]);
    let _ = run(&mut c);
    assert_eq!(c.engine().prover_by_pubkey(&pubkey), None, "block 4 not fed yet");
    blocks(&mut c, 8..=8, &[]);
    let _ = run(&mut c);
    assert_eq!(c.engine().prover_by_pubkey(&pubkey), Some(ProverIndex(before)));
    assert_eq!(c.provers_at(Slot(9), before).len(), 1, "registered now: still reported");
    assert!(c.provers_at(Slot(9), before + 1).is_empty());
}

/// A registration counts once, for the first record naming it; another registration of a key
/// that is registered by then does not count, with its reason.
#[test]
fn a_registration_counts_once_and_a_second_one_for_the_same_key_does_not() {
    let r = round();
    let ctx = *r.fresh.signing_context();
    let first = phase_engine::test_utils::registration(100, STAKE, &ctx);
    let second = phase_engine::test_utils::registration(100, STAKE + 1, &ctx);
    let (a, b) = (first.signing_root(&ctx), second.signing_root(&ctx));
    let t = UnixMillis(GENESIS_MILLIS);
    let rec2 = record_of_ids(2, t, &[a]);
    let rec3 = record_of_ids(3, t, &[a, b]);
    let mut c = canonical(&r.fresh);
    c.on_registration(first);
    c.on_registration(second);
    c.on_record(rec2.clone());
    c.on_record(rec3.clone());
    blocks(&mut c, 1..=12, &[(2, &rec2), (3, &rec3)]);
    let (_, actions) = run(&mut c);
    assert_eq!(c.included_at(&a), Some(Slot(2)), "the first record counts");
    assert_eq!(c.included_at(&b), Some(Slot(3)));
    assert_eq!(c.engine().num_provers(), r.fresh.num_provers() + 1);
    let ignored = actions.iter().find_map(|x| match x {
        CanonicalAction::EntryIgnored { slot: Slot(3), id, reason } if *id == b => Some(reason),
        _ => None,
    });
    assert!(
        matches!(ignored, Some(Error::AlreadyRegistered { .. })),
        "the second registration: {ignored:?} in {actions:?}"
    );
}

/// A reorg that orphans the record including a registration undoes it; a record on the new
/// chain includes it again, and it joins counted from that record.
#[test]
fn a_registration_in_an_orphaned_record_is_included_again_on_the_new_chain() {
    let r = round();
    let ctx = *r.fresh.signing_context();
    let registration = phase_engine::test_utils::registration(100, STAKE, &ctx);
    let id = registration.signing_root(&ctx);
    let before = r.fresh.num_provers();
    let t = UnixMillis(GENESIS_MILLIS);
    let old = record_of_ids(2, t, &[id]);
    let new = record_of_ids(3, t, &[id]);
    let mut c = canonical(&r.fresh);
    c.on_registration(registration);
    c.on_record(old.clone());
    c.on_record(new.clone());
    blocks(&mut c, 1..=3, &[(2, &old)]);
    let _ = run(&mut c);
    assert_eq!(c.included_at(&id), Some(Slot(2)));
    c.on_reorg(Slot(2)).unwrap();
    assert_eq!(c.included_at(&id), None, "the orphaned record's inclusion is undone");
    assert!(c.provers_at(Slot(4), before).is_empty());
    blocks(&mut c, 2..=3, &[(3, &new)]);
    let _ = run(&mut c);
    assert_eq!(c.included_at(&id), Some(Slot(3)));
    assert!(c.provers_at(Slot(4), before).is_empty(), "counted from the new record");
    assert_eq!(c.provers_at(Slot(5), before).len(), 1);
    blocks(&mut c, 4..=12, &[]);
    let _ = run(&mut c);
    assert_eq!(c.engine().num_provers(), before + 1);
}
