//! The engine's inputs and outputs besides messages: block info, verification requests and
//! verdicts, actions, and the prover-facing views.

use serde::{Deserialize, Serialize};

use crate::{
    bls::{BlsPublicKey, BlsSignature},
    messages::{Capabilities, MessageKind},
    outcome::{BlockOutcome, EquivocationRecord, PartRef, RoundKey},
    types::{AirIndex, Phase, ProverIndex, Root, Slot, UnixMillis, ValidatorIndex},
};

/// A new beacon block, as the node learns it (head event plus the block's state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Its slot.
    pub slot: Slot,
    /// Its root: the key of its rounds.
    pub root: Root,
    /// Its parent's root.
    pub parent_root: Root,
    /// Its proposer.
    pub proposer: ValidatorIndex,
    /// RANDAO mix of the block's post-state (selection randomness).
    pub randao_mix: Root,
    /// Gas used by its execution payload.
    #[serde(with = "crate::checkpoint::quoted_u64")]
    pub gas_used: u64,
    /// Start of its slot (`genesis_time + slot * seconds_per_slot`, in ms). Attempt 0 of its
    /// rounds starts here, and it "includes" messages that arrived before this instant.
    pub slot_start: UnixMillis,
}

/// Identifies a verification request; the verdict must name it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct RequestId(pub u64);

/// A BLS check the caller must perform (batched as it likes, e.g. with
/// [`crate::bls::verify_batch`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignatureCheck {
    /// The request.
    pub request: RequestId,
    /// The signer's key.
    pub pubkey: BlsPublicKey,
    /// The signing root it must have signed.
    pub signing_root: Root,
    /// The signature.
    pub signature: BlsSignature,
    /// For registrations: a proof of possession of `pubkey` that must verify as well.
    pub proof_of_possession: Option<BlsSignature>,
}

/// A part of a full proof, with what the STARK verifier needs to check it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartCheck {
    /// Author and AIR.
    pub part: PartRef,
    /// The author's key (its digest is a public value of the partial proof).
    pub author_pubkey: BlsPublicKey,
    /// The trace root the author committed for this AIR in T1, if it did: the part's trace
    /// commitment must equal it.
    pub committed_trace_root: Option<Root>,
}

/// What a STARK check is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StarkTarget {
    /// One partial proof.
    Partial {
        /// The round.
        round: RoundKey,
        /// Slot of the block.
        slot: Slot,
        /// The AIR.
        air: AirIndex,
        /// Number of AIRs of the sub-block.
        num_airs: u32,
        /// The author.
        author: ProverIndex,
        /// The author's key.
        author_pubkey: BlsPublicKey,
        /// The trace root the proof must open.
        trace_root: Root,
        /// The proof bytes.
        proof: Vec<u8>,
    },
    /// A full proof of a sub-block.
    FullProof {
        /// The round.
        round: RoundKey,
        /// Slot of the block.
        slot: Slot,
        /// Number of AIRs of the sub-block.
        num_airs: u32,
        /// The submitter.
        submitter: ProverIndex,
        /// Every part, by AIR.
        parts: Vec<PartCheck>,
        /// The bundle bytes.
        bundle: Vec<u8>,
    },
    /// The AggProof of a block.
    AggProof {
        /// The block.
        block_root: Root,
        /// Its slot.
        slot: Slot,
        /// Number of sub-blocks aggregated.
        num_sub_blocks: u32,
        /// The submitter.
        submitter: ProverIndex,
        /// The proof bytes.
        bundle: Vec<u8>,
    },
}

/// A STARK check the caller must perform.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StarkCheck {
    /// The request.
    pub request: RequestId,
    /// What to verify.
    pub target: StarkTarget,
}

/// The answer to a [`SignatureCheck`] or [`StarkCheck`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Verdict {
    /// The request answered.
    pub request: RequestId,
    /// Whether the check passed.
    pub valid: bool,
}

/// A message that passed every check: the node stores it and forwards it (gossip).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Accepted {
    /// Its kind.
    pub kind: MessageKind,
    /// Its signing root.
    pub signing_root: Root,
    /// Its sender (submitter, author, committing prover) or, for a registration, the new index.
    pub prover: ProverIndex,
    /// Its round (`None` for registrations and AggProofs).
    pub round: Option<RoundKey>,
}

/// Where a message stands after an input.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Progress {
    /// Waiting for the verdict of this request (see the queued action).
    Pending(RequestId),
    /// Fully accepted.
    Accepted(Accepted),
}

/// A round that starts: its prover set and assignment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoundStart {
    /// The round.
    pub key: RoundKey,
    /// Slot of the block.
    pub slot: Slot,
    /// Start of T1.
    pub start: UnixMillis,
    /// Number of AIRs.
    pub num_airs: u32,
    /// The selected provers, in selection order.
    pub selected: Vec<ProverIndex>,
    /// Their AIRs, same order.
    pub assignments: Vec<Vec<AirIndex>>,
}

