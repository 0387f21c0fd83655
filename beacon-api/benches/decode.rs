//! Decoding costs on the sidecar's hot path: a gigagas block (10,000 transactions of 128 bytes)
//! from `GET /eth/v2/beacon/blocks`, and a burst of SSE events split into small chunks.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use beacon_api::{ApiResponse, SignedBeaconBlock, decode_event_stream};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::Value;

fn gigagas_block_json() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures/block_v2_electra.json");
    let mut block: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tx = format!("0x{}", "ab".repeat(128));
    let payload = &mut block["data"]["message"]["body"]["execution_payload"];
    payload["transactions"] = Value::Array(vec![Value::String(tx); 10_000]);
    payload["gas_used"] = Value::String("1000000000".into());
    serde_json::to_string(&block).unwrap()
}

fn sse_text(events: u64) -> String {
    let root = "0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf";
    (0..events)
        .map(|slot| {
            format!("event: head\ndata: {{\"slot\":\"{slot}\",\"block\":\"{root}\",\"state\":\"{root}\",\"epoch_transition\":false,\"execution_optimistic\":false}}\n\n: keep-alive\n\n")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let block = gigagas_block_json();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(block.len() as u64));
    group.bench_function("gigagas_block_json", |b| {
        b.iter(|| serde_json::from_str::<ApiResponse<SignedBeaconBlock>>(&block).unwrap())
    });
    let text = sse_text(1000);
    group.throughput(Throughput::Elements(1000));
    group.bench_function("sse_1000_events_64_byte_chunks", |b| {
        b.iter(|| {
            let chunks = text.as_bytes().chunks(64).map(Ok::<_, std::convert::Infallible>);
            let events = futures::executor::block_on(
                decode_event_stream(futures::stream::iter(chunks)).collect::<Vec<_>>(),
            );
            assert_eq!(events.len(), 1000);
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
