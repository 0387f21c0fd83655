//! Request/response protocols of sync, in the style of the consensus specs' `BlocksByRange` and
//! `BlocksByRoot`: one request per libp2p stream, `ssz_snappy` framing, the response a sequence
//! of chunks each led by a result byte.
//!
//! Two protocols, scoped by the network's topic prefix like the gossip topics:
//!
//! - [`RecordsByRange`](SyncProtocol::RecordsByRange):
//!   `/<prefix>/req/inclusion_records_by_range/1/ssz_snappy`, up to 64 chunks of up to
//!   [`MAX_RECORDS_CHUNK_BYTES`] (2.5 MiB);
//! - [`MessagesById`](SyncProtocol::MessagesById): `/<prefix>/req/messages_by_id/1/ssz_snappy`,
//!   up to 1024 chunks of up to [`MAX_GOSSIP_SIZE`] (10 MiB), 128 MiB in all.
//!
//! Requests of either are at most [`MAX_REQUEST_BYTES`] (64 KiB).
//!
//! Payloads are opaque bytes here: the caller encodes requests and decodes response chunks
//! (SSZ). The network compresses, frames and bounds them ([`ProtocolLimits`]), times requests
//! out, and rate-limits inbound requests per peer and protocol ([`RateLimit`]). The wire format
//! lives in the `codec` submodule.
//!
//! The result byte of a response chunk is `0` for success, or an [`ErrorCode`] followed by an
//! error message (`List[byte, 256]`, UTF-8) that ends the response.

mod codec;
mod rate_limit;

use std::fmt;
use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::{PeerId, StreamProtocol};
use tokio::sync::oneshot;

use crate::codec::MAX_GOSSIP_SIZE;
use crate::error::{Error, Result};

pub use codec::{
    CodecError, decode_request_bytes, decode_response_bytes, encode_request_bytes,
    encode_response_bytes,
};
pub(crate) use codec::{RequestPayload, SyncCodec, SyncResponse};
pub(crate) use rate_limit::RateLimiter;

/// A sync request/response protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SyncProtocol {
    /// Inclusion records of a range of slots (`inclusion_records_by_range`).
    RecordsByRange,
    /// Protocol messages by their ids (`messages_by_id`).
    MessagesById,
}

impl SyncProtocol {
    /// Every protocol, in a fixed order.
    pub const ALL: [Self; 2] = [Self::RecordsByRange, Self::MessagesById];

    /// The message name in the protocol id, for example `messages_by_id`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RecordsByRange => "inclusion_records_by_range",
            Self::MessagesById => "messages_by_id",
        }
    }

    /// The protocol id under a network's topic prefix:
    /// `/<prefix>/req/<name>/1/ssz_snappy`.
    pub fn protocol_id(self, prefix: &str) -> String {
        format!("/{prefix}/req/{}/1/{}", self.name(), crate::topic::SSZ_SNAPPY)
    }

    /// The protocol's default limits.
    pub const fn default_limits(self) -> ProtocolLimits {
        match self {
            Self::RecordsByRange => ProtocolLimits {
                max_request_bytes: MAX_REQUEST_BYTES,
                max_response_chunks: 64,
                max_chunk_bytes: MAX_RECORDS_CHUNK_BYTES,
                max_response_bytes: 64 * MAX_RECORDS_CHUNK_BYTES,
            },
            Self::MessagesById => ProtocolLimits {
                max_request_bytes: MAX_REQUEST_BYTES,
                max_response_chunks: 1024,
                max_chunk_bytes: MAX_GOSSIP_SIZE,
                max_response_bytes: 128 * 1024 * 1024,
            },
        }
    }
}

impl fmt::Display for SyncProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Largest request of either protocol (uncompressed): room for 2048 32-byte ids.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest `RecordsByRange` response chunk (uncompressed): the records of one slot, up to
/// 65 536 entries of 40 bytes, plus 4 KiB for the record's header and SSZ offsets.
pub const MAX_RECORDS_CHUNK_BYTES: usize = 65_536 * 40 + 4096;

/// Size and count limits of one protocol, checked on both sides: the requester refuses a
/// response beyond them (before decompressing anything beyond the cap), the responder never
/// sends beyond them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolLimits {
    /// Largest request payload, uncompressed.
    pub max_request_bytes: usize,
    /// Most success chunks in one response.
    pub max_response_chunks: usize,
    /// Largest response chunk, uncompressed.
    pub max_chunk_bytes: usize,
    /// Most bytes (uncompressed) in all chunks of one response: bounds the requester's memory.
    pub max_response_bytes: usize,
}

/// The inbound rate limit: a token bucket per (peer, protocol).
///
/// A bucket holds at most `capacity` requests and regains one every `refill_interval`; a
/// request finding it empty is answered [`ErrorCode::RateLimited`] and not served. Buckets
/// outlive connections, so reconnecting does not refill them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Burst size (at least 1 is used).
    pub capacity: u32,
    /// Time to regain one request; zero disables the limit.
    pub refill_interval: Duration,
}

