//! Beacon API primitives: quoted integers, 0x-hex byte strings, block and state identifiers.

use std::{fmt, str::FromStr};

use alloy_primitives::{B256, FixedBytes};
use serde::{Deserialize, Serialize};
use serde_with::{DisplayFromStr, PickFirst, Same, serde_as};

use crate::error::Error;

/// `serde_with` adapter for Beacon API integers: written as a quoted decimal string (`"42"`),
/// read from a quoted string or, tolerantly, from a bare JSON number.
pub type Quoted = PickFirst<(DisplayFromStr, Same)>;

/// A 32-byte root (block root, state root, RANDAO mix), `0x`-hex on the wire.
pub type Root = B256;
/// A 32-byte execution-layer hash, `0x`-hex on the wire.
pub type Hash32 = B256;
/// A 96-byte BLS signature, `0x`-hex on the wire.
pub type BlsSignature = FixedBytes<96>;
/// A 48-byte BLS public key, `0x`-hex on the wire.
pub type BlsPubkey = FixedBytes<48>;
/// A 4-byte fork version, `0x`-hex on the wire.
pub type ForkVersion = FixedBytes<4>;

macro_rules! quoted_u64_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[serde_as]
        #[derive(
            Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(#[serde_as(as = "Quoted")] pub u64);

        impl $name {
            /// Creates the value.
            pub const fn new(value: u64) -> Self {
                Self(value)
            }

            /// The underlying integer.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }

        impl From<$name> for u64 {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

quoted_u64_newtype!(
    /// A beacon-chain slot number (quoted decimal on the wire).
    Slot
);
quoted_u64_newtype!(
    /// A beacon-chain epoch number (quoted decimal on the wire).
    Epoch
);
quoted_u64_newtype!(
    /// A validator's index in the beacon-chain registry (quoted decimal on the wire).
    ValidatorIndex
);

impl Slot {
    /// The epoch this slot belongs to, for `slots_per_epoch` slots per epoch (0 is treated as 1).
    pub fn epoch(self, slots_per_epoch: u64) -> Epoch {
        Epoch(self.0 / slots_per_epoch.max(1))
    }
}

impl Epoch {
    /// The first slot of this epoch, saturating at `u64::MAX`.
    pub fn start_slot(self, slots_per_epoch: u64) -> Slot {
        Slot(self.0.saturating_mul(slots_per_epoch))
    }
}

/// The `{block_id}` path parameter of the Beacon API: `head`, `genesis`, `finalized`,
/// `justified`, a decimal slot, or a `0x`-prefixed block root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockId {
    /// The canonical head in the node's view.
    Head,
    /// The genesis block.
    Genesis,
    /// The latest finalized block.
    Finalized,
    /// The latest justified block.
    Justified,
    /// The canonical block at this slot.
    Slot(Slot),
    /// The block with this root.
    Root(Root),
}

/// The `{state_id}` path parameter of the Beacon API. It has the same forms as [`BlockId`]; a
/// root names a *state* root.
pub type StateId = BlockId;

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Head => f.write_str("head"),
            Self::Genesis => f.write_str("genesis"),
            Self::Finalized => f.write_str("finalized"),
            Self::Justified => f.write_str("justified"),
            Self::Slot(slot) => write!(f, "{slot}"),
            Self::Root(root) => write!(f, "{root}"),
        }
    }
}

impl FromStr for BlockId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "head" => Ok(Self::Head),
            "genesis" => Ok(Self::Genesis),
            "finalized" => Ok(Self::Finalized),
            "justified" => Ok(Self::Justified),
            _ if s.starts_with("0x") => s
                .parse::<Root>()
                .map(Self::Root)
                .map_err(|_| Error::InvalidId { input: s.to_owned() }),
            _ => s
                .parse::<u64>()
                .map(|n| Self::Slot(Slot(n)))
                .map_err(|_| Error::InvalidId { input: s.to_owned() }),
        }
    }
}

