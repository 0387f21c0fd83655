//! Integration tests of the `sidecar-node` crate.

mod store;
