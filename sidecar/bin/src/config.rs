//! The node's configuration: `configs/sidecar.toml`, typed.
//!
//! Precedence, lowest first: built-in defaults, the config file, environment variables, CLI
//! flags. The CLI layer (clap, with `env` fallbacks) produces a [`ConfigOverrides`] that is
//! applied on top of the file; [`Config::validate`] then checks every value and names the key of
//! the first bad one.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use sidecar_p2p::P2pConfig;

use crate::{Error, Result};

/// The whole config file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[node]`: data directory and HTTP listener.
    pub node: NodeConfig,
    /// `[beacon]`: the beacon node(s) to follow.
    pub beacon: BeaconConfig,
    /// `[p2p]`: libp2p gossip and discv5 discovery.
    pub p2p: P2pConfig,
    /// `[prover]`: prover mode.
    pub prover: ProverConfig,
    /// `[logging]`: log filter and format.
    pub logging: LoggingConfig,
    /// `[genesis]`: the provers every node of the network knows from the start.
    pub genesis: GenesisConfig,
    /// `[inclusion]`: canonical settlement and the validator client whose proposals include
    /// this node's records.
    pub inclusion: InclusionConfig,
    /// `[storage]`: disk safety of the node's store.
    pub storage: StorageConfig,
}

/// The most slots `storage.retention_slots` may be (about 9 days of 12-second slots: inclusion
/// records of that many slots stay in memory).
const MAX_RETENTION_SLOTS: u64 = 65_536;

/// `[storage]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Below this many free bytes on the data directory's filesystem the validator node refuses
    /// new work (HTTP submissions answer 503; gossip and sync are ignored), keeps following the
    /// chain and serving reads, and resumes when space returns. 0: never.
    pub min_free_bytes: u64,
    /// Slots of messages and proofs kept before they are pruned (and served to peers that
    /// sync); ledgers, balances and the registry are kept for ever.
    pub retention_slots: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            min_free_bytes: 256 * 1024 * 1024,
            retention_slots: sidecar_node::DEFAULT_RETENTION_SLOTS,
        }
    }
}

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the database and the node's network key live.
    pub data_dir: PathBuf,
    /// Address of the HTTP server (proving extension API and `/metrics`).
    pub http_address: SocketAddr,
    /// The reward table and round parameters (`configs/rewards.toml` format); `None`: the
    /// built-in defaults (equal to the shipped `configs/rewards.toml`). Every node of a network
    /// must use the same table, or their settlements differ.
    pub rewards_file: Option<PathBuf>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("sidecar-data"),
            http_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5062),
            rewards_file: None,
        }
    }
}

impl NodeConfig {
    /// The database file: `<data_dir>/node.redb` (where the validator node keeps its store).
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("node.redb")
    }

    /// The node's network key file: `<data_dir>/network/node-key`.
    pub fn node_key_path(&self) -> PathBuf {
        self.data_dir.join("network").join("node-key")
    }
}

/// `[beacon]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeaconConfig {
    /// Beacon API base URLs; the first is primary, the others are fallbacks.
    pub urls: Vec<String>,
    /// Timeout of one Beacon API request, in milliseconds.
    pub request_timeout_ms: u64,
    /// Delay before reconnecting the event stream after it drops, in milliseconds.
    pub reconnect_delay_ms: u64,
}

impl Default for BeaconConfig {
    fn default() -> Self {
        Self {
            urls: vec!["http://127.0.0.1:5052".to_owned()],
            request_timeout_ms: 4_000,
            reconnect_delay_ms: 1_000,
        }
    }
}

impl BeaconConfig {
    /// The request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The reconnect delay as a [`Duration`].
    pub fn reconnect_delay(&self) -> Duration {
        Duration::from_millis(self.reconnect_delay_ms)
    }
}

/// `[prover]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProverConfig {
    /// The prover's EIP-2335 BLS keystore (required in prover mode).
    pub key_file: Option<PathBuf>,
    /// File holding the keystore password (else `SIDECAR_KEYSTORE_PASSWORD`).
    pub password_file: Option<PathBuf>,
    /// Proving threads; 0 means all cores.
    pub threads: usize,
}

