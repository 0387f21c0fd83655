//! Unit tests of the driver: early gossip, proofs kept in memory, arrival times across a
//! replay, registration activation (by the clock and by canonical records), publishing and
//! republishing after a crash.

use std::time::Duration;

use phase_engine::{
    Capabilities, Decline, RoundRef, SignedDecline,
    test_utils::{self as tu, Scenario},
};
use plonky3_prover::{ProofParams, Prover, SegmentParams, SegmentWorkload};
use tokio::sync::oneshot::error::TryRecvError;

use super::{blocks::PROOF_BLOCKS, *};
use crate::{ManualSlotClock, SlotTiming};
use beacon_api::SubmissionStatus;
use phase_engine::ProverIndex;

const PROVERS: u64 = 8;

/// A driver over a fresh store whose engine has the scenario registry; its input queue.
fn driver(
    dir: &std::path::Path,
    now: UnixMillis,
) -> (Driver, mpsc::Sender<Input>, mpsc::Receiver<Input>) {
    driver_with(dir, now, None)
}

/// [`driver`], publishing to `publish`.
fn driver_with(
    dir: &std::path::Path,
    now: UnixMillis,
    publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
) -> (Driver, mpsc::Sender<Input>, mpsc::Receiver<Input>) {
    driver_full(dir, now, publish, false)
}

/// [`driver_with`], settling canonically when `canonical`.
fn driver_full(
    dir: &std::path::Path,
    now: UnixMillis,
    publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
    canonical: bool,
) -> (Driver, mpsc::Sender<Input>, mpsc::Receiver<Input>) {
    let parts = driver_parts(dir, now, publish, canonical);
    let (tx, rx) = mpsc::channel(64);
    (Driver::new(parts, &tx).unwrap(), tx, rx)
}

/// What [`driver_full`] builds its driver from.
fn driver_parts(
    dir: &std::path::Path,
    now: UnixMillis,
    publish: Option<mpsc::Sender<(Gossiped, UnixMillis)>>,
    canonical: bool,
) -> DriverParts {
    let rewards = rewards::Config::default();
    let mut engine = Engine::new(rewards.engine, tu::signing_context());
    for i in 0..PROVERS {
        engine
            .add_prover(ProverRecord {
                pubkey: tu::secret_key(i).public_key(),
                stake: tu::STAKE,
                capabilities: Capabilities::default(),
                active: true,
                reputation: 0,
            })
            .unwrap();
    }
    let timing = SlotTiming::from_secs(tu::GENESIS_MILLIS / 1000, tu::SLOT_MILLIS / 1000).unwrap();
    let clock = ManualSlotClock::new(timing, Duration::from_millis(now.0));
    let workload = SegmentWorkload::new(SegmentParams::default()).unwrap();
    let prover = Prover::new(ProofParams::default(), workload).unwrap();
    let (events, _) = broadcast::channel(64);
    let (settled, _) = broadcast::channel(64);
    let settling_engine = canonical.then(|| engine.clone());
    DriverParts {
        engine,
        store: Arc::new(Store::open(&dir.join("node.redb")).unwrap()),
        clock: Arc::new(clock),
        rewards,
        verifier: Arc::new(StarkVerifier::new(prover)),
        metrics: Metrics::new(),
        settling: settling_engine.map(|engine| {
            CanonicalRounds::new(
                engine,
                rewards.inclusion,
                UnixMillis(tu::GENESIS_MILLIS),
                tu::SLOT_MILLIS,
            )
            .unwrap()
        }),
        events,
        settled,
        publish,
        min_free_bytes: 1 << 20,
        retention_slots: crate::DEFAULT_RETENTION_SLOTS,
    }
}

fn block(slot: u64) -> Input {
    Input::Block {
        info: tu::block_info(slot, 1_000_000),
        data: BlockData { parent_hash: Root::ZERO, transactions: Vec::new() },
        graffiti: Root::ZERO,
    }
}

/// A decline by the `nth` selected prover of the first round of the last block of `chain`
/// (slots; the selection learnt from a twin engine with the same registry and blocks).
fn decline_by(chain: &[u64], nth: usize) -> ProtocolMessage {
    let mut twin = Scenario::new(rewards::Config::default().engine, PROVERS);
    let mut info = tu::block_info(0, 1_000_000);
    for &slot in chain {
        info = tu::block_info(slot, 1_000_000);
        twin.add_block_info(info).unwrap();
    }
    let key = twin.round_keys(&info.root)[0];
    let prover = twin.selected(&key)[nth];
    let round = RoundRef {
        slot: info.slot,
        block_root: info.root,
        sub_block: key.sub_block,
        attempt: key.attempt,
    };
    let message = Decline { round, prover };
    ProtocolMessage::Decline(SignedDecline::sign(message, &twin.key(prover), twin.ctx()))
}

