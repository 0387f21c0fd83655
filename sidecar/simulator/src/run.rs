//! The `sidecar simulate` command: arguments, and the run that ties scenario, engine, settlement
//! and outputs together.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::deviations::{DeviationOptions, analyse_deviations, write_deviations};
use super::error::{SimError, SimResult};
use super::output::{LedgerWriter, create_dir, write_report};
use super::plot::{SweepPoint, plot_run, plot_sweep};
use super::report::RunReport;
use super::scenario::Scenario;
use super::sim::{ProofMode, SimOptions, simulate};
use super::sweep::Sweep;
use super::tune::{TuneObjective, tune, write_tune};

/// Arguments of `sidecar simulate`.
#[derive(Clone, Debug, Args)]
pub struct SimulateArgs {
    /// Reward table and engine parameters (TOML, the schema of `configs/rewards.toml`).
    #[arg(long, value_name = "FILE", default_value = "configs/rewards.toml")]
    pub rewards: PathBuf,
    /// Scenario (TOML): provers, behaviours, latencies, gas, joins and exits.
    #[arg(long, value_name = "FILE", default_value = "configs/scenarios/default.toml")]
    pub scenario: PathBuf,
    /// Write ledger entries, per-prover totals (CSV and JSON) and plots (PNG and SVG) here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Prove with the real STARK prover and sign with real BLS keys, and verify both as a node
    /// does (small runs only: at most 64 provers, 32 blocks and 16 AIRs per block). Latencies
    /// stay the scenario's, so the ledgers equal those of the modelled run.
    #[arg(long)]
    pub real_proofs: bool,
    /// Rerun with one constant of the reward config varied: `KEY=FROM..TO:STEP` (inclusive),
    /// e.g. `REWARD_T2_PROVER=0..200:50` or `phases.t2_ms=1000..4000:500`.
    #[arg(long, value_name = "KEY=FROM..TO:STEP")]
    pub sweep: Option<Sweep>,
    /// Override a key of the reward config, `KEY=VALUE` (repeatable), before any sweep.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Deviation analysis: every behaviour other than honest is tried as a unilateral deviation
    /// (a share of an otherwise honest population switches to it) over several seeds; prints
    /// which deviations beat honest play, and with `--out` writes `deviations.csv`,
    /// `deviations.json`, `report.md` and plots.
    #[arg(long, conflicts_with_all = ["sweep", "real_proofs"])]
    pub deviations: bool,
    /// With `--deviations`: share of the provers registered at genesis that deviate in each run,
    /// in (0, 0.5] (at least one prover).
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, requires = "deviations")]
    pub deviation_share: f64,
    /// With `--deviations`: runs per deviation, seeds SEED, SEED+1, ... (at least 2).
    #[arg(long, value_name = "N", default_value_t = 5, requires = "deviations")]
    pub seeds: u64,
    /// With `--deviations`: search for a table under which no modelled deviation beats honest
    /// play, varying these constants over these grids: `KEY=FROM..TO:STEP` (repeatable, as
    /// `--sweep`). Writes each table found, with its evidence, under `OUT/tune/`.
    #[arg(long, value_name = "KEY=FROM..TO:STEP", requires = "deviations")]
    pub tune: Vec<Sweep>,
    /// With `--tune`: what to minimise among the tables where no deviation beats honest play.
    #[arg(long, value_enum, default_value_t = TuneObjective::Distance, requires = "tune")]
    pub tune_objective: TuneObjective,
    /// With `--tune`: most passes of the coordinate search over the constants.
    #[arg(long, value_name = "N", default_value_t = 3, requires = "tune")]
    pub tune_passes: u32,
    /// Override the scenario's number of blocks.
    #[arg(long, value_name = "N")]
    pub blocks: Option<u64>,
    /// Override the scenario's seed.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// No progress bar and no table (errors are still reported).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Loads the reward config file and applies `--set` overrides (validated).
