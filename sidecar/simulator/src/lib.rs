//! `sidecar simulate`: the researcher's simulator.
//!
//! A crate of its own, on the pure core only (`phase-engine`, `rewards`, `plonky3-prover`): it
//! builds no tokio, libp2p, axum or redb (`cargo tree -p sidecar-simulator`), so researchers
//! build and embed it quickly, and nothing in it can reach a clock, a socket or a disk but its
//! output files.
//!
//! Drives the very same `phase-engine` and `rewards` code as the node, on virtual time (no
//! sleeps, no network), over many blocks and a population of provers whose behaviours and
//! latencies come from a scenario file (`configs/scenarios/*.toml`). Prints a summary table per
//! behaviour, and with `--out DIR` writes every ledger entry (CSV and JSON), per-prover totals
//! and plots (PNG and SVG). `--sweep KEY=FROM..TO:STEP` reruns the scenario with one constant of
//! the reward table varied and plots the outcome against it. `--deviations` tries every modelled
//! behaviour as a unilateral deviation from honest play over several seeds and says which ones
//! beat it (`deviations.csv`, `report.md` and plots; see [`analyse_deviations`]); `--tune` searches
//! for tables under which none does ([`tune`]).
//!
//! Proving is modelled by latencies (the default) or, for small runs, done for real
//! (`--real-proofs`: Plonky3 STARKs and BLS signatures, verified as a node verifies them; limits
//! in [`MAX_REAL_PROVERS`], [`MAX_REAL_BLOCKS`], [`MAX_REAL_AIRS_PER_BLOCK`]). A run is
//! deterministic given its seed: the engine runs on one thread; a second thread only folds
//! settled blocks into the report (rows, totals, settlement roots) in block order, and in
//! modelled mode a third builds and seals messages ahead of their delivery (pure functions of
//! their recipes, so the run does not depend on which thread built what).

mod deviations;
mod dist;
mod error;
mod modelled;
mod output;
mod pipeline;
mod plot;
mod real;
mod report;
mod run;
mod scenario;
mod sim;
mod stats;
mod sweep;
mod tune;

pub use deviations::{
    DEVIATIONS_CSV_HEADER, DeviationAnalysis, DeviationOptions, DeviationResult, Issuance,
    MAX_DEVIATION_SEEDS, Recipient, SeedOutcome, analyse_deviations, write_deviations,
};
pub use dist::{GasComponent, GasDistribution, Latency, MAX_LATENCY_MS};
pub use error::{SimError, SimResult};
pub use output::{LedgerWriter, create_dir, write_report};
pub use plot::{SweepPoint, behaviour_colour, plot_deviations, plot_run, plot_sweep};
pub use real::{
    MAX_REAL_AIRS_PER_BLOCK, MAX_REAL_BLOCKS, MAX_REAL_PROVERS,
    check_size as check_real_proofs_size,
};
pub use report::{
    AccountKind, Accumulator, BalancePoint, BehaviourSummary, BlockFate, BlockRecord, LedgerRow,
    MAX_BALANCE_POINTS, ProverTotals, RunReport,
};
pub use run::{SimulateArgs, load_rewards, load_scenario, run, run_sweep, sweep_table};
pub use scenario::{
    Behaviour, Defaults, ExitEntry, Group, JoinEntry, LatencyOverride, LatencyProfile, MAX_PROVERS,
    ProverEntry, ProverSpec, Scenario, ScenarioFile,
};
pub use sim::{GENESIS_MS, ProofMode, SimOptions, simulate, simulated_block};
pub use stats::MeanCi;
pub use sweep::{MAX_SWEEP_POINTS, Sweep};
pub use tune::{MAX_TUNED_CONSTANTS, TuneEvaluation, TuneObjective, TuneResult, tune, write_tune};
