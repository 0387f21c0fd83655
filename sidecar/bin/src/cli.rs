//! The command line (clap derive). Every flag that mirrors a config key can also be set by an
//! environment variable; precedence is config file < environment < flag.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ConfigOverrides, LogFormat};

/// Decentralised STARK proving for every Ethereum block, beside your beacon node.
///
/// Run `sidecar devnet` to watch rounds being proven on a local devnet, `sidecar run` beside a
/// beacon node (validator mode), or `sidecar prover` to prove with a BLS key.
#[derive(Debug, Parser)]
#[command(name = "sidecar", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Config file (TOML, see configs/sidecar.toml); defaults apply without one.
    #[arg(long, short = 'c', env = "SIDECAR_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: database and network key [config: node.data_dir].
    #[arg(long, env = "SIDECAR_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address of the HTTP server (extension API and /metrics) [config:
    /// node.http_address].
    #[arg(long, env = "SIDECAR_HTTP_ADDRESS", global = true, value_name = "IP:PORT")]
    pub http_address: Option<SocketAddr>,
    /// Log filter, e.g. `info,sidecar=debug` [config: logging.filter].
    #[arg(long, env = "SIDECAR_LOG", global = true, value_name = "FILTER")]
    pub log_filter: Option<String>,
    /// Log format [config: logging.format].
    #[arg(long, env = "SIDECAR_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start an embedded devnet beacon node, sidecars and provers on loopback and show the rounds.
    Devnet(DevnetArgs),
    /// Validator mode: follow a beacon node, run and verify the proving rounds, settle rewards.
    Run(RunArgs),
    /// Prover mode: receive assignments, prove, submit commitments and proofs.
    Prover(ProverArgs),
    /// Manage prover BLS keys (EIP-2335 keystores).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Prove a workload file offline and write the proof file.
    Prove(ProveArgs),
    /// Verify proof files offline.
    Verify(VerifyArgs),
    /// Simulate many blocks and prover behaviours with a reward table.
    Simulate(SimulateArgs),
}

/// Beacon node options.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Beacon node")]
pub struct BeaconArgs {
    /// Beacon API URL(s), comma-separated; the first is primary [config: beacon.urls].
    #[arg(long = "beacon-url", env = "SIDECAR_BEACON_URLS", value_delimiter = ',')]
    #[arg(value_name = "URL[,URL...]")]
    pub beacon_urls: Option<Vec<String>>,
}

/// Peer-to-peer options.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Networking")]
pub struct P2pArgs {
    /// IP address for libp2p (TCP) and discv5 (UDP) [config: p2p.listen_address].
    #[arg(long, env = "SIDECAR_LISTEN_ADDRESS", value_name = "IP")]
    pub listen_address: Option<IpAddr>,
    /// libp2p TCP port [config: p2p.tcp_port].
    #[arg(long, env = "SIDECAR_P2P_PORT", value_name = "PORT")]
    pub p2p_port: Option<u16>,
    /// discv5 UDP port [config: p2p.discovery_port].
    #[arg(long, env = "SIDECAR_DISCOVERY_PORT", value_name = "PORT")]
    pub discovery_port: Option<u16>,
    /// Bootnode ENRs, comma-separated [config: p2p.bootnodes].
    #[arg(long, env = "SIDECAR_BOOTNODES", value_delimiter = ',', value_name = "ENR[,ENR...]")]
    pub bootnodes: Option<Vec<String>>,
}

/// `sidecar run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Beacon node.
    #[command(flatten)]
    pub beacon: BeaconArgs,
    /// Networking.
    #[command(flatten)]
    pub p2p: P2pArgs,
}

/// `sidecar prover`.
#[derive(Debug, Args)]
pub struct ProverArgs {
    /// The prover's EIP-2335 keystore [config: prover.key_file].
    #[arg(long, env = "SIDECAR_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// File with the keystore password (else SIDECAR_KEYSTORE_PASSWORD) [config:
    /// prover.password_file].
    #[arg(long, env = "SIDECAR_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Proving threads, 0 for all cores [config: prover.threads].
    #[arg(long, env = "SIDECAR_PROVER_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Beacon node.
    #[command(flatten)]
    pub beacon: BeaconArgs,
    /// Networking.
    #[command(flatten)]
    pub p2p: P2pArgs,
}

