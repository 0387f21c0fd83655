//! Benchmark: 200 BLS-signed messages (one T1 round's commitments at 200 provers) verified as
//! one batch (`bls::verify_batch`: random linear combination, one multi-pairing) against one by
//! one (`bls::verify_check`). Run with `cargo bench -p phase-engine --bench bls`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use phase_engine::{RequestId, Root, SignatureCheck, bls};

/// 200 checks: distinct keys, each signing its own root (as 200 provers' commitments do).
fn checks(n: u64) -> Vec<SignatureCheck> {
    (0..n)
        .map(|i| {
            let mut ikm = [0u8; 32];
            ikm[..8].copy_from_slice(&i.to_le_bytes());
            let key = bls::SecretKey::from_ikm(&ikm).unwrap();
            let mut root = [0u8; 32];
            root[..8].copy_from_slice(&(i * 7 + 1).to_le_bytes());
            let signing_root = Root::from(root);
            SignatureCheck {
                request: RequestId(i),
                pubkey: key.public_key(),
                signing_root,
                signature: key.sign(&signing_root),
                proof_of_possession: None,
            }
        })
        .collect()
}

fn bench_bls(c: &mut Criterion) {
    let checks = checks(200);
    // Non-zero, distinct scalars (the node draws them from the OS; any fixed set is as costly).
    let randomness: Vec<u64> =
        (0..200u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).collect();
    assert!(bls::verify_batch(&checks, &randomness));
    let mut group = c.benchmark_group("bls");
    group.sample_size(20);
    group.throughput(Throughput::Elements(200));
    group.bench_function("batch_200", |b| {
        b.iter(|| assert!(bls::verify_batch(black_box(&checks), black_box(&randomness))))
    });
    group.bench_function("one_by_one_200", |b| {
        b.iter(|| assert!(black_box(&checks).iter().all(bls::verify_check)))
    });
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_bls);
}
criterion_main!(group::benches);
