//! Prover BLS keys in EIP-2335 keystores.
//!
//! `sidecar keys new` draws a BLS12-381 secret key (the `min_pk` variant Ethereum uses: 48-byte
//! public keys, 96-byte signatures) from the operating system's random source with the EIP-2333
//! `KeyGen`, encrypts it into an [EIP-2335](https://eips.ethereum.org/EIPS/eip-2335) keystore
//! (scrypt or PBKDF2-HMAC-SHA256, AES-128-CTR, SHA-256 checksum) and writes it with `0600`
//! permissions, never replacing an existing file unless asked to. [`Keystore::decrypt`] and
//! [`load_key`] read it back with errors that say what is wrong (bad JSON, unsupported function,
//! wrong password, key/pubkey mismatch).
//!
//! A crate of its own because it is one well-delimited concept (a file format with its
//! cryptography) with one user today, the binary's `keys` commands, and more to come (a
//! prover's key loading, fuzzing of untrusted keystores); nothing here knows of rounds or nodes.

mod error;

pub use error::{Error, Result};

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes::cipher::{KeyIvInit, StreamCipher};
use blst::min_pk::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// The keystore version this module reads and writes.
pub const KEYSTORE_VERSION: u32 = 4;
/// Length of the derived key (`dklen`).
const DKLEN: usize = 32;

/// A prover's BLS secret key.
pub struct ProverKey {
    secret: SecretKey,
}

impl std::fmt::Debug for ProverKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProverKey").field("pubkey", &hex::encode(self.public_key_bytes())).finish()
    }
}

impl ProverKey {
    /// A fresh key: EIP-2333 `KeyGen` over 32 bytes of OS randomness.
    ///
    /// # Errors
    /// [`Error::Randomness`] if the OS random source fails.
    pub fn generate() -> Result<Self> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        getrandom::fill(ikm.as_mut()).map_err(|e| Error::Randomness { reason: e.to_string() })?;
        Self::from_ikm(ikm.as_ref())
    }

    /// A key derived with EIP-2333 `KeyGen` from input keying material (at least 32 bytes).
    /// Deterministic: for tests and devnets only.
    ///
    /// # Errors
    /// [`Error::KeystoreKdfParams`] if `ikm` is shorter than 32 bytes.
    pub fn from_ikm(ikm: &[u8]) -> Result<Self> {
        let secret = SecretKey::key_gen(ikm, &[]).map_err(|e| Error::KeystoreKdfParams {
            reason: format!("key generation needs at least 32 bytes of key material ({e:?})"),
        })?;
        Ok(Self { secret })
    }

    /// The secret key, for signing.
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        self.secret.sk_to_pk()
    }

    /// The compressed 48-byte public key.
    pub fn public_key_bytes(&self) -> [u8; 48] {
        self.public_key().compress()
    }
}

/// A keystore password, wiped from memory on drop.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(Zeroizing::new(password.into()))
    }

    /// Reads a password file; one trailing newline (`\n` or `\r\n`) is not part of it.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read.
    pub fn from_file(path: &Path) -> Result<Self> {
        let mut text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Self::new(text))
    }

    /// EIP-2335 password processing: NFKD, then control codes (C0, C1, DEL) removed.
    fn processed(&self) -> Zeroizing<Vec<u8>> {
        let normalized: String =
            self.0.nfkd().filter(|c| !matches!(*c as u32, 0x00..=0x1f | 0x7f..=0x9f)).collect();
        Zeroizing::new(normalized.into_bytes())
    }
}

/// The key derivation function used to encrypt a new keystore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kdf {
    /// scrypt with `n = 2^log_n`.
    Scrypt {
        /// log2 of the CPU/memory cost `n`.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
    /// PBKDF2-HMAC-SHA256 with `c` iterations.
    Pbkdf2 {
        /// Iteration count.
        c: u32,
    },
}

