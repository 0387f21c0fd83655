//! What a run observed, block by block ([`BlockReport`]), and its summary ([`DevnetSummary`],
//! with the check that every block was proven and settled to the same root everywhere).

use std::collections::BTreeSet;
use std::time::Duration;

use phase_engine::{Phase, Root};
use rewards::Account;
use serde::Serialize;

use crate::catch_up::CatchUpReport;
use crate::error::{DevnetError, DevnetResult};

/// Latency statistics over the reported blocks, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: usize,
    /// Smallest.
    pub min: f64,
    /// Median (nearest rank).
    pub median: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl LatencyStats {
    /// Statistics of `samples`; `None` when empty.
    pub fn of(samples: impl IntoIterator<Item = Duration>) -> Option<Self> {
        let mut s: Vec<f64> = samples.into_iter().map(|d| d.as_secs_f64()).collect();
        s.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let n = s.len();
            // Nearest rank: ceil(q * n), 1-based.
            let r = ((q * n as f64).ceil() as usize).clamp(1, n);
            s.get(r - 1).copied().unwrap_or_default()
        };
        Some(Self {
            count: s.len(),
            min: *s.first()?,
            median: rank(0.5),
            p95: rank(0.95),
            max: *s.last()?,
        })
    }
}

/// One block as every sidecar saw it.
#[derive(Clone, Debug, Serialize)]
pub struct BlockReport {
    /// The block's slot.
    pub slot: u64,
    /// The block root.
    pub block_root: Root,
    /// Gas used by its payload (`None` if the block could not be read back).
    pub gas_used: Option<u64>,
    /// AIRs of the block (all sub-blocks, first attempt).
    pub airs: u32,
    /// Distinct provers selected for its rounds (every sub-block and attempt).
    pub provers: usize,
    /// The latest phase any of its sub-blocks finalised in; `None` if one never did.
    pub finalized_in: Option<Phase>,
    /// Retries used (highest attempt index over the sub-blocks).
    pub retries: u32,
    /// Head event → the last sub-block's first verified full proof (sidecar 0).
    pub full_proof_after: Option<Duration>,
    /// Head event → settled by every sidecar.
    pub settled_after: Option<Duration>,
    /// Sum of the positive ledger entries (rewards paid).
    pub paid: i64,
    /// Sum of the negative ledger entries (penalties).
    pub penalties: i64,
    /// The account paid most in this block, and its net amount.
    pub top: Option<(Account, i64)>,
    /// The settlement root each sidecar settled (`None`: not settled in time).
    pub roots: Vec<Option<Root>>,
    /// Whether each sidecar verified a full proof of every sub-block (and the AggProof).
    pub proven: Vec<bool>,
    /// Where the ledgers differ, if they do: the entries of sidecar 0's ledger that another
    /// sidecar lacks or has with another amount, and the other way round (a few, for diagnosis).
    pub divergence: Vec<String>,
}

impl BlockReport {
    /// Proven and settled by every sidecar, with one and the same settlement root.
    pub fn ok(&self) -> bool {
        self.problem().is_none()
    }

    /// What is wrong with this block, if anything.
    pub fn problem(&self) -> Option<String> {
        let unsettled: Vec<usize> =
            self.roots.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect();
        if !unsettled.is_empty() {
            return Some(format!("not settled by sidecar(s) {unsettled:?}"));
        }
        let unproven: Vec<usize> =
            self.proven.iter().enumerate().filter(|(_, p)| !**p).map(|(i, _)| i).collect();
        if !unproven.is_empty() {
            return Some(format!("no valid full proof on sidecar(s) {unproven:?}"));
        }
        let distinct: BTreeSet<Root> = self.roots.iter().flatten().copied().collect();
        if distinct.len() > 1 {
            return Some(format!("{} different settlement roots", distinct.len()));
        }
        None
    }

    /// The settlement root, if every sidecar settled the same one.
    pub fn agreed_root(&self) -> Option<Root> {
        let first = (*self.roots.first()?)?;
        self.roots.iter().all(|r| *r == Some(first)).then_some(first)
    }
}

/// What a devnet run observed.
#[derive(Clone, Debug, Serialize)]
pub struct DevnetSummary {
    /// Number of sidecars.
    pub sidecars: usize,
    /// Number of provers.
    pub provers: usize,
    /// Slot time.
    pub seconds_per_slot: u64,
    /// Blocks requested (`--blocks`).
    pub requested: Option<u64>,
    /// Whether the run was stopped by the shutdown signal.
    pub interrupted: bool,
    /// Every reported block, in the order they completed.
    pub blocks: Vec<BlockReport>,
    /// Head event → full proof, over the blocks that got one.
    pub full_proof_latency: Option<LatencyStats>,
    /// Head event → settled everywhere, over the blocks settled everywhere.
    pub settled_latency: Option<LatencyStats>,
    /// Net balance per prover over the reported blocks (sidecar 0's ledgers), highest first.
    pub earnings: Vec<(Account, i64)>,
    /// The fresh sidecar's catch-up (`--catch-up`).
    pub catch_up: Option<CatchUpReport>,
}

