//! The pure, deterministic core of the proving protocol: types, messages, selection, assignment,
//! the T1–T5 rounds and their outcomes. No clock, no I/O, no threads, no randomness of its own:
//! time and the RANDAO mix are inputs, actions and outcomes are outputs.
//!
//! * [`messages`](crate::SignedCommitment): SSZ containers signed with BLS over
//!   `signing_root(message, domain)` ([`SigningContext`], one [`DomainType`] per kind).
//! * Selection: [`compute_shuffled_index`] (the consensus specs' swap-or-not shuffle),
//!   [`select_provers`] (lazy walk, bounded reputation by acceptance sampling), [`plan_block`],
//!   [`assign_airs`].
//! * [`Engine`]: the round state machine. Inputs: [`Engine::on_block`],
//!   [`Engine::on_message`] (or [`Engine::on_sealed_message`] with a signing root a [`Sealer`]
//!   computed elsewhere), [`Engine::on_verification`], [`Engine::on_tick`], registry
//!   changes. Outputs: [`Action`]s from [`Engine::poll_action`] (verification requests, phase
//!   changes, finalisations, [`BlockOutcome`]s for settlement) and the next deadline from
//!   [`Engine::poll_timeout`].
//! * Shuffles built ahead of time: [`Engine::upcoming_shuffles`] predicts the [`ShuffleSpec`]s
//!   the next [`Engine::on_block`] needs; the caller builds them elsewhere
//!   ([`Shuffler::from_spec`], [`Shuffler::with_whole_list`]) and hands them in with
//!   [`Engine::prepare_shuffler`]; [`select_provers_with`] and [`assign_airs_with`] take built
//!   shufflers. A prepared shuffler never changes a result; an unused one is dropped.
//! * Inclusion records ([`InclusionRecord`], [`build_record`], [`RecordCommitment`]): what a
//!   slot's proposer includes, and the graffiti that commits its block to it.
//! * [`CanonicalRounds`]: the settling engine of canonical rounds, fed only the messages that
//!   canonical inclusion records include, at their times, credited to their proposers.
//! * [`bls`]: signing and (batch) verification helpers for the node and the tests.
//! * `test_utils` (feature `test-utils`): a scenario harness on a virtual clock.
//!
//! `docs/protocol.md` is the normative description.

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::panic
    )
)]

mod actions;
mod assign;
mod bloom;
pub mod bls;
mod canonical;
mod checkpoint;
mod config;
mod engine;
mod error;
mod inclusion;
mod merkle;
mod messages;
mod outcome;
mod plan;
mod sealed;
mod selection;
mod shuffle;
mod signing;
#[cfg(feature = "test-utils")]
pub mod test_utils;
mod types;

pub use actions::{
    Accepted, Action, AggregationDuty, BlockInfo, Deadlines, Duty, PartCheck, Progress,
    ProverRecord, RequestId, RoundStart, RoundStatus, SignatureCheck, StarkCheck, StarkTarget,
    Verdict,
};
pub use assign::{assign_airs, assign_airs_with};
pub use bloom::{BLOOM_HASHES, ReuseBloom};
pub use bls::{BlsPublicKey, BlsSignature};
pub use canonical::{CanonicalAction, CanonicalRounds, LOOKAHEAD_SLOTS, SNAPSHOTS_KEPT};
pub use checkpoint::CHECKPOINT_VERSION;
pub use config::{EngineConfig, GasPlan, InclusionParams, PhaseWindows, ReputationBounds};
pub use engine::{Engine, PREPARED_SHUFFLERS_MAX, RegistryParams, ShufflerCacheStats};
pub use error::{Error, Result};
pub use inclusion::{
    COMMITMENT_BYTES, GRAFFITI_PREFIX, IncludedMessage, InclusionCandidate, InclusionRecord,
    MAX_INCLUDED_MESSAGES, MaxIncludedMessages, RecordCommitment, build_record, record_cutoff,
};
pub use merkle::{hash_pair, merkleize, mix_in_length};
pub use messages::{
    AggProof, AirCommitment, Capabilities, Commitment, Decline, FullProof, FullProofBody,
    MAX_AIRS_PER_SUB_BLOCK, MAX_BUNDLE_BYTES, MAX_PARTIAL_PROOF_BYTES, MaxAirsPerSubBlock,
    MaxBloomBytes, MaxBundleBytes, MaxPartialProofBytes, MessageKind, PartialProof,
    ProtocolMessage, ProverRegistration, RoundRef, SignedAggProof, SignedCommitment, SignedContent,
    SignedDecline, SignedFullProof, SignedPartialProof, SignedProverRegistration,
};
pub use outcome::{
    AggProofRecord, Assignment, BlockOutcome, CommitmentRecord, EquivocationRecord,
    FullProofRecord, Inclusion, PartRef, PartialRecord, RoundKey, RoundOutcome,
};
pub use plan::{BlockPlan, SubBlockPlan, plan_block};
pub use sealed::{RoundSealer, SealedMessage, Sealer};
pub use selection::{
    Seed, aggregator_seed, assignment_seed, select_provers, select_provers_with, selection_seed,
    selection_size, selection_weight,
};
pub use shuffle::{SHUFFLE_ROUND_COUNT, ShuffleSpec, Shuffler, compute_shuffled_index};
pub use signing::{
    DOMAIN_AGG_PROOF, DOMAIN_AGGREGATOR_SELECTION, DOMAIN_AIR_ASSIGNMENT, DOMAIN_COMMITMENT,
    DOMAIN_DECLINE, DOMAIN_FULL_PROOF, DOMAIN_PARTIAL_PROOF, DOMAIN_PROVER_REGISTRATION,
    DOMAIN_PROVER_SELECTION, DomainType, SigningContext, signing_root,
};
pub use types::{
    AirIndex, Amount, Attempt, Phase, ProverIndex, Root, Slot, SubBlockIndex, UnixMillis,
    ValidatorIndex,
};
