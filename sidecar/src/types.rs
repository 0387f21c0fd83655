//! The protocol core's primitive types, used across the node's modules (slot clock, store,
//! metrics) so that no conversion is needed at the seams.

pub use phase_engine::{Amount, ProverIndex, Root, Slot};
