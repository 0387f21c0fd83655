//! The provers' events as the queue fires them: AIRs recorded as proven, messages delivered,
//! copiers' resubmissions, AggProofs sent, and aggregation (a full proof built from the accepted
//! parts, proving what is missing, or the one built ahead of time from the same parts).

use std::sync::Arc;

use phase_engine::{
    AggProof, AirIndex, BlsSignature, PartRef, Phase, ProtocolMessage, ProverIndex, RoundKey,
    SignedAggProof,
};
use rustc_hash::FxHashMap;

use super::Sim;
use super::queue::Event;
use super::rounds::RoundSim;
use crate::error::SimResult;
use crate::modelled;
use crate::scenario::Behaviour;

impl Sim<'_> {
    pub(super) fn handle_event(&mut self, event: Event) -> SimResult<()> {
        match event {
            Event::Deliver(message) => self.deliver_outgoing(&message)?,
            Event::Proven { prover, round, airs } => {
                if let Some(n) =
                    usize::try_from(prover.0).ok().and_then(|i| self.airs_proved.get_mut(i))
                {
                    *n += airs.len() as u64;
                }
                if self.rounds.contains_key(&round) {
                    for air in airs {
                        self.proofs.record(round, prover, air);
                    }
                }
            }
            Event::CopyPartials { prover, round } => {
                let Some(r) = self.rounds.get(&round) else { return Ok(()) };
                let mut msgs = Vec::new();
                for &air in r.airs_of(prover).unwrap_or_default() {
                    let original = r
                        .partials
                        .get(air.0 as usize)
                        .and_then(|authors| authors.iter().find(|a| **a != prover))
                        .copied();
                    if let Some(original) = original {
                        msgs.push(self.partial(&round, r, prover, air, original));
                    }
                }
                for m in msgs {
                    self.deliver(m);
                }
            }
            Event::CopyFull { prover, round, original, parts } => {
                let Some(r) = self.rounds.get(&round) else { return Ok(()) };
                // The same parts and bundle, under the copier's name.
                let body = self.full_body(&round, prover, original, &parts);
                let msg = self.full_proof(&round, r, prover, body);
                self.deliver(msg);
            }
            Event::Aggregate { prover, round, phase } => self.aggregate(prover, round, phase),
            Event::AggProof { prover, block_root } => {
                let Some(b) = self.blocks.get(&block_root) else { return Ok(()) };
                let msg = ProtocolMessage::AggProof(SignedAggProof {
                    message: AggProof {
                        slot: b.info.slot,
                        block_root,
                        submitter: prover,
                        bundle: match &self.real {
                            Some(real) => real.borrow().agg_bundle(prover, &block_root),
                            None => modelled::agg_bundle(prover),
                        }
                        .try_into()
                        .unwrap_or_default(),
                    },
                    signature: BlsSignature::ZERO,
                });
                self.deliver(msg);
            }
        }
        Ok(())
    }

    /// A prover builds a full proof from its own proofs and others' accepted partials. Honest
    /// provers and withholders prove the AIRs nobody covered themselves and send the proof when
    /// done (which may land in T4 or T5); aggregator-only provers give up if anything is missing.
    fn aggregate(&mut self, prover: ProverIndex, key: RoundKey, _phase: Phase) {
        let Some(r) = self.rounds.get(&key) else { return };
        if r.finalized.is_some_and(|f| f < Phase::T3) {
            return;
        }
        if r.speculative.is_none() {
            self.speculate_full_proofs(&key);
        }
        let Some(r) = self.rounds.get(&key) else { return };
        let behaviour = self.behaviour(prover);
        let (parts, missing) = self.full_parts(r, &key, prover);
        let mut at = self.now;
        if !missing.is_empty() {
            if behaviour == Behaviour::AggregatorOnly {
                return;
            }
            let Some(spec) = self.spec(prover) else { return };
            let mut rng = self.round_rng(&key);
            rng.set_stream(prover.0.wrapping_add(1 << 40));
            for _ in &missing {
                at += spec.latency.per_air.sample(&mut rng);
            }
            if at >= r.deadlines.graced_close(Phase::T5).0 {
                return;
            }
        }
        // The proof built ahead of time if it was built from these very parts (it is then the
        // same message), else a new one.
        let ahead = self
            .rounds
            .get_mut(&key)
            .and_then(|r| r.speculative.as_mut())
            .and_then(|s| s.remove(&prover))
            .filter(|(built_from, _)| *built_from == parts)
            .map(|(_, message)| message);
        let msg = match ahead {
            Some(message) => message,
            None => {
                let Some(r) = self.rounds.get(&key) else { return };
                self.full_proof_out(&key, r, prover, parts)
            }
        };
        if !missing.is_empty() {
            self.schedule(at, Event::Proven { prover, round: key, airs: missing });
        }
        // Scheduled after the `Proven` event of the same instant.
        self.schedule(at, Event::Deliver(msg));
    }

    /// The parts `prover` puts in a full proof of round `r` now: its own proofs first, else the
    /// first accepted partial of each AIR, else its own (the AIRs it still has to prove, also
    /// returned).
    fn full_parts(
        &self,
        r: &RoundSim,
        key: &RoundKey,
        prover: ProverIndex,
    ) -> (Vec<PartRef>, Vec<AirIndex>) {
        let mut parts = Vec::with_capacity(r.num_airs as usize);
        let mut missing = Vec::new();
        for air in (0..r.num_airs).map(AirIndex) {
            if self.proofs.has(key, prover, air) {
                parts.push(PartRef { author: prover, air });
            } else if let Some(author) = r.partials.get(air.0 as usize).and_then(|a| a.first()) {
                parts.push(PartRef { author: *author, air });
            } else {
                missing.push(air);
                parts.push(PartRef { author: prover, air });
            }
        }
        (parts, missing)
    }

    /// At a round's first aggregation (T2 has closed: no partial proof can be accepted any
    /// more), builds the full proofs of the round's other planned aggregators ahead of time on
    /// the helper thread (modelled mode). Each is used only if its prover, when it aggregates,
    /// puts in exactly the parts it was built from.
    fn speculate_full_proofs(&mut self, key: &RoundKey) {
        let Some(r) = self.rounds.get(key) else { return };
        let mut ahead = FxHashMap::default();
        let mut batch = Vec::new();
        if self.sealing.is_some() {
            for &(at, prover) in r.aggregators.iter().filter(|(at, _)| *at >= self.now) {
                let (parts, missing) = self.full_parts(r, key, prover);
                if !missing.is_empty() && self.behaviour(prover) == Behaviour::AggregatorOnly {
                    continue;
                }
                let message = self.full_proof_out(key, r, prover, parts.clone());
                batch.push((at, Arc::clone(&message)));
                ahead.insert(prover, (parts, message));
            }
        }
        if let Some(r) = self.rounds.get_mut(key) {
            r.speculative = Some(ahead);
        }
        self.send_to_sealer(batch);
    }
}
