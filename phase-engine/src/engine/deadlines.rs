//! A round's phase deadlines, from its start and the phase windows, and the phase a message
//! counts for when it arrives.

use crate::{
    actions::Deadlines,
    config::EngineConfig,
    types::{Phase, UnixMillis},
};

/// The phase a message allowed from phase `first` on counts for when it arrives at `t`: the
/// first phase from `first` whose window, grace included, has not closed. `None` after T5.
pub(super) fn classify(deadlines: &Deadlines, first: Phase, t: UnixMillis) -> Option<Phase> {
    Phase::ALL.into_iter().filter(|p| *p >= first).find(|&p| t < deadlines.graced_close(p))
}

pub(super) fn deadlines(config: &EngineConfig, start: UnixMillis) -> Deadlines {
    let w = &config.phases;
    let mut closes = [start; 5];
    let mut t = start.0;
    for (close, len) in closes.iter_mut().zip([w.t1_ms, w.t2_ms, w.t3_ms, w.t4_ms, w.t5_ms]) {
        t = t.saturating_add(len);
        *close = UnixMillis(t);
    }
    Deadlines { start, closes, grace_ms: w.max_clock_disparity_ms }
}
