//! Checkpoints ([`Engine::checkpoint`], [`CanonicalRounds::checkpoint`]): a state restored from
//! a checkpoint taken anywhere in a scenario (mid-round, with verification requests pending and
//! actions not polled, with prepared shufflers, before a reorg) gives exactly the outputs of the
//! original for the rest of the inputs; bytes that are not a checkpoint are an error.

use phase_engine::{
    BlockInfo, CHECKPOINT_VERSION, CanonicalAction, CanonicalRounds, Engine, Error, Phase,
    ProtocolMessage, ProverIndex, Root, Shuffler, Slot, UnixMillis, ValidatorIndex,
    test_utils::{Scenario, Verifier, block_info, block_root, proposer, slot_start},
};
use proptest::prelude::*;

use crate::{
    canonical::{canonical, commitment, record, round},
    scenarios::config,
};

const PROVERS: u64 = 30;

type Step = Box<dyn Fn(&mut Scenario) -> String>;

fn key_of(s: &Scenario, slot: u64, i: usize) -> phase_engine::RoundKey {
    s.round_keys(&block_root(slot))[i]
}

/// Two blocks (one sub-block; then three, with aggregators), T1 messages and a decline, a
/// partial left waiting for its signature check, partials, a full proof, a registration,
/// shufflers prepared ahead of the second block, an AggProof, a later block and the outcomes.
/// Every step's times are at or after the previous step's.
fn steps() -> Vec<Step> {
    vec![
        Box::new(|s| format!("{:?}", s.add_block(1, 10_000_000))),
        Box::new(|s| {
            let key = key_of(s, 1, 0);
            let selected = s.selected(&key);
            let last = *selected.last().unwrap();
            format!("{:?}", s.commit_all(&key, s.time_in(&key, Phase::T1, 100), &[last]))
        }),
        Box::new(|s| {
            let key = key_of(s, 1, 0);
            let last = *s.selected(&key).last().unwrap();
            format!("{:?}", s.deliver(s.decline(&key, last), s.time_in(&key, Phase::T1, 200)))
        }),
        // Not pumped: the checkpoint after it holds a pending request and a queued action.
        Box::new(|s| {
            let key = key_of(s, 1, 0);
            let p = s.selected(&key)[0];
            let air = s.assignment(&key, p)[0];
            let t = s.time_in(&key, Phase::T2, 100);
            format!("{:?}", s.engine.on_message(ProtocolMessage::from(s.partial(&key, p, air)), t))
        }),
        Box::new(|s| format!("{:?}", s.pump())),
        Box::new(|s| {
            let key = key_of(s, 1, 0);
            let selected = s.selected(&key);
            let t = s.time_in(&key, Phase::T2, 200);
            let mut results = Vec::new();
            for p in &selected[..selected.len() - 1] {
                for (i, air) in s.assignment(&key, *p).into_iter().enumerate() {
                    if *p == selected[0] && i == 0 {
                        continue;
                    }
                    results.push(s.deliver(s.partial(&key, *p, air), t));
                }
            }
            format!("{results:?}")
        }),
        Box::new(|s| {
            let key = key_of(s, 1, 0);
            let submitter = s.selected(&key)[0];
            let parts = s.assigned_parts(&key, submitter);
            let t = s.time_in(&key, Phase::T3, 100);
            format!("{:?}", s.deliver(s.full_proof(&key, submitter, &parts), t))
        }),
        Box::new(|s| {
            let key = key_of(s, 1, 0);
            format!("{:?}", s.register(PROVERS, s.time_in(&key, Phase::T3, 200)))
        }),
        Box::new(|s| {
            let specs = s.engine.upcoming_shuffles(&block_info(2, 120_000_000));
            for spec in &specs {
                s.engine.prepare_shuffler(Shuffler::from_spec(*spec).unwrap().with_whole_list());
            }
            format!("{specs:?}")
        }),
        Box::new(|s| format!("{:?}", s.add_block(2, 120_000_000))),
        Box::new(|s| {
            let keys = s.round_keys(&block_root(2));
            let t = s.time_in(&keys[0], Phase::T1, 100);
            let mut results = Vec::new();
            for key in &keys[..2] {
                let submitter = s.selected(key)[0];
                let parts = s.own_parts(key, submitter);
                results.push(s.deliver(s.commitment_with_full_proof(key, submitter, &parts), t));
            }
            // The third sub-block only commits: it is retried.
            results.push(s.commit_all(&keys[2], t, &[]));
            format!("{results:?}")
        }),
        Box::new(|s| {
            let key = key_of(s, 2, 0);
            let block = block_info(2, 120_000_000);
            let aggregator = s.aggregators(&block.root)[0];
            let t = s.time_in(&key, Phase::T2, 2_000);
            format!("{:?}", s.deliver(s.agg_proof(&block, aggregator), t))
        }),
        Box::new(|s| {
            s.advance_to(UnixMillis(slot_start(2).0 + 30_000));
            String::new()
        }),
        Box::new(|s| format!("{:?}", s.add_block(8, 0))),
        Box::new(|s| {
            s.advance_to(UnixMillis(slot_start(8).0 + 120_000));
            String::new()
        }),
    ]
}

