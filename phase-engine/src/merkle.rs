//! Fast `hash_tree_root` of the round messages, for their signing roots.
//!
//! The engine computes the signing root of every message it receives (duplicate detection,
//! equivocation evidence, the signature check it requests). With `tree_hash`'s general-purpose
//! [`tree_hash::MerkleHasher`] that dominated the engine's cost per message. This module computes
//! the *same* roots (SSZ merkleization, checked against the derived `TreeHash` by the property
//! tests below) with:
//!
//! * one SHA-256 of a 64-byte node as exactly two block compressions (`sha2::compress256`: the
//!   node, then the constant padding block), no hasher state, no allocation;
//! * the roots of empty lists and the zero subtrees of list padding from a table computed once;
//! * the root of the message's [`RoundRef`] given by the caller (the engine computes it once per
//!   round: every message of a round that passes its checks names exactly that round).
//!
//! The derived `TreeHash` implementations stay the reference; nothing here changes a root.

use std::sync::OnceLock;

use sha2::digest::generic_array::GenericArray;

use crate::{
    messages::{
        AggProof, AirCommitment, Commitment, Decline, FullProof, FullProofBody, PartialProof,
        RoundRef,
    },
    outcome::PartRef,
    signing::DomainType,
    types::Root,
};

/// A 32-byte SSZ chunk.
type Chunk = [u8; 32];

/// SHA-256 initial state.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// The padding block of a 64-byte message: `0x80`, zeros, the bit length 512 (big endian).
const PAD_64: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

/// Deepest zero subtree any message or ledger needs (lists of 2^20 chunks and their padding).
const MAX_DEPTH: usize = 40;

/// `sha256(a || b)`.
pub fn hash_pair(a: &Chunk, b: &Chunk) -> Chunk {
    let mut block = [0u8; 64];
    let (left, right) = block.split_at_mut(32);
    left.copy_from_slice(a);
    right.copy_from_slice(b);
    let mut state = IV;
    sha2::compress256(&mut state, &[GenericArray::from(block), GenericArray::from(PAD_64)]);
    let mut out = [0u8; 32];
    for (word, bytes) in state.iter().zip(out.chunks_exact_mut(4)) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// `zero_hashes[d]`: the root of a subtree of depth `d` whose leaves are all zero chunks.
fn zero_hashes() -> &'static [Chunk; MAX_DEPTH] {
    static ZEROS: OnceLock<[Chunk; MAX_DEPTH]> = OnceLock::new();
    ZEROS.get_or_init(|| {
        let mut z = [[0u8; 32]; MAX_DEPTH];
        let mut prev = [0u8; 32];
        for slot in z.iter_mut() {
            *slot = prev;
            prev = hash_pair(&prev, &prev);
        }
        z
    })
}

/// The root of a zero subtree of depth `depth` (zero chunk beyond the table, never reached).
pub(crate) fn zero(depth: usize) -> Chunk {
    zero_hashes().get(depth).copied().unwrap_or_default()
}

/// A `uint64` as a leaf.
pub(crate) fn u64_leaf(v: u64) -> Chunk {
    let mut c = [0u8; 32];
    let (head, _) = c.split_at_mut(8);
    head.copy_from_slice(&v.to_le_bytes());
    c
}

/// A `uint32` as a leaf.
pub(crate) fn u32_leaf(v: u32) -> Chunk {
    let mut c = [0u8; 32];
    let (head, _) = c.split_at_mut(4);
    head.copy_from_slice(&v.to_le_bytes());
    c
}

/// `mix_in_length(root, len)`.
pub fn mix_in_length(root: &Chunk, len: usize) -> Chunk {
    hash_pair(root, &u64_leaf(len as u64))
}

/// Merkleizes `leaves` (at most `2^depth` of them) into a tree of depth `depth`, padding with
/// zero chunks.
pub fn merkleize(leaves: &[Chunk], depth: usize) -> Chunk {
    match leaves {
        [] => zero(depth),
        [one] => climb(*one, 0, depth),
        many if many.len() <= STACK_CHUNKS => {
            let mut stack = [[0u8; 32]; STACK_CHUNKS];
            let buf = stack.get_mut(..many.len()).unwrap_or_default();
            buf.copy_from_slice(many);
            merkleize_in_place(buf, depth)
        }
        many => merkleize_in_place(&mut many.to_vec(), depth),
    }
}

