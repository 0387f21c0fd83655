//! Round messages sealed with their signing root.
//!
//! The engine needs the signing root of every message it receives (duplicate detection, the
//! signature check it requests, equivocation evidence), and computing it is most of the cost of
//! accepting a message. A [`Sealer`] computes it *outside* the engine — ahead of time, or on
//! another thread — and a [`SealedMessage`] carries the message together with its root, the way
//! alloy's `Sealed<T>` carries a header with its hash. Only a sealer makes a sealed message, so
//! the root is always the message's own; [`Engine::on_sealed_message`] uses it instead of
//! hashing again when the sealer's signing context is the engine's, and hashes as
//! [`Engine::on_message`] does otherwise.
//!
//! [`Engine::on_sealed_message`]: crate::Engine::on_sealed_message
//! [`Engine::on_message`]: crate::Engine::on_message

use crate::{
    merkle::{Domains, round_ref_root},
    messages::{ProtocolMessage, RoundRef},
    signing::SigningContext,
    types::Root,
};

/// Computes the signing roots of round messages under one [`SigningContext`]. Cheap to copy and
/// `Send + Sync`: hand one to each thread that seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealer {
    ctx: SigningContext,
    domains: Domains,
}

impl Sealer {
    /// A sealer for the messages signed under `ctx` (the engine's: [`crate::Engine::sealer`]).
    pub fn new(ctx: &SigningContext) -> Self {
        Self { ctx: *ctx, domains: Domains::new(ctx) }
    }

    /// The signing root of `message`: the same root as [`ProtocolMessage::signing_root`].
    pub fn signing_root(&self, message: &ProtocolMessage) -> Root {
        self.root_with(message, round_ref_root)
    }

    /// The signing root of `message`, the root of its round (if it has one) from `round_root`.
    fn root_with(&self, message: &ProtocolMessage, round_root: impl Fn(&RoundRef) -> Root) -> Root {
        let d = &self.domains;
        match message {
            ProtocolMessage::Commitment(m) => {
                d.commitment(&m.message, &round_root(&m.message.round))
            }
            ProtocolMessage::Decline(m) => d.decline(&m.message, &round_root(&m.message.round)),
            ProtocolMessage::PartialProof(m) => {
                d.partial(&m.message, &round_root(&m.message.round))
            }
            ProtocolMessage::FullProof(m) => d.full(&m.message, &round_root(&m.message.round)),
            ProtocolMessage::AggProof(m) => d.agg(&m.message),
        }
    }

    /// A sealer for the messages of `round`, which hashes the round reference once instead of
    /// in every message.
    pub fn for_round(&self, round: RoundRef) -> RoundSealer {
        RoundSealer { sealer: *self, round, round_root: round_ref_root(&round) }
    }

    /// Seals `message` with its signing root.
    pub fn seal(&self, message: ProtocolMessage) -> SealedMessage {
        let signing_root = self.signing_root(&message);
        SealedMessage { message, signing_root, ctx: self.ctx }
    }

    /// The signing context.
    pub fn signing_context(&self) -> &SigningContext {
        &self.ctx
    }
}

/// A [`Sealer`] bound to one round ([`Sealer::for_round`]): the round reference's root, part of
/// every round message's signing root, is computed once. Messages of other rounds (and
/// AggProofs, which have none) are sealed as by the plain sealer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoundSealer {
    sealer: Sealer,
    round: RoundRef,
    round_root: Root,
}

impl RoundSealer {
    /// The signing root of `message`: the same root as [`Sealer::signing_root`].
    pub fn signing_root(&self, message: &ProtocolMessage) -> Root {
        self.sealer.root_with(message, |r| {
            if *r == self.round { self.round_root } else { round_ref_root(r) }
        })
    }

    /// Seals `message` with its signing root.
    pub fn seal(&self, message: ProtocolMessage) -> SealedMessage {
        let signing_root = self.signing_root(&message);
        SealedMessage { message, signing_root, ctx: self.sealer.ctx }
    }

    /// The round.
    pub fn round(&self) -> &RoundRef {
        &self.round
    }

    /// The plain sealer.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }
}

/// A [`ProtocolMessage`] with its signing root, made by [`Sealer::seal`] or
/// [`RoundSealer::seal`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedMessage {
    message: ProtocolMessage,
    signing_root: Root,
    ctx: SigningContext,
}

impl SealedMessage {
    /// The message.
    pub fn message(&self) -> &ProtocolMessage {
        &self.message
    }

    /// Its signing root.
    pub fn signing_root(&self) -> Root {
        self.signing_root
    }

    /// The signing context the root was computed under.
    pub fn signing_context(&self) -> &SigningContext {
        &self.ctx
    }

