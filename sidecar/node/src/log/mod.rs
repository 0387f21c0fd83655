//! The node's input log: every input the engine consumed, in order, committed to the [`Store`]
//! before it is acknowledged. A restart replays it into a fresh engine (which is deterministic)
//! to resume the open rounds.
//!
//! Entries live in the store's message table under the reserved round key [`LOG_NAMESPACE`],
//! keyed by their big-endian sequence number, in the compact binary form of [`encoding`]
//! (protocol data as SSZ; older JSON entries still read). An entry longer than [`PART_BYTES`]
//! (a proof) is split: its head, under the entry's key, is [`SPLIT`], the number of further
//! parts (`u32`, big-endian) and the first part; the further parts are under
//! [`LOG_PARTS_NAMESPACE`], keyed by sequence number and part index. redb gives a value a page
//! of the next power of two (up to twice its size); parts that fill one 16 KiB page each keep
//! the file within a few percent of the data.

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

/// The reserved "round" key of the further parts of split log entries.
pub(crate) const LOG_PARTS_NAMESPACE: Root = Root::repeat_byte(0xfd);

/// The most bytes of an entry stored under one key: with its key and the leaf's header, one
/// 16 KiB redb page.
pub(crate) const PART_BYTES: usize = 16_000;

/// The first byte of a split entry's head (never the first byte of an encoded entry: that is
/// a format byte, or `{` for the older JSON entries).
const SPLIT: u8 = 0xfa;

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

/// The key of part `index` (from 1) of entry `seq`.
fn part_key(seq: u64, index: u32) -> MessageKey {
    let mut k = [0u8; 32];
    k[16..24].copy_from_slice(&seq.to_be_bytes());
    k[28..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Adds entry `seq` (`bytes`, encoded) to `batch`, split into parts of at most
/// [`PART_BYTES`] when it is longer.
fn put(batch: &mut StoreBatch, seq: u64, bytes: &[u8]) {
    if bytes.len() <= PART_BYTES {
        batch.put_message(LOG_NAMESPACE, key(seq), bytes);
        return;
    }
    let first = PART_BYTES - 5;
    let rest: Vec<&[u8]> = bytes[first..].chunks(PART_BYTES).collect();
    let mut head = Vec::with_capacity(PART_BYTES);
    head.push(SPLIT);
    head.extend_from_slice(&u32::try_from(rest.len()).unwrap_or(u32::MAX).to_be_bytes());
    head.extend_from_slice(&bytes[..first]);
    batch.put_message(LOG_NAMESPACE, key(seq), &head);
    for (i, part) in rest.into_iter().enumerate() {
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
        batch.put_message(LOG_PARTS_NAMESPACE, part_key(seq, index), part);
    }
}

/// The whole entry `seq` whose head is `head` (the head itself unless it is split).
fn assemble(store: &Store, seq: u64, head: Vec<u8>) -> NodeResult<Vec<u8>> {
    let corrupt = |reason: String| NodeError::CorruptLog { index: seq, reason };
    let Some((&SPLIT, rest)) = head.split_first() else { return Ok(head) };
    let (count, first) =
        rest.split_at_checked(4).ok_or_else(|| corrupt("short split head".into()))?;
    let count = u32::from_be_bytes(count.try_into().unwrap_or_default());
    let parts = store.messages_in(LOG_PARTS_NAMESPACE, part_key(seq, 1), part_key(seq, count))?;
    if parts.len() != count as usize {
        return Err(corrupt(format!("{} of its {count} parts", parts.len())));
    }
    let mut bytes = first.to_vec();
    for (_, part) in parts {
        bytes.extend_from_slice(&part);
    }
    Ok(bytes)
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
    put(&mut batch, seq, &bytes);
    if input.can_be_redone() {
        store.commit_deferred(batch)?;
    } else {
        store.commit(batch)?;
    }
    Ok(())
}

/// The input at `seq`, if the log has it.
pub(crate) fn read(store: &Store, seq: u64) -> NodeResult<Option<LoggedInput>> {
    let Some(head) = store.message(LOG_NAMESPACE, key(seq))? else { return Ok(None) };
    let bytes = assemble(store, seq, head)?;
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
        .map(|(k, head)| {
            let index = seq_of(&k);
            let bytes = assemble(store, index, head)?;
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
        batch.delete_messages(LOG_PARTS_NAMESPACE, part_key(from, 0), part_key(to, 0));
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

    /// An entry longer than a part is split and read back whole; pruning a range removes its
    /// parts with it; a missing part is a corrupt entry, never a wrong one.
    #[test]
    fn long_entries_are_split_into_parts_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let block = |len: usize| LoggedInput::Block {
            info: phase_engine::test_utils::block_info(3, 1_000_000),
            data: BlockData { parent_hash: Root::repeat_byte(1), transactions: vec![vec![7; len]] },
            now: UnixMillis(7),
            graffiti: None,
        };
        let inputs =
            [block(10), block(PART_BYTES - 300), block(PART_BYTES * 3 + 17), block(PART_BYTES * 2)];
        for (seq, input) in inputs.iter().enumerate() {
            append(&store, seq as u64, input).unwrap();
        }
        assert_eq!(read_all(&store).unwrap(), inputs);
        assert_eq!(read(&store, 2).unwrap().as_ref(), Some(&inputs[2]));
        let parts = store.messages(LOG_PARTS_NAMESPACE).unwrap();
        assert!(parts.len() >= 4 + 2, "{} parts", parts.len());
        assert!(parts.iter().all(|(_, p)| p.len() <= PART_BYTES));

        let mut batch = StoreBatch::new();
        prune(&mut batch, 0, 3);
        store.commit(batch).unwrap();
        let left: Vec<u64> = read_from(&store, 0).unwrap().into_iter().map(|(s, _)| s).collect();
        assert_eq!(left, vec![3]);
        let parts_left = store.messages(LOG_PARTS_NAMESPACE).unwrap();
        assert!(parts_left.iter().all(|(k, _)| k[16..24] == 3u64.to_be_bytes()));

        let mut batch = StoreBatch::new();
        batch.delete_message(LOG_PARTS_NAMESPACE, part_key(3, 1));
        store.commit(batch).unwrap();
        assert!(matches!(read(&store, 3), Err(NodeError::CorruptLog { index: 3, .. })));
    }
}