fn decline(chain: &[u64]) -> ProtocolMessage {
    decline_by(chain, 0)
}

/// Feeds the driver its own queued inputs (verdicts) until `answer` arrives.
async fn until_answered(
    driver: &mut Driver,
    rx: &mut mpsc::Receiver<Input>,
    answer: &mut oneshot::Receiver<GossipResult>,
) -> GossipResult {
    loop {
        match answer.try_recv() {
            Ok(result) => return result,
            Err(TryRecvError::Empty) => {
                let input = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                    .await
                    .expect("a verdict comes back")
                    .unwrap();
                driver.handle(input).await.unwrap();
            }
            Err(TryRecvError::Closed) => panic!("the driver dropped the reply"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_for_a_block_not_seen_yet_waits_for_it_and_is_then_judged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, _tx, mut rx) = driver(dir.path(), UnixMillis(tu::slot_start(1).0 + 100));
    driver.handle(block(0)).await.unwrap();

    // Block 1's decline arrives before block 1 (this node's beacon node is behind): held,
    // no verdict yet (gossipsub does not forward it meanwhile).
    let arrived = UnixMillis(tu::slot_start(1).0 + 50);
    let (reply, mut answer) = oneshot::channel();
    let item = Gossiped::Message(decline(&[0, 1]));
    driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
    assert!(matches!(answer.try_recv(), Err(TryRecvError::Empty)));
    // A message for block 2, which never comes (the chain goes from 1 to 3).
    let (reply, mut lost) = oneshot::channel();
    let item = Gossiped::Message(decline(&[0, 1, 2]));
    driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();

    // Block 1 arrives: the decline goes through the engine (signature check included) and
    // is accepted, at its own arrival time.
    driver.handle(block(1)).await.unwrap();
    let result = until_answered(&mut driver, &mut rx, &mut answer).await;
    assert_eq!(result, GossipResult::Accepted);
    assert!(matches!(lost.try_recv(), Err(TryRecvError::Empty)));

    // Block 3: block 2's slot has passed without it, so its message is dropped (ignored).
    driver.handle(block(3)).await.unwrap();
    assert_eq!(lost.try_recv().unwrap(), GossipResult::Expired);
    assert!(driver.early.is_empty());

    // The same decline again (from another peer): a duplicate, not forwarded twice.
    let (reply, mut again) = oneshot::channel();
    let item = Gossiped::Message(decline(&[0, 1]));
    driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
    let result = until_answered(&mut driver, &mut rx, &mut again).await;
    assert_eq!(super::super::gossip::verdict(&result), sidecar_p2p::MessageVerdict::Ignore);

    // A forged decline (signed with another prover's key): rejected after its signature
    // check, and forgotten (nothing stays in flight).
    let ProtocolMessage::Decline(genuine) = decline_by(&[0, 1], 1) else { unreachable!() };
    let forged =
        SignedDecline::sign(genuine.message, &tu::secret_key(PROVERS + 7), &tu::signing_context());
    let (reply, mut answer) = oneshot::channel();
    let item = Gossiped::Message(ProtocolMessage::Decline(forged));
    driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
    let result = until_answered(&mut driver, &mut rx, &mut answer).await;
    assert!(
        matches!(result, GossipResult::Refused(phase_engine::Error::BadSignature { .. })),
        "{result:?}"
    );
    assert_eq!(super::super::gossip::verdict(&result), sidecar_p2p::MessageVerdict::Reject);
    assert!(driver.in_flight.is_empty() && driver.requests.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_latest_settled_blocks_keep_their_proofs_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, _tx, _rx) = driver(dir.path(), UnixMillis(tu::slot_start(1).0));
    const BLOCKS: u64 = 3 * PROOF_BLOCKS as u64 + 4;
    let mut most = 0;
    for slot in 1..=BLOCKS {
        let info = tu::block_info(slot, 1_000_000);
        let data = BlockData { parent_hash: Root::ZERO, transactions: vec![vec![1; 64]] };
        driver
            .apply(LoggedInput::Block { info, data, now: tu::slot_start(slot), graffiti: None })
            .unwrap();
        // Nobody answers: the rounds run out their phases and fail, and the blocks settle
        // (a block settles once the next one has come).
        for step in 1..=4 {
            let now = UnixMillis(tu::slot_start(slot).0 + step * tu::SLOT_MILLIS / 4 - 1);
            driver.apply(LoggedInput::Tick(now)).unwrap();
        }
        let settled_with_proofs =
            driver.blocks.values().filter(|b| !b.pruned && b.outcome.is_some()).count();
        assert!(settled_with_proofs <= PROOF_BLOCKS, "slot {slot}: {settled_with_proofs}");
        most = most.max(driver.blocks_with_proofs());
    }
    let settled = driver.blocks.values().filter(|b| b.outcome.is_some()).count();
    assert!(settled > 2 * PROOF_BLOCKS, "only {settled} of {BLOCKS} blocks settled");
    let unsettled = driver.blocks.len() - settled;
    assert!(most <= PROOF_BLOCKS + unsettled + 1, "at most {most} blocks held proofs");
    assert_eq!(driver.blocks.len() as u64, BLOCKS, "the records (ledgers) stay");

    // A block out of the window: its ledger is served, its proofs are answered with 404.
    let old: beacon_api::BlockId = "1".parse().unwrap();
    assert!(driver.ledger(old).is_ok());
    assert!(matches!(driver.partial_proofs(old), Err(beacon_api::Error::NotFound { .. })));
    assert!(matches!(driver.finalized_proof(old), Err(beacon_api::Error::NotFound { .. })));
    // The latest block, not settled yet, still has its payload data (for STARK checks).
    let (_, head) = driver.last_block().unwrap();
    assert!(driver.blocks[&head].work.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossiped_message_counts_at_the_senders_arrival_time_even_after_a_replay() {
    let dir = tempfile::tempdir().unwrap();
    // This node is already in T2 of block 1 (T1 is 4 s, the grace 0.5 s)...
    let now = UnixMillis(tu::slot_start(1).0 + 5_000);
    let status = {
        let (mut driver, _tx, mut rx) = driver(dir.path(), now);
        driver.handle(block(1)).await.unwrap();
        // ...when a decline that the first sidecar received in T1 reaches it: it counts
        // in T1, as on the first sidecar (a decline only counts in T1).
        let (reply, mut answer) = oneshot::channel();
        let item = Gossiped::Message(decline(&[1]));
        let arrived = UnixMillis(tu::slot_start(1).0 + 40);
        driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
        assert_eq!(until_answered(&mut driver, &mut rx, &mut answer).await, GossipResult::Accepted);
        // The same over HTTP counts when this node received it: too late for T1.
        let (reply, answer) = oneshot::channel();
        let message = decline_by(&[1], 1);
        driver.handle(Input::Message { message, arrived, reply: Some(reply) }).await.unwrap();
        let refused = answer.await.unwrap().unwrap_err().to_string();
        assert!(refused.contains("phase") || refused.contains("deadline"), "{refused}");
        let key = driver.engine.open_rounds()[0];
        driver.engine.round_status(&key).unwrap()
    };
    assert!(!status.open_airs.is_empty(), "the decline opened its AIRs: {status:?}");
    // A restart replays the relayed input with the same time: the same round state.
    let (driver, _tx, _rx) = driver(dir.path(), now);
    let key = driver.engine.open_rounds()[0];
    assert_eq!(driver.engine.round_status(&key).unwrap(), status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_joins_at_the_first_block_a_clock_disparity_after_it_was_first_seen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, _tx, _rx) = driver(dir.path(), UnixMillis(tu::slot_start(1).0 + 100));
    let registration = tu::registration(PROVERS, tu::STAKE, &tu::signing_context());
    let pubkey = registration.message.pubkey;
    // First seen (by the sidecar that gossiped it) 100 ms before block 1's slot: less than
    // the clock disparity (500 ms), so another sidecar may get it only after block 1.
    let (reply, answer) = oneshot::channel();
    let arrived = UnixMillis(tu::slot_start(1).0 - 100);
    let item = Gossiped::Registration(registration.clone());
    driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
    assert_eq!(answer.await.unwrap(), GossipResult::Accepted);
    driver.handle(block(1)).await.unwrap();
    assert_eq!(driver.engine.prover_by_pubkey(&pubkey), None, "not at block 1");
    // The same registration from another peer is a duplicate.
    let (reply, answer) = oneshot::channel();
    let item = Gossiped::Registration(registration);
    driver.handle(Input::Gossip { item, arrived, reply }).await.unwrap();
    assert_eq!(answer.await.unwrap(), GossipResult::Duplicate);
    driver.handle(block(2)).await.unwrap();
    assert_eq!(driver.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));
    // A replay reaches the same registry.
    drop(driver);
    let (driver, _tx, _rx) = self::driver(dir.path(), UnixMillis(tu::slot_start(2).0 + 100));
    assert_eq!(driver.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_submissions_are_published_and_published_again_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 100);
    let message = decline(&[1]);
    let (published, first) = {
        let (publish, mut published) = mpsc::channel(8);
        let (mut driver, _tx, mut rx) = driver_with(dir.path(), now, Some(publish));
        driver.handle(block(1)).await.unwrap();
        let (reply, answer) = oneshot::channel();
        let input = Input::Message { message: message.clone(), arrived: now, reply: Some(reply) };
        driver.handle(input).await.unwrap();
        // The verdict comes back through the queue; only then is it published.
        assert!(published.try_recv().is_err(), "nothing is published before its checks");
        let verdicts = rx.recv().await.unwrap();
        driver.handle(verdicts).await.unwrap();
        assert_eq!(answer.await.unwrap().unwrap().status, SubmissionStatus::Accepted);
        let first = published.try_recv().unwrap();
        assert_eq!(first, (Gossiped::Message(message.clone()), now));
        (published, first)
    };
    drop(published);
    // Killed before anyone knows whether it went out: the replay publishes it again (same
    // envelope, so peers that have it drop the copy), its round being still open.
    let (publish, mut published) = mpsc::channel(8);
    let (_driver, _tx, _rx) = driver_with(dir.path(), now, Some(publish));
    assert_eq!(published.try_recv().unwrap(), first);
    assert!(published.try_recv().is_err());
}

/// A canonically settling driver at `now`, after blocks 0 and 1, that accepted a decline of block 1's round from gossip, first seen at `first_seen`; the decline
/// and its signing root.
async fn gossiped_decline(
    dir: &std::path::Path,
    now: UnixMillis,
    first_seen: UnixMillis,
) -> (Driver, ProtocolMessage, Root) {
    let (mut driver, _tx, mut rx) = driver_full(dir, now, None, true);
    driver.handle(block(0)).await.unwrap();
    driver.handle(block(1)).await.unwrap();
    let message = decline(&[0, 1]);
    let id = message.signing_root(driver.engine.signing_context());
    let (reply, mut answer) = oneshot::channel();
    let item = Gossiped::Message(message.clone());
    driver.handle(Input::Gossip { item, arrived: first_seen, reply }).await.unwrap();
    assert_eq!(until_answered(&mut driver, &mut rx, &mut answer).await, GossipResult::Accepted);
    (driver, message, id)
}

/// Backdating: a relay that writes `first_seen` 3 s early moves the live engine's arrival time
/// (within the relay allowance), but the record this node builds states the time *it* received
/// the message, so a relay cannot move a message's canonical time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_state_the_local_receive_time_not_a_relays_first_seen() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 3_500);
    let backdated = UnixMillis(now.0 - 3_000);
    let (mut driver, _, id) = gossiped_decline(dir.path(), now, backdated).await;

    let (reply, record) = oneshot::channel();
    let input =
        Input::BuildRecord { slot: Slot(2), proposer: phase_engine::ValidatorIndex(5), reply };
    driver.handle(input).await.unwrap();
    let record = record.await.unwrap().expect("canonical settlement builds records");
    let entry = record.messages.iter().find(|m| m.id == id).expect("the decline is included");
    assert_eq!(entry.arrived_at, now, "the local receive time, not {backdated:?}");
    assert_eq!((record.slot, record.proposer_index), (Slot(2), phase_engine::ValidatorIndex(5)));
    // The record is the node's input too: the settling engine knows it, and it is logged.
    assert!(driver.settling.as_ref().unwrap().records.contains_key(&Slot(2)));
}

/// Anyone may gossip records for a slot: a few are kept (one of them may be the one its block
/// commits to), the rest are not forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossiped_records_beyond_a_few_per_slot_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 3_500);
    let (mut driver, _tx, _rx) = driver_full(dir.path(), now, None, true);
    driver.handle(block(0)).await.unwrap();
    let mut results = Vec::new();
    for i in 0..6u64 {
        let record = phase_engine::build_record(
            Slot(2),
            phase_engine::ValidatorIndex(i),
            now,
            std::iter::empty(),
        );
        let (reply, answer) = oneshot::channel();
        let input = Input::Gossip { item: Gossiped::Record(record), arrived: now, reply };
        driver.handle(input).await.unwrap();
        results.push(answer.await.unwrap());
    }
    let kept = results.iter().filter(|r| **r == GossipResult::Accepted).count();
    assert_eq!(kept, 4, "{results:?}");
    assert_eq!(driver.settling.as_ref().unwrap().records[&Slot(2)].len(), 4);
}

/// Sync serves messages older than the settling engine keeps in memory from the input log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_pruned_from_memory_are_served_from_the_input_log() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 3_500);
    let (mut driver, message, id) = gossiped_decline(dir.path(), now, now).await;
    let (held, logged) = driver.held_messages(&[id]);
    let item = crate::sync::SyncItem::Message(message.clone());
    assert_eq!((held, logged.len()), (vec![item], 0), "in memory first");

    // Beyond the reach of a reorg the settling engine forgets it; the log still has it.
    driver.settling.as_mut().unwrap().rounds.prune_before(Slot(100));
    let (held, logged) = driver.held_messages(&[id, Root::repeat_byte(7)]);
    assert!(held.is_empty());
    assert_eq!(crate::sync::read_logged(&driver.store, &logged), vec![message]);
}

