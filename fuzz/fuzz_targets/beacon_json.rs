//! What the sidecar reads from a beacon node and a validator client (`beacon-api` client):
//! the JSON responses it decodes (genesis, spec, syncing, headers, blocks of every fork,
//! RANDAO, finality, proposer duties, keymanager lists and graffiti, error bodies), and the SSE
//! event stream (`decode_event_stream`, split into chunks at the first byte's positions). The
//! first byte picks the type. An accepted response must re-encode to JSON that decodes to the
//! same value.
#![no_main]

use beacon_api::{
    ApiResponse, BlockHeaderData, ErrorMessage, FinalityCheckpoints, GenesisData, GraffitiResponse,
    KeystoreList, ProposerDuty, RandaoData, SignedBeaconBlock, SpecConfig, SyncingData,
    decode_event_stream,
};
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(bytes) else { return };
    let again = serde_json::to_vec(&value).expect("a decoded value serialises");
    let back: T = serde_json::from_slice(&again).expect("re-encoded JSON decodes");
    assert_eq!(back, value, "decode(encode(decode(json))) differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    match selector % 13 {
        0 => check::<ApiResponse<GenesisData>>(bytes),
        1 => check::<ApiResponse<SpecConfig>>(bytes),
        2 => check::<ApiResponse<SyncingData>>(bytes),
        3 => check::<ApiResponse<BlockHeaderData>>(bytes),
        4 => check::<ApiResponse<SignedBeaconBlock>>(bytes),
        5 => check::<ApiResponse<RandaoData>>(bytes),
        6 => check::<ApiResponse<FinalityCheckpoints>>(bytes),
        7 => check::<ApiResponse<Vec<ProposerDuty>>>(bytes),
        8 => check::<KeystoreList>(bytes),
        9 => check::<GraffitiResponse>(bytes),
        10 => check::<ErrorMessage>(bytes),
        // The event stream, in chunks of `selector / 13 + 1` bytes.
        _ => {
            let size = usize::from(*selector / 13) + 1;
            let chunks: Vec<Result<Vec<u8>, String>> =
                bytes.chunks(size).map(|c| Ok(c.to_vec())).collect();
            let events = decode_event_stream(futures::stream::iter(chunks));
            futures::executor::block_on(events.for_each(|_| async {}));
        }
    }
});