/// What an engine shows after a step.
#[derive(Debug, PartialEq)]
struct Seen {
    result: String,
    timeout: Option<UnixMillis>,
    state: String,
    checkpoint: Vec<u8>,
    stats: phase_engine::ShufflerCacheStats,
    prepared: usize,
}

fn seen(s: &Scenario, result: String) -> Seen {
    Seen {
        result,
        timeout: s.engine.poll_timeout(),
        state: format!("{:?}", s.engine),
        checkpoint: s.engine.checkpoint().unwrap(),
        stats: s.engine.shuffler_cache_stats(),
        prepared: s.engine.prepared_shufflers(),
    }
}

/// A checkpoint before each step, restored, then the rest of the steps on the restored engine:
/// every result, action, timeout, outcome, shuffler statistic and the state itself (its
/// `Debug`, its checkpoint bytes) are those of the uninterrupted run.
#[test]
fn a_restored_engine_continues_exactly() {
    let steps = steps();
    let mut s = Scenario::new(config(), PROVERS);
    // Before step k: (checkpoint, log length, outcomes, async rejections, Debug).
    let mut points = Vec::new();
    let mut reference = Vec::new();
    for step in &steps {
        points.push((
            s.engine.checkpoint().unwrap(),
            s.log.len(),
            s.outcomes.len(),
            s.async_rejections.len(),
            format!("{:?}", s.engine),
        ));
        let result = step(&mut s);
        reference.push(seen(&s, result));
    }
    assert_eq!(s.outcomes.len(), 3, "the three blocks settle: {:?}", s.outcomes);
    assert!(s.engine.shuffler_cache_stats().hits > 0);

    let mut sizes = Vec::new();
    for (k, (bytes, log, outcomes, rejections, state)) in points.into_iter().enumerate() {
        sizes.push(bytes.len());
        let restored = Engine::restore(&bytes).unwrap();
        assert_eq!(format!("{restored:?}"), state, "restored before step {k}");
        assert_eq!(restored.checkpoint().unwrap(), bytes, "re-encoded before step {k}");
        // The harness's own records (the scenario reads its round starts from its log).
        let mut twin = Scenario::new(config(), PROVERS);
        twin.engine = restored;
        twin.log = s.log[..log].to_vec();
        twin.outcomes = s.outcomes[..outcomes].to_vec();
        twin.async_rejections = s.async_rejections[..rejections].to_vec();
        for (i, step) in steps.iter().enumerate().skip(k) {
            let result = step(&mut twin);
            assert_eq!(seen(&twin, result), reference[i], "step {i} after a checkpoint before {k}");
        }
        assert_eq!(twin.log, s.log, "actions after a checkpoint before {k}");
        assert_eq!(twin.outcomes, s.outcomes, "outcomes, checkpoint before {k}");
        assert_eq!(twin.async_rejections, s.async_rejections);
    }
    println!("engine checkpoint sizes before each step (bytes): {sizes:?}");
}

