//! Stored proofs in `tests/fixtures/` that fail when the format or the proof system changes by
//! accident.
//!
//! Proof bytes are not reproducible (the proof-of-work witness found by parallel grinding varies),
//! so the fixtures are checked on what is deterministic: the version and kind bytes, the encoded
//! header, the trace commitment (recomputed with `commit`), re-encoding, and verification.
//!
//! After an intentional format change, bump `FORMAT_VERSION` and regenerate:
//! `UPDATE_FIXTURES=1 cargo test -p plonky3-prover --test it fixtures::regenerate -- --ignored`.

use std::path::PathBuf;

use plonky3_prover::{
    BatchHeader, BatchPartialProof, FORMAT_VERSION, FullProof, PartialHeader, PartialProof,
};

use crate::common::{alice, block_plan, bob, prover};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

const PARTIAL: &str = "partial_v1.bin";
const FULL: &str = "full_v1.bin";
const BATCH: &str = "batch_v1.bin";
const FIXTURE_ROUND: u8 = 0xf1;

#[test]
#[ignore = "writes the fixtures; run with UPDATE_FIXTURES=1"]
fn regenerate() {
    if std::env::var_os("UPDATE_FIXTURES").is_none() {
        return;
    }
    let p = prover();
    let plan = block_plan(FIXTURE_ROUND);
    let sb = &plan.sub_blocks[1];
    let a = p.prove_partial(&sb.segments[0], &alice()).unwrap();
    let b = p.prove_partial(&sb.segments[1], &bob()).unwrap();
    std::fs::create_dir_all(path("")).unwrap();
    std::fs::write(path(PARTIAL), a.as_bytes()).unwrap();
    let full = FullProof::build(alice(), sb, vec![a, b]).unwrap();
    std::fs::write(path(FULL), full.as_bytes()).unwrap();
    let sb0 = &plan.sub_blocks[0];
    let batch = p.prove_batch(&[sb0.segments[0], sb0.segments[2]], &alice()).unwrap();
    std::fs::write(path(BATCH), batch.as_bytes()).unwrap();
}

#[test]
fn batch_fixture_still_decodes_and_verifies() {
    let bytes = std::fs::read(path(BATCH)).unwrap();
    assert_eq!(&bytes[..2], &[FORMAT_VERSION, 4], "version and kind bytes");
    let proof = BatchPartialProof::from_bytes(&bytes).unwrap();
    let plan = block_plan(FIXTURE_ROUND);
    let specs = [plan.sub_blocks[0].segments[0], plan.sub_blocks[0].segments[2]];
    let expected = BatchHeader { statements: specs.to_vec(), author: alice() };
    assert_eq!(proof.header(), &expected);
    let header_bytes = postcard::to_allocvec(&expected).unwrap();
    assert_eq!(&bytes[2..2 + header_bytes.len()], header_bytes.as_slice());
    assert_eq!(proof.trace_root(), prover().commit_batch(&specs, &alice()).unwrap());
    prover().verify_batch(&proof, &specs, &alice(), Some(&proof.trace_root())).unwrap();
}

#[test]
fn partial_fixture_still_decodes_and_verifies() {
    let bytes = std::fs::read(path(PARTIAL)).unwrap();
    assert_eq!(bytes[0], FORMAT_VERSION, "version byte");
    assert_eq!(bytes[1], 1, "kind byte: partial");
    let proof = PartialProof::from_bytes(&bytes).unwrap();
    let plan = block_plan(FIXTURE_ROUND);
    let spec = plan.sub_blocks[1].segments[0];
    let expected = PartialHeader { statement: spec, author: alice() };
    assert_eq!(
        proof.header(),
        &expected,
        "the fixture's statement is still what the plan computes"
    );
    // The header is encoded right after the two envelope bytes, exactly as today.
    let header_bytes = postcard::to_allocvec(&expected).unwrap();
    assert_eq!(&bytes[2..2 + header_bytes.len()], header_bytes.as_slice());
    assert_eq!(header_bytes.len(), 151, "header layout");
    // The trace commitment is deterministic: the AIR, trace generation and Merkle hashing are
    // unchanged.
    assert_eq!(proof.trace_root(), prover().commit(&spec, &alice()).unwrap());
    prover().verify_partial(&proof, &spec, &alice(), Some(&proof.trace_root())).unwrap();
}

#[test]
fn full_fixture_still_decodes_and_verifies() {
    let bytes = std::fs::read(path(FULL)).unwrap();
    assert_eq!(&bytes[..2], &[FORMAT_VERSION, 2]);
    let full = FullProof::from_bytes(&bytes).unwrap();
    assert_eq!(full.as_bytes(), bytes.as_slice());
    let plan = block_plan(FIXTURE_ROUND);
    let report = prover().verify_full(&full, &plan.sub_blocks[1]).unwrap();
    let reused: Vec<_> = report.reused().map(|r| (r.air_index.0, r.author)).collect();
    assert_eq!(reused, vec![(1, bob())]);
    let partial = std::fs::read(path(PARTIAL)).unwrap();
    assert_eq!(full.parts()[0].as_bytes(), partial.as_slice());
}
