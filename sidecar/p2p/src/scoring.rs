//! Gossipsub peer scoring: the score parameters, the per-topic weights and the thresholds,
//! derived from the expected message rate of each topic the way Lighthouse derives its own
//! (`gossipsub_scoring_parameters.rs`). docs/protocol.md, "Peer scoring and limits", gives
//! every value and its derivation.
//!
//! The inputs are a [`ScoringConfig`]: the slot, the mesh sizes and one [`TopicRate`] per topic
//! (its weight and the messages it carries per slot). In short:
//!
//! * counters decay once per slot, to zero ([`DECAY_TO_ZERO`]) over a time given per counter;
//! * a topic of weight `w` earns at most `w * 10` for time in the mesh and `w * 40` for first
//!   deliveries; the sum over topics is the *maximum positive score* `M`, and the topic part of
//!   a score is capped at `M / 2`;
//! * each invalid message on any topic costs `M * n²` for the `n`-th one (P4 weight `-M / w`),
//!   so [`ScoringConfig::invalid_messages_to_graylist`] invalid messages (12 with the defaults)
//!   put any peer below [`GRAYLIST_THRESHOLD`];
//! * the application score (`NetworkHandle::penalise`) counts with weight
//!   [`APP_SPECIFIC_WEIGHT`], so that its ban threshold is the graylist threshold;
//! * a peer below [`GRAYLIST_THRESHOLD`] is disconnected and banned by the network task.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use libp2p::gossipsub::{
    self, DataTransform, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
    TopicSubscriptionFilter,
};

use crate::error::{Error, Result};
use crate::peer_score::PEER_BAN_THRESHOLD;
use crate::topic::GossipTopic;

/// Score below which a peer gets no gossip (IHAVE/IWANT) from us, nor we from it.
pub const GOSSIP_THRESHOLD: f64 = -4000.0;
/// Score below which we do not publish to a peer (flood publishing, fanout).
pub const PUBLISH_THRESHOLD: f64 = -8000.0;
/// Score below which everything a peer sends is ignored (graylisted); the network task then
/// disconnects and bans it.
pub const GRAYLIST_THRESHOLD: f64 = -16000.0;
/// Score a peer needs for us to accept its peer exchange (PX) on PRUNE: out of reach (the
/// topic part of a score is capped at `M / 2`, 60 with the defaults), so PX is never followed.
const ACCEPT_PX_THRESHOLD: f64 = 100.0;
/// Median mesh score below which opportunistic grafting looks for better peers.
const OPPORTUNISTIC_GRAFT_THRESHOLD: f64 = 5.0;

/// Counter value below which a decaying counter is zero.
pub const DECAY_TO_ZERO: f64 = 0.01;
/// Most a topic's P1 (time in the mesh) earns, before its topic weight.
const MAX_IN_MESH_SCORE: f64 = 10.0;
/// Most a topic's P2 (first message deliveries) earns, before its topic weight.
const MAX_FIRST_MESSAGE_DELIVERIES_SCORE: f64 = 40.0;
/// Time in the mesh after which P1 is at its maximum.
const TIME_IN_MESH_CAP: Duration = Duration::from_secs(3600);
/// Slots of an "epoch", the unit of the longer decay times (as the beacon chain's).
const SLOTS_PER_EPOCH: u32 = 32;
/// Epochs over which the invalid-message counter (P4) decays to zero.
const INVALID_MESSAGE_DECAY_EPOCHS: u32 = 50;
/// Epochs over which the behaviour penalty counter (P7) decays to zero.
const BEHAVIOUR_PENALTY_DECAY_EPOCHS: u32 = 10;
/// Behaviour penalties (broken IWANT promises, GRAFT during backoff) not counted.
const BEHAVIOUR_PENALTY_THRESHOLD: f64 = 6.0;
/// Behaviour penalties per epoch that bring a peer, at equilibrium, to the gossip threshold.
const BEHAVIOUR_PENALTIES_PER_EPOCH: f64 = 10.0;
/// Epochs a disconnected peer's counters are kept (a reconnect does not wash a score).
const RETAIN_SCORE_EPOCHS: u32 = 100;
/// Peers sharing one IP address before the colocation penalty (P6) applies.
const IP_COLOCATION_THRESHOLD: f64 = 8.0;

