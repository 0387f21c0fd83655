//! Snappy compression of gossip payloads and content-derived message ids, as in the consensus
//! specs' `ssz_snappy` gossip encoding.

use libp2p::gossipsub::{DataTransform, Message, MessageId, RawMessage, TopicHash};
use sha2::{Digest, Sha256};

/// Domain prefix of message ids of validly compressed messages (`MESSAGE_DOMAIN_VALID_SNAPPY`).
pub const MESSAGE_DOMAIN_VALID_SNAPPY: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// Largest gossip payload, compressed or decompressed (the consensus specs' `GOSSIP_MAX_SIZE`).
pub const MAX_GOSSIP_SIZE: usize = 10 * 1024 * 1024;

/// The message id of a decompressed payload on `topic`:
/// `sha256(MESSAGE_DOMAIN_VALID_SNAPPY || uint64_le(len(topic)) || topic || data)[:20]`.
pub fn message_id(topic: &str, data: &[u8]) -> MessageId {
    let mut hasher = Sha256::new();
    hasher.update(MESSAGE_DOMAIN_VALID_SNAPPY);
    hasher.update((topic.len() as u64).to_le_bytes());
    hasher.update(topic.as_bytes());
    hasher.update(data);
    let digest = hasher.finalize();
    MessageId::from(digest.get(..20).unwrap_or(&digest[..]).to_vec())
}

/// The gossipsub `message_id_fn`: [`message_id`] of the decompressed message.
pub(crate) fn gossip_message_id(message: &Message) -> MessageId {
    message_id(message.topic.as_str(), &message.data)
}

/// Snappy (block format) compression of every gossip payload, with a size limit.
///
/// Inbound payloads that do not decompress, or would decompress beyond the limit, are dropped
/// by gossipsub as invalid before they reach the application.
#[derive(Clone, Copy, Debug)]
pub struct SnappyTransform {
    max_size: usize,
}

impl SnappyTransform {
    /// A transform accepting payloads up to `max_size` bytes (compressed and decompressed).
    pub fn new(max_size: usize) -> Self {
        Self { max_size }
    }
}

impl Default for SnappyTransform {
    fn default() -> Self {
        Self::new(MAX_GOSSIP_SIZE)
    }
}

fn too_large(len: usize, max: usize) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("payload of {len} bytes exceeds the limit of {max}"),
    )
}

impl DataTransform for SnappyTransform {
    fn inbound_transform(&self, raw: RawMessage) -> std::io::Result<Message> {
        if raw.data.len() > self.max_size {
            return Err(too_large(raw.data.len(), self.max_size));
        }
        let len = snap::raw::decompress_len(&raw.data)?;
        if len > self.max_size {
            return Err(too_large(len, self.max_size));
        }
        let data = snap::raw::Decoder::new().decompress_vec(&raw.data)?;
        Ok(Message {
            source: raw.source,
            data,
            sequence_number: raw.sequence_number,
            topic: raw.topic,
        })
    }

    fn outbound_transform(&self, _topic: &TopicHash, data: Vec<u8>) -> std::io::Result<Vec<u8>> {
        if data.len() > self.max_size {
            return Err(too_large(data.len(), self.max_size));
        }
        Ok(snap::raw::Encoder::new().compress_vec(&data)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn raw(data: Vec<u8>) -> RawMessage {
        RawMessage {
            source: None,
            data,
            sequence_number: None,
            topic: TopicHash::from_raw("/p/t/ssz_snappy"),
            signature: None,
            key: None,
            validated: false,
        }
    }

    #[test]
    fn message_id_matches_the_spec_construction() {
        let topic = "/p/t/ssz_snappy";
        let mut pre = vec![1, 0, 0, 0];
        pre.extend_from_slice(&(topic.len() as u64).to_le_bytes());
        pre.extend_from_slice(topic.as_bytes());
        pre.extend_from_slice(b"hello");
        let expected = Sha256::digest(&pre)[..20].to_vec();
        assert_eq!(message_id(topic, b"hello").0, expected);
        // The topic is part of the id.
        assert_ne!(message_id(topic, b"hello"), message_id("/p/u/ssz_snappy", b"hello"));
    }

    #[test]
    fn garbage_and_oversized_payloads_are_rejected() {
        let t = SnappyTransform::new(1024);
        assert!(t.inbound_transform(raw(vec![0xff; 10])).is_err());
        let big = snap::raw::Encoder::new().compress_vec(&[0u8; 2048]).unwrap();
        assert!(big.len() < 1024);
        assert!(t.inbound_transform(raw(big)).is_err());
        assert!(t.outbound_transform(&TopicHash::from_raw("x"), vec![0; 1025]).is_err());
    }

    proptest! {
        #[test]
        fn compression_round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let t = SnappyTransform::default();
            let topic = TopicHash::from_raw("/p/t/ssz_snappy");
            let wire = t.outbound_transform(&topic, data.clone()).unwrap();
            let back = t.inbound_transform(raw(wire)).unwrap();
            prop_assert_eq!(back.data, data);
        }
    }
}
