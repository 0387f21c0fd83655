//! The node's gossip: one topic per message kind, the wire envelope, the mapping from the
//! engine's verdict to gossipsub's validation result, and the tasks that connect the network to
//! the driver.
//!
//! * **Receiving.** Every message from the network's validation queue is decoded by its topic
//!   and handed to the driver as [`Input::Gossip`], the same engine path as an HTTP submission.
//!   The loop does not wait for the verdict (signature and STARK checks run on the blocking
//!   pool): a small task per message waits for it and reports it to gossipsub, which forwards
//!   only accepted messages.
//! * **Publishing.** The driver sends what the HTTP API accepted (after it is durably logged and
//!   verified) to the publisher task, which publishes it on its topic.
//! * **Arrival time.** The payload carries the time its first node saw it (`first_seen`, the
//!   arrival time that node's engine used). A receiver adopts it, clamped to
//!   `[now - max_relay_delay_ms, now]`, so that every node classifies the message into the same
//!   phase, credits the same including validator and orders full proofs the same way, however
//!   long verification and propagation took (up to `phases.max_relay_delay_ms`, which also
//!   bounds how far a sender can backdate).

use std::sync::Arc;

use phase_engine::{
    InclusionRecord, MessageKind, ProtocolMessage, SignedProverRegistration, UnixMillis,
};
use ssz::{Decode, Encode};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::driver::Input;
use crate::SlotClock;
use sidecar_metrics::VerdictLabel;
use sidecar_p2p::{GossipMessage, MessageVerdict, NetworkHandle};

/// The gossip topic names, one per message kind, and the inclusion records' topic: the topics
/// are `/<topic_prefix>/<name>/ssz_snappy`.
pub const GOSSIP_TOPICS: [&str; 7] = [
    "prover_registration",
    "trace_commitment",
    "prover_decline",
    "partial_proof",
    "full_proof",
    "agg_proof",
    RECORD_TOPIC,
];

/// The topic of inclusion records (the payload is the record's SSZ, with no envelope: its
/// time does not matter, only which block commits to it).
pub const RECORD_TOPIC: &str = "inclusion_record";

/// The gossip topic name of a message kind.
pub fn topic_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Registration => "prover_registration",
        MessageKind::Commitment => "trace_commitment",
        MessageKind::Decline => "prover_decline",
        MessageKind::PartialProof => "partial_proof",
        MessageKind::FullProof => "full_proof",
        MessageKind::AggProof => "agg_proof",
        _ => "unknown",
    }
}

/// What travels on gossip.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gossiped {
    /// A round message.
    Message(ProtocolMessage),
    /// A prover registration.
    Registration(SignedProverRegistration),
    /// An inclusion record.
    Record(InclusionRecord),
}

/// Why a gossip payload could not be decoded.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A topic this node does not serve.
    UnknownTopic,
    /// Bytes that are not the topic's SSZ envelope.
    Ssz(String),
}

/// SSZ of the container `GossipEnvelope { first_seen: uint64, message: T }`.
fn envelope<T: Encode>(first_seen: UnixMillis, message: &T) -> Vec<u8> {
    let fixed = <u64 as Encode>::ssz_fixed_len().saturating_add(<T as Encode>::ssz_fixed_len());
    let mut buf = Vec::with_capacity(fixed.saturating_add(message.ssz_bytes_len()));
    let mut encoder = ssz::SszEncoder::container(&mut buf, fixed);
    encoder.append(&first_seen.0);
    encoder.append(message);
    encoder.finalize();
    buf
}

fn open_envelope<T: Decode>(bytes: &[u8]) -> Result<(UnixMillis, T), DecodeError> {
    let ssz = |e: ssz::DecodeError| DecodeError::Ssz(format!("{e:?}"));
    let mut builder = ssz::SszDecoderBuilder::new(bytes);
    builder.register_type::<u64>().map_err(ssz)?;
    builder.register_type::<T>().map_err(ssz)?;
    let mut decoder = builder.build().map_err(ssz)?;
    let first_seen: u64 = decoder.decode_next().map_err(ssz)?;
    let message: T = decoder.decode_next().map_err(ssz)?;
    Ok((UnixMillis(first_seen), message))
}

