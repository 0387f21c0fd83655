//! The outcome of a round: every fact that settlement needs, and nothing it would have to
//! recompute. The engine produces a [`BlockOutcome`] once a block's rounds are closed; the
//! `rewards` crate turns it into ledger entries.
//!
//! Only *valid*, *accepted* messages appear here; rejected inputs never reach settlement.

use serde::{Deserialize, Serialize};

use crate::types::{
    AirIndex, Attempt, Phase, ProverIndex, Root, Slot, SubBlockIndex, UnixMillis, ValidatorIndex,
};

/// Identifies one round: a sub-block of a block, at one retry attempt. Also an SSZ container.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ssz_derive::Encode,
    ssz_derive::Decode,
    tree_hash_derive::TreeHash,
)]
pub struct RoundKey {
    /// Root of the beacon block being proven.
    pub block_root: Root,
    /// The sub-block (0 when the block is not split).
    pub sub_block: SubBlockIndex,
    /// The retry attempt (0 for the first prover set).
    pub attempt: Attempt,
}

/// Where an accepted message landed: when it arrived and which validator "included" it, that is
/// the proposer of the first beacon block after its arrival. Also an SSZ container.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ssz_derive::Encode,
    ssz_derive::Decode,
    tree_hash_derive::TreeHash,
)]
pub struct Inclusion {
    /// Arrival time as given to the engine.
    pub arrived_at: UnixMillis,
    /// The phase whose window the message arrived in.
    pub phase: Phase,
    /// Proposer of the first beacon block after arrival.
    pub validator: ValidatorIndex,
}

/// The AIRs assigned to one selected prover.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    /// The selected prover.
    pub prover: ProverIndex,
    /// Its AIRs, ascending.
    pub airs: Vec<AirIndex>,
}

/// A valid T1 commitment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommitmentRecord {
    /// The committing (selected) prover.
    pub prover: ProverIndex,
    /// Where it landed.
    pub inclusion: Inclusion,
}

/// A valid partial proof (one AIR).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartialRecord {
    /// Its author.
    pub prover: ProverIndex,
    /// The AIR it proves.
    pub air: AirIndex,
    /// `true` if the AIR was assigned to the author; `false` if the author took it over from a
    /// prover that declined (paid as if assigned when it is the first valid one).
    pub assigned: bool,
    /// Where it landed.
    pub inclusion: Inclusion,
}

/// A partial proof inside a full proof, named by its author and AIR. Also an SSZ container
/// (inside [`crate::FullProofBody`]).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ssz_derive::Encode,
    ssz_derive::Decode,
    tree_hash_derive::TreeHash,
)]
pub struct PartRef {
    /// Author of the partial proof.
    pub author: ProverIndex,
    /// The AIR it proves.
    pub air: AirIndex,
}

/// A valid full proof of a sub-block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FullProofRecord {
    /// The prover that submitted it.
    pub submitter: ProverIndex,
    /// Every part, one per AIR, ascending by AIR.
    pub parts: Vec<PartRef>,
    /// The parts whose author is not the submitter (the reused partials).
    pub reused: Vec<PartRef>,
    /// Where it landed.
    pub inclusion: Inclusion,
}

/// Evidence that a prover signed two different messages where one is allowed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EquivocationRecord {
    /// The equivocating prover.
    pub prover: ProverIndex,
    /// Signing root of the first message accepted.
    pub first: Root,
    /// Signing root of the conflicting message.
    pub second: Root,
}

/// The closed state of one round (one sub-block, one attempt).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoundOutcome {
    /// Which round.
    pub key: RoundKey,
    /// Number of AIRs of the sub-block.
    pub num_airs: u32,
    /// The selected provers, in selection order.
    pub selected: Vec<ProverIndex>,
    /// Each selected prover's AIRs (same order as `selected`).
    pub assignments: Vec<Assignment>,
    /// Selected provers that declined in T1.
    pub declined: Vec<ProverIndex>,
    /// Valid T1 commitments, in arrival order.
    pub commitments: Vec<CommitmentRecord>,
    /// Valid partial proofs, in arrival order.
    pub partials: Vec<PartialRecord>,
    /// Valid full proofs, in arrival order. Only those of the finalising phase and earlier
    /// phases are listed; the first one finalises the round.
    pub full_proofs: Vec<FullProofRecord>,
    /// The phase in which the first valid full proof arrived, or `None` if the attempt failed.
    pub finalized_in: Option<Phase>,
    /// Equivocation evidence gathered in this round.
    pub equivocations: Vec<EquivocationRecord>,
}

/// A valid AggProof of a whole block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AggProofRecord {
    /// The prover that submitted it.
    pub submitter: ProverIndex,
    /// Where it landed.
    pub inclusion: Inclusion,
}

/// Everything that happened for one beacon block, ready for settlement.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockOutcome {
    /// Root of the proven block.
    pub block_root: Root,
    /// Its slot.
    pub slot: Slot,
    /// Its proposer.
    pub proposer: ValidatorIndex,
    /// Every round of every sub-block, by sub-block then attempt.
    pub rounds: Vec<RoundOutcome>,
    /// The aggregator group selected for the block's AggProof (empty for a block of one
    /// sub-block, whose full proof is the block's proof).
    pub aggregators: Vec<ProverIndex>,
    /// Valid AggProofs, in arrival order (the first is the block's proof).
    pub agg_proofs: Vec<AggProofRecord>,
}