impl DevnetSummary {
    /// `Ok` if the requested number of blocks was reported (when one was requested), and every
    /// block got a valid full proof on every sidecar and the same settlement root everywhere.
    ///
    /// # Errors
    /// [`DevnetError::Interrupted`] or [`DevnetError::CheckFailed`].
    pub fn check(&self) -> DevnetResult<()> {
        let failures: Vec<String> = self
            .blocks
            .iter()
            .filter_map(|b| b.problem().map(|p| format!("slot {}: {p}", b.slot)))
            .collect();
        if !failures.is_empty() {
            return Err(DevnetError::CheckFailed {
                failed: failures.len(),
                blocks: self.blocks.len(),
                details: failures.join("; "),
            });
        }
        if let Some(problem) = self.catch_up.as_ref().and_then(CatchUpReport::problem) {
            return Err(DevnetError::CatchUpFailed { reason: problem });
        }
        let done = self.blocks.len() as u64;
        match self.requested {
            Some(requested) if done < requested => {
                Err(DevnetError::Interrupted { done, requested })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stats_use_nearest_rank() {
        let s = LatencyStats::of((1..=20).map(Duration::from_secs)).unwrap();
        assert_eq!((s.count, s.min, s.median, s.p95, s.max), (20, 1.0, 10.0, 19.0, 20.0));
        assert!(LatencyStats::of([]).is_none());
        let one = LatencyStats::of([Duration::from_millis(1500)]).unwrap();
        assert_eq!((one.median, one.p95), (1.5, 1.5));
    }

    fn report(roots: Vec<Option<Root>>, proven: Vec<bool>) -> BlockReport {
        BlockReport {
            slot: 7,
            block_root: Root::ZERO,
            gas_used: Some(1),
            airs: 1,
            provers: 2,
            finalized_in: Some(Phase::T3),
            retries: 0,
            full_proof_after: Some(Duration::from_secs(1)),
            settled_after: Some(Duration::from_secs(2)),
            paid: 10,
            penalties: -1,
            top: None,
            roots,
            proven,
            divergence: Vec::new(),
        }
    }

    #[test]
    fn a_block_fails_on_a_missing_proof_a_missing_ledger_or_a_root_mismatch() {
        let a = Some(Root::repeat_byte(1));
        let b = Some(Root::repeat_byte(2));
        assert!(report(vec![a, a], vec![true, true]).ok());
        assert!(report(vec![a, b], vec![true, true]).problem().unwrap().contains("different"));
        assert!(report(vec![a, None], vec![true, true]).problem().unwrap().contains("[1]"));
        assert!(report(vec![a, a], vec![true, false]).problem().unwrap().contains("full proof"));
        let summary = |blocks, requested| DevnetSummary {
            sidecars: 2,
            provers: 2,
            seconds_per_slot: 2,
            requested,
            interrupted: false,
            blocks,
            full_proof_latency: None,
            settled_latency: None,
            earnings: Vec::new(),
            catch_up: None,
        };
        assert!(summary(vec![report(vec![a, a], vec![true, true])], Some(1)).check().is_ok());
        let short = summary(vec![report(vec![a, a], vec![true, true])], Some(2)).check();
        assert!(matches!(short, Err(DevnetError::Interrupted { done: 1, requested: 2 })));
        let bad = summary(vec![report(vec![a, b], vec![true, true])], Some(1)).check();
        assert!(bad.unwrap_err().to_string().contains("slot 7"));

        // A fresh sidecar that settles a block differently, or misses one, fails the run.
        let caught_up = |identical, differing| CatchUpReport {
            blocks: 3,
            identical,
            differing,
            seconds: 1.0,
            blocks_per_second: 3.0,
            seconds_per_slot: 12,
        };
        let mut run = summary(vec![report(vec![a, a], vec![true, true])], Some(1));
        run.catch_up = Some(caught_up(3, 0));
        assert!(run.check().is_ok());
        assert_eq!(run.catch_up.as_ref().map(CatchUpReport::speedup), Some(36.0));
        run.catch_up = Some(caught_up(2, 1));
        assert!(matches!(run.check(), Err(DevnetError::CatchUpFailed { .. })));
        run.catch_up = Some(caught_up(2, 0));
        let missed = run.check().unwrap_err().to_string();
        assert!(missed.contains("did not settle 1 block"), "{missed}");
    }
}
