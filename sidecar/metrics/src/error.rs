//! The metrics server's error type.

/// A `Result` whose error is the metrics server's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong serving `/metrics`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding the HTTP listener failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("serving http: {source}")]
    Serve {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
