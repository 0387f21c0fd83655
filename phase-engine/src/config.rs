//! The engine's parameters: selection sizes, redundancy, block planning by gas, phase windows,
//! retries and reputation bounds. Loaded from TOML by the `rewards` crate (which owns the file
//! schema of `configs/rewards.toml`); here only the validated, typed values live.

use serde::{Deserialize, Serialize};

/// Phase windows, as durations in milliseconds. Attempt 0 of a round starts at its block's slot
/// start; T1 runs for `t1_ms`, then T2 for `t2_ms`, and so on. A retry attempt starts when T5 of
/// the previous attempt closes and runs the same windows again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseWindows {
    /// Length of T1 (commitments).
    pub t1_ms: u64,
    /// Length of T2 (partial proofs).
    pub t2_ms: u64,
    /// Length of T3 (aggregation).
    pub t3_ms: u64,
    /// Length of T4 (first fallback).
    pub t4_ms: u64,
    /// Length of T5 (second fallback).
    pub t5_ms: u64,
    /// Grace added to every window close: a message counts for a phase if it arrives before the
    /// window closes plus this disparity.
    pub max_clock_disparity_ms: u64,
    /// How far back a sidecar accepts the first-seen time a relaying sidecar attached to a
    /// gossiped message (the relay verifies the message before it forwards it, and propagation
    /// takes time); an older claim counts as `now - max_relay_delay_ms`. Every sidecar of a
    /// network must use the same value, or their settlements can differ. Not less than
    /// `max_clock_disparity_ms`.
    #[serde(default = "default_max_relay_delay_ms")]
    pub max_relay_delay_ms: u64,
}

fn default_max_relay_delay_ms() -> u64 {
    PhaseWindows::default().max_relay_delay_ms
}

impl Default for PhaseWindows {
    fn default() -> Self {
        Self {
            t1_ms: 4_000,
            t2_ms: 4_000,
            t3_ms: 4_000,
            t4_ms: 4_000,
            t5_ms: 4_000,
            max_clock_disparity_ms: 500,
            max_relay_delay_ms: 3_000,
        }
    }
}

/// Inclusion of protocol messages by proposers (`[inclusion]` of `configs/rewards.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// A record for slot `S` states no arrival time later than `S`'s start minus this margin
    /// (the proposer's sidecar needs the time to build the record and set the graffiti before
    /// the validator client asks for the block).
    pub cutoff_margin_ms: u64,
    /// A message counts only if a canonical record of one of the `max_delay_slots` slots after
    /// the slot it arrived in includes it.
    pub max_delay_slots: u64,
    /// A prover registration included by the canonical record of slot `R` joins the registry
    /// right before the block of slot `R + registration_delay_slots` (the first block after,
    /// if that slot is missed): late enough that every sidecar has resolved `R` by then, so the
    /// live engines select from the registry the settling engines use.
    #[serde(default = "default_registration_delay_slots")]
    pub registration_delay_slots: u64,
}

fn default_registration_delay_slots() -> u64 {
    InclusionParams::default().registration_delay_slots
}

impl Default for InclusionParams {
    fn default() -> Self {
        Self { cutoff_margin_ms: 2_000, max_delay_slots: 4, registration_delay_slots: 2 }
    }
}

/// How a block is split into sub-blocks and AIR instances by gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GasPlan {
    /// Gas per sub-block: a block of `g` gas has `ceil(g / sub_block_gas)` sub-blocks (at least 1),
    /// capped by `max_sub_blocks` and by prover availability.
    pub sub_block_gas: u64,
    /// Upper bound on the number of sub-blocks of one block.
    pub max_sub_blocks: u32,
    /// Gas per AIR instance: a sub-block of `g` gas has `ceil(g / gas_per_air)` AIRs (at least 1).
    pub gas_per_air: u64,
}

impl Default for GasPlan {
    fn default() -> Self {
        Self { sub_block_gas: 50_000_000, max_sub_blocks: 32, gas_per_air: 4_000_000 }
    }
}

/// Bounded reputation weighting of selection (acceptance sampling as in the consensus spec's
/// `compute_proposer_index`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReputationBounds {
    /// Weight of a prover with no history.
    pub base_weight: u64,
    /// Maximum weight is `base_weight * max_boost`.
    pub max_boost: u64,
}

impl Default for ReputationBounds {
    fn default() -> Self {
        Self { base_weight: 128, max_boost: 2 }
    }
}

/// All engine parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// `PROVERS_PER_PROOF`: upper bound of provers selected per (sub-)block.
    pub provers_per_proof: u32,
    /// `PROVERS_PER_AGGPROOF`: size of the aggregator group of a block with sub-blocks.
    pub provers_per_aggproof: u32,
    /// Every AIR is assigned to this many distinct selected provers (capped by the number selected).
    pub redundancy_factor: u32,
    /// Retries with a new prover set after T5 fails.
    pub max_retries: u32,
    /// Shuffle rounds of the swap-or-not shuffle (90 as in the consensus spec).
    pub shuffle_round_count: u8,
    /// Block planning by gas.
    pub gas: GasPlan,
    /// Phase windows.
    pub phases: PhaseWindows,
    /// Reputation weighting bounds.
    pub reputation: ReputationBounds,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            provers_per_proof: 200,
            provers_per_aggproof: 5,
            redundancy_factor: 2,
            max_retries: 2,
            shuffle_round_count: 90,
            gas: GasPlan::default(),
            phases: PhaseWindows::default(),
            reputation: ReputationBounds::default(),
        }
    }
}
