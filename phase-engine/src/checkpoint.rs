//! Checkpoints: the whole state of an [`Engine`](crate::Engine) or a
//! [`CanonicalRounds`](crate::CanonicalRounds) as bytes, restored exactly, so that a restart
//! loads the latest checkpoint and replays only the inputs after it.
//!
//! The encoding is one version byte ([`CHECKPOINT_VERSION`]) followed by the state in
//! `postcard` (compact varints, no field names). Postcard is not self-describing, so the types
//! whose JSON form is a quoted decimal (the index newtypes, `u64` amounts) serialise as plain
//! integers in non-human-readable formats: their JSON is unchanged. Hash maps and sets are
//! written in key order, so equal states give equal bytes.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use crate::error::{Error, Result};

/// The format of checkpoints this build writes and reads (the first byte of every checkpoint).
pub const CHECKPOINT_VERSION: u8 = 1;

/// `value` as a checkpoint: the version byte, then its postcard encoding.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_extend(value, vec![CHECKPOINT_VERSION])
        .map_err(|e| Error::InvalidCheckpoint { reason: e.to_string() })
}

/// The value of a checkpoint made by [`encode`]: the version must be [`CHECKPOINT_VERSION`] and
/// every byte must be used.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let Some((&version, body)) = bytes.split_first() else {
        return Err(Error::InvalidCheckpoint { reason: "empty".into() });
    };
    if version != CHECKPOINT_VERSION {
        return Err(Error::CheckpointVersion { got: version, expected: CHECKPOINT_VERSION });
    }
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|e| Error::InvalidCheckpoint { reason: e.to_string() })?;
    if !rest.is_empty() {
        return Err(Error::InvalidCheckpoint { reason: format!("{} trailing bytes", rest.len()) });
    }
    Ok(value)
}

/// `with` modules for integers whose JSON is a quoted decimal (`ethereum_serde_utils`, which
/// reads with `deserialize_any`): the same in human-readable formats, a plain integer in the
/// others (postcard).
macro_rules! quoted_int {
    ($name:ident, $t:ty, $quoted:ident) => {
        pub(crate) mod $name {
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            pub(crate) fn serialize<S: Serializer>(
                value: &$t,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serde_utils::$quoted::serialize(value, serializer)
                } else {
                    value.serialize(serializer)
                }
            }

            pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<$t, D::Error> {
                if deserializer.is_human_readable() {
                    serde_utils::$quoted::deserialize(deserializer)
                } else {
                    <$t>::deserialize(deserializer)
                }
            }
        }
    };
}

quoted_int!(quoted_u8, u8, quoted_u8);
quoted_int!(quoted_u32, u32, quoted_u32);
quoted_int!(quoted_u64, u64, quoted_u64);

/// `deserialize_with` for the `&'static str` texts of an [`Error`] (a reason, a config key):
/// the text read is leaked to give it the static lifetime. Only errors inside a restored state
/// are read (those of [`CanonicalAction`](crate::CanonicalAction)s not polled before the
/// checkpoint, usually none), a few bytes each, once per restore.
pub(crate) fn static_str<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<&'static str, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(Box::leak(text.into_boxed_str()))
}

/// `serialize_with` for a hash map: its entries in key order (it deserialises as usual).
pub(crate) fn sorted_map<K, V, S>(
    map: &HashMap<K, V>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error>
where
    K: Ord + Hash + Serialize,
    V: Serialize,
    S: Serializer,
{
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    serializer.collect_map(entries)
}

/// `serialize_with` for a hash set: its items in order (it deserialises as usual).
pub(crate) fn sorted_set<T, S>(
    set: &HashSet<T>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error>
where
    T: Ord + Hash + Serialize,
    S: Serializer,
{
    let mut items: Vec<&T> = set.iter().collect();
    items.sort_unstable();
    serializer.collect_seq(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        BlsSignature, Decline, ProtocolMessage, RoundRef, SignedDecline, Slot, SubBlockIndex,
        types::{Attempt, ProverIndex, Root},
    };

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
        let bytes = encode(value).unwrap();
        let back =
            decode::<T>(&bytes).unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()));
        assert_eq!(&back, value);
    }

    #[test]
    fn wire_types_round_trip() {
        let round = RoundRef {
            slot: Slot(7),
            block_root: Root::from([3u8; 32]),
            sub_block: SubBlockIndex(1),
            attempt: Attempt(2),
        };
        let decline = SignedDecline {
            message: Decline { round, prover: ProverIndex(5) },
            signature: BlsSignature::ZERO,
        };
        round_trip(&decline);
        round_trip(&ProtocolMessage::Decline(decline));
        round_trip(&Error::InvalidRecord { slot: Slot(2), reason: "a reason" });
    }
}
