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
}

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the database and the node's network key live.
    pub data_dir: PathBuf,
    /// Address of the HTTP server (proving extension API and `/metrics`).
    pub http_address: SocketAddr,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("sidecar-data"),
            http_address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5062),
        }
    }
}

impl NodeConfig {
    /// The database file: `<data_dir>/sidecar.redb`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sidecar.redb")
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

/// `[p2p]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// IP address to listen on (TCP for libp2p, UDP for discv5).
    pub listen_address: IpAddr,
    /// libp2p TCP port (0: any free port).
    pub tcp_port: u16,
    /// discv5 UDP port (0: any free port).
    pub discovery_port: u16,
    /// Bootnode ENRs (`enr:-...`).
    pub bootnodes: Vec<String>,
    /// First element of every gossip topic: `/<topic_prefix>/<name>/ssz_snappy`.
    pub topic_prefix: String,
    /// Number of peers the node tries to keep.
    pub target_peers: usize,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tcp_port: 9100,
            discovery_port: 9100,
            bootnodes: Vec::new(),
            topic_prefix: "proving-sidecar-0".to_owned(),
            target_peers: 50,
        }
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
            discv5::Enr::from_str(enr).map_err(|e| {
                Error::invalid("p2p.bootnodes", enr, format!("not a valid ENR: {e}"))
            })?;
        }
        crate::p2p::validate_topic_prefix(&self.p2p.topic_prefix)
            .map_err(|reason| Error::invalid("p2p.topic_prefix", &self.p2p.topic_prefix, reason))?;
        if self.p2p.target_peers == 0 {
            return Err(Error::invalid("p2p.target_peers", 0, "must be greater than 0"));
        }
        if self.prover.threads > 4096 {
            return Err(Error::invalid("prover.threads", self.prover.threads, "at most 4096"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.logging.filter).map_err(|e| {
            Error::invalid("logging.filter", &self.logging.filter, format!("bad directive: {e}"))
        })?;
        Ok(())
    }

    /// Checks what `run` (validator mode) needs beyond [`Config::validate`].
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `beacon.urls` if no beacon node is configured.
    pub fn validate_for_run(&self) -> Result<()> {
        if self.beacon.urls.is_empty() {
            return Err(Error::invalid("beacon.urls", "[]", "at least one beacon node URL needed"));
        }
        Ok(())
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
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/sidecar.toml")
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
