//! `sidecar simulate`: the researcher's simulator.
//!
//! Drives the very same `phase-engine` and `rewards` code as the node, on virtual time (no
//! sleeps, no network, no threads), over many blocks and a population of provers whose
//! behaviours and latencies come from a scenario file (`configs/scenarios/*.toml`). Prints a
//! summary table per behaviour, and with `--out DIR` writes every ledger entry (CSV and JSON),
//! per-prover totals and plots (PNG and SVG). `--sweep KEY=FROM..TO:STEP` reruns the scenario
//! with one constant of the reward table varied and plots the outcome against it.

mod dist;
mod error;
mod modelled;
mod output;
mod plot;
mod report;
mod run;
mod scenario;
mod sim;
mod sweep;

pub use dist::{GasComponent, GasDistribution, Latency, MAX_LATENCY_MS};
pub use error::{SimError, SimResult};
pub use output::{LedgerWriter, create_dir, write_report};
pub use plot::{SweepPoint, behaviour_colour, plot_run, plot_sweep};
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
pub use sweep::{MAX_SWEEP_POINTS, Sweep};
