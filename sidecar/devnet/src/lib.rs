//! `sidecar devnet`: a whole proving network in one process, on loopback.
//!
//! [`run`] starts the embedded devnet beacon node ([`beacon_api::DevnetNode`]), `K` validator-mode
//! sidecars ([`sidecar_node::Node`]) and `M` prover workers ([`sidecar_prover::ProverWorker`], real
//! STARKs; prover `i` submits to sidecar `i mod K`), then watches every block: the rounds each
//! sidecar runs, the phase they finalise in, the time from the beacon head event to the first
//! full proof and to the settled ledger, the rewards paid, and the settlement root of every
//! sidecar. One table row is written per block once every sidecar has settled it. With a block
//! limit it stops after that many blocks and returns a [`DevnetSummary`];
//! [`DevnetSummary::check`] says whether every block got a valid full proof and every sidecar
//! settled the same ledger root ([`rewards::Ledger::settlement_root`]).
//!
//! Counting starts with the first block the devnet produces once every sidecar and prover is up;
//! blocks produced during start-up are settled but not reported.
//!
//! With `--chaos` the same network runs with three faults (a sidecar receiving gossip late, one
//! starting late, one killed and restarted), all at once or any of them alone
//! (`--chaos late-gossip,restart`), and passes only if every sidecar still settles the same
//! ledgers.
//!
//! [`serve_beacon`] runs only the devnet beacon node, for sidecars and provers started as
//! separate processes (`testnets/local/run.sh`).
//!
//! A crate of its own: it is the only program that runs validator nodes and prover workers
//! side by side, so it is the one crate above both (`sidecar-node`, `sidecar-prover`); neither
//! knows of the other.

mod args;
mod beacon;
mod catch_up;
mod chaos;
mod collector;
mod error;
mod options;
mod report;
mod run;
mod table;

pub use args::DevnetArgs;
pub use beacon::serve_beacon;
pub use catch_up::CatchUpReport;
pub use chaos::ChaosFaults;
pub use error::{DevnetError, DevnetResult};
pub use options::DevnetOptions;
pub use report::{BlockReport, DevnetSummary, LatencyStats};
pub use run::run;
pub use table::{write_json, write_summary};

/// The default listen address of the beacon node in `--beacon-only` mode.
pub const BEACON_ONLY_ADDRESS: &str = "127.0.0.1:5052";

/// The log filter of `sidecar devnet` when none is given: the table is the output.
pub const DEFAULT_LOG_FILTER: &str = "error";