    /// The message and its signing root.
    pub fn into_parts(self) -> (ProtocolMessage, Root) {
        (self.message, self.signing_root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AggProof, BlsSignature, Commitment, Decline, FullProof, FullProofBody, PartialProof,
        ProverIndex, RoundRef, SignedAggProof, SignedCommitment, SignedDecline, SignedFullProof,
        SignedPartialProof, Slot, SubBlockIndex,
        messages::AirCommitment,
        outcome::PartRef,
        types::{AirIndex, Attempt},
    };

    fn messages() -> Vec<ProtocolMessage> {
        let round = RoundRef {
            slot: Slot(7),
            block_root: Root::from([3u8; 32]),
            sub_block: SubBlockIndex(1),
            attempt: Attempt(2),
        };
        let sig = BlsSignature::ZERO;
        let body = FullProofBody {
            parts: vec![PartRef { author: ProverIndex(4), air: AirIndex(0) }].try_into().unwrap(),
            reuse_bloom: vec![1u8; 8].try_into().unwrap(),
            bundle: vec![9u8; 100].try_into().unwrap(),
        };
        vec![
            ProtocolMessage::Commitment(SignedCommitment {
                message: Commitment {
                    round,
                    prover: ProverIndex(4),
                    trace_roots: vec![AirCommitment {
                        air: AirIndex(0),
                        trace_root: Root::from([5u8; 32]),
                    }]
                    .try_into()
                    .unwrap(),
                    full_proof: vec![body.clone()].try_into().unwrap(),
                },
                signature: sig,
            }),
            ProtocolMessage::Decline(SignedDecline {
                message: Decline { round, prover: ProverIndex(5) },
                signature: sig,
            }),
            ProtocolMessage::PartialProof(SignedPartialProof {
                message: PartialProof {
                    round,
                    prover: ProverIndex(4),
                    air: AirIndex(0),
                    trace_root: Root::from([5u8; 32]),
                    proof: vec![1, 2, 3].try_into().unwrap(),
                },
                signature: sig,
            }),
            ProtocolMessage::FullProof(SignedFullProof {
                message: FullProof { round, submitter: ProverIndex(4), body },
                signature: sig,
            }),
            ProtocolMessage::AggProof(SignedAggProof {
                message: AggProof {
                    slot: Slot(7),
                    block_root: round.block_root,
                    submitter: ProverIndex(6),
                    bundle: vec![7u8; 40].try_into().unwrap(),
                },
                signature: sig,
            }),
        ]
    }

    #[test]
    fn a_sealed_message_carries_its_own_signing_root() {
        let ctx = SigningContext {
            fork_version: [1, 2, 3, 4],
            genesis_validators_root: Root::from([8u8; 32]),
        };
        let sealer = Sealer::new(&ctx);
        for m in messages() {
            let expected = m.signing_root(&ctx);
            assert_eq!(sealer.signing_root(&m), expected, "{:?}", m.kind());
            let sealed = sealer.seal(m.clone());
            assert_eq!(sealed.signing_root(), expected);
            assert_eq!(sealed.message(), &m);
            assert_eq!(sealed.into_parts(), (m, expected));
        }
    }

    #[test]
    fn a_round_sealer_seals_as_the_plain_one_in_its_round_and_others() {
        let ctx = SigningContext {
            fork_version: [1, 2, 3, 4],
            genesis_validators_root: Root::from([8u8; 32]),
        };
        let sealer = Sealer::new(&ctx);
        let all = messages();
        let round = match &all[0] {
            ProtocolMessage::Commitment(m) => m.message.round,
            _ => unreachable!("the first message is a commitment"),
        };
        let other = RoundRef { attempt: Attempt(round.attempt.0 + 1), ..round };
        for bound in [round, other] {
            let round_sealer = sealer.for_round(bound);
            assert_eq!(round_sealer.round(), &bound);
            for m in &all {
                assert_eq!(round_sealer.signing_root(m), m.signing_root(&ctx), "{:?}", m.kind());
                assert_eq!(round_sealer.seal(m.clone()), sealer.seal(m.clone()));
            }
        }
    }

    #[test]
    fn sealers_of_different_contexts_differ() {
        let a = Sealer::new(&SigningContext {
            fork_version: [1, 2, 3, 4],
            genesis_validators_root: Root::ZERO,
        });
        let b = Sealer::new(&SigningContext {
            fork_version: [1, 2, 3, 5],
            genesis_validators_root: Root::ZERO,
        });
        assert_ne!(a, b);
        let m = messages().swap_remove(1);
        assert_ne!(a.signing_root(&m), b.signing_root(&m));
    }
}
