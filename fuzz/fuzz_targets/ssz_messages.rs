//! SSZ of every protocol message as it arrives in an API body (`application/octet-stream`),
//! in a sync response or inside a gossip envelope, and a block's graffiti (read for the
//! inclusion record it commits to): the first byte picks the type, the rest is decoded. An
//! accepted value must re-encode to bytes that decode to the same value, and its signing root
//! (tree hash) must be computable.
#![no_main]

use beacon_api::FinalizedProof;
use libfuzzer_sys::fuzz_target;
use phase_engine::{
    InclusionRecord, RecordCommitment, Root, SignedAggProof, SignedCommitment, SignedDecline,
    SignedFullProof, SignedPartialProof, SignedProverRegistration, SigningContext, UnixMillis,
};
use ssz::{Decode, Encode};

fn check<T: Decode + Encode + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<T> {
    let value = T::from_ssz_bytes(bytes).ok()?;
    let again = value.as_ssz_bytes();
    let back = T::from_ssz_bytes(&again).expect("a re-encoded value decodes");
    assert_eq!(back, value, "decode(encode(decode(bytes))) differs");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    let ctx = SigningContext::default();
    match selector % 11 {
        0 => drop(check::<SignedProverRegistration>(bytes).map(|m| m.signing_root(&ctx))),
        1 => drop(check::<SignedCommitment>(bytes).map(|m| m.signing_root(&ctx))),
        2 => drop(check::<SignedDecline>(bytes).map(|m| m.signing_root(&ctx))),
        3 => drop(check::<SignedPartialProof>(bytes).map(|m| m.signing_root(&ctx))),
        4 => drop(check::<SignedFullProof>(bytes).map(|m| m.signing_root(&ctx))),
        5 => drop(check::<SignedAggProof>(bytes).map(|m| m.signing_root(&ctx))),
        6 => {
            if let Some(r) = check::<InclusionRecord>(bytes) {
                let _ = r.check(r.slot, r.proposer_index, UnixMillis(u64::MAX));
                let commitment = RecordCommitment::from_graffiti(&r.graffiti());
                assert_eq!(commitment, Some(RecordCommitment::of(&r.root())));
            }
        }
        7 => drop(check::<FinalizedProof>(bytes)),
        8 => drop(check::<Vec<SignedPartialProof>>(bytes)),
        9 => drop(check::<Vec<Root>>(bytes)),
        // A block's graffiti, read for the inclusion record it commits to.
        _ => {
            let Ok(graffiti) = <[u8; 32]>::try_from(bytes) else { return };
            if let Some(commitment) = RecordCommitment::from_graffiti(&graffiti) {
                assert_eq!(commitment.to_graffiti(), graffiti);
            }
        }
    }
});
