//! The gossip envelope of every topic (`sidecar_node::decode_gossip`): the first byte picks
//! the topic (one of `GOSSIP_TOPICS`, or an unknown one), the rest is the payload as gossipsub
//! hands it over (already decompressed). A decoded item must re-encode under the same topic to
//! a payload that decodes to the same item and time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_node::{GOSSIP_TOPICS, decode_gossip, encode_gossip};

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    let topic = GOSSIP_TOPICS.get(usize::from(*selector) % (GOSSIP_TOPICS.len() + 1));
    let Ok((item, first_seen)) = decode_gossip(topic.copied().unwrap_or("blocks"), bytes) else {
        return;
    };
    let topic = topic.expect("an unknown topic never decodes");
    let (name, again) = encode_gossip(&item, first_seen);
    assert_eq!(name, *topic, "re-encoded under another topic");
    let back = decode_gossip(name, &again).expect("a re-encoded item decodes");
    assert_eq!(back, (item, first_seen));
});
