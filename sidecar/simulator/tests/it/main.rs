//! Integration tests of the `sidecar-simulator` crate.

mod deviations;
mod simulate;
