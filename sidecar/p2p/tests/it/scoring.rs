//! Gossipsub peer scoring over real loopback networking: a peer that floods invalid messages
//! is graylisted by its score and disconnected while an honest peer's messages still get
//! through; application penalties lower the gossipsub score; scoring configurations that
//! cannot be honoured fail the start. Every test stops itself within a bounded time; libp2p's
//! scores run on real time, but nothing here waits for a decay: an invalid message counts at
//! once.

use std::future::Future;
use std::time::Duration;

use sidecar_p2p::{
    APP_SPECIFIC_WEIGHT, Error, GRAYLIST_THRESHOLD, GossipMessage, MessageVerdict, Network,
    NetworkConfig, NetworkHandle, NodeKey, ScoringConfig, TopicRate, spawn_validation,
    start_network,
};
use tokio::sync::mpsc;

const TOPIC: &str = "scored_messages";
const LIMIT: Duration = Duration::from_secs(60);

fn config() -> NetworkConfig {
    let mut c = NetworkConfig::loopback(NodeKey::generate().unwrap());
    c.topic_prefix = "sidecar-it".into();
    c.topics = vec![TOPIC.into()];
    c.scoring.topics.push(TopicRate::new(TOPIC, 0.5, 10.0, 32));
    c
}

/// Polls `condition` until it holds (bounded by the test's overall time limit).
async fn until<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn mesh(handle: &NetworkHandle) -> usize {
    handle.mesh_peers(TOPIC).await.unwrap()
}

/// Accepts everything but payloads starting with `bad`, which it rejects; accepted payloads
/// come out of the returned receiver.
fn reject_bad(net: Network) -> (NetworkHandle, mpsc::Receiver<GossipMessage>) {
    let (accepted, _task) = spawn_validation(
        net.handle.clone(),
        net.messages,
        |m: &GossipMessage| {
            let verdict = if m.data.starts_with(b"bad") {
                MessageVerdict::Reject
            } else {
                MessageVerdict::Accept
            };
            async move { verdict }
        },
        64,
    );
    (net.handle, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_invalid_messages_is_graylisted_and_disconnected() {
    let test = async {
        // A (the flooder) and C (honest) both connect to B, which judges.
        let (a, _a_rx) = reject_bad(start_network(config(), None).await.unwrap());
        let (b, mut b_rx) = reject_bad(start_network(config(), None).await.unwrap());
        let (c, _c_rx) = reject_bad(start_network(config(), None).await.unwrap());
        a.dial(b.listen_address().clone()).await.unwrap();
        c.dial(b.listen_address().clone()).await.unwrap();
        until(|| async { mesh(&a).await == 1 && mesh(&b).await == 2 && mesh(&c).await == 1 }).await;

        // The flood, with an honest message in the middle of it. (Once B has banned A, A has
        // nobody to publish to: those publications fail.)
        for i in 0..40 {
            let _ = a.publish(TOPIC, format!("bad message {i}").into_bytes()).await;
            if i == 5 {
                c.publish(TOPIC, b"honest message 1".to_vec()).await.unwrap();
            }
        }
        let first = b_rx.recv().await.unwrap();
        assert_eq!(first.data, b"honest message 1");
        assert_eq!(first.source, c.local_peer_id());

        // Twelve rejections put A below the graylist threshold; B then bans it.
        let a_id = a.local_peer_id();
        until(|| async {
            b.is_banned(&a_id) && !b.connected_peers().await.unwrap().contains(&a_id)
        })
        .await;
        let a_score = b.gossip_score(a_id).await.unwrap().unwrap();
        assert!(a_score < GRAYLIST_THRESHOLD, "{a_score}");
        let c_score = b.gossip_score(c.local_peer_id()).await.unwrap().unwrap();
        assert!(c_score >= 0.0, "{c_score}");
        assert!(!b.is_banned(&c.local_peer_id()));
        until(|| async { a.peer_count() == 0 }).await;

        // The honest peer still gets through.
        c.publish(TOPIC, b"honest message 2".to_vec()).await.unwrap();
        let second = b_rx.recv().await.unwrap();
        assert_eq!(second.data, b"honest message 2");
        assert_eq!(b.connected_peers().await.unwrap(), vec![c.local_peer_id()]);
        for n in [&a, &b, &c] {
            n.shutdown().await;
        }
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_penalties_lower_the_gossipsub_score() {
    let test = async {
        let (a, _a_rx) = reject_bad(start_network(config(), None).await.unwrap());
        let (b, _b_rx) = reject_bad(start_network(config(), None).await.unwrap());
        a.dial(b.listen_address().clone()).await.unwrap();
        let a_id = a.local_peer_id();
        until(|| async { b.connected_peers().await.unwrap().contains(&a_id) }).await;
        let before = b.gossip_score(a_id).await.unwrap().unwrap();
        assert!(before >= 0.0, "{before}");

        // Two penalties: −20 application points, below the gossip threshold, not banned.
        b.penalise(a_id, "test").await.unwrap();
        b.penalise(a_id, "test").await.unwrap();
        let expected = -20.0 * APP_SPECIFIC_WEIGHT;
        until(|| async {
            let score = b.gossip_score(a_id).await.unwrap().unwrap();
            (score - expected).abs() <= 60.0
        })
        .await;
        assert!(!b.is_banned(&a_id));
        assert!(b.connected_peers().await.unwrap().contains(&a_id));
        a.shutdown().await;
        b.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test]
async fn a_scoring_configuration_libp2p_refuses_fails_the_start() {
    // A decay interval (the slot) under 1 s.
    let mut fast = config();
    fast.scoring.slot = Duration::from_millis(500);
    let err = start_network(fast, None).await.unwrap_err();
    assert!(matches!(err, Error::PeerScoring { .. }), "{err}");
    assert!(err.to_string().contains("decay_interval"), "{err}");

    // A subscribed topic without an expected rate would go unscored.
    let mut unscored = config();
    unscored.topics.push("unscored".into());
    let err = start_network(unscored, None).await.unwrap_err();
    assert!(matches!(err, Error::PeerScoring { .. }), "{err}");
    assert!(err.to_string().contains("unscored"), "{err}");

    // Mesh sizes gossipsub refuses are a configuration error too.
    let mut mesh = config();
    mesh.scoring = ScoringConfig { mesh_n_low: 10, ..mesh.scoring };
    let err = start_network(mesh, None).await.unwrap_err();
    assert!(matches!(err, Error::P2p { action: "configure gossipsub", .. }), "{err}");
}
