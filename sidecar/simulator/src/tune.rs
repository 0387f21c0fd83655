//! `--tune`: a search for reward tables under which no modelled deviation beats honest play.
//!
//! The researcher gives bounds per constant as grids (`--tune KEY=FROM..TO:STEP`, repeatable,
//! the `--sweep` syntax) and an objective (`--tune-objective`): `distance` from the given table
//! (the sum over the tuned constants of `|value − given| / max(|given|, 1)`) or `issuance` (net
//! issuance per block with nobody deviating). Each candidate table is evaluated by a full
//! deviation analysis ([`crate::analyse_deviations`]) with the run's seeds and blocks; it is
//! *feasible* when no deviation beats honest play (no 95% interval of a difference lies above
//! zero).
//!
//! The search is a deterministic coordinate descent on the grid. It starts from the given table
//! with each tuned constant moved to the nearest grid value (ties to the lower one). A pass tries,
//! constant by constant in the order given, every grid value of that constant with the others
//! fixed, and moves to the best table seen: feasible before infeasible; among feasible tables
//! the smaller objective; among infeasible ones the smaller violation (the largest lower bound
//! of a difference's interval), then the smaller objective; ties keep the earlier table. Passes
//! repeat until one changes nothing or `--tune-passes` is reached. Evaluations are memoised, so
//! a table is never evaluated twice. Every feasible table that becomes the best so far is
//! written as `tune/table-NN.toml`, next to `tune/table-NN/` with its deviation analysis (the
//! evidence); `tune/tune.csv` lists every evaluation.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::Serialize;

use super::deviations::{
    DeviationAnalysis, DeviationOptions, analyse_deviations, write_deviations,
};
use super::error::{SimError, SimResult};
use super::scenario::Scenario;
use super::sweep::Sweep;

/// Most constants a search may tune.
pub const MAX_TUNED_CONSTANTS: usize = 16;

/// What the search minimises among feasible tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TuneObjective {
    /// Sum over the tuned constants of `|value − given| / max(|given|, 1)`.
    #[default]
    Distance,
    /// Net issuance per block with nobody deviating.
    Issuance,
}

/// One evaluated table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TuneEvaluation {
    /// The tuned constants' values, in the order given.
    pub values: Vec<i64>,
    /// The objective.
    pub objective: f64,
    /// Net issuance per block with nobody deviating.
    pub issuance_per_block: f64,
    /// No deviation beats honest play.
    pub feasible: bool,
    /// The deviation with the largest lower bound of its difference's interval.
    pub worst_deviation: String,
    /// That lower bound (above zero: the deviation beats honest play).
    pub violation: f64,
}

/// The outcome of a search.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneResult {
    /// The tuned keys, in the order given.
    pub keys: Vec<String>,
    /// Every evaluation, in the order made.
    pub evaluations: Vec<TuneEvaluation>,
    /// The feasible tables that became the best so far, in order, with their analysis.
    pub found: Vec<(rewards::RewardsFile, TuneEvaluation, DeviationAnalysis)>,
    /// The best table at the end (feasible or not) and its evaluation.
    pub best: (rewards::RewardsFile, TuneEvaluation),
}

/// Ranking of an evaluation: smaller is better.
fn rank(e: &TuneEvaluation) -> (u8, f64, f64) {
    if e.feasible { (0, e.objective, 0.0) } else { (1, e.violation, e.objective) }
}

fn better(a: &TuneEvaluation, b: &TuneEvaluation) -> bool {
    rank(a).partial_cmp(&rank(b)) == Some(std::cmp::Ordering::Less)
}

fn nearest(grid: &[i64], v: i64) -> i64 {
    grid.iter().copied().min_by_key(|g| ((i128::from(*g) - i128::from(v)).abs(), *g)).unwrap_or(v)
}

fn table_with(
    base: &rewards::RewardsFile,
    keys: &[String],
    values: &[i64],
) -> Result<rewards::RewardsFile, rewards::Error> {
    let mut file = *base;
    for (k, v) in keys.iter().zip(values) {
        file.set(k, *v)?;
    }
    file.validate()?;
    Ok(file)
}