/// Every action polled, verification requests answered (with their results).
fn drain(c: &mut CanonicalRounds) -> String {
    let verifier = Verifier::default();
    let mut seen = Vec::new();
    while let Some(action) = c.poll_action() {
        seen.push(format!("{action:?}"));
        if let CanonicalAction::Engine(a) = &action
            && let Some(v) = verifier.verdict(a)
        {
            seen.push(format!("{:?}", c.on_verification(v)));
        }
    }
    seen.join("\n")
}

/// One input of canonical rounds.
#[derive(Clone, Debug)]
enum Input {
    Message(usize),
    Record(usize),
    Block(BlockInfo, Option<usize>),
    Reorg(u64),
    /// Polls every action, answering verification requests.
    Drain,
}

/// Canonical rounds with a rejected record (its error waits unpolled), a good one, a reorg that
/// replaces it by another, and the blocks after; a checkpoint before each input is restored and
/// continues as the original, the reorg undoing state saved before the checkpoint included.
#[test]
fn restored_canonical_rounds_continue_exactly() {
    let r = round();
    let all: Vec<_> = r.messages.iter().collect();
    let records = [
        // Slot 2 commits to a record naming another proposer: rejected.
        record(2, ValidatorIndex(4242), r.t, &all),
        record(3, proposer(3), r.t, &all[..2]),
        // After the reorg, slot 3' includes the rest.
        record(3, proposer(3), r.t, &all[1..]),
    ];
    let b3 = BlockInfo { root: Root::repeat_byte(0x33), ..block_info(3, 0) };
    let mut inputs = vec![
        Input::Message(0),
        Input::Message(1),
        Input::Record(0),
        Input::Record(1),
        Input::Block(block_info(1, 10_000_000), None),
        Input::Block(block_info(2, 0), Some(0)),
        Input::Block(block_info(3, 0), Some(1)),
        Input::Message(2),
        Input::Block(block_info(4, 0), None),
        Input::Drain,
        Input::Message(3),
        Input::Block(block_info(5, 0), None),
        Input::Drain,
        Input::Reorg(3),
        Input::Record(2),
        Input::Block(b3, Some(2)),
        Input::Drain,
    ];
    for slot in 4..=9 {
        inputs.push(Input::Block(block_info(slot, 0), None));
    }
    inputs.push(Input::Drain);

    let apply = |c: &mut CanonicalRounds, input: &Input| -> String {
        match input {
            Input::Message(i) => {
                c.on_message(r.messages[*i].clone());
                String::new()
            }
            Input::Record(i) => {
                c.on_record(records[*i].clone());
                String::new()
            }
            Input::Block(info, rec) => {
                format!("{:?}", c.on_block(*info, rec.and_then(|i| commitment(&records[i]))))
            }
            Input::Reorg(slot) => format!("{:?}", c.on_reorg(Slot(*slot))),
            Input::Drain => drain(c),
        }
    };
    let look = |c: &CanonicalRounds, result: String| {
        (
            result,
            c.resolved_through(),
            format!("{:?}", c.engine()),
            c.engine().poll_timeout(),
            c.checkpoint().unwrap(),
        )
    };

    let mut c = canonical(&r.fresh);
    let mut points = Vec::new();
    let mut reference = Vec::new();
    for input in &inputs {
        points.push(c.checkpoint().unwrap());
        let result = apply(&mut c, input);
        reference.push(look(&c, result));
    }
    let settled = reference.last().map(|(result, ..)| result.clone()).unwrap_or_default();
    assert!(settled.contains("BlockOutcome"), "block 1 settles: {settled}");
    assert!(reference.iter().any(|(result, ..)| result.contains("Reorged")));
    assert!(reference.iter().any(|(result, ..)| result.contains("RecordRejected")));

    let mut sizes = Vec::new();
    for (k, bytes) in points.into_iter().enumerate() {
        sizes.push(bytes.len());
        let mut twin = CanonicalRounds::restore(&bytes).unwrap();
        assert_eq!(twin.checkpoint().unwrap(), bytes, "re-encoded before input {k}");
        // Without its messages, then given them back: the same state, and smaller while they
        // are out.
        let lean = twin.checkpoint_without_messages().unwrap();
        assert_eq!(twin.checkpoint().unwrap(), bytes, "the messages are back");
        let (mut lean_twin, ids) = CanonicalRounds::restore_without_messages(&lean).unwrap();
        for id in &ids {
            let m = r.messages.iter().find(|m| m.signing_root() == *id).expect("a known message");
            lean_twin.restore_message(m.clone());
        }
        assert_eq!(lean_twin.checkpoint().unwrap(), bytes, "lean, before input {k}");
        if !ids.is_empty() {
            assert!(lean.len() < bytes.len());
        }
        for (i, input) in inputs.iter().enumerate().skip(k) {
            let result = apply(&mut twin, input);
            assert_eq!(
                look(&twin, result),
                reference[i],
                "input {i} after a checkpoint before {k}"
            );
        }
    }
    println!("canonical checkpoint sizes before each input (bytes): {sizes:?}");
}

