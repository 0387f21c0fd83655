//! The bytes of one input-log entry: compact binary, SSZ wherever the entry carries protocol
//! data, so each message is stored once and as compact as on the wire.
//!
//! An entry is a format byte, `0x01`, then a tag and the tag's body:
//!
//! | tag | input | body |
//! |---|---|---|
//! | 1 | [`LoggedInput::Message`] | `arrived` (u64 LE), the message as a sync chunk (kind byte, SSZ) |
//! | 2 | [`LoggedInput::Relayed`] | `arrived`, `received` (u64 LE; `u64::MAX`: absent), the chunk |
//! | 3 | [`LoggedInput::Block`] | JSON length (u32 LE), JSON of `{info, now, graffiti}`, the parent hash (32 bytes), the transactions as SSZ `List[List[byte]]` |
//! | 4 | [`LoggedInput::Record`] | the record's SSZ |
//! | 0 | anything else (small: verdicts, ticks, registrations, reorgs) | the input's JSON |
//!
//! Entries written before this format are JSON objects (first byte `{`) and still read.

use phase_engine::{BlockInfo, InclusionRecord, Root, UnixMillis};
use serde::{Deserialize, Serialize};
use ssz::{Decode, Encode};

use super::{BlockData, LoggedInput};
use crate::sync::{SyncItem, decode_message, encode_message};

/// The first byte of every entry in this format (a JSON entry starts with `{`).
const FORMAT: u8 = 0x01;

const TAG_JSON: u8 = 0;
const TAG_MESSAGE: u8 = 1;
const TAG_RELAYED: u8 = 2;
const TAG_BLOCK: u8 = 3;
const TAG_RECORD: u8 = 4;

/// What a block entry keeps as JSON: everything but the payload data.
#[derive(Serialize, Deserialize)]
struct BlockHead {
    info: BlockInfo,
    now: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    graffiti: Option<Root>,
}

/// The entry bytes of `input`.
///
/// # Errors
/// A JSON encoding failure (a message no other variant can hold).
pub(crate) fn encode(input: &LoggedInput) -> Result<Vec<u8>, String> {
    let mut out = vec![FORMAT];
    match input {
        LoggedInput::Message { message, arrived } => {
            if let Some(chunk) = encode_message(&SyncItem::Message(message.clone())) {
                out.push(TAG_MESSAGE);
                out.extend_from_slice(&arrived.0.to_le_bytes());
                out.extend_from_slice(&chunk);
                return Ok(out);
            }
        }
        LoggedInput::Relayed { message, arrived, received } => {
            if let Some(chunk) = encode_message(&SyncItem::Message(message.clone())) {
                out.push(TAG_RELAYED);
                out.extend_from_slice(&arrived.0.to_le_bytes());
                out.extend_from_slice(&received.map_or(u64::MAX, |r| r.0).to_le_bytes());
                out.extend_from_slice(&chunk);
                return Ok(out);
            }
        }
        LoggedInput::Block { info, data, now, graffiti } => {
            let head = BlockHead { info: *info, now: *now, graffiti: *graffiti };
            let json = serde_json::to_vec(&head).map_err(|e| e.to_string())?;
            let len = u32::try_from(json.len()).map_err(|_| "block entry too large")?;
            out.push(TAG_BLOCK);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&json);
            out.extend_from_slice(data.parent_hash.as_slice());
            out.extend_from_slice(&data.transactions.as_ssz_bytes());
            return Ok(out);
        }
        LoggedInput::Record(record) => {
            out.push(TAG_RECORD);
            out.extend_from_slice(&record.as_ssz_bytes());
            return Ok(out);
        }
        _ => {}
    }
    out.push(TAG_JSON);
    serde_json::to_writer(&mut out, input).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The input of an entry (this format, or an older JSON entry).
///
/// # Errors
/// What is wrong with the bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<LoggedInput, String> {
    match bytes.split_first() {
        Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some((&FORMAT, rest)) => {
            let (tag, body) = rest.split_first().ok_or("an entry without a tag")?;
            decode_tagged(*tag, body)
        }
        Some((other, _)) => Err(format!("unknown entry format {other:#04x}")),
        None => Err("an empty entry".into()),
    }
}

fn decode_tagged(tag: u8, body: &[u8]) -> Result<LoggedInput, String> {
    let ssz = |e: ssz::DecodeError| format!("{e:?}");
    match tag {
        TAG_JSON => serde_json::from_slice(body).map_err(|e| e.to_string()),
        TAG_MESSAGE => {
            let (arrived, chunk) = take_u64(body)?;
            let message = message_of(chunk)?;
            Ok(LoggedInput::Message { message, arrived: UnixMillis(arrived) })
        }
        TAG_RELAYED => {
            let (arrived, rest) = take_u64(body)?;
            let (received, chunk) = take_u64(rest)?;
            let message = message_of(chunk)?;
            let received = (received != u64::MAX).then_some(UnixMillis(received));
            Ok(LoggedInput::Relayed { message, arrived: UnixMillis(arrived), received })
        }
        TAG_BLOCK => {
            let (len, rest) = body.split_first_chunk::<4>().ok_or("a truncated block entry")?;
            let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|e| e.to_string())?;
            let json = rest.get(..len).ok_or("a truncated block entry")?;
            let head: BlockHead = serde_json::from_slice(json).map_err(|e| e.to_string())?;
            let rest = rest.get(len..).unwrap_or_default();
            let (parent, txs) = rest.split_first_chunk::<32>().ok_or("a truncated block entry")?;
            let transactions = Vec::<Vec<u8>>::from_ssz_bytes(txs).map_err(ssz)?;
            let data = BlockData { parent_hash: Root::from(*parent), transactions };
            Ok(LoggedInput::Block { info: head.info, data, now: head.now, graffiti: head.graffiti })
        }
        TAG_RECORD => InclusionRecord::from_ssz_bytes(body).map(LoggedInput::Record).map_err(ssz),
        other => Err(format!("unknown entry tag {other}")),
    }
}

