//! The protocol's messages: SSZ containers (`ethereum_ssz`, `tree_hash`), each signed with BLS
//! over `signing_root(message, domain)` with its own domain type. JSON follows the Beacon API
//! conventions (quoted integers, `0x`-prefixed hex bytes).
//!
//! Proof bytes are opaque here: the engine requests their verification from its caller.

use serde::{Deserialize, Serialize};
use ssz_derive::{Decode, Encode};
use ssz_types::{
    VariableList,
    typenum::{Prod, U1, U256, U300, U1024, U16777216},
};
use tree_hash_derive::TreeHash;

use crate::{
    bls::{BlsPublicKey, BlsSignature},
    outcome::{PartRef, RoundKey},
    signing::{
        DOMAIN_AGG_PROOF, DOMAIN_COMMITMENT, DOMAIN_DECLINE, DOMAIN_FULL_PROOF,
        DOMAIN_PARTIAL_PROOF, DOMAIN_PROVER_REGISTRATION, DomainType, SigningContext,
    },
    types::{AirIndex, Attempt, ProverIndex, Root, Slot, SubBlockIndex},
};

/// Maximum size of one partial proof: 300 KiB (a 2^16-row Plonky3 proof is 165–230 KB).
pub type MaxPartialProofBytes = Prod<U300, U1024>;
/// Maximum number of AIRs of one sub-block (the planner never plans more).
pub type MaxAirsPerSubBlock = U256;
/// Maximum size of a full-proof bundle or an AggProof: 16 MiB.
pub type MaxBundleBytes = U16777216;
/// Maximum size of the reuse Bloom filter of a full proof: 256 bytes (2048 bits).
pub type MaxBloomBytes = U256;

/// `MaxAirsPerSubBlock` as a number.
pub const MAX_AIRS_PER_SUB_BLOCK: u32 = 256;
/// `MaxPartialProofBytes` as a number.
pub const MAX_PARTIAL_PROOF_BYTES: usize = 300 * 1024;
/// `MaxBundleBytes` as a number.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// The kinds of signed messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MessageKind {
    /// [`ProverRegistration`].
    Registration,
    /// [`Commitment`].
    Commitment,
    /// [`Decline`].
    Decline,
    /// [`PartialProof`].
    PartialProof,
    /// [`FullProof`] (standalone, or attached to a commitment).
    FullProof,
    /// [`AggProof`].
    AggProof,
}

/// Hardware a prover declares at registration.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Encode,
    Decode,
    TreeHash,
)]
pub struct Capabilities {
    /// Number of GPUs.
    #[serde(with = "crate::checkpoint::quoted_u32")]
    pub gpu_count: u32,
    /// Memory per GPU in MiB (0 for CPU proving).
    #[serde(with = "crate::checkpoint::quoted_u64")]
    pub gpu_memory_mib: u64,
    /// Largest trace the prover can prove, as log2 of the row count.
    #[serde(with = "crate::checkpoint::quoted_u8")]
    pub max_trace_log_rows: u8,
}

/// A prover's registration: its key (with a proof of possession), stake and hardware.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct ProverRegistration {
    /// The prover's BLS public key.
    pub pubkey: BlsPublicKey,
    /// Stake, in Gwei.
    #[serde(with = "crate::checkpoint::quoted_u64")]
    pub stake: u64,
    /// Declared hardware.
    pub capabilities: Capabilities,
    /// `PopProve(sk)`: signature of `pubkey` under the proof-of-possession DST.
    pub proof_of_possession: BlsSignature,
}

impl ProverRegistration {
    /// The registry record this registration makes: active, with no reputation yet.
    #[must_use]
    pub fn record(&self) -> crate::actions::ProverRecord {
        crate::actions::ProverRecord {
            pubkey: self.pubkey,
            stake: self.stake,
            capabilities: self.capabilities,
            active: true,
            reputation: 0,
        }
    }
}

/// Names a round in a message: the block (slot and root), sub-block and attempt.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Encode,
    Decode,
    TreeHash,
)]
pub struct RoundRef {
    /// Slot of the proven block.
    pub slot: Slot,
    /// Root of the proven block.
    pub block_root: Root,
    /// Sub-block index.
    pub sub_block: SubBlockIndex,
    /// Retry attempt.
    pub attempt: Attempt,
}

