//! The extension's axum router.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, Path, Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt};
use phase_engine::{
    MessageKind, ProtocolMessage, ProverIndex, SignedAggProof, SignedCommitment, SignedDecline,
    SignedFullProof, SignedPartialProof, SignedProverRegistration,
};
use serde::{Serialize, de::DeserializeOwned};
use tokio::sync::{broadcast, watch};

use super::{backend::ProvingBackend, types::ProvingTopic};
use crate::{
    error::Error,
    http::{ApiError, ServerHandle, method_not_allowed, not_found, wants_ssz},
    types::{ApiResponse, BlockId},
};

/// The prefix of every extension route.
pub const PROVING_PREFIX: &str = "/eth/v1/proving";

/// Every route of the extension, as (method, path) with OpenAPI-style `{parameters}`.
pub const PROVING_ROUTES: &[(&str, &str)] = &[
    ("POST", "/eth/v1/proving/provers"),
    ("POST", "/eth/v1/proving/commitments"),
    ("POST", "/eth/v1/proving/declines"),
    ("POST", "/eth/v1/proving/partial_proofs"),
    ("POST", "/eth/v1/proving/full_proofs"),
    ("POST", "/eth/v1/proving/agg_proofs"),
    ("GET", "/eth/v1/proving/rounds/{block_id}"),
    ("GET", "/eth/v1/proving/rounds/{block_id}/partial_proofs"),
    ("GET", "/eth/v1/proving/provers/{prover_index}/duties"),
    ("GET", "/eth/v1/proving/proofs/{block_id}"),
    ("GET", "/eth/v1/proving/ledgers/{block_id}"),
    ("GET", "/eth/v1/proving/balances"),
    ("GET", "/eth/v1/node/syncing"),
    ("GET", "/eth/v1/proving/registry"),
    ("GET", "/eth/v1/proving/reward_config"),
    ("POST", "/eth/v1/proving/verify"),
    ("GET", "/eth/v1/proving/events"),
    ("GET", "/eth/v1/proving/openapi.json"),
];

/// The OpenAPI 3 document of the extension (`beacon-api/openapi.json`), as served.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// Settings of the extension server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvingServerConfig {
    /// Largest request body accepted, in bytes (larger ones get 413). The default, 40 MiB, fits
    /// a 16 MiB bundle as JSON hex.
    pub body_limit: usize,
    /// Interval of SSE keep-alive comments.
    pub keep_alive: Duration,
}

impl Default for ProvingServerConfig {
    fn default() -> Self {
        Self { body_limit: 40 * 1024 * 1024, keep_alive: Duration::from_secs(15) }
    }
}

struct AppState<B> {
    backend: Arc<B>,
    keep_alive: Duration,
    shutdown: watch::Receiver<bool>,
}

impl<B> Clone for AppState<B> {
    fn clone(&self) -> Self {
        Self {
            backend: Arc::clone(&self.backend),
            keep_alive: self.keep_alive,
            shutdown: self.shutdown.clone(),
        }
    }
}

/// The extension's router over `backend` (for embedding in the node's server). Its event
/// streams never end on their own; use [`serve`] for a server that shuts down cleanly.
pub fn proving_router<B: ProvingBackend>(backend: Arc<B>, config: &ProvingServerConfig) -> Router {
    // The sender is dropped at once: a closed channel reads as "never shut down".
    build(backend, config, watch::channel(false).1)
}

/// Serves the extension on `addr` (port 0 for any free port).
pub async fn serve<B: ProvingBackend>(
    backend: Arc<B>,
    config: ProvingServerConfig,
    addr: std::net::SocketAddr,
) -> crate::Result<ServerHandle> {
    let handle =
        ServerHandle::start(addr, move |shutdown| build(backend, &config, shutdown)).await?;
    tracing::info!(addr = %handle.addr(), "proving extension API listening");
    Ok(handle)
}

