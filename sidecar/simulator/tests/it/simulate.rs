//! The simulator end to end: determinism, exact ledgers worked out from the spec's table, and
//! agreement with the engine's own scenario harness on the same round.

use phase_engine::test_utils::Scenario as Harness;
use phase_engine::{AirIndex, PartRef, Phase, ProverIndex, Root, RoundKey, UnixMillis};
use sidecar_simulator::{
    AccountKind, BlockFate, LedgerRow, ProofMode, RunReport, Scenario, SimError, SimOptions,
    simulate, simulated_block,
};

/// The shipped reward table (`configs/rewards.toml`).
fn config() -> rewards::Config {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/rewards.toml"))
            .expect("configs/rewards.toml");
    rewards::Config::from_toml_str(&text).expect("valid shipped reward config")
}

fn run(toml: &str) -> (RunReport, Vec<LedgerRow>) {
    let scenario = Scenario::from_toml_str(toml).expect("scenario");
    let mut rows = Vec::new();
    let report = simulate(&scenario, &config(), &SimOptions::default(), |block| {
        rows.extend_from_slice(block);
        Ok(())
    })
    .expect("simulation");
    (report, rows)
}

/// `(account kind, account, rule) -> amount`, sorted, for comparing ledgers.
fn entries(rows: &[LedgerRow]) -> Vec<(AccountKind, u64, &'static str, i64)> {
    let mut v: Vec<_> =
        rows.iter().map(|r| (r.account_kind, r.account, r.rule, r.amount)).collect();
    v.sort();
    v
}

const MIXED: &str = r#"
    seed = 11
    blocks = 30
    provers = 60
    validators = 50
    [gas]
    kind = "mix"
    components = [ { weight = 4, min = 2_000_000, max = 30_000_000 }, { weight = 1, gas = 120_000_000 } ]
    [[group]]
    behaviour = "honest"
    weight = 6
    [[group]]
    behaviour = "honest"
    weight = 1
    solo_full_proof = true
    latency.per_air = { kind = "lognormal", median_ms = 500, sigma = 0.6 }
    [[group]]
    behaviour = "lazy"
    weight = 1
    [[group]]
    behaviour = "copier"
    weight = 1
    [[group]]
    behaviour = "withholder"
    weight = 1
    [[group]]
    behaviour = "decliner"
    weight = 1
    [[group]]
    behaviour = "slow"
    weight = 1
    [[group]]
    behaviour = "aggregator_only"
    weight = 1
    [[join]]
    at_block = 10
    count = 5
    behaviour = "honest"
    [[exit]]
    at_block = 20
    count = 3
    behaviour = "lazy"
"#;

#[test]
fn a_run_is_deterministic_given_its_seed() {
    let (a, rows_a) = run(MIXED);
    let (b, rows_b) = run(MIXED);
    assert_eq!(a.ledger_root, b.ledger_root);
    assert_eq!(rows_a, rows_b);
    assert_eq!(a.blocks, 30);
    assert_eq!(a.block_log.len(), 30);
    assert!(!rows_a.is_empty());
    let (c, _) = run(&MIXED.replace("seed = 11", "seed = 12"));
    assert_ne!(a.ledger_root, c.ledger_root);
    // Totals add up: every prover's total is the sum of its entries.
    for p in &a.provers {
        let sum: i64 = rows_a
            .iter()
            .filter(|r| r.account_kind == AccountKind::Prover && r.account == p.index.0)
            .map(|r| r.amount)
            .sum();
        assert_eq!(sum, p.total, "prover {}", p.index);
    }
    // The misbehaving copies were rejected by the engine, not paid.
    assert!(a.rejections.keys().any(|k| k == "InvalidProof"), "{:?}", a.rejections);
    // Some blocks needed sub-blocks (120 Mgas / 50 Mgas per sub-block).
    assert!(a.block_log.iter().any(|b| b.sub_blocks > 1));
}

