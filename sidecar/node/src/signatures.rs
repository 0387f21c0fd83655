//! BLS signature verification of the node: a cache of public keys validated once (decompressed,
//! on the curve, in the subgroup, not the identity), and batches verified as one random linear
//! combination whose work (signature decompression and subgroup checks, hashing to G2, the
//! Miller loops) is shared by the machine's cores, each taking the next check and accumulating
//! its own pairing; the pairings are merged for a single final exponentiation.
//!
//! It computes what [`phase_engine::bls::verify_batch`] computes (property tests below hold them
//! equal), faster on the node's hot path: the engine's checks name registered provers, whose keys
//! are validated at their first check and never again, and nothing runs serially before the
//! pairings start.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{
        LazyLock, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use blst::{BLST_ERROR, Pairing, blst_p1_affine, blst_p2_affine, min_pk};
use phase_engine::{
    BlsPublicKey, SignatureCheck, Verdict,
    bls::{self, DST_SIGNATURE},
};

/// How many validated keys the cache holds before it starts over (a registry of this many
/// provers is far beyond the protocol's scale; the bound keeps memory fixed whatever arrives).
const MAX_CACHED_KEYS: usize = 1 << 16;

/// Below this many checks a batch runs on the calling thread: starting threads costs more than
/// sharing the pairings saves.
const MIN_CHECKS_PER_THREAD: usize = 8;

/// The machine's cores, read once (`available_parallelism` reads the cgroup files on Linux, too
/// costly for every single-message batch of the live path).
static CORES: LazyLock<NonZeroUsize> =
    LazyLock::new(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));

/// Public keys that passed validation, decompressed, by their compressed bytes.
#[derive(Debug, Default)]
pub struct ValidatedKeys {
    keys: RwLock<HashMap<BlsPublicKey, blst_p1_affine>>,
}

impl ValidatedKeys {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cached(&self, pubkey: &BlsPublicKey) -> Option<blst_p1_affine> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).get(pubkey).copied()
    }

    fn insert(&self, validated: impl IntoIterator<Item = (BlsPublicKey, blst_p1_affine)>) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        for (pubkey, point) in validated {
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.insert(pubkey, point);
        }
    }

    /// The decompressed key, validated now unless cached; `None` if it is not a valid key.
    fn resolve(
        &self,
        pubkey: &BlsPublicKey,
        validated: &mut Vec<(BlsPublicKey, blst_p1_affine)>,
    ) -> Option<blst_p1_affine> {
        if let Some(point) = self.cached(pubkey) {
            return Some(point);
        }
        // key_validate: on the curve, in the subgroup, not the identity.
        let point: blst_p1_affine = min_pk::PublicKey::key_validate(pubkey.as_slice()).ok()?.into();
        validated.push((*pubkey, point));
        Some(point)
    }
}

/// Verifies many signatures at once, as [`phase_engine::bls::verify_batch`] does (one non-zero
/// 64-bit scalar per check in `randomness`, unpredictable to the senders; proofs of possession
/// verified individually), on up to `threads` cores. Returns `true` only if every check is
/// valid. Keys that validate are added to `keys`.
pub fn verify_batch(
    keys: &ValidatedKeys,
    checks: &[SignatureCheck],
    randomness: &[u64],
    threads: NonZeroUsize,
) -> bool {
    if checks.is_empty() {
        return true;
    }
    if randomness.len() != checks.len() || randomness.contains(&0) {
        return false;
    }
    let threads = threads.get().min(checks.len().div_ceil(MIN_CHECKS_PER_THREAD)).max(1);
    // Each core takes the next check not taken yet (a core slowed by other work takes fewer).
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let share = || accumulate(keys, checks, randomness, &next, &failed);
    let (accumulated, validated) = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(share)).collect();
        let mut total = share();
        for other in others {
            let other = other.join().unwrap_or(None);
            total = match (total, other) {
                (Some((mut acc, mut validated)), Some((pairing, more))) => {
                    validated.extend(more);
                    (acc.merge(&pairing) == BLST_ERROR::BLST_SUCCESS).then_some((acc, validated))
                }
                _ => None,
            };
        }
        total.unzip()
    });
    keys.insert(validated.unwrap_or_default());
    accumulated.is_some_and(|pairing| pairing.finalverify(None))
}

