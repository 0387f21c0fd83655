//! The deviation analysis (`--deviations`): determinism by seed, a deviation that is profitable
//! by construction, one that is not, and the new behaviours.

use std::path::Path;

use clap::Parser;
use indicatif::ProgressBar;
use sidecar_simulator::{
    Behaviour, DEVIATIONS_CSV_HEADER, DeviationAnalysis, DeviationOptions, Scenario, SimOptions,
    SimulateArgs, analyse_deviations, load_rewards, simulate, write_deviations,
};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/rewards.toml");

/// 40 provers, one sub-block of 3 AIRs per block (12 Mgas, 4 Mgas per AIR).
const SMALL: &str = r#"
    name = "small-deviations"
    seed = 5
    blocks = 12
    provers = 40
    validators = 30
    sybil_keys = 2
    [gas]
    kind = "fixed"
    gas = 12_000_000
"#;

fn config(overrides: &[&str]) -> rewards::Config {
    let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
    load_rewards(Path::new(SHIPPED), &overrides).expect("rewards").validate().expect("valid")
}

fn analyse(overrides: &[&str], seeds: u64) -> DeviationAnalysis {
    let scenario = Scenario::from_toml_str(SMALL).expect("scenario");
    let opts = DeviationOptions { seeds, share: 0.1 };
    analyse_deviations(&scenario, &config(overrides), &opts, &ProgressBar::hidden())
        .expect("analysis")
}

fn row(a: &DeviationAnalysis, b: Behaviour) -> &sidecar_simulator::DeviationResult {
    a.deviations.iter().find(|d| d.behaviour == b).expect("every deviation has a row")
}

#[test]
fn deviation_analysis_is_deterministic_by_seed() {
    let a = analyse(&[], 2);
    let b = analyse(&[], 2);
    assert_eq!(a, b);
    // Every behaviour but honest is a deviation, in table order.
    let tried: Vec<Behaviour> = a.deviations.iter().map(|d| d.behaviour).collect();
    let expected: Vec<Behaviour> =
        Behaviour::ALL.into_iter().filter(|b| *b != Behaviour::Honest).collect();
    assert_eq!(tried, expected);
    assert_eq!(a.seeds, vec![5, 6]);
    // 10% of 40 provers deviate; sybil keys come in whole operators of `sybil_keys = 2`, each
    // operator one payoff unit.
    assert_eq!((row(&a, Behaviour::Lazy).deviators, row(&a, Behaviour::Lazy).units), (4, 4));
    assert_eq!((row(&a, Behaviour::Sybil).deviators, row(&a, Behaviour::Sybil).units), (4, 2));
    let csv = a.csv();
    assert_eq!(csv.lines().next(), Some(DEVIATIONS_CSV_HEADER));
    assert_eq!(
        DEVIATIONS_CSV_HEADER,
        "behaviour,deviator_mean,honest_mean,difference,ci95_low,ci95_high,beats_honest"
    );
    assert_eq!(csv.lines().count(), expected.len() + 1);
    for line in csv.lines().skip(1) {
        let beats = line.rsplit(',').next().unwrap();
        assert!(beats == "true" || beats == "false", "{line}");
    }
    // The files too, byte for byte.
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = write_deviations(d1.path(), &a, "cmd").unwrap();
    write_deviations(d2.path(), &b, "cmd").unwrap();
    for path in &w1 {
        let name = path.file_name().unwrap();
        assert_eq!(
            std::fs::read(path).unwrap(),
            std::fs::read(d2.path().join(name)).unwrap(),
            "{name:?} differs"
        );
    }
    let names: Vec<String> =
        w1.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for f in ["deviations.csv", "report.md", "deviation_payoff.png", "issuance_split.svg"] {
        assert!(names.iter().any(|n| n == f), "{f} not written: {names:?}");
    }
    let report = std::fs::read_to_string(d1.path().join("report.md")).unwrap();
    assert!(report.contains("deviation_payoff.png") && report.contains("per Mgas"), "{report}");
    // Another seed, another analysis.
    let scenario = Scenario::from_toml_str(&SMALL.replace("seed = 5", "seed = 9")).unwrap();
    let opts = DeviationOptions { seeds: 2, share: 0.1 };
    let c = analyse_deviations(&scenario, &config(&[]), &opts, &ProgressBar::hidden()).unwrap();
    assert_ne!(a.csv(), c.csv());
}

