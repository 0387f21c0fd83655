//! The consensus-spec constants and pure functions the devnet follows exactly: signing domains
//! and roots, the `BeaconBlockHeader` root, the swap-or-not shuffle and Electra's proposer index.

use sha2::{Digest, Sha256};

use crate::types::{BeaconBlockHeader, Root};

/// The BLS signature DST of Ethereum (proof-of-possession scheme).
pub(super) const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// `DOMAIN_BEACON_PROPOSER`.
pub(in crate::devnet) const DOMAIN_BEACON_PROPOSER: [u8; 4] = [0, 0, 0, 0];
/// `DOMAIN_RANDAO`.
pub(in crate::devnet) const DOMAIN_RANDAO: [u8; 4] = [2, 0, 0, 0];
/// `SHUFFLE_ROUND_COUNT` (mainnet preset).
const SHUFFLE_ROUND_COUNT: u8 = 90;
/// `MIN_SEED_LOOKAHEAD`.
pub(super) const MIN_SEED_LOOKAHEAD: u64 = 1;
/// `EPOCHS_PER_HISTORICAL_VECTOR` (mainnet preset): how far back RANDAO mixes can be read.
pub(in crate::devnet) const EPOCHS_PER_HISTORICAL_VECTOR: u64 = 65_536;
/// Every devnet validator's effective balance (32 ETH in Gwei).
const EFFECTIVE_BALANCE: u64 = 32_000_000_000;
/// `MAX_EFFECTIVE_BALANCE_ELECTRA` in Gwei.
const MAX_EFFECTIVE_BALANCE_ELECTRA: u64 = 2_048_000_000_000;

pub(super) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `hash_tree_root` of a `uint64`: little-endian, zero-padded to 32 bytes.
pub(super) fn u64_leaf(v: u64) -> [u8; 32] {
    let mut leaf = [0u8; 32];
    leaf[..8].copy_from_slice(&v.to_le_bytes());
    leaf
}

/// `compute_signing_root(object_root, domain)`.
pub(super) fn signing_root(object_root: [u8; 32], domain: [u8; 32]) -> [u8; 32] {
    sha256(&[&object_root, &domain])
}

/// `compute_domain(domain_type, fork_version, genesis_validators_root)`.
pub(super) fn compute_domain(domain_type: [u8; 4], fork_version: [u8; 4], gvr: Root) -> [u8; 32] {
    let mut version_leaf = [0u8; 32];
    version_leaf[..4].copy_from_slice(&fork_version);
    let fork_data_root = sha256(&[&version_leaf, gvr.as_slice()]);
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(&domain_type);
    domain[4..].copy_from_slice(&fork_data_root[..28]);
    domain
}

/// SSZ `hash_tree_root` of a `BeaconBlockHeader`.
pub(super) fn header_root(h: &BeaconBlockHeader) -> Root {
    let leaves = [
        u64_leaf(h.slot.get()),
        u64_leaf(h.proposer_index.get()),
        h.parent_root.0,
        h.state_root.0,
        h.body_root.0,
        [0; 32],
        [0; 32],
        [0; 32],
    ];
    let l1: Vec<[u8; 32]> = leaves.chunks(2).map(|p| sha256(&[&p[0], &p[1]])).collect();
    let l2: Vec<[u8; 32]> = l1.chunks(2).map(|p| sha256(&[&p[0], &p[1]])).collect();
    Root::from(sha256(&[&l2[0], &l2[1]]))
}

/// The consensus spec's `compute_shuffled_index` (swap-or-not, 90 rounds). `count` must be > 0.
pub(super) fn compute_shuffled_index(mut index: u64, count: u64, seed: &[u8; 32]) -> u64 {
    for round in 0..SHUFFLE_ROUND_COUNT {
        let pivot_hash = sha256(&[seed, &[round]]);
        let mut pivot_bytes = [0u8; 8];
        pivot_bytes.copy_from_slice(&pivot_hash[..8]);
        let pivot = u64::from_le_bytes(pivot_bytes) % count;
        let flip = (pivot + count - index) % count;
        let position = index.max(flip);
        let position_bytes = u32::try_from(position / 256).unwrap_or(u32::MAX).to_le_bytes();
        let source = sha256(&[seed, &[round], &position_bytes]);
        let byte = source[usize::try_from((position % 256) / 8).unwrap_or(0)];
        if (byte >> (position % 8)) & 1 == 1 {
            index = flip;
        }
    }
    index
}

/// Electra's `compute_proposer_index` for `count` validators of equal effective balance.
pub(super) fn compute_proposer_index(count: u64, seed: &[u8; 32]) -> u64 {
    let mut i: u64 = 0;
    loop {
        let candidate = compute_shuffled_index(i % count, count, seed);
        let random_bytes = sha256(&[seed, &(i / 16).to_le_bytes()]);
        let offset = usize::try_from(i % 16).unwrap_or(0) * 2;
        let random_value =
            u64::from(u16::from_le_bytes([random_bytes[offset], random_bytes[offset + 1]]));
        if u128::from(EFFECTIVE_BALANCE) * 0xffff
            >= u128::from(MAX_EFFECTIVE_BALANCE_ELECTRA) * u128::from(random_value)
        {
            return candidate;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Slot, ValidatorIndex};

    #[test]
    fn shuffle_is_a_permutation() {
        let seed = [7u8; 32];
        let mut seen: Vec<u64> = (0..100).map(|i| compute_shuffled_index(i, 100, &seed)).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn header_root_matches_ssz() {
        // hash_tree_root of an all-zero BeaconBlockHeader is a well-known constant.
        let zero = BeaconBlockHeader {
            slot: Slot(0),
            proposer_index: ValidatorIndex(0),
            parent_root: Root::ZERO,
            state_root: Root::ZERO,
            body_root: Root::ZERO,
        };
        assert_eq!(
            header_root(&zero).to_string(),
            "0xc78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c"
        );
    }
}
