//! Inclusion records: what the sidecar of a slot's proposer includes for that slot, and how the
//! proposer's block commits to it.
//!
//! * [`InclusionRecord`] (SSZ): the slot, the proposer, and for every valid protocol message the
//!   proposer's sidecar accepted that no earlier canonical record includes, the message's id (its
//!   signing root) and the time it arrived as that sidecar saw it, bounded below by the start of
//!   the message's round and above by the record's cut-off ([`record_cutoff`]: a fixed margin,
//!   `inclusion.cutoff_margin_ms`, before the slot starts). Entries are sorted by
//!   `(arrived_at, id)` and name each message once.
//! * [`RecordCommitment`]: the first [`COMMITMENT_BYTES`] bytes (168 bits) of the record's
//!   `hash_tree_root`, written into the proposer's block graffiti as ASCII:
//!   [`GRAFFITI_PREFIX`] (`pv1:`) followed by the 28 characters of the commitment in unpadded
//!   base64url (RFC 4648 §5), 32 bytes in all. Any other graffiti means "no record".
//! * [`build_record`]: the proposer side, from the candidates the caller gathered;
//!   [`InclusionRecord::check`]: the structural checks every receiver applies before it
//!   resolves the named messages.
//!
//! Everything here is pure: the caller supplies the slot start, the candidates and their times.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use ssz_types::{VariableList, typenum::U65536};
use tree_hash::TreeHash as _;
use tree_hash_derive::TreeHash;

use crate::config::InclusionParams;
use crate::error::{Error, Result};
use crate::types::{Root, Slot, UnixMillis, ValidatorIndex};

/// Maximum number of messages one record includes (2^16; a 20-sub-block block with 200 provers
/// per round sends about 16,000 messages).
pub type MaxIncludedMessages = U65536;
/// `MaxIncludedMessages` as a number.
pub const MAX_INCLUDED_MESSAGES: usize = 65_536;

/// One message a record includes.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    Encode,
    Decode,
    TreeHash,
)]
pub struct IncludedMessage {
    /// The message's signing root (its identity on the wire and in the store).
    pub id: Root,
    /// When the proposer's sidecar received it, clamped to `[round start, record cut-off]`.
    pub arrived_at: UnixMillis,
}

/// What a proposer's sidecar includes for its slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct InclusionRecord {
    /// The slot of the block that commits to the record.
    pub slot: Slot,
    /// The proposer of that block.
    pub proposer_index: ValidatorIndex,
    /// The included messages, sorted by `(arrived_at, id)`, each once.
    pub messages: VariableList<IncludedMessage, MaxIncludedMessages>,
}

/// The latest arrival time a record for the slot starting at `slot_start` may state: the
/// configured margin before the slot starts (the proposer's sidecar needs that time to build the
/// record and set the graffiti before the validator client asks for the block).
#[must_use]
pub fn record_cutoff(slot_start: UnixMillis, params: &InclusionParams) -> UnixMillis {
    UnixMillis(slot_start.0.saturating_sub(params.cutoff_margin_ms))
}

impl InclusionRecord {
    /// The record's `hash_tree_root`.
    #[must_use]
    pub fn root(&self) -> Root {
        self.tree_hash_root()
    }

    /// The graffiti that commits a block to this record.
    #[must_use]
    pub fn graffiti(&self) -> [u8; 32] {
        RecordCommitment::of(&self.root()).to_graffiti()
    }

    /// The structural checks of a received record: it is for `slot` and its proposer, its
    /// entries are sorted by `(arrived_at, id)` with no message named twice, and no time is
    /// after `cutoff`. (Whether each message exists, is valid, is not included by an earlier
    /// record and arrived after its round started is checked once the messages are resolved.)
    ///
    /// # Errors
    /// [`Error::InvalidRecord`] naming the first fault.
    pub fn check(&self, slot: Slot, proposer: ValidatorIndex, cutoff: UnixMillis) -> Result<()> {
        let fault = |reason: &'static str| Err(Error::InvalidRecord { slot: self.slot, reason });
        if self.slot != slot {
            return fault("the record is for another slot");
        }
        if self.proposer_index != proposer {
            return fault("the record names another proposer");
        }
        let mut seen = std::collections::HashSet::with_capacity(self.messages.len());
        let mut previous: Option<&IncludedMessage> = None;
        for m in self.messages.iter() {
            if m.arrived_at > cutoff {
                return fault("a message time is after the record's cut-off");
            }
            if previous.is_some_and(|p| (p.arrived_at, p.id) >= (m.arrived_at, m.id)) {
                return fault("the messages are not sorted by (arrived_at, id)");
            }
            if !seen.insert(m.id) {
                return fault("a message is named twice");
            }
            previous = Some(m);
        }
        Ok(())
    }
}