/// Profitable by construction. No prover proves whole sub-blocks alone, so no full proof comes
/// in T1 or T2 and every round is aggregated in T3 or later. The table zeroes every reward a
/// prover can earn and every penalty a lazy prover can incur, and keeps one penalty:
/// `PENALTY_PROVER_NOTREUSED_T3 = -1000`, per counted partial proof that no full proof reuses.
/// A lazy prover commits and never proves: its only possible entries are `PENALTY_T2_PROVER`
/// (0), `PENALTY_PROVER_T3` (0) and the T1/T2 full-proof rewards (0, and never paid), so it
/// earns exactly 0 per block. An honest prover's partials earn 0, and with redundancy 2 every
/// AIR has two partial proofs while the full proofs reuse the first accepted one, so about half
/// of them cost -1000 / (valid full proofs of the phase): it earns less than 0. Lazy beats
/// honest in every seed.
#[test]
fn lazy_beats_honest_when_only_unreused_partials_are_penalised() {
    let mut overrides: Vec<String> = [
        "REWARD_FULL_PROOF_PROVER_T1",
        "REWARD_FULL_PROOF_SENDER_T1",
        "REWARD_FULL_PROOF_PROVER_T2",
        "REWARD_FULL_PROOF_SENDER_T2",
        "REWARD_T2_PROVER",
        "PENALTY_T1_PROVER",
        "PENALTY_T2_PROVER",
        "PENALTY_PROVER_T3",
        "PENALTY_PROVER_T4",
        "PENALTY_PROVER_T5",
        "PENALTY_PROVER_NOTREUSED_T4",
        "PENALTY_PROVER_NOTREUSED_T5",
        "REWARD_AGG_PROOF_PROVER",
    ]
    .iter()
    .map(|k| format!("{k}=0"))
    .collect();
    for phase in ["T3", "T4", "T5"] {
        for k in ["REWARD_PROVER_REUSING", "REWARD_PROVER_REUSED", "REWARD_PROVER"] {
            overrides.push(format!("{k}_{phase}=0"));
        }
    }
    overrides.push("PENALTY_PROVER_NOTREUSED_T3=-1000".to_owned());
    let refs: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let a = analyse(&refs, 3);
    let lazy = row(&a, Behaviour::Lazy);
    assert_eq!(lazy.deviator_mean, 0.0, "{lazy:?}");
    assert!(lazy.per_seed.iter().all(|s| s.honest_mean < 0.0), "{lazy:?}");
    assert!(lazy.difference.low > 0.0 && lazy.beats_honest, "{lazy:?}");
    assert!(a.csv().contains("\nlazy,0.0000,"), "{}", a.csv());
}

/// Not profitable: under the shipped table an offline prover earns only penalties
/// (`PENALTY_T1_PROVER` for every round it is selected in and never commits, then the T2 and
/// T3 penalties), while an honest prover earns the T2 and T3 rewards.
#[test]
fn offline_does_not_beat_honest_under_the_shipped_table() {
    let a = analyse(&[], 3);
    let offline = row(&a, Behaviour::Offline);
    assert!(offline.deviator_mean < 0.0 && offline.honest_mean > 0.0, "{offline:?}");
    assert!(offline.difference.high < 0.0 && !offline.beats_honest, "{offline:?}");
    assert!(!offline.more_per_work, "{offline:?}");
    // Issuance is split among recipients and adds up.
    let i = &a.issuance;
    let sum: f64 = i.split_per_block.iter().map(|(_, v)| v).sum();
    assert!((sum - i.per_block).abs() < 1e-6 && i.per_block > 0.0, "{i:?}");
    assert!(i.per_mgas > 0.0);
}

fn run_with(groups: &str) -> sidecar_simulator::RunReport {
    let scenario = Scenario::from_toml_str(&format!("{SMALL}\n{groups}")).expect("scenario");
    simulate(&scenario, &config(&[]), &SimOptions::default(), |_| Ok(())).expect("run")
}

fn summary(r: &sidecar_simulator::RunReport, b: Behaviour) -> &sidecar_simulator::BehaviourSummary {
    r.behaviours.iter().find(|s| s.behaviour == b).expect("behaviour present")
}

