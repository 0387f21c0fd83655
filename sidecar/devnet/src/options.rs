//! The resolved settings of a devnet run ([`DevnetOptions`], from the command line), the
//! phase windows scaled to the slot time, and the provers' deterministic keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use beacon_api::DevnetConfig;
use phase_engine::bls;
use sha2::{Digest as _, Sha256};

use crate::BEACON_ONLY_ADDRESS;
use crate::args::DevnetArgs;
use crate::chaos::ChaosFaults;
use crate::error::{DevnetError, DevnetResult};

/// Stake of every devnet prover (32 ETH in Gwei).
pub(crate) const PROVER_STAKE: u64 = 32_000_000_000;

/// The resolved settings of a devnet run.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// Number of sidecars.
    pub sidecars: usize,
    /// Number of prover workers.
    pub provers: usize,
    /// Stop after this many reported blocks (`None`: until the shutdown signal).
    pub blocks: Option<u64>,
    /// The devnet beacon node (slot time, gas range, seed).
    pub chain: DevnetConfig,
    /// Reward table and engine parameters of every sidecar.
    pub rewards: rewards::Config,
    /// Proving threads per prover (at least 1).
    pub prover_threads: usize,
    /// Data directory of the sidecars (`sidecar-<i>` in it); `None`: a temporary directory
    /// removed at the end.
    pub data_dir: Option<PathBuf>,
    /// Listen address of the beacon node.
    pub beacon_address: SocketAddr,
    /// Seed of the provers' keys.
    pub seed: u64,
    /// How long a block may take from its head event to being settled by every sidecar before
    /// it is reported as failed.
    pub block_timeout: Duration,
    /// Canonical rounds: the sidecars settle from the inclusion records (`false`: from their
    /// own clocks).
    pub inclusion: bool,
    /// Share of the validators whose sidecar includes for their proposals (0 to 1).
    pub proposers_with_sidecar: f64,
    /// The faults of `--chaos` (`None`: none).
    pub chaos: Option<ChaosFaults>,
    /// Measure a fresh sidecar's catch-up after the reported blocks (`--catch-up`).
    pub catch_up: bool,
}

