//! The helper thread, the run's second core: it seals message batches ahead of their delivery
//! (modelled mode), builds the shufflers of the engine's next block, and settles blocks into the
//! report in block order; and the engine thread's side of the shuffler hand-over.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use phase_engine::{BlockInfo, ShuffleSpec, Shuffler};

use super::Sim;
use super::settlement::{SettleJob, account_block, ledger_rows};
use crate::pipeline::{self, Outgoing};
use crate::report::{Accumulator, LedgerRow};

/// Work for the helper thread, the run's second core.
pub(super) enum Work {
    /// Messages to build and seal ahead of delivery, in delivery order (modelled mode).
    Seal(Vec<Arc<Outgoing>>),
    /// Shuffles to build for the engine's next block; those of the whole active list (`active`
    /// provers: the selections, which walk most of it) with their whole list.
    Shuffle { specs: Vec<ShuffleSpec>, active: u64 },
    /// A settled block to turn into rows and fold into the report.
    Settle(Box<SettleJob>),
}

impl Sim<'_> {
    /// Asks the helper thread to build the shufflers the engine expects to need for `next`
    /// (a prediction from the engine's state now, a block ahead: a wrong one costs only its
    /// building, never a result).
    pub(super) fn prepare_shufflers(&mut self, next: &BlockInfo) {
        let Some((work, _)) = &self.shuffles else { return };
        let specs = self.engine.upcoming_shuffles(next);
        if !specs.is_empty() {
            let _ = work.send(Work::Shuffle { specs, active: self.engine.num_active() });
        }
    }

    /// Hands the engine the shufflers the helper thread has built by now (it builds the rest
    /// itself).
    pub(super) fn take_shufflers(&mut self) {
        let Some((_, built)) = &self.shuffles else { return };
        while let Ok(shufflers) = built.try_recv() {
            for shuffler in shufflers {
                self.engine.prepare_shuffler(shuffler);
            }
        }
    }
}

/// How long the helper thread polls for work before it sleeps. The engine's thread sends work
/// several times per simulated block, a few hundred microseconds apart; waking a sleeping
/// thread costs it a system call and, on a virtual machine, an inter-processor interrupt each
/// time (about 6% of its time when the helper slept between every batch).
const HELPER_POLL: Duration = Duration::from_micros(500);

/// The next piece of work, polled for [`HELPER_POLL`] before blocking; `None` once the channel
/// is closed and empty. Polling yields the core between looks, so that runs side by side (a
/// sweep) lose nothing to it.
fn recv_polling(work: &mpsc::Receiver<Work>) -> Option<Work> {
    let start = Instant::now();
    loop {
        match work.try_recv() {
            Ok(w) => return Some(w),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if start.elapsed() < HELPER_POLL => {
                std::thread::yield_now();
            }
            Err(mpsc::TryRecvError::Empty) => return work.recv().ok(),
        }
    }
}

/// The helper thread, until the channel closes: seals message batches first (the engine's
/// thread is about to deliver them), then builds shufflers for the next block, then settles
/// blocks (in block order). Returns the report's accumulator.
pub(super) fn helper_thread(
    sealer: phase_engine::Sealer,
    mut acc: Accumulator,
    work: mpsc::Receiver<Work>,
    rows: mpsc::Sender<Vec<LedgerRow>>,
    shufflers: mpsc::Sender<Vec<Shuffler>>,
) -> Accumulator {
    let mut shuffles: VecDeque<(Vec<ShuffleSpec>, u64)> = VecDeque::new();
    let mut settle: VecDeque<Box<SettleJob>> = VecDeque::new();
    let mut sealing = pipeline::Sealing::new(sealer);
    loop {
        let idle = shuffles.is_empty() && settle.is_empty();
        let next = if idle { recv_polling(&work) } else { work.try_recv().ok() };
        match next {
            Some(Work::Seal(batch)) => pipeline::seal_batch(&mut sealing, &batch),
            Some(Work::Shuffle { specs, active }) => shuffles.push_back((specs, active)),
            Some(Work::Settle(job)) => settle.push_back(job),
            None => {
                if let Some((specs, active)) = shuffles.pop_front() {
                    let built = specs
                        .into_iter()
                        .filter_map(|spec| {
                            let shuffler = Shuffler::from_spec(spec).ok()?;
                            Some(if spec.index_count == active {
                                shuffler.with_whole_list()
                            } else {
                                shuffler
                            })
                        })
                        .collect();
                    // The engine's thread builds what it does not get.
                    let _ = shufflers.send(built);
                    continue;
                }
                let Some(job) = settle.pop_front() else { break };
                let block_rows = ledger_rows(&job);
                account_block(&mut acc, &job, &block_rows);
                if rows.send(block_rows).is_err() {
                    break;
                }
            }
        }
    }
    acc
}