/// `sidecar keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new BLS key from OS randomness and write it as an EIP-2335 keystore (0600).
    New(KeysNewArgs),
    /// Print a keystore's public key; with a password, also check that it decrypts.
    Show(KeysShowArgs),
}

/// Key derivation function for new keystores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum KdfChoice {
    /// scrypt, n = 262144, r = 8, p = 1 (EIP-2335 default).
    #[default]
    Scrypt,
    /// PBKDF2-HMAC-SHA256, c = 262144.
    Pbkdf2,
}

/// `sidecar keys new`.
#[derive(Debug, Args)]
pub struct KeysNewArgs {
    /// Where to write the keystore.
    #[arg(long, short = 'o', default_value = "prover-key.json", value_name = "FILE")]
    pub out: PathBuf,
    /// File with the password (else SIDECAR_KEYSTORE_PASSWORD).
    #[arg(long, env = "SIDECAR_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Key derivation function.
    #[arg(long, value_enum, default_value_t = KdfChoice::Scrypt)]
    pub kdf: KdfChoice,
}

/// `sidecar keys show`.
#[derive(Debug, Args)]
pub struct KeysShowArgs {
    /// The keystore.
    #[arg(value_name = "FILE")]
    pub key: PathBuf,
    /// Check that this password decrypts it.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

/// `sidecar prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The workload (sub-block) file to prove.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The prover keystore whose key the proof is bound to.
    #[arg(long, env = "SIDECAR_KEY", value_name = "FILE")]
    pub key: PathBuf,
    /// Where to write the proof.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
}

/// `sidecar verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Proof files.
    #[arg(required = true, value_name = "PROOF")]
    pub proofs: Vec<PathBuf>,
}

/// `sidecar simulate`: defined by the simulator.
pub use sidecar_devnet::DevnetArgs;
pub use sidecar_simulator::SimulateArgs;

impl Cli {
    /// The config overrides given by flags and environment variables.
    pub fn overrides(&self) -> ConfigOverrides {
        let mut o = ConfigOverrides {
            data_dir: self.global.data_dir.clone(),
            http_address: self.global.http_address,
            log_filter: self.global.log_filter.clone(),
            log_format: self.global.log_format,
            ..ConfigOverrides::default()
        };
        let (beacon, p2p) = match &self.command {
            Command::Run(a) => (Some(&a.beacon), Some(&a.p2p)),
            Command::Prover(a) => {
                o.key_file.clone_from(&a.key);
                o.password_file.clone_from(&a.password_file);
                o.threads = a.threads;
                (Some(&a.beacon), Some(&a.p2p))
            }
            _ => (None, None),
        };
        if let Some(b) = beacon {
            o.beacon_urls.clone_from(&b.beacon_urls);
        }
        if let Some(p) = p2p {
            o.listen_address = p.listen_address;
            o.tcp_port = p.p2p_port;
            o.discovery_port = p.discovery_port;
            o.bootnodes.clone_from(&p.bootnodes);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_parses_comma_separated_urls_and_flags() {
        let cli = Cli::try_parse_from([
            "sidecar",
            "run",
            "--beacon-url",
            "http://a:5052,http://b:5052",
            "--p2p-port",
            "9000",
            "--log-format",
            "json",
        ])
        .unwrap();
        let o = cli.overrides();
        assert_eq!(o.beacon_urls.unwrap(), ["http://a:5052", "http://b:5052"]);
        assert_eq!(o.tcp_port, Some(9000));
        assert_eq!(o.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn global_flags_go_after_the_subcommand_too() {
        let cli =
            Cli::try_parse_from(["sidecar", "keys", "new", "--data-dir", "/x", "--force"]).unwrap();
        assert_eq!(cli.overrides().data_dir, Some(PathBuf::from("/x")));
        assert!(matches!(
            cli.command,
            Command::Keys(KeysCommand::New(KeysNewArgs { force: true, .. }))
        ));
    }

    #[test]
    fn bad_values_are_rejected_by_the_parser() {
        assert!(Cli::try_parse_from(["sidecar", "run", "--p2p-port", "70000"]).is_err());
        assert!(Cli::try_parse_from(["sidecar", "verify"]).is_err());
        assert!(Cli::try_parse_from(["sidecar", "keys", "new", "--kdf", "md5"]).is_err());
    }
}
