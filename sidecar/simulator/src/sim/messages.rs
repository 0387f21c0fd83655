//! Building and signing the provers' messages: commitments, partial and full proofs (real
//! proofs and BLS signatures in real mode, placeholders the simulator recognises in modelled
//! mode), built at once or as recipes for the helper thread to build ahead of delivery.

use std::sync::Arc;

use phase_engine::{
    AirCommitment, AirIndex, BlsSignature, Commitment, FullProof, FullProofBody, PartRef,
    PartialProof, ProtocolMessage, ProverIndex, Root, RoundKey, SignedCommitment, SignedFullProof,
    SignedPartialProof,
};

use super::Sim;
use super::rounds::RoundSim;
use crate::modelled;
use crate::pipeline::{Outgoing, Recipe};

impl Sim<'_> {
    pub(super) fn commitment(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        airs: &[AirIndex],
        full: Option<FullProofBody>,
    ) -> ProtocolMessage {
        if self.real.is_none() {
            return modelled::commitment(r.round_ref(key), prover, airs, full, BlsSignature::ZERO);
        }
        let roots: Vec<AirCommitment> = airs
            .iter()
            .map(|&air| AirCommitment { air, trace_root: self.trace_root(prover, key, air) })
            .collect();
        ProtocolMessage::Commitment(SignedCommitment {
            message: Commitment {
                round: r.round_ref(key),
                prover,
                trace_roots: roots.try_into().unwrap_or_default(),
                full_proof: full.into_iter().collect::<Vec<_>>().try_into().unwrap_or_default(),
            },
            signature: BlsSignature::ZERO,
        })
    }

    pub(super) fn partial(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        air: AirIndex,
        proof_author: ProverIndex,
    ) -> ProtocolMessage {
        if self.real.is_none() {
            let round = r.round_ref(key);
            return modelled::partial(round, prover, air, proof_author, BlsSignature::ZERO);
        }
        ProtocolMessage::PartialProof(SignedPartialProof {
            message: PartialProof {
                round: r.round_ref(key),
                prover,
                air,
                trace_root: self.trace_root(prover, key, air),
                proof: self.partial_bytes(proof_author, key, air).try_into().unwrap_or_default(),
            },
            signature: BlsSignature::ZERO,
        })
    }

    /// The T1 trace root `prover` commits for `air`.
    fn trace_root(&self, prover: ProverIndex, key: &RoundKey, air: AirIndex) -> Root {
        match &self.real {
            Some(real) => real.borrow_mut().trace_root(prover, key, air),
            None => modelled::trace_root(prover, key, air),
        }
    }

    /// The bytes of the partial proof of `air` by `author`.
    fn partial_bytes(&self, author: ProverIndex, key: &RoundKey, air: AirIndex) -> Vec<u8> {
        match &self.real {
            Some(real) => real.borrow_mut().partial_bytes(author, key, air),
            None => modelled::partial_proof(author, air),
        }
    }

    /// Signs a message as its sender (real mode); modelled messages keep their placeholder
    /// signature.
    pub(super) fn seal(&self, mut message: ProtocolMessage) -> ProtocolMessage {
        let Some(real) = &self.real else { return message };
        let real = real.borrow();
        let ctx = self.engine.signing_context();
        let root = message.signing_root(ctx);
        match &mut message {
            ProtocolMessage::Commitment(m) => m.signature = real.sign(m.message.prover, &root),
            ProtocolMessage::Decline(m) => m.signature = real.sign(m.message.prover, &root),
            ProtocolMessage::PartialProof(m) => m.signature = real.sign(m.message.prover, &root),
            ProtocolMessage::FullProof(m) => m.signature = real.sign(m.message.submitter, &root),
            ProtocolMessage::AggProof(m) => m.signature = real.sign(m.message.submitter, &root),
            _ => {}
        }
        message
    }

    /// The body of a full proof sent by `builder` whose bundle `bundle_builder` assembled
    /// (a copier sends another prover's bundle).
    pub(super) fn full_body(
        &self,
        key: &RoundKey,
        builder: ProverIndex,
        bundle_builder: ProverIndex,
        parts: &[PartRef],
    ) -> FullProofBody {
        match &self.real {
            Some(real) => {
                let bundle = real.borrow_mut().full_bundle(bundle_builder, key, parts);
                modelled::body_with_bundle(builder, parts, bundle)
            }
            None => modelled::full_body(builder, bundle_builder, parts),
        }
    }

    /// A commitment without full proof, to be built ahead of delivery where it can be.
    pub(super) fn commitment_out(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        airs: &[AirIndex],
    ) -> Arc<Outgoing> {
        Outgoing::new(match &self.real {
            None => Recipe::Commitment { round: r.round_ref(key), prover, airs: airs.to_vec() },
            Some(_) => Recipe::Built(self.commitment(key, r, prover, airs, None)),
        })
    }

    /// A partial proof, to be built ahead of delivery where it can be.
    pub(super) fn partial_out(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        prover: ProverIndex,
        air: AirIndex,
        author: ProverIndex,
    ) -> Arc<Outgoing> {
        Outgoing::new(match &self.real {
            None => Recipe::Partial { round: r.round_ref(key), prover, air, author },
            Some(_) => Recipe::Built(self.partial(key, r, prover, air, author)),
        })
    }

    /// A full proof of `submitter` built from its own parts, to be built ahead of delivery
    /// where it can be.
    pub(super) fn full_proof_out(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        submitter: ProverIndex,
        parts: Vec<PartRef>,
    ) -> Arc<Outgoing> {
        Outgoing::new(match &self.real {
            None => Recipe::FullProof {
                round: r.round_ref(key),
                submitter,
                bundle_builder: submitter,
                parts,
            },
            Some(_) => {
                let body = self.full_body(key, submitter, submitter, &parts);
                Recipe::Built(self.full_proof(key, r, submitter, body))
            }
        })
    }

    pub(super) fn full_proof(
        &self,
        key: &RoundKey,
        r: &RoundSim,
        submitter: ProverIndex,
        body: FullProofBody,
    ) -> ProtocolMessage {
        ProtocolMessage::FullProof(SignedFullProof {
            message: FullProof { round: r.round_ref(key), submitter, body },
            signature: BlsSignature::ZERO,
        })
    }
}