/// A message the proposer's sidecar may include: valid, accepted, and not included by an
/// earlier canonical record (the caller's filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InclusionCandidate {
    /// The message's signing root.
    pub id: Root,
    /// The start of the message's round (attempt start).
    pub round_start: UnixMillis,
    /// When this sidecar received it.
    pub arrived_at: UnixMillis,
}

/// Builds the record of `slot`: every candidate that arrived by `cutoff`, at its arrival time
/// raised to its round's start, sorted by `(arrived_at, id)`, each id once (the earliest time
/// wins). Candidates that arrived after the cut-off are left for a later record; beyond
/// [`MAX_INCLUDED_MESSAGES`] the latest are left out too.
#[must_use]
pub fn build_record(
    slot: Slot,
    proposer_index: ValidatorIndex,
    cutoff: UnixMillis,
    candidates: impl IntoIterator<Item = InclusionCandidate>,
) -> InclusionRecord {
    let mut entries: Vec<IncludedMessage> = candidates
        .into_iter()
        .filter(|c| c.arrived_at <= cutoff)
        .map(|c| IncludedMessage {
            id: c.id,
            arrived_at: c.arrived_at.max(c.round_start).min(cutoff),
        })
        .collect();
    entries.sort_unstable_by_key(|m| (m.id, m.arrived_at));
    entries.dedup_by_key(|m| m.id);
    entries.sort_unstable_by_key(|m| (m.arrived_at, m.id));
    entries.truncate(MAX_INCLUDED_MESSAGES);
    InclusionRecord {
        slot,
        proposer_index,
        // At most MAX_INCLUDED_MESSAGES entries after the truncation.
        messages: VariableList::new(entries).unwrap_or_default(),
    }
}

/// The ASCII prefix of a graffiti that commits to a record (version 1 of the encoding).
pub const GRAFFITI_PREFIX: &[u8; 4] = b"pv1:";
/// Bytes of the record root a graffiti carries (168 bits).
pub const COMMITMENT_BYTES: usize = 21;

/// The part of a record root a block's graffiti commits to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordCommitment(pub [u8; COMMITMENT_BYTES]);

impl RecordCommitment {
    /// The commitment to the record with this root.
    #[must_use]
    pub fn of(root: &Root) -> Self {
        let mut bytes = [0u8; COMMITMENT_BYTES];
        bytes.copy_from_slice(root.get(..COMMITMENT_BYTES).unwrap_or(&[0; COMMITMENT_BYTES]));
        Self(bytes)
    }

    /// Whether the record with this root is the one committed to.
    #[must_use]
    pub fn matches(&self, root: &Root) -> bool {
        root.get(..COMMITMENT_BYTES) == Some(&self.0[..])
    }

    /// The 32-byte graffiti: `pv1:` and 28 base64url characters.
    #[must_use]
    pub fn to_graffiti(&self) -> [u8; 32] {
        let mut graffiti = [0u8; 32];
        let (prefix, rest) = graffiti.split_at_mut(GRAFFITI_PREFIX.len());
        prefix.copy_from_slice(GRAFFITI_PREFIX);
        // 21 bytes are exactly 28 base64 characters, which is what `rest` holds.
        let _ = URL_SAFE_NO_PAD.encode_slice(self.0, rest);
        graffiti
    }

