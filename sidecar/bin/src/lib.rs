//! # sidecar
//!
//! The `sidecar` program: its command line ([`cli`]), its configuration file ([`config`],
//! `configs/sidecar.toml`), logging, and what each subcommand does ([`commands`]). The work
//! itself lives in one crate per program or subsystem, and this crate only wires them up:
//!
//! | crate | what it is |
//! |---|---|
//! | `sidecar-node` | validator mode (`sidecar run`): follower, driver, verification, store |
//! | `sidecar-prover` | prover mode (`sidecar prover`, `prove`, `verify`) |
//! | `sidecar-devnet` | `sidecar devnet`: a whole network in one process |
//! | `sidecar-simulator` | `sidecar simulate`: the researcher's simulator (pure core only) |
//! | `sidecar-p2p` | libp2p gossipsub and discv5 |
//! | `sidecar-metrics` | the Prometheus registry shared by node, network and prover |
//! | `sidecar-keystore` | EIP-2335 prover keystores (`sidecar keys`) |
//!
//! Dependencies point down only: this crate on the program crates, they on the subsystems and
//! the pure core (`phase-engine`, `rewards`, `plonky3-prover`, `beacon-api`), never sideways to
//! a sibling they do not need. `main.rs` is the thin binary (reth's `bin/reth` shape).

pub mod cli;
pub mod commands;
pub mod config;
mod error;
mod logging;

pub use config::Config;
pub use error::{Error, Result};
pub use logging::init_logging;