impl DevnetOptions {
    /// Options from the command line: the reward table from `args.rewards` (or the shipped one)
    /// with its phase windows scaled to the slot time, and `data_dir` for the sidecars' data.
    ///
    /// # Errors
    /// [`DevnetError::InvalidArgument`] for zero counts or slot time, an inverted gas range;
    /// [`DevnetError::Rewards`] for an unreadable or invalid reward file.
    pub fn from_args(args: &DevnetArgs, data_dir: Option<PathBuf>) -> DevnetResult<Self> {
        let invalid = |arg, value: &dyn std::fmt::Display, reason: &str| {
            Err(DevnetError::InvalidArgument {
                arg,
                value: value.to_string(),
                reason: reason.to_owned(),
            })
        };
        if args.sidecars == 0 {
            return invalid("--sidecars", &args.sidecars, "must be at least 1");
        }
        if args.provers == 0 {
            return invalid("--provers", &args.provers, "must be at least 1");
        }
        if args.seconds_per_slot == 0 {
            return invalid("--seconds-per-slot", &args.seconds_per_slot, "must be at least 1");
        }
        if args.blocks == Some(0) {
            return invalid("--blocks", &0, "must be at least 1");
        }
        if args.min_gas > args.max_gas {
            return invalid("--min-gas", &args.min_gas, "must not exceed --max-gas");
        }
        let mut chaos = match args.chaos.as_deref().map(ChaosFaults::parse).transpose() {
            Ok(chaos) => chaos,
            Err(reason) => {
                return invalid("--chaos", &args.chaos.as_deref().unwrap_or(""), &reason);
            }
        };
        if let Some(kill_at) = args.kill_at {
            match chaos.as_mut() {
                Some(faults) if faults.restart && kill_at >= 1 => faults.kill_at = kill_at,
                Some(faults) if faults.restart => {
                    return invalid("--kill-at", &kill_at, "must be at least 1");
                }
                _ => {
                    return invalid("--kill-at", &kill_at, "needs the `restart` fault of --chaos");
                }
            }
        }
        if chaos.is_some() && args.sidecars != 3 {
            return invalid("--sidecars", &args.sidecars, "--chaos runs exactly 3 sidecars");
        }
        if let (Some(faults), Some(blocks)) = (chaos, args.blocks)
            && blocks < faults.min_blocks()
        {
            return invalid(
                "--blocks",
                &blocks,
                &format!(
                    "--chaos needs at least {} blocks (every fault, then blocks after the restart)",
                    faults.min_blocks()
                ),
            );
        }
        if args.catch_up && args.no_inclusion {
            return invalid(
                "--catch-up",
                &"--no-inclusion",
                "a fresh sidecar settles past blocks only from the inclusion records",
            );
        }
        if !(0.0..=1.0).contains(&args.proposers_with_sidecar) {
            return invalid(
                "--proposers-with-sidecar",
                &args.proposers_with_sidecar,
                "must be between 0 and 1",
            );
        }
        let base = match &args.rewards {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| DevnetError::Rewards {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                rewards::Config::from_toml_str(&text).map_err(|e| DevnetError::Rewards {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            None => rewards::Config::default(),
        };
        let rewards =
            scale_phases(base, args.seconds_per_slot).map_err(|e| DevnetError::Rewards {
                path: args.rewards.clone().unwrap_or_else(|| PathBuf::from("(default)")),
                reason: format!(
                    "scaling the phase windows to {} s slots: {e}",
                    args.seconds_per_slot
                ),
            })?;
        let inclusion = !args.no_inclusion;
        let chain = DevnetConfig {
            seconds_per_slot: args.seconds_per_slot,
            min_gas_used: args.min_gas,
            max_gas_used: args.max_gas,
            seed: args.seed,
            // The sidecars set their validators' graffiti through it.
            keymanager_token: inclusion.then(|| KEYMANAGER_TOKEN.to_owned()),
            ..DevnetConfig::default()
        };
        chain.validate().map_err(|e| DevnetError::InvalidArgument {
            arg: "--min-gas/--max-gas",
            value: format!("{}..{}", args.min_gas, args.max_gas),
            reason: e.to_string(),
        })?;
        let provers = usize::try_from(args.provers).unwrap_or(usize::MAX);
        let prover_threads = if args.prover_threads == 0 {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            (cores / provers).max(1)
        } else {
            args.prover_threads
        };
        let default_address = if args.beacon_only { BEACON_ONLY_ADDRESS } else { "127.0.0.1:0" };
        let beacon_address = args.beacon_address.unwrap_or_else(|| {
            default_address.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
        });
        Ok(Self {
            sidecars: usize::try_from(args.sidecars).unwrap_or(usize::MAX),
            provers,
            blocks: args.blocks,
            block_timeout: block_timeout(&rewards, args.seconds_per_slot, inclusion),
            chain,
            rewards,
            prover_threads,
            data_dir,
            beacon_address,
            seed: args.seed,
            inclusion,
            proposers_with_sidecar: args.proposers_with_sidecar,
            chaos,
            catch_up: args.catch_up,
        })
    }
}

/// The bearer token of the devnet beacon node's keymanager API (loopback only).
pub(crate) const KEYMANAGER_TOKEN: &str = "sidecar-devnet-keymanager";

/// Scales the phase windows, the clock-disparity grace and the inclusion records' cut-off margin
/// of `config` from 12-second slots to `seconds_per_slot` (unchanged at 12 s).
pub(crate) fn scale_phases(
    config: rewards::Config,
    seconds_per_slot: u64,
) -> rewards::Result<rewards::Config> {
    if seconds_per_slot == 12 {
        return Ok(config);
    }
    let scale = |ms: u64| (ms.saturating_mul(seconds_per_slot) / 12).max(1);
    let mut file = config.to_file();
    let p = &mut file.phases;
    for ms in [
        &mut p.t1_ms,
        &mut p.t2_ms,
        &mut p.t3_ms,
        &mut p.t4_ms,
        &mut p.t5_ms,
        &mut p.max_clock_disparity_ms,
    ] {
        *ms = scale(*ms);
    }
    file.inclusion.cutoff_margin_ms = scale(file.inclusion.cutoff_margin_ms);
    file.validate()
}

/// A block that is not settled everywhere after every attempt's windows, plus slack (and, with
/// canonical rounds, the slots until the records that may include its messages are final),
/// failed.
pub(crate) fn block_timeout(
    rewards: &rewards::Config,
    seconds_per_slot: u64,
    inclusion: bool,
) -> Duration {
    let p = rewards.engine.phases;
    let attempt = [p.t1_ms, p.t2_ms, p.t3_ms, p.t4_ms, p.t5_ms, p.max_clock_disparity_ms]
        .iter()
        .fold(0u64, |acc, ms| acc.saturating_add(*ms));
    let attempts = u64::from(rewards.engine.max_retries).saturating_add(1);
    let finality_slots =
        if inclusion { rewards.inclusion.max_delay_slots.saturating_add(2) } else { 0 };
    Duration::from_millis(attempt.saturating_mul(attempts))
        + Duration::from_secs(seconds_per_slot.saturating_mul(4).max(30))
        + Duration::from_secs(seconds_per_slot.saturating_mul(finality_slots))
}

/// The deterministic key of devnet prover `index`.
pub(crate) fn prover_key(seed: u64, index: usize) -> bls::SecretKey {
    let mut ikm = [0u8; 32];
    let digest = Sha256::new()
        .chain_update(b"sidecar-devnet-prover")
        .chain_update(seed.to_le_bytes())
        .chain_update((index as u64).to_le_bytes())
        .finalize();
    ikm.copy_from_slice(&digest);
    // IKM of 32 bytes is always accepted by the key derivation.
    bls::SecretKey::from_ikm(&ikm).unwrap_or_else(|_| unreachable!("32-byte IKM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_scale_with_the_slot_time() {
        let base = rewards::Config::default();
        assert_eq!(scale_phases(base, 12).unwrap(), base);
        let fast = scale_phases(base, 2).unwrap().to_file();
        assert_eq!(fast.phases.t1_ms, 666);
        assert_eq!(fast.phases.max_clock_disparity_ms, 83);
        let slow = scale_phases(base, 24).unwrap().to_file();
        assert_eq!((slow.phases.t5_ms, slow.phases.max_clock_disparity_ms), (8000, 1000));
    }

    #[test]
    fn prover_keys_are_deterministic_and_distinct() {
        assert_eq!(prover_key(0, 1).public_key(), prover_key(0, 1).public_key());
        assert_ne!(prover_key(0, 1).public_key(), prover_key(0, 2).public_key());
        assert_ne!(prover_key(0, 1).public_key(), prover_key(1, 1).public_key());
    }
}