/// The topic name and payload of `item`, first seen at `first_seen`.
pub fn encode(item: &Gossiped, first_seen: UnixMillis) -> (&'static str, Vec<u8>) {
    let kind = match item {
        Gossiped::Message(m) => m.kind(),
        Gossiped::Registration(_) => MessageKind::Registration,
        Gossiped::Record(record) => return (RECORD_TOPIC, record.as_ssz_bytes()),
    };
    let bytes = match item {
        Gossiped::Registration(m) => envelope(first_seen, m),
        Gossiped::Message(ProtocolMessage::Commitment(m)) => envelope(first_seen, m),
        Gossiped::Message(ProtocolMessage::Decline(m)) => envelope(first_seen, m),
        Gossiped::Message(ProtocolMessage::PartialProof(m)) => envelope(first_seen, m),
        Gossiped::Message(ProtocolMessage::FullProof(m)) => envelope(first_seen, m),
        Gossiped::Message(ProtocolMessage::AggProof(m)) => envelope(first_seen, m),
        Gossiped::Message(_) | Gossiped::Record(_) => Vec::new(),
    };
    (topic_name(kind), bytes)
}

/// The topic name and payload under which a sidecar gossips `message`, first seen at
/// `first_seen` (for tools and tests that inject messages into a network of sidecars).
pub fn gossip_payload(
    message: &ProtocolMessage,
    first_seen: UnixMillis,
) -> (&'static str, Vec<u8>) {
    encode(&Gossiped::Message(message.clone()), first_seen)
}

/// Decodes a payload received on topic `name` (one of [`GOSSIP_TOPICS`]): the item and the
/// `first_seen` time it carries (0 for records). Never panics: the entry point of the
/// `gossip_envelope` fuzz target (`fuzz/`).
///
/// # Errors
/// [`DecodeError`] for an unknown topic or bytes that are not the topic's SSZ.
pub fn decode(name: &str, bytes: &[u8]) -> Result<(Gossiped, UnixMillis), DecodeError> {
    let msg = |(t, m): (UnixMillis, ProtocolMessage)| (Gossiped::Message(m), t);
    match name {
        "prover_registration" => open_envelope(bytes).map(|(t, m)| (Gossiped::Registration(m), t)),
        "trace_commitment" => {
            open_envelope(bytes).map(|(t, m)| (t, ProtocolMessage::Commitment(m))).map(msg)
        }
        "prover_decline" => {
            open_envelope(bytes).map(|(t, m)| (t, ProtocolMessage::Decline(m))).map(msg)
        }
        "partial_proof" => {
            open_envelope(bytes).map(|(t, m)| (t, ProtocolMessage::PartialProof(m))).map(msg)
        }
        "full_proof" => {
            open_envelope(bytes).map(|(t, m)| (t, ProtocolMessage::FullProof(m))).map(msg)
        }
        "agg_proof" => {
            open_envelope(bytes).map(|(t, m)| (t, ProtocolMessage::AggProof(m))).map(msg)
        }
        RECORD_TOPIC => InclusionRecord::from_ssz_bytes(bytes)
            .map(|r| (Gossiped::Record(r), UnixMillis(0)))
            .map_err(|e| DecodeError::Ssz(format!("{e:?}"))),
        _ => Err(DecodeError::UnknownTopic),
    }
}

/// The arrival time a receiver uses: the sender's `first_seen`, kept within
/// `[now - grace, now]` (never in our future, never older than the clock-disparity allowance).
pub(crate) fn adopt_arrival(first_seen: UnixMillis, now: UnixMillis, grace_ms: u64) -> UnixMillis {
    UnixMillis(first_seen.0.clamp(now.0.saturating_sub(grace_ms), now.0))
}

/// What the driver concluded about a gossip message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GossipResult {
    /// Every check passed: forward it.
    Accepted,
    /// This node already has it (same signing root, or the same registration).
    Duplicate,
    /// The engine refused it (synchronous checks or verification).
    Refused(phase_engine::Error),
    /// A registration whose stake, signature or proof of possession is invalid.
    InvalidRegistration,
    /// Held for a block this node did not know yet, and that block never came in time (or the
    /// holding queue overflowed).
    Expired,
    /// This node takes no new work now (free disk space below `storage.min_free_bytes`).
    Unavailable,
}

/// The `kind` label of `sidecar_messages_total` for a topic name (as the driver labels what it
/// judges).
fn kind_of_topic(name: &str) -> &'static str {
    match name {
        "prover_registration" => "registration",
        "trace_commitment" => "commitment",
        "prover_decline" => "decline",
        "partial_proof" => "partial_proof",
        "full_proof" => "full_proof",
        "agg_proof" => "agg_proof",
        RECORD_TOPIC => "inclusion_record",
        _ => "other",
    }
}

