//! The devnet's validator client face: the standard keymanager API for the devnet's own
//! validators (`GET /eth/v1/keystores`, `GET`/`POST`/`DELETE /eth/v1/validator/{pubkey}/graffiti`),
//! behind a bearer token, so that sidecars set the graffiti of their validators' proposals as
//! they would through a real validator client. A graffiti set for a validator goes into every
//! block it proposes until it is changed or deleted. Served only when
//! [`DevnetConfig::keymanager_token`](super::DevnetConfig::keymanager_token) is set.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use super::Inner;
use crate::http::ApiError;
use crate::keymanager::{
    GraffitiData, GraffitiResponse, KeystoreEntry, KeystoreList, SetGraffitiRequest, graffiti_bytes,
};

#[derive(Clone)]
struct KeymanagerState {
    inner: Arc<Inner>,
    token: Arc<str>,
}

/// The keymanager routes over the devnet's validators.
pub(super) fn router(inner: Arc<Inner>, token: &str) -> Router {
    let state = KeymanagerState { inner, token: Arc::from(token) };
    Router::new()
        .route("/eth/v1/keystores", get(keystores))
        .route(
            "/eth/v1/validator/{pubkey}/graffiti",
            get(get_graffiti).post(set_graffiti).delete(delete_graffiti),
        )
        .with_state(state)
}

fn authorize(state: &KeymanagerState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "Missing bearer token")),
        Some(t) if t.trim() == &*state.token => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid bearer token")),
    }
}

fn validator(state: &KeymanagerState, raw: &str) -> Result<u64, ApiError> {
    state
        .inner
        .chain()
        .validator_by_pubkey(raw)
        .ok_or_else(|| ApiError::not_found(format!("Validator {raw} not found")))
}

async fn keystores(
    State(s): State<KeymanagerState>,
    headers: HeaderMap,
) -> Result<Json<KeystoreList>, ApiError> {
    authorize(&s, &headers)?;
    let data = s
        .inner
        .chain()
        .validator_pubkeys()
        .into_iter()
        .map(|pubkey| KeystoreEntry {
            validating_pubkey: pubkey,
            derivation_path: None,
            readonly: Some(false),
        })
        .collect();
    Ok(Json(KeystoreList { data }))
}

async fn get_graffiti(
    State(s): State<KeymanagerState>,
    headers: HeaderMap,
    Path(pubkey): Path<String>,
) -> Result<Json<GraffitiResponse>, ApiError> {
    authorize(&s, &headers)?;
    let index = validator(&s, &pubkey)?;
    let bytes = s.inner.chain().graffiti_of(index);
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let graffiti = String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned();
    Ok(Json(GraffitiResponse { data: GraffitiData { pubkey: pubkey.to_lowercase(), graffiti } }))
}

async fn set_graffiti(
    State(s): State<KeymanagerState>,
    headers: HeaderMap,
    Path(pubkey): Path<String>,
    body: Result<Json<SetGraffitiRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let index = validator(&s, &pubkey)?;
    let Json(request) = body.map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))?;
    let bytes = graffiti_bytes(&request.graffiti)
        .ok_or_else(|| ApiError::bad_request("Graffiti longer than 32 bytes"))?;
    s.inner.chain().set_graffiti(index, Some(bytes));
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn delete_graffiti(
    State(s): State<KeymanagerState>,
    headers: HeaderMap,
    Path(pubkey): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let index = validator(&s, &pubkey)?;
    s.inner.chain().set_graffiti(index, None);
    Ok(StatusCode::NO_CONTENT.into_response())
}
