//! The sync request/response protocols over real loopback networking: both protocols, error
//! responses, the requester's size caps, the responder's rate limit, and penalties leading to
//! a ban. Every test stops itself within a bounded time.

use std::future::Future;
use std::time::Duration;

use sidecar_metrics::Metrics;
use sidecar_p2p::{
    CodecError, Error, ErrorCode, InboundRequest, Network, NetworkConfig, NetworkHandle, NodeKey,
    PeerId, RateLimit, ResponseError, ResponseResult, SyncProtocol, start_network,
};
use tokio::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(60);

fn config() -> NetworkConfig {
    NetworkConfig::loopback(NodeKey::generate().unwrap())
}

/// Polls `condition` until it holds (bounded by the test's overall time limit).
async fn until<F: Future<Output = bool>>(mut condition: impl FnMut() -> F) {
    while !condition().await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn is_connected(node: &NetworkHandle, peer: PeerId) -> bool {
    node.connected_peers().await.unwrap().contains(&peer)
}

/// Connects `a` to `b` and waits until both see the connection.
async fn connect(a: &NetworkHandle, b: &NetworkHandle) {
    a.dial(b.listen_address().clone()).await.unwrap();
    let (a_id, b_id) = (a.local_peer_id(), b.local_peer_id());
    until(|| async { is_connected(a, b_id).await && is_connected(b, a_id).await }).await;
}

/// Answers every request with `answer` (`None`: drop the reply unanswered).
fn serve(
    mut requests: mpsc::Receiver<InboundRequest>,
    answer: impl Fn(SyncProtocol, &[u8]) -> Option<ResponseResult> + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some(request) = requests.recv().await {
            if let Some(response) = answer(request.protocol, &request.payload) {
                request.reply.send(response);
            }
        }
    });
}

/// `count` chunks of `size` bytes each, as asked by a request `[count, size (u32 LE)]`.
fn chunks_as_asked(payload: &[u8]) -> Vec<Vec<u8>> {
    let count = usize::from(payload[0]);
    let size = u32::from_le_bytes(payload[1..5].try_into().unwrap()) as usize;
    (0..count).map(|i| vec![i as u8; size]).collect()
}

fn ask(count: u8, size: u32) -> Vec<u8> {
    let mut payload = vec![count];
    payload.extend_from_slice(&size.to_le_bytes());
    payload
}

async fn two_nodes(requester: NetworkConfig, responder: NetworkConfig) -> (Network, Network) {
    let a = start_network(requester, None).await.unwrap();
    let b = start_network(responder, None).await.unwrap();
    connect(&a.handle, &b.handle).await;
    (a, b)
}

