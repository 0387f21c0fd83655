//! A client that follows any standard beacon node over REST and server-sent events.
//!
//! Several beacon node URLs may be given: each request tries them in order and returns the first
//! good answer. Every request has a timeout. Error statuses surface the node's `{code, message}`
//! body as [`Error::Api`]. The event stream ([`BeaconClient::events`]) parses SSE with
//! `eventsource-stream` (events split across chunks, multi-line data, comments), reconnects with
//! exponential backoff, and on every reconnect re-reads the head so the consumer can fill the gap.

mod events;

use std::time::Duration;

use reqwest::{StatusCode, Url, header::ACCEPT};
use serde::de::DeserializeOwned;

pub use events::{EventStream, EventStreamItem, decode_event_stream};

use crate::{
    error::{Error, Result},
    types::{
        ApiResponse, BlockHeaderData, BlockId, Epoch, ErrorMessage, EventTopic,
        FinalityCheckpoints, GenesisData, Health, ProposerDuty, RandaoData, SignedBeaconBlock,
        SpecConfig, StateId, SyncingData,
    },
};

/// Exponential backoff between event-stream reconnection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first retry.
    pub initial: Duration,
    /// The largest delay between retries.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_millis(250), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based): `initial * 2^attempt`, capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }
}

/// Builder of a [`BeaconClient`].
#[derive(Debug, Clone)]
pub struct BeaconClientBuilder {
    urls: Vec<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
    event_idle_timeout: Duration,
    backoff: Backoff,
}

impl Default for BeaconClientBuilder {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            event_idle_timeout: Duration::from_secs(120),
            backoff: Backoff::default(),
        }
    }
}

impl BeaconClientBuilder {
    /// Adds a beacon node URL (`http://host:port`, optionally with a path prefix); URLs are tried
    /// in the order they were added.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Adds several beacon node URLs, in order.
    #[must_use]
    pub fn urls<I: IntoIterator<Item = S>, S: Into<String>>(mut self, urls: I) -> Self {
        self.urls.extend(urls.into_iter().map(Into::into));
        self
    }

    /// The timeout of each REST request, per URL (default 10 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The TCP connect timeout (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the event stream may stay silent (no event, no keep-alive comment) before it is
    /// considered dead and reconnected (default 120 s).
    #[must_use]
    pub fn event_idle_timeout(mut self, timeout: Duration) -> Self {
        self.event_idle_timeout = timeout;
        self
    }

    /// The reconnection backoff of the event stream.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Builds the client; fails if no URL was given or one does not parse.
    pub fn build(self) -> Result<BeaconClient> {
        if self.urls.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let urls = self.urls.iter().map(|raw| parse_base_url(raw)).collect::<Result<Vec<_>>>()?;
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|source| Error::Http { url: self.urls.join(","), source })?;
        Ok(BeaconClient {
            http,
            urls,
            request_timeout: self.request_timeout,
            event_idle_timeout: self.event_idle_timeout,
            backoff: self.backoff,
        })
    }
}

pub(crate) fn parse_base_url(raw: &str) -> Result<Url> {
    let mut url = Url::parse(raw)
        .map_err(|e| Error::InvalidUrl { url: raw.to_owned(), reason: e.to_string() })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::InvalidUrl {
            url: raw.to_owned(),
            reason: "scheme must be http or https".into(),
        });
    }
    if url.cannot_be_a_base() {
        return Err(Error::InvalidUrl { url: raw.to_owned(), reason: "not a base URL".into() });
    }
    // A trailing slash makes `join` keep any path prefix (`http://host/beacon/`).
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// A Beacon API client over one or more beacon nodes, tried in order.
#[derive(Debug, Clone)]
pub struct BeaconClient {
    http: reqwest::Client,
    urls: Vec<Url>,
    request_timeout: Duration,
    event_idle_timeout: Duration,
    backoff: Backoff,
}

/// Whether an error from one beacon node should make the client try the next one.
///
/// A node that understood the request and refused it (400, 405, 406, 415, ...) would be refused
/// by every node; anything else (transport failures, timeouts, 404 from a node that lags, 5xx,
/// an undecodable body) may be that node's problem alone.
fn try_next(error: &Error) -> bool {
    match error {
        Error::Api { status, .. } => *status == 404 || *status >= 500,
        _ => true,
    }
}

impl BeaconClient {
    /// A builder with default timeouts.
    pub fn builder() -> BeaconClientBuilder {
        BeaconClientBuilder::default()
    }

