//! The node's input log: every input the engine consumed, in order, committed to the [`Store`]
//! before it is acknowledged. A restart replays it into a fresh engine (which is deterministic)
//! to resume the open rounds.
//!
//! Entries live in the store's message table under the reserved round key [`LOG_NAMESPACE`],
//! keyed by their big-endian sequence number, in the compact binary form of [`encoding`]
//! (protocol data as SSZ; older JSON entries still read).

mod encoding;

use phase_engine::{
    BlockInfo, InclusionRecord, ProtocolMessage, ProverRecord, Root, SignedProverRegistration,
    UnixMillis, Verdict,
};
use serde::{Deserialize, Serialize};

use super::error::{NodeError, NodeResult};
use crate::{MessageKey, Store, StoreBatch};

/// The reserved "round" key of the input log in the store (`sha256("sidecar/node/input-log")`
/// would do as well; any value that is not a block root works).
pub const LOG_NAMESPACE: Root = Root::repeat_byte(0xfe);

/// A block's execution payload data the STARK workload is built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockData {
    /// The execution payload's parent hash.
    pub parent_hash: Root,
    /// The payload's transactions (hex in JSON).
    #[serde(with = "hex_list")]
    pub transactions: Vec<Vec<u8>>,
}

/// One logged input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", content = "data", rename_all = "snake_case")]
pub enum LoggedInput {
    /// A beacon block at `now`.
    Block {
        /// The engine's view of it.
        info: BlockInfo,
        /// Its payload data.
        data: BlockData,
        /// When it was fed.
        now: UnixMillis,
        /// Its graffiti (what it may commit to); absent in logs written before canonical
        /// rounds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        graffiti: Option<Root>,
    },
    /// A registration whose signatures verified, pending until it activates (canonical
    /// rounds: a canonical record includes it; else a block a clock disparity after
    /// `first_seen`).
    Registration {
        /// The prover.
        record: ProverRecord,
        /// When it was first seen (here, or by the sidecar that gossiped it); absent in logs
        /// written before gossip (such a registration joins at the next block).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        first_seen: Option<UnixMillis>,
        /// The signed registration (what records name and peers fetch); absent in logs
        /// written before canonical registrations (such a registration joins by the clock).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<Box<SignedProverRegistration>>,
    },
    /// A protocol message that passed the engine's synchronous checks, at its arrival time.
    Message {
        /// The message.
        message: ProtocolMessage,
        /// Its arrival time.
        arrived: UnixMillis,
    },
    /// A protocol message from gossip that passed the engine's synchronous checks, at the
    /// arrival time it was given (the sender's first-seen time, clamped to the clock-disparity
    /// allowance). Unlike [`LoggedInput::Message`], the time is used as is, even when the
    /// engine's clock is already later, so every node classifies it alike.
    Relayed {
        /// The message.
        message: ProtocolMessage,
        /// Its arrival time.
        arrived: UnixMillis,
        /// When this node received it (its own clock: the time its inclusion records state);
        /// absent in older logs (then `arrived`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        received: Option<UnixMillis>,
    },
    /// A verification verdict.
    Verdict(Verdict),
    /// A verdict for the settling engine of canonical rounds.
    SettlingVerdict(Verdict),
    /// An inclusion record (received, fetched, or this node's own).
    Record(InclusionRecord),
    /// Canonical settlement stopped waiting for what this slot lacks (its committed record or
    /// messages it names): resolved with what is known.
    GaveUp(phase_engine::Slot),
    /// The time moved on.
    Tick(UnixMillis),
    /// A reorg: these blocks left the canonical chain, which now ends at `fork`.
    Reorg {
        /// The orphaned block roots.
        orphaned: Vec<Root>,
        /// The last block both chains share (slot, root).
        fork: (phase_engine::Slot, Root),
    },
}

