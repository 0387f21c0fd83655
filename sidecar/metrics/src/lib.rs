//! Prometheus metrics (`prometheus-client`) and the `/metrics` HTTP route.
//!
//! [`Metrics`] owns the registry and the metric families the node reports: rounds by the phase
//! that decided them and their outcome, message verdicts by reason, proving and verification
//! times, peers and their penalties, beacon lag. It is cheap to clone (the families are
//! shared), so every task can hold one. [`Metrics::router`] is an `axum` router serving
//! `GET /metrics` in the OpenMetrics text format, for the node to merge into its HTTP server.
//!
//! A crate of its own because three crates report into the same registry and none of them owns
//! it: the validator node, the gossip network and the prover worker.

mod error;
#[cfg(test)]
mod http_tests;

pub use error::{Error, Result};

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use phase_engine::Slot;

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum!(
    /// The phase in which a round was decided.
    PhaseLabel {
        /// Challenge commitment.
        T1 => "t1",
        /// Partial proofs.
        T2 => "t2",
        /// Aggregation.
        T3 => "t3",
        /// First fallback.
        T4 => "t4",
        /// Second fallback.
        T5 => "t5",
    }
);

label_enum!(
    /// How a round ended.
    RoundOutcomeLabel {
        /// A valid full proof was finalised.
        FullProof => "full_proof",
        /// No full proof by the end of T5; retried with a new prover set.
        Retried => "retried",
        /// Every retry failed.
        Failed => "failed",
        /// The block was orphaned by a reorg.
        Orphaned => "orphaned",
    }
);

label_enum!(
    /// A gossip or API message's verdict.
    VerdictLabel {
        /// Valid; processed and forwarded.
        Accept => "accept",
        /// Invalid; the sender is penalised.
        Reject => "reject",
        /// Not useful (duplicate, late, unknown round); dropped without penalty.
        Ignore => "ignore",
    }
);

label_enum!(
    /// What kind of verification was timed.
    VerifyKindLabel {
        /// BLS signature (batch) verification.
        Bls => "bls",
        /// STARK partial proof verification.
        PartialProof => "partial_proof",
        /// STARK full proof verification.
        FullProof => "full_proof",
    }
);

/// Labels of `sidecar_rounds_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RoundLabels {
    /// The phase that decided the round.
    pub phase: PhaseLabel,
    /// The outcome.
    pub outcome: RoundOutcomeLabel,
}

/// Labels of `sidecar_messages_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct MessageLabels {
    /// The message kind (its topic name, for example `commitment`).
    pub kind: &'static str,
    /// The verdict.
    pub verdict: VerdictLabel,
    /// Why (for example `valid`, `bad_signature`, `duplicate`, `late`).
    pub reason: &'static str,
}

/// Labels of `sidecar_verify_duration_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct VerifyLabels {
    /// What was verified.
    pub kind: VerifyKindLabel,
}

/// Labels of `sidecar_p2p_peer_penalties_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PenaltyLabels {
    /// Why the peer was penalised (for example `invalid_response`).
    pub reason: &'static str,
}

/// Labels of `sidecar_sync_fetched_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SyncLabels {
    /// What was fetched: `record` or `message`.
    pub kind: &'static str,
}

/// The node's metrics. Clones share the same registry and values.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    rounds: Family<RoundLabels, Counter>,
    messages: Family<MessageLabels, Counter>,
    proof_seconds: Histogram,
    verify_seconds: Family<VerifyLabels, Histogram>,
    peers: Gauge,
    peer_penalties: Family<PenaltyLabels, Counter>,
    beacon_lag_slots: Gauge,
    beacon_head_slot: Gauge,
    sync_fetched: Family<SyncLabels, Counter>,
    sync_wanted: Family<SyncLabels, Gauge>,
    settled_through: Gauge,
    disk_free_bytes: Gauge,
    disk_low: Gauge,
    db_size_bytes: Gauge,
    store_pruned_bytes: Counter,
    checkpoint_slot: Gauge,
    checkpoint_age_slots: Gauge,
    peer_score: Family<ScoreLabels, Gauge<f64, AtomicU64>>,
    missed_deadlines: Family<ProverLabels, Counter>,
    gossip_dropped: Counter,
}