/// Block `slot` whose graffiti commits to `record`.
fn block_committing(slot: u64, record: &InclusionRecord) -> Input {
    Input::Block {
        info: tu::block_info(slot, 1_000_000),
        data: BlockData { parent_hash: Root::ZERO, transactions: Vec::new() },
        graffiti: Root::from(record.graffiti()),
    }
}

/// Canonically, a registration joins when a canonical record includes it: this node's record
/// for slot 2 names it, and both engines register it right before block 4 (slot 2 +
/// `registration_delay_slots`), with the same index; a replay reaches the same registry; a
/// node that lacked it fetches it by the id the record names (sync serves it) and registers it
/// at the same block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canonically_a_registration_joins_two_slots_after_the_record_that_includes_it() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 100);
    let (mut driver, _tx, _rx) = driver_full(dir.path(), now, None, true);
    driver.handle(block(0)).await.unwrap();
    driver.handle(block(1)).await.unwrap();
    let registration = tu::registration(PROVERS, tu::STAKE, &tu::signing_context());
    let id = registration.signing_root(&tu::signing_context());
    let pubkey = registration.message.pubkey;
    let (reply, answer) = oneshot::channel();
    let item = Gossiped::Registration(registration.clone());
    driver.handle(Input::Gossip { item, arrived: now, reply }).await.unwrap();
    assert_eq!(answer.await.unwrap(), GossipResult::Accepted);

    let (reply, record) = oneshot::channel();
    let proposer = tu::block_info(2, 0).proposer;
    driver.handle(Input::BuildRecord { slot: Slot(2), proposer, reply }).await.unwrap();
    let record = record.await.unwrap().expect("a record");
    assert!(record.messages.iter().any(|m| m.id == id), "the record names the registration");
    driver.handle(block_committing(2, &record)).await.unwrap();
    driver.handle(block(3)).await.unwrap();
    assert_eq!(driver.engine.prover_by_pubkey(&pubkey), None, "not at block 3");
    driver.handle(block(4)).await.unwrap();
    assert_eq!(driver.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));
    for slot in 5..=9 {
        driver.handle(block(slot)).await.unwrap();
    }
    let settling = driver.settling.as_ref().unwrap();
    assert_eq!(
        settling.rounds.engine().prover_by_pubkey(&pubkey),
        Some(ProverIndex(PROVERS)),
        "the settling engine has it, at the same index"
    );
    let (held, _) = driver.held_messages(&[id]);
    assert_eq!(held, vec![crate::sync::SyncItem::Registration(registration.clone())]);

    // Another node gets the record but not the registration: it asks for it by id.
    let other = tempfile::tempdir().unwrap();
    let (mut late, _tx2, _rx2) = driver_full(other.path(), now, None, true);
    late.handle(block(0)).await.unwrap();
    late.handle(block(1)).await.unwrap();
    late.handle(Input::Fetched { item: Gossiped::Record(record.clone()) }).await.unwrap();
    late.handle(block_committing(2, &record)).await.unwrap();
    assert!(late.sync_needs().messages.contains(&id), "the named registration is wanted");
    late.handle(Input::Fetched { item: Gossiped::Registration(registration) }).await.unwrap();
    assert!(late.sync_needs().messages.is_empty());
    late.handle(block(3)).await.unwrap();
    assert_eq!(late.engine.prover_by_pubkey(&pubkey), None);
    late.handle(block(4)).await.unwrap();
    assert_eq!(late.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));

    // A replay reaches the same registry.
    drop(driver);
    let (driver, _tx, _rx) = driver_full(dir.path(), now, None, true);
    assert_eq!(driver.engine.prover_by_pubkey(&pubkey), Some(ProverIndex(PROVERS)));
}

