//! Integration tests of the `sidecar-prover` crate.

mod prover;