    /// A client over these URLs with default timeouts.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(urls: I) -> Result<Self> {
        Self::builder().urls(urls).build()
    }

    /// The configured base URLs, in order.
    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    fn endpoint(base: &Url, path: &str) -> Result<Url> {
        base.join(path.trim_start_matches('/'))
            .map_err(|e| Error::InvalidUrl { url: format!("{base}{path}"), reason: e.to_string() })
    }

    /// Runs `op` against each URL in order until one succeeds or gives a definitive answer.
    pub(crate) async fn with_fallback<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut(Url) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut errors = Vec::new();
        for base in &self.urls {
            match op(base.clone()).await {
                Ok(value) => return Ok(value),
                Err(error) if try_next(&error) => {
                    tracing::debug!(url = %base, %error, "beacon node failed, trying the next");
                    errors.push(error);
                }
                Err(error) => return Err(error),
            }
        }
        if errors.len() == 1 {
            // A single node: its own error is the clearest answer.
            return Err(errors.remove(0));
        }
        Err(Error::AllEndpointsFailed { errors })
    }

    async fn send(&self, url: &Url) -> Result<reqwest::Response> {
        self.send_request(url, self.http.get(url.clone()).header(ACCEPT, "application/json")).await
    }

    async fn send_request(
        &self,
        url: &Url,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        match tokio::time::timeout(self.request_timeout, request.send()).await {
            Err(_) => Err(Error::Timeout { url: url.to_string() }),
            Ok(Err(source)) if source.is_timeout() => Err(Error::Timeout { url: url.to_string() }),
            Ok(Err(source)) => Err(Error::Http { url: url.to_string(), source }),
            Ok(Ok(response)) => Ok(response),
        }
    }

    /// Sends one request to one node and returns the body of a success status; an error status
    /// becomes [`Error::Api`].
    pub(crate) async fn request_one(
        &self,
        base: &Url,
        method: reqwest::Method,
        path: &str,
        accept: &'static str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<bytes::Bytes> {
        let url = Self::endpoint(base, path)?;
        let mut request = self.http.request(method, url.clone()).header(ACCEPT, accept);
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let response = self.send_request(&url, request).await?;
        let status = response.status();
        let body = match tokio::time::timeout(self.request_timeout, response.bytes()).await {
            Err(_) => return Err(Error::Timeout { url: url.to_string() }),
            Ok(Err(source)) => return Err(Error::Http { url: url.to_string(), source }),
            Ok(Ok(body)) => body,
        };
        if !status.is_success() {
            return Err(api_error(&url, status, &body));
        }
        Ok(body)
    }

    /// GETs `path` from one node and decodes a JSON body of type `T`.
    async fn get_one<T: DeserializeOwned>(&self, base: Url, path: &str) -> Result<T> {
        let body =
            self.request_one(&base, reqwest::Method::GET, path, "application/json", None).await?;
        serde_json::from_slice(&body)
            .map_err(|source| Error::Decode { what: format!("response of {base}{path}"), source })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.with_fallback(|base| self.get_one(base, path)).await
    }

    /// `GET /eth/v1/beacon/genesis`.
    pub async fn genesis(&self) -> Result<GenesisData> {
        Ok(self.get::<ApiResponse<GenesisData>>("eth/v1/beacon/genesis").await?.data)
    }

    /// `GET /eth/v1/config/spec`.
    pub async fn spec(&self) -> Result<SpecConfig> {
        Ok(self.get::<ApiResponse<SpecConfig>>("eth/v1/config/spec").await?.data)
    }

    /// `GET /eth/v1/node/syncing`.
    pub async fn syncing(&self) -> Result<SyncingData> {
        Ok(self.get::<ApiResponse<SyncingData>>("eth/v1/node/syncing").await?.data)
    }

    /// `GET /eth/v1/node/health` of the first node that answers at all; the health is carried
    /// by the status code (a 503 is a [`Health::Unhealthy`] answer, not an error).
    pub async fn health(&self) -> Result<Health> {
        self.with_fallback(|base| async move {
            let url = Self::endpoint(&base, "eth/v1/node/health")?;
            let response = self.send(&url).await?;
            Ok(Health::from_status(response.status().as_u16()))
        })
        .await
    }

    /// `GET /eth/v1/beacon/headers/{block_id}`.
    pub async fn header(&self, block: BlockId) -> Result<ApiResponse<BlockHeaderData>> {
        self.get(&format!("eth/v1/beacon/headers/{block}")).await
    }

    /// `GET /eth/v2/beacon/blocks/{block_id}` (JSON; the fork is read from `version`).
    pub async fn block(&self, block: BlockId) -> Result<ApiResponse<SignedBeaconBlock>> {
        self.get(&format!("eth/v2/beacon/blocks/{block}")).await
    }

    /// `GET /eth/v1/beacon/states/{state_id}/randao[?epoch=]`.
    pub async fn randao(
        &self,
        state: StateId,
        epoch: Option<Epoch>,
    ) -> Result<ApiResponse<RandaoData>> {
        let query = epoch.map(|e| format!("?epoch={e}")).unwrap_or_default();
        self.get(&format!("eth/v1/beacon/states/{state}/randao{query}")).await
    }

    /// `GET /eth/v1/beacon/states/{state_id}/finality_checkpoints`.
    pub async fn finality_checkpoints(
        &self,
        state: StateId,
    ) -> Result<ApiResponse<FinalityCheckpoints>> {
        self.get(&format!("eth/v1/beacon/states/{state}/finality_checkpoints")).await
    }

    /// `GET /eth/v1/validator/duties/proposer/{epoch}` (with `dependent_root`).
    pub async fn proposer_duties(&self, epoch: Epoch) -> Result<ApiResponse<Vec<ProposerDuty>>> {
        self.get(&format!("eth/v1/validator/duties/proposer/{epoch}")).await
    }

    /// Subscribes to `GET /eth/v1/events?topics=...` on the first node that accepts, forever:
    /// the stream reconnects (trying the URLs in order) with backoff, and after every reconnect
    /// yields [`EventStreamItem::Reconnected`] with the current head. With no topic it yields one
    /// [`Error::Config`] and ends. Requires a Tokio runtime; dropping the stream stops it.
    pub fn events(&self, topics: &[EventTopic]) -> EventStream {
        events::spawn(self.clone(), topics.to_vec(), false)
    }

    /// Like [`BeaconClient::events`], but yields [`EventStreamItem::Reconnected`] on the first
    /// connection too, with the head read once the subscription stands: a consumer that starts
    /// from that head misses no block (reading the head before subscribing leaves a gap in which
    /// a new head is neither read nor streamed).
    pub fn events_from_head(&self, topics: &[EventTopic]) -> EventStream {
        events::spawn(self.clone(), topics.to_vec(), true)
    }
}