impl ProverConfig {
    /// The number of proving threads to use (`threads`, or all cores when 0).
    pub fn effective_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            self.threads
        }
    }
}

/// `[genesis]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenesisConfig {
    /// `[[genesis.provers]]`: provers registered from genesis (indices from 0 in public-key
    /// order). Every node of a network must list the same provers.
    pub provers: Vec<GenesisProver>,
}

/// One `[[genesis.provers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisProver {
    /// The prover's BLS public key: 48 bytes, `0x`-prefixed hex (compressed G1 point).
    pub pubkey: String,
    /// Its stake in Gwei (at least 1).
    pub stake: u64,
    /// Number of GPUs it declares.
    #[serde(default)]
    pub gpu_count: u32,
    /// Memory per GPU in MiB (0 for CPU proving).
    #[serde(default)]
    pub gpu_memory_mib: u64,
    /// Largest trace it can prove, as `log2` of the row count.
    #[serde(default = "default_max_trace_log_rows")]
    pub max_trace_log_rows: u8,
}

fn default_max_trace_log_rows() -> u8 {
    20
}

/// `[inclusion]`: canonical rounds (`sidecar run`).
///
/// With `enabled`, every block is settled from the canonical inclusion records that proposers'
/// sidecars commit to in their blocks' graffiti; with a validator client (`keymanager_url` and
/// `keymanager_token_file`), this node also builds the records of its validators' proposals and
/// sets their graffiti through the keymanager API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InclusionConfig {
    /// Settle from canonical inclusion records (the default); `false`: settle from the node's
    /// own clock, the mode before canonical rounds, for experiments. Every sidecar of a network
    /// must use the same value.
    pub enabled: bool,
    /// Base URL of the validator client's keymanager API, e.g. `http://127.0.0.1:5500`; needs
    /// `keymanager_token_file`.
    pub keymanager_url: Option<String>,
    /// The validator client's keymanager API token file (e.g. Lodestar's
    /// `validator-db/api-token.txt`, Lighthouse's `validators/api-token.txt`); needs
    /// `keymanager_url`.
    pub keymanager_token_file: Option<PathBuf>,
    /// The served validators' BLS public keys (48 bytes, `0x`-prefixed hex); empty: every key the
    /// validator client lists. Needs `keymanager_url`.
    pub validators: Vec<String>,
}

impl Default for InclusionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            keymanager_url: None,
            keymanager_token_file: None,
            validators: Vec::new(),
        }
    }
}

/// `[logging]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A `tracing` filter directive, for example `info,sidecar=debug`.
    pub filter: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { filter: "info".to_owned(), format: LogFormat::Compact }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable, one line per event.
    #[default]
    Compact,
    /// One JSON object per line.
    Json,
}

/// Values given on the command line or in the environment; `None` leaves the file's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// `node.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `node.http_address`.
    pub http_address: Option<SocketAddr>,
    /// `beacon.urls`.
    pub beacon_urls: Option<Vec<String>>,
    /// `p2p.listen_address`.
    pub listen_address: Option<IpAddr>,
    /// `p2p.tcp_port`.
    pub tcp_port: Option<u16>,
    /// `p2p.discovery_port`.
    pub discovery_port: Option<u16>,
    /// `p2p.bootnodes`.
    pub bootnodes: Option<Vec<String>>,
    /// `prover.key_file`.
    pub key_file: Option<PathBuf>,
    /// `prover.password_file`.
    pub password_file: Option<PathBuf>,
    /// `prover.threads`.
    pub threads: Option<usize>,
    /// `logging.filter`.
    pub log_filter: Option<String>,
    /// `logging.format`.
    pub log_format: Option<LogFormat>,
    /// `inclusion.enabled`.
    pub inclusion_enabled: Option<bool>,
    /// `storage.min_free_bytes`.
    pub min_free_bytes: Option<u64>,
    /// `storage.retention_slots`.
    pub retention_slots: Option<u64>,
    /// `inclusion.keymanager_url`.
    pub keymanager_url: Option<String>,
    /// `inclusion.keymanager_token_file`.
    pub keymanager_token_file: Option<PathBuf>,
    /// `inclusion.validators`.
    pub inclusion_validators: Option<Vec<String>>,
}