impl RoundRef {
    /// The engine's round key.
    pub fn key(&self) -> RoundKey {
        RoundKey { block_root: self.block_root, sub_block: self.sub_block, attempt: self.attempt }
    }
}

/// The trace root committed for one AIR.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    Encode,
    Decode,
    TreeHash,
)]
pub struct AirCommitment {
    /// The AIR.
    pub air: AirIndex,
    /// Merkle root of its STARK trace commitment (the proof's first commitment).
    pub trace_root: Root,
}

/// The body of a full proof: every part, the reuse Bloom filter and the opaque bundle.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash,
)]
pub struct FullProofBody {
    /// One part per AIR, ascending by AIR: who authored the partial proof used for it.
    pub parts: VariableList<PartRef, MaxAirsPerSubBlock>,
    /// Bloom filter of the reused parts (those whose author is not the submitter); see
    /// [`crate::ReuseBloom`].
    #[serde(with = "ssz_types::serde_utils::hex_var_list")]
    pub reuse_bloom: VariableList<u8, MaxBloomBytes>,
    /// The bundle of partial proofs, opaque here.
    #[serde(with = "ssz_types::serde_utils::hex_var_list")]
    pub bundle: VariableList<u8, MaxBundleBytes>,
}

/// T1: a selected prover's commitment to the trace roots of its assigned AIRs, optionally with a
/// full proof (the one T1 transaction a prover may send).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct Commitment {
    /// The round.
    pub round: RoundRef,
    /// The committing prover.
    pub prover: ProverIndex,
    /// One entry per assigned AIR, ascending by AIR.
    pub trace_roots: VariableList<AirCommitment, MaxAirsPerSubBlock>,
    /// An optional full proof: empty or exactly one (SSZ's idiom for an optional field).
    pub full_proof: VariableList<FullProofBody, U1>,
}

/// T1: a selected prover declines its assignment; its AIRs open to any active prover.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash,
)]
pub struct Decline {
    /// The round.
    pub round: RoundRef,
    /// The declining prover.
    pub prover: ProverIndex,
}

/// T2: the proof of one AIR, opening the trace root committed in T1.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct PartialProof {
    /// The round.
    pub round: RoundRef,
    /// The author.
    pub prover: ProverIndex,
    /// The AIR proven.
    pub air: AirIndex,
    /// The trace root (must equal the T1 commitment when the AIR was assigned to the author).
    pub trace_root: Root,
    /// The STARK proof, opaque here.
    #[serde(with = "ssz_types::serde_utils::hex_var_list")]
    pub proof: VariableList<u8, MaxPartialProofBytes>,
}

/// T2–T5: a full proof of a sub-block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct FullProof {
    /// The round.
    pub round: RoundRef,
    /// The submitting prover.
    pub submitter: ProverIndex,
    /// Parts, Bloom filter and bundle.
    pub body: FullProofBody,
}

/// The proof of a whole block aggregated from its sub-blocks' full proofs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
pub struct AggProof {
    /// Slot of the block.
    pub slot: Slot,
    /// Root of the block.
    pub block_root: Root,
    /// The submitting prover.
    pub submitter: ProverIndex,
    /// The aggregated proof, opaque here.
    #[serde(with = "ssz_types::serde_utils::hex_var_list")]
    pub bundle: VariableList<u8, MaxBundleBytes>,
}

/// A message that is signed with a domain of its own.
pub trait SignedContent: tree_hash::TreeHash + Sized {
    /// Its domain type.
    const DOMAIN: DomainType;
    /// Its kind.
    const KIND: MessageKind;

    /// `signing_root(self, domain)`.
    fn signing_root(&self, ctx: &SigningContext) -> Root {
        ctx.signing_root(self, Self::DOMAIN)
    }
}

macro_rules! signed {
    ($(#[$meta:meta])* $signed:ident, $msg:ident, $domain:expr, $kind:expr) => {
        impl SignedContent for $msg {
            const DOMAIN: DomainType = $domain;
            const KIND: MessageKind = $kind;
        }

        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Encode, Decode, TreeHash)]
        pub struct $signed {
            /// The message.
            pub message: $msg,
            /// BLS signature over `signing_root(message, domain)`.
            pub signature: BlsSignature,
        }

        impl $signed {
            /// Signs `message` with `key`.
            pub fn sign(message: $msg, key: &crate::bls::SecretKey, ctx: &SigningContext) -> Self {
                let signature = key.sign(&message.signing_root(ctx));
                Self { message, signature }
            }

            /// The signing root of the message.
            pub fn signing_root(&self, ctx: &SigningContext) -> Root {
                self.message.signing_root(ctx)
            }
        }
    };
}