impl Serialize for BlockId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The consensus fork a response's data belongs to (the `version` field and the
/// `Eth-Consensus-Version` header). Unknown (future) fork names are kept as [`ForkName::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForkName {
    /// `phase0`.
    Phase0,
    /// `altair`.
    Altair,
    /// `bellatrix` (the Merge: execution payloads start here).
    Bellatrix,
    /// `capella`.
    Capella,
    /// `deneb`.
    Deneb,
    /// `electra`.
    Electra,
    /// `fulu`.
    Fulu,
    /// `gloas` (ePBS: the execution payload leaves the beacon block).
    Gloas,
    /// A fork this crate does not know by name.
    Other(String),
}

impl ForkName {
    /// The lower-case name used on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Phase0 => "phase0",
            Self::Altair => "altair",
            Self::Bellatrix => "bellatrix",
            Self::Capella => "capella",
            Self::Deneb => "deneb",
            Self::Electra => "electra",
            Self::Fulu => "fulu",
            Self::Gloas => "gloas",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for ForkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ForkName {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "phase0" => Self::Phase0,
            "altair" => Self::Altair,
            "bellatrix" => Self::Bellatrix,
            "capella" => Self::Capella,
            "deneb" => Self::Deneb,
            "electra" => Self::Electra,
            "fulu" => Self::Fulu,
            "gloas" => Self::Gloas,
            other => Self::Other(other.to_owned()),
        })
    }
}

impl Serialize for ForkName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ForkName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        let Ok(fork) = s.parse();
        Ok(fork)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_quoted_and_tolerates_numbers() {
        assert_eq!(serde_json::to_string(&Slot(10)).unwrap(), "\"10\"");
        assert_eq!(serde_json::from_str::<Slot>("\"10\"").unwrap(), Slot(10));
        assert_eq!(serde_json::from_str::<Slot>("10").unwrap(), Slot(10));
        assert!(serde_json::from_str::<Slot>("\"ten\"").is_err());
        assert!(serde_json::from_str::<Slot>("\"-1\"").is_err());
    }

    #[test]
    fn block_id_round_trips() {
        for s in [
            "head",
            "genesis",
            "finalized",
            "justified",
            "12345",
            "0xcf8e0d4e9587369b2301d0790347320302cc0943d5a1884560367e8208d920f2",
        ] {
            let id: BlockId = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
        }
        assert!(matches!("current".parse::<BlockId>(), Err(Error::InvalidId { .. })));
        assert!("0x12".parse::<BlockId>().is_err());
        assert!("-2".parse::<BlockId>().is_err());
    }

    #[test]
    fn fork_name_keeps_unknown_forks() {
        let f: ForkName = serde_json::from_str("\"heze\"").unwrap();
        assert_eq!(f, ForkName::Other("heze".into()));
        assert_eq!(serde_json::from_str::<ForkName>("\"electra\"").unwrap(), ForkName::Electra);
        assert_eq!(serde_json::to_string(&ForkName::Fulu).unwrap(), "\"fulu\"");
    }

    proptest::proptest! {
        #[test]
        fn quoted_and_ids_round_trip(n: u64, root: [u8; 32]) {
            let slot = Slot(n);
            let json = serde_json::to_string(&slot).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<Slot>(&json).unwrap(), slot);
            for id in [BlockId::Slot(slot), BlockId::Root(Root::from(root))] {
                proptest::prop_assert_eq!(id.to_string().parse::<BlockId>().unwrap(), id);
            }
        }

        #[test]
        fn block_id_parsing_never_panics(s in "\\PC{0,80}") {
            let _ = s.parse::<BlockId>();
        }
    }

    #[test]
    fn epoch_math() {
        assert_eq!(Slot(63).epoch(32), Epoch(1));
        assert_eq!(Slot(64).epoch(32), Epoch(2));
        assert_eq!(Epoch(2).start_slot(32), Slot(64));
        assert_eq!(Slot(5).epoch(0), Epoch(5));
    }
}