fn take_u64(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    let (word, rest) = bytes.split_first_chunk::<8>().ok_or("a truncated entry")?;
    Ok((u64::from_le_bytes(*word), rest))
}

fn message_of(chunk: &[u8]) -> Result<phase_engine::ProtocolMessage, String> {
    match decode_message(chunk)? {
        SyncItem::Message(m) => Ok(m),
        SyncItem::Registration(_) => Err("a registration where a message belongs".into()),
    }
}

#[cfg(test)]
mod tests {
    use phase_engine::{RequestId, Slot, Verdict, test_utils as tu};

    use super::*;

    fn decline() -> phase_engine::ProtocolMessage {
        use phase_engine::{Attempt, Decline, ProverIndex, RoundRef, SignedDecline, SubBlockIndex};
        let round = RoundRef {
            slot: Slot(3),
            block_root: Root::repeat_byte(1),
            sub_block: SubBlockIndex(0),
            attempt: Attempt(0),
        };
        let decline = Decline { round, prover: ProverIndex(2) };
        SignedDecline::sign(decline, &tu::secret_key(2), &tu::signing_context()).into()
    }

    fn every_kind() -> Vec<LoggedInput> {
        let record = phase_engine::build_record(
            Slot(4),
            phase_engine::ValidatorIndex(1),
            UnixMillis(9),
            [phase_engine::InclusionCandidate {
                id: Root::repeat_byte(5),
                round_start: UnixMillis(1),
                arrived_at: UnixMillis(2),
            }],
        );
        vec![
            LoggedInput::Message { message: decline(), arrived: UnixMillis(11) },
            LoggedInput::Relayed { message: decline(), arrived: UnixMillis(12), received: None },
            LoggedInput::Relayed {
                message: decline(),
                arrived: UnixMillis(12),
                received: Some(UnixMillis(13)),
            },
            LoggedInput::Block {
                info: tu::block_info(3, 1_000_000),
                data: BlockData {
                    parent_hash: Root::repeat_byte(1),
                    transactions: vec![vec![1, 2], vec![], vec![0xff; 300]],
                },
                now: UnixMillis(7),
                graffiti: Some(Root::repeat_byte(0x70)),
            },
            LoggedInput::Block {
                info: tu::block_info(4, 0),
                data: BlockData { parent_hash: Root::ZERO, transactions: Vec::new() },
                now: UnixMillis(8),
                graffiti: None,
            },
            LoggedInput::Record(record),
            LoggedInput::Verdict(Verdict { request: RequestId(3), valid: true }),
            LoggedInput::SettlingVerdict(Verdict { request: RequestId(4), valid: false }),
            LoggedInput::GaveUp(Slot(9)),
            LoggedInput::Tick(UnixMillis(5)),
        ]
    }

    #[test]
    fn every_kind_of_entry_round_trips_and_old_json_entries_still_read() {
        for input in every_kind() {
            let bytes = encode(&input).unwrap();
            assert_eq!(bytes[0], FORMAT);
            assert_eq!(decode(&bytes).unwrap(), input, "{input:?}");
            let json = serde_json::to_vec(&input).unwrap();
            assert_eq!(decode(&json).unwrap(), input, "an older JSON entry: {input:?}");
        }
    }

    /// A message entry is the message's SSZ and 10 bytes; as JSON its bytes were hex.
    #[test]
    fn a_message_is_stored_as_its_ssz() {
        use ssz::Encode as _;
        let message = decline();
        let phase_engine::ProtocolMessage::Decline(signed) = &message else { unreachable!() };
        let entry =
            encode(&LoggedInput::Message { message: message.clone(), arrived: UnixMillis(1) })
                .unwrap();
        assert_eq!(entry.len(), signed.as_ssz_bytes().len() + 1 + 1 + 8 + 1);
        let json =
            serde_json::to_vec(&LoggedInput::Message { message, arrived: UnixMillis(1) }).unwrap();
        assert!(json.len() > entry.len() * 2, "{} vs {}", json.len(), entry.len());
    }

    #[test]
    fn bad_entries_are_errors_not_panics() {
        for bytes in [&[][..], &[0x02], &[FORMAT], &[FORMAT, 9], &[FORMAT, TAG_MESSAGE, 1, 2]] {
            assert!(decode(bytes).is_err(), "{bytes:?}");
        }
        // Cut inside the JSON head, or inside the parent hash.
        let block = encode(&every_kind()[3]).unwrap();
        assert!(decode(&block[..20]).is_err());
        let head =
            2 + 4 + usize::try_from(u32::from_le_bytes(block[2..6].try_into().unwrap())).unwrap();
        assert!(decode(&block[..head + 16]).is_err());
        let mut huge = vec![FORMAT, TAG_BLOCK];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut tagged = vec![FORMAT];
            tagged.extend_from_slice(&bytes);
            let _ = decode(&tagged);
        }
    }
}
