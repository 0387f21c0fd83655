//! Disk safety: the free space of the store's filesystem against `storage.min_free_bytes`.
//!
//! Checked every second (with the beacon lag). Below the minimum the node refuses new work, that
//! is submissions over HTTP (`503 Service Unavailable`, saying why), and messages,
//! registrations and records from gossip or sync (ignored: not forwarded, no blame on the
//! peer), while it keeps following the chain, settling and serving every read. When space
//! returns it resumes, and sync fetches what canonical settlement then lacks. Nothing is ever
//! half-written: a store write that fails anyway (the disk filled between two checks) is an
//! error of a whole redb transaction, which redb rolls back, and the node stops after logging
//! the store's path and the cause.

use tracing::{info, warn};

use super::Driver;

/// The disk guard's state.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DiskGuard {
    /// The configured minimum (0: never refuse).
    pub(super) min_free_bytes: u64,
    /// The free bytes last seen, while below the minimum.
    low: Option<u64>,
}

impl DiskGuard {
    /// A guard refusing new work below `min_free_bytes` (0: never).
    pub(super) fn new(min_free_bytes: u64) -> Self {
        Self { min_free_bytes, low: None }
    }
}

impl Driver {
    /// Looks at the free space of the store's filesystem and the store's size: sets the metrics,
    /// and starts or stops refusing new work.
    pub(super) fn check_disk(&mut self) {
        let path = self.store.path();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(path);
        let free = match crate::store::free_bytes(dir) {
            Ok(free) => free,
            Err(e) => {
                warn!(path = %dir.display(), error = %e, "cannot read the free disk space");
                return;
            }
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let min = self.disk.min_free_bytes;
        let low = min > 0 && free < min;
        match (self.disk.low.is_some(), low) {
            (false, true) => warn!(
                path = %dir.display(),
                free_bytes = free,
                min_free_bytes = min,
                "free disk space below storage.min_free_bytes: refusing new work until it returns"
            ),
            (true, false) => {
                info!(free_bytes = free, "free disk space is back: accepting work again")
            }
            _ => {}
        }
        self.disk.low = low.then_some(free);
        self.metrics.set_disk(free, low, size);
    }

    /// Why new work is refused now, if it is.
    pub(super) fn disk_refusal(&self) -> Option<String> {
        self.disk.low.map(|free| {
            format!(
                "insufficient disk space: {free} bytes free on the store's filesystem, below \
                 storage.min_free_bytes ({}); new work is refused until space returns",
                self.disk.min_free_bytes
            )
        })
    }

    /// Sets the guard's view as if the filesystem had `free` bytes (tests).
    #[cfg(test)]
    pub(super) fn set_free_bytes_for_test(&mut self, free: u64) {
        let min = self.disk.min_free_bytes;
        self.disk.low = (min > 0 && free < min).then_some(free);
    }
}

impl Driver {
    /// While new work is refused: answers `input` if it is new work (`None`), else gives it
    /// back to be handled (blocks, verdicts, reorgs, records this node builds, reads).
    pub(super) fn refuse_for_disk(
        &self,
        input: super::Input,
        reason: String,
    ) -> Option<super::Input> {
        use super::Input;
        use sidecar_metrics::VerdictLabel;
        let refused = |kind| self.metrics.message_verdict(kind, VerdictLabel::Ignore, "disk_low");
        match input {
            Input::Message { message, reply, .. } => {
                refused(super::metrics::kind_label(message.kind()));
                if let Some(reply) = reply {
                    let _ = reply.send(Err(beacon_api::Error::Unavailable { reason }));
                }
                None
            }
            Input::Registration { reply, .. } => {
                refused("registration");
                let _ = reply.send(Err(beacon_api::Error::Unavailable { reason }));
                None
            }
            Input::Gossip { item, reply, .. } => {
                refused(gossiped_label(&item));
                let _ = reply.send(crate::gossip::GossipResult::Unavailable);
                None
            }
            Input::Fetched { item } => {
                refused(gossiped_label(&item));
                None
            }
            other => Some(other),
        }
    }
}

fn gossiped_label(item: &crate::gossip::Gossiped) -> &'static str {
    use crate::gossip::Gossiped;
    match item {
        Gossiped::Message(m) => super::metrics::kind_label(m.kind()),
        Gossiped::Registration(_) => "registration",
        Gossiped::Record(_) => "inclusion_record",
    }
}
