//! The worker's counters and the refusals it keeps ([`WorkerStats`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many refusals [`WorkerStats::rejections`] keeps (the most recent ones).
pub const REJECTIONS_KEPT: usize = 64;

/// A submission the sidecar refused, with its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What was submitted (`"commitment"`, `"partial proof"`, `"copied partial proof"`, ...).
    pub what: &'static str,
    /// The HTTP status of the refusal, when the sidecar answered one.
    pub status: Option<u16>,
    /// The error: the sidecar's `{code, message}` message, or the transport error.
    pub message: String,
}

/// Counters of a worker's work, shared with whoever watches it (the devnet display, tests).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Commitments accepted by the sidecar.
    pub commitments: AtomicU64,
    /// Partial proofs accepted.
    pub partials: AtomicU64,
    /// Full proofs accepted.
    pub full_proofs: AtomicU64,
    /// AggProofs accepted.
    pub agg_proofs: AtomicU64,
    /// Submissions the sidecar refused.
    pub rejected: AtomicU64,
    /// Steps finished after their phase closed.
    pub missed_deadlines: AtomicU64,
    /// Rounds abandoned on an error.
    pub failed_rounds: AtomicU64,
    /// Total proving time (partials), in milliseconds.
    pub proving_ms: AtomicU64,
    /// AIRs proven in a fallback phase because nobody had covered them.
    pub fallback_airs: AtomicU64,
    /// The most recent refusals (at most [`REJECTIONS_KEPT`]).
    rejections: Mutex<std::collections::VecDeque<Rejection>>,
}

impl WorkerStats {
    pub(super) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn reject(&self, rejection: Rejection) {
        Self::inc(&self.rejected);
        let mut kept = self.rejections.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= REJECTIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back(rejection);
    }

    /// The most recent refusals, oldest first.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.rejections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}