/// Weight of the application score (P5): an application score at the ban threshold
/// ([`PEER_BAN_THRESHOLD`](crate::PEER_BAN_THRESHOLD), −50) is the graylist threshold, so one
/// penalty (−10) is −3 200 and two put a peer below the gossip threshold.
pub const APP_SPECIFIC_WEIGHT: f64 = GRAYLIST_THRESHOLD / PEER_BAN_THRESHOLD as f64;

/// The expected traffic of one topic, the input of its score parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicRate {
    /// The topic name (the `<name>` of `/<prefix>/<name>/ssz_snappy`).
    pub name: String,
    /// The topic weight: how much this topic counts in a peer's score (positive and finite).
    pub weight: f64,
    /// Messages the whole network sends on the topic per slot, at the design maximum
    /// (positive and finite).
    pub messages_per_slot: f64,
    /// Slots over which a peer's first-delivery credit (P2) decays to zero.
    pub first_delivery_decay_slots: u32,
}

impl TopicRate {
    /// A topic's expected traffic.
    pub fn new(
        name: &str,
        weight: f64,
        messages_per_slot: f64,
        first_delivery_decay_slots: u32,
    ) -> Self {
        Self { name: name.to_owned(), weight, messages_per_slot, first_delivery_decay_slots }
    }
}

/// What the scoring parameters are derived from.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoringConfig {
    /// The slot: one decay interval, the quantum of time in the mesh and the unit of rates.
    /// libp2p refuses a decay interval under 1 s.
    pub slot: Duration,
    /// Gossipsub mesh degree `D` (the target mesh size per topic).
    pub mesh_n: usize,
    /// `D_low`: below it the heartbeat grafts peers.
    pub mesh_n_low: usize,
    /// `D_high`: above it the heartbeat prunes peers.
    pub mesh_n_high: usize,
    /// The scored topics. A topic subscribed at start must have one; a topic subscribed later
    /// without one is not scored.
    pub topics: Vec<TopicRate>,
    /// Addresses exempt from the IP-colocation penalty (loopback in local devnets, where every
    /// peer shares one address).
    pub ip_colocation_whitelist: Vec<IpAddr>,
}

impl Default for ScoringConfig {
    /// The proving sidecar's topics (docs/protocol.md, "Peer scoring and limits"): 12 s slots,
    /// a mesh of 8 (6–12), and rates at the design maximum of 200 provers per slot.
    fn default() -> Self {
        Self {
            slot: Duration::from_secs(12),
            mesh_n: 8,
            mesh_n_low: 6,
            mesh_n_high: 12,
            topics: vec![
                // One T1 message per selected prover and round: 200 per slot.
                TopicRate::new("trace_commitment", 0.5, 200.0, SLOTS_PER_EPOCH),
                // A tenth of the selected provers.
                TopicRate::new("prover_decline", 0.1, 20.0, SLOTS_PER_EPOCH),
                // AIRs × redundancy: a 60 Mgas block is 15 AIRs, each proven twice.
                TopicRate::new("partial_proof", 0.5, 32.0, SLOTS_PER_EPOCH),
                // A few submitters per round (T2–T5, and full proofs riding in commitments).
                TopicRate::new("full_proof", 0.5, 8.0, SLOTS_PER_EPOCH),
                // At most one block per slot has sub-blocks to aggregate.
                TopicRate::new("agg_proof", 0.25, 1.0, 20 * SLOTS_PER_EPOCH),
                // One proposer's record per slot.
                TopicRate::new("inclusion_record", 0.5, 1.0, 20 * SLOTS_PER_EPOCH),
                // Rare: about one new prover per epoch.
                TopicRate::new(
                    "prover_registration",
                    0.05,
                    1.0 / f64::from(SLOTS_PER_EPOCH),
                    100 * SLOTS_PER_EPOCH,
                ),
            ],
            ip_colocation_whitelist: Vec::new(),
        }
    }
}

/// `decay` such that a counter multiplied by it once per `interval` falls from 1 to
/// [`DECAY_TO_ZERO`] in `time`.
fn decay_over(time: Duration, interval: Duration) -> f64 {
    let ticks = time.as_secs_f64() / interval.as_secs_f64();
    DECAY_TO_ZERO.powf(1.0 / ticks)
}

/// The value a counter that gains `rate` per interval and decays by `decay` converges to.
fn convergence(decay: f64, rate: f64) -> f64 {
    rate / (1.0 - decay)
}

