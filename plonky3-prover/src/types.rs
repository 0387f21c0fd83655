//! Byte-level types that cross the crate boundary.

use core::fmt;

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::config::Val;
use crate::error::{Error, Result};

/// Implements hex `Debug`/`Display`, `AsRef<[u8]>`, and serde for a fixed-size byte newtype:
/// `0x`-prefixed hex in human-readable formats (JSON, TOML), raw bytes in binary formats.
macro_rules! byte_newtype {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length of the value in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x{})", stringify!($name), hex::encode(self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_string())
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    let hex_str = s.strip_prefix("0x").unwrap_or(&s);
                    let mut out = [0u8; $len];
                    hex::decode_to_slice(hex_str, &mut out).map_err(serde::de::Error::custom)?;
                    Ok(Self(out))
                } else {
                    d.deserialize_bytes(FixedBytesVisitor::<$len>).map(Self)
                }
            }
        }
    };
}

/// Serde visitor for exactly `N` raw bytes.
struct FixedBytesVisitor<const N: usize>;

impl<'de, const N: usize> serde::de::Visitor<'de> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> core::result::Result<[u8; N], E> {
        <[u8; N]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
    }
}

byte_newtype!(
    /// The T1 commitment of one AIR instance: the Merkle root (Poseidon2 over KoalaBear, 8 field
    /// elements, each as 4 little-endian bytes) of the low-degree extension of its trace. Equal to
    /// the trace commitment inside the later partial proof.
    TraceRoot,
    32
);
byte_newtype!(
    /// A 32-byte digest naming the block (or round) a proof is for, e.g. the beacon block root.
    RoundDigest,
    32
);
byte_newtype!(
    /// SHA-256 digest of a sub-block's input: the previous sub-block's output state and the
    /// transactions' bytes (see [`input_digest`](crate::input_digest)).
    InputDigest,
    32
);
byte_newtype!(
    /// SHA-256 digest of an author's 48-byte BLS public key, carried in every partial proof's
    /// public values.
    KeyDigest,
    32
);
byte_newtype!(
    /// A proof author's BLS public key, 48 bytes compressed (not validated here: only its bytes are
    /// bound into proofs).
    AuthorKey,
    48
);
byte_newtype!(
    /// SHA-256 Merkle root over the encoded parts of a full proof.
    PartsRoot,
    32
);

impl AuthorKey {
    /// The key digest bound into proofs: `sha256(pubkey)`.
    #[must_use]
    pub fn digest(&self) -> KeyDigest {
        KeyDigest(Sha256::digest(self.0).into())
    }
}

impl TraceRoot {
    /// Encodes a Poseidon2 digest of 8 KoalaBear elements (canonical, little-endian `u32`s).
    pub(crate) fn from_fields(fields: &[Val; 8]) -> Self {
        let mut out = [0u8; 32];
        for (chunk, f) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&f.as_canonical_u32().to_le_bytes());
        }
        Self(out)
    }
}

/// Number of field elements in a [`ChainState`].
pub const STATE_WIDTH: usize = 8;

/// A state of the segment chain: 8 KoalaBear elements, each as a canonical little-endian `u32`.
///
/// Constructed only through [`ChainState::from_bytes`] (which rejects non-canonical elements) or
/// by this crate, so every value is a valid field vector.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainState([u8; 32]);

impl ChainState {
    /// The all-zero state: the default state before a block's first sub-block.
    pub const ZERO: Self = Self([0u8; 32]);

    /// Parses 32 bytes, rejecting an element that is not below the KoalaBear modulus.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self> {
        for chunk in bytes.chunks_exact(4) {
            let v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if v >= Val::ORDER_U32 {
                return Err(Error::NonCanonicalState);
            }
        }
        Ok(Self(bytes))
    }

    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derives a state from a 32-byte digest: each little-endian `u32` limb reduced modulo the
    /// KoalaBear prime.
    #[must_use]
    pub fn from_digest(digest: &[u8; 32]) -> Self {
        let mut fields = [Val::ZERO; STATE_WIDTH];
        for (f, chunk) in fields.iter_mut().zip(digest.chunks_exact(4)) {
            *f = Val::from_u32(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        Self::from_fields(&fields)
    }

    pub(crate) fn to_fields(self) -> [Val; STATE_WIDTH] {
        let mut out = [Val::ZERO; STATE_WIDTH];
        for (f, chunk) in out.iter_mut().zip(self.0.chunks_exact(4)) {
            *f = Val::from_u32(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        out
    }

    pub(crate) fn from_fields(fields: &[Val; STATE_WIDTH]) -> Self {
        let mut out = [0u8; 32];
        for (chunk, f) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&f.as_canonical_u32().to_le_bytes());
        }
        Self(out)
    }
}

impl fmt::Debug for ChainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainState(0x{})", hex::encode(self.0))
    }
}

impl fmt::Display for ChainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl Serialize for ChainState {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_string())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ChainState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let bytes = if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            let hex_str = s.strip_prefix("0x").unwrap_or(&s);
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_str, &mut out).map_err(serde::de::Error::custom)?;
            out
        } else {
            d.deserialize_bytes(FixedBytesVisitor::<32>)?
        };
        Self::from_bytes(bytes).map_err(serde::de::Error::custom)
    }
}

/// Index of a sub-block within its block (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubBlockIndex(pub u32);

/// Index of an AIR instance (segment) within its sub-block (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AirIndex(pub u32);

/// An amount of execution gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Gas(pub u64);

/// The public statement of one AIR instance (segment): everything a verifier must agree on,
/// except the author key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SegmentSpec {
    /// The block or round this proof is for.
    pub round_digest: RoundDigest,
    /// The sub-block this segment belongs to.
    pub sub_block_index: SubBlockIndex,
    /// The AIR index of this segment within the sub-block.
    pub air_index: AirIndex,
    /// `log2` of the trace height; the chain runs `2^log_rows - 1` rounds.
    pub log_rows: u8,
    /// Chain state at the first row.
    pub start_state: ChainState,
    /// Chain state at the last row.
    pub end_state: ChainState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_state_rejects_non_canonical() {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&Val::ORDER_U32.to_le_bytes());
        assert!(matches!(ChainState::from_bytes(b), Err(Error::NonCanonicalState)));
        b[..4].copy_from_slice(&(Val::ORDER_U32 - 1).to_le_bytes());
        assert!(ChainState::from_bytes(b).is_ok());
    }

    #[test]
    fn byte_types_roundtrip_json_and_postcard() {
        let key = AuthorKey([7u8; 48]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"0x{}\"", "07".repeat(48)));
        assert_eq!(serde_json::from_str::<AuthorKey>(&json).unwrap(), key);
        let bin = postcard::to_allocvec(&key).unwrap();
        assert_eq!(postcard::from_bytes::<AuthorKey>(&bin).unwrap(), key);
        let state = ChainState::from_digest(&[0xff; 32]);
        let bin = postcard::to_allocvec(&state).unwrap();
        assert_eq!(postcard::from_bytes::<ChainState>(&bin).unwrap(), state);
    }
}
