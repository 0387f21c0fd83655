//! Integration tests of the `sidecar-simulator` crate.

mod simulate;