fn build<B: ProvingBackend>(
    backend: Arc<B>,
    config: &ProvingServerConfig,
    shutdown: watch::Receiver<bool>,
) -> Router {
    let state = AppState { backend, keep_alive: config.keep_alive, shutdown };
    Router::new()
        .route("/eth/v1/proving/provers", post(register::<B>))
        .route("/eth/v1/proving/commitments", post(submit::<B, SignedCommitment>))
        .route("/eth/v1/proving/declines", post(submit::<B, SignedDecline>))
        .route("/eth/v1/proving/partial_proofs", post(submit::<B, SignedPartialProof>))
        .route("/eth/v1/proving/full_proofs", post(submit::<B, SignedFullProof>))
        .route("/eth/v1/proving/agg_proofs", post(submit::<B, SignedAggProof>))
        .route("/eth/v1/proving/rounds/{block_id}", get(rounds::<B>))
        .route("/eth/v1/proving/rounds/{block_id}/partial_proofs", get(partial_proofs::<B>))
        .route("/eth/v1/proving/provers/{prover_index}/duties", get(duties::<B>))
        .route("/eth/v1/proving/proofs/{block_id}", get(proof::<B>))
        .route("/eth/v1/proving/ledgers/{block_id}", get(ledger::<B>))
        .route("/eth/v1/proving/balances", get(balances::<B>))
        .route("/eth/v1/node/syncing", get(syncing::<B>))
        .route("/eth/v1/proving/registry", get(registry::<B>))
        .route("/eth/v1/proving/reward_config", get(reward_config::<B>))
        .route("/eth/v1/proving/verify", post(verify::<B>))
        .route("/eth/v1/proving/events", get(events::<B>))
        .route("/eth/v1/proving/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .with_state(state)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound { what } => ApiError::not_found(format!("{what} not found")),
            Error::InvalidInput { reason } => ApiError::bad_request(reason),
            Error::InvalidId { input } => {
                ApiError::bad_request(format!("Invalid block ID: {input}"))
            }
            Error::Conflict { reason } => ApiError::new(StatusCode::CONFLICT, reason),
            Error::Unavailable { reason } => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason),
            other => {
                tracing::error!(error = %other, "proving backend failed");
                ApiError::internal("Internal error")
            }
        }
    }
}

/// How a request body is encoded.
enum BodyEncoding {
    Json,
    Ssz,
}

fn body_encoding(headers: &HeaderMap) -> Result<BodyEncoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(BodyEncoding::Json) };
    let media =
        value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(BodyEncoding::Json),
        "application/octet-stream" => Ok(BodyEncoding::Ssz),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported content type {other:?}: use application/json or application/octet-stream"
            ),
        )),
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "Request body is larger than the server's limit")
        } else {
            ApiError::new(
                status,
                format!("Cannot read the request body: {}", rejection.body_text()),
            )
        }
    })
}

fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

fn decode_ssz<T: ssz::Decode>(bytes: &[u8]) -> Result<T, ApiError> {
    T::from_ssz_bytes(bytes).map_err(|e| ApiError::bad_request(format!("Invalid SSZ body: {e:?}")))
}

fn decode_body<T: DeserializeOwned + ssz::Decode>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let encoding = body_encoding(headers)?;
    let bytes = body_bytes(body)?;
    match encoding {
        BodyEncoding::Json => decode_json(&bytes),
        BodyEncoding::Ssz => decode_ssz(&bytes),
    }
}

fn json<T: Serialize>(data: T) -> Response {
    Json(ApiResponse::new(data)).into_response()
}

/// JSON, or SSZ when the `Accept` header prefers `application/octet-stream`.
fn json_or_ssz<T: Serialize + ssz::Encode>(headers: &HeaderMap, data: T) -> Response {
    if wants_ssz(headers) {
        let mut response = data.as_ssz_bytes().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        response
    } else {
        json(data)
    }
}

/// For data without an SSZ form: 406 when only SSZ is acceptable.
fn json_only<T: Serialize>(headers: &HeaderMap, data: T) -> Result<Response, ApiError> {
    if wants_ssz(headers) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "This resource is only available as application/json",
        ));
    }
    Ok(json(data))
}

