//! The simulated provers' behaviours, phase by phase: what each selected prover (and each
//! aggregator-only prover) plans when a round starts, per its behaviour and sampled latencies;
//! the takeover of declined AIRs; copiers resubmitting the first accepted full proof; and the
//! AggProofs planned once every sub-block of a block is finalised. What each behaviour does is
//! documented on [`Behaviour`].

use phase_engine::{
    AirIndex, Attempt, BlsSignature, Decline, FullProofBody, PartRef, Phase, ProtocolMessage,
    ProverIndex, RoundKey, SignedDecline, StarkTarget,
};

use rustc_hash::FxHashMap;

use super::Sim;
use super::delivery::outgoing;
use super::queue::Event;
use super::rounds::RoundSim;
use crate::scenario::Behaviour;

/// A copier sends its copies this long before T2 closes, to copy as much as it can.
const COPY_BEFORE_T2_CLOSE_MS: u64 = 300;

impl Sim<'_> {
    /// Plans what every selected prover (and every aggregator-only prover) does in a new round.
    pub(super) fn on_round_started(&mut self, start: phase_engine::RoundStart) {
        let key = start.key;
        let d = self.deadlines(start.start);
        let t1_close = d.graced_close(Phase::T1).0;
        let t2_open = d.open(Phase::T2).0;
        let t2_close = d.graced_close(Phase::T2).0;
        let t5_close = d.graced_close(Phase::T5).0;
        let mut round = RoundSim {
            slot: start.slot,
            deadlines: d,
            num_airs: start.num_airs,
            selected: start.selected.clone(),
            assignments: start.assignments.clone(),
            partials: vec![Vec::new(); start.num_airs as usize],
            finalized: None,
            copied_full: Vec::new(),
            taken: Vec::new(),
            aggregators: Vec::new(),
            speculative: None,
        };
        if key.attempt == Attempt(0)
            && let Some(b) = self.blocks.get_mut(&key.block_root)
        {
            b.sub_blocks += 1;
            b.finalized_subs.push(false);
        }
        let mut rng = self.round_rng(&key);
        let mut plans: Vec<(u64, Event)> = Vec::new();
        let sybil_leads = self.sybil_leads(&start.selected);
        let ring_worker = start
            .selected
            .iter()
            .copied()
            .find(|p| self.behaviour(*p) == Behaviour::ColludingCopier);
        // When the ring's worker has proven each AIR of the ring's selected members.
        let mut ring_ready: FxHashMap<AirIndex, u64> = FxHashMap::default();
        for (prover, airs) in start.selected.iter().copied().zip(start.assignments.iter()) {
            let Some(spec) = self.spec(prover) else { continue };
            let lat = spec.latency;
            let commit_at = d.start.0 + lat.commit.sample(&mut rng);
            // Proving the assigned AIRs one after another, after the trace commitment.
            let mut t = commit_at;
            let done: Vec<u64> = airs
                .iter()
                .map(|_| {
                    t += lat.per_air.sample(&mut rng);
                    t
                })
                .collect();
            let aggregate_at = t2_close + lat.aggregate.sample(&mut rng);
            let commit =
                |full: Option<FullProofBody>| self.commitment(&key, &round, prover, airs, full);
            let commit_out = || Event::Deliver(self.commitment_out(&key, &round, prover, airs));
            let is_worker = ring_worker == Some(prover);
            let behaviour = match spec.behaviour {
                Behaviour::Sybil if !sybil_leads.contains(&prover) => Behaviour::Lazy,
                Behaviour::Sybil | Behaviour::Censoring => Behaviour::Honest,
                Behaviour::ColludingCopier if is_worker => Behaviour::Honest,
                b => b,
            };
            match behaviour {
                Behaviour::Offline => {}
                Behaviour::Lazy => plans.push((commit_at, commit_out())),
                Behaviour::Decliner => {
                    plans.push((
                        commit_at,
                        Event::deliver(ProtocolMessage::Decline(SignedDecline {
                            message: Decline { round: round.round_ref(&key), prover },
                            signature: BlsSignature::ZERO,
                        })),
                    ));
                }
                Behaviour::AggregatorOnly => {}
                Behaviour::Copier => {
                    plans.push((commit_at, commit_out()));
                    if !airs.is_empty() {
                        plans.push((
                            t2_close
                                .saturating_sub(COPY_BEFORE_T2_CLOSE_MS + d.grace_ms)
                                .max(t2_open),
                            Event::CopyPartials { prover, round: key },
                        ));
                    }
                }
                Behaviour::Slow => {
                    plans.push((commit_at, commit_out()));
                    for (air, &at) in airs.iter().zip(&done) {
                        plans.push((at, Event::Proven { prover, round: key, airs: vec![*air] }));
                        // Misses T2: arrives after its graced close whatever the latency.
                        plans.push((
                            at.max(t2_close + 1),
                            Event::Deliver(self.partial_out(&key, &round, prover, *air, prover)),
                        ));
                    }
                }
                Behaviour::Withholder => {
                    plans.push((commit_at, commit_out()));
                    for (air, &at) in airs.iter().zip(&done) {
                        plans.push((at, Event::Proven { prover, round: key, airs: vec![*air] }));
                    }
                    plans.push((
                        aggregate_at,
                        Event::Aggregate { prover, round: key, phase: Phase::T3 },
                    ));
                }
                Behaviour::Honest => {
                    let mut solo_sent = false;
                    let mut solo_in_t1 = false;
                    if spec.solo_full_proof {
                        // Proves every AIR itself; the whole proof is ready at `solo_done`.
                        let solo_done = (0..start.num_airs)
                            .fold(commit_at, |t, _| t + lat.per_air.sample(&mut rng));
                        let all: Vec<AirIndex> = (0..start.num_airs).map(AirIndex).collect();
                        let parts: Vec<PartRef> =
                            all.iter().map(|&air| PartRef { author: prover, air }).collect();
                        if solo_done < t1_close {
                            // In T1 the full proof rides in the prover's one commitment.
                            plans
                                .push((solo_done, Event::Proven { prover, round: key, airs: all }));
                            plans.push((
                                solo_done,
                                Event::deliver(commit(Some(
                                    self.full_body(&key, prover, prover, &parts),
                                ))),
                            ));
                            solo_sent = true;
                            solo_in_t1 = true;
                        } else if solo_done < t2_close {
                            plans.push((commit_at, commit_out()));
                            plans
                                .push((solo_done, Event::Proven { prover, round: key, airs: all }));
                            let msg = self.full_proof_out(&key, &round, prover, parts);
                            plans.push((solo_done.max(t1_close), Event::Deliver(msg)));
                            solo_sent = true;
                        }
                    }
                    if !solo_sent {
                        plans.push((commit_at, commit_out()));
                    }
                    // A full proof sent in T1 finalises the round: no partial is needed then.
                    for (air, &at) in airs.iter().zip(&done).filter(|_| !solo_in_t1) {
                        if !solo_sent {
                            plans
                                .push((at, Event::Proven { prover, round: key, airs: vec![*air] }));
                        }
                        let send_at = at.max(t2_open);
                        if send_at < t2_close {
                            plans.push((
                                send_at,
                                Event::Deliver(
                                    self.partial_out(&key, &round, prover, *air, prover),
                                ),
                            ));
                        }
                    }
                    plans.push((
                        aggregate_at,
                        Event::Aggregate { prover, round: key, phase: Phase::T3 },
                    ));
                }
                Behaviour::Racer => {
                    // Proves every AIR of the sub-block itself, one after another.
                    let solo_done = (0..start.num_airs)
                        .fold(commit_at, |t, _| t + lat.per_air.sample(&mut rng));
                    let all: Vec<AirIndex> = (0..start.num_airs).map(AirIndex).collect();
                    let parts: Vec<PartRef> =
                        all.iter().map(|&air| PartRef { author: prover, air }).collect();
                    if solo_done < t1_close {
                        plans.push((solo_done, Event::Proven { prover, round: key, airs: all }));
                        plans.push((
                            solo_done,
                            Event::deliver(commit(Some(
                                self.full_body(&key, prover, prover, &parts),
                            ))),
                        ));
                    } else {
                        plans.push((commit_at, commit_out()));
                        if solo_done < t5_close {
                            plans
                                .push((solo_done, Event::Proven { prover, round: key, airs: all }));
                            let msg = self.full_proof_out(&key, &round, prover, parts);
                            plans.push((solo_done.max(t1_close), Event::Deliver(msg)));
                        }
                    }
                }
                Behaviour::ColludingCopier => {
                    // A member other than the worker: commits, then sends the worker's proofs
                    // of its AIRs as its own once the worker has them.
                    plans.push((commit_at, commit_out()));
                    if let Some(worker) = ring_worker {
                        for air in airs {
                            let Some(&ready) = ring_ready.get(air) else { continue };
                            let send_at = ready.max(t2_open);
                            if send_at < t2_close {
                                plans.push((
                                    send_at,
                                    Event::Deliver(
                                        self.partial_out(&key, &round, prover, *air, worker),
                                    ),
                                ));
                            }
                        }
                    }
                }
                // Mapped to the behaviour they act as above.
                Behaviour::Sybil | Behaviour::Censoring => {}
            }
            if is_worker {
                // The ring's worker also proves the AIRs of the round's other ring members,
                // after its own.
                for (air, &at) in airs.iter().zip(&done) {
                    ring_ready.entry(*air).or_insert(at);
                }
                let mut t = done.last().copied().unwrap_or(commit_at);
                let members =
                    start.selected.iter().zip(start.assignments.iter()).filter(|(p, _)| {
                        **p != prover && self.behaviour(**p) == Behaviour::ColludingCopier
                    });
                let mut extra = Vec::new();
                for (_, member_airs) in members {
                    for air in member_airs {
                        if !ring_ready.contains_key(air) {
                            t += lat.per_air.sample(&mut rng);
                            ring_ready.insert(*air, t);
                            extra.push((t, *air));
                        }
                    }
                }
                for (at, air) in extra {
                    plans.push((at, Event::Proven { prover, round: key, airs: vec![air] }));
                }
            }
        }
        // Aggregator-only provers aggregate every round that reaches T3.
        for p in self.aggregator_only.clone() {
            let Some(spec) = self.spec(p) else { continue };
            let at = t2_close + spec.latency.aggregate.sample(&mut rng);
            plans.push((at, Event::Aggregate { prover: p, round: key, phase: Phase::T3 }));
        }
        round.aggregators = plans
            .iter()
            .filter_map(|(at, e)| match e {
                Event::Aggregate { prover, .. } => Some((*at, *prover)),
                _ => None,
            })
            .collect();
        round.aggregators.sort_by_key(|(at, _)| *at);
        self.rounds.insert(key, round);
        self.send_to_sealer(outgoing(&plans));
        for (at, event) in plans {
            self.schedule(at, event);
        }
    }

    /// Declined AIRs are taken over by honest selected provers without AIRs of their own, first
    /// in selection order; they prove and submit them in T2 if they can.
    pub(super) fn on_decline(&mut self, key: RoundKey, decliner: ProverIndex) {
        let Some(r) = self.rounds.get(&key) else { return };
        let airs: Vec<AirIndex> = r.airs_of(decliner).map(<[AirIndex]>::to_vec).unwrap_or_default();
        let free: Vec<ProverIndex> = r
            .selected
            .iter()
            .zip(&r.assignments)
            .filter(|(p, a)| a.is_empty() && self.behaviour(**p) == Behaviour::Honest)
            .map(|(p, _)| *p)
            .collect();
        let t2_open = r.deadlines.open(Phase::T2).0;
        let t2_close = r.deadlines.graced_close(Phase::T2).0;
        let mut rng = self.round_rng(&key);
        // Distinct stream for takeovers: skip ahead by the decliner's index.
        rng.set_stream(decliner.0.wrapping_add(2));
        let mut plans = Vec::new();
        let mut free = free.into_iter().skip(r.taken.len());
        let mut taken = Vec::new();
        for air in airs {
            let Some(taker) = free.next() else { break };
            let Some(spec) = self.spec(taker) else { continue };
            let done = self.now + spec.latency.per_air.sample(&mut rng);
            plans.push((done, Event::Proven { prover: taker, round: key, airs: vec![air] }));
            let at = done.max(t2_open);
            if at < t2_close {
                plans.push((at, Event::Deliver(self.partial_out(&key, r, taker, air, taker))));
            }
            taken.push(air);
        }
        if let Some(r) = self.rounds.get_mut(&key) {
            r.taken.extend(taken);
        }
        self.send_to_sealer(outgoing(&plans));
        for (at, e) in plans {
            self.schedule(at, e);
        }
    }

    /// The sybil keys among `selected` that act for their operator in the round: each
    /// operator's first selected key, in selection order.
    fn sybil_leads(&self, selected: &[ProverIndex]) -> Vec<ProverIndex> {
        if self.sybil_operator.is_empty() {
            return Vec::new();
        }
        let mut seen = Vec::new();
        let mut leads = Vec::new();
        for &p in selected {
            let Some(Some(op)) = usize::try_from(p.0).ok().and_then(|i| self.sybil_operator.get(i))
            else {
                continue;
            };
            if !seen.contains(op) {
                seen.push(*op);
                leads.push(p);
            }
        }
        leads
    }

    pub(super) fn on_round_finalized(&mut self, key: RoundKey, phase: Phase) {
        if let Some(r) = self.rounds.get_mut(&key) {
            r.finalized = Some(phase);
        }
        let Some(b) = self.blocks.get_mut(&key.block_root) else { return };
        if let Some(f) = b.finalized_subs.get_mut(key.sub_block.0 as usize) {
            *f = true;
        }
        if b.sub_blocks > 1 && !b.agg_scheduled && b.finalized_subs.iter().all(|f| *f) {
            b.agg_scheduled = true;
            let aggregators = b.aggregators.clone();
            for p in aggregators {
                let Some(spec) = self.spec(p) else { continue };
                if matches!(
                    spec.behaviour,
                    Behaviour::Honest
                        | Behaviour::AggregatorOnly
                        | Behaviour::Withholder
                        | Behaviour::Racer
                        | Behaviour::Sybil
                        | Behaviour::Censoring
                ) {
                    let at = self.now + spec.latency.aggregate.median_ms();
                    self.schedule(at, Event::AggProof { prover: p, block_root: key.block_root });
                }
            }
        }
    }

    pub(super) fn on_stark_accepted(&mut self, target: &StarkTarget) {
        match target {
            StarkTarget::Partial { round, air, author, .. } => {
                if let Some(r) = self.rounds.get_mut(round)
                    && let Some(list) =
                        usize::try_from(air.0).ok().and_then(|i| r.partials.get_mut(i))
                {
                    list.push(*author);
                }
            }
            StarkTarget::FullProof { round, submitter, parts, bundle, .. } => {
                if let Some(real) = &self.real {
                    real.borrow_mut().full_accepted(round, bundle);
                }
                // Copiers of the round resubmit the first full proof they see as their own.
                let Some(r) = self.rounds.get(round) else { return };
                let copiers: Vec<ProverIndex> = r
                    .selected
                    .iter()
                    .copied()
                    .filter(|p| {
                        let b = self.behaviour(*p);
                        (b == Behaviour::Copier
                            || (b == Behaviour::ColludingCopier && *p != *submitter))
                            && !r.copied_full.contains(p)
                    })
                    .collect();
                let parts: Vec<PartRef> = parts.iter().map(|c| c.part).collect();
                for c in copiers {
                    let delay = self.spec(c).map_or(0, |s| s.latency.aggregate.median_ms());
                    if let Some(r) = self.rounds.get_mut(round) {
                        r.copied_full.push(c);
                    }
                    self.schedule(
                        self.now + delay,
                        Event::CopyFull {
                            prover: c,
                            round: *round,
                            original: *submitter,
                            parts: parts.clone(),
                        },
                    );
                }
            }
            _ => {}
        }
    }
}
