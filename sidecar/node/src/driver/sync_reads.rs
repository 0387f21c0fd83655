//! What sync asks of the driver: what the settling engine waits for, and the records and
//! messages peers ask for.

use phase_engine::{InclusionRecord, Root, Slot};

use super::Driver;
use crate::sync::SyncItem;
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

    /// The sync status (`GET /eth/v1/node/syncing`): the head followed, and how far behind it
    /// canonical settlement has resolved every slot. Syncing while something is being fetched
    /// or more than one slot is unresolved; never without canonical settlement.
    pub(crate) fn syncing(&self) -> beacon_api::SyncingData {
        let head = self.last_block.map_or(Slot(0), |(slot, _)| slot);
        let (distance, wanted) = match self.settling.as_ref() {
            Some(s) => {
                let resolved = s.rounds.resolved_through().map_or(0, |r| r.0.saturating_add(1));
                let wanted = !s.wanted_records.is_empty() || !s.wanted_messages.is_empty();
                (head.0.saturating_add(1).saturating_sub(resolved), wanted)
            }
            None => (0, false),
        };
        beacon_api::SyncingData {
            head_slot: beacon_api::Slot(head.0),
            sync_distance: distance,
            is_syncing: wanted || distance > 1,
            is_optimistic: None,
            el_offline: None,
        }
    }

    /// The records known for slots `start..end`, oldest first.
    pub(crate) fn records_in(&self, start: Slot, end: Slot) -> Vec<InclusionRecord> {
        let Some(settling) = self.settling.as_ref() else { return Vec::new() };
        settling.records.range(start..end).flat_map(|(_, list)| list.iter().cloned()).collect()
    }

    /// The messages and registrations held among `ids`: those in memory, and the input-log
    /// positions of the messages only the log still has (within the sync retention).
    pub(crate) fn held_messages(&self, ids: &[Root]) -> (Vec<SyncItem>, Vec<u64>) {
        let Some(settling) = self.settling.as_ref() else { return (Vec::new(), Vec::new()) };
        let (mut held, mut logged) = (Vec::new(), Vec::new());
        for id in ids {
            if let Some(m) = settling.rounds.message(id) {
                held.push(SyncItem::Message(m.message().clone()));
            } else if let Some(r) = settling.rounds.registration(id) {
                held.push(SyncItem::Registration(r.clone()));
            } else {
                logged.extend(settling.logged.get(id).map(|(_, seq)| *seq));
            }
        }
        (held, logged)
    }
}
