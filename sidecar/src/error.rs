//! The crate's error type.

use std::path::PathBuf;

/// A `Result` whose error is the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the sidecar library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
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
    /// The config file is not valid TOML or does not match the schema.
    #[error("config file {path}: {source}")]
    ConfigParse {
        /// The config file.
        path: PathBuf,
        /// The TOML error (it names the line and the key).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A config value is out of range or malformed.
    #[error("invalid config value `{key}` = {value}: {reason}")]
    ConfigInvalid {
        /// The dotted TOML key, for example `p2p.tcp_port`.
        key: String,
        /// The offending value, as written.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Slot timing with a zero slot duration.
    #[error("the slot duration must be greater than zero")]
    ZeroSlotDuration,
    /// A key file exists and `--force` was not given.
    #[error("{path} already exists; refusing to overwrite it (pass --force to replace it)")]
    KeyFileExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A key file is not a well-formed EIP-2335 keystore.
    #[error("{path} is not a valid EIP-2335 keystore: {reason}")]
    KeystoreFormat {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The keystore uses a KDF, cipher or checksum this build does not support.
    #[error("keystore {field} function `{function}` is not supported (supported: {supported})")]
    KeystoreUnsupported {
        /// Which module: `kdf`, `cipher` or `checksum`.
        field: &'static str,
        /// The function named in the file.
        function: String,
        /// The functions that are supported.
        supported: &'static str,
    },
    /// The keystore's KDF parameters are out of range.
    #[error("keystore kdf parameters are invalid: {reason}")]
    KeystoreKdfParams {
        /// Why they are rejected.
        reason: String,
    },
    /// The checksum does not match: the password is wrong (or the file is corrupted).
    #[error("wrong password for keystore {path} (checksum mismatch)")]
    WrongPassword {
        /// The key file.
        path: PathBuf,
    },
    /// The decrypted secret is not a valid BLS12-381 secret key.
    #[error("keystore {path} holds an invalid BLS secret key")]
    InvalidSecretKey {
        /// The key file.
        path: PathBuf,
    },
    /// The public key in the file does not belong to the decrypted secret key.
    #[error("keystore {path}: pubkey field {expected} does not match the secret key's {got}")]
    PubkeyMismatch {
        /// The key file.
        path: PathBuf,
        /// The public key derived from the secret key (hex).
        got: String,
        /// The public key written in the file (hex).
        expected: String,
    },
    /// No keystore password was given.
    #[error("no keystore password: pass --password-file FILE or set SIDECAR_KEYSTORE_PASSWORD")]
    MissingPassword,
    /// A command-line argument is out of range.
    #[error("invalid argument {arg} = {value}: {reason}")]
    InvalidArgument {
        /// The flag, for example `--sidecars`.
        arg: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The operating system's random source failed.
    #[error("the operating system random source failed: {reason}")]
    Randomness {
        /// The error text from the OS.
        reason: String,
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
    /// Binding the HTTP listener failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Setting up logging failed.
    #[error("cannot set up logging: {reason}")]
    Logging {
        /// Why.
        reason: String,
    },
    /// `sidecar simulate` failed.
    #[error(transparent)]
    Simulate(#[from] crate::simulate::SimError),
    /// Prover mode or the offline proof tools failed.
    #[error(transparent)]
    Prover(#[from] crate::prover::ProverError),
    /// Validator mode (the node) failed.
    #[error(transparent)]
    Node(#[from] Box<crate::node::NodeError>),
    /// `sidecar devnet` failed to start, or its check failed.
    #[error(transparent)]
    Devnet(#[from] crate::devnet::DevnetError),
    /// A subcommand that this build cannot run yet.
    #[error(
        "`sidecar {command}` is not yet available in this build: {missing} is not wired into the \
         node yet"
    )]
    NotYetAvailable {
        /// The subcommand.
        command: &'static str,
        /// What it still needs.
        missing: &'static str,
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

    /// Builds a [`Error::ConfigInvalid`].
    pub(crate) fn invalid(
        key: &str,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Self::ConfigInvalid { key: key.to_owned(), value: value.to_string(), reason: reason.into() }
    }
}

/// Wraps any redb error (they all convert into `redb::Error`).
pub(crate) fn db(e: impl Into<redb::Error>) -> Error {
    Error::Database { source: Box::new(e.into()) }
}