impl Kdf {
    /// EIP-2335's scrypt parameters: `n = 262144, r = 8, p = 1`.
    pub const SCRYPT_DEFAULT: Kdf = Kdf::Scrypt { log_n: 18, r: 8, p: 1 };
    /// EIP-2335's PBKDF2 parameters: `c = 262144`.
    pub const PBKDF2_DEFAULT: Kdf = Kdf::Pbkdf2 { c: 262_144 };
}

impl Default for Kdf {
    fn default() -> Self {
        Self::SCRYPT_DEFAULT
    }
}

/// An EIP-2335 (version 4) keystore as stored in JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Keystore {
    /// The encrypted secret and how to decrypt it.
    pub crypto: Crypto,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The public key, hex without `0x`.
    pub pubkey: String,
    /// EIP-2334 derivation path; empty for keys not derived from a mnemonic.
    #[serde(default)]
    pub path: String,
    /// A random UUID identifying this keystore.
    pub uuid: String,
    /// Always 4.
    pub version: u32,
    /// Where it was read from (for error messages); not serialized.
    #[serde(skip)]
    origin: Option<PathBuf>,
}

/// The `crypto` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Crypto {
    /// The key derivation function.
    pub kdf: Module,
    /// The password checksum.
    pub checksum: Module,
    /// The cipher.
    pub cipher: Module,
}

