//! The reconnecting event stream of [`BeaconClient::events`].

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::header::ACCEPT;
use tokio::sync::mpsc;

use super::{BeaconClient, api_error};
use crate::{
    error::{Error, Result},
    types::{ApiResponse, BeaconEvent, BlockHeaderData, BlockId, EventTopic},
};

/// An item of [`EventStream`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventStreamItem {
    /// An event of a subscribed topic.
    Event(BeaconEvent),
    /// The stream was (re)connected after a break: events may have been missed. Carries the
    /// current head header (re-read over REST once the subscription stands), so the consumer can
    /// fill the gap from it. A stream from [`BeaconClient::events_from_head`] yields it on its
    /// first connection too.
    Reconnected {
        /// The URL of the beacon node now streaming.
        url: String,
        /// The current head.
        head: Box<ApiResponse<BlockHeaderData>>,
    },
}

/// The stream returned by [`BeaconClient::events`]: never ends on its own; undecodable events
/// come through as `Err` items and the stream goes on. Dropping it stops the background task.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Result<EventStreamItem>>,
}

impl Stream for EventStream {
    type Item = Result<EventStreamItem>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Decodes a raw SSE byte stream into beacon events: the building block of the client's event
/// stream, usable on any byte source. Events split across chunks, multi-line `data:` fields,
/// `\r\n` line ends and `:` comments (keep-alives) are handled by `eventsource-stream`; events of
/// topics this crate does not model are skipped. The first transport or SSE syntax error ends
/// the stream with that error.
pub fn decode_event_stream<S, B, E>(bytes: S) -> impl Stream<Item = Result<BeaconEvent>>
where
    S: Stream<Item = std::result::Result<B, E>>,
    B: AsRef<[u8]>,
    E: std::fmt::Display,
{
    bytes.eventsource().filter_map(|item| async move {
        match item {
            Ok(event) => match event.event.parse::<EventTopic>() {
                Ok(_) => Some(BeaconEvent::decode(&event.event, &event.data)),
                Err(_) => {
                    tracing::trace!(event = %event.event, "skipping event of an unmodelled topic");
                    None
                }
            },
            Err(error) => Some(Err(Error::EventStream { reason: error.to_string() })),
        }
    })
}

/// `head_on_connect`: also yield [`EventStreamItem::Reconnected`] on the first connection.
pub(super) fn spawn(
    client: BeaconClient,
    topics: Vec<EventTopic>,
    head_on_connect: bool,
) -> EventStream {
    let (tx, rx) = mpsc::channel(256);
    if topics.is_empty() {
        // Nothing to subscribe to: one error, then the end of the stream.
        let _ = tx.try_send(Err(Error::Config {
            key: "topics",
            reason: "at least one topic is needed".into(),
        }));
        return EventStream { rx };
    }
    tokio::spawn(async move {
        tokio::select! {
            () = run(client, topics, head_on_connect, tx.clone()) => {}
            () = tx.closed() => {}
        }
    });
    EventStream { rx }
}

/// Why one connection ended.
enum Ended {
    /// The consumer dropped the stream.
    ConsumerGone,
    /// The connection broke, closed, or went silent.
    Broken(String),
}

async fn run(
    client: BeaconClient,
    topics: Vec<EventTopic>,
    head_on_connect: bool,
    tx: mpsc::Sender<Result<EventStreamItem>>,
) {
    let query = topics.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",");
    let mut failures: u32 = 0;
    // The head is re-read after every connection but the first, unless asked for then too.
    let mut connected_before = head_on_connect;
    loop {
        for base in &client.urls {
            let url = match BeaconClient::endpoint(base, &format!("eth/v1/events?topics={query}")) {
                Ok(url) => url,
                Err(error) => {
                    tracing::warn!(%error, "cannot build the event stream URL");
                    continue;
                }
            };
            let response = match connect(&client, &url).await {
                Ok(response) => response,
                Err(error) => {
                    if error.status().is_some_and(|s| (400..500).contains(&s)) {
                        // The node refuses the subscription itself (unsupported topic?).
                        tracing::warn!(%url, %error, "event stream subscription refused");
                    } else {
                        tracing::debug!(%url, %error, "event stream connection failed");
                    }
                    continue;
                }
            };
            failures = 0;
            if connected_before {
                // Events may have been missed while disconnected (or before the first
                // subscription stood): re-read the head, now that no new one can be missed.
                let path = format!("eth/v1/beacon/headers/{}", BlockId::Head);
                // One retry: a pooled connection may have died with the old stream.
                let mut head =
                    client.get_one::<ApiResponse<BlockHeaderData>>(base.clone(), &path).await;
                if head.is_err() {
                    head =
                        client.get_one::<ApiResponse<BlockHeaderData>>(base.clone(), &path).await;
                }
                match head {
                    Ok(head) => {
                        let item = EventStreamItem::Reconnected {
                            url: base.to_string(),
                            head: Box::new(head),
                        };
                        if tx.send(Ok(item)).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot re-read the head after reconnecting")
                    }
                }
            }
            connected_before = true;
            match pump(&client, response, &tx).await {
                Ended::ConsumerGone => return,
                Ended::Broken(reason) => {
                    tracing::info!(%url, %reason, "event stream ended, reconnecting")
                }
            }
        }
        let delay = client.backoff.delay(failures);
        failures = failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

async fn connect(client: &BeaconClient, url: &reqwest::Url) -> Result<reqwest::Response> {
    let request = client.http.get(url.clone()).header(ACCEPT, "text/event-stream");
    let response = match tokio::time::timeout(client.request_timeout, request.send()).await {
        Err(_) => return Err(Error::Timeout { url: url.to_string() }),
        Ok(Err(source)) => return Err(Error::Http { url: url.to_string(), source }),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        let body = tokio::time::timeout(client.request_timeout, response.bytes())
            .await
            .ok()
            .and_then(|b| b.ok())
            .unwrap_or_default();
        return Err(api_error(url, status, &body));
    }
    Ok(response)
}

/// Error of the idle-aware byte stream.
#[derive(Debug)]
enum Transport {
    Http(reqwest::Error),
    Idle(Duration),
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(e) => write!(f, "{e}"),
            Self::Idle(d) => write!(f, "no data for {d:?}"),
        }
    }
}