#[test]
fn a_wrong_version_or_no_bytes_is_an_error() {
    let s = Scenario::new(config(), 4);
    let mut bytes = s.engine.checkpoint().unwrap();
    assert_eq!(bytes[0], CHECKPOINT_VERSION);
    bytes[0] = CHECKPOINT_VERSION.wrapping_add(1);
    assert_eq!(
        Engine::restore(&bytes).unwrap_err(),
        Error::CheckpointVersion { got: CHECKPOINT_VERSION + 1, expected: CHECKPOINT_VERSION }
    );
    assert!(matches!(Engine::restore(&[]), Err(Error::InvalidCheckpoint { .. })));
    assert!(matches!(CanonicalRounds::restore(&[]), Err(Error::InvalidCheckpoint { .. })));
    // An engine's checkpoint is not one of canonical rounds, nor one with bytes left over.
    bytes[0] = CHECKPOINT_VERSION;
    assert!(CanonicalRounds::restore(&bytes).is_err());
    bytes.push(0);
    assert!(matches!(Engine::restore(&bytes), Err(Error::InvalidCheckpoint { .. })));
}

/// The checkpoint of an engine with a block's round open.
fn mid_round() -> Vec<u8> {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES
        .get_or_init(|| {
            let mut s = Scenario::new(config(), 8);
            s.add_block(1, 10_000_000).unwrap();
            s.engine.checkpoint().unwrap()
        })
        .clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Garbage, a valid checkpoint cut short, or one with a byte changed: an error or an engine,
    /// never a panic; a cut one is always an error.
    #[test]
    fn garbage_never_panics(
        garbage in proptest::collection::vec(any::<u8>(), 0..512),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let _ = Engine::restore(&garbage);
        let _ = CanonicalRounds::restore(&garbage);
        let mut with_version = garbage.clone();
        with_version.insert(0, CHECKPOINT_VERSION);
        let _ = Engine::restore(&with_version);
        let _ = CanonicalRounds::restore(&with_version);

        let bytes = mid_round();
        let short = &bytes[..cut.index(bytes.len())];
        prop_assert!(Engine::restore(short).is_err());
        let mut flipped = bytes.clone();
        flipped[flip.index(bytes.len())] ^= xor;
        let _ = Engine::restore(&flipped);
    }
}

/// The first selected prover of block 1 (a smoke check that the restored engine's queries
/// agree).
#[test]
fn restored_queries_agree() {
    let mut s = Scenario::new(config(), 12);
    s.add_block(1, 10_000_000).unwrap();
    let restored = Engine::restore(&s.engine.checkpoint().unwrap()).unwrap();
    assert_eq!(restored.open_rounds(), s.engine.open_rounds());
    for p in 0..12 {
        assert_eq!(restored.duties(ProverIndex(p)), s.engine.duties(ProverIndex(p)));
    }
}