impl Default for RateLimit {
    /// 32 requests, refilled at 8 per second.
    fn default() -> Self {
        Self { capacity: 32, refill_interval: Duration::from_millis(125) }
    }
}

/// Request/response settings, part of [`NetworkConfig`](crate::NetworkConfig).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqRespConfig {
    /// Time for a whole exchange: opening the stream, the request, and every response chunk.
    /// Also how long an inbound request waits for the application's answer.
    pub request_timeout: Duration,
    /// Inbound rate limit per (peer, protocol).
    pub rate_limit: RateLimit,
    /// Capacity of [`Network::requests`](crate::Network::requests); when it is full, inbound
    /// requests are answered [`ErrorCode::ServerError`].
    pub inbound_queue: usize,
    /// Limits of [`SyncProtocol::RecordsByRange`].
    pub records_by_range: ProtocolLimits,
    /// Limits of [`SyncProtocol::MessagesById`].
    pub messages_by_id: ProtocolLimits,
}

impl Default for ReqRespConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            rate_limit: RateLimit::default(),
            inbound_queue: 256,
            records_by_range: SyncProtocol::RecordsByRange.default_limits(),
            messages_by_id: SyncProtocol::MessagesById.default_limits(),
        }
    }
}

impl ReqRespConfig {
    /// The limits of `protocol`.
    pub fn limits(&self, protocol: SyncProtocol) -> ProtocolLimits {
        match protocol {
            SyncProtocol::RecordsByRange => self.records_by_range,
            SyncProtocol::MessagesById => self.messages_by_id,
        }
    }
}

/// The libp2p behaviour serving and requesting `protocol`.
pub(crate) fn behaviour(
    protocol: SyncProtocol,
    prefix: &str,
    config: &ReqRespConfig,
) -> Result<request_response::Behaviour<SyncCodec>> {
    let id = StreamProtocol::try_from_owned(protocol.protocol_id(prefix))
        .map_err(|e| Error::P2p { action: "create request/response", reason: e.to_string() })?;
    Ok(request_response::Behaviour::with_codec(
        SyncCodec::new(config.limits(protocol)),
        [(id, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(config.request_timeout),
    ))
}

/// The error code of a response that is not a success (result byte ≠ 0).
///
/// Codes 1–3 are the consensus specs'; 139 is the client-specific code consensus clients
/// (Lighthouse) use for rate limiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `1`: the request is malformed or asks for more than the protocol allows.
    InvalidRequest,
    /// `2`: the responder failed to serve the request (or had nobody to serve it).
    ServerError,
    /// `3`: the responder does not have the requested data.
    ResourceUnavailable,
    /// `139`: too many requests from this peer on this protocol; retry later.
    RateLimited,
    /// Any other nonzero code (received from a peer). Sent as [`ServerError`](Self::ServerError)
    /// if it is 0.
    Other(u8),
}

impl ErrorCode {
    /// The code of a nonzero result byte; `None` for 0 (success).
    pub const fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => return None,
            1 => Self::InvalidRequest,
            2 => Self::ServerError,
            3 => Self::ResourceUnavailable,
            139 => Self::RateLimited,
            other => Self::Other(other),
        })
    }

    /// The result byte; never 0.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::InvalidRequest => 1,
            Self::ServerError | Self::Other(0) => 2,
            Self::ResourceUnavailable => 3,
            Self::RateLimited => 139,
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest => f.write_str("invalid request"),
            Self::ServerError => f.write_str("server error"),
            Self::ResourceUnavailable => f.write_str("resource unavailable"),
            Self::RateLimited => f.write_str("rate limited"),
            Self::Other(code) => write!(f, "error code {code}"),
        }
    }
}

/// An error response: its code and message (at most 256 bytes go on the wire).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ResponseError {
    /// The result byte.
    pub code: ErrorCode,
    /// A human-readable reason.
    pub message: String,
}

impl ResponseError {
    /// An error response with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The application's answer to an inbound request: the response chunks (uncompressed), or an
/// error response.
pub type ResponseResult = std::result::Result<Vec<Vec<u8>>, ResponseError>;

/// A request from a peer, waiting on [`Network::requests`](crate::Network::requests) for the
/// application's answer.
#[derive(Debug)]
pub struct InboundRequest {
    /// The requesting peer.
    pub peer: PeerId,
    /// The protocol it was sent on.
    pub protocol: SyncProtocol,
    /// The request payload, decompressed (SSZ bytes).
    pub payload: Vec<u8>,
    /// Where the answer goes.
    pub reply: ResponseSender,
}

/// Answers one [`InboundRequest`]. Dropping it unanswered sends the peer a
/// [`ErrorCode::ServerError`] response.
#[derive(Debug)]
pub struct ResponseSender(oneshot::Sender<ResponseResult>);

impl ResponseSender {
    pub(crate) fn new() -> (Self, oneshot::Receiver<ResponseResult>) {
        let (tx, rx) = oneshot::channel();
        (Self(tx), rx)
    }