fn key(seq: u64) -> MessageKey {
    let mut k = [0u8; 32];
    k[24..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Appends `input` as entry `seq` (durable when this returns).
impl LoggedInput {
    /// Whether losing this input in a crash (with every input after it) changes nothing a
    /// restart cannot redo: verdicts (verification is deterministic: the check is asked and
    /// answered again), clock ticks (the restarted node ticks at its own time), and messages
    /// relayed by peers (they are gossiped and served again; nothing was acknowledged for
    /// them). Such inputs are committed without waiting for the disk; the next other input's
    /// commit makes them durable, and what a crash leaves is always a prefix of the log.
    pub(crate) fn can_be_redone(&self) -> bool {
        matches!(
            self,
            Self::Verdict(_) | Self::SettlingVerdict(_) | Self::Tick(_) | Self::Relayed { .. }
        )
    }
}

/// The bytes of a log entry (the compact binary form of [`encoding`]).
///
/// # Errors
/// A reason, for an input no encoding holds (none of this crate's).
pub fn encode_entry(input: &LoggedInput) -> Result<Vec<u8>, String> {
    encoding::encode(input)
}

/// The input a log entry holds (the binary form, or an older JSON entry). Never panics: the
/// entry point of the `input_log` fuzz target (`fuzz/`).
///
/// # Errors
/// What is wrong with the bytes.
pub fn decode_entry(bytes: &[u8]) -> Result<LoggedInput, String> {
    encoding::decode(bytes)
}

pub(crate) fn append(store: &Store, seq: u64, input: &LoggedInput) -> NodeResult<()> {
    let bytes =
        encoding::encode(input).map_err(|reason| NodeError::CorruptLog { index: seq, reason })?;
    let mut batch = StoreBatch::new();
    batch.put_message(LOG_NAMESPACE, key(seq), &bytes);
    if input.can_be_redone() {
        store.commit_deferred(batch)?;
    } else {
        store.commit(batch)?;
    }
    Ok(())
}

/// The input at `seq`, if the log has it.
pub(crate) fn read(store: &Store, seq: u64) -> NodeResult<Option<LoggedInput>> {
    let Some(bytes) = store.message(LOG_NAMESPACE, key(seq))? else { return Ok(None) };
    encoding::decode(&bytes)
        .map(Some)
        .map_err(|reason| NodeError::CorruptLog { index: seq, reason })
}

/// Every logged input, in order.
#[cfg(test)]
pub(crate) fn read_all(store: &Store) -> NodeResult<Vec<LoggedInput>> {
    Ok(read_from(store, 0)?.into_iter().map(|(_, input)| input).collect())
}

/// Every logged input from entry `seq` on, in order, with its sequence number.
pub(crate) fn read_from(store: &Store, seq: u64) -> NodeResult<Vec<(u64, LoggedInput)>> {
    store
        .messages_from(LOG_NAMESPACE, key(seq))?
        .into_iter()
        .map(|(k, bytes)| {
            let index = seq_of(&k);
            encoding::decode(&bytes)
                .map(|input| (index, input))
                .map_err(|reason| NodeError::CorruptLog { index, reason })
        })
        .collect()
}

/// Adds to `batch` the deletion of entries `from..to` (a key range: only those entries are
/// visited).
pub(crate) fn prune(batch: &mut StoreBatch, from: u64, to: u64) {
    if from < to {
        batch.delete_messages(LOG_NAMESPACE, key(from), key(to));
    }
}

fn seq_of(key: &MessageKey) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[24..]);
    u64::from_be_bytes(b)
}

mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub(crate) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for item in list {
            seq.serialize_element(&hex::encode(item))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|h| hex::decode(h).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_round_trips_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let inputs = vec![
            LoggedInput::Tick(UnixMillis(5)),
            LoggedInput::Block {
                info: phase_engine::test_utils::block_info(3, 1_000_000),
                data: BlockData {
                    parent_hash: Root::repeat_byte(1),
                    transactions: vec![vec![1, 2]],
                },
                now: UnixMillis(7),
                graffiti: None,
            },
            LoggedInput::Verdict(Verdict { request: phase_engine::RequestId(3), valid: true }),
        ];
        for (i, input) in inputs.iter().enumerate() {
            append(&store, i as u64 + 250, input).unwrap();
        }
        assert_eq!(read_all(&store).unwrap(), inputs);
    }
}
