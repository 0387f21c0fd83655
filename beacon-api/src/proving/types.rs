//! Wire types of the proving extension API (`/eth/v1/proving/...`). The protocol messages
//! themselves are `phase-engine`'s SSZ containers; these are the API's own envelopes and views.

use std::{fmt, str::FromStr};

use phase_engine::{
    Action, AggregationDuty, Amount, BlockOutcome, Duty, MessageKind, Phase, Progress, ProverIndex,
    ProverRecord, Root, RoundKey, RoundOutcome, RoundStatus, SignedAggProof, SignedFullProof, Slot,
};
use serde::{Deserialize, Serialize};
use serde_with::serde_as;
use ssz_derive::{Decode, Encode};
use ssz_types::{
    VariableList,
    typenum::{U1, U64},
};

use crate::{error::Error, types::Quoted};

/// How the node took a submitted message (`POST /eth/v1/proving/{provers,commitments,...}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubmissionStatus {
    /// Every check passed; the message is stored and forwarded.
    Accepted,
    /// Structurally valid and queued; signature and proof checks are still running (watch the
    /// event stream or query the round).
    Pending,
    /// The node already had this exact message.
    Duplicate,
}

/// The answer to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubmissionReceipt {
    /// The message's kind.
    pub kind: MessageKind,
    /// The message's signing root (its identity).
    pub signing_root: Root,
    /// How it was taken.
    pub status: SubmissionStatus,
    /// For a registration: the prover index assigned (or already held).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prover_index: Option<ProverIndex>,
}

impl SubmissionReceipt {
    /// The receipt of a round message from where the engine says it stands
    /// ([`phase_engine::Engine::on_message`]'s answer).
    pub fn from_progress(kind: MessageKind, signing_root: Root, progress: &Progress) -> Self {
        let (status, prover_index) = match progress {
            Progress::Accepted(accepted) if accepted.kind == MessageKind::Registration => {
                (SubmissionStatus::Accepted, Some(accepted.prover))
            }
            Progress::Accepted(_) => (SubmissionStatus::Accepted, None),
            _ => (SubmissionStatus::Pending, None),
        };
        Self { kind, signing_root, status, prover_index }
    }
}

/// `GET /eth/v1/proving/rounds/{block_id}`: every round of a block and, once closed, its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRounds {
    /// The block root.
    pub block_root: Root,
    /// The block's slot.
    pub slot: Slot,
    /// The live state of each round (sub-block, attempt), in order.
    pub rounds: Vec<RoundStatus>,
    /// Closed rounds with every fact settlement used (assignments, commitments, proofs).
    pub closed: Vec<RoundOutcome>,
    /// The block's outcome, once all its rounds closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<BlockOutcome>,
}

/// `GET /eth/v1/proving/provers/{prover_index}/duties`: what a prover must do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProverDuties {
    /// The prover.
    pub prover: ProverIndex,
    /// Its current round assignments (a prover serves one proof at a time, so usually 0 or 1).
    pub duties: Vec<Duty>,
    /// Blocks whose AggProof it may submit.
    pub aggregation: Vec<AggregationDuty>,
}

/// Most sub-blocks one block is split into, as carried by [`FinalizedProof`].
pub type MaxSubBlocks = U64;

/// `GET /eth/v1/proving/proofs/{block_id}`: the finalised proof of a block, as JSON or SSZ.
///
/// One full proof per sub-block (the first valid one of each), plus the AggProof when the block
/// has several sub-blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Encode, Decode)]
pub struct FinalizedProof {
    /// The block's slot.
    pub slot: Slot,
    /// The block root.
    pub block_root: Root,
    /// The full proof of each sub-block, by sub-block.
    pub full_proofs: VariableList<SignedFullProof, MaxSubBlocks>,
    /// The AggProof: empty for a block of one sub-block, and for a block of several until one is
    /// accepted (aggregators build it from `full_proofs`); then exactly one.
    pub agg_proof: VariableList<SignedAggProof, U1>,
}

/// One account balance of `GET /eth/v1/proving/balances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountBalance {
    /// Who.
    pub account: rewards::Account,
    /// The sum of every settled ledger entry of the account.
    pub balance: Amount,
}

/// One prover of `GET /eth/v1/proving/registry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The prover's index.
    pub index: ProverIndex,
    /// Its record (key, stake, hardware, active, reputation).
    #[serde(flatten)]
    pub record: ProverRecord,
}

/// `POST /eth/v1/proving/verify`: the verdict on a message and its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationVerdict {
    /// Whether every check passed (signature, binding to the committed trace, STARK).
    pub valid: bool,
    /// Why not, when `valid` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl VerificationVerdict {
    /// A passing verdict.
    pub fn valid() -> Self {
        Self { valid: true, reason: None }
    }

    /// A failing verdict with its reason.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Self { valid: false, reason: Some(reason.into()) }
    }
}

