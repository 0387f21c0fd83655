//! HTTP plumbing shared by the devnet node and the extension server: Beacon API error bodies.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

use std::net::SocketAddr;

use tokio::{sync::watch, task::JoinHandle};

use crate::{
    error::{Error, Result},
    types::ErrorMessage,
};

/// A running HTTP server (the devnet node's or the extension's). Its event streams end on
/// shutdown, so shutting down never hangs on an open stream.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// Binds `addr` and serves the router that `make_router` builds; the router gets the
    /// shutdown signal (true once shutting down) for its long-lived streams.
    pub(crate) async fn start(
        addr: SocketAddr,
        make_router: impl FnOnce(watch::Receiver<bool>) -> axum::Router,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io { context: format!("binding {addr}"), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Io { context: "reading the bound address".into(), source })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = make_router(shutdown_rx.clone());
        let mut signal = shutdown_rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = signal.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self { addr, shutdown, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL (`http://127.0.0.1:port`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server: event streams end, open connections close, the port is released.
    pub async fn shutdown(self) -> Result<()> {
        self.shutdown.send_replace(true);
        match self.task.await {
            Ok(result) => result.map_err(|source| Error::Io { context: "serving".into(), source }),
            Err(join) => Err(Error::Io {
                context: "joining the server task".into(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

/// An HTTP error answered as the Beacon API body `{"code": ..., "message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorMessage::new(self.status.as_u16(), self.message);
        (self.status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
    }
}

/// The answer for routes that do not exist.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("No route for {}", uri.path()))
}

/// The answer for known routes called with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

/// Whether the request's `Accept` header asks for SSZ (`application/octet-stream`) rather than
/// JSON. JSON wins when both are acceptable with equal preference or when nothing is said.
pub(crate) fn wants_ssz(headers: &axum::http::HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut best_json = 0.0f32;
    let mut best_ssz = 0.0f32;
    for part in accept.split(',') {
        let mut fields = part.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .filter_map(|f| f.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/octet-stream" => best_ssz = best_ssz.max(q),
            "application/json" | "application/*" | "*/*" => best_json = best_json.max(q),
            _ => {}
        }
    }
    best_ssz > best_json
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn content_negotiation() {
        assert!(!wants_ssz(&HeaderMap::new()));
        assert!(wants_ssz(&accept("application/octet-stream")));
        assert!(!wants_ssz(&accept("application/json")));
        assert!(!wants_ssz(&accept("application/octet-stream, application/json")));
        assert!(wants_ssz(&accept("application/octet-stream;q=1.0, application/json;q=0.9")));
        assert!(!wants_ssz(&accept("*/*")));
    }
}