/// One core's share of a batch: the terms of the checks it takes accumulated into a committed
/// pairing, and the keys it validated; `None` (and every core stops) as soon as one check cannot
/// be valid.
fn accumulate(
    keys: &ValidatedKeys,
    checks: &[SignatureCheck],
    randomness: &[u64],
    next: &AtomicUsize,
    failed: &AtomicBool,
) -> Option<(Pairing<'static>, Vec<(BlsPublicKey, blst_p1_affine)>)> {
    let mut pairing = Pairing::new(true, DST_SIGNATURE);
    let mut validated = Vec::new();
    loop {
        if failed.load(Ordering::Relaxed) {
            return None;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        let (Some(check), Some(r)) = (checks.get(i), randomness.get(i)) else { break };
        if !add_term(&mut pairing, keys, check, *r, &mut validated) {
            failed.store(true, Ordering::Relaxed);
            return None;
        }
    }
    pairing.commit();
    Some((pairing, validated))
}

/// Adds `r` times the check's terms to the pairing; `false` if the check cannot be valid.
fn add_term(
    pairing: &mut Pairing<'static>,
    keys: &ValidatedKeys,
    check: &SignatureCheck,
    r: u64,
    validated: &mut Vec<(BlsPublicKey, blst_p1_affine)>,
) -> bool {
    let Some(pubkey) = keys.resolve(&check.pubkey, validated) else { return false };
    // On the curve here; the subgroup check runs inside the pairing accumulation.
    let Ok(signature) = min_pk::Signature::from_bytes(check.signature.as_slice()) else {
        return false;
    };
    let signature: blst_p2_affine = signature.into();
    if let Some(pop) = &check.proof_of_possession
        && !bls::verify_possession(&check.pubkey, pop)
    {
        return false;
    }
    let mut scalar = [0u8; 32];
    scalar[..8].copy_from_slice(&r.to_le_bytes());
    pairing.mul_n_aggregate(
        &pubkey,
        false,
        &signature,
        true,
        &scalar,
        64,
        check.signing_root.as_slice(),
        &[],
    ) == BLST_ERROR::BLST_SUCCESS
}

/// Answers the engine's signature checks: the whole set as one batch on every core, then one by
/// one only if the batch fails (to find the invalid ones).
pub(crate) fn verify_signatures(keys: &ValidatedKeys, checks: &[SignatureCheck]) -> Vec<Verdict> {
    let randomness: Vec<u64> = checks
        .iter()
        .map(|_| {
            let mut b = [0u8; 8];
            // A failed RNG read leaves the fallback value, which is still non-zero.
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b) | 1
        })
        .collect();
    let all_valid = verify_batch(keys, checks, &randomness, *CORES);
    checks
        .iter()
        .map(|c| Verdict { request: c.request, valid: all_valid || bls::verify_check(c) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use phase_engine::{RequestId, Root};
    use proptest::prelude::*;

    fn key(i: u8) -> bls::SecretKey {
        bls::SecretKey::from_ikm(&[i.wrapping_add(1); 32]).unwrap()
    }

    /// A valid check by key `i` of its own root.
    fn check(i: u8) -> SignatureCheck {
        let signing_root = Root::from([i; 32]);
        let key = key(i);
        SignatureCheck {
            request: RequestId(u64::from(i)),
            pubkey: key.public_key(),
            signing_root,
            signature: key.sign(&signing_root),
            proof_of_possession: None,
        }
    }

    /// The ways a check can be broken.
    #[derive(Clone, Copy, Debug)]
    enum Fault {
        None,
        WrongRoot,
        OtherSigner,
        GarbageSignature,
        GarbageKey,
        InfinityKey,
        ValidPossession,
        WrongPossession,
    }

    fn apply(mut check: SignatureCheck, fault: Fault, i: u8) -> SignatureCheck {
        match fault {
            Fault::None => {}
            Fault::WrongRoot => check.signing_root = Root::from([i.wrapping_add(100); 32]),
            Fault::OtherSigner => {
                check.signature = key(i.wrapping_add(50)).sign(&check.signing_root)
            }
            Fault::GarbageSignature => check.signature = [0x17; 96].into(),
            Fault::GarbageKey => check.pubkey = [0x17; 48].into(),
            Fault::InfinityKey => {
                let mut infinity = [0u8; 48];
                infinity[0] = 0xc0;
                check.pubkey = infinity.into();
            }
            Fault::ValidPossession => {
                check.proof_of_possession = Some(key(i).proof_of_possession())
            }
            Fault::WrongPossession => {
                check.proof_of_possession = Some(key(i.wrapping_add(50)).proof_of_possession())
            }
        }
        check
    }

    fn fault() -> impl Strategy<Value = Fault> {
        prop_oneof![
            6 => Just(Fault::None),
            1 => Just(Fault::WrongRoot),
            1 => Just(Fault::OtherSigner),
            1 => Just(Fault::GarbageSignature),
            1 => Just(Fault::GarbageKey),
            1 => Just(Fault::InfinityKey),
            1 => Just(Fault::ValidPossession),
            1 => Just(Fault::WrongPossession),
        ]
    }

    fn threads(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn a_valid_batch_passes_on_any_number_of_threads_and_caches_its_keys() {
        let checks: Vec<_> = (0..24).map(check).collect();
        let randomness: Vec<u64> = (1..=24).collect();
        let keys = ValidatedKeys::new();
        for n in [1, 2, 3, 5, 24, 64] {
            assert!(verify_batch(&keys, &checks, &randomness, threads(n)), "{n} threads");
        }
        assert_eq!(keys.len(), 24);
        // With every key cached, the batch is still checked in full.
        let mut forged = checks.clone();
        forged[17].signing_root = Root::from([0xee; 32]);
        assert!(!verify_batch(&keys, &forged, &randomness, threads(2)));
    }

    #[test]
    fn invalid_keys_are_never_cached_and_bad_randomness_fails() {
        let keys = ValidatedKeys::new();
        let bad = apply(check(1), Fault::GarbageKey, 1);
        assert!(!verify_batch(&keys, &[bad], &[1], threads(1)));
        assert!(keys.is_empty());
        let good = [check(2)];
        assert!(!verify_batch(&keys, &good, &[0], threads(1)), "a zero scalar");
        assert!(!verify_batch(&keys, &good, &[], threads(1)), "a scalar missing");
        assert!(verify_batch(&keys, &[], &[], threads(1)));
    }

    #[test]
    fn verdicts_name_exactly_the_invalid_checks() {
        let keys = ValidatedKeys::new();
        let mut checks: Vec<_> = (0..12).map(check).collect();
        checks[3] = apply(checks[3].clone(), Fault::OtherSigner, 3);
        checks[9] = apply(checks[9].clone(), Fault::WrongPossession, 9);
        let verdicts = verify_signatures(&keys, &checks);
        let invalid: Vec<u64> = verdicts.iter().filter(|v| !v.valid).map(|v| v.request.0).collect();
        assert_eq!(invalid, [3, 9]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The node's batch and the engine crate's reference batch agree with verifying every
        /// check alone, whatever the faults, the thread count and what the cache holds.
        #[test]
        fn the_batch_equals_the_reference_and_one_by_one(
            faults in proptest::collection::vec(fault(), 1..20),
            threads_n in 1usize..5,
            warm in any::<bool>(),
            seed in 1u64..u64::MAX,
        ) {
            let checks: Vec<_> = faults
                .iter()
                .enumerate()
                .map(|(i, f)| apply(check(i as u8), *f, i as u8))
                .collect();
            let randomness: Vec<u64> =
                (0..checks.len() as u64).map(|i| seed.wrapping_mul(i + 1) | 1).collect();
            let keys = ValidatedKeys::new();
            if warm {
                let valid: Vec<_> = (0..checks.len() as u8).map(check).collect();
                verify_batch(&keys, &valid, &randomness, threads(1));
            }
            let expected = checks.iter().all(bls::verify_check);
            prop_assert_eq!(bls::verify_batch(&checks, &randomness), expected);
            prop_assert_eq!(verify_batch(&keys, &checks, &randomness, threads(threads_n)), expected);
        }
    }
}