/// Merkleizes the leaves `leaves` yields (see [`merkleize`]), without allocating when there
/// are at most [`STACK_CHUNKS`] of them. Returns the root and the number of leaves.
fn merkleize_iter(leaves: impl ExactSizeIterator<Item = Chunk>, depth: usize) -> (Chunk, usize) {
    let n = leaves.len();
    let root = if n <= STACK_CHUNKS {
        let mut stack = [[0u8; 32]; STACK_CHUNKS];
        let buf = stack.get_mut(..n).unwrap_or_default();
        buf.iter_mut().zip(leaves).for_each(|(slot, leaf)| *slot = leaf);
        merkleize(buf, depth)
    } else {
        merkleize(&leaves.collect::<Vec<_>>(), depth)
    };
    (root, n)
}

/// Leaves merkleized in a stack buffer, without allocation (2 KiB).
const STACK_CHUNKS: usize = 64;

/// `h` (the root of a subtree of depth `from`) hashed up to depth `to` with zero subtrees on
/// its right.
fn climb(mut h: Chunk, from: usize, to: usize) -> Chunk {
    for d in from..to {
        h = hash_pair(&h, &zero(d));
    }
    h
}

/// [`merkleize`] reusing `buf` (the leaves) for every layer. A pair of zero subtrees of depth
/// `d` is the zero subtree of depth `d + 1` by definition and is taken from the table.
fn merkleize_in_place(buf: &mut [Chunk], depth: usize) -> Chunk {
    let zeros = zero_hashes();
    let mut len = buf.len();
    for d in 0..depth {
        if len <= 1 {
            return climb(buf.first().copied().unwrap_or_else(|| zero(d)), d, depth);
        }
        let z = zero(d);
        let parent_zero = zeros.get(d.saturating_add(1));
        let (mut read, mut write) = (0usize, 0usize);
        while read < len {
            let left = buf.get(read).copied().unwrap_or(z);
            let next = read.saturating_add(1);
            let right = if next < len { buf.get(next).copied().unwrap_or(z) } else { z };
            let parent = match parent_zero {
                Some(pz) if left == z && right == z => *pz,
                _ => hash_pair(&left, &right),
            };
            if let Some(slot) = buf.get_mut(write) {
                *slot = parent;
            }
            write = write.saturating_add(1);
            read = read.saturating_add(2);
        }
        len = write;
    }
    buf.first().copied().unwrap_or_else(|| zero(depth))
}

/// Merkleizes the container fields `leaves` (padded to the next power of two).
fn container(leaves: &[Chunk]) -> Chunk {
    let depth = leaves.len().next_power_of_two().trailing_zeros() as usize;
    merkleize(leaves, depth)
}

/// The root of an SSZ `List[byte, limit]` whose limit is `2^depth` chunks.
fn bytes_list(bytes: &[u8], depth: usize) -> Chunk {
    let pack = |dst: &mut [Chunk]| {
        for (chunk, src) in dst.iter_mut().zip(bytes.chunks(32)) {
            chunk.iter_mut().zip(src).for_each(|(d, s)| *d = *s);
        }
    };
    let n = bytes.len().div_ceil(32);
    let root = if n == 0 {
        zero(depth)
    } else if n <= STACK_CHUNKS {
        let mut stack = [[0u8; 32]; STACK_CHUNKS];
        let buf = stack.get_mut(..n).unwrap_or_default();
        pack(buf);
        merkleize_in_place(buf, depth)
    } else {
        let mut chunks = vec![[0u8; 32]; n];
        pack(&mut chunks);
        merkleize_in_place(&mut chunks, depth)
    };
    mix_in_length(&root, bytes.len())
}

/// Depth of `MaxAirsPerSubBlock` (256) lists.
const AIRS_DEPTH: usize = 8;
/// Depth of the Bloom filter list: 256 bytes = 8 chunks.
const BLOOM_DEPTH: usize = 3;
/// Depth of the bundle lists: 16 MiB = 2^19 chunks.
const BUNDLE_DEPTH: usize = 19;
/// Depth of the partial proof list: 300 KiB = 9,600 chunks, padded to 2^14.
const PROOF_DEPTH: usize = 14;

/// `hash_tree_root` of a [`RoundRef`].
pub(crate) fn round_ref_root(r: &RoundRef) -> Root {
    Root::from(container(&[
        u64_leaf(r.slot.0),
        r.block_root.0,
        u32_leaf(r.sub_block.0),
        u32_leaf(r.attempt.0),
    ]))
}