/// A `{function, params, message}` module of the `crypto` object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Module {
    /// The function name, for example `scrypt` or `aes-128-ctr`.
    pub function: String,
    /// The function's parameters.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The module's message, hex.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScryptParams {
    dklen: u32,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pbkdf2Params {
    dklen: u32,
    c: u32,
    prf: String,
    salt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherParams {
    iv: String,
}

impl Keystore {
    /// Encrypts `key` under `password`.
    ///
    /// # Errors
    /// [`Error::Randomness`] if the OS random source fails, [`Error::KeystoreKdfParams`] for
    /// out-of-range KDF parameters.
    pub fn encrypt(key: &ProverKey, password: &Password, kdf: Kdf) -> Result<Self> {
        let mut salt = [0u8; 32];
        let mut iv = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| Error::Randomness { reason: e.to_string() })?;
        getrandom::fill(&mut iv).map_err(|e| Error::Randomness { reason: e.to_string() })?;
        let (function, params) = match kdf {
            Kdf::Scrypt { log_n, r, p } => {
                let n = 1u64.checked_shl(u32::from(log_n)).filter(|_| log_n < 64).ok_or(
                    Error::KeystoreKdfParams { reason: format!("scrypt log_n {log_n} too large") },
                )?;
                let params = serde_json::json!({
                    "dklen": DKLEN, "n": n, "r": r, "p": p, "salt": hex::encode(salt),
                });
                ("scrypt", params)
            }
            Kdf::Pbkdf2 { c } => {
                let params = serde_json::json!({
                    "dklen": DKLEN, "c": c, "prf": "hmac-sha256", "salt": hex::encode(salt),
                });
                ("pbkdf2", params)
            }
        };
        let serde_json::Value::Object(params) = params else {
            unreachable!("json! of an object literal is an object")
        };
        let kdf_module = Module { function: function.to_owned(), params, message: String::new() };
        let derived = derive_key(&kdf_module, password)?;
        let mut ciphertext = Zeroizing::new(key.secret.to_bytes().to_vec());
        apply_cipher(&derived, &iv, &mut ciphertext);
        let checksum = checksum(&derived, &ciphertext);
        let mut cipher_params = serde_json::Map::new();
        cipher_params.insert("iv".into(), hex::encode(iv).into());
        Ok(Self {
            crypto: Crypto {
                kdf: kdf_module,
                checksum: Module {
                    function: "sha256".into(),
                    params: serde_json::Map::new(),
                    message: hex::encode(checksum),
                },
                cipher: Module {
                    function: "aes-128-ctr".into(),
                    params: cipher_params,
                    message: hex::encode(ciphertext.as_slice()),
                },
            },
            description: "proving-sidecar prover key".into(),
            pubkey: hex::encode(key.public_key_bytes()),
            path: String::new(),
            uuid: uuid::Uuid::new_v4().to_string(),
            version: KEYSTORE_VERSION,
            origin: None,
        })
    }

    /// Parses keystore JSON; `origin` names the source in error messages.
    ///
    /// # Errors
    /// [`Error::KeystoreFormat`] if it is not a version-4 keystore with a valid pubkey.
    pub fn from_json(json: &str, origin: &Path) -> Result<Self> {
        let format = |reason: String| Error::KeystoreFormat { path: origin.to_owned(), reason };
        let mut keystore: Self = serde_json::from_str(json).map_err(|e| format(e.to_string()))?;
        keystore.origin = Some(origin.to_owned());
        if keystore.version != KEYSTORE_VERSION {
            return Err(format(format!("version {} (only 4 is supported)", keystore.version)));
        }
        keystore.pubkey_bytes()?;
        Ok(keystore)
    }

    /// Reads a keystore file (no password needed: the pubkey is in clear).
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read, else as [`Keystore::from_json`].
    pub fn read(path: &Path) -> Result<Self> {
        let json = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        Self::from_json(&json, path)
    }

    /// The keystore as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, maps and integers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the keystore to `path` with permissions `0600`, durably (fsynced).
    ///
    /// An existing file is kept and [`Error::KeyFileExists`] returned, unless `force`, in which
    /// case it is replaced atomically (write to a temporary file, then rename).
    ///
    /// # Errors
    /// [`Error::KeyFileExists`] or [`Error::Io`].
    pub fn write(&self, path: &Path, force: bool) -> Result<()> {
        let json = self.to_json();
        if !force {
            let file = open_private(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::KeyFileExists { path: path.to_owned() },
                _ => Error::io("creating", path, e),
            })?;
            return write_all_synced(file, json.as_bytes(), path);
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        let file = open_private(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        write_all_synced(file, json.as_bytes(), &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming to", path, e))?;
        Ok(())
    }

    /// The public key written in the file.
    ///
    /// # Errors
    /// [`Error::KeystoreFormat`] if it is not a valid compressed BLS12-381 G1 point.
    pub fn pubkey_bytes(&self) -> Result<[u8; 48]> {
        let format = |reason: String| Error::KeystoreFormat { path: self.origin(), reason };
        let bytes = decode_hex(&self.pubkey).map_err(|e| format(format!("pubkey: {e}")))?;
        let bytes: [u8; 48] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format(format!("pubkey has {} bytes, not 48", b.len())))?;
        PublicKey::key_validate(&bytes)
            .map_err(|e| format(format!("pubkey is not a valid BLS public key ({e:?})")))?;
        Ok(bytes)
    }

    /// Decrypts the secret key and checks it against the pubkey in the file.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] if the checksum fails, [`Error::KeystoreUnsupported`] /
    /// [`Error::KeystoreKdfParams`] / [`Error::KeystoreFormat`] for files this build cannot
    /// read, [`Error::InvalidSecretKey`] / [`Error::PubkeyMismatch`] if the secret is wrong.
    pub fn decrypt(&self, password: &Password) -> Result<ProverKey> {
        let path = self.origin();
        let format = |reason: String| Error::KeystoreFormat { path: path.clone(), reason };
        if self.crypto.checksum.function != "sha256" {
            return Err(Error::KeystoreUnsupported {
                field: "checksum",
                function: self.crypto.checksum.function.clone(),
                supported: "sha256",
            });
        }
        if self.crypto.cipher.function != "aes-128-ctr" {
            return Err(Error::KeystoreUnsupported {
                field: "cipher",
                function: self.crypto.cipher.function.clone(),
                supported: "aes-128-ctr",
            });
        }
        let cipher: CipherParams =
            serde_json::from_value(serde_json::Value::Object(self.crypto.cipher.params.clone()))
                .map_err(|e| format(format!("cipher params: {e}")))?;
        let iv: [u8; 16] = decode_hex(&cipher.iv)
            .map_err(|e| format(format!("cipher iv: {e}")))?
            .try_into()
            .map_err(|_| format("cipher iv must be 16 bytes".into()))?;
        let ciphertext = Zeroizing::new(
            decode_hex(&self.crypto.cipher.message)
                .map_err(|e| format(format!("cipher message: {e}")))?,
        );
        let expected_checksum = decode_hex(&self.crypto.checksum.message)
            .map_err(|e| format(format!("checksum message: {e}")))?;
        let derived = derive_key(&self.crypto.kdf, password)?;
        if checksum(&derived, &ciphertext).as_slice() != expected_checksum.as_slice() {
            return Err(Error::WrongPassword { path });
        }
        let mut secret = ciphertext;
        apply_cipher(&derived, &iv, &mut secret);
        let secret = SecretKey::from_bytes(&secret)
            .map_err(|_| Error::InvalidSecretKey { path: path.clone() })?;
        let key = ProverKey { secret };
        let expected = self.pubkey_bytes()?;
        let got = key.public_key_bytes();
        if got != expected {
            return Err(Error::PubkeyMismatch {
                path,
                got: hex::encode(got),
                expected: hex::encode(expected),
            });
        }
        Ok(key)
    }

    fn origin(&self) -> PathBuf {
        self.origin.clone().unwrap_or_else(|| PathBuf::from("<memory>"))
    }
}

/// Reads the keystore at `path` and decrypts it with `password`.
///
/// # Errors
/// As [`Keystore::read`] and [`Keystore::decrypt`].
pub fn load_key(path: &Path, password: &Password) -> Result<ProverKey> {
    Keystore::read(path)?.decrypt(password)
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn write_all_synced(mut file: std::fs::File, bytes: &[u8], path: &Path) -> Result<()> {
    file.write_all(bytes)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("writing", path, e))
}

fn decode_hex(text: &str) -> std::result::Result<Vec<u8>, hex::FromHexError> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text))
}

