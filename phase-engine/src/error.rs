//! The crate's error type. Every rejected input carries a typed reason.

use serde::{Deserialize, Serialize};

use crate::{
    actions::RequestId,
    messages::MessageKind,
    outcome::{PartRef, RoundKey},
    types::{AirIndex, Phase, ProverIndex, Root, Slot, SubBlockIndex, UnixMillis},
};

/// A static text of an [`Error`]. Spelled through this alias so that serde's derive does not
/// take it for a borrow of the input (which would restrict deserialising to `'static` input):
/// a restored error's text is read by [`crate::checkpoint::static_str`].
type StaticText = &'static str;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an input was rejected or a computation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Error {
    /// An inclusion record fails its structural checks.
    #[error("invalid inclusion record for slot {slot}: {reason}")]
    InvalidRecord {
        /// The slot the record claims.
        slot: Slot,
        /// The first fault found.
        #[serde(deserialize_with = "crate::checkpoint::static_str")]
        reason: StaticText,
    },
    /// An entry of an inclusion record names a message that arrived more than
    /// `inclusion.max_delay_slots` slots before the record's slot: it never counts.
    #[error(
        "included at slot {included_at}, more than {max_delay_slots} slots after its arrival slot {arrived_in}"
    )]
    IncludedTooLate {
        /// The slot the message arrived in, by the record's time.
        arrived_in: Slot,
        /// The slot of the record.
        included_at: Slot,
        /// The bound.
        max_delay_slots: u64,
    },
    /// A reorg reaches back further than the settling engine keeps states.
    #[error(
        "cannot undo canonical settlement back to slot {fork_slot}: the state is no longer kept"
    )]
    ReorgTooDeep {
        /// The first orphaned slot.
        fork_slot: Slot,
    },
    /// The message names a block the engine has not seen (or has already closed and pruned).
    #[error("unknown block {block_root}")]
    UnknownBlock {
        /// The block root named by the message.
        block_root: Root,
    },
    /// The message names a sub-block or attempt that does not exist (yet).
    #[error("unknown round {key:?}")]
    UnknownRound {
        /// The round named by the message.
        key: RoundKey,
    },
    /// The round named by the message is closed: finalised and past its window, or superseded
    /// by a retry.
    #[error("round {key:?} is closed")]
    RoundClosed {
        /// The round.
        key: RoundKey,
    },
    /// The message's slot does not match the block it names.
    #[error("slot {got} does not match block slot {expected}")]
    SlotMismatch {
        /// Slot of the block.
        expected: Slot,
        /// Slot in the message.
        got: Slot,
    },
    /// The prover is not in the registry.
    #[error("unknown prover {prover}")]
    UnknownProver {
        /// The prover index.
        prover: ProverIndex,
    },
    /// The prover is registered but not active (exited).
    #[error("prover {prover} is not active")]
    ProverNotActive {
        /// The prover index.
        prover: ProverIndex,
    },
    /// Only selected provers may send this message in this round.
    #[error("prover {prover} is not selected for {key:?}")]
    NotSelected {
        /// The sender.
        prover: ProverIndex,
        /// The round.
        key: RoundKey,
    },
    /// The message kind is not accepted in the phase it arrived in.
    #[error("{kind:?} not accepted in phase {phase}")]
    WrongPhase {
        /// The message kind.
        kind: MessageKind,
        /// The phase at arrival.
        phase: Phase,
    },
    /// The message arrived after its window closed (grace included).
    #[error("{kind:?} arrived at {arrived_at}, after its deadline {deadline}")]
    Late {
        /// The message kind.
        kind: MessageKind,
        /// Arrival time.
        arrived_at: UnixMillis,
        /// Last instant (exclusive) at which it would have counted.
        deadline: UnixMillis,
    },
    /// The AggProof window is not open: some sub-block has no valid full proof yet.
    #[error(
        "the AggProof of block {block_root} is not possible yet: sub-block {sub_block} unproven"
    )]
    NotReady {
        /// The block.
        block_root: Root,
        /// First unproven sub-block.
        sub_block: SubBlockIndex,
    },
    /// The block has a single sub-block: its full proof is the block's proof, no AggProof.
    #[error("block {block_root} has a single sub-block and takes no AggProof")]
    NoAggregation {
        /// The block.
        block_root: Root,
    },
    /// The prover may not submit this block's AggProof.
    #[error("prover {prover} is neither an aggregator nor a selected prover of block {block_root}")]
    NotAggregator {
        /// The sender.
        prover: ProverIndex,
        /// The block.
        block_root: Root,
    },
    /// The same message (same signing root) was already received.
    #[error("duplicate message {signing_root}")]
    Duplicate {
        /// Its signing root.
        signing_root: Root,
    },
    /// The prover already submitted a message of this kind (for this AIR) in this round.
    #[error("prover {prover} already submitted a {kind:?} here")]
    AlreadySubmitted {
        /// The sender.
        prover: ProverIndex,
        /// The message kind.
        kind: MessageKind,
    },
    /// A second, different T1 message (commitment or decline) from the same prover in the same
    /// round. The first stands; the pair is recorded as evidence.
    #[error("equivocation by prover {prover}: {first} then {second}")]
    Equivocation {
        /// The equivocating prover.
        prover: ProverIndex,
        /// Signing root of the message that stands.
        first: Root,
        /// Signing root of the conflicting message.
        second: Root,
    },
    /// The commitment does not list exactly the prover's assigned AIRs, ascending.
    #[error("commitment of prover {prover} does not list its assigned AIRs {expected:?}")]
    WrongAirSet {
        /// The sender.
        prover: ProverIndex,
        /// The assigned AIRs.
        expected: Vec<AirIndex>,
    },
    /// A partial proof's trace root differs from the one committed in T1.
    #[error("prover {prover} committed {committed} for AIR {air} but opened {got}")]
    CommitmentMismatch {
        /// The author.
        prover: ProverIndex,
        /// The AIR.
        air: AirIndex,
        /// Root committed in T1.
        committed: Root,
        /// Root in the partial proof.
        got: Root,
    },
    /// An assigned prover sent a partial proof without a valid T1 commitment.
    #[error("prover {prover} has no valid commitment in {key:?}")]
    NoCommitment {
        /// The author.
        prover: ProverIndex,
        /// The round.
        key: RoundKey,
    },
    /// The prover declined in T1 and may not send partial proofs in this round.
    #[error("prover {prover} declined")]
    Declined {
        /// The sender.
        prover: ProverIndex,
    },
    /// A partial proof for an AIR that is neither assigned to its author nor open (declined).
    #[error("AIR {air} is not assigned to prover {prover} and not open")]
    NotAssigned {
        /// The author.
        prover: ProverIndex,
        /// The AIR.
        air: AirIndex,
    },
    /// An AIR index beyond the sub-block's AIR count.
    #[error("AIR {air} out of range (the sub-block has {num_airs})")]
    AirOutOfRange {
        /// The AIR.
        air: AirIndex,
        /// Number of AIRs.
        num_airs: u32,
    },
    /// A full proof's parts are not exactly one per AIR, ascending.
    #[error(
        "full proof parts must be one per AIR in order: expected AIR {expected} at position {position}"
    )]
    InvalidParts {
        /// Position in the parts list.
        position: u32,
        /// The AIR expected there.
        expected: AirIndex,
    },
    /// A reused part is missing from the full proof's Bloom filter.
    #[error("reused part {missing:?} is not in the Bloom filter")]
    BloomMismatch {
        /// The part not found.
        missing: PartRef,
    },
    /// The round was already finalised in an earlier phase.
    #[error("round {key:?} already finalised in {phase}")]
    AlreadyFinalized {
        /// The round.
        key: RoundKey,
        /// The finalising phase.
        phase: Phase,
    },
    /// The BLS signature (or proof of possession) is invalid.
    #[error("bad signature on {signing_root}")]
    BadSignature {
        /// Signing root of the message.
        signing_root: Root,
    },
    /// The STARK verifier rejected the proof.
    #[error("invalid proof in {signing_root}")]
    InvalidProof {
        /// Signing root of the message.
        signing_root: Root,
    },
    /// A verification verdict for a request the engine does not know (or already answered).
    #[error("unknown verification request {request:?}")]
    UnknownRequest {
        /// The request id.
        request: RequestId,
    },
    /// A block was given twice.
    #[error("block {block_root} already known")]
    DuplicateBlock {
        /// The block root.
        block_root: Root,
    },
    /// A block at or below the last known slot (blocks must come in slot order).
    #[error("block at slot {slot} is not after the last known slot {last}")]
    StaleBlock {
        /// The block's slot.
        slot: Slot,
        /// The last known slot.
        last: Slot,
    },
    /// Registration with a stake below the minimum.
    #[error("stake {stake} below the minimum {minimum}")]
    InsufficientStake {
        /// Declared stake.
        stake: u64,
        /// Minimum stake.
        minimum: u64,
    },
    /// The public key is already registered.
    #[error("public key already registered as prover {prover}")]
    AlreadyRegistered {
        /// The existing index.
        prover: ProverIndex,
    },
    /// Bytes that are not a valid BLS secret key.
    #[error("invalid BLS secret key")]
    InvalidSecretKey,
    /// A shuffle index not below the index count, or an empty list.
    #[error("shuffle index {index} out of range for {index_count} indices")]
    ShuffleIndexOutOfRange {
        /// The index.
        index: u64,
        /// The list size.
        index_count: u64,
    },
    /// A [`crate::Shuffler`] handed in for a list of another size.
    #[error("shuffler of {index_count} positions given for a list of {expected}")]
    ShufflerLengthMismatch {
        /// The list size the shuffler must have.
        expected: u64,
        /// The shuffler's size.
        index_count: u64,
    },
    /// A checked arithmetic operation overflowed.
    #[error("arithmetic overflow in {context}")]
    Overflow {
        /// What was being computed.
        #[serde(deserialize_with = "crate::checkpoint::static_str")]
        context: StaticText,
    },
    /// A checkpoint was written in another format version
    /// ([`CHECKPOINT_VERSION`](crate::CHECKPOINT_VERSION)).
    #[error("checkpoint format version {got}, this build reads version {expected}")]
    CheckpointVersion {
        /// The version byte found.
        got: u8,
        /// The version this build reads.
        expected: u8,
    },
    /// The bytes are not a checkpoint of this version (truncated, corrupted, of another type).
    #[error("invalid checkpoint: {reason}")]
    InvalidCheckpoint {
        /// What the decoder found.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("invalid config `{key}`: {reason}")]
    InvalidConfig {
        /// The key, as named in the config file.
        #[serde(deserialize_with = "crate::checkpoint::static_str")]
        key: StaticText,
        /// Why.
        #[serde(deserialize_with = "crate::checkpoint::static_str")]
        reason: StaticText,
    },
}
