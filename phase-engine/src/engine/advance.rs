//! The time: the next deadline ([`Engine::poll_timeout`]) and advancing to a time (phase
//! announcements, round closes, retries, the release of aggregators and the end of a block).

use super::{CLOSED_BLOCKS_KEPT, Engine};
use crate::{
    actions::Action,
    selection::selection_size,
    types::{Attempt, Phase, Root, UnixMillis},
};

impl Engine {
    /// When the engine next needs [`Engine::on_tick`]: the earliest phase boundary, window
    /// close or AggProof deadline still ahead. `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        let mut next: Option<UnixMillis> = None;
        let mut consider = |t: UnixMillis| {
            if t > self.now && next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        for block in self.blocks.values() {
            for sub in &block.sub_blocks {
                let Some(r) = sub.current() else { continue };
                if r.closed {
                    continue;
                }
                for p in Phase::ALL {
                    consider(r.deadlines.open(p));
                    consider(r.deadlines.graced_close(p));
                }
            }
            if block.is_aggregating()
                && let Some(close) = block.agg_close(&self.config)
            {
                consider(UnixMillis(
                    close.0.saturating_add(self.config.phases.max_clock_disparity_ms),
                ));
            }
        }
        next
    }

    /// Announces phases, closes rounds, starts retries and emits outcomes that are due at `now`
    /// (or the engine's later time). Walks every open block only when something can be due:
    /// when time reached the earliest deadline after the last walk, or an input marked the state
    /// `changed`. Debug builds walk every time and check that a skipped walk would have done
    /// nothing.
    pub(super) fn advance(&mut self, now: UnixMillis) {
        if now > self.now {
            self.now = now;
        }
        let now = self.now;
        let quiet = !self.changed && now < self.quiet_until;
        if quiet && !cfg!(debug_assertions) {
            return;
        }
        let before = (self.actions.len(), self.blocks.len());
        self.advance_all(now);
        debug_assert!(
            !quiet || before == (self.actions.len(), self.blocks.len()),
            "advance skipped a walk that had work at {now:?}"
        );
        self.changed = false;
        self.quiet_until = self.poll_timeout().unwrap_or(UnixMillis(u64::MAX));
    }

    fn advance_all(&mut self, now: UnixMillis) {
        let roots: Vec<Root> = self.blocks.keys().copied().collect();
        for root in roots {
            // Rounds: announce phases, close, retry.
            let Some(num_subs) = self.blocks.get(&root).map(|b| b.sub_blocks.len()) else {
                continue;
            };
            for s in 0..num_subs {
                self.advance_sub_block(root, s, now);
            }
            self.advance_block(root, now);
        }
    }

    fn advance_sub_block(&mut self, root: Root, s: usize, now: UnixMillis) {
        let max_retries = self.config.max_retries;
        let Some(block) = self.blocks.get_mut(&root) else { return };
        let info = block.info;
        let Some(sub) = block.sub_blocks.get_mut(s) else { return };
        if sub.done {
            return;
        }
        let plan = sub.plan;
        let Some(round) = sub.rounds.last_mut() else { return };
        // Announce phases that opened.
        for phase in Phase::ALL {
            if round.announced.is_some_and(|a| a >= phase) {
                continue;
            }
            if now < round.deadlines.open(phase) || round.finalized_in.is_some_and(|f| phase > f) {
                break;
            }
            round.announced = Some(phase);
            self.actions.push_back(Action::PhaseChanged {
                key: round.key,
                phase,
                at: round.deadlines.open(phase),
            });
        }
        let closing_phase = round.finalized_in.unwrap_or(Phase::T5);
        if round.pending > 0 || now < round.deadlines.graced_close(closing_phase) {
            return;
        }
        round.closed = true;
        let key = round.key;
        let finalized_in = round.finalized_in;
        let retry_start = round.deadlines.graced_close(Phase::T5);
        self.actions.push_back(Action::RoundClosed { key, finalized_in });
        let retry = finalized_in.is_none() && key.attempt.0 < max_retries;
        if !retry {
            if let Some(sub) = self.blocks.get_mut(&root).and_then(|b| b.sub_blocks.get_mut(s)) {
                sub.done = true;
            }
            return;
        }
        let attempt = Attempt(key.attempt.0.saturating_add(1));
        let count =
            selection_size(self.config.provers_per_proof, self.num_available_at(retry_start));
        match self.start_round(&info, plan, attempt, count, retry_start) {
            Ok(round) => {
                if let Some(sub) = self.blocks.get_mut(&root).and_then(|b| b.sub_blocks.get_mut(s))
                {
                    sub.rounds.push(round);
                }
                // Announce the new attempt's phases right away if they are already open.
                self.advance_sub_block(root, s, now);
            }
            Err(_) => {
                // Selection cannot fail on a non-empty list; an empty one selects nobody.
                if let Some(sub) = self.blocks.get_mut(&root).and_then(|b| b.sub_blocks.get_mut(s))
                {
                    sub.done = true;
                }
            }
        }
    }

    fn advance_block(&mut self, root: Root, now: UnixMillis) {
        let grace = self.config.phases.max_clock_disparity_ms;
        let Some(block) = self.blocks.get_mut(&root) else { return };
        if !block.sub_blocks.iter().all(|s| s.done) {
            return;
        }
        if !block.aggregators_released {
            let agg_done = match block.agg_close(&self.config) {
                Some(close) => {
                    now >= UnixMillis(close.0.saturating_add(grace)) && block.agg_pending == 0
                }
                None => true,
            };
            if !agg_done {
                return;
            }
            block.aggregators_released = true;
        }
        if block.agg_pending > 0 {
            return;
        }
        let Some(outcome) = self.build_outcome(root) else { return };
        self.blocks.remove(&root);
        self.closed_blocks.push_back(root);
        if self.closed_blocks.len() > CLOSED_BLOCKS_KEPT {
            self.closed_blocks.pop_front();
        }
        self.prune_chain();
        self.actions.push_back(Action::BlockOutcome(Box::new(outcome)));
    }

    /// Drops known blocks that no open block can need for inclusion resolution.
    fn prune_chain(&mut self) {
        let oldest = self.blocks.values().map(|b| b.info.slot_start).min();
        let keep_from = match oldest {
            Some(t) => t,
            None => match self.chain.keys().next_back() {
                Some(&t) => t,
                None => return,
            },
        };
        self.chain = self.chain.split_off(&keep_from);
    }
}