/// Labels of `sidecar_p2p_peer_score`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScoreLabels {
    /// `min`, `median` or `max` over the connected peers.
    pub stat: &'static str,
}

/// Labels of `sidecar_prover_missed_deadlines_total`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProverLabels {
    /// The prover's registry index.
    pub prover: u64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn time_buckets() -> impl Iterator<Item = f64> {
    // 1 ms .. ~32 s
    exponential_buckets(0.001, 2.0, 16)
}

impl Metrics {
    /// A fresh registry with every metric family registered under the `sidecar_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sidecar");
        let rounds = Family::<RoundLabels, Counter>::default();
        registry.register("rounds", "Rounds ended, by deciding phase and outcome", rounds.clone());
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Protocol messages validated, by kind, verdict and reason",
            messages.clone(),
        );
        let proof_seconds = Histogram::new(time_buckets());
        registry.register(
            "proof_duration_seconds",
            "Time to build one proof (prover mode)",
            proof_seconds.clone(),
        );
        let verify_seconds = Family::<VerifyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(time_buckets())
        });
        registry.register(
            "verify_duration_seconds",
            "Time to verify signatures and proofs, by kind",
            verify_seconds.clone(),
        );
        let peers = Gauge::default();
        registry.register("peers", "Connected libp2p peers", peers.clone());
        let peer_penalties = Family::<PenaltyLabels, Counter>::default();
        registry.register(
            "p2p_peer_penalties",
            "Penalties given to peers by the application, by reason",
            peer_penalties.clone(),
        );
        let beacon_lag_slots = Gauge::default();
        registry.register(
            "beacon_lag_slots",
            "Wall-clock slot minus the beacon node's head slot",
            beacon_lag_slots.clone(),
        );
        let beacon_head_slot = Gauge::default();
        registry.register(
            "beacon_head_slot",
            "The beacon node's head slot",
            beacon_head_slot.clone(),
        );
        let sync_fetched = Family::<SyncLabels, Counter>::default();
        registry.register(
            "sync_fetched",
            "Inclusion records and messages fetched from peers by sync, by kind",
            sync_fetched.clone(),
        );
        let sync_wanted = Family::<SyncLabels, Gauge>::default();
        registry.register(
            "sync_wanted",
            "Inclusion records and messages canonical settlement waits for, by kind",
            sync_wanted.clone(),
        );
        let settled_through = Gauge::default();
        registry.register(
            "canonical_resolved_slot",
            "Every slot up to this one has its inclusion record and messages (canonical rounds)",
            settled_through.clone(),
        );
        let disk_free_bytes = Gauge::default();
        registry.register(
            "disk_free_bytes",
            "Free bytes on the filesystem of the node's store (available to the node's user)",
            disk_free_bytes.clone(),
        );
        let disk_low = Gauge::default();
        registry.register(
            "disk_low",
            "1 while free disk space is below storage.min_free_bytes (new work is refused)",
            disk_low.clone(),
        );
        let peer_score = Family::<ScoreLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "p2p_peer_score",
            "Gossipsub scores of the connected peers: the lowest, the median and the highest",
            peer_score.clone(),
        );
        let missed_deadlines = Family::<ProverLabels, Counter>::default();
        registry.register(
            "prover_missed_deadlines",
            "Settled non-participation penalties (a phase deadline missed), by prover index",
            missed_deadlines.clone(),
        );
        let gossip_dropped = Counter::default();
        registry.register(
            "p2p_gossip_dropped",
            "Gossip messages ignored because the validation queue, or the sender's share of it, was full",
            gossip_dropped.clone(),
        );
        let db_size_bytes = Gauge::default();
        registry.register("db_size_bytes", "Size of the node's store file", db_size_bytes.clone());
        let store_pruned_bytes = Counter::default();
        registry.register(
            "store_pruned_bytes",
            "Bytes of messages and proofs pruned from the store (older than storage.retention_slots)",
            store_pruned_bytes.clone(),
        );
        let checkpoint_slot = Gauge::default();
        registry.register(
            "checkpoint_slot",
            "Head slot of the node's latest checkpoint (a restart replays only the inputs after it)",
            checkpoint_slot.clone(),
        );
        let checkpoint_age_slots = Gauge::default();
        registry.register(
            "checkpoint_age_slots",
            "Slots from the latest checkpoint to the head followed",
            checkpoint_age_slots.clone(),
        );
        Self {
            registry: Arc::new(registry),
            disk_free_bytes,
            disk_low,
            db_size_bytes,
            store_pruned_bytes,
            checkpoint_slot,
            checkpoint_age_slots,
            peer_score,
            missed_deadlines,
            gossip_dropped,
            rounds,
            messages,
            proof_seconds,
            verify_seconds,
            peers,
            peer_penalties,
            beacon_lag_slots,
            beacon_head_slot,
            sync_fetched,
            sync_wanted,
            settled_through,
        }
    }

    /// Counts records or messages (`kind`) fetched by sync.
    pub fn sync_fetched(&self, kind: &'static str, n: u64) {
        self.sync_fetched.get_or_create(&SyncLabels { kind }).inc_by(n);
    }

    /// Sets how many records and messages canonical settlement waits for.
    pub fn set_sync_wanted(&self, records: usize, messages: usize) {
        let set = |kind, n: usize| {
            self.sync_wanted
                .get_or_create(&SyncLabels { kind })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        };
        set("record", records);
        set("message", messages);
    }

    /// Sets the disk figures: free bytes on the store's filesystem, whether that is below the
    /// configured minimum, and the store file's size.
    pub fn set_disk(&self, free_bytes: u64, low: bool, db_size_bytes: u64) {
        self.disk_free_bytes.set(i64::try_from(free_bytes).unwrap_or(i64::MAX));
        self.disk_low.set(i64::from(low));
        self.db_size_bytes.set(i64::try_from(db_size_bytes).unwrap_or(i64::MAX));
    }

    /// Counts bytes pruned from the store.
    pub fn store_pruned(&self, bytes: u64) {
        self.store_pruned_bytes.inc_by(bytes);
    }

    /// Sets the head slot of the latest checkpoint and how far the head followed is past it.
    pub fn set_checkpoint(&self, checkpoint: Slot, head: Slot) {
        self.checkpoint_slot.set(i64::try_from(checkpoint.0).unwrap_or(i64::MAX));
        let age = head.0.saturating_sub(checkpoint.0);
        self.checkpoint_age_slots.set(i64::try_from(age).unwrap_or(i64::MAX));
    }

    /// Sets the lowest, median and highest gossipsub score of the connected peers (all 0 with
    /// no peer).
    pub fn set_peer_scores(&self, scores: impl IntoIterator<Item = f64>) {
        let mut scores: Vec<f64> = scores.into_iter().filter(|s| s.is_finite()).collect();
        scores.sort_by(f64::total_cmp);
        let at = |i: usize| scores.get(i).copied().unwrap_or(0.0);
        let last = scores.len().saturating_sub(1);
        for (stat, value) in [("min", at(0)), ("median", at(scores.len() / 2)), ("max", at(last))] {
            self.peer_score.get_or_create(&ScoreLabels { stat }).set(value);
        }
    }

    /// Counts a gossip message ignored for want of room in the validation queue.
    pub fn gossip_dropped(&self) {
        self.gossip_dropped.inc();
    }

    /// Counts settled non-participation penalties of `prover` (deadlines it missed).
    pub fn missed_deadlines(&self, prover: u64, n: u64) {
        self.missed_deadlines.get_or_create(&ProverLabels { prover }).inc_by(n);
    }

    /// Sets the slot canonical settlement has resolved every slot through.
    pub fn set_canonical_resolved(&self, slot: Slot) {
        self.settled_through.set(i64::try_from(slot.0).unwrap_or(i64::MAX));
    }

    /// Counts a round that ended in `phase` with `outcome`.
    pub fn round_ended(&self, phase: PhaseLabel, outcome: RoundOutcomeLabel) {
        self.rounds.get_or_create(&RoundLabels { phase, outcome }).inc();
    }

    /// Counts a message verdict.
    pub fn message_verdict(&self, kind: &'static str, verdict: VerdictLabel, reason: &'static str) {
        self.messages.get_or_create(&MessageLabels { kind, verdict, reason }).inc();
    }

    /// Records the time one proof took.
    pub fn observe_proof_time(&self, elapsed: Duration) {
        self.proof_seconds.observe(elapsed.as_secs_f64());
    }

    /// Records the time one verification took.
    pub fn observe_verify_time(&self, kind: VerifyKindLabel, elapsed: Duration) {
        self.verify_seconds.get_or_create(&VerifyLabels { kind }).observe(elapsed.as_secs_f64());
    }

    /// Sets the number of connected peers.
    pub fn set_peers(&self, peers: usize) {
        self.peers.set(i64::try_from(peers).unwrap_or(i64::MAX));
    }

    /// Counts a penalty given to a peer.
    pub fn peer_penalised(&self, reason: &'static str) {
        self.peer_penalties.get_or_create(&PenaltyLabels { reason }).inc();
    }

    /// Sets the beacon head slot and the lag of the head behind the wall-clock slot.
    pub fn set_beacon_head(&self, head_slot: Slot, wall_slot: Slot) {
        let head = i64::try_from(head_slot.0).unwrap_or(i64::MAX);
        let wall = i64::try_from(wall_slot.0).unwrap_or(i64::MAX);
        self.beacon_head_slot.set(head);
        self.beacon_lag_slots.set(wall.saturating_sub(head));
    }

    /// The registry, to register more metrics families.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            // Encoding into a String only fails if a metric's own encoder fails.
            let _ = writeln!(text, "# error: metrics encoding failed");
        }
        text
    }

    /// An `axum` router serving `GET /metrics`.
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], metrics.encode()).into_response()
                }
            }),
        )
    }
}

