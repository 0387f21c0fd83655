//! Benchmarks: selecting 200 of 1,000,000 provers, and engine message throughput with
//! verification answered instantly. Run with `cargo bench -p phase-engine --bench engine`.

use std::{collections::BTreeSet, hint::black_box};

use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use phase_engine::{
    Action, EngineConfig, GasPlan, Phase, ProtocolMessage, ProverIndex, ReputationBounds,
    UnixMillis, Verdict, select_provers, selection_seed, selection_size, test_utils::Scenario,
};

fn bench_selection(c: &mut Criterion) {
    let active: Vec<ProverIndex> = (0..1_000_000).map(ProverIndex).collect();
    // 10,000 provers busy in other rounds.
    let busy: BTreeSet<ProverIndex> = (0..10_000u64).map(|i| ProverIndex(i * 97)).collect();
    let bounds = ReputationBounds::default();
    let count = selection_size(200, (active.len() - busy.len()) as u64);
    let mut group = c.benchmark_group("selection");
    group.bench_function("select_200_of_1M", |b| {
        let mut slot = 0u64;
        b.iter(|| {
            slot += 1;
            let mix = phase_engine::Root::with_last_byte((slot % 251) as u8);
            let seed = selection_seed(
                &mix,
                &phase_engine::Root::repeat_byte(7),
                phase_engine::SubBlockIndex(0),
                phase_engine::Attempt((slot / 251) as u32),
            );
            let selected = select_provers(&active, count, &seed, 90, &bounds, |p| {
                (!busy.contains(&p)).then_some(p.0 % 200)
            })
            .unwrap();
            assert_eq!(selected.len(), 200);
            black_box(selected)
        })
    });
    group.finish();
}

fn bench_engine(c: &mut Criterion) {
    let config = EngineConfig {
        gas: GasPlan { gas_per_air: 150_000, ..GasPlan::default() },
        ..EngineConfig::default()
    };
    let mut s = Scenario::new(config, 1_000);
    let block = s.add_block(1, 30_000_000).unwrap();
    let key = s.round_keys(&block.root)[0];
    let selected = s.selected(&key);
    let t1 = s.time_in(&key, Phase::T1, 1_000);
    let t2 = s.time_in(&key, Phase::T2, 1_000);
    let t3 = s.time_in(&key, Phase::T3, 1_000);
    // Pre-signed: 200 commitments, every assigned partial, then 5 full proofs in T3.
    let mut messages: Vec<(ProtocolMessage, UnixMillis)> = Vec::new();
    for p in &selected {
        messages.push((s.commitment(&key, *p).into(), t1));
    }
    for p in &selected {
        for air in s.assignment(&key, *p) {
            messages.push((s.partial(&key, *p, air).into(), t2));
        }
    }
    for p in selected.iter().take(5) {
        let parts = s.assigned_parts(&key, *p);
        messages.push((s.full_proof(&key, *p, &parts).into(), t3));
    }
    let engine = s.engine.clone();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.sample_size(20);
    group.bench_function(format!("round_{}_messages_instant_verification", messages.len()), |b| {
        b.iter_batched(
            || (engine.clone(), messages.clone()),
            |(mut engine, messages)| {
                let mut accepted = 0u32;
                for (message, at) in messages {
                    engine.on_message(message, at).unwrap();
                    while let Some(action) = engine.poll_action() {
                        match action {
                            Action::VerifySignature(check) => {
                                let _ = engine
                                    .on_verification(Verdict {
                                        request: check.request,
                                        valid: true,
                                    })
                                    .unwrap();
                            }
                            Action::VerifyStark(check) => {
                                let _ = engine
                                    .on_verification(Verdict {
                                        request: check.request,
                                        valid: true,
                                    })
                                    .unwrap();
                            }
                            Action::Accepted(_) => accepted += 1,
                            _ => {}
                        }
                    }
                }
                black_box(accepted)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::bench_selection, super::bench_engine);
}
criterion_main!(group::benches);
