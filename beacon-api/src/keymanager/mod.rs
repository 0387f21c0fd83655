//! The validator client's keymanager API (`ethereum/keymanager-APIs`), as far as the sidecar
//! uses it: listing the validators a client signs for and setting the graffiti of their next
//! proposals. Wire types are always built; [`KeymanagerClient`] needs feature `client`; the
//! devnet node serves the same endpoints for its own validators.

#[cfg(feature = "client")]
mod client;
mod types;

#[cfg(feature = "client")]
pub use client::KeymanagerClient;
pub use types::{
    GraffitiData, GraffitiResponse, KeystoreEntry, KeystoreList, MAX_GRAFFITI_BYTES,
    SetGraffitiRequest, graffiti_bytes,
};