/// Runs the search.
///
/// # Errors
/// [`SimError::ScenarioInvalid`] for bad bounds (no constant, too many, a key tuned twice),
/// [`SimError::Rewards`] for an unknown key or a grid value the table refuses, or an analysis
/// error.
pub fn tune(
    scenario: &Scenario,
    base: &rewards::RewardsFile,
    bounds: &[Sweep],
    objective: TuneObjective,
    passes: u32,
    opts: &DeviationOptions,
    bar: &ProgressBar,
) -> SimResult<TuneResult> {
    opts.validate()?;
    if bounds.is_empty() || bounds.len() > MAX_TUNED_CONSTANTS {
        return Err(SimError::invalid(
            "--tune",
            format!("give 1..={MAX_TUNED_CONSTANTS} constants to tune"),
        ));
    }
    if passes == 0 {
        return Err(SimError::invalid("--tune-passes", "must be at least 1"));
    }
    let keys: Vec<String> = bounds.iter().map(|b| b.key.clone()).collect();
    let grids: Vec<Vec<i64>> = bounds.iter().map(Sweep::values).collect();
    let mut given = Vec::with_capacity(keys.len());
    for (i, (key, grid)) in keys.iter().zip(&grids).enumerate() {
        if keys[..i].contains(key) {
            return Err(SimError::invalid("--tune", format!("`{key}` is tuned twice")));
        }
        given.push(base.get(key).map_err(|source| SimError::Rewards {
            context: format!("--tune {}", bounds[i]),
            source,
        })?);
        // Every grid value must be acceptable on its own.
        for &v in grid {
            let mut file = *base;
            file.set(key, v).and_then(|()| file.validate().map(drop)).map_err(|source| {
                SimError::Rewards {
                    context: format!("--tune {}: at {key} = {v}", bounds[i]),
                    source,
                }
            })?;
        }
    }
    let search = Search {
        scenario,
        base,
        keys: &keys,
        given: &given,
        objective,
        opts,
        bar,
        evaluations: Vec::new(),
        analyses: Vec::new(),
    };
    search.run(&grids, passes)
}

/// The state of a search: the evaluations so far and their analyses.
struct Search<'a> {
    scenario: &'a Scenario,
    base: &'a rewards::RewardsFile,
    keys: &'a [String],
    given: &'a [i64],
    objective: TuneObjective,
    opts: &'a DeviationOptions,
    bar: &'a ProgressBar,
    evaluations: Vec<TuneEvaluation>,
    analyses: Vec<Option<DeviationAnalysis>>,
}

