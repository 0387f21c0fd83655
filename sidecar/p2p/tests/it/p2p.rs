//! Gossip over real loopback networking: discovery through a discv5 bootnode, delivery, and
//! validation before forwarding. Every test stops itself within a bounded time.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use sidecar_p2p::{
    GossipMessage, MessageVerdict, Network, NetworkConfig, NetworkHandle, NodeKey, TopicRate,
    spawn_validation, start_network,
};
use tokio::sync::mpsc;

const TOPIC: &str = "test_messages";
const LIMIT: Duration = Duration::from_secs(90);

fn config(discovery: bool, bootnodes: Vec<sidecar_p2p::Enr>) -> NetworkConfig {
    let mut c = NetworkConfig::new(NodeKey::generate().unwrap());
    c.listen_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    c.tcp_port = 0;
    c.discovery_port = 0;
    c.enable_discovery = discovery;
    c.bootnodes = bootnodes;
    c.topic_prefix = "sidecar-it".into();
    c.topics = vec![TOPIC.into()];
    c.scoring.topics.push(TopicRate::new(TOPIC, 0.5, 10.0, 32));
    c.heartbeat_interval = Duration::from_millis(200);
    c.discovery_interval = Duration::from_millis(300);
    c
}

/// Polls `condition` until it holds (bounded by the test's overall time limit).
async fn until<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mesh(handle: &NetworkHandle) -> usize {
    handle.mesh_peers(TOPIC).await.unwrap()
}

fn accept_all(net: Network) -> (NetworkHandle, mpsc::Receiver<GossipMessage>) {
    let (accepted, _task) = spawn_validation(
        net.handle.clone(),
        net.messages,
        |_: &GossipMessage| async { MessageVerdict::Accept },
        16,
    );
    (net.handle, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_discover_each_other_through_a_bootnode_and_gossip() {
    let test = async {
        let a = start_network(config(true, vec![]), None).await.unwrap();
        let boot = a.handle.local_enr().unwrap().clone();
        let b = start_network(config(true, vec![boot.clone()]), None).await.unwrap();
        let c = start_network(config(true, vec![boot]), None).await.unwrap();
        let (a, mut a_rx) = accept_all(a);
        let (b, _b_rx) = accept_all(b);
        let (c, mut c_rx) = accept_all(c);

        // B and C only know A; they must find each other through discovery.
        until(|| async { [&a, &b, &c].iter().all(|n| n.peer_count() == 2) }).await;
        until(|| async { mesh(&a).await == 2 && mesh(&b).await == 2 && mesh(&c).await == 2 }).await;

        let id = b.publish(TOPIC, b"hello from b".to_vec()).await.unwrap();
        for rx in [&mut a_rx, &mut c_rx] {
            let got = rx.recv().await.unwrap();
            assert_eq!(got.data, b"hello from b");
            assert_eq!(got.id, id);
            assert_eq!(got.topic.to_string(), "/sidecar-it/test_messages/ssz_snappy");
        }
        for n in [&a, &b, &c] {
            n.shutdown().await;
        }
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_messages_are_not_forwarded() {
    let test = async {
        // A line: A - B - C, no discovery, so C can only hear A's messages through B.
        let a = start_network(config(false, vec![]), None).await.unwrap();
        let b = start_network(config(false, vec![]), None).await.unwrap();
        let c = start_network(config(false, vec![]), None).await.unwrap();
        a.handle.dial(b.handle.listen_address().clone()).await.unwrap();
        c.handle.dial(b.handle.listen_address().clone()).await.unwrap();

        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
        let (b_handle, _b_accepted) = {
            let (accepted, _task) = spawn_validation(
                b.handle.clone(),
                b.messages,
                move |m: &GossipMessage| {
                    let verdict = if m.data.starts_with(b"bad") {
                        MessageVerdict::Reject
                    } else {
                        MessageVerdict::Accept
                    };
                    let _ = seen_tx.send((m.data.clone(), verdict));
                    async move { verdict }
                },
                16,
            );
            (b.handle, accepted)
        };
        let (a, _a_rx) = accept_all(a);
        let (c, mut c_rx) = accept_all(c);

        until(|| async {
            mesh(&a).await == 1 && mesh(&b_handle).await == 2 && mesh(&c).await == 1
        })
        .await;
        assert_eq!(a.peer_count(), 1);
        assert_eq!(c.peer_count(), 1);

        a.publish(TOPIC, b"bad message".to_vec()).await.unwrap();
        a.publish(TOPIC, b"good message".to_vec()).await.unwrap();

        // B saw both, in order, and rejected the first.
        assert_eq!(
            seen_rx.recv().await.unwrap(),
            (b"bad message".to_vec(), MessageVerdict::Reject)
        );
        assert_eq!(
            seen_rx.recv().await.unwrap(),
            (b"good message".to_vec(), MessageVerdict::Accept)
        );
        // C accepts everything it gets, so had B forwarded the rejected message (which it
        // received first) C would see it first. It sees only the good one.
        let first = c_rx.recv().await.unwrap();
        assert_eq!(first.data, b"good message");
        assert_eq!(first.source, b_handle.local_peer_id());
        for n in [&a, &b_handle, &c] {
            n.shutdown().await;
        }
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

/// Everything the tracing subscriber writes, for the test below.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A lone node (discovery on, no bootnodes: the first node of a network) has nobody to ask and
/// stays quiet instead of warning at every discovery interval; once another node contacts it,
/// both find each other.
#[tokio::test]
async fn a_lone_node_does_not_warn_until_a_peer_arrives() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    // The runtime is single-threaded: every task of the networks runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let test = async {
        let lone = start_network(config(true, vec![]), None).await.unwrap();
        // Five discovery intervals.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!log.contains("known_closest_peers"), "a lone node warned:\n{log}");

        let boot = lone.handle.local_enr().unwrap().clone();
        let other = start_network(config(true, vec![boot]), None).await.unwrap();
        until(|| async { lone.handle.peer_count() == 1 && other.handle.peer_count() == 1 }).await;
        lone.handle.shutdown().await;
        other.handle.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test]
async fn a_taken_tcp_port_is_an_error() {
    let first = start_network(config(false, vec![]), None).await.unwrap();
    let port = first
        .handle
        .listen_address()
        .iter()
        .find_map(|p| match p {
            sidecar_p2p::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let mut second = config(false, vec![]);
    second.tcp_port = port;
    let err = start_network(second, None).await.unwrap_err();
    assert!(matches!(err, sidecar_p2p::Error::P2p { action: "listen", .. }), "{err}");
    first.handle.shutdown().await;
}