/// The gossipsub validation result of `result`: accepted messages are forwarded; messages that
/// are invalid whoever looks at them are rejected (the peer that sent them is at fault); messages
/// whose fate depends on this node's view (duplicates, too early, too late, a round or block it
/// has not seen or has closed) are ignored: dropped, not forwarded, no blame.
pub(crate) fn verdict(result: &GossipResult) -> MessageVerdict {
    match result {
        GossipResult::Accepted => MessageVerdict::Accept,
        GossipResult::Duplicate | GossipResult::Expired | GossipResult::Unavailable => {
            MessageVerdict::Ignore
        }
        GossipResult::InvalidRegistration => MessageVerdict::Reject,
        GossipResult::Refused(e) => error_verdict(e),
    }
}

/// The verdict for an engine error (see [`verdict`]).
pub(crate) fn error_verdict(error: &phase_engine::Error) -> MessageVerdict {
    use phase_engine::Error as E;
    match error {
        // Invalid for everyone: forged, malformed, or from someone with no right to send it.
        E::BadSignature { .. }
        | E::InvalidProof { .. }
        | E::UnknownProver { .. }
        | E::ProverNotActive { .. }
        | E::NotSelected { .. }
        | E::SlotMismatch { .. }
        | E::WrongAirSet { .. }
        | E::CommitmentMismatch { .. }
        | E::Declined { .. }
        | E::NotAssigned { .. }
        | E::AirOutOfRange { .. }
        | E::InvalidParts { .. }
        | E::BloomMismatch { .. }
        | E::NoAggregation { .. }
        | E::NotAggregator { .. }
        | E::InsufficientStake { .. } => MessageVerdict::Reject,
        // Depends on what this node has seen and when: duplicates, a second message of the
        // same kind or an equivocation (the first one stands and was forwarded), a block or
        // round not known (yet) or closed, a phase not open yet or over, and anything else.
        _ => MessageVerdict::Ignore,
    }
}

/// How the receive loop times what arrives.
pub(crate) struct ArrivalClock {
    /// The node's clock.
    pub(crate) clock: Arc<dyn SlotClock>,
    /// How far a sender's `first_seen` may lie before now (`phases.max_relay_delay_ms`).
    pub(crate) grace_ms: u64,
    /// Fault injection: every message reaches the driver this much later.
    pub(crate) delay: std::time::Duration,
}