/// A topic of the extension's event stream, `GET /eth/v1/proving/events?topics=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProvingTopic {
    /// `round_started`.
    RoundStarted,
    /// `phase_changed`.
    PhaseChanged,
    /// `round_finalized`.
    RoundFinalized,
    /// `round_closed`.
    RoundClosed,
    /// `block_proven`.
    BlockProven,
    /// `block_settled`.
    BlockSettled,
}

impl ProvingTopic {
    /// Every topic.
    pub const ALL: [Self; 6] = [
        Self::RoundStarted,
        Self::PhaseChanged,
        Self::RoundFinalized,
        Self::RoundClosed,
        Self::BlockProven,
        Self::BlockSettled,
    ];

    /// The topic's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundStarted => "round_started",
            Self::PhaseChanged => "phase_changed",
            Self::RoundFinalized => "round_finalized",
            Self::RoundClosed => "round_closed",
            Self::BlockProven => "block_proven",
            Self::BlockSettled => "block_settled",
        }
    }
}

impl fmt::Display for ProvingTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProvingTopic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::UnknownTopic { topic: s.to_owned() })
    }
}

/// `event: round_started`.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundStartedEvent {
    /// The round.
    pub round: RoundKey,
    /// The block's slot.
    pub slot: Slot,
    /// Number of AIRs.
    #[serde_as(as = "Quoted")]
    pub num_airs: u32,
    /// The selected provers, in selection order.
    pub selected: Vec<ProverIndex>,
}

/// `event: phase_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseChangedEvent {
    /// The round.
    pub round: RoundKey,
    /// The phase entered.
    pub phase: Phase,
}

/// `event: round_finalized`: the first valid full proof of a round was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundFinalizedEvent {
    /// The round.
    pub round: RoundKey,
    /// The phase the proof arrived in.
    pub phase: Phase,
    /// Its submitter.
    pub submitter: ProverIndex,
}

/// `event: round_closed`: a round's prover set is free again; `finalized_in` absent means the
/// attempt failed (a retry follows if any is left).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundClosedEvent {
    /// The round.
    pub round: RoundKey,
    /// The finalising phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalized_in: Option<Phase>,
}

/// `event: block_proven` / `event: block_settled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEventData {
    /// The block root.
    pub block_root: Root,
    /// The block's slot.
    pub slot: Slot,
}

/// An event of the extension's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvingEvent {
    /// A round started.
    RoundStarted(RoundStartedEvent),
    /// A round entered a phase.
    PhaseChanged(PhaseChangedEvent),
    /// A round's first valid full proof was verified.
    RoundFinalized(RoundFinalizedEvent),
    /// A round closed.
    RoundClosed(RoundClosedEvent),
    /// Every sub-block of a block is proven (and the AggProof verified, where needed).
    BlockProven(BlockEventData),
    /// A block's ledger was settled.
    BlockSettled(BlockEventData),
}

impl ProvingEvent {
    /// The event's topic.
    pub fn topic(&self) -> ProvingTopic {
        match self {
            Self::RoundStarted(_) => ProvingTopic::RoundStarted,
            Self::PhaseChanged(_) => ProvingTopic::PhaseChanged,
            Self::RoundFinalized(_) => ProvingTopic::RoundFinalized,
            Self::RoundClosed(_) => ProvingTopic::RoundClosed,
            Self::BlockProven(_) => ProvingTopic::BlockProven,
            Self::BlockSettled(_) => ProvingTopic::BlockSettled,
        }
    }

    /// The `data:` JSON of the event.
    pub fn data_json(&self) -> String {
        match self {
            Self::RoundStarted(e) => serde_json::to_string(e),
            Self::PhaseChanged(e) => serde_json::to_string(e),
            Self::RoundFinalized(e) => serde_json::to_string(e),
            Self::RoundClosed(e) => serde_json::to_string(e),
            Self::BlockProven(e) | Self::BlockSettled(e) => serde_json::to_string(e),
        }
        .unwrap_or_default()
    }

    /// The event an engine action announces, if any: `RoundStarted`, `PhaseChanged`,
    /// `RoundFinalized` and `RoundClosed` map one to one; `BlockOutcome` means the block is
    /// closed and ready for settlement ([`ProvingEvent::BlockProven`] is published by the node when
    /// it verified the block's proof, [`ProvingEvent::BlockSettled`] once the ledger is stored).
    pub fn from_action(action: &Action) -> Option<Self> {
        Some(match action {
            Action::RoundStarted(start) => Self::RoundStarted(RoundStartedEvent {
                round: start.key,
                slot: start.slot,
                num_airs: start.num_airs,
                selected: start.selected.clone(),
            }),
            Action::PhaseChanged { key, phase, .. } => {
                Self::PhaseChanged(PhaseChangedEvent { round: *key, phase: *phase })
            }
            Action::RoundFinalized { key, phase, submitter } => {
                Self::RoundFinalized(RoundFinalizedEvent {
                    round: *key,
                    phase: *phase,
                    submitter: *submitter,
                })
            }
            Action::RoundClosed { key, finalized_in } => {
                Self::RoundClosed(RoundClosedEvent { round: *key, finalized_in: *finalized_in })
            }
            _ => return None,
        })
    }

