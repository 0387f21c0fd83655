//! The node's input log entries (`sidecar_node::LoggedInput`: compact binary with SSZ inside,
//! or an older JSON entry): what a restart replays into the engine, read back from disk. Any
//! bytes either fail to decode or decode to an input whose entry decodes to the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_node::{decode_log_entry, encode_log_entry};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = decode_log_entry(data) else { return };
    let entry = encode_log_entry(&input).expect("a decoded input encodes");
    let back = decode_log_entry(&entry).expect("its entry decodes");
    assert_eq!(back, input);
});