impl Config {
    /// Parses a config from TOML text; `path` is only used in error messages.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] on malformed TOML, unknown keys or wrong types.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text)
            .map_err(|e| Error::ConfigParse { path: path.to_owned(), source: Box::new(e) })
    }

    /// Reads and parses a config file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::ConfigParse`] if it is malformed.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        Self::from_toml(&text, path)
    }

    /// Loads `path` if given (else the defaults), applies `overrides` and validates the result.
    ///
    /// # Errors
    /// Any error of [`Config::load`] or [`Config::validate`].
    pub fn resolve(path: Option<&Path>, overrides: &ConfigOverrides) -> Result<Self> {
        let mut config = match path {
            Some(path) => Self::load(path)?,
            None => Self::default(),
        };
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    /// Applies command-line and environment overrides.
    pub fn apply(&mut self, o: &ConfigOverrides) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        set(&mut self.node.data_dir, &o.data_dir);
        set(&mut self.node.http_address, &o.http_address);
        set(&mut self.beacon.urls, &o.beacon_urls);
        set(&mut self.p2p.listen_address, &o.listen_address);
        set(&mut self.p2p.tcp_port, &o.tcp_port);
        set(&mut self.p2p.discovery_port, &o.discovery_port);
        set(&mut self.p2p.bootnodes, &o.bootnodes);
        if o.key_file.is_some() {
            self.prover.key_file.clone_from(&o.key_file);
        }
        if o.password_file.is_some() {
            self.prover.password_file.clone_from(&o.password_file);
        }
        set(&mut self.prover.threads, &o.threads);
        set(&mut self.logging.filter, &o.log_filter);
        set(&mut self.logging.format, &o.log_format);
        set(&mut self.inclusion.enabled, &o.inclusion_enabled);
        if o.keymanager_url.is_some() {
            self.inclusion.keymanager_url.clone_from(&o.keymanager_url);
        }
        if o.keymanager_token_file.is_some() {
            self.inclusion.keymanager_token_file.clone_from(&o.keymanager_token_file);
        }
        set(&mut self.inclusion.validators, &o.inclusion_validators);
        set(&mut self.storage.min_free_bytes, &o.min_free_bytes);
        set(&mut self.storage.retention_slots, &o.retention_slots);
    }

    /// Checks every value; the error names the key of the first bad one.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`].
    pub fn validate(&self) -> Result<()> {
        if self.node.data_dir.as_os_str().is_empty() {
            return Err(Error::invalid("node.data_dir", "\"\"", "must not be empty"));
        }
        for url in &self.beacon.urls {
            validate_url("beacon.urls", url)?;
        }
        if self.beacon.request_timeout_ms == 0 {
            return Err(Error::invalid("beacon.request_timeout_ms", 0, "must be greater than 0"));
        }
        if self.beacon.reconnect_delay_ms == 0 {
            return Err(Error::invalid("beacon.reconnect_delay_ms", 0, "must be greater than 0"));
        }
        for enr in &self.p2p.bootnodes {
            sidecar_p2p::Enr::from_str(enr).map_err(|e| {
                Error::invalid("p2p.bootnodes", enr, format!("not a valid ENR: {e}"))
            })?;
        }
        sidecar_p2p::validate_topic_prefix(&self.p2p.topic_prefix)
            .map_err(|reason| Error::invalid("p2p.topic_prefix", &self.p2p.topic_prefix, reason))?;
        if self.p2p.target_peers == 0 {
            return Err(Error::invalid("p2p.target_peers", 0, "must be greater than 0"));
        }
        let retention = self.storage.retention_slots;
        if !(sidecar_node::MIN_RETENTION_SLOTS..=MAX_RETENTION_SLOTS).contains(&retention) {
            return Err(Error::invalid(
                "storage.retention_slots",
                retention,
                format!(
                    "must be {}..={MAX_RETENTION_SLOTS} (past the reach of a reorg and of a \
                     message's inclusion)",
                    sidecar_node::MIN_RETENTION_SLOTS
                ),
            ));
        }
        if self.prover.threads > 4096 {
            return Err(Error::invalid("prover.threads", self.prover.threads, "at most 4096"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.logging.filter).map_err(|e| {
            Error::invalid("logging.filter", &self.logging.filter, format!("bad directive: {e}"))
        })?;
        if let Some(path) = &self.node.rewards_file
            && path.as_os_str().is_empty()
        {
            return Err(Error::invalid("node.rewards_file", "\"\"", "must not be empty"));
        }
        self.genesis_provers()?;
        self.inclusion_validators()?;
        self.validate_validator_client()?;
        Ok(())
    }

    /// Checks the validator client of `[inclusion]`: `keymanager_url` an `http(s)` URL,
    /// `keymanager_url` and `keymanager_token_file` both set or neither, and `validators` only
    /// with a validator client.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming the key that is bad or missing.
    pub(crate) fn validate_validator_client(&self) -> Result<()> {
        let inclusion = &self.inclusion;
        if let Some(url) = &inclusion.keymanager_url {
            validate_url("inclusion.keymanager_url", url)?;
        }
        if let Some(path) = &inclusion.keymanager_token_file
            && path.as_os_str().is_empty()
        {
            return Err(Error::invalid(
                "inclusion.keymanager_token_file",
                "\"\"",
                "must not be empty",
            ));
        }
        match (&inclusion.keymanager_url, &inclusion.keymanager_token_file) {
            (Some(url), None) => Err(Error::invalid(
                "inclusion.keymanager_token_file",
                "(unset)",
                format!(
                    "inclusion.keymanager_url = {url} needs the validator client's API token file \
                     (--keymanager-token-file FILE)"
                ),
            )),
            (None, Some(path)) => Err(Error::invalid(
                "inclusion.keymanager_url",
                "(unset)",
                format!(
                    "inclusion.keymanager_token_file = {} needs the keymanager API URL \
                     (--keymanager-url URL)",
                    path.display()
                ),
            )),
            (None, None) if !inclusion.validators.is_empty() => Err(Error::invalid(
                "inclusion.validators",
                inclusion.validators.join(","),
                "validators are served through a validator client: set \
                 inclusion.keymanager_url and inclusion.keymanager_token_file",
            )),
            _ => Ok(()),
        }
    }

    /// The served validators of `inclusion.validators`, in canonical form (`0x` and lowercase
    /// hex), in file order.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `inclusion.validators` for a key that is not `0x` and 48
    /// bytes of hex, not a valid BLS public key, or listed twice.
    pub fn inclusion_validators(&self) -> Result<Vec<String>> {
        const KEY: &str = "inclusion.validators";
        let mut seen = std::collections::BTreeSet::new();
        let mut keys = Vec::with_capacity(self.inclusion.validators.len());
        for text in &self.inclusion.validators {
            let bytes = text
                .strip_prefix("0x")
                .and_then(|digits| hex::decode(digits).ok())
                .and_then(|bytes| <[u8; 48]>::try_from(bytes).ok())
                .ok_or_else(|| Error::invalid(KEY, text, "not 0x and 48 bytes of hex"))?;
            let pubkey = phase_engine::BlsPublicKey::from(bytes);
            if blst::min_pk::PublicKey::key_validate(pubkey.as_slice()).is_err() {
                return Err(Error::invalid(
                    KEY,
                    text,
                    "not a valid BLS public key (not on the curve, not in the subgroup, or the \
                     identity)",
                ));
            }
            if !seen.insert(pubkey) {
                return Err(Error::invalid(KEY, text, "listed twice"));
            }
            keys.push(pubkey.to_string());
        }
        Ok(keys)
    }

    /// Checks what `run` (validator mode) needs beyond [`Config::validate`]: a beacon node and
    /// a readable, valid rewards file if one is named.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `beacon.urls` if no beacon node is configured, or the
    /// errors of [`Config::rewards`].
    pub fn validate_for_run(&self) -> Result<()> {
        if self.beacon.urls.is_empty() {
            return Err(Error::invalid("beacon.urls", "[]", "at least one beacon node URL needed"));
        }
        self.rewards()?;
        Ok(())
    }

    /// The reward table and round parameters: `node.rewards_file` read and validated, or the
    /// built-in defaults when it is unset.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `node.rewards_file` when the file cannot be read, does not
    /// parse, or fails validation (the message names the bad key inside it).
    pub fn rewards(&self) -> Result<rewards::Config> {
        let Some(path) = &self.node.rewards_file else {
            return Ok(rewards::Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid("node.rewards_file", path.display(), format!("cannot be read: {e}"))
        })?;
        rewards::Config::from_toml_str(&text)
            .map_err(|e| Error::invalid("node.rewards_file", path.display(), e.to_string()))
    }

    /// The genesis provers of `[[genesis.provers]]` as registry records (active, reputation 0),
    /// in file order.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `genesis.provers[i].<key>` for a malformed or invalid
    /// public key, a duplicate key or a zero stake.
    pub fn genesis_provers(&self) -> Result<Vec<phase_engine::ProverRecord>> {
        let mut seen = std::collections::BTreeSet::new();
        let mut records = Vec::with_capacity(self.genesis.provers.len());
        for (i, p) in self.genesis.provers.iter().enumerate() {
            let key = |field: &str| format!("genesis.provers[{i}].{field}");
            let pubkey = phase_engine::BlsPublicKey::from_str(&p.pubkey).map_err(|e| {
                Error::invalid(&key("pubkey"), &p.pubkey, format!("not 48 bytes of hex: {e}"))
            })?;
            if blst::min_pk::PublicKey::key_validate(pubkey.as_slice()).is_err() {
                return Err(Error::invalid(
                    &key("pubkey"),
                    &p.pubkey,
                    "not a valid BLS public key (not on the curve, not in the subgroup, or the \
                     identity)",
                ));
            }
            if !seen.insert(pubkey) {
                return Err(Error::invalid(&key("pubkey"), &p.pubkey, "listed twice"));
            }
            if p.stake == 0 {
                return Err(Error::invalid(&key("stake"), 0, "must be greater than 0"));
            }
            records.push(phase_engine::ProverRecord {
                pubkey,
                stake: p.stake,
                capabilities: phase_engine::Capabilities {
                    gpu_count: p.gpu_count,
                    gpu_memory_mib: p.gpu_memory_mib,
                    max_trace_log_rows: p.max_trace_log_rows,
                },
                active: true,
                reputation: 0,
            });
        }
        Ok(records)
    }

    /// Checks what prover mode needs beyond [`Config::validate`]: a readable key file.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `prover.key_file`.
    pub fn validate_for_prover(&self) -> Result<()> {
        let Some(key) = &self.prover.key_file else {
            return Err(Error::invalid(
                "prover.key_file",
                "(unset)",
                "prover mode needs --key FILE",
            ));
        };
        if !key.is_file() {
            return Err(Error::invalid("prover.key_file", key.display(), "no such file"));
        }
        Ok(())
    }
}

/// Accepts `http://` and `https://` URLs with a host.
fn validate_url(key: &str, url: &str) -> Result<()> {
    let uri: axum::http::Uri =
        url.parse().map_err(|e| Error::invalid(key, url, format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(Error::invalid(key, url, "the scheme must be http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(Error::invalid(key, url, "the URL has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/sidecar.toml")
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn shipped_example_equals_the_defaults() {
        let config = Config::load(&example()).unwrap();
        config.validate().unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("", Path::new("x")).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("[p2p]\ntcp_prot = 1\n", Path::new("c.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("tcp_prot"), "{text}");
        assert!(Config::from_toml("[nodes]\n", Path::new("c.toml")).is_err());
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("[beacon]\nurls = [\"ftp://x\"]\n", "beacon.urls"),
            ("[beacon]\nurls = [\"not a url\"]\n", "beacon.urls"),
            ("[beacon]\nrequest_timeout_ms = 0\n", "beacon.request_timeout_ms"),
            ("[p2p]\nbootnodes = [\"enr:-garbage\"]\n", "p2p.bootnodes"),
            ("[p2p]\ntopic_prefix = \"a/b\"\n", "p2p.topic_prefix"),
            ("[p2p]\ntopic_prefix = \"\"\n", "p2p.topic_prefix"),
            ("[p2p]\ntarget_peers = 0\n", "p2p.target_peers"),
            ("[logging]\nfilter = \"info,[[\"\n", "logging.filter"),
        ];
        for (text, key) in cases {
            let config = Config::from_toml(text, Path::new("c.toml")).unwrap();
            match config.validate() {
                Err(Error::ConfigInvalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error naming {key}, got {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_types_are_parse_errors() {
        assert!(matches!(
            Config::from_toml("[p2p]\ntcp_port = 70000\n", Path::new("c.toml")),
            Err(Error::ConfigParse { .. })
        ));
        assert!(matches!(
            Config::from_toml("[logging]\nformat = \"xml\"\n", Path::new("c.toml")),
            Err(Error::ConfigParse { .. })
        ));
    }

    #[test]
    fn overrides_win_over_the_file() {
        let mut config =
            Config::from_toml("[p2p]\ntcp_port = 1234\ndiscovery_port = 1235\n", Path::new("x"))
                .unwrap();
        let overrides = ConfigOverrides {
            tcp_port: Some(4321),
            beacon_urls: Some(vec!["http://a:1".into(), "https://b".into()]),
            key_file: Some("k.json".into()),
            ..Default::default()
        };
        config.apply(&overrides);
        assert_eq!(config.p2p.tcp_port, 4321);
        assert_eq!(config.p2p.discovery_port, 1235);
        assert_eq!(config.beacon.urls.len(), 2);
        assert_eq!(config.prover.key_file, Some(PathBuf::from("k.json")));
        config.validate().unwrap();
    }

    #[test]
    fn storage_minimum_free_space_comes_from_the_file_and_the_flag() {
        assert_eq!(Config::default().storage.min_free_bytes, 256 << 20);
        let mut config =
            Config::from_toml("[storage]\nmin_free_bytes = 0\n", Path::new("x")).unwrap();
        assert_eq!(config.storage.min_free_bytes, 0, "0 turns the guard off");
        config.apply(&ConfigOverrides { min_free_bytes: Some(5_000), ..Default::default() });
        assert_eq!(config.storage.min_free_bytes, 5_000);
        assert_eq!(Config::default().storage.retention_slots, 1024);
        config.apply(&ConfigOverrides { retention_slots: Some(200), ..Default::default() });
        assert_eq!(config.storage.retention_slots, 200);
        config.validate().unwrap();
        let short = Config::from_toml("[storage]\nretention_slots = 16\n", Path::new("x")).unwrap();
        let e = short.validate().unwrap_err().to_string();
        assert!(e.contains("storage.retention_slots"), "{e}");
        let err = Config::from_toml("[storage]\nmin_free = 1\n", Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("min_free"), "{err}");
    }

    fn pubkey_hex(i: u8) -> String {
        let key = phase_engine::bls::SecretKey::from_ikm(&[i; 32]).unwrap();
        format!("{}", key.public_key())
    }

    #[test]
    fn genesis_provers_become_registry_records() {
        let text = format!(
            "[[genesis.provers]]\npubkey = \"{}\"\nstake = 32000000000\n\n\
             [[genesis.provers]]\npubkey = \"{}\"\nstake = 1\ngpu_count = 2\n\
             gpu_memory_mib = 24576\nmax_trace_log_rows = 24\n",
            pubkey_hex(1),
            pubkey_hex(2)
        );
        let config = Config::from_toml(&text, Path::new("c.toml")).unwrap();
        config.validate().unwrap();
        let records = config.genesis_provers().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(format!("{}", records[0].pubkey), pubkey_hex(1));
        assert_eq!(records[0].stake, 32_000_000_000);
        assert_eq!(records[0].capabilities.max_trace_log_rows, 20);
        assert!(records[0].active);
        assert_eq!(records[1].capabilities.gpu_count, 2);
        assert_eq!(records[1].capabilities.gpu_memory_mib, 24_576);
        assert_eq!(records[1].capabilities.max_trace_log_rows, 24);
    }

    #[test]
    fn bad_genesis_provers_name_the_entry_and_key() {
        let entry = |pubkey: &str, stake: u64| {
            format!("[[genesis.provers]]\npubkey = \"{pubkey}\"\nstake = {stake}\n")
        };
        let not_on_curve = format!("0x{}", "11".repeat(48));
        let cases = [
            (entry("0x1234", 1), "genesis.provers[0].pubkey"),
            (entry(&not_on_curve, 1), "genesis.provers[0].pubkey"),
            (entry(&pubkey_hex(1), 0), "genesis.provers[0].stake"),
            (entry(&pubkey_hex(1), 1) + &entry(&pubkey_hex(1), 1), "genesis.provers[1].pubkey"),
        ];
        for (text, key) in cases {
            let config = Config::from_toml(&text, Path::new("c.toml")).unwrap();
            match config.validate() {
                Err(Error::ConfigInvalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error naming {key}, got {other:?}"),
            }
        }
        // A missing stake is a parse error naming the key.
        let err = Config::from_toml(
            &format!("[[genesis.provers]]\npubkey = \"{}\"\n", pubkey_hex(1)),
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("stake"), "{err}");
    }

    #[test]
    fn rewards_file_is_read_and_validated_naming_the_key() {
        assert_eq!(Config::default().rewards().unwrap(), rewards::Config::default());
        let dir = tempfile::tempdir().unwrap();
        let mut file = rewards::RewardsFile::default();
        file.phases.t1_ms = 1234;
        let good = dir.path().join("rewards.toml");
        std::fs::write(&good, file.to_toml_string()).unwrap();
        let mut config = Config::default();
        config.node.rewards_file = Some(good);
        config.validate_for_run().unwrap();
        assert_eq!(config.rewards().unwrap().to_file().phases.t1_ms, 1234);

        for (name, text) in
            [("missing.toml", None), ("bad.toml", Some("REWARD_T1_VALIDATOR = \"x\"\n"))]
        {
            let path = dir.path().join(name);
            if let Some(text) = text {
                std::fs::write(&path, text).unwrap();
            }
            config.node.rewards_file = Some(path);
            match config.validate_for_run() {
                Err(Error::ConfigInvalid { key, .. }) => assert_eq!(key, "node.rewards_file"),
                other => {
                    panic!("{name}: expected an error naming node.rewards_file, got {other:?}")
                }
            }
        }
        // A value the rewards crate rejects: the message names the inner key too.
        file.phases.t1_ms = 0;
        let zero = dir.path().join("zero.toml");
        std::fs::write(&zero, file.to_toml_string()).unwrap();
        config.node.rewards_file = Some(zero);
        let err = config.rewards().unwrap_err().to_string();
        assert!(err.contains("node.rewards_file") && err.contains("t1_ms"), "{err}");
    }

    #[test]
    fn inclusion_defaults_to_canonical_settlement_without_a_validator_client() {
        let inclusion = Config::default().inclusion;
        assert!(inclusion.enabled);
        assert_eq!(inclusion.keymanager_url, None);
        assert_eq!(inclusion.keymanager_token_file, None);
        assert!(inclusion.validators.is_empty());
        let config = Config::from_toml("[inclusion]\n", Path::new("c.toml")).unwrap();
        assert_eq!(config, Config::default());
        assert!(config.inclusion_validators().unwrap().is_empty());
    }

    #[test]
    fn inclusion_section_parses_and_validators_are_canonical() {
        let upper = format!("0x{}", pubkey_hex(1)[2..].to_uppercase());
        let text = format!(
            "[inclusion]\nenabled = false\nkeymanager_url = \"http://127.0.0.1:5500\"\n\
             keymanager_token_file = \"vc/api-token.txt\"\nvalidators = [\"{upper}\", \"{}\"]\n",
            pubkey_hex(2)
        );
        let config = Config::from_toml(&text, Path::new("c.toml")).unwrap();
        config.validate().unwrap();
        assert!(!config.inclusion.enabled);
        assert_eq!(config.inclusion.keymanager_url.as_deref(), Some("http://127.0.0.1:5500"));
        assert_eq!(config.inclusion.keymanager_token_file, Some("vc/api-token.txt".into()));
        assert_eq!(config.inclusion_validators().unwrap(), [pubkey_hex(1), pubkey_hex(2)]);
        assert!(matches!(
            Config::from_toml("[inclusion]\nenabled = \"no\"\n", Path::new("c.toml")),
            Err(Error::ConfigParse { .. })
        ));
        let err = Config::from_toml("[inclusion]\nvalidator = []\n", Path::new("c.toml"));
        assert!(err.unwrap_err().to_string().contains("validator"));
    }

    #[test]
    fn inclusion_overrides_win_over_the_file() {
        let text = format!(
            "[inclusion]\nkeymanager_url = \"http://file:5500\"\n\
             keymanager_token_file = \"file-token\"\nvalidators = [\"{}\"]\n",
            pubkey_hex(1)
        );
        let mut config = Config::from_toml(&text, Path::new("c.toml")).unwrap();
        // No override leaves the file's values.
        let before = config.clone();
        config.apply(&ConfigOverrides::default());
        assert_eq!(config, before);
        config.apply(&ConfigOverrides {
            inclusion_enabled: Some(false),
            keymanager_url: Some("https://vc".into()),
            inclusion_validators: Some(vec![pubkey_hex(2), pubkey_hex(3)]),
            ..Default::default()
        });
        assert!(!config.inclusion.enabled);
        assert_eq!(config.inclusion.keymanager_url.as_deref(), Some("https://vc"));
        assert_eq!(config.inclusion.keymanager_token_file, Some("file-token".into()));
        assert_eq!(config.inclusion.validators, [pubkey_hex(2), pubkey_hex(3)]);
        config.apply(&ConfigOverrides {
            keymanager_token_file: Some("flag-token".into()),
            ..Default::default()
        });
        assert_eq!(config.inclusion.keymanager_token_file, Some("flag-token".into()));
        config.validate().unwrap();
    }

    #[test]
    fn bad_inclusion_values_name_the_key() {
        let vc = "keymanager_url = \"http://127.0.0.1:5500\"\nkeymanager_token_file = \"t\"\n";
        let validators = |keys: &[&str]| {
            let list = keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
            format!("[inclusion]\n{vc}validators = [{list}]\n")
        };
        let not_on_curve = format!("0x{}", "11".repeat(48));
        let no_prefix = pubkey_hex(1)[2..].to_owned();
        let cases = [
            (
                "[inclusion]\nkeymanager_url = \"http://127.0.0.1:5500\"\n".to_owned(),
                "inclusion.keymanager_token_file",
            ),
            ("[inclusion]\nkeymanager_token_file = \"t\"\n".to_owned(), "inclusion.keymanager_url"),
            (
                "[inclusion]\nkeymanager_token_file = \"\"\n".to_owned(),
                "inclusion.keymanager_token_file",
            ),
            (
                "[inclusion]\nkeymanager_url = \"ftp://vc\"\nkeymanager_token_file = \"t\"\n"
                    .to_owned(),
                "inclusion.keymanager_url",
            ),
            (
                "[inclusion]\nkeymanager_url = \"not a url\"\nkeymanager_token_file = \"t\"\n"
                    .to_owned(),
                "inclusion.keymanager_url",
            ),
            (validators(&["0x1234"]), "inclusion.validators"),
            (validators(&[&no_prefix]), "inclusion.validators"),
            (validators(&[&not_on_curve]), "inclusion.validators"),
            (validators(&[&pubkey_hex(1), &pubkey_hex(1)]), "inclusion.validators"),
            (
                format!("[inclusion]\nvalidators = [\"{}\"]\n", pubkey_hex(1)),
                "inclusion.validators",
            ),
        ];
        for (text, key) in cases {
            let config = Config::from_toml(&text, Path::new("c.toml")).unwrap();
            match config.validate() {
                Err(Error::ConfigInvalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: expected an error naming {key}, got {other:?}"),
            }
        }
        // A disabled section is still checked: a typo is an error, not silently ignored.
        let mut config = Config::default();
        config.inclusion.enabled = false;
        config.inclusion.keymanager_url = Some("http://127.0.0.1:5500".into());
        assert!(matches!(
            config.validate(),
            Err(Error::ConfigInvalid { key, .. }) if key == "inclusion.keymanager_token_file"
        ));
    }

    #[test]
    fn mode_specific_checks() {
        let mut config = Config::default();
        config.beacon.urls.clear();
        assert!(config.validate().is_ok());
        assert!(config.validate_for_run().is_err());
        assert!(matches!(
            config.validate_for_prover(),
            Err(Error::ConfigInvalid { key, .. }) if key == "prover.key_file"
        ));
    }
}
