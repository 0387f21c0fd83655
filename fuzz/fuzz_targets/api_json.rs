//! JSON of the proving extension API (`beacon-api` `proving`): the request bodies the server
//! decodes (registrations, submissions of each kind, `ProtocolMessage` for `/verify`), the
//! responses the prover's client decodes (`{"data": ...}` of receipts, rounds, duties, proofs,
//! ledgers, balances, the registry, reward tables, verdicts, errors) and the proving SSE
//! events. The first byte picks the type. An accepted value must re-encode to JSON that
//! decodes to the same value.
#![no_main]

use beacon_api::{
    AccountBalance, ApiResponse, BlockRounds, ErrorMessage, FinalizedProof, ProverDuties,
    ProvingEvent, ProvingTopic, RegistryEntry, SubmissionReceipt, VerificationVerdict,
};
use libfuzzer_sys::fuzz_target;
use phase_engine::{
    ProtocolMessage, SignedAggProof, SignedCommitment, SignedDecline, SignedFullProof,
    SignedPartialProof, SignedProverRegistration,
};
use serde::{Serialize, de::DeserializeOwned};

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(bytes) else { return };
    let again = serde_json::to_vec(&value).expect("a decoded value serialises");
    let back: T = serde_json::from_slice(&again).expect("re-encoded JSON decodes");
    assert_eq!(back, value, "decode(encode(decode(json))) differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    match selector % 20 {
        0 => check::<SignedProverRegistration>(bytes),
        1 => check::<ProtocolMessage>(bytes),
        2 => check::<SignedCommitment>(bytes),
        3 => check::<SignedDecline>(bytes),
        4 => check::<SignedPartialProof>(bytes),
        5 => check::<SignedFullProof>(bytes),
        6 => check::<SignedAggProof>(bytes),
        7 => check::<ApiResponse<SubmissionReceipt>>(bytes),
        8 => check::<ApiResponse<BlockRounds>>(bytes),
        9 => check::<ApiResponse<ProverDuties>>(bytes),
        10 => check::<ApiResponse<FinalizedProof>>(bytes),
        11 => check::<ApiResponse<Vec<SignedPartialProof>>>(bytes),
        12 => check::<ApiResponse<rewards::Ledger>>(bytes),
        13 => check::<ApiResponse<Vec<AccountBalance>>>(bytes),
        14 => check::<ApiResponse<Vec<RegistryEntry>>>(bytes),
        15 => check::<ApiResponse<rewards::RewardsFile>>(bytes),
        16 => check::<ApiResponse<VerificationVerdict>>(bytes),
        17 => check::<ErrorMessage>(bytes),
        // An SSE event: the topic from the selector, the data from the rest.
        _ => {
            let Ok(text) = std::str::from_utf8(bytes) else { return };
            let topic = ProvingTopic::ALL[usize::from(*selector) % ProvingTopic::ALL.len()];
            let Ok(event) = ProvingEvent::decode(topic.as_str(), text) else { return };
            assert_eq!(event.topic(), topic);
            let back = ProvingEvent::decode(topic.as_str(), &event.data_json())
                .expect("a re-encoded event decodes");
            assert_eq!(back, event);
        }
    }
});
