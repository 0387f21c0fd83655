//! The payloads of the sync protocols, as a serving node or a fetching node decodes them
//! (`sidecar-node` `sync.rs`): records-by-range requests, messages-by-id requests (an SSZ list
//! of roots) and message chunks (a kind byte and the message's or registration's SSZ). A decoded request or chunk
//! must re-encode to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phase_engine::Root;
use sidecar_node::{
    decode_records_request, decode_sync_message, encode_sync_message, records_request,
};
use ssz::{Decode, Encode};

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    match selector % 3 {
        0 => {
            let Ok((start, count)) = decode_records_request(bytes) else { return };
            assert_eq!(records_request(start, count), bytes);
        }
        1 => {
            let Ok(ids) = Vec::<Root>::from_ssz_bytes(bytes) else { return };
            assert_eq!(ids.as_ssz_bytes(), bytes);
        }
        _ => {
            let Ok(item) = decode_sync_message(bytes) else { return };
            let again = encode_sync_message(&item).expect("a decoded item has a sync kind");
            assert_eq!(again, bytes, "SSZ decoding is canonical");
            assert_eq!(decode_sync_message(&again), Ok(item));
        }
    }
});
