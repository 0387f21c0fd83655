//! What sync asks of the driver: what the settling engine waits for, and the records and
//! messages peers ask for.

use phase_engine::{InclusionRecord, ProtocolMessage, Root, Slot};

use super::Driver;
use crate::sync::{MAX_IDS, MAX_RANGE, SyncNeeds};

impl Driver {
    /// What the settling engine waits for (nothing when it does not run).
    pub(crate) fn sync_needs(&self) -> SyncNeeds {
        let Some(settling) = self.settling.as_ref() else { return SyncNeeds::default() };
        self.metrics.set_canonical_resolved(settling.rounds.resolved_through().unwrap_or(Slot(0)));
        SyncNeeds {
            records: settling.wanted_records.keys().copied().take(MAX_RANGE as usize).collect(),
            messages: settling.wanted_messages.keys().copied().take(4 * MAX_IDS).collect(),
        }
    }

    /// The records known for slots `start..end`, oldest first.
    pub(crate) fn records_in(&self, start: Slot, end: Slot) -> Vec<InclusionRecord> {
        let Some(settling) = self.settling.as_ref() else { return Vec::new() };
        settling.records.range(start..end).flat_map(|(_, list)| list.iter().cloned()).collect()
    }

    /// The messages held among `ids`.
    pub(crate) fn held_messages(&self, ids: &[Root]) -> Vec<ProtocolMessage> {
        let Some(settling) = self.settling.as_ref() else { return Vec::new() };
        ids.iter()
            .filter_map(|id| settling.rounds.message(id))
            .map(|m| m.message().clone())
            .collect()
    }
}
