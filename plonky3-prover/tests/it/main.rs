//! Integration tests of `plonky3-prover`: partial proofs, full proofs, AggProofs, encodings,
//! fixtures.

mod common;
mod decode;
mod fixtures;
mod full;
mod partial;
