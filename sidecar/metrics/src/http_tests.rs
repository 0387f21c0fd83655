//! `/metrics` over real HTTP.

use crate::{Metrics, PhaseLabel, RoundOutcomeLabel, bind_http, serve_http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn metrics_are_served_over_http() {
    let metrics = Metrics::new();
    metrics.round_ended(PhaseLabel::T1, RoundOutcomeLabel::FullProof);
    let listener = bind_http("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_http(listener, metrics.router(), async {
        let _ = stop_rx.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("application/openmetrics-text"), "{response}");
    assert!(response.contains("sidecar_rounds_total{phase=\"t1\",outcome=\"full_proof\"} 1"));

    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}