/// Below `storage.min_free_bytes` new work is refused with the reason (HTTP: unavailable;
/// gossip: ignored) while reads are served and blocks still followed; once space returns the
/// same submission is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_minimum_new_work_is_refused_and_reads_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 100);
    let (mut driver, _tx, mut rx) = driver(dir.path(), now);
    driver.handle(block(1)).await.unwrap();
    driver.set_free_bytes_for_test(1_000);

    let message = decline(&[1]);
    let (reply, answer) = oneshot::channel();
    let input = Input::Message { message: message.clone(), arrived: now, reply: Some(reply) };
    driver.handle(input).await.unwrap();
    match answer.await.unwrap() {
        Err(beacon_api::Error::Unavailable { reason }) => {
            assert!(reason.contains("min_free_bytes"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let (reply, answer) = oneshot::channel();
    let item = Gossiped::Message(message.clone());
    driver.handle(Input::Gossip { item, arrived: now, reply }).await.unwrap();
    assert_eq!(answer.await.unwrap(), GossipResult::Unavailable);
    assert_eq!(
        crate::gossip::verdict(&GossipResult::Unavailable),
        sidecar_p2p::MessageVerdict::Ignore
    );
    // Reads and blocks go on; nothing of the refused work was logged.
    let seq = driver.seq;
    driver.handle(block(2)).await.unwrap();
    assert_eq!(driver.seq, seq + 1, "the block is logged");
    assert_eq!(driver.last_block().map(|(slot, _)| slot), Some(Slot(2)));

    // Space returns: the same submission is accepted.
    driver.set_free_bytes_for_test(u64::MAX);
    let (reply, mut answer) = oneshot::channel();
    let input = Input::Message { message, arrived: now, reply: Some(reply) };
    driver.handle(input).await.unwrap();
    let verdicts = rx.recv().await.unwrap();
    driver.handle(verdicts).await.unwrap();
    let receipt = answer.try_recv().unwrap().unwrap();
    assert_eq!(receipt.status, SubmissionStatus::Accepted);
}

/// Blocks `slots` (their slots' time) with four ticks each, nobody answering (the rounds fail
/// and settle), a checkpoint whenever one is due (as [`Driver::handle`] takes them).
async fn run_blocks(driver: &mut Driver, slots: std::ops::RangeInclusive<u64>) {
    for slot in slots {
        let info = tu::block_info(slot, 1_000_000);
        let data = BlockData { parent_hash: Root::ZERO, transactions: vec![vec![1; 64]] };
        let now = tu::slot_start(slot);
        driver.log_and_apply(LoggedInput::Block { info, data, now, graffiti: None }).await.unwrap();
        if driver.checkpoint_due(Slot(slot)) {
            driver.checkpoint().await.unwrap();
        }
        for step in 1..=4 {
            let now = UnixMillis(tu::slot_start(slot).0 + step * tu::SLOT_MILLIS / 4 - 1);
            driver.log_and_apply(LoggedInput::Tick(now)).await.unwrap();
        }
    }
}

/// What a restart must reach again: both engines, the balances, every block's ledger, the
/// next log entry.
fn state_of(driver: &Driver) -> (Vec<u8>, Option<Vec<u8>>, rewards::Balances, Vec<u8>, u64) {
    let settling = driver.settling.as_ref().map(|s| s.rounds.checkpoint().unwrap());
    let ledgers: Vec<u8> = driver
        .blocks
        .values()
        .filter_map(|b| b.ledger.as_ref())
        .flat_map(|l| l.as_ssz_bytes())
        .collect();
    (driver.engine.checkpoint().unwrap(), settling, driver.balances.clone(), ledgers, driver.seq)
}

/// A restart restores the latest checkpoint and replays only the inputs after it, reaching
/// the state it stopped in, with canonical rounds and without; the checkpoint is taken every
/// `CHECKPOINT_EVERY_SLOTS` slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_restores_the_checkpoint_and_replays_only_the_inputs_after_it() {
    for canonical in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let now = tu::slot_start(1);
        let before = {
            let (mut driver, _tx, _rx) = driver_full(dir.path(), now, None, canonical);
            run_blocks(&mut driver, 1..=20).await;
            assert_eq!(driver.checkpoint_slot, Some(Slot(17)), "checkpoints at 1, 9 and 17");
            if !canonical {
                let ledgers = driver.blocks.values().filter(|b| b.ledger.is_some()).count();
                assert!(ledgers >= 10, "{ledgers} ledgers");
            }
            state_of(&driver)
        };
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        let saved = checkpoint::checkpoint_position(&store).unwrap().unwrap().next_entry;
        drop(store);
        assert!(saved < before.4, "the checkpoint holds a prefix of the log");
        let (driver, _tx, _rx) = driver_full(dir.path(), now, None, canonical);
        assert_eq!(state_of(&driver), before, "canonical: {canonical}");
        assert_eq!(driver.checkpoint_slot, Some(Slot(17)));
    }
}

/// With a short retention the input log is pruned by key range at each checkpoint: what it
/// holds stays bounded however long the chain, the ledgers and balances stay, and a restart
/// from the pruned store reaches the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_log_is_pruned_behind_the_retention_window_and_still_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let now = tu::slot_start(1);
    let entries = |driver: &Driver| driver.store.messages(crate::log::LOG_NAMESPACE).unwrap().len();
    let (before, held_at_200) = {
        let (mut driver, _tx, _rx) = driver(dir.path(), now);
        driver.retention_slots = crate::MIN_RETENTION_SLOTS;
        run_blocks(&mut driver, 1..=200).await;
        let held_at_200 = entries(&driver);
        run_blocks(&mut driver, 201..=400).await;
        assert!(driver.log_start > 0, "the log was pruned");
        // Five entries per block, for the retention window, the 64 slots between moves of its
        // horizon and the slots between checkpoints: not 400 blocks.
        let held = entries(&driver);
        let bound = 5 * (crate::MIN_RETENTION_SLOTS + 64 + checkpoint::CHECKPOINT_EVERY_SLOTS + 1);
        assert!(held as u64 <= bound, "{held} entries at 400 blocks ({held_at_200} at 200)");
        assert_eq!(driver.store.meta(checkpoint::META_LOG_START).unwrap(), Some(driver.log_start));
        // Ledgers are kept for ever.
        assert!(!driver.store.ledger_entries(tu::block_root(2)).unwrap().is_empty());
        (state_of(&driver), held_at_200)
    };
    assert!(held_at_200 > 0);
    let (driver, _tx, _rx) = driver(dir.path(), now);
    assert_eq!(state_of(&driver), before);
}

