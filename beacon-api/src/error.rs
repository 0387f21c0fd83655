//! The crate's error type.

use crate::types::ErrorMessage;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A block or state id is neither a keyword, a decimal slot, nor a `0x` root.
    #[error("invalid block or state id: {input:?}")]
    InvalidId {
        /// The text that failed to parse.
        input: String,
    },
    /// An event topic this crate does not model.
    #[error("unknown event topic: {topic:?}")]
    UnknownTopic {
        /// The topic name.
        topic: String,
    },
    /// A `config/spec` value is not what its key requires.
    #[error("spec value {key} is not an unsigned integer: {value}")]
    SpecValue {
        /// The spec key.
        key: String,
        /// The raw JSON value.
        value: String,
    },
    /// JSON that does not match the expected schema.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The beacon node answered with an error status and (usually) a `{code, message}` body.
    #[error("{url} answered {status}: {}", .body.message)]
    Api {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error body (synthesised from the status when the node sent none).
        body: ErrorMessage,
    },
    /// A request did not complete within its timeout.
    #[error("request to {url} timed out")]
    Timeout {
        /// The URL requested.
        url: String,
    },
    /// The event stream broke: a transport error, SSE syntax error, or silence past the idle
    /// timeout.
    #[error("event stream broke: {reason}")]
    EventStream {
        /// What happened.
        reason: String,
    },
    /// A transport-level HTTP failure (connection refused, reset, TLS, ...).
    #[cfg(feature = "client")]
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL requested.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// A beacon node URL could not be parsed or joined with an endpoint path.
    #[error("invalid beacon node URL {url:?}: {reason}")]
    InvalidUrl {
        /// The offending URL.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The client was built with no beacon node URL.
    #[error("no beacon node URL configured")]
    NoEndpoints,
    /// Every configured beacon node failed; the last error of each, in order.
    #[error("all {} beacon nodes failed; last: {}", .errors.len(), .errors.last().map(ToString::to_string).unwrap_or_default())]
    AllEndpointsFailed {
        /// One error per beacon node, in the configured order.
        errors: Vec<Error>,
    },
    /// An I/O error (binding a listener, serving a connection).
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A devnet reorg was asked to go deeper than the blocks above the finalized checkpoint.
    #[error("cannot reorg {depth} blocks: only {available} non-finalized blocks")]
    ReorgTooDeep {
        /// The requested depth.
        depth: u64,
        /// How many blocks can be reorganised.
        available: u64,
    },
    /// (Proving backend) The thing asked for does not exist: answered 404.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up (for example "block 0xab..").
        what: String,
    },
    /// (Proving backend) The input is invalid (bad signature, unknown round, wrong phase, not
    /// selected, oversize proof, ...): answered 400.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// Why.
        reason: String,
    },
    /// (Proving backend) The input conflicts with what the node holds (equivocation, a second
    /// registration of a key): answered 409.
    #[error("conflict: {reason}")]
    Conflict {
        /// Why.
        reason: String,
    },
    /// (Proving backend) The node cannot answer now (syncing, shutting down): answered 503.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// An invalid devnet or client configuration value.
    #[error("invalid configuration {key}: {reason}")]
    Config {
        /// The configuration key.
        key: &'static str,
        /// Why the value is invalid.
        reason: String,
    },
}

impl Error {
    /// The Beacon API `{code, message}` body, when the node answered with an error status.
    pub fn api_error(&self) -> Option<&ErrorMessage> {
        match self {
            Self::Api { body, .. } => Some(body),
            Self::AllEndpointsFailed { errors } => errors.iter().rev().find_map(Self::api_error),
            _ => None,
        }
    }

    /// The HTTP status of an API error, if this is one.
    pub fn status(&self) -> Option<u16> {
        self.api_error().map(|b| b.code)
    }
}
