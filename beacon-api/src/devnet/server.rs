//! The devnet node's HTTP routes: the standard Beacon API endpoints and the event stream.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::{
    Inner,
    chain::{DOMAIN_BEACON_PROPOSER, DOMAIN_RANDAO, EPOCHS_PER_HISTORICAL_VECTOR, RandaoError},
};
use crate::{
    http::{ApiError, method_not_allowed, not_found, wants_ssz},
    types::{ApiResponse, BeaconEvent, BlockId, Epoch, EventTopic, SyncingData},
};

#[derive(Clone)]
struct AppState {
    inner: Arc<Inner>,
    shutdown: watch::Receiver<bool>,
}

pub(super) fn router(inner: Arc<Inner>, shutdown: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/eth/v1/beacon/genesis", get(genesis))
        .route("/eth/v1/config/spec", get(spec))
        .route("/eth/v1/node/syncing", get(syncing))
        .route("/eth/v1/node/health", get(health))
        .route("/eth/v1/beacon/headers/{block_id}", get(header))
        .route("/eth/v2/beacon/blocks/{block_id}", get(block))
        .route("/eth/v1/beacon/states/{state_id}/randao", get(randao))
        .route("/eth/v1/beacon/states/{state_id}/finality_checkpoints", get(finality_checkpoints))
        .route("/eth/v1/validator/duties/proposer/{epoch}", get(proposer_duties))
        .route("/eth/v1/events", get(events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(AppState { inner, shutdown })
}

fn parse_block_id(raw: &str, what: &str) -> Result<BlockId, ApiError> {
    raw.parse().map_err(|_| ApiError::bad_request(format!("Invalid {what} ID: {raw}")))
}

fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))
}

async fn genesis(State(s): State<AppState>) -> Json<ApiResponse<crate::types::GenesisData>> {
    Json(ApiResponse::new(s.inner.chain().genesis()))
}

async fn spec(State(s): State<AppState>) -> Json<ApiResponse<BTreeMap<String, Value>>> {
    let chain = s.inner.chain();
    let c = chain.config();
    let hex4 = |b: [u8; 4]| Value::String(format!("0x{}", hex_lower(&b)));
    let num = |n: u64| Value::String(n.to_string());
    let mut m = BTreeMap::new();
    m.insert("CONFIG_NAME".into(), Value::String("devnet".into()));
    m.insert("PRESET_BASE".into(), Value::String("mainnet".into()));
    m.insert("SECONDS_PER_SLOT".into(), num(c.seconds_per_slot));
    m.insert("SLOT_DURATION_MS".into(), num(c.seconds_per_slot.saturating_mul(1000)));
    m.insert("SLOTS_PER_EPOCH".into(), num(c.slots_per_epoch));
    m.insert("MIN_SEED_LOOKAHEAD".into(), num(1));
    m.insert("EPOCHS_PER_HISTORICAL_VECTOR".into(), num(EPOCHS_PER_HISTORICAL_VECTOR));
    m.insert("SHUFFLE_ROUND_COUNT".into(), num(90));
    m.insert("GENESIS_FORK_VERSION".into(), hex4(c.fork_version));
    m.insert("ELECTRA_FORK_VERSION".into(), hex4(c.fork_version));
    m.insert("ELECTRA_FORK_EPOCH".into(), num(0));
    m.insert("DOMAIN_BEACON_PROPOSER".into(), hex4(DOMAIN_BEACON_PROPOSER));
    m.insert("DOMAIN_RANDAO".into(), hex4(DOMAIN_RANDAO));
    m.insert("MAX_EFFECTIVE_BALANCE_ELECTRA".into(), num(2_048_000_000_000));
    m.insert("BLOB_SCHEDULE".into(), Value::Array(Vec::new()));
    m.insert("DEVNET_GAS_LIMIT".into(), num(c.gas_limit()));
    Json(ApiResponse::new(m))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn syncing(State(s): State<AppState>) -> Json<ApiResponse<SyncingData>> {
    let chain = s.inner.chain();
    let head = chain.head().slot();
    let distance = s.inner.clock_slot(&chain).map_or(0, |now| now.get().saturating_sub(head.get()));
    Json(ApiResponse::new(SyncingData {
        head_slot: head,
        sync_distance: distance,
        is_syncing: false,
        is_optimistic: Some(false),
        el_offline: Some(false),
    }))
}

async fn health() -> StatusCode {
    StatusCode::OK
}

async fn header(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw, "block")?;
    let chain = s.inner.chain();
    let block = chain.block(id).ok_or_else(|| ApiError::not_found("Block not found"))?;
    let response =
        ApiResponse::new(chain.header(block)).with_status(false, chain.is_finalized(block));
    Ok(Json(response).into_response())
}