/// Starts the gossip tasks: the receive loop (network queue → driver) and the publisher
/// (driver → network). Returns them; the receive loop ends when the network stops, the
/// publisher when the driver drops its sender.
pub(crate) fn spawn(
    handle: NetworkHandle,
    mut messages: mpsc::Receiver<GossipMessage>,
    mut publish: mpsc::Receiver<(Gossiped, UnixMillis)>,
    tx: mpsc::Sender<Input>,
    arrival: ArrivalClock,
    metrics: sidecar_metrics::Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> (JoinHandle<()>, JoinHandle<()>) {
    let ArrivalClock { clock, grace_ms, delay } = arrival;
    let net = handle.clone();
    let receive = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                m = messages.recv() => match m {
                    Some(m) => m,
                    None => break,
                },
                _ = shutdown.wait_for(|s| *s) => break,
            };
            if net.is_banned(&message.source) {
                // Banned (its score fell) since it was queued: not worth verifying.
                let _ = net.report_validation(&message, MessageVerdict::Ignore).await;
                continue;
            }
            let (item, first_seen) = match decode(message.topic.name(), &message.data) {
                Ok(decoded) => decoded,
                Err(e) => {
                    debug!(topic = %message.topic, error = ?e, "undecodable gossip: rejected");
                    let kind = kind_of_topic(message.topic.name());
                    metrics.message_verdict(kind, VerdictLabel::Reject, "undecodable");
                    let _ = net.report_validation(&message, MessageVerdict::Reject).await;
                    continue;
                }
            };
            let (reply, verdict_rx) = oneshot::channel();
            if delay.is_zero() {
                let now = UnixMillis(clock.now_unix_millis());
                let arrived = adopt_arrival(first_seen, now, grace_ms);
                if tx.send(Input::Gossip { item, arrived, reply }).await.is_err() {
                    break;
                }
            } else {
                // Fault injection: the message reaches the driver `delay` late.
                let (tx, clock) = (tx.clone(), Arc::clone(&clock));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let now = UnixMillis(clock.now_unix_millis());
                    let arrived = adopt_arrival(first_seen, now, grace_ms);
                    let _ = tx.send(Input::Gossip { item, arrived, reply }).await;
                });
            }
            // The verdict may take a STARK verification: wait for it off this loop.
            let net = net.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let result = verdict_rx.await.unwrap_or(GossipResult::Expired);
                // What the driver does not count itself.
                match &result {
                    GossipResult::InvalidRegistration => {
                        metrics.message_verdict("registration", VerdictLabel::Reject, "invalid");
                    }
                    GossipResult::Expired => {
                        let kind = kind_of_topic(message.topic.name());
                        metrics.message_verdict(kind, VerdictLabel::Ignore, "expired");
                    }
                    _ => {}
                }
                let v = verdict(&result);
                if v != MessageVerdict::Accept {
                    debug!(topic = %message.topic, ?result, verdict = ?v, "gossip not forwarded");
                }
                let _ = net.report_validation(&message, v).await;
            });
        }
    });
    let publisher = tokio::spawn(async move {
        while let Some((item, first_seen)) = publish.recv().await {
            let (name, bytes) = encode(&item, first_seen);
            match handle.publish(name, bytes).await {
                Ok(_) => debug!(topic = name, "published"),
                // Alone on the network (no peer on the topic yet), or already published (a
                // replay publishing again), is not a failure. (`reason` is gossipsub's
                // `PublishError` variant name.)
                Err(sidecar_p2p::Error::P2p { reason, .. })
                    if reason.contains("NoPeersSubscribedToTopic") || reason == "Duplicate" =>
                {
                    debug!(topic = name, %reason, "not published");
                }
                Err(e) => warn!(topic = name, error = %e, "publishing failed"),
            }
        }
    });
    (receive, publisher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use phase_engine::{Root, bls};

    #[test]
    fn every_message_kind_has_its_own_topic() {
        let kinds = [
            MessageKind::Registration,
            MessageKind::Commitment,
            MessageKind::Decline,
            MessageKind::PartialProof,
            MessageKind::FullProof,
            MessageKind::AggProof,
        ];
        let mut names: std::collections::BTreeSet<_> =
            kinds.iter().map(|k| topic_name(*k)).collect();
        assert_eq!(names.len(), kinds.len());
        names.insert(RECORD_TOPIC);
        assert_eq!(GOSSIP_TOPICS.len(), names.len());
        for name in GOSSIP_TOPICS {
            assert!(names.contains(name), "{name}");
            sidecar_p2p::GossipTopic::new("proving-sidecar-0", name).unwrap();
        }
    }

    fn decline() -> ProtocolMessage {
        let key = bls::SecretKey::from_ikm(&[7; 32]).unwrap();
        let ctx = phase_engine::SigningContext {
            fork_version: [0; 4],
            genesis_validators_root: Root::repeat_byte(3),
        };
        let message = phase_engine::Decline {
            round: phase_engine::RoundRef {
                slot: phase_engine::Slot(9),
                block_root: Root::repeat_byte(1),
                sub_block: phase_engine::SubBlockIndex(0),
                attempt: phase_engine::Attempt(0),
            },
            prover: phase_engine::ProverIndex(4),
        };
        ProtocolMessage::Decline(phase_engine::SignedDecline::sign(message, &key, &ctx))
    }

    #[test]
    fn every_topic_has_a_scoring_rate_and_a_size_cap() {
        let config = sidecar_p2p::NetworkConfig::new(sidecar_p2p::NodeKey::generate().unwrap());
        for name in GOSSIP_TOPICS {
            assert!(config.scoring.topics.iter().any(|t| t.name == name), "{name}");
            assert!(config.max_topic_sizes.contains_key(name), "{name}");
        }
        assert_eq!(config.scoring.topics.len(), GOSSIP_TOPICS.len());
        assert_eq!(config.max_topic_sizes.len(), GOSSIP_TOPICS.len());

        // The largest messages fit their caps.
        let (name, bytes) = encode(&Gossiped::Message(decline()), UnixMillis(1));
        assert!(bytes.len() <= config.max_topic_sizes[name], "{name}: {}", bytes.len());
        let key = bls::SecretKey::from_ikm(&[7; 32]).unwrap();
        let ctx = phase_engine::SigningContext {
            fork_version: [0; 4],
            genesis_validators_root: Root::repeat_byte(3),
        };
        let ProtocolMessage::Decline(d) = decline() else { unreachable!() };
        let partial = phase_engine::PartialProof {
            round: d.message.round,
            prover: d.message.prover,
            air: phase_engine::AirIndex(255),
            trace_root: Root::repeat_byte(2),
            proof: ssz_types::VariableList::new(vec![0xab; phase_engine::MAX_PARTIAL_PROOF_BYTES])
                .unwrap(),
        };
        let partial = phase_engine::SignedPartialProof::sign(partial, &key, &ctx);
        let (name, bytes) =
            encode(&Gossiped::Message(ProtocolMessage::PartialProof(partial)), UnixMillis(1));
        assert_eq!(name, "partial_proof");
        assert!(bytes.len() <= config.max_topic_sizes[name], "{name}: {}", bytes.len());
    }

    #[test]
    fn envelopes_round_trip_and_are_bound_to_their_topic() {
        let item = Gossiped::Message(decline());
        let (name, bytes) = encode(&item, UnixMillis(1_234));
        assert_eq!(name, "prover_decline");
        assert_eq!(decode(name, &bytes).unwrap(), (item, UnixMillis(1_234)));
        // The same bytes on another kind's topic do not decode as that kind.
        assert!(matches!(decode("trace_commitment", &bytes), Err(DecodeError::Ssz(_))));
        assert!(matches!(decode("partial_proof", &bytes[..10]), Err(DecodeError::Ssz(_))));
        assert_eq!(decode("blocks", &bytes), Err(DecodeError::UnknownTopic));
    }

    #[test]
    fn inclusion_records_travel_as_plain_ssz_on_their_own_topic() {
        let record = phase_engine::build_record(
            phase_engine::Slot(4),
            phase_engine::ValidatorIndex(9),
            UnixMillis(50),
            [phase_engine::InclusionCandidate {
                id: Root::repeat_byte(2),
                round_start: UnixMillis(10),
                arrived_at: UnixMillis(20),
            }],
        );
        let item = Gossiped::Record(record.clone());
        let (name, bytes) = encode(&item, UnixMillis(999));
        assert_eq!((name, bytes.as_slice()), (RECORD_TOPIC, record.as_ssz_bytes().as_slice()));
        assert_eq!(decode(name, &bytes).unwrap().0, item);
        assert!(matches!(decode(name, &bytes[..bytes.len() - 1]), Err(DecodeError::Ssz(_))));
    }

    #[test]
    fn the_senders_arrival_time_is_adopted_within_the_clock_disparity() {
        let now = UnixMillis(10_000);
        assert_eq!(adopt_arrival(UnixMillis(9_800), now, 500), UnixMillis(9_800));
        assert_eq!(adopt_arrival(UnixMillis(1_000), now, 500), UnixMillis(9_500));
        assert_eq!(adopt_arrival(UnixMillis(20_000), now, 500), now);
        assert_eq!(adopt_arrival(UnixMillis(0), UnixMillis(100), 500), UnixMillis(0));
    }

    #[test]
    fn verdicts_forward_only_valid_messages_and_blame_only_invalid_ones() {
        use phase_engine::{Error as E, MessageKind as K, Phase, ProverIndex, RoundKey};
        let root = Root::repeat_byte(5);
        let key = RoundKey {
            block_root: root,
            sub_block: phase_engine::SubBlockIndex(0),
            attempt: phase_engine::Attempt(0),
        };
        let p = ProverIndex(1);
        assert_eq!(verdict(&GossipResult::Accepted), MessageVerdict::Accept);
        assert_eq!(verdict(&GossipResult::Duplicate), MessageVerdict::Ignore);
        assert_eq!(verdict(&GossipResult::Expired), MessageVerdict::Ignore);
        assert_eq!(verdict(&GossipResult::InvalidRegistration), MessageVerdict::Reject);
        let rejected = [
            E::BadSignature { signing_root: root },
            E::InvalidProof { signing_root: root },
            E::UnknownProver { prover: p },
            E::NotSelected { prover: p, key },
            E::CommitmentMismatch {
                prover: p,
                air: phase_engine::AirIndex(0),
                committed: root,
                got: Root::ZERO,
            },
            E::NotAggregator { prover: p, block_root: root },
            E::InsufficientStake { stake: 1, minimum: 2 },
        ];
        for e in rejected {
            assert_eq!(verdict(&GossipResult::Refused(e.clone())), MessageVerdict::Reject, "{e}");
        }
        let ignored = [
            E::Duplicate { signing_root: root },
            E::UnknownBlock { block_root: root },
            E::UnknownRound { key },
            E::RoundClosed { key },
            E::Late { kind: K::PartialProof, arrived_at: UnixMillis(2), deadline: UnixMillis(1) },
            E::WrongPhase { kind: K::PartialProof, phase: Phase::T1 },
            E::AlreadyFinalized { key, phase: Phase::T2 },
            E::AlreadySubmitted { prover: p, kind: K::FullProof },
            E::Equivocation { prover: p, first: root, second: Root::ZERO },
            E::NotReady { block_root: root, sub_block: phase_engine::SubBlockIndex(1) },
            E::NoCommitment { prover: p, key },
        ];
        for e in ignored {
            assert_eq!(verdict(&GossipResult::Refused(e.clone())), MessageVerdict::Ignore, "{e}");
        }
    }
}