    /// Sends the answer. The network frames it within the protocol's [`ProtocolLimits`]: chunks
    /// beyond `max_response_chunks` or `max_response_bytes` are dropped, and a chunk over
    /// `max_chunk_bytes` ends the response with a [`ErrorCode::ServerError`].
    ///
    /// Returns whether the network still waited for it (false: the request timed out or the
    /// network stopped).
    pub fn send(self, response: ResponseResult) -> bool {
        self.0.send(response).is_ok()
    }

    /// Whether the network still waits for the answer.
    pub fn is_open(&self) -> bool {
        !self.0.is_closed()
    }
}

/// Why an inbound request got no answer from the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// The [`ResponseSender`] was dropped.
    Dropped,
    /// No answer within the request timeout.
    TimedOut,
}

/// The response the network sends for the application's answer, bounded by `limits`.
pub(crate) fn bounded_response(
    protocol: SyncProtocol,
    limits: &ProtocolLimits,
    answer: std::result::Result<ResponseResult, Unanswered>,
) -> SyncResponse {
    let chunks = match answer {
        Ok(Ok(chunks)) => chunks,
        Ok(Err(error)) => return SyncResponse { chunks: Vec::new(), error: Some(error) },
        Err(Unanswered::Dropped) => {
            return SyncResponse::error(ErrorCode::ServerError, "no response");
        }
        Err(Unanswered::TimedOut) => {
            return SyncResponse::error(ErrorCode::ServerError, "response timed out");
        }
    };
    let offered = chunks.len();
    let mut total = 0usize;
    let mut error = None;
    let mut kept = Vec::with_capacity(offered.min(limits.max_response_chunks));
    for chunk in chunks {
        if kept.len() == limits.max_response_chunks {
            break;
        }
        if chunk.len() > limits.max_chunk_bytes {
            tracing::warn!(
                %protocol,
                len = chunk.len(),
                max = limits.max_chunk_bytes,
                "response chunk over the protocol limit; ending the response with an error",
            );
            error = Some(ResponseError::new(ErrorCode::ServerError, "response chunk too large"));
            break;
        }
        total = total.saturating_add(chunk.len());
        if total > limits.max_response_bytes {
            break;
        }
        kept.push(chunk);
    }
    if error.is_none() && kept.len() < offered {
        tracing::warn!(
            %protocol,
            offered,
            sent = kept.len(),
            "response beyond the protocol's chunk or byte limit; truncated",
        );
    }
    SyncResponse { chunks: kept, error }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_ids_are_prefix_scoped() {
        assert_eq!(
            SyncProtocol::RecordsByRange.protocol_id("proving-sidecar-0"),
            "/proving-sidecar-0/req/inclusion_records_by_range/1/ssz_snappy"
        );
        assert_eq!(
            SyncProtocol::MessagesById.protocol_id("p"),
            "/p/req/messages_by_id/1/ssz_snappy"
        );
        for protocol in SyncProtocol::ALL {
            assert!(behaviour(protocol, "p", &ReqRespConfig::default()).is_ok());
        }
    }

    #[test]
    fn error_codes_round_trip_and_zero_is_never_sent() {
        assert_eq!(ErrorCode::from_byte(0), None);
        for byte in 1..=u8::MAX {
            let code = ErrorCode::from_byte(byte).unwrap();
            assert_eq!(code.to_byte(), byte);
        }
        assert_eq!(ErrorCode::from_byte(139), Some(ErrorCode::RateLimited));
        assert_eq!(ErrorCode::Other(0).to_byte(), 2);
    }

    #[test]
    fn answers_are_bounded_by_the_limits() {
        let limits = ProtocolLimits {
            max_request_bytes: 16,
            max_response_chunks: 3,
            max_chunk_bytes: 4,
            max_response_bytes: 10,
        };
        let p = SyncProtocol::MessagesById;
        let ok = |chunks: Vec<Vec<u8>>| bounded_response(p, &limits, Ok(Ok(chunks)));

        let r = ok(vec![vec![1]; 5]);
        assert_eq!((r.chunks.len(), r.error), (3, None));

        let r = ok(vec![vec![1; 4], vec![2; 4], vec![3; 4]]);
        assert_eq!((r.chunks.len(), r.error), (2, None), "10 bytes in all at most");

        let r = ok(vec![vec![1], vec![2; 5], vec![3]]);
        assert_eq!(r.chunks, vec![vec![1]]);
        assert_eq!(r.error.unwrap().code, ErrorCode::ServerError);

        let r = bounded_response(p, &limits, Err(Unanswered::Dropped));
        assert!(r.chunks.is_empty());
        assert_eq!(r.error.unwrap().code, ErrorCode::ServerError);

        let e = ResponseError::new(ErrorCode::ResourceUnavailable, "gone");
        let r = bounded_response(p, &limits, Ok(Err(e.clone())));
        assert_eq!(r.error, Some(e));
    }
}