///
/// # Errors
/// [`SimError::Io`] for an unreadable file, [`SimError::Rewards`] for bad TOML, an unknown key or
/// an invalid value (the message names the key).
pub fn load_rewards(path: &Path, overrides: &[String]) -> SimResult<rewards::RewardsFile> {
    let context = || format!("reward config {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
        action: "reading reward config",
        path: path.to_owned(),
        source,
    })?;
    let mut file = rewards::RewardsFile::from_toml_str(&text)
        .map_err(|source| SimError::Rewards { context: context(), source })?;
    for o in overrides {
        file.apply_override(o)
            .map_err(|source| SimError::Rewards { context: format!("--set {o}"), source })?;
    }
    file.validate().map_err(|source| SimError::Rewards { context: context(), source })?;
    Ok(file)
}

/// Loads the scenario and applies `--blocks` and `--seed`.
///
/// # Errors
/// As [`Scenario::load`], or a zero `--blocks`.
pub fn load_scenario(path: &Path, blocks: Option<u64>, seed: Option<u64>) -> SimResult<Scenario> {
    let mut scenario = Scenario::load(path)?;
    if let Some(b) = blocks {
        if b == 0 {
            return Err(SimError::invalid("--blocks", "must be at least 1"));
        }
        scenario.blocks = b;
    }
    if let Some(s) = seed {
        scenario.seed = s;
    }
    Ok(scenario)
}

fn progress(quiet: bool, len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    } else {
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    }
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} blocks ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// Runs `sidecar simulate`: prints the summary table (unless `--quiet`) and writes the files of
/// `--out`.
///
/// # Errors
/// Any configuration, scenario, simulation or output error.
pub fn run(args: SimulateArgs) -> SimResult<()> {
    let rewards_file = load_rewards(&args.rewards, &args.set)?;
    let scenario = load_scenario(&args.scenario, args.blocks, args.seed)?;
    let mode = if args.real_proofs { ProofMode::Real } else { ProofMode::Modelled };
    if let Some(dir) = &args.out {
        create_dir(dir)?;
    }
    if args.deviations {
        return run_deviations(&args, &rewards_file, &scenario);
    }
    match &args.sweep {
        None => {
            let config = rewards_file.validate().map_err(|source| SimError::Rewards {
                context: format!("reward config {}", args.rewards.display()),
                source,
            })?;
            let bar = progress(args.quiet, scenario.blocks, &scenario.name);
            let mut ledger = match &args.out {
                Some(dir) => Some(LedgerWriter::create(dir)?),
                None => None,
            };
            let opts = SimOptions { mode };
            let report = simulate(&scenario, &config, &opts, |rows| {
                bar.inc(1);
                if let Some(w) = ledger.as_mut() {
                    for row in rows {
                        w.write(row)?;
                    }
                }
                Ok(())
            })?;
            bar.finish_and_clear();
            if let Some(w) = ledger {
                w.finish()?;
            }
            if !args.quiet {
                print!("{}", report.summary_table());
            }
            if let Some(dir) = &args.out {
                let mut written = write_report(dir, &report)?;
                written.extend(plot_run(dir, &report)?);
                if !args.quiet {
                    println!(
                        "wrote ledger.csv, ledger.json and {} more files to {}",
                        written.len(),
                        dir.display()
                    );
                }
            }
        }
        Some(sweep) => {
            let points = run_sweep(&scenario, &rewards_file, sweep, mode, args.quiet)?;
            if !args.quiet {
                print!("{}", sweep_table(&sweep.key, &points));
            }
            if let Some(dir) = &args.out {
                write_sweep(dir, &sweep.key, &points)?;
                let written = plot_sweep(dir, &sweep.key, &points)?;
                if !args.quiet {
                    println!(
                        "wrote sweep.csv, sweep.json and {} plots to {}",
                        written.len(),
                        dir.display()
                    );
                }
            }
        }
    }
    Ok(())
}

