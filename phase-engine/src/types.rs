//! Primitive protocol types. Every index and amount is a newtype so that the compiler keeps
//! slots, provers, validators, AIRs and amounts apart.

use serde::{Deserialize, Serialize};

macro_rules! index_newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

index_newtype!(
    /// A beacon chain slot.
    Slot(u64)
);
index_newtype!(
    /// Index of a beacon chain validator (the proposer that includes protocol messages).
    ValidatorIndex(u64)
);
index_newtype!(
    /// Index of a registered prover in the prover registry.
    ProverIndex(u64)
);
index_newtype!(
    /// Index of an AIR instance (a partial proof, one segment) within a sub-block.
    AirIndex(u32)
);
index_newtype!(
    /// Index of a sub-block within a block (0 for a block that is not split).
    SubBlockIndex(u32)
);
index_newtype!(
    /// Retry attempt of a sub-block round: 0 for the first prover set, then 1..=max_retries.
    Attempt(u32)
);
index_newtype!(
    /// Milliseconds since the Unix epoch: the engine's notion of "now", always given by the caller.
    UnixMillis(u64)
);
index_newtype!(
    /// An amount of reward units; negative for penalties.
    Amount(i64)
);

/// A 32-byte root (block root, state root, trace root, digest).
pub type Root = alloy_primitives::B256;

/// The phases of a (sub-)block round, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Phase {
    /// Challenge commitment: selected provers commit to their trace roots (full proof optional).
    T1,
    /// Partial proofs: selected provers open their commitments (full proof optional).
    T2,
    /// Aggregation: any prover may submit a full proof reusing others' partials.
    T3,
    /// First fallback aggregation phase.
    T4,
    /// Second fallback aggregation phase; after it the round is retried with a new prover set.
    T5,
}

impl Phase {
    /// All phases in order.
    pub const ALL: [Phase; 5] = [Phase::T1, Phase::T2, Phase::T3, Phase::T4, Phase::T5];
}