/// Binds the HTTP listener for [`serve_http`].
///
/// # Errors
/// [`Error::Bind`] if the address is taken or not allowed.
pub async fn bind_http(address: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address).await.map_err(|source| Error::Bind { address, source })
}

/// Serves `router` on `listener` until `shutdown` completes.
///
/// # Errors
/// [`Error::Serve`] if the server fails.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Serve { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample names a registry exposes, from its `# TYPE` lines (so families with no
    /// samples yet count too): counters as `_total`, histograms as `_bucket`/`_sum`/`_count`.
    fn exposed_names(text: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
                (words.next(), words.next(), words.next(), words.next())
            {
                match kind {
                    "counter" => {
                        names.insert(format!("{name}_total"));
                    }
                    "histogram" => {
                        for suffix in ["_bucket", "_sum", "_count"] {
                            names.insert(format!("{name}{suffix}"));
                        }
                    }
                    _ => {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
        names
    }

    #[test]
    fn dashboard_uses_only_metrics_the_sidecar_serves() {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../testnets/grafana/proving-sidecar.json");
        let text = std::fs::read_to_string(path).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut exprs = Vec::new();
        let panels = dashboard["panels"].as_array().unwrap();
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                exprs.push(target["expr"].as_str().unwrap().to_owned());
            }
        }
        assert!(exprs.len() >= 15, "{} queries", exprs.len());
        // Families appear once they have a sample: give each one.
        let m = Metrics::new();
        m.sync_fetched("record", 1);
        m.set_sync_wanted(1, 1);
        m.set_disk(1, false, 1);
        m.set_peer_scores([1.0]);
        m.missed_deadlines(0, 1);
        m.round_ended(PhaseLabel::T1, RoundOutcomeLabel::FullProof);
        m.message_verdict("commitment", VerdictLabel::Accept, "valid");
        m.observe_verify_time(VerifyKindLabel::Bls, Duration::from_millis(1));
        m.peer_penalised("test");
        let served = exposed_names(&m.encode());
        let mut used = std::collections::BTreeSet::new();
        for expr in &exprs {
            for (i, _) in expr.match_indices("sidecar_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(served.contains(&name), "{name} (in {expr}) is not served: {served:?}");
                used.insert(name);
            }
        }
        for wanted in [
            "sidecar_db_size_bytes",
            "sidecar_disk_free_bytes",
            "sidecar_p2p_peer_score",
            "sidecar_prover_missed_deadlines_total",
            "sidecar_store_pruned_bytes_total",
            "sidecar_checkpoint_age_slots",
        ] {
            assert!(used.contains(wanted), "the dashboard shows {wanted}");
        }
    }

    #[test]
    fn peer_scores_are_summarised_and_missed_deadlines_counted_per_prover() {
        let m = Metrics::new();
        m.set_peer_scores([5.0, -20_000.0, 1.0, f64::NAN]);
        m.missed_deadlines(7, 2);
        m.missed_deadlines(7, 1);
        m.set_disk(10, true, 3);
        m.store_pruned(4096);
        m.set_checkpoint(Slot(64), Slot(70));
        let text = m.encode();
        for line in [
            "sidecar_p2p_peer_score{stat=\"min\"} -20000.0",
            "sidecar_p2p_peer_score{stat=\"median\"} 1.0",
            "sidecar_p2p_peer_score{stat=\"max\"} 5.0",
            "sidecar_prover_missed_deadlines_total{prover=\"7\"} 3",
            "sidecar_disk_low 1",
            "sidecar_disk_free_bytes 10",
            "sidecar_db_size_bytes 3",
            "sidecar_store_pruned_bytes_total 4096",
            "sidecar_checkpoint_slot 64",
            "sidecar_checkpoint_age_slots 6",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn every_family_is_exported_with_its_labels() {
        let m = Metrics::new();
        m.round_ended(PhaseLabel::T3, RoundOutcomeLabel::FullProof);
        m.round_ended(PhaseLabel::T3, RoundOutcomeLabel::FullProof);
        m.message_verdict("commitment", VerdictLabel::Reject, "bad_signature");
        m.observe_proof_time(Duration::from_millis(250));
        m.observe_verify_time(VerifyKindLabel::PartialProof, Duration::from_millis(12));
        m.set_peers(4);
        m.peer_penalised("invalid_response");
        m.set_beacon_head(Slot(98), Slot(100));
        let text = m.encode();
        for line in [
            "sidecar_rounds_total{phase=\"t3\",outcome=\"full_proof\"} 2",
            "sidecar_messages_total{kind=\"commitment\",verdict=\"reject\",reason=\"bad_signature\"} 1",
            "sidecar_proof_duration_seconds_count 1",
            "sidecar_verify_duration_seconds_count{kind=\"partial_proof\"} 1",
            "sidecar_peers 4",
            "sidecar_p2p_peer_penalties_total{reason=\"invalid_response\"} 1",
            "sidecar_beacon_lag_slots 2",
            "sidecar_beacon_head_slot 98",
            "# EOF",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn clones_share_values() {
        let a = Metrics::new();
        let b = a.clone();
        b.set_peers(7);
        assert!(a.encode().contains("sidecar_peers 7"));
    }
}