signed!(
    /// A signed [`ProverRegistration`].
    SignedProverRegistration,
    ProverRegistration,
    DOMAIN_PROVER_REGISTRATION,
    MessageKind::Registration
);
signed!(
    /// A signed [`Commitment`].
    SignedCommitment,
    Commitment,
    DOMAIN_COMMITMENT,
    MessageKind::Commitment
);
signed!(
    /// A signed [`Decline`].
    SignedDecline,
    Decline,
    DOMAIN_DECLINE,
    MessageKind::Decline
);
signed!(
    /// A signed [`PartialProof`].
    SignedPartialProof,
    PartialProof,
    DOMAIN_PARTIAL_PROOF,
    MessageKind::PartialProof
);
signed!(
    /// A signed [`FullProof`].
    SignedFullProof,
    FullProof,
    DOMAIN_FULL_PROOF,
    MessageKind::FullProof
);
signed!(
    /// A signed [`AggProof`].
    SignedAggProof,
    AggProof,
    DOMAIN_AGG_PROOF,
    MessageKind::AggProof
);

/// Any round message, as given to [`crate::Engine::on_message`].
///
/// JSON is `{"kind": "commitment", "data": {..}}`; compact (non-human-readable) formats, which
/// cannot read that form, hold the variant index and the message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolMessage {
    /// T1 commitment.
    Commitment(SignedCommitment),
    /// T1 decline.
    Decline(SignedDecline),
    /// T2 partial proof.
    PartialProof(SignedPartialProof),
    /// Full proof (T2–T5).
    FullProof(SignedFullProof),
    /// AggProof of a block.
    AggProof(SignedAggProof),
}

