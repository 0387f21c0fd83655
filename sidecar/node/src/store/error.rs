//! The store's error type.

use std::path::PathBuf;

/// A `Result` whose error is the store's [`StoreError`].
pub type StoreResult<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong reading or writing the node's database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Creating the database's directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("creating", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded database failed.
    #[error("database error: {source}")]
    Database {
        /// The redb error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The database was written by another schema version.
    #[error("database schema version {found} is not supported by this build (expected {expected})")]
    SchemaVersion {
        /// The version found in the metadata table.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// A stored value could not be decoded.
    #[error("corrupt value in table `{table}`: {reason}")]
    CorruptValue {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io { action, path: path.into(), source }
    }
}

/// Wraps any redb error (they all convert into `redb::Error`).
pub(crate) fn db(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Database { source: Box::new(e.into()) }
}
