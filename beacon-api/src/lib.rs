//! Beacon API for the proving sidecar: its two faces toward the Ethereum world.
//!
//! - **Wire types** (always built): plain serde structs of the standard Beacon API endpoints the
//!   sidecar follows (genesis, `config/spec`, node syncing and health, headers, blocks v2, RANDAO,
//!   proposer duties, finality checkpoints) and of the `head`, `block`, `finalized_checkpoint`
//!   and `chain_reorg` events, following `ethereum/beacon-APIs`: quoted integers, `0x`-hex
//!   bytes, `{"data": ...}` envelopes, `{"code", "message"}` errors. Each type's doc comment
//!   names the endpoint it models. Readers are tolerant (unknown fields, fork variants, absent
//!   `execution_optimistic`/`finalized`).
//! - **Client** (feature `client`): `BeaconClient` follows any standard beacon node over REST
//!   and SSE, with several URLs tried in order, timeouts, typed errors carrying the node's
//!   `{code, message}`, and an event stream that reconnects with backoff and re-reads the head.
//! - **Devnet** (feature `devnet`): `DevnetNode`, an embedded beacon node serving the same
//!   endpoints on loopback with real slot timing (or a `ManualClock` in tests), spec RANDAO and
//!   proposer selection, execution payloads of varying gas, finality, and injectable reorgs.
//! - **Keymanager** (types always; `KeymanagerClient` with `client`): the validator client's
//!   keystore list and per-validator graffiti, which the devnet node serves too.
//! - **Proving extension** (feature `server`): the API validators and provers use, under
//!   `/eth/v1/proving`: an axum router over a `ProvingBackend` trait that the node implements,
//!   JSON or SSZ, an SSE stream of round and phase transitions, and the OpenAPI document
//!   `beacon-api/openapi.json`. Feature `test-utils` adds `InMemoryBackend` for tests. Its
//!   wire types alone are feature `proving-types`; with `client` too, `ProvingClient` calls it.

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "devnet")]
mod devnet;
mod error;
#[cfg(any(feature = "devnet", feature = "server"))]
mod http;
mod keymanager;
#[cfg(feature = "proving-types")]
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
pub use keymanager::*;
#[cfg(feature = "proving-types")]
pub use proving::*;
pub use types::*;