/// `--deviations`: the analysis, its table and (with `--out`) its files.
fn run_deviations(
    args: &SimulateArgs,
    rewards_file: &rewards::RewardsFile,
    scenario: &Scenario,
) -> SimResult<()> {
    let config = rewards_file.validate().map_err(|source| SimError::Rewards {
        context: format!("reward config {}", args.rewards.display()),
        source,
    })?;
    let opts = DeviationOptions { seeds: args.seeds, share: args.deviation_share };
    opts.validate()?;
    let bar = progress(args.quiet, scenario.blocks, &format!("deviations {}", scenario.name));
    if !args.tune.is_empty() {
        let result = tune(
            scenario,
            rewards_file,
            &args.tune,
            args.tune_objective,
            args.tune_passes,
            &opts,
            &bar,
        )?;
        bar.finish_and_clear();
        if !args.quiet {
            print!("{}", result.table());
        }
        if let Some(dir) = &args.out {
            let written = write_tune(dir, &result, &deviations_command(args))?;
            if !args.quiet {
                println!("wrote {} files to {}", written.len(), dir.join("tune").display());
            }
        }
        return Ok(());
    }
    let analysis = analyse_deviations(scenario, &config, &opts, &bar)?;
    bar.finish_and_clear();
    if !args.quiet {
        print!("{}", analysis.table());
    }
    if let Some(dir) = &args.out {
        let written = write_deviations(dir, &analysis, &deviations_command(args))?;
        if !args.quiet {
            println!("wrote {} files to {}", written.len(), dir.display());
        }
    }
    Ok(())
}

/// The command line that reproduces a deviation analysis (the output folder left as `OUT`, so
/// that the report depends on the inputs only).
fn deviations_command(args: &SimulateArgs) -> String {
    let mut cmd = format!(
        "sidecar simulate --rewards {} --scenario {} --deviations --seeds {} --deviation-share {}",
        args.rewards.display(),
        args.scenario.display(),
        args.seeds,
        args.deviation_share
    );
    if let Some(b) = args.blocks {
        cmd.push_str(&format!(" --blocks {b}"));
    }
    if let Some(s) = args.seed {
        cmd.push_str(&format!(" --seed {s}"));
    }
    for o in &args.set {
        cmd.push_str(&format!(" --set {o}"));
    }
    if !args.tune.is_empty() {
        for t in &args.tune {
            cmd.push_str(&format!(" --tune {t}"));
        }
        let objective = match args.tune_objective {
            TuneObjective::Distance => "distance",
            TuneObjective::Issuance => "issuance",
        };
        cmd.push_str(&format!(" --tune-objective {objective} --tune-passes {}", args.tune_passes));
    }
    cmd.push_str(" --out OUT");
    cmd
}

/// Runs the scenario once per value of the sweep (the points run on all cores; each run is
/// itself sequential and deterministic).
///
/// # Errors
/// An invalid value for the key (the message names it), or a simulation error.
pub fn run_sweep(
    scenario: &Scenario,
    base: &rewards::RewardsFile,
    sweep: &Sweep,
    mode: ProofMode,
    quiet: bool,
) -> SimResult<Vec<SweepPoint>> {
    let values = sweep.values();
    // Validate every point before running any.
    let mut configs = Vec::with_capacity(values.len());
    for &v in &values {
        let mut file = *base;
        let context = || format!("--sweep {sweep}: at {} = {v}", sweep.key);
        file.set(&sweep.key, v)
            .map_err(|source| SimError::Rewards { context: context(), source })?;
        let config =
            file.validate().map_err(|source| SimError::Rewards { context: context(), source })?;
        configs.push((v, config));
    }
    let bar =
        progress(quiet, scenario.blocks * values.len() as u64, &format!("sweep {}", sweep.key));
    let opts = SimOptions { mode };
    let threads =
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(configs.len().max(1));
    let chunks: Vec<&[(i64, rewards::Config)]> =
        configs.chunks(configs.len().div_ceil(threads).max(1)).collect();
    let results: Vec<SimResult<Vec<SweepPoint>>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let bar = bar.clone();
                let opts = &opts;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|(value, config)| {
                            let report = simulate(scenario, config, opts, |_| {
                                bar.inc(1);
                                Ok(())
                            })?;
                            Ok(SweepPoint { value: *value, report })
                        })
                        .collect::<SimResult<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(SimError::Protocol { block: 0, reason: "a sweep thread panicked".into() })
                })
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut points = Vec::with_capacity(values.len());
    for r in results {
        points.extend(r?);
    }
    Ok(points)
}