fn air_commitment_root(a: &AirCommitment) -> Chunk {
    hash_pair(&u32_leaf(a.air.0), &a.trace_root.0)
}

fn part_ref_root(p: &PartRef) -> Chunk {
    hash_pair(&u64_leaf(p.author.0), &u32_leaf(p.air.0))
}

/// `hash_tree_root` of a [`FullProofBody`].
pub(crate) fn full_body_root(b: &FullProofBody) -> Chunk {
    let (parts, n) = merkleize_iter(b.parts.iter().map(part_ref_root), AIRS_DEPTH);
    container(&[
        mix_in_length(&parts, n),
        bytes_list(&b.reuse_bloom, BLOOM_DEPTH),
        bytes_list(&b.bundle, BUNDLE_DEPTH),
    ])
}

/// `hash_tree_root` of a [`Commitment`] whose `round` has root `round_root`.
pub(crate) fn commitment_root(c: &Commitment, round_root: &Root) -> Root {
    let trace_roots = if c.trace_roots.is_empty() {
        empty_list(AIRS_DEPTH)
    } else {
        let (root, n) = merkleize_iter(c.trace_roots.iter().map(air_commitment_root), AIRS_DEPTH);
        mix_in_length(&root, n)
    };
    let full = match c.full_proof.first() {
        None => empty_list(0),
        Some(body) => mix_in_length(&full_body_root(body), 1),
    };
    Root::from(container(&[round_root.0, u64_leaf(c.prover.0), trace_roots, full]))
}

/// The root of an empty list of depth `depth`: `mix_in_length(zero(depth), 0)`.
fn empty_list(depth: usize) -> Chunk {
    static EMPTY: OnceLock<[Chunk; MAX_DEPTH]> = OnceLock::new();
    let table = EMPTY.get_or_init(|| {
        let mut t = [[0u8; 32]; MAX_DEPTH];
        for (d, slot) in t.iter_mut().enumerate() {
            *slot = mix_in_length(&zero(d), 0);
        }
        t
    });
    table.get(depth).copied().unwrap_or_default()
}

/// `hash_tree_root` of a [`Decline`] whose `round` has root `round_root`.
pub(crate) fn decline_root(d: &Decline, round_root: &Root) -> Root {
    Root::from(container(&[round_root.0, u64_leaf(d.prover.0)]))
}

/// `hash_tree_root` of a [`PartialProof`] whose `round` has root `round_root`.
pub(crate) fn partial_root(p: &PartialProof, round_root: &Root) -> Root {
    Root::from(container(&[
        round_root.0,
        u64_leaf(p.prover.0),
        u32_leaf(p.air.0),
        p.trace_root.0,
        bytes_list(&p.proof, PROOF_DEPTH),
    ]))
}

/// `hash_tree_root` of a [`FullProof`] whose `round` has root `round_root`.
pub(crate) fn full_proof_root(f: &FullProof, round_root: &Root) -> Root {
    Root::from(container(&[round_root.0, u64_leaf(f.submitter.0), full_body_root(&f.body)]))
}

/// `hash_tree_root` of an [`AggProof`].
pub(crate) fn agg_proof_root(a: &AggProof) -> Root {
    Root::from(container(&[
        u64_leaf(a.slot.0),
        a.block_root.0,
        u64_leaf(a.submitter.0),
        bytes_list(&a.bundle, BUNDLE_DEPTH),
    ]))
}

/// The signing domains of the round messages under one signing context, computed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Domains {
    commitment: Root,
    decline: Root,
    partial: Root,
    full: Root,
    agg: Root,
}

impl Domains {
    /// The domains of `ctx`.
    pub(crate) fn new(ctx: &crate::signing::SigningContext) -> Self {
        use crate::signing::{
            DOMAIN_AGG_PROOF, DOMAIN_COMMITMENT, DOMAIN_DECLINE, DOMAIN_FULL_PROOF,
            DOMAIN_PARTIAL_PROOF,
        };
        let d = |t: DomainType| ctx.domain(t);
        Self {
            commitment: d(DOMAIN_COMMITMENT),
            decline: d(DOMAIN_DECLINE),
            partial: d(DOMAIN_PARTIAL_PROOF),
            full: d(DOMAIN_FULL_PROOF),
            agg: d(DOMAIN_AGG_PROOF),
        }
    }