#[test]
fn new_behaviours_do_what_they_say() {
    let groups = |b: &str| {
        format!(
            "[[group]]\nbehaviour = \"honest\"\nweight = 3\n[[group]]\nbehaviour = \"{b}\"\nweight = 1"
        )
    };
    // Racers prove every AIR themselves (3 per round) and finalise rounds early.
    let r = run_with(&groups("racer"));
    let racers: Vec<usize> = r
        .provers
        .iter()
        .filter(|p| p.behaviour == Behaviour::Racer)
        .map(|p| p.index.0 as usize)
        .collect();
    let racer_airs: u64 = racers.iter().map(|&i| r.airs_proved[i]).sum();
    let racer_rounds: u64 = racers.iter().map(|&i| r.provers[i].rounds_selected).sum();
    assert!(racer_airs >= 3 * racer_rounds / 2, "{racer_airs} AIRs in {racer_rounds} rounds");
    assert!(r.rounds_by_fate[0] + r.rounds_by_fate[1] > 0, "{:?}", r.rounds_by_fate);
    // Colluding copiers' shared partials are bound to the worker's key: rejected.
    let r = run_with(&groups("colluding_copier"));
    assert!(r.rejections.values().sum::<u64>() > 0, "{:?}", r.rejections);
    assert!(summary(&r, Behaviour::ColludingCopier).rounds_selected > 0);
    // Sybil keys: one proves per operator and round, the others only commit, so they prove
    // fewer AIRs per round than honest provers.
    let r = run_with(&groups("sybil"));
    let per_round = |b: Behaviour| {
        let (airs, rounds) =
            r.provers.iter().filter(|p| p.behaviour == b).fold((0u64, 0u64), |(a, n), p| {
                (a + r.airs_proved[p.index.0 as usize], n + p.rounds_selected)
            });
        airs as f64 / rounds.max(1) as f64
    };
    assert!(per_round(Behaviour::Sybil) < per_round(Behaviour::Honest));
    // Without inclusion records a censoring prover is honest: the same ledger as honest.
    let censoring = run_with(&groups("censoring"));
    let honest = run_with(&groups("honest"));
    assert_eq!(censoring.ledger_root, honest.ledger_root);
    // With records, censoring proposers change who includes what.
    let with_records = |b: &str| {
        // Validators 0..40 are the provers' own, so censoring provers propose.
        let text = format!("{SMALL}\n{}", groups(b))
            .replace("validators = 30\n", "validators = 40\nproposers_with_sidecar = 1.0\n");
        let scenario = Scenario::from_toml_str(&text).expect("scenario");
        simulate(&scenario, &config(&[]), &SimOptions::default(), |_| Ok(())).expect("run")
    };
    assert_ne!(with_records("censoring").ledger_root, with_records("honest").ledger_root);
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulateArgs,
}

#[test]
fn the_cli_writes_the_csv_and_refuses_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(&scenario, SMALL.replace("blocks = 12", "blocks = 4")).unwrap();
    let out = dir.path().join("out");
    let argv = |extra: &[&str]| {
        let mut v = vec![
            "simulate".to_owned(),
            "--rewards".to_owned(),
            SHIPPED.to_owned(),
            "--scenario".to_owned(),
            scenario.display().to_string(),
            "-q".to_owned(),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    };
    let cli = Cli::try_parse_from(argv(&[
        "--deviations",
        "--seeds",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]))
    .unwrap();
    sidecar_simulator::run(cli.args).unwrap();
    let csv = std::fs::read_to_string(out.join("deviations.csv")).unwrap();
    assert!(csv.starts_with(&format!("{DEVIATIONS_CSV_HEADER}\n")), "{csv}");
    let cli = Cli::try_parse_from(argv(&["--deviations", "--seeds", "1"])).unwrap();
    let err = sidecar_simulator::run(cli.args).unwrap_err().to_string();
    assert!(err.contains("--seeds"), "{err}");
    let cli = Cli::try_parse_from(argv(&["--deviations", "--deviation-share", "0.9"])).unwrap();
    let err = sidecar_simulator::run(cli.args).unwrap_err().to_string();
    assert!(err.contains("--deviation-share"), "{err}");
    assert!(Cli::try_parse_from(argv(&["--seeds", "3"])).is_err(), "--seeds needs --deviations");
    assert!(Cli::try_parse_from(argv(&["--deviations", "--sweep", "X=1..2:1"])).is_err());
}