/// One row of `sweep.csv`: one behaviour at one value of the key.
#[derive(Serialize)]
struct SweepRow<'a> {
    key: &'a str,
    value: i64,
    behaviour: &'static str,
    provers: u64,
    mean: f64,
    median: f64,
    min: f64,
    max: f64,
    rounds_selected: u64,
    failure_rate: f64,
    blocks: u64,
    blocks_t1: u64,
    blocks_t2: u64,
    blocks_t3: u64,
    blocks_t4: u64,
    blocks_t5: u64,
    blocks_failed: u64,
    ledger_root: &'a str,
}

fn sweep_rows<'a>(
    key: &'a str,
    points: &'a [SweepPoint],
) -> impl Iterator<Item = SweepRow<'a>> + 'a {
    points.iter().flat_map(move |p| {
        let f = p.report.blocks_by_fate;
        p.report.behaviours.iter().map(move |b| SweepRow {
            key,
            value: p.value,
            behaviour: b.behaviour.as_str(),
            provers: b.provers,
            mean: b.mean,
            median: b.median,
            min: b.min,
            max: b.max,
            rounds_selected: b.rounds_selected,
            failure_rate: b.failure_rate,
            blocks: p.report.blocks,
            blocks_t1: f[0],
            blocks_t2: f[1],
            blocks_t3: f[2],
            blocks_t4: f[3],
            blocks_t5: f[4],
            blocks_failed: f[5],
            ledger_root: &p.report.ledger_root,
        })
    })
}

/// Writes `sweep.csv` and `sweep.json` (one row per value and behaviour).
fn write_sweep(dir: &Path, key: &str, points: &[SweepPoint]) -> SimResult<()> {
    let csv_path = dir.join("sweep.csv");
    let file = std::fs::File::create(&csv_path).map_err(|source| SimError::Io {
        action: "creating",
        path: csv_path.clone(),
        source,
    })?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    for row in sweep_rows(key, points) {
        w.serialize(row).map_err(|source| SimError::Csv { path: csv_path.clone(), source })?;
    }
    w.flush().map_err(|source| SimError::Io {
        action: "writing",
        path: csv_path.clone(),
        source,
    })?;
    let json_path = dir.join("sweep.json");
    let rows: Vec<SweepRow<'_>> = sweep_rows(key, points).collect();
    let text = serde_json::to_string_pretty(&rows)
        .map_err(|source| SimError::Json { path: json_path.clone(), source })?;
    std::fs::write(&json_path, text + "\n").map_err(|source| SimError::Io {
        action: "writing",
        path: json_path,
        source,
    })
}

/// The terminal table of a sweep: per value, the block outcome and each behaviour's mean reward
/// per block.
pub fn sweep_table(key: &str, points: &[SweepPoint]) -> String {
    use std::fmt::Write as _;
    let mut behaviours: Vec<super::scenario::Behaviour> = Vec::new();
    for p in points {
        for b in &p.report.behaviours {
            if !behaviours.contains(&b.behaviour) {
                behaviours.push(b.behaviour);
            }
        }
    }
    behaviours.sort();
    let mut out = String::new();
    let _ = write!(out, "{key:>24} {:>7} {:>7} {:>7}", "T1", "T3-T5", "failed");
    for b in &behaviours {
        let _ = write!(out, " {:>15}", b.as_str());
    }
    let _ = writeln!(out);
    for p in points {
        let r: &RunReport = &p.report;
        let n = r.blocks.max(1) as f64;
        let f = r.blocks_by_fate;
        let _ = write!(
            out,
            "{:>24} {:>6.1}% {:>6.1}% {:>6.1}%",
            p.value,
            100.0 * f[0] as f64 / n,
            100.0 * (f[2] + f[3] + f[4]) as f64 / n,
            100.0 * f[5] as f64 / n
        );
        for b in &behaviours {
            match r.behaviours.iter().find(|s| s.behaviour == *b) {
                Some(s) => {
                    let _ = write!(out, " {:>15.2}", s.mean);
                }
                None => {
                    let _ = write!(out, " {:>15}", "-");
                }
            }
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "(columns per behaviour: mean reward per active block)");
    out
}