/// Two provers: `min(PROVERS_PER_PROOF, 2 / 2) = 1` is selected, holds the one AIR of a 4 Mgas
/// block, proves it alone in 10 + 100 ms and sends the full proof with its commitment in T1.
#[test]
fn full_proof_in_t1_pays_the_t1_table() {
    let (report, rows) = run(r#"
        blocks = 1
        provers = 2
        validators = 1
        [gas]
        kind = "fixed"
        gas = 4_000_000
        [defaults]
        solo_full_proof = true
        latency = { commit = { kind = "fixed", ms = 10 }, per_air = { kind = "fixed", ms = 100 }, aggregate = { kind = "fixed", ms = 100 } }
        "#);
    assert_eq!(report.block_log[0].fate, BlockFate::Finalized(Phase::T1));
    let selected = rows.iter().find(|r| r.account_kind == AccountKind::Prover).unwrap().account;
    // REWARD_FULL_PROOF_PROVER_T1 = 9000 to the (only) selected prover, REWARD_FULL_PROOF_SENDER_T1
    // = 50 extra to it as the sender, REWARD_FULL_PROOF_VALIDATOR_T1 = 1000 to validator 0 (the
    // only validator proposes the block after the proof's arrival).
    let mut expected = vec![
        (AccountKind::Prover, selected, "REWARD_FULL_PROOF_PROVER_T1", 9000),
        (AccountKind::Prover, selected, "REWARD_FULL_PROOF_SENDER_T1", 50),
        (AccountKind::Validator, 0, "REWARD_FULL_PROOF_VALIDATOR_T1", 1000),
    ];
    expected.sort();
    assert_eq!(entries(&rows), expected);
    assert!(rows.iter().all(|r| r.phase == Phase::T1));
    let totals: Vec<i64> = report.provers.iter().map(|p| p.total).collect();
    assert!(totals == [9050, 0] || totals == [0, 9050], "{totals:?}");
}

/// Four honest provers, a 8 Mgas block of 2 AIRs: 2 are selected and, with redundancy 2, both
/// hold both AIRs. Both commit (T1) and send both partials (T2); nobody has a full proof before
/// T3, where both aggregate their own partials only.
const T3_NO_REUSE: &str = r#"
    blocks = 1
    provers = 4
    validators = 1
    [gas]
    kind = "fixed"
    gas = 8_000_000
    [defaults]
    latency = { commit = { kind = "fixed", ms = 10 }, per_air = { kind = "fixed", ms = 100 }, aggregate = { kind = "fixed", ms = 100 } }
"#;

#[test]
fn aggregation_in_t3_pays_the_t3_table() {
    let (report, rows) = run(T3_NO_REUSE);
    assert_eq!(report.block_log[0].fate, BlockFate::Finalized(Phase::T3));
    let mut selected: Vec<u64> =
        rows.iter().filter(|r| r.rule == "REWARD_PROVER_T3").map(|r| r.account).collect();
    selected.sort();
    assert_eq!(selected.len(), 2);
    let mut expected = vec![
        // T1: REWARD_T1_VALIDATOR 3 x 2 commitments.
        (AccountKind::Validator, 0, "REWARD_T1_VALIDATOR", 6),
        // T2: REWARD_T2_VALIDATOR 3 x 4 partials.
        (AccountKind::Validator, 0, "REWARD_T2_VALIDATOR", 12),
        // T3: REWARD_VALIDATOR_T3 1 x 2 full proofs.
        (AccountKind::Validator, 0, "REWARD_VALIDATOR_T3", 2),
    ];
    for p in &selected {
        // T2: REWARD_T2_PROVER 100 x 2 partials.
        expected.push((AccountKind::Prover, *p, "REWARD_T2_PROVER", 200));
        // T3: REWARD_PROVER_T3 50 for its full proof.
        expected.push((AccountKind::Prover, *p, "REWARD_PROVER_T3", 50));
        // T3: the other full proof did not reuse its 2 partials: PENALTY_PROVER_NOTREUSED_T3
        // -1 x 2, averaged over the 2 valid full proofs: -1.
        expected.push((AccountKind::Prover, *p, "PENALTY_PROVER_NOTREUSED_T3", -1));
    }
    expected.sort();
    assert_eq!(entries(&rows), expected);
    // 200 + 50 - 1 each.
    for p in &report.provers {
        let want = if selected.contains(&p.index.0) { 249 } else { 0 };
        assert_eq!(p.total, want, "prover {}", p.index);
    }
    assert_eq!(report.validators_total, 20);
}

/// The same round driven by hand through the engine's own scenario harness (real signatures,
/// its own verifier), with the simulator's block and the simulator's message times, settles to
/// the same ledger.
#[test]
fn simulator_and_engine_harness_agree_on_a_round() {
    let (_, sim_rows) = run(T3_NO_REUSE);
    let scenario = Scenario::from_toml_str(T3_NO_REUSE).unwrap();
    let config = config();
    let block0 = simulated_block(&scenario, 0, Root::ZERO, 8_000_000);
    let block1 = simulated_block(&scenario, 1, block0.root, 8_000_000);

    let mut h = Harness::new(config.engine, 4);
    h.add_block_info(block0).unwrap();
    let key = RoundKey {
        block_root: block0.root,
        sub_block: Default::default(),
        attempt: Default::default(),
    };
    let selected = h.selected(&key);
    assert_eq!(selected.len(), 2);
    let start = block0.slot_start.0;
    let w = config.engine.phases;
    for &p in &selected {
        h.deliver(h.commitment(&key, p), UnixMillis(start + 10)).unwrap();
    }
    for &p in &selected {
        for air in [AirIndex(0), AirIndex(1)] {
            h.deliver(h.partial(&key, p, air), UnixMillis(start + w.t1_ms)).unwrap();
        }
    }
    let t3 = start + w.t1_ms + w.t2_ms + w.max_clock_disparity_ms + 100;
    for &p in &selected {
        let parts: Vec<PartRef> = (0..2).map(|a| PartRef { author: p, air: AirIndex(a) }).collect();
        h.deliver(h.full_proof(&key, p, &parts), UnixMillis(t3)).unwrap();
    }
    h.add_block_info(block1).unwrap();
    let outcome = h.run_until_outcome(&block0.root).expect("outcome");
    let ledger = rewards::settle(&outcome, &config.table).unwrap();
    let harness_rows: Vec<(AccountKind, u64, &'static str, i64)> = {
        let mut v: Vec<_> = ledger
            .entries()
            .iter()
            .map(|e| match e.account {
                rewards::Account::Prover(p) => {
                    (AccountKind::Prover, p.0, e.rule.constant_name(), e.amount.0)
                }
                rewards::Account::Validator(v) => {
                    (AccountKind::Validator, v.0, e.rule.constant_name(), e.amount.0)
                }
                _ => unreachable!("only provers and validators"),
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(entries(&sim_rows), harness_rows);
    let _ = ProverIndex(0);
}

/// Lazy provers commit but never prove: every attempt fails, the round is retried
/// `max_retries` times, and each attempt charges every selected prover (all hold the one AIR)
/// PENALTY_T2_PROVER (-3, its missing partial) + PENALTY_PROVER_T3/T4/T5 (-1, -2, -4, no
/// participation) = -10, and pays the validator REWARD_T1_VALIDATOR (3) per commitment.
#[test]
fn lazy_provers_fail_every_attempt_and_pay_the_fallback_penalties() {
    let (report, rows) = run(r#"
        blocks = 1
        provers = 4
        validators = 1
        [gas]
        kind = "fixed"
        gas = 4_000_000
        [[group]]
        behaviour = "lazy"
        weight = 1
    "#);
    let max_retries = config().engine.max_retries;
    let block = &report.block_log[0];
    assert_eq!(block.fate, BlockFate::Failed);
    assert_eq!(block.rounds, max_retries + 1);
    assert_eq!(block.retries, max_retries);
    for attempt in 0..=max_retries {
        let of_attempt: Vec<&LedgerRow> = rows.iter().filter(|r| r.attempt == attempt).collect();
        let mut charged: Vec<u64> = of_attempt
            .iter()
            .filter(|r| r.account_kind == AccountKind::Prover)
            .map(|r| r.account)
            .collect();
        charged.sort();
        charged.dedup();
        assert!(!charged.is_empty(), "attempt {attempt}");
        for p in &charged {
            let mut mine: Vec<(&str, i64)> = of_attempt
                .iter()
                .filter(|r| r.account_kind == AccountKind::Prover && r.account == *p)
                .map(|r| (r.rule, r.amount))
                .collect();
            mine.sort();
            assert_eq!(
                mine,
                [
                    ("PENALTY_PROVER_T3", -1),
                    ("PENALTY_PROVER_T4", -2),
                    ("PENALTY_PROVER_T5", -4),
                    ("PENALTY_T2_PROVER", -3),
                ],
                "attempt {attempt}, prover {p}"
            );
        }
        let validator: Vec<(&str, i64)> = of_attempt
            .iter()
            .filter(|r| r.account_kind == AccountKind::Validator)
            .map(|r| (r.rule, r.amount))
            .collect();
        assert_eq!(validator, [("REWARD_T1_VALIDATOR", 3 * charged.len() as i64)]);
    }
    assert_eq!(report.rounds_by_fate[5], u64::from(max_retries) + 1);
}

/// Runs a scenario with modelled and with real proofs (same seed, same latencies).
fn modelled_and_real(
    toml: &str,
    config: &rewards::Config,
) -> ((RunReport, Vec<LedgerRow>), (RunReport, Vec<LedgerRow>)) {
    let scenario = Scenario::from_toml_str(toml).expect("scenario");
    let run_in = |mode| {
        let mut rows = Vec::new();
        let report = simulate(&scenario, config, &SimOptions { mode }, |block| {
            rows.extend_from_slice(block);
            Ok(())
        })
        .expect("simulation");
        (report, rows)
    };
    (run_in(ProofMode::Modelled), run_in(ProofMode::Real))
}

/// Real STARKs and BLS signatures, verified for real, make the decisions the modelled proofs
/// make: proving time does not move virtual time, and a real proof verifies exactly when its
/// modelled stand-in does (an honest author's proof of its own statement), so the ledgers, their
/// root and the rejections are the same. The copier's resubmitted proofs fail real verification.
#[test]
fn real_proofs_give_the_modelled_ledgers() {
    let toml = r#"
        seed = 21
        blocks = 2
        provers = 8
        validators = 10
        [gas]
        kind = "uniform"
        min = 1_000_000
        max = 6_000_000
        [[group]]
        behaviour = "honest"
        weight = 5
        [[group]]
        behaviour = "copier"
        weight = 1
        [[group]]
        behaviour = "lazy"
        weight = 1
        [[group]]
        behaviour = "withholder"
        weight = 1
    "#;
    let ((modelled, modelled_rows), (real, real_rows)) = modelled_and_real(toml, &config());
    assert_eq!(real.blocks, 2);
    assert!(!real_rows.is_empty());
    assert_eq!(real_rows, modelled_rows);
    assert_eq!(real.ledger_root, modelled.ledger_root);
    assert_eq!(real.rejections, modelled.rejections);
    assert_eq!(real.blocks_by_fate, modelled.blocks_by_fate);
    assert!(real.block_log.iter().all(|b| matches!(b.fate, BlockFate::Finalized(_))));
}

/// Gigagas blocks in miniature: 2 Mgas sub-blocks, so a 4 Mgas block has two sub-blocks, two
/// real full proofs and a real AggProof built from them.
#[test]
fn real_proofs_with_sub_blocks_and_agg_proofs() {
    let mut config = config();
    config.engine.gas.sub_block_gas = 2_000_000;
    let toml = r#"
        seed = 8
        blocks = 2
        provers = 40
        validators = 10
        [gas]
        kind = "fixed"
        gas = 4_000_000
        [[group]]
        behaviour = "honest"
        weight = 1
    "#;
    let ((modelled, modelled_rows), (real, real_rows)) = modelled_and_real(toml, &config);
    assert!(
        real.block_log.iter().all(|b| b.sub_blocks == 2 && b.agg_proof),
        "{:?}",
        real.block_log
    );
    assert_eq!(real_rows, modelled_rows);
    assert_eq!(real.ledger_root, modelled.ledger_root);
    assert!(real_rows.iter().any(|r| r.rule == "REWARD_AGG_PROOF_PROVER"));
}

#[test]
fn real_proofs_refuse_large_scenarios() {
    let run_real = |toml: &str| {
        let scenario = Scenario::from_toml_str(toml).expect("scenario");
        simulate(&scenario, &config(), &SimOptions { mode: ProofMode::Real }, |_| Ok(()))
    };
    let too_many_provers = run_real("blocks = 2\nprovers = 65");
    assert!(
        matches!(&too_many_provers, Err(SimError::RealProofsTooLarge { what }) if what.contains("65 provers")),
        "{too_many_provers:?}"
    );
    let too_many_blocks = run_real("blocks = 33\nprovers = 4");
    assert!(matches!(too_many_blocks, Err(SimError::RealProofsTooLarge { .. })));
    // The default gas (30 Mgas, 8 AIRs) is allowed; 100 Mgas blocks (25 AIRs) are not.
    let too_much_gas =
        run_real("blocks = 1\nprovers = 4\n[gas]\nkind = \"fixed\"\ngas = 100_000_000");
    let err = too_much_gas.expect_err("100 Mgas blocks").to_string();
    assert!(err.contains("25 AIRs") && err.contains("--real-proofs"), "{err}");
}

/// Canonical inclusion, modelled: the T1 case of `full_proof_in_t1_pays_the_t1_table` with every
/// proposer running a sidecar gives the same ledger (the full proof arrives 110 ms into the slot,
/// long before the next slot's record cut-off, and the only validator proposes that slot); with
/// none, no record includes anything: nothing counts, nobody is paid for inclusion.
#[test]
fn inclusion_by_proposers_with_a_sidecar() {
    const T1: &str = r#"
        blocks = 1
        provers = 2
        validators = 1
        [gas]
        kind = "fixed"
        gas = 4_000_000
        [defaults]
        solo_full_proof = true
        latency = { commit = { kind = "fixed", ms = 10 }, per_air = { kind = "fixed", ms = 100 }, aggregate = { kind = "fixed", ms = 100 } }
        "#;
    let (plain, plain_rows) = run(T1);
    let with_all = format!("proposers_with_sidecar = 1.0\n{T1}");
    let (all, all_rows) = run(&with_all);
    assert_eq!(entries(&all_rows), entries(&plain_rows));
    assert_eq!(all.ledger_root, plain.ledger_root);
    assert!(!all.rejections.contains_key("NotIncluded"));

    let with_none = format!("proposers_with_sidecar = 0.0\n{T1}");
    let (none, none_rows) = run(&with_none);
    assert!(none.rejections.get("NotIncluded").copied().unwrap_or(0) >= 1, "{:?}", none.rejections);
    assert_ne!(none.block_log[0].fate, BlockFate::Finalized(Phase::T1));
    assert!(none_rows.iter().all(|r| r.account_kind != AccountKind::Validator), "{none_rows:?}");
}

/// With a tenth of the proposers running a sidecar and 4 slots of delay, many messages find no
/// record in time (0.9^4 ≈ 66% of the time no includer comes); a run stays deterministic.
#[test]
fn sparse_inclusion_loses_messages_deterministically() {
    let sparse = format!("proposers_with_sidecar = 0.1\n{MIXED}");
    let (a, rows_a) = run(&sparse);
    let (b, rows_b) = run(&sparse);
    assert_eq!(a.ledger_root, b.ledger_root);
    assert_eq!(rows_a, rows_b);
    assert!(a.rejections.get("NotIncluded").copied().unwrap_or(0) > 0, "{:?}", a.rejections);
    let (full, _) = run(&format!("proposers_with_sidecar = 1.0\n{MIXED}"));
    assert_ne!(a.ledger_root, full.ledger_root);
    assert!(Scenario::from_toml_str(&format!("proposers_with_sidecar = 1.5\n{MIXED}")).is_err());
}