/// Builds [`Error::Api`] from an error response, keeping the node's `{code, message}` body or
/// synthesising one from the status when the body is not one.
fn api_error(url: &Url, status: StatusCode, body: &[u8]) -> Error {
    let body = serde_json::from_slice::<ErrorMessage>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_owned()
        } else {
            text.chars().take(512).collect()
        };
        ErrorMessage::new(status.as_u16(), message)
    });
    Error::Api { url: url.to_string(), status: status.as_u16(), body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        assert_eq!(b.delay(0), Duration::from_millis(100));
        assert_eq!(b.delay(1), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(800));
        assert_eq!(b.delay(4), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn urls_keep_their_path_prefix() {
        let base = parse_base_url("http://localhost:5052/beacon").unwrap();
        let url = BeaconClient::endpoint(&base, "eth/v1/node/syncing").unwrap();
        assert_eq!(url.as_str(), "http://localhost:5052/beacon/eth/v1/node/syncing");
        assert!(matches!(parse_base_url("localhost:5052"), Err(Error::InvalidUrl { .. })));
        assert!(matches!(parse_base_url("ftp://x"), Err(Error::InvalidUrl { .. })));
        assert!(matches!(BeaconClient::new(Vec::<String>::new()), Err(Error::NoEndpoints)));
    }

    #[test]
    fn api_errors_keep_the_body_or_synthesise_one() {
        let url = Url::parse("http://x/").unwrap();
        let e =
            api_error(&url, StatusCode::NOT_FOUND, br#"{"code":404,"message":"Block not found"}"#);
        assert_eq!(e.api_error().unwrap().message, "Block not found");
        let e = api_error(&url, StatusCode::BAD_GATEWAY, b"");
        assert_eq!(e.api_error().unwrap(), &ErrorMessage::new(502, "Bad Gateway"));
        assert_eq!(e.status(), Some(502));
    }

    #[test]
    fn fallback_policy() {
        let api =
            |status| Error::Api { url: String::new(), status, body: ErrorMessage::new(status, "") };
        assert!(try_next(&api(404)));
        assert!(try_next(&api(503)));
        assert!(!try_next(&api(400)));
        assert!(try_next(&Error::Timeout { url: String::new() }));
    }
}