impl Search<'_> {
    fn objective_of(&self, values: &[i64], issuance: f64) -> f64 {
        match self.objective {
            TuneObjective::Issuance => issuance,
            TuneObjective::Distance => values
                .iter()
                .zip(self.given)
                .map(|(v, g)| (*v as f64 - *g as f64).abs() / (g.unsigned_abs().max(1) as f64))
                .sum(),
        }
    }

    /// The index of the evaluation of `values` (evaluated now if new); `None` if the table
    /// refuses the combination (e.g. a cross-key constraint).
    fn evaluate(&mut self, values: &[i64]) -> SimResult<Option<usize>> {
        if let Some(i) = self.evaluations.iter().position(|e| e.values == values) {
            return Ok(Some(i));
        }
        let Ok(file) = table_with(self.base, self.keys, values) else { return Ok(None) };
        let config = file.validate().map_err(|source| SimError::Rewards {
            context: "--tune candidate".to_owned(),
            source,
        })?;
        let analysis = analyse_deviations(self.scenario, &config, self.opts, self.bar)?;
        let worst =
            analysis.deviations.iter().max_by(|a, b| a.difference.low.total_cmp(&b.difference.low));
        let issuance = analysis.issuance.per_block;
        let evaluation = TuneEvaluation {
            values: values.to_vec(),
            objective: self.objective_of(values, issuance),
            issuance_per_block: issuance,
            feasible: analysis.deviations.iter().all(|d| !d.beats_honest),
            worst_deviation: worst.map_or_else(String::new, |w| w.behaviour.to_string()),
            violation: worst.map_or(f64::NEG_INFINITY, |w| w.difference.low),
        };
        self.evaluations.push(evaluation);
        self.analyses.push(Some(analysis));
        Ok(Some(self.evaluations.len() - 1))
    }

    fn run(mut self, grids: &[Vec<i64>], passes: u32) -> SimResult<TuneResult> {
        let mut current: Vec<i64> =
            self.given.iter().zip(grids).map(|(g, grid)| nearest(grid, *g)).collect();
        let Some(mut best) = self.evaluate(&current)? else {
            return Err(SimError::invalid(
                "--tune",
                "the starting table (the given one, moved onto the grids) is not a valid table",
            ));
        };
        // The feasible tables that became the best feasible one so far.
        let mut found: Vec<usize> = Vec::new();
        let note = |i: usize, evaluations: &[TuneEvaluation], found: &mut Vec<usize>| {
            let e = &evaluations[i];
            if e.feasible && found.last().is_none_or(|b| better(e, &evaluations[*b])) {
                found.push(i);
            }
        };
        note(best, &self.evaluations, &mut found);
        for _ in 0..passes {
            let mut changed = false;
            for (k, grid) in grids.iter().enumerate() {
                for &v in grid {
                    if current[k] == v {
                        continue;
                    }
                    let mut cand = current.clone();
                    cand[k] = v;
                    let Some(i) = self.evaluate(&cand)? else { continue };
                    note(i, &self.evaluations, &mut found);
                    if better(&self.evaluations[i], &self.evaluations[best]) {
                        best = i;
                    }
                }
                if self.evaluations[best].values != current {
                    current = self.evaluations[best].values.clone();
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let evaluations = self.evaluations;
        let mut analyses = self.analyses;
        let (base, keys) = (self.base, self.keys);
        let table = |i: usize| table_with(base, keys, &evaluations[i].values).unwrap_or(*base);
        let found = found
            .into_iter()
            .filter_map(|i| {
                let analysis = analyses.get_mut(i).and_then(Option::take)?;
                Some((table(i), evaluations[i].clone(), analysis))
            })
            .collect();
        Ok(TuneResult {
            best: (table(best), evaluations[best].clone()),
            keys: keys.to_vec(),
            evaluations,
            found,
        })
    }
}

impl TuneResult {
    /// `tune.csv`: one row per evaluation.
    pub fn csv(&self) -> String {
        let mut out = String::from("evaluation");
        for k in &self.keys {
            let _ = write!(out, ",{k}");
        }
        out.push_str(",objective,issuance_per_block,feasible,worst_deviation,worst_ci95_low\n");
        for (i, e) in self.evaluations.iter().enumerate() {
            let _ = write!(out, "{i}");
            for v in &e.values {
                let _ = write!(out, ",{v}");
            }
            let _ = writeln!(
                out,
                ",{:.6},{:.4},{},{},{:.4}",
                e.objective, e.issuance_per_block, e.feasible, e.worst_deviation, e.violation
            );
        }
        out
    }

    /// The terminal summary.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let (_, e) = &self.best;
        let _ = writeln!(
            out,
            "tune: {} evaluations, {} feasible table(s) found; best: {}",
            self.evaluations.len(),
            self.found.len(),
            if e.feasible { "feasible" } else { "NOT feasible (no table on the grid was)" }
        );
        for (k, v) in self.keys.iter().zip(&e.values) {
            let _ = writeln!(out, "  {k} = {v}");
        }
        let _ = writeln!(
            out,
            "  objective {:.4} · issuance {:.2} per block · worst deviation {} (95% low {:.2})",
            e.objective, e.issuance_per_block, e.worst_deviation, e.violation
        );
        out
    }
}

/// Writes `tune/tune.csv`, and per table found `tune/table-NN.toml` with its evidence in
/// `tune/table-NN/` (the deviation analysis's files). Returns the paths written.
///
/// # Errors
/// [`SimError::Io`], or an error writing the evidence.
pub fn write_tune(dir: &Path, result: &TuneResult, command: &str) -> SimResult<Vec<PathBuf>> {
    let tune_dir = dir.join("tune");
    super::output::create_dir(&tune_dir)?;
    let write = |path: PathBuf, text: String| -> SimResult<PathBuf> {
        std::fs::write(&path, text).map_err(|source| SimError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    };
    let mut written = vec![write(tune_dir.join("tune.csv"), result.csv())?];
    for (n, (file, e, analysis)) in result.found.iter().enumerate() {
        let name = format!("table-{:02}", n + 1);
        let mut text = format!(
            "# Found by `{command}`.\n# No modelled deviation beats honest play under this table; \
             the evidence is in {name}/.\n# objective {:.6}, issuance {:.4} per block; tuned:",
            e.objective, e.issuance_per_block
        );
        for (k, v) in result.keys.iter().zip(&e.values) {
            let _ = write!(text, " {k}={v}");
        }
        text.push_str("\n\n");
        text.push_str(&file.to_toml_string());
        written.push(write(tune_dir.join(format!("{name}.toml")), text)?);
        let evidence = tune_dir.join(&name);
        super::output::create_dir(&evidence)?;
        written.extend(write_deviations(&evidence, analysis, command)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(feasible: bool, objective: f64, violation: f64) -> TuneEvaluation {
        TuneEvaluation {
            values: vec![],
            objective,
            issuance_per_block: 0.0,
            feasible,
            worst_deviation: String::new(),
            violation,
        }
    }

    #[test]
    fn ranking_prefers_feasible_then_objective_then_violation() {
        assert!(better(&eval(true, 9.0, 5.0), &eval(false, 0.0, 0.1)));
        assert!(better(&eval(true, 1.0, 0.0), &eval(true, 2.0, 0.0)));
        assert!(!better(&eval(true, 2.0, 0.0), &eval(true, 2.0, 0.0)));
        assert!(better(&eval(false, 5.0, 0.1), &eval(false, 0.0, 0.2)));
        assert!(better(&eval(false, 1.0, 0.1), &eval(false, 2.0, 0.1)));
    }

    #[test]
    fn nearest_grid_value() {
        assert_eq!(nearest(&[0, 10, 20], 14), 10);
        assert_eq!(nearest(&[0, 10, 20], 15), 10);
        assert_eq!(nearest(&[0, 10, 20], 16), 20);
        assert_eq!(nearest(&[0, 10, 20], 99), 20);
    }
}
