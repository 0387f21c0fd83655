//! Benchmarks of the node's infrastructure: durable store commits and gossip encoding.
//!
//! `cargo bench -p sidecar-node --bench node`

// `criterion_group!` and `criterion_main!` generate undocumented items.
#![allow(missing_docs)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use libp2p::gossipsub::{DataTransform, RawMessage, TopicHash};
use phase_engine::{Amount, ProverIndex, Root};
use sidecar_node::{Store, StoreBatch};
use sidecar_p2p::{SnappyTransform, message_id};

/// Deterministic high-entropy bytes (proofs do not compress).
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    let payload = noise(1024);
    let mut group = c.benchmark_group("store");
    let mut i = 0u64;
    group.bench_function("put_message_1KiB_durable", |b| {
        b.iter(|| {
            i += 1;
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&i.to_be_bytes());
            store.put_message(Root::repeat_byte(1), id, &payload).unwrap();
        });
    });
    let entry = noise(200);
    group.bench_function("settlement_batch_100_entries_10_balances", |b| {
        b.iter_batched(
            || {
                i += 1;
                let mut block = [0u8; 32];
                block[..8].copy_from_slice(&i.to_be_bytes());
                let block = Root::from(block);
                let mut batch = StoreBatch::new();
                for k in 0..100 {
                    batch.put_ledger_entry(block, k, &entry);
                }
                for p in 0..10 {
                    batch.add_balance(ProverIndex(p), Amount(5));
                }
                batch
            },
            |batch| store.commit(batch).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn gossip(c: &mut Criterion) {
    let proof = noise(200 * 1024);
    let topic = TopicHash::from_raw("/proving-sidecar-0/partial_proof/ssz_snappy");
    let transform = SnappyTransform::default();
    let mut group = c.benchmark_group("gossip");
    group.throughput(Throughput::Bytes(proof.len() as u64));
    group.bench_function("snappy_encode_decode_200KiB", |b| {
        b.iter(|| {
            let wire = transform.outbound_transform(&topic, proof.clone()).unwrap();
            let raw = RawMessage {
                source: None,
                data: wire,
                sequence_number: None,
                topic: topic.clone(),
                signature: None,
                key: None,
                validated: false,
            };
            transform.inbound_transform(raw).unwrap()
        });
    });
    group.bench_function("message_id_200KiB", |b| b.iter(|| message_id(topic.as_str(), &proof)));
    group.finish();
}

criterion_group!(benches, store, gossip);
criterion_main!(benches);
