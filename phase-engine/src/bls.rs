//! BLS12-381 helpers (min-pk: 48-byte public keys, 96-byte signatures, as Ethereum) for the node,
//! the prover worker and the tests: key derivation, signing, proof of possession, and single or
//! batched verification of the [`SignatureCheck`]s the engine requests. Pure CPU code, no I/O;
//! the engine itself never calls these, it only requests checks.

use alloy_primitives::FixedBytes;
use blst::{BLST_ERROR, blst_scalar, min_pk};

use crate::{
    actions::SignatureCheck,
    error::{Error, Result},
    types::Root,
};

/// A compressed BLS public key (48 bytes).
pub type BlsPublicKey = FixedBytes<48>;
/// A compressed BLS signature (96 bytes).
pub type BlsSignature = FixedBytes<96>;

/// Ethereum's signature DST (proof-of-possession scheme).
pub const DST_SIGNATURE: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// DST of a proof of possession (`PopProve` of the IETF BLS draft): the key signs its own
/// compressed public key.
pub const DST_PROOF_OF_POSSESSION: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// A BLS secret key. `Debug` never prints it.
#[derive(Clone)]
pub struct SecretKey(min_pk::SecretKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Derives a key from at least 32 bytes of input key material (`KeyGen` of the IETF draft,
    /// as EIP-2333 uses).
    pub fn from_ikm(ikm: &[u8]) -> Result<Self> {
        min_pk::SecretKey::key_gen(ikm, &[]).map(Self).map_err(|_| Error::InvalidSecretKey)
    }

    /// Parses a 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        min_pk::SecretKey::from_bytes(bytes).map(Self).map_err(|_| Error::InvalidSecretKey)
    }

    /// The 32-byte big-endian scalar.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The compressed public key.
    pub fn public_key(&self) -> BlsPublicKey {
        FixedBytes(self.0.sk_to_pk().compress())
    }

    /// Signs a signing root with [`DST_SIGNATURE`].
    pub fn sign(&self, signing_root: &Root) -> BlsSignature {
        FixedBytes(self.0.sign(signing_root.as_slice(), DST_SIGNATURE, &[]).compress())
    }

    /// The proof of possession of this key: a signature of the compressed public key under
    /// [`DST_PROOF_OF_POSSESSION`].
    pub fn proof_of_possession(&self) -> BlsSignature {
        let pk = self.public_key();
        FixedBytes(self.0.sign(pk.as_slice(), DST_PROOF_OF_POSSESSION, &[]).compress())
    }
}

fn public_key(pk: &BlsPublicKey) -> Option<min_pk::PublicKey> {
    // key_validate: on the curve, in the subgroup, not the identity.
    min_pk::PublicKey::key_validate(pk.as_slice()).ok()
}

fn signature(sig: &BlsSignature) -> Option<min_pk::Signature> {
    min_pk::Signature::sig_validate(sig.as_slice(), true).ok()
}

/// Verifies one signature of `signing_root` by `pk`.
pub fn verify(pk: &BlsPublicKey, signing_root: &Root, sig: &BlsSignature) -> bool {
    let (Some(pk), Some(sig)) = (public_key(pk), signature(sig)) else {
        return false;
    };
    sig.verify(false, signing_root.as_slice(), DST_SIGNATURE, &[], &pk, false)
        == BLST_ERROR::BLST_SUCCESS
}

/// Verifies a proof of possession of `pk`.
pub fn verify_possession(pk: &BlsPublicKey, pop: &BlsSignature) -> bool {
    let (Some(key), Some(sig)) = (public_key(pk), signature(pop)) else {
        return false;
    };
    sig.verify(false, pk.as_slice(), DST_PROOF_OF_POSSESSION, &[], &key, false)
        == BLST_ERROR::BLST_SUCCESS
}

/// Answers one check the engine requested: the signature, and the proof of possession when the
/// check carries one.
pub fn verify_check(check: &SignatureCheck) -> bool {
    verify(&check.pubkey, &check.signing_root, &check.signature)
        && check
            .proof_of_possession
            .as_ref()
            .is_none_or(|pop| verify_possession(&check.pubkey, pop))
}

