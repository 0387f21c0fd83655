//! Settlement of a 200-prover block: `settle` alone, and `settle` plus the settlement root.
//!
//! Three shapes of a round that finalises in T3 (the most work: T1 and T2 rules, reuse,
//! averaging, non-participation); every prover commits, 90% of the assigned partials arrive:
//! - `dense`: 200 AIRs, redundancy 2 (2 AIRs per prover), three valid full proofs;
//! - `default_plan`: the default plan of a full 50 Mgas block, 13 AIRs at redundancy 2, so most
//!   of the 200 selected provers hold no AIR, three valid full proofs;
//! - `16_airs_100_proofs`: 16 AIRs at redundancy 2 and 100 valid full proofs in T3, each reusing
//!   the other holders' partials.
//!
//! With `--features bench-reference`, each shape is also settled by `settle_reference` (the
//! map-based settlement `settle` replaced), the baseline of the ratio, checked to give the same
//! ledger.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use phase_engine::{
    AirIndex, Assignment, Attempt, BlockOutcome, CommitmentRecord, FullProofRecord, Inclusion,
    PartRef, PartialRecord, Phase, ProverIndex, Root, RoundKey, RoundOutcome, Slot, SubBlockIndex,
    UnixMillis, ValidatorIndex,
};
use rewards::{Config, settle};

fn outcome(num_provers: u64, num_airs: u32, num_proofs: u64) -> BlockOutcome {
    let root = Root::repeat_byte(3);
    let selected: Vec<ProverIndex> = (0..num_provers).map(ProverIndex).collect();
    // AIR a goes to provers (2a) mod n and (2a + 1) mod n.
    let holders = |a: u32| [u64::from(2 * a) % num_provers, u64::from(2 * a + 1) % num_provers];
    let assignments: Vec<Assignment> = selected
        .iter()
        .map(|p| Assignment {
            prover: *p,
            airs: (0..num_airs).filter(|a| holders(*a).contains(&p.0)).map(AirIndex).collect(),
        })
        .collect();
    let at = |t: u64, phase, v: u64| Inclusion {
        arrived_at: UnixMillis(t),
        phase,
        validator: ValidatorIndex(v),
    };
    let commitments = selected
        .iter()
        .map(|p| CommitmentRecord { prover: *p, inclusion: at(1_000 + p.0, Phase::T1, 1) })
        .collect();
    let partials = assignments
        .iter()
        .flat_map(|a| a.airs.iter().map(move |air| (a.prover, *air)))
        .filter(|(p, air)| (p.0 + u64::from(air.0)) % 10 != 0)
        .map(|(prover, air)| PartialRecord {
            prover,
            air,
            assigned: true,
            inclusion: at(5_000 + prover.0, Phase::T2, 1 + prover.0 % 3),
        })
        .collect();
    let full_proofs = (0..num_proofs)
        .map(|k: u64| {
            let submitter = ProverIndex(k);
            let parts: Vec<PartRef> = (0..num_airs)
                .map(|a| PartRef {
                    author: ProverIndex(holders(a)[(k % 2) as usize]),
                    air: AirIndex(a),
                })
                .collect();
            let reused = parts.iter().copied().filter(|p| p.author != submitter).collect();
            FullProofRecord { submitter, parts, reused, inclusion: at(9_000 + k, Phase::T3, 2) }
        })
        .collect();
    BlockOutcome {
        block_root: root,
        slot: Slot(1),
        proposer: ValidatorIndex(1),
        rounds: vec![RoundOutcome {
            key: RoundKey { block_root: root, sub_block: SubBlockIndex(0), attempt: Attempt(0) },
            num_airs,
            selected,
            assignments,
            declined: vec![],
            commitments,
            partials,
            full_proofs,
            finalized_in: Some(Phase::T3),
            equivocations: vec![],
        }],
        aggregators: vec![],
        agg_proofs: vec![],
    }
}

fn bench(c: &mut Criterion) {
    let table = Config::default().table;
    for (name, airs, proofs) in
        [("dense", 200, 3), ("default_plan", 13, 3), ("16_airs_100_proofs", 16, 100)]
    {
        let o = outcome(200, airs, proofs);
        let ledger = settle(&o, &table).expect("settles");
        eprintln!("{name}: {} ledger entries", ledger.len());
        #[cfg(feature = "bench-reference")]
        {
            let reference = rewards::settle_reference(&o, &table).expect("settles");
            assert_eq!(ledger, reference, "{name}: settle and settle_reference differ");
            c.bench_function(&format!("settle_reference_200_provers_{name}"), |b| {
                b.iter(|| rewards::settle_reference(black_box(&o), black_box(&table)))
            });
        }
        c.bench_function(&format!("settle_200_provers_{name}"), |b| {
            b.iter(|| settle(black_box(&o), black_box(&table)))
        });
        c.bench_function(&format!("settle_and_root_200_provers_{name}"), |b| {
            b.iter(|| settle(black_box(&o), black_box(&table)).map(|l| l.settlement_root()))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
