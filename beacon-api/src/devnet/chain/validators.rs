//! The devnet's validators: BLS keys derived from the seed, and signing with them.

use blst::min_pk::SecretKey;

use super::spec::{BLS_DST, sha256};
use crate::{
    error::{Error, Result},
    types::{BlsPubkey, BlsSignature, ValidatorIndex},
};

/// The devnet's validators: BLS keys derived from the seed.
pub(super) struct Validators {
    secret_keys: Vec<SecretKey>,
    pub(super) pubkeys: Vec<BlsPubkey>,
}

impl Validators {
    pub(super) fn new(seed: u64, count: u64) -> Result<Self> {
        let mut secret_keys = Vec::new();
        let mut pubkeys = Vec::new();
        for index in 0..count {
            let ikm = sha256(&[b"devnet validator key", &seed.to_le_bytes(), &index.to_le_bytes()]);
            let sk = SecretKey::key_gen(&ikm, &[]).map_err(|e| Error::Config {
                key: "validator_count",
                reason: format!("BLS key generation failed: {e:?}"),
            })?;
            pubkeys.push(BlsPubkey::from(sk.sk_to_pk().compress()));
            secret_keys.push(sk);
        }
        Ok(Self { secret_keys, pubkeys })
    }

    pub(super) fn sign(&self, index: ValidatorIndex, message: &[u8; 32]) -> BlsSignature {
        let sk =
            &self.secret_keys[usize::try_from(index.get()).unwrap_or(0) % self.secret_keys.len()];
        BlsSignature::from(sk.sign(message, BLS_DST, &[]).compress())
    }
}