    /// Decodes an event from its SSE name and data.
    pub fn decode(event: &str, data: &str) -> crate::Result<Self> {
        let topic: ProvingTopic = event.parse()?;
        let err = |source| Error::Decode { what: format!("{topic} event"), source };
        Ok(match topic {
            ProvingTopic::RoundStarted => {
                Self::RoundStarted(serde_json::from_str(data).map_err(err)?)
            }
            ProvingTopic::PhaseChanged => {
                Self::PhaseChanged(serde_json::from_str(data).map_err(err)?)
            }
            ProvingTopic::RoundFinalized => {
                Self::RoundFinalized(serde_json::from_str(data).map_err(err)?)
            }
            ProvingTopic::RoundClosed => {
                Self::RoundClosed(serde_json::from_str(data).map_err(err)?)
            }
            ProvingTopic::BlockProven => {
                Self::BlockProven(serde_json::from_str(data).map_err(err)?)
            }
            ProvingTopic::BlockSettled => {
                Self::BlockSettled(serde_json::from_str(data).map_err(err)?)
            }
        })
    }
}

impl crate::GenesisData {
    /// The signing context of the chain with this genesis (fork version and
    /// `genesis_validators_root`): what every sidecar and prover of that chain signs under.
    #[must_use]
    pub fn signing_context(&self) -> phase_engine::SigningContext {
        phase_engine::SigningContext {
            fork_version: self.genesis_fork_version.0,
            genesis_validators_root: self.genesis_validators_root,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phase_engine::{Attempt, SubBlockIndex};

    #[test]
    fn events_round_trip() {
        let round = RoundKey {
            block_root: Root::repeat_byte(1),
            sub_block: SubBlockIndex(0),
            attempt: Attempt(1),
        };
        for event in [
            ProvingEvent::PhaseChanged(PhaseChangedEvent { round, phase: Phase::T2 }),
            ProvingEvent::RoundStarted(RoundStartedEvent {
                round,
                slot: Slot(4),
                num_airs: 3,
                selected: vec![ProverIndex(2)],
            }),
            ProvingEvent::RoundClosed(RoundClosedEvent { round, finalized_in: None }),
        ] {
            assert_eq!(
                ProvingEvent::decode(event.topic().as_str(), &event.data_json()).unwrap(),
                event
            );
        }
        let json: serde_json::Value = serde_json::from_str(
            &ProvingEvent::RoundStarted(RoundStartedEvent {
                round,
                slot: Slot(4),
                num_airs: 3,
                selected: vec![],
            })
            .data_json(),
        )
        .unwrap();
        assert_eq!(json["num_airs"], "3");
        assert_eq!(json["slot"], "4");
        assert!(matches!("nope".parse::<ProvingTopic>(), Err(Error::UnknownTopic { .. })));
    }

    #[test]
    fn engine_actions_map_to_events() {
        let key = RoundKey {
            block_root: Root::repeat_byte(1),
            sub_block: SubBlockIndex(0),
            attempt: Attempt(0),
        };
        let action =
            Action::PhaseChanged { key, phase: Phase::T3, at: phase_engine::UnixMillis(5) };
        assert_eq!(
            ProvingEvent::from_action(&action),
            Some(ProvingEvent::PhaseChanged(PhaseChangedEvent { round: key, phase: Phase::T3 }))
        );
        let closed = Action::RoundClosed { key, finalized_in: Some(Phase::T2) };
        assert_eq!(
            ProvingEvent::from_action(&closed).map(|e| e.topic()),
            Some(ProvingTopic::RoundClosed)
        );
        let aggregators =
            Action::AggregatorsSelected { block_root: key.block_root, aggregators: vec![] };
        assert_eq!(ProvingEvent::from_action(&aggregators), None);
    }

    #[test]
    fn receipts_from_engine_progress() {
        let accepted = phase_engine::Accepted {
            kind: MessageKind::Registration,
            signing_root: Root::repeat_byte(4),
            prover: ProverIndex(7),
            round: None,
        };
        let r = SubmissionReceipt::from_progress(
            MessageKind::Registration,
            Root::repeat_byte(4),
            &Progress::Accepted(accepted),
        );
        assert_eq!((r.status, r.prover_index), (SubmissionStatus::Accepted, Some(ProverIndex(7))));
        let r = SubmissionReceipt::from_progress(
            MessageKind::Commitment,
            Root::ZERO,
            &Progress::Pending(phase_engine::RequestId(1)),
        );
        assert_eq!(r.status, SubmissionStatus::Pending);
    }

    #[test]
    fn finalized_proof_ssz_round_trip() {
        use ssz::{Decode, Encode};
        let proof = FinalizedProof {
            slot: Slot(3),
            block_root: Root::repeat_byte(2),
            full_proofs: VariableList::empty(),
            agg_proof: VariableList::empty(),
        };
        assert_eq!(FinalizedProof::from_ssz_bytes(&proof.as_ssz_bytes()).unwrap(), proof);
        assert!(FinalizedProof::from_ssz_bytes(&[1, 2, 3]).is_err());
    }
}