/// Verifies many signatures at once (random linear combination, one multi-pairing), as beacon
/// nodes do for gossip. `randomness` supplies one non-zero 64-bit scalar per check and must be
/// unpredictable to the message senders (the caller draws it; this crate has no randomness).
/// Returns `true` only if every check is valid; on `false`, verify one by one with
/// [`verify_check`] to find the culprits. Proofs of possession are verified individually.
pub fn verify_batch(checks: &[SignatureCheck], randomness: &[u64]) -> bool {
    if checks.is_empty() {
        return true;
    }
    if randomness.len() != checks.len() || randomness.contains(&0) {
        return false;
    }
    // Decompressed here (on the curve); the subgroup checks of keys and signatures are left to
    // the multi-pairing, which runs them on blst's thread pool beside the pairings.
    let mut pks = Vec::with_capacity(checks.len());
    let mut sigs = Vec::with_capacity(checks.len());
    for check in checks {
        if is_infinity(&check.pubkey) {
            return false;
        }
        let pk = min_pk::PublicKey::from_bytes(check.pubkey.as_slice()).ok();
        let sig = min_pk::Signature::from_bytes(check.signature.as_slice()).ok();
        let (Some(pk), Some(sig)) = (pk, sig) else {
            return false;
        };
        if let Some(pop) = &check.proof_of_possession
            && !verify_possession(&check.pubkey, pop)
        {
            return false;
        }
        pks.push(pk);
        sigs.push(sig);
    }
    let msgs: Vec<&[u8]> = checks.iter().map(|c| c.signing_root.as_slice()).collect();
    let pk_refs: Vec<&min_pk::PublicKey> = pks.iter().collect();
    let sig_refs: Vec<&min_pk::Signature> = sigs.iter().collect();
    let rands: Vec<blst_scalar> = randomness
        .iter()
        .map(|r| {
            let mut b = [0u8; 32];
            for (dst, src) in b.iter_mut().zip(r.to_le_bytes()) {
                *dst = src;
            }
            blst_scalar { b }
        })
        .collect();
    min_pk::Signature::verify_multiple_aggregate_signatures(
        &msgs,
        DST_SIGNATURE,
        &pk_refs,
        true,
        &sig_refs,
        true,
        &rands,
        64,
    ) == BLST_ERROR::BLST_SUCCESS
}

/// Whether a compressed public key is the point at infinity (its infinity flag, bit 6 of the
/// first byte, is set): never a valid signer, whatever the pairing says.
fn is_infinity(pk: &BlsPublicKey) -> bool {
    pk.as_slice().first().is_some_and(|b| b & 0x40 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::RequestId;

    fn key(i: u8) -> SecretKey {
        SecretKey::from_ikm(&[i; 32]).unwrap()
    }

    #[test]
    fn sign_verify_and_reject() {
        let sk = key(1);
        let root = Root::repeat_byte(7);
        let sig = sk.sign(&root);
        assert!(verify(&sk.public_key(), &root, &sig));
        assert!(!verify(&sk.public_key(), &Root::repeat_byte(8), &sig));
        assert!(!verify(&key(2).public_key(), &root, &sig));
        assert!(!verify(&BlsPublicKey::ZERO, &root, &sig));
        assert!(!verify(&sk.public_key(), &root, &BlsSignature::ZERO));
    }

    #[test]
    fn proof_of_possession() {
        let sk = key(3);
        assert!(verify_possession(&sk.public_key(), &sk.proof_of_possession()));
        assert!(!verify_possession(&key(4).public_key(), &sk.proof_of_possession()));
        // A message signature is not a proof of possession (different DST).
        let pk = sk.public_key();
        let not_pop = FixedBytes(sk.0.sign(pk.as_slice(), DST_SIGNATURE, &[]).compress());
        assert!(!verify_possession(&pk, &not_pop));
    }

    #[test]
    fn batch_matches_individual() {
        let checks: Vec<SignatureCheck> = (0..8u8)
            .map(|i| {
                let sk = key(i);
                let root = Root::repeat_byte(i);
                SignatureCheck {
                    request: RequestId(u64::from(i)),
                    pubkey: sk.public_key(),
                    signing_root: root,
                    signature: sk.sign(&root),
                    proof_of_possession: (i % 2 == 0).then(|| sk.proof_of_possession()),
                }
            })
            .collect();
        let rands: Vec<u64> =
            (1..=8u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).collect();
        assert!(verify_batch(&checks, &rands));
        assert!(checks.iter().all(verify_check));
        let mut bad = checks.clone();
        bad[3].signing_root = Root::repeat_byte(99);
        assert!(!verify_batch(&bad, &rands));
        assert!(!verify_check(&bad[3]));
        assert!(!verify_batch(&checks, &rands[..7]));
        // The point at infinity as key and signature satisfies the pairing equation for any
        // message: refused, in a batch and alone.
        let mut infinity = checks.clone();
        let mut pk = [0u8; 48];
        pk[0] = 0xc0;
        let mut sig = [0u8; 96];
        sig[0] = 0xc0;
        infinity[2].pubkey = FixedBytes(pk);
        infinity[2].signature = FixedBytes(sig);
        infinity[2].proof_of_possession = None;
        assert!(!verify_batch(&infinity, &rands));
        assert!(!verify_check(&infinity[2]));
    }
}