async fn block(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw, "block")?;
    if wants_ssz(&headers) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "SSZ responses are not supported by the devnet node; accept application/json",
        ));
    }
    let (response, version) = {
        let chain = s.inner.chain();
        let block = chain.block(id).ok_or_else(|| ApiError::not_found("Block not found"))?;
        let mut response = ApiResponse::new(chain.signed_block(block))
            .with_status(false, chain.is_finalized(block));
        response.version = Some(crate::types::ForkName::Electra);
        (response, "electra")
    };
    let mut out = Json(response).into_response();
    out.headers_mut().insert("Eth-Consensus-Version", HeaderValue::from_static(version));
    Ok(out)
}

async fn randao(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw, "state")?;
    let epoch = match query_pairs(query)?.into_iter().find(|(k, _)| k == "epoch") {
        Some((_, v)) => Some(
            v.parse::<Epoch>().map_err(|_| ApiError::bad_request(format!("Invalid epoch: {v}")))?,
        ),
        None => None,
    };
    let chain = s.inner.chain();
    let state = chain.state(id).ok_or_else(|| ApiError::not_found("State not found"))?;
    let mix = chain.randao(state, epoch).map_err(|e| match e {
        RandaoError::OutOfRange => {
            ApiError::bad_request("Epoch is out of range for the `randao_mixes` of the state")
        }
        RandaoError::Pruned => {
            ApiError::not_found("State history for that epoch is no longer available")
        }
    })?;
    let response = ApiResponse::new(crate::types::RandaoData { randao: mix })
        .with_status(false, chain.is_finalized(state));
    Ok(Json(response).into_response())
}

async fn finality_checkpoints(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_block_id(&raw, "state")?;
    let chain = s.inner.chain();
    let state = chain.state(id).ok_or_else(|| ApiError::not_found("State not found"))?;
    let response =
        ApiResponse::new(state.checkpoints).with_status(false, chain.is_finalized(state));
    Ok(Json(response).into_response())
}

async fn proposer_duties(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let epoch: Epoch =
        raw.parse().map_err(|_| ApiError::bad_request(format!("Invalid epoch: {raw}")))?;
    let chain = s.inner.chain();
    let (dependent_root, duties) = chain.proposer_duties(epoch).ok_or_else(|| {
        ApiError::bad_request(format!("Proposer duties for epoch {epoch} are not yet known"))
    })?;
    let mut response = ApiResponse::new(duties);
    response.dependent_root = Some(dependent_root);
    response.execution_optimistic = Some(false);
    Ok(Json(response).into_response())
}

async fn events(
    State(s): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut topics = Vec::new();
    for (key, value) in query_pairs(query)? {
        if key != "topics" {
            continue;
        }
        for name in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let topic: EventTopic = name
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
    let keep_alive = Duration::from_secs(s.inner.chain().config().keep_alive_secs);
    let rx = s.inner.events.subscribe();
    let mut shutdown = s.shutdown.clone();
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let topics = topics.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(event) if topics.contains(&event.topic()) => return Some((event, rx)),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "devnet event subscriber lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    })
    .map(|event: BeaconEvent| {
        Ok(Event::default().event(event.topic().as_str()).data(event.data_json()))
    })
    .take_until(async move {
        // A dropped sender (a router served by someone else) means "never shut down".
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive)))
}
