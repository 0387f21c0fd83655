//! Benchmarks of `plonky3-prover`:
//!
//! * `partial/*`: prove, verify and commit-only (T1) at 2^12..2^18 rows, and raw
//!   `p3_uni_stark::prove` on the same AIR, config, trace and public values (the baseline);
//!   proof sizes are printed.
//! * `full_36m`: verifying the full proof of a 36M-gas block with the default gas parameters
//!   (4M gas per AIR -> 9 AIRs of 2^14 rows).
//! * `batch_vs_separate`: 8 AIRs of 2^14 rows, one `p3-batch-stark` proof vs 8 uni-STARK proofs.
//!
//! Run: `cargo bench -p plonky3-prover --bench prover` (set `PROVER_BENCH_LOG_ROWS=12,14` to
//! restrict sizes).

#![allow(missing_docs)] // `criterion_group!` generates undocumented items.

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use p3_batch_stark::{ProverData, StarkInstance, prove_batch, verify_batch};
use plonky3_prover::{
    AuthorKey, ChainState, FullProof, Gas, ProofParams, Prover, RoundDigest, SegmentParams,
    SegmentSpec, SegmentWorkload, SubBlockWork, Workload, num_airs_for_gas, plan_block,
    segment_public_values,
};

fn prover() -> Prover {
    Prover::new(ProofParams::default(), SegmentWorkload::default()).expect("prover")
}

fn spec(p: &Prover, log_rows: u8) -> SegmentSpec {
    // One AIR whose gas gives exactly 2^log_rows rows.
    let gas = Gas(p.workload().params().gas_per_row << log_rows);
    let txs = [b"bench".to_vec()];
    let plan = plan_block(
        p.workload(),
        RoundDigest([7; 32]),
        ChainState::ZERO,
        &[SubBlockWork { transactions: &txs[..], gas, num_airs: 1 }],
    )
    .expect("plan");
    let s = plan.sub_blocks[0].segments[0];
    assert_eq!(s.log_rows, log_rows);
    s
}

