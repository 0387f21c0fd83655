//! The encodings of STARK proofs and their bundles (`plonky3-prover`): partial and batch
//! proofs (`ProofPart`), full proofs (every part inside) and AggProofs (every full proof
//! inside), as they arrive in `SignedPartialProof.proof`, `FullProofBody.bundle` and
//! `AggProof.bundle`. Every decoder sees every input (each checks its own kind byte). Decoding
//! is canonical: an accepted proof keeps its bytes, and those bytes decode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plonky3_prover::{AggProof, BatchPartialProof, FullProof, PartialProof, ProofPart};

fuzz_target!(|data: &[u8]| {
    if let Ok(part) = ProofPart::from_bytes(data) {
        assert_eq!(part.as_bytes(), data);
        let _ = (part.trace_root(), part.statements(), part.author());
    }
    if let Ok(partial) = PartialProof::from_bytes(data) {
        assert_eq!(partial.as_bytes(), data);
        assert!(PartialProof::from_bytes(partial.as_bytes()).is_ok());
    }
    if let Ok(batch) = BatchPartialProof::from_bytes(data) {
        assert_eq!(batch.as_bytes(), data);
        assert!(BatchPartialProof::from_bytes(batch.as_bytes()).is_ok());
    }
    if let Ok(full) = FullProof::from_bytes(data) {
        assert_eq!(full.as_bytes(), data);
        assert!(FullProof::from_bytes(full.as_bytes()).is_ok());
    }
    if let Ok(agg) = AggProof::from_bytes(data) {
        assert_eq!(agg.as_bytes(), data);
        assert_eq!(agg.sub_blocks().len(), agg.header().num_sub_blocks as usize);
        assert!(AggProof::from_bytes(agg.as_bytes()).is_ok());
    }
});
