//! Errors of the node.

/// What can go wrong running the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The durable store failed.
    #[error("store: {0}")]
    Store(#[from] crate::StoreError),
    /// The beacon node could not be reached or answered badly.
    #[error("beacon node: {0}")]
    Beacon(#[from] beacon_api::Error),
    /// The protocol engine refused an input.
    #[error("engine: {0}")]
    Engine(#[from] phase_engine::Error),
    /// Settlement failed.
    #[error("settlement: {0}")]
    Rewards(#[from] rewards::Error),
    /// A stored input could not be decoded (corrupt or foreign database).
    #[error("corrupt input log entry {index}: {reason}")]
    CorruptLog {
        /// The entry's sequence number.
        index: u64,
        /// What was wrong.
        reason: String,
    },
    /// The node's HTTP server failed.
    #[error("http server on {addr}: {source}")]
    Http {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The gossip network could not start.
    #[error("p2p: {0}")]
    P2p(#[source] sidecar_p2p::Error),
    /// The data directory could not be created.
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The node's driver task stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The stored checkpoint cannot be used.
    #[error("checkpoint: {reason}")]
    Checkpoint {
        /// What is wrong.
        reason: String,
    },
    /// The configuration is invalid.
    #[error("invalid node configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// Result of node operations.
pub type NodeResult<T> = std::result::Result<T, NodeError>;