#[tokio::test]
async fn requests_on_both_protocols_get_their_chunks() {
    let test = async {
        let (a, b) = two_nodes(config(), config()).await;
        let (a, b_id) = (a.handle, b.handle.local_peer_id());
        serve(b.requests, |protocol, payload| match (protocol, payload) {
            (_, b"missing") => {
                Some(Err(ResponseError::new(ErrorCode::ResourceUnavailable, "gone")))
            }
            (_, b"drop") => None,
            (SyncProtocol::RecordsByRange, payload) => Some(Ok(chunks_as_asked(payload))),
            (SyncProtocol::MessagesById, payload) => Some(Ok(vec![payload.to_vec(); 3])),
        });

        let chunks =
            a.send_request(b_id, SyncProtocol::RecordsByRange, ask(5, 1000)).await.unwrap();
        assert_eq!(chunks, chunks_as_asked(&ask(5, 1000)));
        // Large (2 MiB) chunks and an empty response.
        let chunks =
            a.send_request(b_id, SyncProtocol::RecordsByRange, ask(2, 2 << 20)).await.unwrap();
        assert_eq!(chunks, chunks_as_asked(&ask(2, 2 << 20)));
        let none = a.send_request(b_id, SyncProtocol::RecordsByRange, ask(0, 0)).await.unwrap();
        assert!(none.is_empty());

        let ids: Vec<u8> = (0..=255).collect();
        let chunks = a.send_request(b_id, SyncProtocol::MessagesById, ids.clone()).await.unwrap();
        assert_eq!(chunks, vec![ids; 3]);
        let empty = a.send_request(b_id, SyncProtocol::MessagesById, Vec::new()).await.unwrap();
        assert_eq!(empty, vec![Vec::<u8>::new(); 3]);

        // Error responses: the application's code, and a server error for a dropped reply.
        let err = a.send_request(b_id, SyncProtocol::MessagesById, b"missing".to_vec()).await;
        let Err(Error::PeerError { code, message, .. }) = err else { panic!("{err:?}") };
        assert_eq!((code, message.as_str()), (ErrorCode::ResourceUnavailable, "gone"));
        let err = a.send_request(b_id, SyncProtocol::RecordsByRange, b"drop".to_vec()).await;
        assert!(
            matches!(err, Err(Error::PeerError { code: ErrorCode::ServerError, .. })),
            "{err:?}"
        );

        // An over-cap request is refused locally.
        let big = vec![0; sidecar_p2p::MAX_REQUEST_BYTES + 1];
        let err = a.send_request(b_id, SyncProtocol::MessagesById, big).await;
        assert!(matches!(err, Err(Error::RequestTooLarge { .. })), "{err:?}");

        a.shutdown().await;
        b.handle.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test]
async fn responses_over_the_requesters_caps_are_refused() {
    let test = async {
        let mut requester = config();
        requester.reqresp.records_by_range.max_chunk_bytes = 1024;
        requester.reqresp.records_by_range.max_response_chunks = 2;
        let (a, b) = two_nodes(requester, config()).await;
        let (a, b_id) = (a.handle, b.handle.local_peer_id());
        serve(b.requests, |_, payload| Some(Ok(chunks_as_asked(payload))));

        let p = SyncProtocol::RecordsByRange;
        let err = a.send_request(b_id, p, ask(1, 1025)).await;
        assert!(
            matches!(
                err,
                Err(Error::ResponseOverCap {
                    reason: CodecError::PayloadTooLarge { len: 1025, max: 1024 },
                    ..
                })
            ),
            "{err:?}"
        );
        let err = a.send_request(b_id, p, ask(3, 10)).await;
        assert!(
            matches!(
                err,
                Err(Error::ResponseOverCap { reason: CodecError::TooManyChunks { max: 2 }, .. })
            ),
            "{err:?}"
        );
        // Within the caps, and the other protocol's defaults are untouched.
        assert_eq!(a.send_request(b_id, p, ask(2, 1024)).await.unwrap().len(), 2);
        let ok = a.send_request(b_id, SyncProtocol::MessagesById, ask(3, 4096)).await.unwrap();
        assert_eq!(ok.len(), 3);

        a.shutdown().await;
        b.handle.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test]
async fn a_flood_beyond_the_rate_limit_is_answered_rate_limited() {
    let test = async {
        let mut responder = config();
        // Four requests, then (within this test) no refill.
        responder.reqresp.rate_limit =
            RateLimit { capacity: 4, refill_interval: Duration::from_secs(3600) };
        let (a, b) = two_nodes(config(), responder).await;
        let (a, b_id) = (a.handle, b.handle.local_peer_id());
        serve(b.requests, |_, payload| Some(Ok(vec![payload.to_vec()])));

        let flood = (0..10u8).map(|i| a.send_request(b_id, SyncProtocol::RecordsByRange, vec![i]));
        let results = futures::future::join_all(flood).await;
        let served = results.iter().filter(|r| r.is_ok()).count();
        let limited = results
            .iter()
            .filter(|r| matches!(r, Err(Error::PeerError { code: ErrorCode::RateLimited, .. })))
            .count();
        assert_eq!((served, limited), (4, 6), "{results:?}");

        // The bucket is per protocol.
        let other = a.send_request(b_id, SyncProtocol::MessagesById, vec![1]).await.unwrap();
        assert_eq!(other, vec![vec![1]]);

        a.shutdown().await;
        b.handle.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test]
async fn requests_nobody_serves_get_a_server_error() {
    let test = async {
        let (a, b) = two_nodes(config(), config()).await;
        let (a, b_id) = (a.handle, b.handle.local_peer_id());
        drop(b.requests);
        let err = a.send_request(b_id, SyncProtocol::MessagesById, vec![1]).await;
        assert!(
            matches!(err, Err(Error::PeerError { code: ErrorCode::ServerError, .. })),
            "{err:?}"
        );
        a.shutdown().await;
        b.handle.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}

#[tokio::test]
async fn penalising_a_peer_five_times_disconnects_and_bans_it() {
    let test = async {
        let metrics = Metrics::new();
        let a = start_network(config(), Some(metrics.clone())).await.unwrap();
        let b = start_network(config(), None).await.unwrap();
        let (a, b) = (a.handle, b.handle);
        connect(&a, &b).await;
        let (a_id, b_id) = (a.local_peer_id(), b.local_peer_id());

        for _ in 0..4 {
            a.penalise(b_id, "test_misbehaviour").await.unwrap();
        }
        // Commands run in order: the four penalties are in, and the peer is still connected.
        assert!(is_connected(&a, b_id).await);

        a.penalise(b_id, "test_misbehaviour").await.unwrap();
        until(|| async { !is_connected(&a, b_id).await && !is_connected(&b, a_id).await }).await;
        let err = a.send_request(b_id, SyncProtocol::MessagesById, vec![1]).await;
        assert!(matches!(err, Err(Error::PeerBanned { peer }) if peer == b_id), "{err:?}");
        // The banned peer cannot come back: its connection is refused, so its request fails.
        b.dial(a.listen_address().clone()).await.unwrap();
        assert!(b.send_request(a_id, SyncProtocol::MessagesById, vec![1]).await.is_err());
        assert!(!is_connected(&a, b_id).await);

        let text = metrics.encode();
        assert!(
            text.contains("sidecar_p2p_peer_penalties_total{reason=\"test_misbehaviour\"} 5"),
            "{text}"
        );
        a.shutdown().await;
        b.shutdown().await;
    };
    tokio::time::timeout(LIMIT, test).await.expect("the test finished within its time limit");
}
