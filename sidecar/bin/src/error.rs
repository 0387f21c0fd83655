//! The binary's error type: its own failures (config, arguments, logging) and those of the
//! crates it runs, each wrapped whole.

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
    /// Setting up logging failed.
    #[error("cannot set up logging: {reason}")]
    Logging {
        /// Why.
        reason: String,
    },
    /// A prover keystore could not be created, read or decrypted.
    #[error(transparent)]
    Keystore(#[from] sidecar_keystore::Error),
    /// The gossip network's settings or node key are unusable.
    #[error(transparent)]
    P2p(#[from] sidecar_p2p::Error),
    /// `sidecar simulate` failed.
    #[error(transparent)]
    Simulate(#[from] sidecar_simulator::SimError),
    /// Prover mode or the offline proof tools failed.
    #[error(transparent)]
    Prover(#[from] sidecar_prover::ProverError),
    /// Validator mode (the node) failed.
    #[error(transparent)]
    Node(#[from] Box<sidecar_node::NodeError>),
    /// `sidecar devnet` failed to start, or its check failed.
    #[error(transparent)]
    Devnet(#[from] sidecar_devnet::DevnetError),
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
