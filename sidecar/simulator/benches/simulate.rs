//! Simulator throughput: 1,000 provers (`configs/scenarios/default.toml`), modelled proving,
//! the shipped reward table (`configs/rewards.toml`). Reported as blocks per second.
//!
//! `cargo bench -p sidecar-simulator --bench simulate`

// `criterion_main!` generates an undocumented `main`.
#![allow(missing_docs)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sidecar_simulator::{Scenario, SimOptions, simulate};

/// The `sidecar` binary's allocator, so that the bench measures what users run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BLOCKS: u64 = 200;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = rewards::Config::from_toml_str(
        &std::fs::read_to_string(root.join("configs/rewards.toml")).expect("configs/rewards.toml"),
    )
    .expect("valid reward config");
    let mut scenario =
        Scenario::load(&root.join("configs/scenarios/default.toml")).expect("default scenario");
    scenario.blocks = BLOCKS;
    assert_eq!(scenario.provers.iter().filter(|p| p.join_at_block == 0).count(), 1000);

    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BLOCKS));
    group.bench_function("default_1000_provers_200_blocks", |b| {
        b.iter(|| {
            let report = simulate(&scenario, &config, &SimOptions::default(), |_| Ok(()))
                .expect("simulation");
            assert_eq!(report.blocks, BLOCKS);
            report
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No criterion plots: the run is long and few-sampled, and the report lives in BENCHMARKS.md.
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
