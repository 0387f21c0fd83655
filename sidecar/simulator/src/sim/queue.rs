//! The virtual-time event queue: the provers' events, ordered by virtual time with ties broken
//! by scheduling order, and the loop that advances the time from event to event and to each of
//! the engine's timeouts.

use std::cmp::Ordering;
use std::sync::Arc;

use phase_engine::{
    AirIndex, PartRef, Phase, ProtocolMessage, ProverIndex, Root, RoundKey, UnixMillis,
};

use super::Sim;
use crate::error::SimResult;
use crate::pipeline::{Outgoing, Recipe};
use crate::report::LedgerRow;

#[derive(Debug)]
pub(super) enum Event {
    /// A message arrives at the engine (built and sealed ahead of time where it can be).
    Deliver(Arc<Outgoing>),
    /// A prover builds (and if need be completes) a full proof of a round in a phase.
    Aggregate { prover: ProverIndex, round: RoundKey, phase: Phase },
    /// A copier resubmits others' partial proofs of its AIRs as its own.
    CopyPartials { prover: ProverIndex, round: RoundKey },
    /// A copier resubmits another prover's full proof as its own.
    CopyFull { prover: ProverIndex, round: RoundKey, original: ProverIndex, parts: Vec<PartRef> },
    /// A prover proves AIRs of a round (records them as proven at this instant).
    Proven { prover: ProverIndex, round: RoundKey, airs: Vec<AirIndex> },
    /// An aggregator sends the AggProof of a block.
    AggProof { prover: ProverIndex, block_root: Root },
}

impl Event {
    pub(super) fn deliver(message: ProtocolMessage) -> Self {
        Self::Deliver(Outgoing::new(Recipe::Built(message)))
    }
}

#[derive(Debug)]
pub(super) struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Reversed: the heap pops the earliest event, and among equal times the first scheduled.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl Sim<'_> {
    pub(super) fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at: at.max(self.now), seq: self.seq, event });
    }

    /// Processes every event and engine timeout before `until`.
    pub(super) fn run_until(
        &mut self,
        until: u64,
        on_block: &mut dyn FnMut(&[LedgerRow]) -> SimResult<()>,
    ) -> SimResult<()> {
        loop {
            let next_event = self.queue.peek().map(|s| s.at);
            let next_timeout = self.engine.poll_timeout().map(|t| t.0);
            let next = match (next_event, next_timeout) {
                (None, None) => break,
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (Some(e), Some(t)) => e.min(t),
            };
            if next >= until {
                break;
            }
            self.now = self.now.max(next);
            if next_timeout == Some(next) && next_event.is_none_or(|e| e >= next) {
                self.engine.on_tick(UnixMillis(next));
                self.drain(on_block)?;
                continue;
            }
            if let Some(s) = self.queue.pop() {
                self.handle_event(s.event)?;
                self.drain(on_block)?;
            }
        }
        self.now = self.now.max(until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BinaryHeap;

    use super::*;

    #[test]
    fn the_queue_pops_the_earliest_event_first_in_scheduling_order() {
        let mut heap = BinaryHeap::new();
        let ev = |n: u64| Event::AggProof { prover: ProverIndex(n), block_root: Root::ZERO };
        for (seq, at) in [(1, 50), (2, 10), (3, 50), (4, 10), (5, 30)] {
            heap.push(Scheduled { at, seq, event: ev(seq) });
        }
        let order: Vec<(u64, u64)> =
            std::iter::from_fn(|| heap.pop().map(|s| (s.at, s.seq))).collect();
        assert_eq!(order, [(10, 2), (10, 4), (30, 5), (50, 1), (50, 3)]);
    }
}
