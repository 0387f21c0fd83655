//! The pure, deterministic core of the proving protocol: types, messages, selection, assignment,
//! the T1–T5 rounds and their outcomes. No clock, no I/O, no threads, no randomness of its own:
//! time and the RANDAO mix are inputs, actions and outcomes are outputs.

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::panic
    )
)]

mod config;
mod outcome;
mod types;

pub use config::{EngineConfig, GasPlan, PhaseWindows, ReputationBounds};
pub use outcome::{
    AggProofRecord, Assignment, BlockOutcome, CommitmentRecord, EquivocationRecord,
    FullProofRecord, Inclusion, PartRef, PartialRecord, RoundKey, RoundOutcome,
};
pub use types::{
    AirIndex, Amount, Attempt, Phase, ProverIndex, Root, Slot, SubBlockIndex, UnixMillis,
    ValidatorIndex,
};
