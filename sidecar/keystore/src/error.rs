//! The keystore's error type.

use std::path::PathBuf;

/// A `Result` whose error is the keystore's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong creating, reading or decrypting a keystore.
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