fn derive_key(kdf: &Module, password: &Password) -> Result<Zeroizing<[u8; DKLEN]>> {
    let bad = |reason: String| Error::KeystoreKdfParams { reason };
    let params = serde_json::Value::Object(kdf.params.clone());
    let password = password.processed();
    let mut out = Zeroizing::new([0u8; DKLEN]);
    match kdf.function.as_str() {
        "scrypt" => {
            let p: ScryptParams = serde_json::from_value(params).map_err(|e| bad(e.to_string()))?;
            check_dklen(p.dklen)?;
            if !p.n.is_power_of_two() || p.n < 2 || p.n > 1 << 20 {
                return Err(bad(format!("scrypt n = {} (a power of two, 2..=2^20)", p.n)));
            }
            let log_n = u8::try_from(p.n.trailing_zeros()).map_err(|e| bad(e.to_string()))?;
            let params = scrypt::Params::new(log_n, p.r, p.p, DKLEN)
                .map_err(|e| bad(format!("scrypt r = {}, p = {}: {e}", p.r, p.p)))?;
            let salt = decode_hex(&p.salt).map_err(|e| bad(format!("salt: {e}")))?;
            scrypt::scrypt(&password, &salt, &params, out.as_mut())
                .map_err(|e| bad(e.to_string()))?;
        }
        "pbkdf2" => {
            let p: Pbkdf2Params = serde_json::from_value(params).map_err(|e| bad(e.to_string()))?;
            check_dklen(p.dklen)?;
            if p.prf != "hmac-sha256" {
                return Err(Error::KeystoreUnsupported {
                    field: "kdf prf",
                    function: p.prf,
                    supported: "hmac-sha256",
                });
            }
            if p.c == 0 {
                return Err(bad("pbkdf2 c must be at least 1".into()));
            }
            let salt = decode_hex(&p.salt).map_err(|e| bad(format!("salt: {e}")))?;
            pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, p.c, out.as_mut());
        }
        other => {
            return Err(Error::KeystoreUnsupported {
                field: "kdf",
                function: other.to_owned(),
                supported: "scrypt, pbkdf2",
            });
        }
    }
    Ok(out)
}