async fn pump(
    client: &BeaconClient,
    response: reqwest::Response,
    tx: &mpsc::Sender<Result<EventStreamItem>>,
) -> Ended {
    let idle = client.event_idle_timeout;
    // Any bytes (an event or a keep-alive comment) reset the idle timer.
    let bytes = futures::stream::unfold(Some(response.bytes_stream()), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
            Ok(Some(Err(e))) => Some((Err(Transport::Http(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(Transport::Idle(idle)), None)),
        }
    });
    let events = decode_event_stream(bytes);
    futures::pin_mut!(events);
    while let Some(item) = events.next().await {
        let item = match item {
            Ok(event) => Ok(EventStreamItem::Event(event)),
            Err(Error::EventStream { reason }) => return Ended::Broken(reason),
            Err(other) => Err(other),
        };
        if tx.send(item).await.is_err() {
            return Ended::ConsumerGone;
        }
    }
    Ended::Broken("server closed the stream".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Slot;
    use proptest::prelude::*;

    const STREAM: &str = concat!(
        ": keep-alive\n\n",
        "event: head\r\n",
        "data: {\"slot\":\"10\", \"block\":\"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf\",\n",
        "data: \"state\":\"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9\", \"epoch_transition\":false}\r\n",
        "\r\n",
        "event: attestation\n",
        "data: {}\n\n",
        ":\n\n",
        "event: block\n",
        "data: {\"slot\":\"11\",\"block\":\"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf\",\"execution_optimistic\":false}\n\n",
        "event: finalized_checkpoint\n",
        "data: {\"block\":\"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf\",\"state\":\"0x600e852a08c1200654ddf11025f1ceacb3c2e74bdd5c630cde0838b2591b69f9\",\"epoch\":\"2\"}\n\n",
    );

    fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<BeaconEvent> {
        let bytes =
            futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
        futures::executor::block_on(decode_event_stream(bytes).map(|r| r.unwrap()).collect())
    }

    #[test]
    fn decodes_multiline_data_comments_and_skips_other_topics() {
        let events = decode_chunks(vec![STREAM.as_bytes().to_vec()]);
        assert_eq!(events.len(), 3);
        let BeaconEvent::Head(head) = &events[0] else { panic!("{events:?}") };
        assert_eq!(head.slot, Slot(10));
        assert!(matches!(&events[1], BeaconEvent::Block(b) if b.slot == Slot(11)));
        assert!(matches!(&events[2], BeaconEvent::FinalizedCheckpoint(_)));
    }

    #[test]
    fn every_two_way_split_decodes_the_same() {
        let whole = decode_chunks(vec![STREAM.as_bytes().to_vec()]);
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            let parts = vec![bytes[..cut].to_vec(), bytes[cut..].to_vec()];
            assert_eq!(decode_chunks(parts), whole, "split at {cut}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_chunking_decodes_the_same(mut cuts in proptest::collection::vec(0..STREAM.len(), 0..24)) {
            cuts.sort_unstable();
            let bytes = STREAM.as_bytes();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(bytes[start..cut].to_vec());
                start = cut;
            }
            chunks.push(bytes[start..].to_vec());
            prop_assert_eq!(decode_chunks(chunks), decode_chunks(vec![bytes.to_vec()]));
        }
    }

    #[tokio::test]
    async fn no_topics_is_an_error_not_a_retry_loop() {
        let client = BeaconClient::new(["http://127.0.0.1:9"]).unwrap();
        let items: Vec<_> = client.events(&[]).collect().await;
        assert!(matches!(items.as_slice(), [Err(Error::Config { key: "topics", .. })]));
    }

    #[test]
    fn bad_event_json_is_an_item_error_and_the_stream_goes_on() {
        let text = "event: head\ndata: {not json}\n\nevent: block\ndata: {\"slot\":\"1\",\"block\":\"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf\"}\n\n";
        let bytes = futures::stream::iter([Ok::<_, std::convert::Infallible>(text.as_bytes())]);
        let items: Vec<_> = futures::executor::block_on(decode_event_stream(bytes).collect());
        assert!(matches!(items[0], Err(Error::Decode { .. })));
        assert!(matches!(items[1], Ok(BeaconEvent::Block(_))));
    }
}