    /// Signing root of a commitment.
    pub(crate) fn commitment(&self, c: &Commitment, round_root: &Root) -> Root {
        signing_root(&commitment_root(c, round_root), &self.commitment)
    }

    /// Signing root of a decline.
    pub(crate) fn decline(&self, d: &Decline, round_root: &Root) -> Root {
        signing_root(&decline_root(d, round_root), &self.decline)
    }

    /// Signing root of a partial proof.
    pub(crate) fn partial(&self, p: &PartialProof, round_root: &Root) -> Root {
        signing_root(&partial_root(p, round_root), &self.partial)
    }

    /// Signing root of a full proof.
    pub(crate) fn full(&self, f: &FullProof, round_root: &Root) -> Root {
        signing_root(&full_proof_root(f, round_root), &self.full)
    }

    /// Signing root of an AggProof.
    pub(crate) fn agg(&self, a: &AggProof) -> Root {
        signing_root(&agg_proof_root(a), &self.agg)
    }
}

/// `hash_tree_root(SigningData { object_root, domain })`.
fn signing_root(object_root: &Root, domain: &Root) -> Root {
    Root::from(hash_pair(&object_root.0, &domain.0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use tree_hash::TreeHash;

    use super::*;
    use crate::{
        messages::SignedContent,
        signing::SigningContext,
        types::{AirIndex, Attempt, ProverIndex, Slot, SubBlockIndex},
    };

    fn root(b: [u8; 32]) -> Root {
        Root::from(b)
    }

    prop_compose! {
        fn round_ref()(slot in any::<u64>(), b in any::<[u8; 32]>(), s in 0u32..40, a in 0u32..4)
            -> RoundRef {
            RoundRef { slot: Slot(slot), block_root: root(b), sub_block: SubBlockIndex(s), attempt: Attempt(a) }
        }
    }

    prop_compose! {
        fn body()(
            parts in proptest::collection::vec((any::<u64>(), any::<u32>()), 0..40),
            bloom in proptest::collection::vec(any::<u8>(), 0..=256),
            bundle in proptest::collection::vec(any::<u8>(), 0..3000),
        ) -> FullProofBody {
            FullProofBody {
                parts: parts
                    .into_iter()
                    .map(|(a, i)| PartRef { author: ProverIndex(a), air: AirIndex(i) })
                    .collect::<Vec<_>>()
                    .try_into()
                    .unwrap(),
                reuse_bloom: bloom.try_into().unwrap(),
                bundle: bundle.try_into().unwrap(),
            }
        }
    }

    fn ctx(fork: [u8; 4], gvr: [u8; 32]) -> SigningContext {
        SigningContext { fork_version: fork, genesis_validators_root: root(gvr) }
    }

    #[test]
    fn hash_pair_is_sha256_of_the_concatenation() {
        use sha2::{Digest, Sha256};
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let mut h = Sha256::new();
        h.update(a);
        h.update(b);
        assert_eq!(hash_pair(&a, &b), <[u8; 32]>::from(h.finalize()));
        assert_eq!(zero(1), hash_pair(&[0; 32], &[0; 32]));
    }

    #[test]
    fn merkleize_pads_with_zero_subtrees() {
        let l = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let expected = hash_pair(&hash_pair(&l[0], &l[1]), &hash_pair(&l[2], &zero(0)));
        assert_eq!(merkleize(&l, 2), expected);
        assert_eq!(merkleize(&l, 3), hash_pair(&expected, &zero(2)));
        assert_eq!(merkleize(&[], 5), zero(5));
    }

    /// Naive SSZ merkleization: pad to `2^depth` zero chunks, hash layer by layer.
    fn reference_merkleize(leaves: &[Chunk], depth: usize) -> Chunk {
        let mut layer = leaves.to_vec();
        layer.resize(1 << depth, [0u8; 32]);
        while layer.len() > 1 {
            layer = layer.chunks(2).map(|p| hash_pair(&p[0], &p[1])).collect();
        }
        layer[0]
    }

    /// Mostly-zero chunks, so that whole zero subtrees (the in-place path's shortcut) occur.
    fn sparse_chunk() -> impl Strategy<Value = Chunk> {
        prop_oneof![3 => Just([0u8; 32]), 1 => any::<[u8; 32]>()]
    }

    proptest! {
        #[test]
        fn merkleize_matches_naive_reference(
            leaves in proptest::collection::vec(sparse_chunk(), 0..200),
            extra in 0usize..3,
        ) {
            let depth = leaves.len().next_power_of_two().trailing_zeros() as usize + extra;
            prop_assert_eq!(merkleize(&leaves, depth), reference_merkleize(&leaves, depth));
        }

        #[test]
        fn bytes_list_matches_naive_reference(
            chunks in proptest::collection::vec(sparse_chunk(), 0..100),
            cut in 0usize..32,
        ) {
            let mut bytes: Vec<u8> = chunks.concat();
            bytes.truncate(bytes.len().saturating_sub(cut));
            let leaves: Vec<Chunk> = bytes
                .chunks(32)
                .map(|c| {
                    let mut chunk = [0u8; 32];
                    chunk[..c.len()].copy_from_slice(c);
                    chunk
                })
                .collect();
            let expected = mix_in_length(&reference_merkleize(&leaves, 8), bytes.len());
            prop_assert_eq!(bytes_list(&bytes, 8), expected);
        }
    }

    proptest! {
        #[test]
        fn round_ref_matches_tree_hash(r in round_ref()) {
            prop_assert_eq!(round_ref_root(&r), r.tree_hash_root());
        }

        #[test]
        fn commitment_matches_tree_hash(
            r in round_ref(),
            prover in any::<u64>(),
            roots in proptest::collection::vec((any::<u32>(), any::<[u8; 32]>()), 0..20),
            full in proptest::option::of(body()),
            fork in any::<[u8; 4]>(),
            gvr in any::<[u8; 32]>(),
        ) {
            let c = Commitment {
                round: r,
                prover: ProverIndex(prover),
                trace_roots: roots
                    .into_iter()
                    .map(|(a, t)| AirCommitment { air: AirIndex(a), trace_root: root(t) })
                    .collect::<Vec<_>>()
                    .try_into()
                    .unwrap(),
                full_proof: full.into_iter().collect::<Vec<_>>().try_into().unwrap(),
            };
            let rr = round_ref_root(&r);
            prop_assert_eq!(commitment_root(&c, &rr), c.tree_hash_root());
            let ctx = ctx(fork, gvr);
            prop_assert_eq!(Domains::new(&ctx).commitment(&c, &rr), c.signing_root(&ctx));
        }

        #[test]
        fn decline_and_partial_match_tree_hash(
            r in round_ref(),
            prover in any::<u64>(),
            air in any::<u32>(),
            trace in any::<[u8; 32]>(),
            proof in proptest::collection::vec(any::<u8>(), 0..5000),
            fork in any::<[u8; 4]>(),
        ) {
            let ctx = ctx(fork, [9; 32]);
            let domains = Domains::new(&ctx);
            let rr = round_ref_root(&r);
            let d = Decline { round: r, prover: ProverIndex(prover) };
            prop_assert_eq!(decline_root(&d, &rr), d.tree_hash_root());
            prop_assert_eq!(domains.decline(&d, &rr), d.signing_root(&ctx));
            let p = PartialProof {
                round: r,
                prover: ProverIndex(prover),
                air: AirIndex(air),
                trace_root: root(trace),
                proof: proof.try_into().unwrap(),
            };
            prop_assert_eq!(partial_root(&p, &rr), p.tree_hash_root());
            prop_assert_eq!(domains.partial(&p, &rr), p.signing_root(&ctx));
        }

        #[test]
        fn full_and_agg_match_tree_hash(
            r in round_ref(),
            submitter in any::<u64>(),
            b in body(),
            gvr in any::<[u8; 32]>(),
        ) {
            let ctx = ctx([1, 2, 3, 4], gvr);
            let domains = Domains::new(&ctx);
            let rr = round_ref_root(&r);
            let f = FullProof { round: r, submitter: ProverIndex(submitter), body: b.clone() };
            prop_assert_eq!(full_body_root(&b), b.tree_hash_root().0);
            prop_assert_eq!(full_proof_root(&f, &rr), f.tree_hash_root());
            prop_assert_eq!(domains.full(&f, &rr), f.signing_root(&ctx));
            let a = AggProof {
                slot: r.slot,
                block_root: r.block_root,
                submitter: ProverIndex(submitter),
                bundle: b.bundle,
            };
            prop_assert_eq!(agg_proof_root(&a), a.tree_hash_root());
            prop_assert_eq!(domains.agg(&a), a.signing_root(&ctx));
        }
    }
}