/// The table of `lazy_beats_honest_when_only_unreused_partials_are_penalised`, as a file.
fn lazy_table() -> rewards::RewardsFile {
    let mut file = load_rewards(Path::new(SHIPPED), &[]).unwrap();
    for k in [
        "REWARD_FULL_PROOF_PROVER_T1",
        "REWARD_FULL_PROOF_SENDER_T1",
        "REWARD_FULL_PROOF_PROVER_T2",
        "REWARD_FULL_PROOF_SENDER_T2",
        "REWARD_T2_PROVER",
        "PENALTY_T1_PROVER",
        "PENALTY_T2_PROVER",
        "PENALTY_PROVER_T3",
        "PENALTY_PROVER_T4",
        "PENALTY_PROVER_T5",
        "PENALTY_PROVER_NOTREUSED_T4",
        "PENALTY_PROVER_NOTREUSED_T5",
        "REWARD_AGG_PROOF_PROVER",
        "REWARD_PROVER_REUSING_T3",
        "REWARD_PROVER_REUSED_T3",
        "REWARD_PROVER_T3",
        "REWARD_PROVER_REUSING_T4",
        "REWARD_PROVER_REUSED_T4",
        "REWARD_PROVER_T4",
        "REWARD_PROVER_REUSING_T5",
        "REWARD_PROVER_REUSED_T5",
        "REWARD_PROVER_T5",
    ] {
        file.set(k, 0).unwrap();
    }
    file.set("PENALTY_PROVER_NOTREUSED_T3", -1000).unwrap();
    file
}

/// The search starts from a table that lazy (and aggregator-only) provers beat, and finds one
/// that no deviation beats: with `PENALTY_PROVER_NOTREUSED_T3 = 0` every prover in the search's
/// runs earns 0 (no entry of the table is non-zero but validator rewards), so no difference
/// is above zero. It is deterministic.
#[test]
fn tune_finds_a_table_no_deviation_beats_and_is_deterministic() {
    let scenario = Scenario::from_toml_str(SMALL).unwrap();
    let bounds: Vec<sidecar_simulator::Sweep> =
        ["PENALTY_PROVER_NOTREUSED_T3=-1000..0:500"].iter().map(|s| s.parse().unwrap()).collect();
    let opts = DeviationOptions { seeds: 2, share: 0.1 };
    let search = || {
        sidecar_simulator::tune(
            &scenario,
            &lazy_table(),
            &bounds,
            sidecar_simulator::TuneObjective::Distance,
            2,
            &opts,
            &ProgressBar::hidden(),
        )
        .unwrap()
    };
    let a = search();
    assert!(!a.evaluations[0].feasible, "the starting table is beaten: {:?}", a.evaluations[0]);
    let (best, e) = &a.best;
    assert!(e.feasible, "{}", a.csv());
    assert_eq!(best.get("PENALTY_PROVER_NOTREUSED_T3").unwrap(), e.values[0]);
    assert!(!a.found.is_empty());
    // Same inputs, same search, same files.
    let b = search();
    assert_eq!(a.csv(), b.csv());
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let w1 = sidecar_simulator::write_tune(d1.path(), &a, "cmd").unwrap();
    sidecar_simulator::write_tune(d2.path(), &b, "cmd").unwrap();
    for path in &w1 {
        let rel = path.strip_prefix(d1.path()).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), std::fs::read(d2.path().join(rel)).unwrap());
    }
    // The table written loads and is the one found.
    let text = std::fs::read_to_string(d1.path().join("tune/table-01.toml")).unwrap();
    let loaded = rewards::RewardsFile::from_toml_str(&text).unwrap();
    assert_eq!(loaded, a.found[0].0);
    assert!(d1.path().join("tune/table-01/deviations.csv").exists());
    // Bad bounds are refused with the flag's name.
    let bad: Vec<sidecar_simulator::Sweep> = vec!["PENALTY_T2_PROVER=0..10:5".parse().unwrap()];
    let err = sidecar_simulator::tune(
        &scenario,
        &lazy_table(),
        &bad,
        sidecar_simulator::TuneObjective::Distance,
        1,
        &opts,
        &ProgressBar::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("PENALTY_T2_PROVER"), "{err}");
}

#[test]
fn the_proposed_table_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/rewards-proposed.toml");
    let proposed = load_rewards(Path::new(path), &[]).expect("proposed table");
    let shipped = load_rewards(Path::new(SHIPPED), &[]).unwrap();
    assert_eq!(proposed.get("REWARD_T2_PROVER").unwrap(), 300);
    assert_eq!(shipped.get("REWARD_T2_PROVER").unwrap(), 100);
    let changed = rewards::RewardsFile::keys()
        .iter()
        .filter(|k| proposed.get(k).ok() != shipped.get(k).ok())
        .count();
    assert_eq!(changed, 7);
}