/// Something the caller must do or may want to know, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// Verify a BLS signature and answer with [`crate::Engine::on_verification`].
    VerifySignature(SignatureCheck),
    /// Verify a STARK proof and answer with [`crate::Engine::on_verification`].
    VerifyStark(StarkCheck),
    /// A round (sub-block, attempt) started.
    RoundStarted(RoundStart),
    /// The aggregator group of a block with several sub-blocks.
    AggregatorsSelected {
        /// The block.
        block_root: Root,
        /// The aggregators.
        aggregators: Vec<ProverIndex>,
    },
    /// A round entered a phase (nominal window start).
    PhaseChanged {
        /// The round.
        key: RoundKey,
        /// The new phase.
        phase: Phase,
        /// When the phase opened.
        at: UnixMillis,
    },
    /// The first valid full proof of a round was verified.
    RoundFinalized {
        /// The round.
        key: RoundKey,
        /// The phase it arrived in.
        phase: Phase,
        /// Its submitter.
        submitter: ProverIndex,
    },
    /// A round closed: its prover set is free again. When `finalized_in` is `None` the attempt
    /// failed and a retry follows (if any is left).
    RoundClosed {
        /// The round.
        key: RoundKey,
        /// The finalising phase.
        finalized_in: Option<Phase>,
    },
    /// A message passed every check: store and forward it.
    Accepted(Accepted),
    /// Equivocation evidence.
    Equivocation {
        /// The round.
        key: RoundKey,
        /// The evidence.
        record: EquivocationRecord,
    },
    /// A prover joined the registry.
    ProverRegistered {
        /// Its index.
        prover: ProverIndex,
        /// Its key.
        pubkey: BlsPublicKey,
    },
    /// A block's rounds are closed: settle it.
    BlockOutcome(Box<BlockOutcome>),
}

/// A registered prover.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProverRecord {
    /// Its BLS key.
    pub pubkey: BlsPublicKey,
    /// Its stake (Gwei).
    #[serde(with = "crate::checkpoint::quoted_u64")]
    pub stake: u64,
    /// Declared hardware.
    pub capabilities: Capabilities,
    /// Whether it is in the active set.
    pub active: bool,
    /// Reputation score (raises the selection weight, bounded by
    /// [`crate::ReputationBounds`]); set by the caller from settled history.
    #[serde(with = "crate::checkpoint::quoted_u64")]
    pub reputation: u64,
}

/// Phase deadlines of a round. A message counts for a phase while `now < close + grace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Deadlines {
    /// Start of T1.
    pub start: UnixMillis,
    /// Nominal close of T1 .. T5, in order.
    pub closes: [UnixMillis; 5],
    /// Grace after each close (`max_clock_disparity_ms`).
    pub grace_ms: u64,
}

impl Deadlines {
    /// Nominal close of `phase`.
    pub fn close(&self, phase: Phase) -> UnixMillis {
        self.closes.get(phase.ordinal()).copied().unwrap_or(self.start)
    }

    /// Close of `phase` plus grace: the first instant at which a message no longer counts.
    pub fn graced_close(&self, phase: Phase) -> UnixMillis {
        UnixMillis(self.close(phase).0.saturating_add(self.grace_ms))
    }

    /// Nominal opening of `phase`.
    pub fn open(&self, phase: Phase) -> UnixMillis {
        match phase {
            Phase::T1 => self.start,
            _ => self.closes.get(phase.ordinal().saturating_sub(1)).copied().unwrap_or(self.start),
        }
    }

    /// The phase whose nominal window `[open, close)` contains `t` (grace not counted); `None`
    /// after T5's close.
    pub fn nominal_phase_at(&self, t: UnixMillis) -> Option<Phase> {
        Phase::ALL.into_iter().find(|&p| t < self.close(p))
    }

    /// The phase a message arriving at `t` counts for: the first whose graced close is after
    /// `t`; `None` after T5's graced close.
    pub fn phase_at(&self, t: UnixMillis) -> Option<Phase> {
        Phase::ALL.into_iter().find(|&p| t < self.graced_close(p))
    }
}

/// A prover's duty in a round, for the prover worker and the API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Duty {
    /// The round.
    pub round: RoundKey,
    /// Slot of the block.
    pub slot: Slot,
    /// Number of AIRs of the sub-block.
    pub num_airs: u32,
    /// The prover's AIRs (empty for a declined assignment).
    pub airs: Vec<AirIndex>,
    /// The phase now (at the engine's latest time).
    pub phase: Phase,
    /// Whether the prover already sent a valid commitment (`Some(true)`), a decline
    /// (`Some(false)`), or nothing yet (`None`).
    pub committed: Option<bool>,
    /// The round's deadlines.
    pub deadlines: Deadlines,
}

/// A block whose AggProof the prover may submit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AggregationDuty {
    /// The block.
    pub block_root: Root,
    /// Its slot.
    pub slot: Slot,
    /// Whether the prover is in the aggregator group (otherwise it is a selected prover of one
    /// of the block's rounds).
    pub aggregator: bool,
    /// Whether every sub-block has a valid full proof (the AggProof can be built now).
    pub ready: bool,
}

/// A summary of a round's state for the API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoundStatus {
    /// The round.
    pub key: RoundKey,
    /// Slot of the block.
    pub slot: Slot,
    /// The phase now (`None` after T5 closed).
    pub phase: Option<Phase>,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Number of AIRs.
    pub num_airs: u32,
    /// Selected provers with their AIRs.
    pub selected: Vec<(ProverIndex, Vec<AirIndex>)>,
    /// AIRs open to any prover (declined), with the number of open slots each.
    pub open_airs: Vec<(AirIndex, u32)>,
    /// Valid commitments so far.
    pub commitments: u32,
    /// Valid partial proofs so far.
    pub partials: u32,
    /// The finalising phase, if any.
    pub finalized_in: Option<Phase>,
    /// Whether the round is closed.
    pub closed: bool,
}
