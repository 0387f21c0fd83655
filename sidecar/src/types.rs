//! Small newtypes used across the node's modules.
//!
//! They mirror the protocol core's primitive types (`Slot`, `ProverIndex`, `Amount`, a 32-byte
//! root) so that the node's infrastructure can be built and tested before it is wired to the
//! protocol core; the wiring converts with `From`/`.0`.

use serde::{Deserialize, Serialize};

/// A 32-byte root: block roots key the rounds.
pub type Root = alloy_primitives::B256;

macro_rules! newtype {
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

newtype!(
    /// A beacon chain slot.
    Slot(u64)
);
newtype!(
    /// Index of a registered prover.
    ProverIndex(u64)
);
newtype!(
    /// An amount of reward units; negative for penalties.
    Amount(i64)
);