/// A checkpoint this build cannot read stops the start with the reason; nothing is replayed
/// over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_checkpoint_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&dir.path().join("node.redb")).unwrap();
        let mut batch = crate::StoreBatch::new();
        batch.put_checkpoint(&[9, 1, 2, 3]);
        store.commit(batch).unwrap();
    }
    let parts = driver_parts(dir.path(), tu::slot_start(1), None, false);
    let (tx, _rx) = mpsc::channel(8);
    let error = Driver::new(parts, &tx).err().expect("refused").to_string();
    assert!(error.contains("checkpoint") && error.contains("version 9"), "{error}");
}

/// A block settled again with another outcome (canonical rounds re-emit one after a reorg that
/// orphaned a record it used): the new ledger replaces the stored one and the balances move
/// from the old to the new; settled again with the same outcome, nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_settled_again_with_another_outcome_replaces_its_ledger_and_balances() {
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, _tx, _rx) = driver(dir.path(), tu::slot_start(1));
    run_blocks(&mut driver, 1..=8).await;
    let (&root, _) = driver
        .blocks
        .iter()
        .find(|(_, b)| {
            b.ledger.is_some() && b.outcome.as_ref().is_some_and(|o| !o.rounds.is_empty())
        })
        .expect("a block settled");
    let first = driver.blocks[&root].ledger.clone().unwrap();
    let outcome = driver.blocks[&root].outcome.clone().unwrap();
    let mut settled = driver.settled.subscribe();

    // The same outcome again: nothing moves.
    let balances = driver.balances.clone();
    driver.settle(outcome.clone()).unwrap();
    assert_eq!(driver.balances, balances);
    assert!(settled.try_recv().is_err(), "nothing announced");

    // Another outcome: one selected prover declined after all (no penalty for it now).
    let mut changed = outcome;
    let prover = changed.rounds[0].selected[0];
    changed.rounds[0].declined.push(prover);
    let replaced = rewards::settle(&changed, &driver.table).unwrap();
    assert_ne!(replaced, first);
    driver.settle(changed).unwrap();
    let stored = driver.store.ledger_entries(root).unwrap();
    assert_eq!(stored, vec![(0, replaced.as_ssz_bytes())], "the stored ledger is replaced");
    let mut expected = balances.clone();
    expected.revert(&first).unwrap();
    expected.apply(&replaced).unwrap();
    assert_eq!(driver.balances, expected);
    let account = rewards::Account::Prover(prover);
    assert_eq!(driver.store.balance(prover).unwrap(), expected.get(account));
    assert_ne!(expected.get(account), balances.get(account));
    assert_eq!(settled.try_recv().unwrap(), replaced, "announced again");
    assert_eq!(driver.blocks[&root].ledger.as_ref(), Some(&replaced));
}

