//! Modelled proofs: what stands in for a STARK when proving is modelled by latencies.
//!
//! The engine never looks inside proof bytes; it asks its caller to verify them (an action) and
//! takes the verdict as an input. In modelled mode the simulator is that verifier. A modelled
//! proof names its author (as a real proof carries the author's key digest among its public
//! values), so a proof resubmitted under another prover's name fails exactly as a real one does;
//! and it is valid only if its author really "proved" it on the honest path, which the
//! simulator records in a [`ProofLedger`].

use rustc_hash::FxHashSet;

use phase_engine::{
    AirCommitment, AirIndex, BlsSignature, Commitment, FullProof, FullProofBody, PartRef,
    PartialProof, ProtocolMessage, ProverIndex, ReuseBloom, Root, RoundKey, RoundRef,
    SignedCommitment, SignedFullProof, SignedPartialProof,
};
use sha2::{Digest, Sha256};

const PARTIAL_TAG: &[u8; 4] = b"SIMP";
const FULL_TAG: &[u8; 4] = b"SIMF";
const AGG_TAG: &[u8; 4] = b"SIMA";

/// Size of the reuse Bloom filter in the full proofs the simulated provers build.
pub(crate) const BLOOM_BYTES: usize = 64;

/// The T1 trace root a prover commits for an AIR: a digest of author, round and AIR (real trace
/// roots differ per prover too: the trace holds columns bound to the author's key).
pub(crate) fn trace_root(author: ProverIndex, round: &RoundKey, air: AirIndex) -> Root {
    let mut h = Sha256::new();
    h.update(b"sidecar-sim-trace");
    h.update(author.0.to_le_bytes());
    h.update(round.block_root);
    h.update(round.sub_block.0.to_le_bytes());
    h.update(round.attempt.0.to_le_bytes());
    h.update(air.0.to_le_bytes());
    Root::from(<[u8; 32]>::from(h.finalize()))
}

/// Bytes of a modelled partial proof: tag, author, AIR.
pub(crate) fn partial_proof(author: ProverIndex, air: AirIndex) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(PARTIAL_TAG);
    v.extend_from_slice(&author.0.to_le_bytes());
    v.extend_from_slice(&air.0.to_le_bytes());
    v
}

/// A modelled commitment of `prover` to its AIRs `airs`, optionally with a full proof.
pub(crate) fn commitment(
    round: RoundRef,
    prover: ProverIndex,
    airs: &[AirIndex],
    full: Option<FullProofBody>,
    signature: BlsSignature,
) -> ProtocolMessage {
    let key = round.key();
    let roots: Vec<AirCommitment> = airs
        .iter()
        .map(|&air| AirCommitment { air, trace_root: trace_root(prover, &key, air) })
        .collect();
    ProtocolMessage::Commitment(SignedCommitment {
        message: Commitment {
            round,
            prover,
            trace_roots: roots.try_into().unwrap_or_default(),
            full_proof: full.into_iter().collect::<Vec<_>>().try_into().unwrap_or_default(),
        },
        signature,
    })
}

/// A modelled partial proof of `air` sent by `prover` (with its own trace root); `author` made
/// the proof bytes.
pub(crate) fn partial(
    round: RoundRef,
    prover: ProverIndex,
    air: AirIndex,
    author: ProverIndex,
    signature: BlsSignature,
) -> ProtocolMessage {
    ProtocolMessage::PartialProof(SignedPartialProof {
        message: PartialProof {
            round,
            prover,
            air,
            trace_root: trace_root(prover, &round.key(), air),
            proof: partial_proof(author, air).try_into().unwrap_or_default(),
        },
        signature,
    })
}

/// The body of a modelled full proof sent by `builder` with `parts`, whose bundle
/// `bundle_builder` assembled (a copier sends another prover's bundle).
pub(crate) fn full_body(
    builder: ProverIndex,
    bundle_builder: ProverIndex,
    parts: &[PartRef],
) -> FullProofBody {
    body_with_bundle(builder, parts, full_bundle(bundle_builder))
}

/// A full-proof body with `parts` and `bundle`, its reuse filter naming the parts that
/// `builder` did not author.
pub(crate) fn body_with_bundle(
    builder: ProverIndex,
    parts: &[PartRef],
    bundle: Vec<u8>,
) -> FullProofBody {
    let reused = parts.iter().filter(|p| p.author != builder);
    FullProofBody {
        parts: parts.to_vec().try_into().unwrap_or_default(),
        reuse_bloom: ReuseBloom::from_parts(BLOOM_BYTES, reused)
            .as_bytes()
            .to_vec()
            .try_into()
            .unwrap_or_default(),
        bundle: bundle.try_into().unwrap_or_default(),
    }
}

/// A full proof of `submitter`.
pub(crate) fn full_proof(
    round: RoundRef,
    submitter: ProverIndex,
    body: FullProofBody,
    signature: BlsSignature,
) -> ProtocolMessage {
    ProtocolMessage::FullProof(SignedFullProof {
        message: FullProof { round, submitter, body },
        signature,
    })
}

fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

fn read_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

/// The author a modelled partial proof names, and its AIR.
pub(crate) fn partial_author(proof: &[u8]) -> Option<(ProverIndex, AirIndex)> {
    if proof.len() != 16 || proof.get(..4)? != PARTIAL_TAG {
        return None;
    }
    Some((ProverIndex(read_u64(proof.get(4..)?)?), AirIndex(read_u32(proof.get(12..)?)?)))
}

/// Bytes of a modelled full-proof bundle: tag, builder.
pub(crate) fn full_bundle(builder: ProverIndex) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(FULL_TAG);
    v.extend_from_slice(&builder.0.to_le_bytes());
    v
}