impl ScoringConfig {
    /// The score thresholds (fixed, as Lighthouse's).
    pub fn thresholds(&self) -> PeerScoreThresholds {
        PeerScoreThresholds {
            gossip_threshold: GOSSIP_THRESHOLD,
            publish_threshold: PUBLISH_THRESHOLD,
            graylist_threshold: GRAYLIST_THRESHOLD,
            accept_px_threshold: ACCEPT_PX_THRESHOLD,
            opportunistic_graft_threshold: OPPORTUNISTIC_GRAFT_THRESHOLD,
        }
    }

    /// The maximum positive score `M`: what a peer earns at most on every topic, weighted.
    pub fn max_positive_score(&self) -> f64 {
        let weights: f64 = self.topics.iter().map(|t| t.weight).sum();
        (MAX_IN_MESH_SCORE + MAX_FIRST_MESSAGE_DELIVERIES_SCORE) * weights
    }

    /// How many invalid messages (on any one topic, before they decay) bring a peer with the
    /// highest positive score below [`GRAYLIST_THRESHOLD`]: the smallest `n` with
    /// `M / 2 - M * n² < GRAYLIST_THRESHOLD`.
    pub fn invalid_messages_to_graylist(&self) -> u32 {
        let m = self.max_positive_score();
        if !(m.is_finite() && m > 0.0) {
            return 0;
        }
        let n = ((m / 2.0 - GRAYLIST_THRESHOLD) / m).sqrt();
        // The smallest integer strictly above `n` (about 12 with the defaults).
        (n.floor() + 1.0).min(f64::from(u32::MAX)) as u32
    }

    fn decay(&self, time: Duration) -> f64 {
        decay_over(time, self.slot)
    }

    fn epochs(&self, epochs: u32) -> Duration {
        self.slot.saturating_mul(SLOTS_PER_EPOCH.saturating_mul(epochs))
    }

    /// The score parameters of one topic.
    fn topic_params(&self, topic: &TopicRate, max_positive: f64) -> TopicScoreParams {
        let time_in_mesh_cap = TIME_IN_MESH_CAP.as_secs_f64() / self.slot.as_secs_f64();
        let first_decay =
            self.decay(self.slot.saturating_mul(topic.first_delivery_decay_slots.max(1)));
        let mesh_n = self.mesh_n.max(1) as f64;
        // A mesh peer is expected to be first with a share `1 / D` of the messages; twice that
        // earns the whole P2.
        let first_cap = convergence(first_decay, 2.0 * topic.messages_per_slot / mesh_n);
        TopicScoreParams {
            topic_weight: topic.weight,
            // P1: full after an hour in the mesh.
            time_in_mesh_weight: MAX_IN_MESH_SCORE / time_in_mesh_cap,
            time_in_mesh_quantum: self.slot,
            time_in_mesh_cap,
            // P2.
            first_message_deliveries_weight: MAX_FIRST_MESSAGE_DELIVERIES_SCORE / first_cap,
            first_message_deliveries_decay: first_decay,
            first_message_deliveries_cap: first_cap,
            // P3 and P3b (mesh delivery deficits): off, see docs/protocol.md.
            mesh_message_deliveries_weight: 0.0,
            mesh_message_deliveries_decay: 0.0,
            mesh_message_deliveries_cap: 0.0,
            mesh_message_deliveries_threshold: 0.0,
            mesh_message_deliveries_window: Duration::ZERO,
            mesh_message_deliveries_activation: Duration::ZERO,
            mesh_failure_penalty_weight: 0.0,
            mesh_failure_penalty_decay: 0.0,
            // P4: each invalid message costs `M` times its count, whatever the topic weight.
            invalid_message_deliveries_weight: -max_positive / topic.weight,
            invalid_message_deliveries_decay: self.decay(self.epochs(INVALID_MESSAGE_DECAY_EPOCHS)),
        }
    }