fn parse_block_id(raw: &str) -> Result<BlockId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request(format!("Invalid block ID: {raw}")))
}

async fn register<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let registration: SignedProverRegistration = decode_body(&headers, body)?;
    Ok(json(s.backend.register_prover(registration).await?))
}

async fn submit<B, M>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError>
where
    B: ProvingBackend,
    M: DeserializeOwned + ssz::Decode + Into<ProtocolMessage>,
{
    let message: M = decode_body(&headers, body)?;
    Ok(json(s.backend.submit(message.into()).await?))
}

async fn rounds<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw)?;
    json_only(&headers, s.backend.rounds(id).await?)
}

async fn partial_proofs<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw)?;
    Ok(json_or_ssz(&headers, s.backend.partial_proofs(id).await?))
}

async fn duties<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let index: u64 =
        raw.parse().map_err(|_| ApiError::bad_request(format!("Invalid prover index: {raw}")))?;
    json_only(&headers, s.backend.prover_duties(ProverIndex(index)).await?)
}

async fn proof<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw)?;
    Ok(json_or_ssz(&headers, s.backend.finalized_proof(id).await?))
}

async fn ledger<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw)?;
    json_only(&headers, s.backend.ledger(id).await?)
}

async fn balances<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    json_only(&headers, s.backend.balances().await?)
}

async fn syncing<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    json_only(&headers, s.backend.syncing().await?)
}

async fn registry<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    json_only(&headers, s.backend.registry().await?)
}

async fn reward_config<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    json_only(&headers, s.backend.reward_config().await?)
}

fn parse_kind(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Option<MessageKind>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    let Some((_, raw)) = pairs.into_iter().find(|(k, _)| k == "kind") else { return Ok(None) };
    serde_json::from_value(serde_json::Value::String(raw.clone()))
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("Invalid message kind: {raw}")))
}

async fn verify<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let encoding = body_encoding(&headers)?;
    let kind = parse_kind(query)?;
    let bytes = body_bytes(body)?;
    let message = match encoding {
        // JSON: `{"kind": "partial_proof", "data": {...}}`.
        BodyEncoding::Json => decode_json::<ProtocolMessage>(&bytes)?,
        BodyEncoding::Ssz => match kind {
            Some(MessageKind::Commitment) => decode_ssz::<SignedCommitment>(&bytes)?.into(),
            Some(MessageKind::Decline) => decode_ssz::<SignedDecline>(&bytes)?.into(),
            Some(MessageKind::PartialProof) => decode_ssz::<SignedPartialProof>(&bytes)?.into(),
            Some(MessageKind::FullProof) => decode_ssz::<SignedFullProof>(&bytes)?.into(),
            Some(MessageKind::AggProof) => decode_ssz::<SignedAggProof>(&bytes)?.into(),
            _ => {
                return Err(ApiError::bad_request(
                    "An SSZ body needs ?kind=commitment|decline|partial_proof|full_proof|agg_proof",
                ));
            }
        },
    };
    Ok(json(s.backend.verify(message).await?))
}

async fn events<B: ProvingBackend>(
    State(s): State<AppState<B>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    let mut topics = Vec::new();
    for (_, value) in pairs.into_iter().filter(|(k, _)| k == "topics") {
        for name in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let topic: ProvingTopic = name
                .parse()
                .map_err(|_| ApiError::bad_request(format!("Invalid topic: {name}")))?;
            if !topics.contains(&topic) {
                topics.push(topic);
            }
        }
    }
    if topics.is_empty() {
        return Err(ApiError::bad_request("Missing topics"));
    }
    let rx = s.backend.subscribe();
    let mut shutdown = s.shutdown.clone();
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let topics = topics.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) if topics.contains(&event.topic()) => return Some((event, rx)),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "proving event subscriber lagged")
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
    .map(|event| Ok(Event::default().event(event.topic().as_str()).data(event.data_json())))
    .take_until(async move {
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(s.keep_alive)))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}
