//! Proof parameters (from config) and the concrete Plonky3 configuration built from them.

use p3_challenger::DuplexChallenger;
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::coset::TwoAdicMultiplicativeCoset;
use p3_field::extension::BinomialExtensionField;
use p3_field::{Field, PrimeCharacteristicRing};
use p3_fri::{FriParameters, TwoAdicFriPcs};
use p3_koala_bear::{KoalaBear, Poseidon2KoalaBear, default_koalabear_poseidon2_16};
use p3_merkle_tree::MerkleTreeMmcs;
use p3_symmetric::{PaddingFreeSponge, TruncatedPermutation};
use p3_uni_stark::{
    AirLayout, ConjecturedSecurity, OpeningShape, StarkConfig, StarkSecurityParams,
};
use serde::{Deserialize, Serialize};

use crate::air::StarkAir;
use crate::error::{Error, Result};

/// The base field: KoalaBear (`p = 2^31 - 2^24 + 1`).
pub type Val = KoalaBear;
/// The challenge field: the degree-4 extension of KoalaBear (124 bits).
pub type Challenge = BinomialExtensionField<Val, 4>;
type Perm = Poseidon2KoalaBear<16>;
type Hash = PaddingFreeSponge<Perm, 16, 8, 8>;
type Compress = TruncatedPermutation<Perm, 2, 8, 16>;
type ValMmcs =
    MerkleTreeMmcs<<Val as Field>::Packing, <Val as Field>::Packing, Hash, Compress, 2, 8>;
type ChallengeMmcs = ExtensionMmcs<Val, Challenge, ValMmcs>;
pub(crate) type Challenger = DuplexChallenger<Val, Perm, 16, 8>;
type Dft = Radix2DitParallel<Val>;
pub(crate) type Pcs = TwoAdicFriPcs<Val, Dft, ValMmcs, ChallengeMmcs>;
/// The full Plonky3 STARK configuration: KoalaBear, Poseidon2 Merkle trees (arity 2, 8-element
/// digests, root only), two-adic FRI, duplex Poseidon2 challenger.
pub type StarkCfg = StarkConfig<Pcs, Challenge, Challenger>;

/// Bits of the challenge field, for the security estimate.
const CHALLENGE_FIELD_BITS: usize = 124;
/// Collision resistance of the Poseidon2 Merkle tree (8 x 31-bit digest, birthday bound).
const MERKLE_COLLISION_BITS: usize = 124;

/// Proof parameters, read from config (`[prover.proof]` or similar). Both the prover and the
/// verifier must use the same values: they are not carried in the proof.
///
/// The defaults (log blowup 1, 100 queries, 16 bits of query proof-of-work, folding arity 4,
/// final polynomial of 8 coefficients) give, as computed by `p3-uni-stark`, 106 conjectured bits
/// for the segment AIR at 2^12 rows, 104 at 2^14 and 100 at 2^18 (the default maximum size); see
/// [`Prover::security_bits`](crate::Prover::security_bits). Arity 4 keeps a 2^18-row proof at
/// about 210 KB, under [`MAX_PROOF_SIZE`](crate::MAX_PROOF_SIZE) (binary folding gives ~306 KB).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProofParams {
    /// `log2` of the FRI blowup factor (the Reed-Solomon rate is `2^-log_blowup`). At least 1.
    pub log_blowup: usize,
    /// Number of FRI queries.
    pub num_queries: usize,
    /// Proof-of-work bits before the FRI queries are sampled.
    pub query_pow_bits: usize,
    /// Proof-of-work bits before each FRI folding challenge.
    pub commit_pow_bits: usize,
    /// `log2` of the length of the final FRI polynomial.
    pub log_final_poly_len: usize,
    /// Maximum `log2` of the FRI folding arity.
    pub max_log_arity: usize,
    /// Minimum conjectured security in bits; [`Prover::new`](crate::Prover::new) refuses weaker
    /// parameters.
    pub min_security_bits: usize,
}

impl Default for ProofParams {
    fn default() -> Self {
        Self {
            log_blowup: 1,
            num_queries: 100,
            query_pow_bits: 16,
            commit_pow_bits: 0,
            log_final_poly_len: 3,
            max_log_arity: 2,
            min_security_bits: 100,
        }
    }
}

impl ProofParams {
    /// Checks ranges that Plonky3 would otherwise reject with a panic.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |key: &'static str, reason: &'static str| Err(Error::InvalidParams { key, reason });
        if !(1..=4).contains(&self.log_blowup) {
            return bad("log_blowup", "must be between 1 and 4");
        }
        if !(1..=1000).contains(&self.num_queries) {
            return bad("num_queries", "must be between 1 and 1000");
        }
        if self.query_pow_bits > 30 || self.commit_pow_bits > 30 {
            return bad("query_pow_bits", "proof-of-work bits must be at most 30");
        }
        if self.log_final_poly_len > 8 {
            return bad("log_final_poly_len", "must be at most 8");
        }
        if !(1..=4).contains(&self.max_log_arity) {
            return bad("max_log_arity", "must be between 1 and 4");
        }
        Ok(())
    }

    fn fri<M>(&self, mmcs: M) -> FriParameters<M> {
        FriParameters {
            log_blowup: self.log_blowup,
            log_final_poly_len: self.log_final_poly_len,
            max_log_arity: self.max_log_arity,
            num_queries: self.num_queries,
            batch_proof_of_work_bits: 0,
            commit_proof_of_work_bits: self.commit_pow_bits,
            query_proof_of_work_bits: self.query_pow_bits,
            mmcs,
        }
    }

    /// Builds the Plonky3 configuration.
    pub(crate) fn stark_config(&self) -> StarkCfg {
        let perm = default_koalabear_poseidon2_16();
        let val_mmcs = ValMmcs::new(Hash::new(perm.clone()), Compress::new(perm.clone()), 0);
        let fri = self.fri(ChallengeMmcs::new(val_mmcs.clone()));
        let pcs = Pcs::new(Dft::default(), val_mmcs, fri);
        StarkCfg::new(pcs, Challenger::new(perm))
    }

    /// Conjectured security in bits, as computed by `p3-uni-stark`, for `air` at `2^log_rows` rows.
    pub(crate) fn conjectured_security<A: StarkAir>(&self, air: &A, log_rows: u8) -> usize {
        let fri = self.fri(());
        let Some(domain) = TwoAdicMultiplicativeCoset::new(Val::ONE, usize::from(log_rows)) else {
            return 0;
        };
        let params = StarkSecurityParams::from_air::<Val, Challenge, _>(
            fri.security_regime(),
            air,
            AirLayout::from_air::<Val>(air),
            domain,
            CHALLENGE_FIELD_BITS,
            MERKLE_COLLISION_BITS,
            2,
            OpeningShape::new(),
            fri.grinding_sites(),
        );
        ConjecturedSecurity::compute_from_params(&params, usize::from(log_rows)).security_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_parse_from_toml_like_json() {
        ProofParams::default().validate().unwrap();
        let p: ProofParams = serde_json::from_str(r#"{"num_queries": 120}"#).unwrap();
        assert_eq!(p.num_queries, 120);
        assert_eq!(p.log_blowup, 1);
        assert!(serde_json::from_str::<ProofParams>(r#"{"bogus": 1}"#).is_err());
        let bad = ProofParams { log_blowup: 0, ..ProofParams::default() };
        assert!(matches!(bad.validate(), Err(Error::InvalidParams { key: "log_blowup", .. })));
    }
}
