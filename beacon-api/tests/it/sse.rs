//! The client's event stream against hand-made SSE servers on loopback: bytes split into tiny
//! HTTP chunks, keep-alive comments, multi-line data, silent servers, closed connections.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use beacon_api::{Backoff, BeaconClient, BeaconEvent, EventStreamItem, EventTopic, Slot};
use futures::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const ROOT: &str = "0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf";

fn events_text(first_slot: u64, count: u64) -> String {
    let mut text = String::from(": hello\n\n");
    for slot in first_slot..first_slot + count {
        // `data` split over two lines, CRLF line ends, a comment between events.
        text.push_str(&format!(
            "event: block\r\ndata: {{\"slot\":\"{slot}\",\r\ndata: \"block\":\"{ROOT}\"}}\r\n\r\n:keep-alive\n\n"
        ));
    }
    text
}

/// Reads the request head (up to the blank line).
async fn read_request(socket: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Writes an SSE response whose body goes out in HTTP chunks of 1 to 7 bytes, each flushed.
async fn write_chunked(socket: &mut TcpStream, body: &str) {
    socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let bytes = body.as_bytes();
    let mut at = 0;
    let mut size = 1;
    while at < bytes.len() {
        let end = (at + size).min(bytes.len());
        let chunk = &bytes[at..end];
        socket.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        socket.write_all(chunk).await.unwrap();
        socket.write_all(b"\r\n").await.unwrap();
        socket.flush().await.unwrap();
        tokio::task::yield_now().await;
        at = end;
        size = size % 7 + 1;
    }
}

fn client(url: String, idle: Duration) -> BeaconClient {
    BeaconClient::builder()
        .url(url)
        .event_idle_timeout(idle)
        .request_timeout(Duration::from_secs(5))
        .backoff(Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(50) })
        .build()
        .unwrap()
}

async fn next(stream: &mut beacon_api::EventStream) -> EventStreamItem {
    tokio::time::timeout(Duration::from_secs(20), stream.next()).await.unwrap().unwrap().unwrap()
}

const HEADER_JSON: &str = r#"{"execution_optimistic":false,"finalized":false,"data":{"root":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf","canonical":true,"header":{"message":{"slot":"42","proposer_index":"1","parent_root":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf","state_root":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf","body_root":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf"},"signature":"0x000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}}}"#;

/// Serves: connection 1 streams events 1..=5 in tiny chunks then closes; every later event-stream
/// connection streams 6..=8 and stays open; header requests get slot 42.
async fn flaky_server(listener: TcpListener, connections: Arc<AtomicUsize>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let request = read_request(&mut socket).await;
            if request.starts_with("GET /eth/v1/beacon/headers/head") {
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{HEADER_JSON}",
                    HEADER_JSON.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                return;
            }
            assert!(request.starts_with("GET /eth/v1/events?topics=block"), "{request}");
            let n = connections.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                write_chunked(&mut socket, &events_text(1, 5)).await;
                let _ = socket.write_all(b"0\r\n\r\n").await;
            } else {
                write_chunked(&mut socket, &events_text(6, 3)).await;
                // Stay open until the client goes away.
                let mut sink = [0u8; 64];
                while socket.read(&mut sink).await.unwrap_or(0) > 0 {}
            }
        });
    }
}

#[tokio::test]
async fn tiny_chunks_comments_and_reconnect_after_close() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(flaky_server(listener, Arc::clone(&connections)));

    let c = client(url, Duration::from_secs(30));
    let mut stream = c.events(&[EventTopic::Block]);
    let mut slots = Vec::new();
    let mut reconnects = Vec::new();
    while slots.len() < 8 {
        match next(&mut stream).await {
            EventStreamItem::Event(BeaconEvent::Block(b)) => slots.push(b.slot.get()),
            EventStreamItem::Reconnected { head, .. } => {
                reconnects.push(head.data.header.message.slot)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(slots, (1..=8).collect::<Vec<_>>());
    assert_eq!(reconnects, vec![Slot(42)]);
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    server.abort();
}

#[tokio::test]
async fn a_silent_stream_is_reconnected_after_the_idle_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let request = read_request(&mut socket).await;
                if request.starts_with("GET /eth/v1/beacon/headers/head") {
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{HEADER_JSON}",
                        HEADER_JSON.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    return;
                }
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Headers, then silence: no event, no keep-alive.
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                        .await;
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                } else {
                    write_chunked(&mut socket, &events_text(7, 1)).await;
                    let mut sink = [0u8; 64];
                    while socket.read(&mut sink).await.unwrap_or(0) > 0 {}
                }
            });
        }
    });
    let c = client(url, Duration::from_millis(300));
    let mut stream = c.events(&[EventTopic::Block]);
    assert!(matches!(next(&mut stream).await, EventStreamItem::Reconnected { .. }));
    let EventStreamItem::Event(BeaconEvent::Block(b)) = next(&mut stream).await else {
        panic!("block expected")
    };
    assert_eq!(b.slot, Slot(7));
    server.abort();
}

#[tokio::test]
async fn error_statuses_on_subscribe_are_retried() {
    // First subscription answers 503 with a Beacon API body, the second streams.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            n += 1;
            let first = n == 1;
            tokio::spawn(async move {
                let _ = read_request(&mut socket).await;
                if first {
                    let body = r#"{"code":503,"message":"Beacon node is currently syncing"}"#;
                    let response = format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                } else {
                    write_chunked(&mut socket, &events_text(3, 1)).await;
                    let mut sink = [0u8; 64];
                    while socket.read(&mut sink).await.unwrap_or(0) > 0 {}
                }
            });
        }
    });
    let c = client(url, Duration::from_secs(30));
    let mut stream = c.events(&[EventTopic::Block]);
    // The failed attempt happened before any connection, so there is no gap to report.
    let EventStreamItem::Event(BeaconEvent::Block(b)) = next(&mut stream).await else {
        panic!("block expected")
    };
    assert_eq!(b.slot, Slot(3));
    server.abort();
}
