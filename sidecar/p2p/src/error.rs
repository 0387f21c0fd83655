//! The network's error type.

use std::path::PathBuf;

use libp2p::PeerId;

use crate::reqresp::{CodecError, ErrorCode, SyncProtocol};

/// A `Result` whose error is the network's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or running the network, or in a request to a peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file (the node key) failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A config value is out of range or malformed.
    #[error("invalid config value `{key}` = {value}: {reason}")]
    ConfigInvalid {
        /// The dotted TOML key, for example `p2p.bootnodes`.
        key: String,
        /// The offending value, as written.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A gossip topic string is malformed.
    #[error("invalid gossip topic `{topic}`: {reason}")]
    InvalidTopic {
        /// The topic string.
        topic: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Building or running the libp2p swarm failed.
    #[error("p2p {action} failed: {reason}")]
    P2p {
        /// What was being done ("listen", "publish", "subscribe", ...).
        action: &'static str,
        /// The libp2p error text.
        reason: String,
    },
    /// The gossipsub peer scoring parameters were refused (by the derivation or by libp2p);
    /// the network does not start without the scoring it was configured with.
    #[error("gossipsub peer scoring refused: {reason}")]
    PeerScoring {
        /// Why, as the derivation or libp2p says it.
        reason: String,
    },
    /// Starting or running discv5 failed.
    #[error("discv5 {action} failed: {reason}")]
    Discovery {
        /// What was being done.
        action: &'static str,
        /// The discv5 error text.
        reason: String,
    },
    /// The network task has stopped; its handle can no longer be used.
    #[error("the p2p network task has stopped")]
    NetworkStopped,
    /// A request payload is larger than the protocol allows; it was not sent.
    #[error("{protocol} request of {len} bytes exceeds the limit of {max}")]
    RequestTooLarge {
        /// The protocol.
        protocol: SyncProtocol,
        /// The payload's length.
        len: usize,
        /// The protocol's request limit.
        max: usize,
    },
    /// The peer is banned (its score fell to the ban threshold); nothing is sent to it.
    #[error("peer {peer} is banned")]
    PeerBanned {
        /// The peer.
        peer: PeerId,
    },
    /// The peer could not be reached (not connected and dialling failed, or banned meanwhile).
    #[error("{protocol} request to {peer}: dialling failed")]
    DialFailure {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: SyncProtocol,
    },
    /// The exchange did not complete within the request timeout.
    #[error("{protocol} request to {peer} timed out")]
    RequestTimeout {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: SyncProtocol,
    },
    /// The peer answered with an error response (any chunks before it are discarded).
    #[error("{protocol} request to {peer} failed: {code}: {message}")]
    PeerError {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: SyncProtocol,
        /// The response's error code.
        code: ErrorCode,
        /// The peer's error message (lossily decoded UTF-8).
        message: String,
    },
    /// The response exceeded the protocol's limits (chunk size, chunk count or total bytes)
    /// and was refused before the excess was decompressed.
    #[error("{protocol} response from {peer} refused: {reason}")]
    ResponseOverCap {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: SyncProtocol,
        /// Which limit.
        reason: CodecError,
    },
    /// The response did not decode (bad varint, snappy, truncated chunk).
    #[error("invalid {protocol} response from {peer}: {reason}")]
    InvalidResponse {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: SyncProtocol,
        /// What is wrong with it.
        reason: CodecError,
    },
    /// The exchange failed otherwise: the connection closed, the peer does not support the
    /// protocol, or an I/O error.
    #[error("{protocol} request to {peer} failed: {reason}")]
    RequestFailed {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: SyncProtocol,
        /// The libp2p error text.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("the operating system random source failed: {reason}")]
    Randomness {
        /// The error text from the OS.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the file it concerns.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io { action, path: path.into(), source }
    }
}