    /// The peer score parameters for the topics under `topic_prefix`.
    ///
    /// # Errors
    /// [`Error::PeerScoring`] for a topic weight or rate that is not a finite positive number
    /// (a zero weight would make the invalid-message weight infinite, and libp2p does not check
    /// for that), [`Error::InvalidTopic`] for a malformed topic name. Other bad values are
    /// caught by libp2p when the network enables scoring at start.
    pub fn peer_score_params(&self, topic_prefix: &str) -> Result<PeerScoreParams> {
        for t in &self.topics {
            for (what, value) in [("weight", t.weight), ("messages_per_slot", t.messages_per_slot)]
            {
                if !(value.is_finite() && value > 0.0) {
                    return Err(Error::PeerScoring {
                        reason: format!(
                            "topic `{}`: {what} must be a finite positive number, got {value}",
                            t.name
                        ),
                    });
                }
            }
        }
        let max_positive = self.max_positive_score();
        let behaviour_penalty_decay = self.decay(self.epochs(BEHAVIOUR_PENALTY_DECAY_EPOCHS));
        // The equilibrium of a peer that earns 10 behaviour penalties per epoch, above the
        // threshold, is the gossip threshold.
        let excess = convergence(
            behaviour_penalty_decay,
            BEHAVIOUR_PENALTIES_PER_EPOCH / f64::from(SLOTS_PER_EPOCH),
        ) - BEHAVIOUR_PENALTY_THRESHOLD;
        let topic_score_cap = max_positive / 2.0;
        let mut topics = HashMap::new();
        for t in &self.topics {
            let topic = GossipTopic::new(topic_prefix, &t.name)?;
            topics.insert(topic.hash(), self.topic_params(t, max_positive));
        }
        Ok(PeerScoreParams {
            topics,
            topic_score_cap,
            app_specific_weight: APP_SPECIFIC_WEIGHT,
            ip_colocation_factor_weight: -topic_score_cap,
            ip_colocation_factor_threshold: IP_COLOCATION_THRESHOLD,
            ip_colocation_factor_whitelist: self.ip_colocation_whitelist.iter().copied().collect(),
            behaviour_penalty_weight: GOSSIP_THRESHOLD / (excess * excess),
            behaviour_penalty_threshold: BEHAVIOUR_PENALTY_THRESHOLD,
            behaviour_penalty_decay,
            decay_interval: self.slot,
            decay_to_zero: DECAY_TO_ZERO,
            retain_score: self.epochs(RETAIN_SCORE_EPOCHS),
            // A peer whose send queue overflows: 10 per failure, forgotten within a few slots.
            slow_peer_weight: -10.0,
            slow_peer_threshold: 0.0,
            slow_peer_decay: 0.1,
        })
    }
}

