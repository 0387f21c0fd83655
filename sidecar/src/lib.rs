//! # sidecar
//!
//! The node that validator and prover operators run beside a beacon node: command line,
//! configuration, slot clock, BLS prover keys, durable storage, peer-to-peer gossip with
//! discovery, and observability. The protocol core (`phase-engine`), the prover
//! (`plonky3-prover`) and the beacon client (`beacon-api`) plug into these parts.
//!
//! Modules are private; everything public is re-exported here or through the public modules
//! [`cli`], [`config`], [`keys`] and [`p2p`].

pub mod cli;
mod clock;
pub mod commands;
pub mod config;
pub mod devnet;
mod error;
pub mod keys;
mod logging;
mod metrics;
pub mod node;
pub mod p2p;
pub mod prover;
pub mod simulate;
mod store;
mod types;

pub use clock::{ManualSlotClock, SlotClock, SlotTiming, SystemSlotClock};
pub use config::Config;
pub use error::{Error, Result};
pub use logging::init_logging;
pub use metrics::{
    MessageLabels, Metrics, OPENMETRICS_CONTENT_TYPE, PhaseLabel, RoundLabels, RoundOutcomeLabel,
    VerdictLabel, VerifyKindLabel, VerifyLabels, bind_http, serve_http,
};
pub use store::{MessageKey, SCHEMA_VERSION, Store, StoreBatch};
pub use types::{Amount, ProverIndex, Root, Slot, signing_context};