/// The settling engine's messages are not copied into a checkpoint: they are read back from the
/// input log on restore, and the restored settling engine is the one that stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_names_the_settling_engines_messages_and_a_restart_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixMillis(tu::slot_start(1).0 + 300);
    let before = {
        let (mut driver, _message, id) = gossiped_decline(dir.path(), now, now).await;
        assert!(driver.settling.as_ref().unwrap().rounds.message(&id).is_some());
        driver.checkpoint().await.unwrap();
        state_of(&driver)
    };
    let store = Store::open(&dir.path().join("node.redb")).unwrap();
    let position = checkpoint::checkpoint_position(&store).unwrap().unwrap();
    assert_eq!(position.next_entry, before.4, "nothing to replay after it");
    drop(store);
    let (driver, _tx, _rx) = driver_full(dir.path(), now, None, true);
    assert_eq!(state_of(&driver), before);
}

/// Two canonical records name a message nobody has, and the later one is known first, so the
/// message is asked for under the later slot. Giving up on that slot must not leave the earlier
/// one waiting for ever. Two safeguards each prevent it: the settling engine asks again under the
/// earlier slot, and the node gives up on the slot settlement waits for after the same wait.
/// Without both, settlement stays at slot 1 for ever (a 2,000-block devnet run stopped settling
/// with these symptoms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_waiting_for_a_message_asked_for_under_a_later_slot_is_given_up_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let now = tu::slot_start(12);
    let mut parts = driver_parts(dir.path(), now, None, true);
    let timing = SlotTiming::from_secs(tu::GENESIS_MILLIS / 1000, tu::SLOT_MILLIS / 1000).unwrap();
    let clock = ManualSlotClock::new(timing, Duration::from_millis(now.0));
    parts.clock = Arc::new(clock.clone());
    let (tx, _rx) = mpsc::channel(64);
    let mut driver = Driver::new(parts, &tx).unwrap();

    let nobody_has = Root::from([7; 32]);
    let t = UnixMillis(tu::slot_start(1).0 + 100);
    let record = |slot: u64| {
        let cutoff = phase_engine::record_cutoff(tu::slot_start(slot), &driver_inclusion());
        phase_engine::build_record(
            Slot(slot),
            tu::block_info(slot, 0).proposer,
            cutoff,
            [phase_engine::InclusionCandidate { id: nobody_has, round_start: t, arrived_at: t }],
        )
    };
    let (early, late) = (record(2), record(3));
    driver.handle(block(0)).await.unwrap();
    driver.handle(block(1)).await.unwrap();
    driver.handle(Input::Fetched { item: Gossiped::Record(late.clone()) }).await.unwrap();
    driver.handle(block_committing(2, &early)).await.unwrap();
    driver.handle(block_committing(3, &late)).await.unwrap();
    driver.handle(Input::Fetched { item: Gossiped::Record(early.clone()) }).await.unwrap();
    let resolved = |d: &Driver| d.settling.as_ref().unwrap().rounds.resolved_through();
    assert_eq!(resolved(&driver), Some(Slot(1)), "slot 2 waits for the message");

    for slot in 4..=30 {
        clock.set_time(Duration::from_millis(tu::slot_start(slot).0));
        driver.handle(block(slot)).await.unwrap();
    }
    assert_eq!(resolved(&driver), Some(Slot(30)), "both slots given up on, settlement went on");
}

fn driver_inclusion() -> phase_engine::InclusionParams {
    rewards::Config::default().inclusion
}
