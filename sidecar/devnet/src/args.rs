//! The command line of `sidecar devnet` (clap derive; the binary flattens it into its own).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// `sidecar devnet`.
#[derive(Debug, Clone, Args)]
pub struct DevnetArgs {
    /// Number of sidecars (validator-mode nodes, connected by gossip).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub sidecars: u32,
    /// Number of prover workers (prover i submits to sidecar i mod N).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub provers: u32,
    /// Stop after this many blocks, print a summary and exit 0 only if all were proven and
    /// every sidecar settled the same ledger root.
    #[arg(long, value_name = "N")]
    pub blocks: Option<u64>,
    /// Slot duration of the devnet, in seconds. The phase windows of the reward config scale
    /// with it (4 s each at 12 s slots).
    #[arg(long, default_value_t = 12, value_name = "SECONDS")]
    pub seconds_per_slot: u64,
    /// Smallest gas used by a devnet block.
    #[arg(long, default_value_t = 5_000_000, value_name = "GAS")]
    pub min_gas: u64,
    /// Largest gas used by a devnet block.
    #[arg(long, default_value_t = 36_000_000, value_name = "GAS")]
    pub max_gas: u64,
    /// Proving threads of each prover; 0 shares the cores among the provers.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub prover_threads: usize,
    /// Reward table and round parameters (TOML, see configs/rewards.toml); default: the
    /// shipped table.
    #[arg(long, value_name = "FILE")]
    pub rewards: Option<PathBuf>,
    /// Seed of the devnet chain (gas, keys of the validators) and of the provers' keys.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Write the per-block results and latency statistics as JSON to this file at the end.
    #[arg(long, value_name = "FILE")]
    pub bench_json: Option<PathBuf>,
    /// Serve only the devnet beacon node (for separate `sidecar run` / `sidecar prover`
    /// processes, see testnets/local/run.sh); print its URL and each new head.
    #[arg(long)]
    pub beacon_only: bool,
    /// Listen address of the devnet beacon node [default: 127.0.0.1:5052 with --beacon-only,
    /// else any free loopback port].
    #[arg(long, value_name = "IP:PORT")]
    pub beacon_address: Option<SocketAddr>,
    /// Share of the devnet's validators whose proposals carry an inclusion record (their
    /// sidecar sets their graffiti through the devnet's keymanager API); the served validators
    /// are dealt to the sidecars in turn. The other proposers include nothing.
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION")]
    pub proposers_with_sidecar: f64,
    /// Settle from each sidecar's own clock instead of the canonical inclusion records (the
    /// mode before canonical rounds; for comparison).
    #[arg(long)]
    pub no_inclusion: bool,
    /// Run with faults (needs 3 sidecars and at least 9 blocks): `late-gossip` (sidecar 0
    /// receives every gossip message 5 s late), `late-start` (sidecar 1 starts after block 3),
    /// `restart` (sidecar 2 is killed after block 4 and restarts 3 blocks later); a
    /// comma-separated list, or all three when given without a value. Every prover submits to
    /// sidecar 0. The run exits 0 only if every sidecar settles every block with the same
    /// ledger.
    #[arg(
        long,
        value_name = "FAULTS",
        num_args = 0..=1,
        default_missing_value = "all",
        require_equals = false
    )]
    pub chaos: Option<String>,
    /// With the `restart` fault of `--chaos`: sidecar 2 is killed after this block instead of
    /// block 4 (it restarts 3 blocks later, its start-up time logged): how long a restart takes
    /// after a long chain.
    #[arg(long, value_name = "BLOCK")]
    pub kill_at: Option<u64>,
    /// Once the blocks are reported, start one more sidecar with an empty store and measure how
    /// fast it catches up: it follows the chain from genesis, fetches the inclusion records and
    /// messages from its peers, verifies them and settles every block the others settled. The
    /// run fails if it settles any block differently or not within one slot per block.
    #[arg(long, requires = "blocks")]
    pub catch_up: bool,
}
