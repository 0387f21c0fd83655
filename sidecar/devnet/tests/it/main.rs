//! Integration tests of the `sidecar-devnet` crate.

mod devnet;
