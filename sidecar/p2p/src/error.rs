//! The network's error type.

use std::path::PathBuf;

/// A `Result` whose error is the network's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong starting or running the gossip network.
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
