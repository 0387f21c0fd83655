//! Message delivery: each message reaches the engine at its virtual time (signed at delivery in
//! real mode, taken as verified in modelled mode) and rejections are counted by reason; the
//! messages planned ahead go to the helper thread to be sealed before they are due.

use std::sync::Arc;

use phase_engine::{ProtocolMessage, SealedMessage, UnixMillis};

use super::helper::Work;
use super::inclusion::{Inclusion, sender};
use super::queue::Event;
use super::{Sim, reason_name};
use crate::error::{SimError, SimResult};
use crate::pipeline::Outgoing;

impl Sim<'_> {
    pub(super) fn deliver(&mut self, message: ProtocolMessage) {
        if self.real.is_none() {
            let sealed = self.sealer.seal(message);
            self.deliver_verified(sealed);
            return;
        }
        let message = self.seal(message);
        let now = UnixMillis(self.now);
        let result = match self.inclusion(self.now, sender(&message)) {
            Inclusion::Default => self.engine.on_message(message, now).map(drop),
            Inclusion::By(v) => {
                let sealed = self.sealer.seal(message);
                self.engine.on_included_message(sealed, now, v).map(drop)
            }
            Inclusion::Never => return self.never_included(),
        };
        if let Err(e) = result {
            *self.rejections.entry(reason_name(&e)).or_default() += 1;
        }
    }

    /// A message no record includes in time: counted under its own reason.
    fn never_included(&mut self) {
        *self.rejections.entry("NotIncluded".to_owned()).or_default() += 1;
    }

    /// Modelled mode: a placeholder signature always comes from its claimed sender, so the
    /// message goes in with its signature taken as checked (the engine would request the check
    /// and the simulator answer "valid" at once: the same outcome, with one round trip less).
    fn deliver_verified(&mut self, sealed: SealedMessage) {
        let now = UnixMillis(self.now);
        let result = match self.inclusion(self.now, sender(sealed.message())) {
            Inclusion::Default => self.engine.on_verified_message(sealed, now),
            Inclusion::By(v) => self.engine.on_included_verified_message(sealed, now, v),
            Inclusion::Never => return self.never_included(),
        };
        if let Err(e) = result {
            *self.rejections.entry(reason_name(&e)).or_default() += 1;
        }
    }

    /// Delivers a message built (and in modelled mode sealed) ahead of time.
    pub(super) fn deliver_outgoing(&mut self, message: &Outgoing) -> SimResult<()> {
        let sealed = message.take(&mut self.sealing_here).ok_or_else(|| SimError::Protocol {
            block: self.counted_done,
            reason: "a simulated message was delivered twice".to_owned(),
        })?;
        if self.real.is_some() {
            // Real mode signs at delivery.
            self.deliver(sealed.into_parts().0);
            return Ok(());
        }
        self.deliver_verified(sealed);
        Ok(())
    }

    /// Hands messages to the helper thread, earliest delivery first (modelled mode).
    pub(super) fn send_to_sealer(&self, mut batch: Vec<(u64, Arc<Outgoing>)>) {
        let Some(sealing) = &self.sealing else { return };
        if batch.is_empty() {
            return;
        }
        batch.sort_by_key(|(at, _)| *at);
        // If the thread is gone the messages are simply built at delivery.
        let _ = sealing.send(Work::Seal(batch.into_iter().map(|(_, m)| m).collect()));
    }
}

/// The messages among planned events, with their delivery times.
pub(super) fn outgoing(plans: &[(u64, Event)]) -> Vec<(u64, Arc<Outgoing>)> {
    plans
        .iter()
        .filter_map(|(at, e)| match e {
            Event::Deliver(message) => Some((*at, Arc::clone(message))),
            _ => None,
        })
        .collect()
}
