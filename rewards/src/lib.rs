//! The reward table of the proving protocol and the settlement of round outcomes into ledgers.
//!
//! - [`RewardsFile`] is the schema of `configs/rewards.toml`: every constant of the spec under its
//!   spec name, plus the engine's parameters (selection, redundancy, gas plan, phase windows,
//!   retries, reputation bounds). Unknown keys are rejected; [`RewardsFile::validate`] turns it
//!   into a runtime [`Config`] (a [`RewardTable`] and a [`phase_engine::EngineConfig`]) with errors
//!   that name the key. Any key can be overridden by its dotted name ([`RewardsFile::set`],
//!   [`Config::set`]), which is how parameter sweeps work.
//! - [`settle`] turns a [`phase_engine::BlockOutcome`] into a [`Ledger`] of [`LedgerEntry`]s
//!   `(account, phase, rule, amount)` in canonical order, independent of message arrival order.
//!   Its [`Ledger::settlement_root`] (SSZ `hash_tree_root`) lets nodes compare settlements.
//! - [`Balances`] folds ledgers into per-account balances.
//!
//! Pure: no clock, no I/O, no threads, no randomness; checked arithmetic everywhere. The rules
//! and every decision where the spec is silent are in `docs/protocol.md`, "Rewards and
//! settlement".

#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::panic
    )
)]

mod config;
mod error;
mod ledger;
mod settle;
mod table;

pub use config::{Config, RetriesSection, RewardsFile, SelectionSection};
pub use error::{Error, Result};
pub use ledger::{Account, Balances, Ledger, LedgerEntry, MAX_LEDGER_ENTRIES};
pub use settle::settle;
#[cfg(feature = "bench-reference")]
#[doc(hidden)]
pub use settle::settle_reference;
pub use table::{RewardTable, Rule};
