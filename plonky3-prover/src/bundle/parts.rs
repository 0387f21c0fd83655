//! The parts of a full proof ([`ProofPart`]: a partial or a batch proof), the Merkle root over
//! their encodings ([`parts_root`]) and the digest that names one encoding ([`PartDigest`]).

use sha2::{Digest, Sha256};

use crate::batch::BatchPartialProof;
use crate::error::Result;
use crate::partial::{Kind, PartialProof};
use crate::types::{AirIndex, AuthorKey, PartsRoot, SegmentSpec, TraceRoot};

/// SHA-256 Merkle root over encoded parts: leaf `sha256(0x00 || bytes)`, node
/// `sha256(0x01 || left || right)`, an odd last node is carried up unchanged.
#[must_use]
pub fn parts_root<B: AsRef<[u8]>>(parts: &[B]) -> PartsRoot {
    let mut level: Vec<[u8; 32]> = parts
        .iter()
        .map(|p| {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(p.as_ref());
            h.finalize().into()
        })
        .collect();
    if level.is_empty() {
        return PartsRoot(Sha256::digest([0u8]).into());
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    PartsRoot(level[0])
}

/// The SHA-256 digest of a part's encoding: what a verifier remembers of a partial proof it has
/// verified against a sub-block's plan, so that the same bytes met again inside a full proof or
/// an AggProof of that sub-block need not be verified again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartDigest(pub [u8; 32]);

impl PartDigest {
    /// The digest of `bytes` (a [`PartialProof`] or [`BatchPartialProof`] encoding).
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
}

/// One part of a full proof: a partial proof of one AIR, or a batch proof of several AIRs by one
/// author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofPart {
    /// One AIR.
    Partial(PartialProof),
    /// Several AIRs in one `p3-batch-stark` proof.
    Batch(BatchPartialProof),
}

impl From<PartialProof> for ProofPart {
    fn from(p: PartialProof) -> Self {
        Self::Partial(p)
    }
}

impl From<BatchPartialProof> for ProofPart {
    fn from(p: BatchPartialProof) -> Self {
        Self::Batch(p)
    }
}

impl ProofPart {
    /// Decodes either kind, by the kind byte. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes.get(1) {
            Some(k) if *k == Kind::Batch as u8 => {
                BatchPartialProof::from_bytes(bytes).map(Self::Batch)
            }
            _ => PartialProof::from_bytes(bytes).map(Self::Partial),
        }
    }

    /// The encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Partial(p) => p.as_bytes(),
            Self::Batch(b) => b.as_bytes(),
        }
    }

    /// The segments proven.
    #[must_use]
    pub fn statements(&self) -> &[SegmentSpec] {
        match self {
            Self::Partial(p) => core::slice::from_ref(p.statement()),
            Self::Batch(b) => b.statements(),
        }
    }

    /// The author.
    #[must_use]
    pub fn author(&self) -> &AuthorKey {
        match self {
            Self::Partial(p) => p.author(),
            Self::Batch(b) => b.author(),
        }
    }

    /// The trace commitment (joint for a batch).
    #[must_use]
    pub fn trace_root(&self) -> TraceRoot {
        match self {
            Self::Partial(p) => p.trace_root(),
            Self::Batch(b) => b.trace_root(),
        }
    }

    pub(super) fn first_air(&self) -> AirIndex {
        self.statements().first().map_or(AirIndex(u32::MAX), |s| s.air_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_root_is_order_sensitive_and_handles_odd_counts() {
        let r1 = parts_root(&[b"a".as_slice(), b"b", b"c"]);
        let r2 = parts_root(&[b"b".as_slice(), b"a", b"c"]);
        assert_ne!(r1, r2);
        assert_ne!(parts_root(&[b"a".as_slice()]), parts_root(&[b"a".as_slice(), b"a"]));
    }
}
