//! Primitive protocol types. Every index and amount is a newtype so that the compiler keeps
//! slots, provers, validators, AIRs and amounts apart.

use serde::{Deserialize, Serialize};

macro_rules! index_newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        ///
        /// JSON is a quoted decimal string (Beacon API convention); a bare JSON number is
        /// accepted on input. Compact (non-human-readable) formats hold the plain integer. SSZ and `hash_tree_root` are those of a `uint64`/`uint32`.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                // A plain integer in compact formats (checkpoints), which cannot read "quoted
                // or not".
                if serializer.is_human_readable() {
                    serializer.collect_str(&self.0)
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    quoted::deserialize::<D, $inner>(deserializer).map(Self)
                } else {
                    <$inner>::deserialize(deserializer).map(Self)
                }
            }
        }


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

macro_rules! ssz_newtype {
    ($name:ident, $ssz:ty, $to:expr, $from:expr) => {
        impl ssz::Encode for $name {
            fn is_ssz_fixed_len() -> bool {
                true
            }
            fn ssz_fixed_len() -> usize {
                <$ssz as ssz::Encode>::ssz_fixed_len()
            }
            fn ssz_append(&self, buf: &mut Vec<u8>) {
                $to(self.0).ssz_append(buf)
            }
            fn ssz_bytes_len(&self) -> usize {
                $to(self.0).ssz_bytes_len()
            }
        }

        impl ssz::Decode for $name {
            fn is_ssz_fixed_len() -> bool {
                true
            }
            fn ssz_fixed_len() -> usize {
                <$ssz as ssz::Decode>::ssz_fixed_len()
            }
            fn from_ssz_bytes(bytes: &[u8]) -> Result<Self, ssz::DecodeError> {
                <$ssz as ssz::Decode>::from_ssz_bytes(bytes).map(|v| Self($from(v)))
            }
        }

        impl tree_hash::TreeHash for $name {
            fn tree_hash_type() -> tree_hash::TreeHashType {
                <$ssz as tree_hash::TreeHash>::tree_hash_type()
            }
            fn tree_hash_packed_encoding(&self) -> tree_hash::PackedEncoding {
                $to(self.0).tree_hash_packed_encoding()
            }
            fn tree_hash_packing_factor() -> usize {
                <$ssz as tree_hash::TreeHash>::tree_hash_packing_factor()
            }
            fn tree_hash_root(&self) -> tree_hash::Hash256 {
                $to(self.0).tree_hash_root()
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

fn same<T>(v: T) -> T {
    v
}

ssz_newtype!(Slot, u64, same, same);
ssz_newtype!(ValidatorIndex, u64, same, same);
ssz_newtype!(ProverIndex, u64, same, same);
ssz_newtype!(AirIndex, u32, same, same);
ssz_newtype!(SubBlockIndex, u32, same, same);
ssz_newtype!(Attempt, u32, same, same);
ssz_newtype!(UnixMillis, u64, same, same);
// An amount is an SSZ `uint64` holding the two's-complement bit pattern of the signed value.
ssz_newtype!(Amount, u64, i64::cast_unsigned, u64::cast_signed);

/// Quoted-integer JSON (Beacon API): accepts `"123"` and `123`.
mod quoted {
    use std::{fmt, marker::PhantomData, str::FromStr};

    use serde::de::{self, Visitor};

    pub(super) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: FromStr + TryFrom<u64> + TryFrom<i64>,
    {
        struct V<T>(PhantomData<T>);
        impl<T: FromStr + TryFrom<u64> + TryFrom<i64>> Visitor<'_> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal integer, quoted or not")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
                v.parse().map_err(|_| E::custom(format_args!("invalid integer {v:?}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::custom(format_args!("integer {v} out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
                T::try_from(v).map_err(|_| E::custom(format_args!("integer {v} out of range")))
            }
        }
        deserializer.deserialize_any(V(PhantomData))
    }
}

/// A 32-byte root (block root, state root, trace root, digest).
pub type Root = alloy_primitives::B256;

/// The phases of a (sub-)block round, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[repr(u8)]
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

impl Phase {
    /// The phase after this one, `None` after T5.
    pub fn next(self) -> Option<Phase> {
        match self {
            Phase::T1 => Some(Phase::T2),
            Phase::T2 => Some(Phase::T3),
            Phase::T3 => Some(Phase::T4),
            Phase::T4 => Some(Phase::T5),
            Phase::T5 => None,
        }
    }

    /// Zero-based position (T1 = 0).
    pub fn ordinal(self) -> usize {
        self as usize
    }
}

impl TryFrom<u8> for Phase {
    type Error = u8;

    /// `0` is T1 .. `4` is T5; anything else is returned as the error.
    fn try_from(value: u8) -> Result<Self, u8> {
        Phase::ALL.get(usize::from(value)).copied().ok_or(value)
    }
}

/// SSZ: a `uint8` (T1 = 0 .. T5 = 4).
impl ssz::Encode for Phase {
    fn is_ssz_fixed_len() -> bool {
        true
    }
    fn ssz_fixed_len() -> usize {
        1
    }
    fn ssz_append(&self, buf: &mut Vec<u8>) {
        buf.push(*self as u8)
    }
    fn ssz_bytes_len(&self) -> usize {
        1
    }
}

impl ssz::Decode for Phase {
    fn is_ssz_fixed_len() -> bool {
        true
    }
    fn ssz_fixed_len() -> usize {
        1
    }
    fn from_ssz_bytes(bytes: &[u8]) -> Result<Self, ssz::DecodeError> {
        let byte = <u8 as ssz::Decode>::from_ssz_bytes(bytes)?;
        Phase::try_from(byte)
            .map_err(|b| ssz::DecodeError::BytesInvalid(format!("invalid phase {b}")))
    }
}

/// `hash_tree_root` of the `uint8`.
impl tree_hash::TreeHash for Phase {
    fn tree_hash_type() -> tree_hash::TreeHashType {
        <u8 as tree_hash::TreeHash>::tree_hash_type()
    }
    fn tree_hash_packed_encoding(&self) -> tree_hash::PackedEncoding {
        (*self as u8).tree_hash_packed_encoding()
    }
    fn tree_hash_packing_factor() -> usize {
        <u8 as tree_hash::TreeHash>::tree_hash_packing_factor()
    }
    fn tree_hash_root(&self) -> tree_hash::Hash256 {
        (*self as u8).tree_hash_root()
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::T1 => "T1",
            Phase::T2 => "T2",
            Phase::T3 => "T3",
            Phase::T4 => "T4",
            Phase::T5 => "T5",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_json_round_trip() {
        let s = serde_json::to_string(&ProverIndex(42)).unwrap();
        assert_eq!(s, "\"42\"");
        assert_eq!(serde_json::from_str::<ProverIndex>("\"42\"").unwrap(), ProverIndex(42));
        assert_eq!(serde_json::from_str::<ProverIndex>("42").unwrap(), ProverIndex(42));
        assert_eq!(serde_json::from_str::<Amount>("\"-3\"").unwrap(), Amount(-3));
        assert!(serde_json::from_str::<AirIndex>("\"4294967296\"").is_err());
        assert!(serde_json::from_str::<Slot>("\"x\"").is_err());
    }

    #[test]
    fn phase_ssz() {
        use ssz::{Decode, Encode};
        assert_eq!(Phase::T3.as_ssz_bytes(), vec![2]);
        assert_eq!(Phase::from_ssz_bytes(&[4]).unwrap(), Phase::T5);
        assert!(Phase::from_ssz_bytes(&[5]).is_err());
    }

    #[test]
    fn ssz_of_newtype_is_inner() {
        use ssz::{Decode, Encode};
        use tree_hash::TreeHash;
        let v = Slot(0x0102);
        assert_eq!(v.as_ssz_bytes(), 0x0102u64.as_ssz_bytes());
        assert_eq!(Slot::from_ssz_bytes(&v.as_ssz_bytes()).unwrap(), v);
        assert_eq!(v.tree_hash_root(), 0x0102u64.tree_hash_root());
    }
}