/// Bytes of a modelled AggProof: tag, builder.
pub(crate) fn agg_bundle(builder: ProverIndex) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    v.extend_from_slice(AGG_TAG);
    v.extend_from_slice(&builder.0.to_le_bytes());
    v
}

fn bundle_builder(tag: &[u8; 4], bundle: &[u8]) -> Option<ProverIndex> {
    if bundle.len() != 12 || bundle.get(..4)? != tag {
        return None;
    }
    Some(ProverIndex(read_u64(bundle.get(4..)?)?))
}

/// Which partial proofs exist: `(round, author, AIR)` for every AIR an author proved on the
/// honest path.
#[derive(Debug, Default)]
pub(crate) struct ProofLedger {
    proven: FxHashSet<(RoundKey, ProverIndex, AirIndex)>,
}

impl ProofLedger {
    /// Records that `author` proved `air` of `round`.
    pub(crate) fn record(&mut self, round: RoundKey, author: ProverIndex, air: AirIndex) {
        self.proven.insert((round, author, air));
    }

    /// Whether `author` proved `air` of `round`.
    pub(crate) fn has(&self, round: &RoundKey, author: ProverIndex, air: AirIndex) -> bool {
        self.proven.contains(&(*round, author, air))
    }

    /// Forgets a round (once it is closed).
    pub(crate) fn forget_round(&mut self, round: &RoundKey) {
        self.proven.retain(|(r, _, _)| r != round);
    }

    /// Verifies a modelled partial proof submitted by `author` for `air` opening `trace_root`.
    pub(crate) fn verify_partial(
        &self,
        round: &RoundKey,
        author: ProverIndex,
        air: AirIndex,
        trace_root_claimed: &Root,
        proof: &[u8],
    ) -> bool {
        partial_author(proof) == Some((author, air))
            && *trace_root_claimed == trace_root(author, round, air)
            && self.has(round, author, air)
    }

    /// Verifies a modelled full proof: built by `submitter`, every part proven by its author,
    /// and opening the trace root its author committed, where it committed one.
    pub(crate) fn verify_full<'a>(
        &self,
        round: &RoundKey,
        submitter: ProverIndex,
        parts: impl IntoIterator<Item = (PartRef, Option<&'a Root>)>,
        bundle: &[u8],
    ) -> bool {
        bundle_builder(FULL_TAG, bundle) == Some(submitter)
            && parts.into_iter().all(|(part, committed)| {
                self.has(round, part.author, part.air)
                    && committed.is_none_or(|c| *c == trace_root(part.author, round, part.air))
            })
    }

    /// Verifies a modelled AggProof built by `submitter`.
    pub(crate) fn verify_agg(&self, submitter: ProverIndex, bundle: &[u8]) -> bool {
        bundle_builder(AGG_TAG, bundle) == Some(submitter)
    }
}

#[cfg(test)]
mod tests {
    use phase_engine::{Attempt, SubBlockIndex};

    use super::*;

    fn round() -> RoundKey {
        RoundKey {
            block_root: Root::repeat_byte(7),
            sub_block: SubBlockIndex(1),
            attempt: Attempt(0),
        }
    }

    #[test]
    fn a_proof_is_valid_only_for_its_author_and_only_if_proven() {
        let r = round();
        let (a, b, air) = (ProverIndex(1), ProverIndex(2), AirIndex(3));
        let mut ledger = ProofLedger::default();
        let proof = partial_proof(a, air);
        // Not proven yet (a lazy prover's claim).
        assert!(!ledger.verify_partial(&r, a, air, &trace_root(a, &r, air), &proof));
        ledger.record(r, a, air);
        assert!(ledger.verify_partial(&r, a, air, &trace_root(a, &r, air), &proof));
        // A copier resubmitting `a`'s proof as its own, with its own trace root or `a`'s.
        assert!(!ledger.verify_partial(&r, b, air, &trace_root(b, &r, air), &proof));
        assert!(!ledger.verify_partial(&r, b, air, &trace_root(a, &r, air), &proof));
        // Another AIR, another round.
        assert!(!ledger.verify_partial(&r, a, AirIndex(4), &trace_root(a, &r, air), &proof));
        let other = RoundKey { attempt: Attempt(1), ..r };
        assert!(!ledger.verify_partial(&other, a, air, &trace_root(a, &other, air), &proof));
        assert_ne!(trace_root(a, &r, air), trace_root(b, &r, air));
    }

    #[test]
    fn full_and_agg_bundles_bind_the_builder() {
        let r = round();
        let (a, b) = (ProverIndex(1), ProverIndex(2));
        let mut ledger = ProofLedger::default();
        ledger.record(r, a, AirIndex(0));
        ledger.record(r, b, AirIndex(1));
        let parts = [
            (PartRef { author: a, air: AirIndex(0) }, None),
            (PartRef { author: b, air: AirIndex(1) }, None),
        ];
        assert!(ledger.verify_full(&r, a, parts, &full_bundle(a)));
        // `b` resubmitting `a`'s full proof as its own.
        assert!(!ledger.verify_full(&r, b, parts, &full_bundle(a)));
        // A part nobody proved.
        let bad = [(PartRef { author: b, air: AirIndex(0) }, None)];
        assert!(!ledger.verify_full(&r, b, bad, &full_bundle(b)));
        // A part opening another trace root than committed.
        let wrong = Root::repeat_byte(1);
        let mismatch = [(PartRef { author: a, air: AirIndex(0) }, Some(&wrong))];
        assert!(!ledger.verify_full(&r, a, mismatch, &full_bundle(a)));
        assert!(ledger.verify_agg(b, &agg_bundle(b)));
        assert!(!ledger.verify_agg(a, &agg_bundle(b)));
        ledger.forget_round(&r);
        assert!(!ledger.has(&r, a, AirIndex(0)));
    }
}