/// The serde forms of [`ProtocolMessage`]: `Tagged` (JSON: adjacently tagged) and `Compact`
/// (externally tagged), with borrowing twins for serialising.
mod protocol_message_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{
        ProtocolMessage, SignedAggProof, SignedCommitment, SignedDecline, SignedFullProof,
        SignedPartialProof,
    };

    macro_rules! forms {
        ($($(#[$attr:meta])* $owned:ident, $borrowed:ident;)*) => {$(
            #[derive(Deserialize)]
            $(#[$attr])*
            enum $owned {
                Commitment(SignedCommitment),
                Decline(SignedDecline),
                PartialProof(SignedPartialProof),
                FullProof(SignedFullProof),
                AggProof(SignedAggProof),
            }

            #[derive(Serialize)]
            $(#[$attr])*
            enum $borrowed<'a> {
                Commitment(&'a SignedCommitment),
                Decline(&'a SignedDecline),
                PartialProof(&'a SignedPartialProof),
                FullProof(&'a SignedFullProof),
                AggProof(&'a SignedAggProof),
            }

            impl<'a> From<&'a ProtocolMessage> for $borrowed<'a> {
                fn from(m: &'a ProtocolMessage) -> Self {
                    match m {
                        ProtocolMessage::Commitment(m) => Self::Commitment(m),
                        ProtocolMessage::Decline(m) => Self::Decline(m),
                        ProtocolMessage::PartialProof(m) => Self::PartialProof(m),
                        ProtocolMessage::FullProof(m) => Self::FullProof(m),
                        ProtocolMessage::AggProof(m) => Self::AggProof(m),
                    }
                }
            }

            impl From<$owned> for ProtocolMessage {
                fn from(m: $owned) -> Self {
                    match m {
                        $owned::Commitment(m) => Self::Commitment(m),
                        $owned::Decline(m) => Self::Decline(m),
                        $owned::PartialProof(m) => Self::PartialProof(m),
                        $owned::FullProof(m) => Self::FullProof(m),
                        $owned::AggProof(m) => Self::AggProof(m),
                    }
                }
            }
        )*};
    }

    forms! {
        #[serde(rename = "ProtocolMessage")]
        #[serde(tag = "kind", content = "data", rename_all = "snake_case")]
        Tagged, TaggedRef;
        #[serde(rename = "ProtocolMessage")]
        Compact, CompactRef;
    }

    impl Serialize for ProtocolMessage {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if serializer.is_human_readable() {
                TaggedRef::from(self).serialize(serializer)
            } else {
                CompactRef::from(self).serialize(serializer)
            }
        }
    }

    impl<'de> Deserialize<'de> for ProtocolMessage {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            if deserializer.is_human_readable() {
                Tagged::deserialize(deserializer).map(Self::from)
            } else {
                Compact::deserialize(deserializer).map(Self::from)
            }
        }
    }
}

impl ProtocolMessage {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Commitment(_) => MessageKind::Commitment,
            Self::Decline(_) => MessageKind::Decline,
            Self::PartialProof(_) => MessageKind::PartialProof,
            Self::FullProof(_) => MessageKind::FullProof,
            Self::AggProof(_) => MessageKind::AggProof,
        }
    }

    /// The message's signing root.
    pub fn signing_root(&self, ctx: &SigningContext) -> Root {
        match self {
            Self::Commitment(m) => m.signing_root(ctx),
            Self::Decline(m) => m.signing_root(ctx),
            Self::PartialProof(m) => m.signing_root(ctx),
            Self::FullProof(m) => m.signing_root(ctx),
            Self::AggProof(m) => m.signing_root(ctx),
        }
    }
}

macro_rules! from_signed {
    ($variant:ident, $ty:ty) => {
        impl From<$ty> for ProtocolMessage {
            fn from(m: $ty) -> Self {
                Self::$variant(m)
            }
        }
    };
}
from_signed!(Commitment, SignedCommitment);
from_signed!(Decline, SignedDecline);
from_signed!(PartialProof, SignedPartialProof);
from_signed!(FullProof, SignedFullProof);
from_signed!(AggProof, SignedAggProof);

#[cfg(test)]
mod tests {
    use ssz::{Decode, Encode};

    use super::*;

    fn sample_commitment() -> Commitment {
        Commitment {
            round: RoundRef {
                slot: Slot(9),
                block_root: Root::repeat_byte(1),
                sub_block: SubBlockIndex(0),
                attempt: Attempt(0),
            },
            prover: ProverIndex(3),
            trace_roots: vec![AirCommitment { air: AirIndex(2), trace_root: Root::repeat_byte(2) }]
                .try_into()
                .unwrap(),
            full_proof: vec![FullProofBody {
                parts: vec![PartRef { author: ProverIndex(3), air: AirIndex(0) }]
                    .try_into()
                    .unwrap(),
                reuse_bloom: vec![0u8; 4].try_into().unwrap(),
                bundle: vec![1, 2, 3].try_into().unwrap(),
            }]
            .try_into()
            .unwrap(),
        }
    }

    #[test]
    fn ssz_round_trip() {
        let c = sample_commitment();
        let bytes = c.as_ssz_bytes();
        assert_eq!(Commitment::from_ssz_bytes(&bytes).unwrap(), c);
        assert!(Commitment::from_ssz_bytes(&bytes[..10]).is_err());
        // Fixed part: round (48 bytes) + prover (8), then the offset of `trace_roots`.
        let mut bad_offset = bytes.clone();
        bad_offset[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Commitment::from_ssz_bytes(&bad_offset).is_err());
    }

    #[test]
    fn json_uses_beacon_conventions() {
        let c = sample_commitment();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["prover"], "3");
        assert_eq!(json["round"]["slot"], "9");
        assert_eq!(json["full_proof"][0]["bundle"], "0x010203");
        let back: Commitment = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn oversized_proof_is_rejected_by_the_type() {
        let too_big = vec![0u8; MAX_PARTIAL_PROOF_BYTES + 1];
        assert!(VariableList::<u8, MaxPartialProofBytes>::new(too_big).is_err());
        let ok = vec![0u8; MAX_PARTIAL_PROOF_BYTES];
        assert!(VariableList::<u8, MaxPartialProofBytes>::new(ok).is_ok());
    }

    #[test]
    fn sign_and_verify() {
        let key = crate::bls::SecretKey::from_ikm(&[5; 32]).unwrap();
        let ctx = SigningContext::default();
        let signed = SignedCommitment::sign(sample_commitment(), &key, &ctx);
        assert!(crate::bls::verify(
            &key.public_key(),
            &signed.signing_root(&ctx),
            &signed.signature
        ));
        // The same content under another domain has another signing root.
        assert_ne!(signed.signing_root(&ctx), ctx.signing_root(&signed.message, DOMAIN_DECLINE));
    }
}