/// Turns peer scoring on in `gossipsub` with the parameters derived from `config`.
///
/// # Errors
/// [`Error::PeerScoring`] when the parameters are refused, by [`ScoringConfig::peer_score_params`]
/// or by libp2p (`PeerScoreParams::validate`, `PeerScoreThresholds::validate`): a network never
/// runs with a scoring configuration other than the one asked for.
pub(crate) fn enable_peer_scoring<D, F>(
    gossipsub: &mut gossipsub::Behaviour<D, F>,
    config: &ScoringConfig,
    topic_prefix: &str,
) -> Result<()>
where
    D: DataTransform + Send + 'static,
    F: TopicSubscriptionFilter + Send + 'static,
{
    let params = config.peer_score_params(topic_prefix)?;
    gossipsub
        .with_peer_score(params, config.thresholds())
        .map_err(|reason| Error::PeerScoring { reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::gossipsub::{
        ConfigBuilder, IdentityTransform, MessageAuthenticity, ValidationMode,
    };

    fn gossipsub() -> gossipsub::Behaviour<IdentityTransform> {
        let config = ConfigBuilder::default().validation_mode(ValidationMode::Anonymous).build();
        gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config.unwrap()).unwrap()
    }

    #[test]
    fn the_default_parameters_are_accepted_by_libp2p() {
        let config = ScoringConfig::default();
        let params = config.peer_score_params("proving-sidecar-0").unwrap();
        params.validate().unwrap();
        config.thresholds().validate().unwrap();
        assert_eq!(params.topics.len(), 7);
        enable_peer_scoring(&mut gossipsub(), &config, "proving-sidecar-0").unwrap();
    }

    #[test]
    fn derived_values_follow_the_documented_formulas() {
        let config = ScoringConfig::default();
        let m = config.max_positive_score();
        assert!((m - 120.0).abs() < 1e-9, "{m}");
        let params = config.peer_score_params("p").unwrap();
        assert!((params.topic_score_cap - 60.0).abs() < 1e-9);
        assert!((params.app_specific_weight - 320.0).abs() < 1e-9);
        assert_eq!(params.decay_interval, Duration::from_secs(12));
        assert_eq!(params.retain_score, Duration::from_secs(12 * 32 * 100));

        let commitments =
            &params.topics[&GossipTopic::new("p", "trace_commitment").unwrap().hash()];
        // Every invalid message costs `M` per unit of its squared count, on every topic.
        for t in params.topics.values() {
            let cost = t.invalid_message_deliveries_weight * t.topic_weight;
            assert!((cost + m).abs() < 1e-9, "{cost}");
            // Falls to 1 % over 50 epochs of 32 slots.
            assert!((t.invalid_message_deliveries_decay.powi(1600) - 0.01).abs() < 1e-9);
            // P1: 10 after an hour (300 slots).
            assert!((t.time_in_mesh_cap - 300.0).abs() < 1e-9);
            assert!((t.time_in_mesh_weight * t.time_in_mesh_cap - 10.0).abs() < 1e-9);
            // P2: 40 at the cap.
            let p2 = t.first_message_deliveries_weight * t.first_message_deliveries_cap;
            assert!((p2 - 40.0).abs() < 1e-9);
            assert_eq!(t.mesh_message_deliveries_weight, 0.0);
        }
        // Commitments: 200 per slot over a mesh of 8, decaying over 32 slots.
        let decay = 0.01f64.powf(1.0 / 32.0);
        let cap = 2.0 * 200.0 / 8.0 / (1.0 - decay);
        assert!((commitments.first_message_deliveries_cap - cap).abs() < 1e-9);
        assert!((commitments.first_message_deliveries_decay - decay).abs() < 1e-12);

        // A peer with 10 behaviour penalties per epoch settles at the gossip threshold.
        let settled = 10.0 / 32.0 / (1.0 - params.behaviour_penalty_decay);
        let p7 = (settled - 6.0).powi(2) * params.behaviour_penalty_weight;
        assert!((p7 - GOSSIP_THRESHOLD).abs() < 1e-6, "{p7}");
    }

    #[test]
    fn twelve_invalid_messages_graylist_a_peer() {
        let config = ScoringConfig::default();
        let n = config.invalid_messages_to_graylist();
        assert_eq!(n, 12);
        let m = config.max_positive_score();
        let score = |k: u32| m / 2.0 - m * f64::from(k * k);
        assert!(score(n) < GRAYLIST_THRESHOLD);
        assert!(score(n - 1) >= GRAYLIST_THRESHOLD);
    }

    #[test]
    fn a_bad_parameter_set_is_refused() {
        let refused = |config: ScoringConfig| {
            let err = enable_peer_scoring(&mut gossipsub(), &config, "p").unwrap_err();
            assert!(matches!(err, Error::PeerScoring { .. }), "{err}");
            err.to_string()
        };
        // libp2p refuses a decay interval under 1 s.
        let fast = ScoringConfig { slot: Duration::from_millis(500), ..ScoringConfig::default() };
        assert!(refused(fast).contains("decay_interval"));
        // A negative topic weight (libp2p would refuse it too).
        let mut negative = ScoringConfig::default();
        negative.topics[0].weight = -0.5;
        assert!(refused(negative).contains("trace_commitment"));
        // A zero weight or rate, or NaN, would derive infinite or NaN weights.
        for (weight, rate) in [(0.0, 1.0), (0.5, 0.0), (f64::NAN, 1.0), (0.5, f64::INFINITY)] {
            let mut bad = ScoringConfig::default();
            bad.topics[1].weight = weight;
            bad.topics[1].messages_per_slot = rate;
            assert!(refused(bad).contains("prover_decline"));
        }
        // libp2p refuses enabling scoring twice.
        let mut twice = gossipsub();
        let config = ScoringConfig::default();
        enable_peer_scoring(&mut twice, &config, "p").unwrap();
        let err = enable_peer_scoring(&mut twice, &config, "p").unwrap_err();
        assert!(matches!(err, Error::PeerScoring { .. }), "{err}");
        // A malformed topic name.
        let mut bad_name = ScoringConfig::default();
        bad_name.topics[0].name = "a/b".into();
        let err = enable_peer_scoring(&mut gossipsub(), &bad_name, "p").unwrap_err();
        assert!(matches!(err, Error::InvalidTopic { .. }), "{err}");
    }
}
