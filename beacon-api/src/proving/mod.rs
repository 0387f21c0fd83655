//! The proving extension API: how validators and provers use the sidecar, under
//! [`PROVING_PREFIX`] (`/eth/v1/proving`), with Beacon API conventions: `{"data": ...}`
//! envelopes, quoted integers, `0x`-hex, `{"code", "message"}` errors, SSZ request bodies with
//! `Content-Type: application/octet-stream` and SSZ responses with
//! `Accept: application/octet-stream` where the resource has an SSZ form.
//!
//! The handlers call a `ProvingBackend`, which the node implements. The OpenAPI 3 document is
//! `beacon-api/openapi.json`, served at `/eth/v1/proving/openapi.json`.
//!
//! | Method | Path | Body / answer |
//! | --- | --- | --- |
//! | POST | `/eth/v1/proving/provers` | `SignedProverRegistration` → [`SubmissionReceipt`] |
//! | POST | `/eth/v1/proving/commitments` | `SignedCommitment` (T1) → receipt |
//! | POST | `/eth/v1/proving/declines` | `SignedDecline` (T1) → receipt |
//! | POST | `/eth/v1/proving/partial_proofs` | `SignedPartialProof` (T2) → receipt |
//! | POST | `/eth/v1/proving/full_proofs` | `SignedFullProof` (T2–T5) → receipt |
//! | POST | `/eth/v1/proving/agg_proofs` | `SignedAggProof` → receipt |
//! | GET | `/eth/v1/proving/rounds/{block_id}` | [`BlockRounds`] |
//! | GET | `/eth/v1/proving/rounds/{block_id}/partial_proofs` | `[SignedPartialProof]` (JSON or SSZ list) |
//! | GET | `/eth/v1/proving/provers/{prover_index}/duties` | [`ProverDuties`] |
//! | GET | `/eth/v1/proving/proofs/{block_id}` | [`FinalizedProof`] (JSON or SSZ) |
//! | GET | `/eth/v1/proving/ledgers/{block_id}` | `rewards::Ledger` |
//! | GET | `/eth/v1/proving/balances` | `[AccountBalance]` |
//! | GET | `/eth/v1/proving/registry` | `[RegistryEntry]` |
//! | GET | `/eth/v1/proving/reward_config` | `rewards::RewardsFile` |
//! | POST | `/eth/v1/proving/verify[?kind=]` | `ProtocolMessage` (JSON) or SSZ with `kind` → [`VerificationVerdict`] |
//! | GET | `/eth/v1/proving/events?topics=` | SSE of [`ProvingEvent`]s |
//! | GET | `/eth/v1/proving/openapi.json` | the OpenAPI document |
//!
//! Bad input never panics: malformed JSON or SSZ → 400, an unsupported `Content-Type` → 415,
//! a body over `ProvingServerConfig::body_limit` → 413, SSZ asked of a JSON-only resource →
//! 406, unknown ids → 404, unknown routes → 404, wrong methods → 405.

#[cfg(feature = "server")]
mod backend;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "test-utils")]
mod memory;
#[cfg(feature = "server")]
mod server;
mod types;

#[cfg(feature = "server")]
pub use backend::ProvingBackend;
#[cfg(feature = "client")]
pub use client::ProvingClient;
#[cfg(feature = "test-utils")]
pub use memory::InMemoryBackend;
#[cfg(feature = "server")]
pub use server::{
    OPENAPI_JSON, PROVING_PREFIX, PROVING_ROUTES, ProvingServerConfig, proving_router, serve,
};
pub use types::*;
