//! Validator mode: the node that follows a beacon node, runs the proving rounds of every block
//! with the protocol engine, verifies every message (BLS batched, STARKs on the blocking pool),
//! stores every input durably before acknowledging it, settles rewards, and serves the proving
//! extension API and `/metrics`.
//!
//! * [`Node::spawn`] starts it and returns a [`NodeHandle`] (HTTP address, event subscription,
//!   settled ledgers, shutdown).
//! * Inputs go through one driver task that owns the `phase_engine::Engine`; it writes each
//!   input to the store's input log before applying it, so a restart (even after `kill -9`)
//!   replays the log into a fresh, deterministic engine and resumes the open rounds.
//! * Registry: the genesis provers of [`NodeConfig::genesis_provers`] (sorted by public key,
//!   indices from 0), then registrations, which activate at the next block boundary in public-key
//!   order, so that every node given the same registrations before a block has the same registry.
//! * Canonical rounds ([`NodeConfig::inclusion`]): a second, settling engine is fed only what
//!   the canonical inclusion records include, at the times they state, and its outcomes are the
//!   ones settled; for the validators of the operator's validator client the node builds the
//!   records and commits to them through the keymanager graffiti endpoint ([`InclusionConfig`]).

//!
//! A crate of its own: the validator operator's program, with everything only it needs (the
//! store, the slot clock, the engine's driver, STARK and BLS verification scheduling). It builds
//! on the pure core (`phase-engine`, `rewards`, `plonky3-prover`), the beacon client and the
//! gossip network (`sidecar-p2p`), and on no prover or simulator code.

mod backend;
mod clock;
mod driver;
mod error;
mod follower;
mod gossip;
mod includer;
mod log;
mod runtime;
pub mod signatures;
mod store;
mod sync;
mod verify;

pub use backend::NodeApi;
pub use clock::{ManualSlotClock, SlotClock, SlotTiming, SystemSlotClock, ZeroSlotDuration};
pub use driver::checkpoint::{CheckpointPosition, checkpoint_position};
pub use error::{NodeError, NodeResult};
pub use follower::{ChainTiming, MAX_BACKFILL, MAX_GAP, fetch_block};
pub use gossip::{
    DecodeError as GossipDecodeError, GOSSIP_TOPICS, Gossiped, RECORD_TOPIC,
    decode as decode_gossip, encode as encode_gossip, gossip_payload, topic_name,
};
pub use includer::{InclusionConfig, ValidatorClientConfig};
pub use log::{
    BlockData, LOG_NAMESPACE, LoggedInput, decode_entry as decode_log_entry,
    encode_entry as encode_log_entry,
};
pub use runtime::{DEFAULT_RETENTION_SLOTS, MIN_RETENTION_SLOTS, Node, NodeConfig, NodeHandle};
pub use store::{
    MessageKey, SCHEMA_VERSION, Store, StoreBatch, StoreError, StoreResult, StoreStats, TableSize,
};
pub use sync::{
    SyncItem, decode_message as decode_sync_message, decode_records_request,
    encode_message as encode_sync_message, records_request,
};
