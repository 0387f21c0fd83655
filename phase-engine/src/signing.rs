//! Domains and signing roots, as in the consensus specs: a message is signed over
//! `hash_tree_root(SigningData { object_root: hash_tree_root(message), domain })` where
//! `domain = domain_type || fork_data_root[..28]`.

use alloy_primitives::FixedBytes;
use serde::{Deserialize, Serialize};
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use crate::types::Root;

/// A 4-byte domain type, one per kind of signed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DomainType(pub [u8; 4]);

/// Domain of [`crate::ProverRegistration`].
pub const DOMAIN_PROVER_REGISTRATION: DomainType = DomainType([0x70, 0x72, 0x76, 0x00]);
/// Domain of [`crate::Commitment`].
pub const DOMAIN_COMMITMENT: DomainType = DomainType([0x70, 0x72, 0x76, 0x01]);
/// Domain of [`crate::Decline`].
pub const DOMAIN_DECLINE: DomainType = DomainType([0x70, 0x72, 0x76, 0x02]);
/// Domain of [`crate::PartialProof`].
pub const DOMAIN_PARTIAL_PROOF: DomainType = DomainType([0x70, 0x72, 0x76, 0x03]);
/// Domain of [`crate::FullProof`].
pub const DOMAIN_FULL_PROOF: DomainType = DomainType([0x70, 0x72, 0x76, 0x04]);
/// Domain of [`crate::AggProof`].
pub const DOMAIN_AGG_PROOF: DomainType = DomainType([0x70, 0x72, 0x76, 0x05]);
/// Domain of the prover-selection seed (not a signature domain).
pub const DOMAIN_PROVER_SELECTION: DomainType = DomainType([0x70, 0x72, 0x76, 0x10]);
/// Domain of the aggregator-selection seed (not a signature domain).
pub const DOMAIN_AGGREGATOR_SELECTION: DomainType = DomainType([0x70, 0x72, 0x76, 0x11]);
/// Domain of the AIR-assignment seed (not a signature domain).
pub const DOMAIN_AIR_ASSIGNMENT: DomainType = DomainType([0x70, 0x72, 0x76, 0x12]);

/// `ForkData` of the consensus specs.
#[derive(TreeHash)]
struct ForkData {
    current_version: FixedBytes<4>,
    genesis_validators_root: Root,
}

/// `SigningData` of the consensus specs.
#[derive(TreeHash)]
struct SigningData {
    object_root: Root,
    domain: Root,
}

/// The chain a node signs for: fork version and genesis validators root, as in
/// `compute_domain` of the consensus specs. All sidecars of a network must agree on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SigningContext {
    /// Fork version (`GENESIS_FORK_VERSION` or the current fork's version).
    pub fork_version: [u8; 4],
    /// `genesis_validators_root` of the beacon chain.
    pub genesis_validators_root: Root,
}

impl SigningContext {
    /// `compute_domain(domain_type, fork_version, genesis_validators_root)`.
    pub fn domain(&self, domain_type: DomainType) -> Root {
        let fork_data_root = ForkData {
            current_version: FixedBytes(self.fork_version),
            genesis_validators_root: self.genesis_validators_root,
        }
        .tree_hash_root();
        let mut domain = [0u8; 32];
        let (head, tail) = domain.split_at_mut(4);
        head.copy_from_slice(&domain_type.0);
        tail.copy_from_slice(fork_data_root.get(..28).unwrap_or_default());
        Root::from(domain)
    }

    /// The signing root of `message` under `domain_type`.
    pub fn signing_root<T: TreeHash>(&self, message: &T, domain_type: DomainType) -> Root {
        signing_root(message, self.domain(domain_type))
    }
}

/// `compute_signing_root(ssz_object, domain)` of the consensus specs.
pub fn signing_root<T: TreeHash>(message: &T, domain: Root) -> Root {
    SigningData { object_root: message.tree_hash_root(), domain }.tree_hash_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_layout_matches_compute_domain() {
        let ctx = SigningContext::default();
        let d = ctx.domain(DOMAIN_COMMITMENT);
        assert_eq!(&d[..4], &DOMAIN_COMMITMENT.0);
        // compute_fork_data_root(0x00000000, 0x00..00) = hash(zero_chunk || zero_chunk).
        let fork_root =
            ForkData { current_version: FixedBytes([0; 4]), genesis_validators_root: Root::ZERO }
                .tree_hash_root();
        assert_eq!(&d[4..], &fork_root[..28]);
        assert_eq!(
            fork_root,
            alloy_primitives::hex!(
                "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b"
            )
        );
    }

    #[test]
    fn signing_root_binds_domain() {
        let ctx = SigningContext::default();
        let a = ctx.signing_root(&7u64, DOMAIN_COMMITMENT);
        let b = ctx.signing_root(&7u64, DOMAIN_DECLINE);
        assert_ne!(a, b);
    }
}