    /// The commitment a block's graffiti makes, if it makes one: `pv1:` followed by 28
    /// base64url characters that decode to 21 bytes. Anything else is `None`.
    #[must_use]
    pub fn from_graffiti(graffiti: &[u8; 32]) -> Option<Self> {
        let rest = graffiti.strip_prefix(GRAFFITI_PREFIX.as_slice())?;
        let mut bytes = [0u8; COMMITMENT_BYTES];
        let n = URL_SAFE_NO_PAD.decode_slice(rest, &mut bytes).ok()?;
        (n == COMMITMENT_BYTES && Self(bytes).to_graffiti() == *graffiti).then_some(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> InclusionParams {
        InclusionParams::default()
    }

    fn candidate(id: u8, round_start: u64, arrived_at: u64) -> InclusionCandidate {
        InclusionCandidate {
            id: Root::repeat_byte(id),
            round_start: UnixMillis(round_start),
            arrived_at: UnixMillis(arrived_at),
        }
    }

    #[test]
    fn the_record_keeps_what_arrived_by_the_cutoff_at_bounded_times() {
        let cutoff = record_cutoff(UnixMillis(24_000), &params());
        assert_eq!(cutoff, UnixMillis(24_000 - params().cutoff_margin_ms));
        let record = build_record(
            Slot(2),
            ValidatorIndex(5),
            cutoff,
            [
                candidate(3, 12_000, 14_000),
                candidate(1, 12_000, 11_000), // before its round started: raised to 12,000
                candidate(2, 12_000, cutoff.0 + 1), // after the cut-off: left for later
                candidate(3, 12_000, 13_000), // the same message seen twice: earliest wins
                candidate(4, 12_000, 14_000),
            ],
        );
        let got: Vec<(u8, u64)> =
            record.messages.iter().map(|m| (m.id.0[0], m.arrived_at.0)).collect();
        assert_eq!(got, [(1, 12_000), (3, 13_000), (4, 14_000)]);
        record.check(Slot(2), ValidatorIndex(5), cutoff).unwrap();
    }

    #[test]
    fn check_names_each_fault() {
        let cutoff = UnixMillis(10_000);
        let good = build_record(Slot(1), ValidatorIndex(0), cutoff, [candidate(1, 0, 5)]);
        let fault = |r: &InclusionRecord, slot, proposer| match r.check(slot, proposer, cutoff) {
            Err(Error::InvalidRecord { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(fault(&good, Slot(2), ValidatorIndex(0)).contains("another slot"));
        assert!(fault(&good, Slot(1), ValidatorIndex(1)).contains("another proposer"));
        let with = |entries: Vec<(u8, u64)>| InclusionRecord {
            slot: Slot(1),
            proposer_index: ValidatorIndex(0),
            messages: VariableList::new(
                entries
                    .into_iter()
                    .map(|(id, t)| IncludedMessage {
                        id: Root::repeat_byte(id),
                        arrived_at: UnixMillis(t),
                    })
                    .collect(),
            )
            .unwrap(),
        };
        let s = Slot(1);
        let v = ValidatorIndex(0);
        assert!(fault(&with(vec![(1, 10_001)]), s, v).contains("cut-off"));
        assert!(fault(&with(vec![(2, 5), (1, 5)]), s, v).contains("sorted"));
        assert!(fault(&with(vec![(1, 6), (1, 5)]), s, v).contains("sorted"));
        assert!(fault(&with(vec![(1, 5), (1, 6)]), s, v).contains("twice"));
        with(vec![(2, 5), (1, 6)]).check(s, v, cutoff).unwrap();
    }

    #[test]
    fn graffiti_round_trips_and_rejects_everything_else() {
        let record = build_record(Slot(7), ValidatorIndex(3), UnixMillis(1), []);
        let graffiti = record.graffiti();
        assert!(graffiti.is_ascii());
        assert!(graffiti.starts_with(b"pv1:"));
        let commitment = RecordCommitment::from_graffiti(&graffiti).unwrap();
        assert!(commitment.matches(&record.root()));
        assert!(!commitment.matches(&Root::repeat_byte(1)));
        let mut other = [b' '; 32];
        assert_eq!(RecordCommitment::from_graffiti(&other), None);
        other[..4].copy_from_slice(b"pv1:");
        assert_eq!(RecordCommitment::from_graffiti(&other), None);
        let mut zeros = graffiti;
        zeros[31] = 0;
        assert_eq!(RecordCommitment::from_graffiti(&zeros), None);
        let mut v2 = graffiti;
        v2[2] = b'2';
        assert_eq!(RecordCommitment::from_graffiti(&v2), None);
    }

    /// Golden vector: the SSZ encoding, the root and the graffiti of a fixed record. A change
    /// here is a change of the wire format and of every block commitment.
    #[test]
    fn golden_record() {
        use ssz::Encode as _;
        let record = InclusionRecord {
            slot: Slot(9),
            proposer_index: ValidatorIndex(4),
            messages: VariableList::new(vec![
                IncludedMessage { id: Root::repeat_byte(0xaa), arrived_at: UnixMillis(1_000) },
                IncludedMessage { id: Root::repeat_byte(0xbb), arrived_at: UnixMillis(2_000) },
            ])
            .unwrap(),
        };
        let ssz = record.as_ssz_bytes();
        assert_eq!(ssz.len(), 8 + 8 + 4 + 2 * 40);
        assert_eq!(
            hex::encode(&ssz[..20]),
            "0900000000000000040000000000000014000000",
            "slot, proposer, offset of the list"
        );
        assert_eq!(InclusionRecord::from_ssz_bytes_checked(&ssz), Some(record.clone()));
        assert_eq!(hex::encode(record.root()), GOLDEN_ROOT);
        assert_eq!(std::str::from_utf8(&record.graffiti()).unwrap(), GOLDEN_GRAFFITI);
    }

    /// Computed independently of `tree_hash` (a few lines of Python `hashlib` merkleization).
    const GOLDEN_ROOT: &str = "6a984e550c216cee67ce5222397310bb498ed389b24f212f3ec96ad500a0b2cd";
    const GOLDEN_GRAFFITI: &str = "pv1:aphOVQwhbO5nzlIiOXMQu0mO04my";

    impl InclusionRecord {
        fn from_ssz_bytes_checked(bytes: &[u8]) -> Option<Self> {
            <Self as ssz::Decode>::from_ssz_bytes(bytes).ok()
        }
    }
}
