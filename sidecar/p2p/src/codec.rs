//! Snappy compression of gossip payloads and content-derived message ids, as in the consensus
//! specs' `ssz_snappy` gossip encoding.

use std::collections::{BTreeMap, HashMap};

use libp2p::gossipsub::{DataTransform, Message, MessageId, RawMessage, TopicHash};
use sha2::{Digest, Sha256};

/// Domain prefix of message ids of validly compressed messages (`MESSAGE_DOMAIN_VALID_SNAPPY`).
pub const MESSAGE_DOMAIN_VALID_SNAPPY: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// Largest gossip payload, compressed or decompressed (the consensus specs' `GOSSIP_MAX_SIZE`).
pub const MAX_GOSSIP_SIZE: usize = 10 * 1024 * 1024;

/// Largest decompressed `prover_registration` and `prover_decline` payloads: both are fixed
/// size (269 and 160 bytes with their envelope).
const MAX_SMALL_MESSAGE_SIZE: usize = 1024;
/// Largest decompressed `partial_proof` payload: a 300 KiB proof (`MAX_PARTIAL_PROOF_BYTES`)
/// and 208 bytes of envelope, signature and fields, rounded up to 301 KiB.
const MAX_PARTIAL_PROOF_MESSAGE_SIZE: usize = 301 * 1024;
/// Largest decompressed `inclusion_record` payload: 65 536 entries of 40 bytes and the header,
/// the records protocol's chunk cap.
const MAX_RECORD_MESSAGE_SIZE: usize = crate::reqresp::MAX_RECORDS_CHUNK_BYTES;

/// The per-topic caps of the proving sidecar's topics (docs/protocol.md, "Peer scoring and
/// limits").
/// Commitments can carry a full proof, so they share the full proofs' cap.
pub(crate) fn sidecar_topic_sizes() -> BTreeMap<String, usize> {
    [
        ("prover_registration", MAX_SMALL_MESSAGE_SIZE),
        ("prover_decline", MAX_SMALL_MESSAGE_SIZE),
        ("trace_commitment", MAX_GOSSIP_SIZE),
        ("partial_proof", MAX_PARTIAL_PROOF_MESSAGE_SIZE),
        ("full_proof", MAX_GOSSIP_SIZE),
        ("agg_proof", MAX_GOSSIP_SIZE),
        ("inclusion_record", MAX_RECORD_MESSAGE_SIZE),
    ]
    .into_iter()
    .map(|(name, size)| (name.to_owned(), size))
    .collect()
}

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

/// Snappy (block format) compression of every gossip payload, with a size limit per topic.
///
/// Inbound payloads that do not decompress, or would decompress beyond their topic's limit,
/// are dropped by gossipsub as invalid (counted against the sender's score) before they reach
/// the application. Both limits are checked before anything is decompressed: the compressed
/// length against the longest snappy encoding of the limit, then the length the snappy header
/// announces against the limit.
#[derive(Clone, Debug)]
pub struct SnappyTransform {
    max_size: usize,
    topic_limits: HashMap<TopicHash, usize>,
}

impl SnappyTransform {
    /// A transform accepting payloads up to `max_size` bytes (decompressed) on every topic.
    pub fn new(max_size: usize) -> Self {
        Self { max_size, topic_limits: HashMap::new() }
    }

    /// Limits payloads on `topic` to `max_size` bytes (decompressed), at most the overall limit.
    #[must_use]
    pub fn with_topic_limit(mut self, topic: TopicHash, max_size: usize) -> Self {
        self.topic_limits.insert(topic, max_size.min(self.max_size));
        self
    }

    /// The largest decompressed payload accepted on `topic`.
    pub fn limit(&self, topic: &TopicHash) -> usize {
        self.topic_limits.get(topic).copied().unwrap_or(self.max_size)
    }
}

impl Default for SnappyTransform {
    fn default() -> Self {
        Self::new(MAX_GOSSIP_SIZE)
    }
}

fn too_large(what: &str, len: usize, max: usize, topic: &TopicHash) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{what} payload of {len} bytes on {topic} exceeds the limit of {max}"),
    )
}

impl DataTransform for SnappyTransform {
    fn inbound_transform(&self, raw: RawMessage) -> std::io::Result<Message> {
        let max = self.limit(&raw.topic);
        // No valid compression of at most `max` bytes is longer than this (0: beyond what
        // snappy can encode, so no bound below the overall limit).
        let max_compressed = match snap::raw::max_compress_len(max) {
            0 => usize::MAX,
            n => n,
        };
        if raw.data.len() > max_compressed {
            return Err(too_large("compressed", raw.data.len(), max_compressed, &raw.topic));
        }
        let len = snap::raw::decompress_len(&raw.data)?;
        if len > max {
            return Err(too_large("decompressed", len, max, &raw.topic));
        }
        let data = snap::raw::Decoder::new().decompress_vec(&raw.data)?;
        Ok(Message {
            source: raw.source,
            data,
            sequence_number: raw.sequence_number,
            topic: raw.topic,
        })
    }

    fn outbound_transform(&self, topic: &TopicHash, data: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let max = self.limit(topic);
        if data.len() > max {
            return Err(too_large("outbound", data.len(), max, topic));
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

    #[test]
    fn topic_limits_are_checked_before_decompression() {
        let small = TopicHash::from_raw("/p/small/ssz_snappy");
        let other = TopicHash::from_raw("/p/other/ssz_snappy");
        let t = SnappyTransform::new(4096).with_topic_limit(small.clone(), 100);
        assert_eq!(t.limit(&small), 100);
        assert_eq!(t.limit(&other), 4096);
        // A per-topic limit never exceeds the overall one.
        assert_eq!(t.clone().with_topic_limit(other.clone(), 1 << 30).limit(&other), 4096);

        let on =
            |topic: &TopicHash, data: Vec<u8>| RawMessage { topic: topic.clone(), ..raw(data) };
        // 101 zero bytes compress to a few bytes: refused from the header's announced length.
        let zeros = snap::raw::Encoder::new().compress_vec(&[0u8; 101]).unwrap();
        assert!(zeros.len() < 100);
        let err = t.inbound_transform(on(&small, zeros.clone())).unwrap_err();
        assert!(err.to_string().contains("decompressed payload of 101 bytes"), "{err}");
        assert!(t.inbound_transform(on(&other, zeros)).is_ok());
        // Exactly at the limit is accepted.
        let at = snap::raw::Encoder::new().compress_vec(&[7u8; 100]).unwrap();
        assert_eq!(t.inbound_transform(on(&small, at)).unwrap().data, vec![7u8; 100]);
        // More compressed bytes than any encoding of 100 bytes: refused without decoding (the
        // bytes are not even snappy).
        let long = vec![0xffu8; snap::raw::max_compress_len(100) + 1];
        let err = t.inbound_transform(on(&small, long)).unwrap_err();
        assert!(err.to_string().contains("compressed payload"), "{err}");
        // Outbound: the publisher cannot exceed its topic's limit either.
        assert!(t.outbound_transform(&small, vec![0; 101]).is_err());
        assert!(t.outbound_transform(&other, vec![0; 101]).is_ok());
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
