//! The `ssz_snappy` request/response framing of sync (`sidecar_p2p::decode_request_bytes`,
//! `decode_response_bytes`): varint length prefixes, snappy frames with CRCs, result bytes and
//! error chunks, under each protocol's limits or small ones the fuzzer can cross. A decoded
//! request or response must re-encode to bytes that decode to the same payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_p2p::{
    ProtocolLimits, SyncProtocol, decode_request_bytes, decode_response_bytes,
    encode_request_bytes, encode_response_bytes,
};

/// Small limits, so that every cap can be reached by short inputs.
const SMALL: ProtocolLimits = ProtocolLimits {
    max_request_bytes: 300,
    max_response_chunks: 4,
    max_chunk_bytes: 100_000,
    max_response_bytes: 150_000,
};

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    let limits = match selector % 3 {
        0 => SMALL,
        1 => SyncProtocol::RecordsByRange.default_limits(),
        _ => SyncProtocol::MessagesById.default_limits(),
    };
    if selector & 0x80 == 0 {
        let Ok(payload) = decode_request_bytes(bytes, &limits) else { return };
        let again = encode_request_bytes(&payload, &limits).expect("a decoded request re-encodes");
        assert_eq!(decode_request_bytes(&again, &limits).as_ref(), Ok(&payload));
    } else {
        let Ok((chunks, error)) = decode_response_bytes(bytes, &limits) else { return };
        let again = encode_response_bytes(chunks.clone(), error.clone(), &limits)
            .expect("a decoded response re-encodes");
        let (back, back_error) =
            decode_response_bytes(&again, &limits).expect("a re-encoded response decodes");
        assert_eq!(back, chunks);
        // The error message is cut to 256 bytes on the wire (a lossily decoded message may be
        // longer): the code survives, and a second round trip changes nothing.
        assert_eq!(back_error.as_ref().map(|e| e.code), error.as_ref().map(|e| e.code));
        let third = encode_response_bytes(back.clone(), back_error.clone(), &limits)
            .expect("a decoded response re-encodes");
        assert_eq!(decode_response_bytes(&third, &limits), Ok((back, back_error)));
    }
});
