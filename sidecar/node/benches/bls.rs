//! Benchmark: 200 BLS-signed messages (one T1 round's commitments at 200 provers) verified as
//! one batch by the node (`sidecar_node::signatures::verify_batch`: keys validated once and
//! cached, the random linear combination's pairings shared across the cores; with a warm and a
//! cold cache), by the engine crate's reference batch (`phase_engine::bls::verify_batch`: blst's
//! multi-pairing), and one by one (`bls::verify_check`), in the same run. Run with
//! `cargo bench -p sidecar-node --bench bls`.

use std::{hint::black_box, num::NonZeroUsize};

use criterion::{Criterion, Throughput, criterion_main};
use phase_engine::{RequestId, Root, SignatureCheck, bls};
use sidecar_node::signatures::{ValidatedKeys, verify_batch};

/// `n` checks: distinct keys, each signing its own root (as 200 provers' commitments do).
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
    let threads = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let warm = ValidatedKeys::new();
    assert!(verify_batch(&warm, &checks, &randomness, threads));
    assert!(bls::verify_batch(&checks, &randomness));
    let mut group = c.benchmark_group("bls");
    group.sample_size(20);
    group.throughput(Throughput::Elements(200));
    group.bench_function("node_batch_200", |b| {
        b.iter(|| assert!(verify_batch(&warm, black_box(&checks), &randomness, threads)))
    });
    group.bench_function("node_batch_200_cold_keys", |b| {
        b.iter(|| {
            let cold = ValidatedKeys::new();
            assert!(verify_batch(&cold, black_box(&checks), &randomness, threads))
        })
    });
    group.bench_function("engine_batch_200", |b| {
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
