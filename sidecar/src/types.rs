//! The protocol core's primitive types, used across the node's modules (slot clock, store,
//! metrics) so that no conversion is needed at the seams.

pub use phase_engine::{Amount, ProverIndex, Root, Slot};

/// The signing context of the chain whose genesis is `genesis` (fork version and
/// `genesis_validators_root`): what every sidecar and prover of that chain signs under.
pub fn signing_context(genesis: &beacon_api::GenesisData) -> phase_engine::SigningContext {
    phase_engine::SigningContext {
        fork_version: genesis.genesis_fork_version.0,
        genesis_validators_root: genesis.genesis_validators_root,
    }
}
