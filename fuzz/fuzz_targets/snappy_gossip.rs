//! The snappy (block format) decompression of inbound gossip (`SnappyTransform`, the first
//! thing that touches a peer's bytes), with a small size limit so that the limit checks are
//! reached. What decompresses must compress back to bytes that decompress to the same data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libp2p::gossipsub::{DataTransform, RawMessage, TopicHash};
use sidecar_p2p::SnappyTransform;

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    // The production limit (10 MiB), or a small one the fuzzer can cross.
    let transform = if selector & 1 == 0 {
        SnappyTransform::default()
    } else {
        SnappyTransform::new(usize::from(*selector) * 64)
    };
    let topic = TopicHash::from_raw("/fuzz/partial_proof/ssz_snappy");
    let raw = RawMessage {
        source: None,
        data: bytes.to_vec(),
        sequence_number: None,
        topic: topic.clone(),
        signature: None,
        key: None,
        validated: false,
    };
    let Ok(message) = transform.inbound_transform(raw) else { return };
    let wire = transform
        .outbound_transform(&topic, message.data.clone())
        .expect("what was accepted inbound is within the limit outbound");
    let raw = RawMessage {
        source: None,
        data: wire,
        sequence_number: None,
        topic,
        signature: None,
        key: None,
        validated: false,
    };
    let back = transform.inbound_transform(raw).expect("compressed data decompresses");
    assert_eq!(back.data, message.data);
});