fn sizes() -> Vec<u8> {
    std::env::var("PROVER_BENCH_LOG_ROWS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![12, 14, 16, 18])
}

fn partial(c: &mut Criterion) {
    let p = prover();
    let key = AuthorKey([0xa1; 48]);
    let kd = key.digest();
    for log in sizes() {
        let s = spec(&p, log);
        let mut g = c.benchmark_group(format!("partial/2^{log}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(if log >= 18 { 20 } else { 5 }));
        g.bench_function("prove_partial", |b| b.iter(|| p.prove_partial(&s, &key).expect("prove")));
        let trace = p.workload().generate_trace(&s, &kd).expect("trace");
        let pv = segment_public_values(&s, &kd);
        g.bench_function("raw_p3_uni_stark_prove", |b| {
            b.iter_batched(
                || trace.clone(),
                |t| {
                    p3_uni_stark::prove(p.stark_config(), p.workload().air(), t, &pv)
                        .expect("raw prove")
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("commit_t1", |b| b.iter(|| p.commit(&s, &key).expect("commit")));
        let proof = p.prove_partial(&s, &key).expect("prove");
        g.bench_function("verify_partial", |b| {
            b.iter(|| {
                p.verify_partial(&proof, &s, &key, Some(&proof.trace_root())).expect("verify")
            })
        });
        eprintln!(
            "partial/2^{log}: proof size {} bytes, conjectured security {} bits",
            proof.as_bytes().len(),
            p.security_bits(log).unwrap_or(0)
        );
        g.finish();
        interleaved_ratio(&p, &s, &key, log);
    }
}

/// Times `prove_partial` and raw `p3_uni_stark::prove` alternately (so background load hits both
/// alike) and prints the median ratio. Raw is timed twice: on a prepared trace (prove only) and
/// including trace generation (what any prover of this AIR must do).
fn interleaved_ratio(p: &Prover, s: &SegmentSpec, key: &AuthorKey, log: u8) {
    let kd = key.digest();
    let pv = segment_public_values(s, &kd);
    let rounds = match log {
        0..=14 => 41,
        15..=16 => 15,
        _ => 5,
    };
    let (mut ours, mut raw, mut raw_gen) = (Vec::new(), Vec::new(), Vec::new());
    let time_ours = |ours: &mut Vec<f64>| {
        let t = Instant::now();
        std::hint::black_box(p.prove_partial(s, key).expect("prove"));
        ours.push(t.elapsed().as_secs_f64());
    };
    for i in 0..rounds {
        // Alternate who goes first, so neither side systematically follows the other's drops.
        if i % 2 == 0 {
            time_ours(&mut ours);
        }
        let trace = p.workload().generate_trace(s, &kd).expect("trace");
        let t = Instant::now();
        std::hint::black_box(
            p3_uni_stark::prove(p.stark_config(), p.workload().air(), trace, &pv).expect("raw"),
        );
        raw.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let trace = p.workload().generate_trace(s, &kd).expect("trace");
        std::hint::black_box(
            p3_uni_stark::prove(p.stark_config(), p.workload().air(), trace, &pv).expect("raw"),
        );
        raw_gen.push(t.elapsed().as_secs_f64());
        if i % 2 == 1 {
            time_ours(&mut ours);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (o, r, rg) = (median(&mut ours), median(&mut raw), median(&mut raw_gen));
    eprintln!(
        "ratio 2^{log} ({rounds} interleaved rounds, medians): prove_partial {:.1} ms, raw prove {:.1} ms, raw trace-gen+prove {:.1} ms; ratio vs raw prove {:.3}x, vs raw trace-gen+prove {:.3}x",
        o * 1e3,
        r * 1e3,
        rg * 1e3,
        o / r,
        o / rg
    );
}

fn full_36m(c: &mut Criterion) {
    let p = prover();
    let gas = Gas(36_000_000);
    let num_airs = num_airs_for_gas(gas, Gas(4_000_000));
    let txs: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_le_bytes().repeat(40)).collect();
    let plan = plan_block(
        p.workload(),
        RoundDigest([36; 32]),
        ChainState::ZERO,
        &[SubBlockWork { transactions: &txs[..], gas, num_airs }],
    )
    .expect("plan");
    let sb = &plan.sub_blocks[0];
    let authors: Vec<AuthorKey> = (0..3u8).map(|i| AuthorKey([i + 1; 48])).collect();
    let start = std::time::Instant::now();
    let parts = sb
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| p.prove_partial(s, &authors[i % 3]).expect("prove"))
        .collect();
    eprintln!(
        "full_36m: proving {} AIRs of 2^{} rows took {:?}",
        sb.segments.len(),
        sb.segments[0].log_rows,
        start.elapsed()
    );
    let full = FullProof::build(authors[0], sb, parts).expect("build");
    eprintln!("full_36m: full proof size {} bytes", full.as_bytes().len());
    // The same block when each of the 3 provers packs its 3 AIRs into one batch proof.
    let batched: Vec<plonky3_prover::ProofPart> = (0..3)
        .map(|a| {
            let mine: Vec<SegmentSpec> = sb.segments.iter().skip(a).step_by(3).copied().collect();
            p.prove_batch(&mine, &authors[a]).expect("batch").into()
        })
        .collect();
    let full_batched = FullProof::build(authors[0], sb, batched).expect("build");
    eprintln!("full_36m: batched full proof size {} bytes", full_batched.as_bytes().len());
    let mut g = c.benchmark_group("full_36m");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.bench_function("decode_and_verify_full", |b| {
        b.iter(|| {
            let f = FullProof::from_bytes(full.as_bytes()).expect("decode");
            p.verify_full(&f, sb).expect("verify")
        })
    });
    g.bench_function("decode_and_verify_full_batched_3x3", |b| {
        b.iter(|| {
            let f = FullProof::from_bytes(full_batched.as_bytes()).expect("decode");
            p.verify_full(&f, sb).expect("verify")
        })
    });
    g.finish();
}

fn batch_vs_separate(c: &mut Criterion) {
    let p = prover();
    let key = AuthorKey([0xa1; 48]);
    let kd = key.digest();
    let w = SegmentWorkload::new(SegmentParams::default()).expect("workload");
    let txs = [b"batch".to_vec()];
    let plan = plan_block(
        &w,
        RoundDigest([8; 32]),
        ChainState::ZERO,
        &[SubBlockWork { transactions: &txs[..], gas: Gas(8 * 4_000_000), num_airs: 8 }],
    )
    .expect("plan");
    let specs = &plan.sub_blocks[0].segments;
    let traces: Vec<_> = specs.iter().map(|s| w.generate_trace(s, &kd).expect("trace")).collect();
    let pvs: Vec<_> = specs.iter().map(|s| segment_public_values(s, &kd)).collect();
    let airs = vec![*w.air(); specs.len()];
    let trace_refs: Vec<_> = traces.iter().collect();
    let instances = StarkInstance::new_multiple(&airs, &trace_refs, &pvs);
    let cfg = p.stark_config();
    let data = ProverData::from_instances(cfg, &instances).expect("prover data");

    let mut g = c.benchmark_group("batch_vs_separate/8x2^14");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("separate_prove", |b| {
        b.iter(|| {
            specs.iter().map(|s| p.prove_partial(s, &key).expect("prove")).collect::<Vec<_>>()
        })
    });
    g.bench_function("batch_prove", |b| {
        b.iter(|| prove_batch(cfg, &instances, &data).expect("batch prove"))
    });
    let separate: Vec<_> = specs.iter().map(|s| p.prove_partial(s, &key).expect("prove")).collect();
    let batch = prove_batch(cfg, &instances, &data).expect("batch prove");
    g.bench_function("separate_verify", |b| {
        b.iter(|| {
            for (pp, s) in separate.iter().zip(specs) {
                p.verify_partial(pp, s, &key, None).expect("verify");
            }
        })
    });
    g.bench_function("batch_verify", |b| {
        b.iter(|| verify_batch(cfg, &airs, &batch, &pvs, &data.common).expect("batch verify"))
    });
    g.bench_function("separate_commit_t1", |b| {
        b.iter(|| specs.iter().map(|s| p.commit(s, &key).expect("commit")).collect::<Vec<_>>())
    });
    g.bench_function("batch_commit_t1", |b| {
        b.iter(|| p.commit_batch(specs, &key).expect("commit"))
    });
    let sep_size: usize = separate.iter().map(|pp| pp.as_bytes().len()).sum();
    let batch_size = postcard::to_allocvec(&batch).expect("encode").len();
    eprintln!("batch_vs_separate: separate total {sep_size} bytes, batch {batch_size} bytes");
    g.finish();
}

criterion_group!(benches, partial, full_36m, batch_vs_separate);
criterion_main!(benches);
