//! Beacon API for the proving sidecar: its two faces toward the Ethereum world.
//!
//! - [`types`](crate#types): plain serde wire types of the standard Beacon API endpoints the
//!   sidecar follows (genesis, spec, syncing, health, headers, blocks v2, RANDAO, proposer duties,
//!   finality checkpoints, and the `head`/`block`/`finalized_checkpoint`/`chain_reorg` events),
//!   following the conventions of `ethereum/beacon-APIs`: quoted integers, `0x`-hex bytes,
//!   `{"data": ...}` envelopes and `{"code", "message"}` errors.
//! - `client` (feature `client`): follows any standard beacon node over REST and SSE, with
//!   several URLs tried in order, timeouts, and an event stream that reconnects with backoff.
//! - `devnet` (feature `devnet`): an embedded beacon node serving the same endpoints on loopback
//!   with real slot timing, so the sidecar runs with nothing else installed.
//! - `proving` (feature `server`): the proving extension API under `/eth/v1/proving`, an axum
//!   router over a [`ProvingBackend`](crate#proving) trait that the node implements, with its
//!   OpenAPI document; feature `test-utils` adds an in-memory backend for tests.
//!
//! # Types
//! Every wire type's doc comment names the endpoint it models.

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "devnet")]
mod devnet;
mod error;
#[cfg(any(feature = "devnet", feature = "server"))]
mod http;
#[cfg(feature = "server")]
mod proving;
mod types;

#[cfg(feature = "client")]
pub use client::{
    Backoff, BeaconClient, BeaconClientBuilder, EventStream, EventStreamItem, decode_event_stream,
};
#[cfg(feature = "devnet")]
pub use devnet::{Clock, DevnetConfig, DevnetNode, ManualClock, SystemClock};
pub use error::{Error, Result};
#[cfg(any(feature = "devnet", feature = "server"))]
pub use http::{ApiError, ServerHandle};
#[cfg(feature = "server")]
pub use proving::*;
pub use types::*;
