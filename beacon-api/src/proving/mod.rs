//! The proving extension API: how validators and provers use the sidecar, under
//! [`PROVING_PREFIX`] (`/eth/v1/proving`), with Beacon API conventions: `{"data": ...}`
//! envelopes, quoted integers, `0x`-hex, `{"code", "message"}` errors, SSZ request bodies with
//! `Content-Type: application/octet-stream` and SSZ responses with
//! `Accept: application/octet-stream` where the resource has an SSZ form.
//!
//! The handlers call a [`ProvingBackend`], which the node implements. The OpenAPI 3 document is
//! `beacon-api/openapi.json`, served at `/eth/v1/proving/openapi.json`.

mod backend;
#[cfg(feature = "test-utils")]
mod memory;
mod server;
mod types;

pub use backend::ProvingBackend;
#[cfg(feature = "test-utils")]
pub use memory::InMemoryBackend;
pub use server::{
    OPENAPI_JSON, PROVING_PREFIX, PROVING_ROUTES, ProvingServerConfig, proving_router, serve,
};
pub use types::*;