fn check_dklen(dklen: u32) -> Result<()> {
    if dklen as usize != DKLEN {
        return Err(Error::KeystoreKdfParams { reason: format!("dklen {dklen} (must be 32)") });
    }
    Ok(())
}

fn checksum(derived: &[u8; DKLEN], ciphertext: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(&derived[16..32]);
    hasher.update(ciphertext);
    hasher.finalize().into()
}

fn apply_cipher(derived: &[u8; DKLEN], iv: &[u8; 16], data: &mut [u8]) {
    let key: [u8; 16] = derived[..16].try_into().unwrap_or([0; 16]);
    let mut cipher = Aes128Ctr::new(&key.into(), iv.into());
    cipher.apply_keystream(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fast KDF for tests (the defaults take a second or more).
    const FAST: Kdf = Kdf::Scrypt { log_n: 4, r: 8, p: 1 };

    /// The EIP-2335 test vectors (the password is "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑", NFKD "testpassword🔑").
    fn eip2335_vector(kdf: &str, params: &str, checksum: &str, cipher: &str) -> String {
        format!(
            r#"{{"crypto": {{"kdf": {{"function": "{kdf}", "params": {params}, "message": ""}},
            "checksum": {{"function": "sha256", "params": {{}}, "message": "{checksum}"}},
            "cipher": {{"function": "aes-128-ctr", "params": {{"iv": "264daa3f303d7259501c93d997d84fe6"}},
            "message": "{cipher}"}}}},
            "description": "test vector",
            "pubkey": "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07",
            "path": "m/12381/60/3141592653/589793238",
            "uuid": "1d85ae20-35c5-4611-98e8-aa14a633906f", "version": 4}}"#
        )
    }

    /// Regression (fuzz target `keystore`): KDF params are kept as opaque JSON; a float one
    /// must read back as written, so the keystore re-serialises to the same text.
    #[test]
    fn opaque_float_params_round_trip_exactly() {
        let json = eip2335_vector(
            "pbkdf2",
            r#"{"dklen": 32, "c": 8.888888888888887e+46, "prf": ":hmac-sha638", "salt": "00"}"#,
            "84ef4f2f08d5b32109f0be6d40f6497deaeb27af4aea5bbbdf51e5e82c8b3a9a",
            "02d57700a62ce023f008f818b3146899942c326ece916e8ad2a053b982d2afd1",
        );
        let first = Keystore::from_json(&json, Path::new("fuzz.json")).unwrap().to_json();
        let again = Keystore::from_json(&first, Path::new("fuzz.json")).unwrap().to_json();
        assert_eq!(again, first);
        assert!(first.contains("8.888888888888887e+46"), "{first}");
    }

    #[test]
    fn eip2335_golden_vectors_decrypt() {
        const SALT: &str = "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3";
        const SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
        let scrypt = eip2335_vector(
            "scrypt",
            &format!(r#"{{"dklen": 32, "n": 262144, "p": 1, "r": 8, "salt": "{SALT}"}}"#),
            "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484",
            "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f",
        );
        let pbkdf2 = eip2335_vector(
            "pbkdf2",
            &format!(r#"{{"dklen": 32, "c": 262144, "prf": "hmac-sha256", "salt": "{SALT}"}}"#),
            "8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1",
            "cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad",
        );
        let password = Password::new(
            "\u{1D531}\u{1D522}\u{1D530}\u{1D531}\u{1D52D}\u{1D51E}\u{1D530}\u{1D530}\u{1D534}\u{1D52C}\u{1D52F}\u{1D521}\u{1F511}",
        );
        for json in [scrypt, pbkdf2] {
            let ks = Keystore::from_json(&json, Path::new("vector.json")).unwrap();
            let key = ks.decrypt(&password).unwrap();
            assert_eq!(hex::encode(key.secret_key().to_bytes()), SECRET);
            assert!(matches!(
                ks.decrypt(&Password::new("testpassword")),
                Err(Error::WrongPassword { .. })
            ));
        }
    }

    #[test]
    fn round_trip_scrypt_and_pbkdf2() {
        let key = ProverKey::generate().unwrap();
        for kdf in [FAST, Kdf::Pbkdf2 { c: 16 }] {
            let pw = Password::new("correct horse");
            let ks = Keystore::encrypt(&key, &pw, kdf).unwrap();
            let parsed = Keystore::from_json(&ks.to_json(), Path::new("k.json")).unwrap();
            let back = parsed.decrypt(&pw).unwrap();
            assert_eq!(back.public_key_bytes(), key.public_key_bytes());
            assert!(matches!(
                parsed.decrypt(&Password::new("wrong")),
                Err(Error::WrongPassword { .. })
            ));
        }
    }

    #[test]
    fn generated_keys_differ() {
        let a = ProverKey::generate().unwrap();
        let b = ProverKey::generate().unwrap();
        assert_ne!(a.public_key_bytes(), b.public_key_bytes());
    }

    #[test]
    fn password_processing_strips_control_codes_and_normalizes() {
        let p = Password::new("\u{1D531}\u{1D522}\u{1D530}\u{1D531}\u{7f}a\u{85}\n");
        assert_eq!(p.processed().as_slice(), b"testa");
    }

    #[test]
    fn password_file_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "secret \r\n").unwrap();
        assert_eq!(Password::from_file(&path).unwrap().0.as_str(), "secret ");
    }

    #[test]
    fn unsupported_functions_are_named() {
        let key = ProverKey::from_ikm(&[7; 32]).unwrap();
        let pw = Password::new("");
        let mut ks = Keystore::encrypt(&key, &pw, FAST).unwrap();
        ks.crypto.kdf.function = "argon2".into();
        assert!(matches!(
            ks.decrypt(&pw),
            Err(Error::KeystoreUnsupported { field: "kdf", function, .. }) if function == "argon2"
        ));
        let mut ks = Keystore::encrypt(&key, &pw, FAST).unwrap();
        ks.crypto.cipher.function = "aes-256-gcm".into();
        assert!(matches!(ks.decrypt(&pw), Err(Error::KeystoreUnsupported { field: "cipher", .. })));
    }

    #[test]
    fn tampered_pubkey_is_detected() {
        let key = ProverKey::from_ikm(&[1; 32]).unwrap();
        let other = ProverKey::from_ikm(&[2; 32]).unwrap();
        let pw = Password::new("pw");
        let mut ks = Keystore::encrypt(&key, &pw, FAST).unwrap();
        ks.pubkey = hex::encode(other.public_key_bytes());
        assert!(matches!(ks.decrypt(&pw), Err(Error::PubkeyMismatch { .. })));
    }

    #[test]
    fn malformed_json_is_a_format_error() {
        for json in ["", "{}", "{\"version\": 4}", "[1,2]"] {
            assert!(matches!(
                Keystore::from_json(json, Path::new("x")),
                Err(Error::KeystoreFormat { .. })
            ));
        }
    }

    #[test]
    fn file_is_private_and_never_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let key = ProverKey::generate().unwrap();
        let pw = Password::new("pw");
        let ks = Keystore::encrypt(&key, &pw, FAST).unwrap();
        ks.write(&path, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = Keystore::encrypt(&ProverKey::generate().unwrap(), &pw, FAST).unwrap();
        assert!(matches!(other.write(&path, false), Err(Error::KeyFileExists { .. })));
        assert_eq!(load_key(&path, &pw).unwrap().public_key_bytes(), key.public_key_bytes());
        other.write(&path, true).unwrap();
        let replaced = load_key(&path, &pw).unwrap();
        assert_eq!(replaced.public_key_bytes(), other.pubkey_bytes().unwrap());
    }
}
