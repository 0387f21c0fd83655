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
    /// Inspect or shrink the validator node's store (`<data-dir>/node.redb`), offline.
    #[command(subcommand)]
    Db(DbCommand),
}

/// `sidecar db`: the store of `--data-dir`; no node may have it open.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Print the store's file size and, per table, its entries and bytes.
    Stats(DbStatsArgs),
    /// Rewrite the store so that freed pages go back to the file system.
    Compact,
}

/// `sidecar db stats`.
#[derive(Debug, Args)]
pub struct DbStatsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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

/// Canonical-round options.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Canonical rounds")]
pub struct InclusionArgs {
    /// Settle from the node's own clock instead of canonical inclusion records: the mode before
    /// canonical rounds, for experiments; every sidecar of a network must agree. Wins over
    /// SIDECAR_INCLUSION=true|false [config: inclusion.enabled = false].
    #[arg(long)]
    pub no_inclusion: bool,
    /// Canonical settlement on or off: the carrier of SIDECAR_INCLUSION (`true`/`false`), hidden
    /// because `--no-inclusion` is the flag [config: inclusion.enabled].
    #[arg(long = "inclusion", env = "SIDECAR_INCLUSION", value_name = "BOOL", hide = true)]
    pub inclusion: Option<bool>,
    /// Keymanager API base URL of the validator client whose proposals commit to this node's
    /// records (their graffiti is overwritten) [config: inclusion.keymanager_url].
    #[arg(long, env = "SIDECAR_KEYMANAGER_URL", value_name = "URL")]
    pub keymanager_url: Option<String>,
    /// The validator client's keymanager API token file [config:
    /// inclusion.keymanager_token_file].
    #[arg(long, env = "SIDECAR_KEYMANAGER_TOKEN_FILE", value_name = "FILE")]
    pub keymanager_token_file: Option<PathBuf>,
    /// Public keys of the served validators, comma-separated; default: all the validator client
    /// lists [config: inclusion.validators].
    #[arg(long, env = "SIDECAR_INCLUSION_VALIDATORS", value_delimiter = ',')]
    #[arg(value_name = "PK[,PK...]")]
    pub inclusion_validators: Option<Vec<String>>,
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
    /// Canonical rounds.
    #[command(flatten)]
    pub inclusion: InclusionArgs,
    /// Below this many free bytes on the data directory's filesystem, refuse new work until
    /// space returns; 0: never [config: storage.min_free_bytes].
    #[arg(long, env = "SIDECAR_MIN_FREE_BYTES", value_name = "BYTES")]
    pub min_free_bytes: Option<u64>,
    /// Slots of messages and proofs kept in the store before they are pruned (ledgers and
    /// balances are kept for ever) [config: storage.retention_slots; default 1024].
    #[arg(long, env = "SIDECAR_RETENTION_SLOTS", value_name = "SLOTS")]
    pub retention_slots: Option<u64>,
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
            Command::Run(a) => {
                let i = &a.inclusion;
                o.inclusion_enabled = if i.no_inclusion { Some(false) } else { i.inclusion };
                o.keymanager_url.clone_from(&i.keymanager_url);
                o.keymanager_token_file.clone_from(&i.keymanager_token_file);
                o.inclusion_validators.clone_from(&i.inclusion_validators);
                o.min_free_bytes = a.min_free_bytes;
                o.retention_slots = a.retention_slots;
                (Some(&a.beacon), Some(&a.p2p))
            }
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

    fn pubkey_hex(i: u8) -> String {
        let key = phase_engine::bls::SecretKey::from_ikm(&[i; 32]).unwrap();
        format!("{}", key.public_key())
    }

    #[test]
    fn run_inclusion_flags_become_overrides() {
        let (a, b) = (pubkey_hex(1), pubkey_hex(2));
        let list = format!("{a},{b}");
        let cli = Cli::try_parse_from([
            "sidecar",
            "run",
            "--keymanager-url",
            "http://127.0.0.1:5500",
            "--keymanager-token-file",
            "/vc/api-token.txt",
            "--inclusion-validators",
            &list,
        ])
        .unwrap();
        let o = cli.overrides();
        assert_eq!(o.keymanager_url.as_deref(), Some("http://127.0.0.1:5500"));
        assert_eq!(o.keymanager_token_file, Some(PathBuf::from("/vc/api-token.txt")));
        assert_eq!(o.inclusion_validators, Some(vec![a, b]));
        assert_eq!(o.inclusion_enabled, None);
    }

    #[test]
    fn no_inclusion_disables_canonical_settlement() {
        let cli = Cli::try_parse_from(["sidecar", "run", "--no-inclusion"]).unwrap();
        assert_eq!(cli.overrides().inclusion_enabled, Some(false));
        // The inclusion flags belong to `run` only.
        assert!(Cli::try_parse_from(["sidecar", "prover", "--no-inclusion"]).is_err());
    }

    /// The test run in a child process by [`run_in_child`]: resolves the config of the command
    /// line in `SIDECAR_TEST_PROBE_ARGS` (arguments separated by U+001F) and prints its
    /// `[inclusion]` section. Environment variables are the process's, so a child process is
    /// where a test sets them; without the variable this test does nothing.
    #[test]
    #[ignore = "run by the environment tests in a child process"]
    fn env_probe() {
        let Ok(args) = std::env::var("SIDECAR_TEST_PROBE_ARGS") else { return };
        let cli = Cli::try_parse_from(args.split('\u{1f}')).unwrap();
        match crate::Config::resolve(cli.global.config.as_deref(), &cli.overrides()) {
            Ok(config) => println!("PROBE {:?}", config.inclusion),
            Err(e) => println!("PROBE-ERR {e}"),
        }
    }

    /// Runs [`env_probe`] in a child process with `args` and `envs` (and no other `SIDECAR_`
    /// variables); returns what it printed after `PROBE`.
    fn run_in_child(args: &[&str], envs: &[(&str, &str)]) -> String {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "cli::tests::env_probe", "--ignored", "--nocapture"]);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SIDECAR_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("SIDECAR_TEST_PROBE_ARGS", args.join("\u{1f}")).envs(envs.iter().copied());
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(|line| line.split_once("PROBE").map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no probe output: {stdout}"))
            .trim()
            .to_owned()
    }

    #[test]
    fn inclusion_precedence_is_file_then_env_then_flag() {
        use crate::config::InclusionConfig;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sidecar.toml");
        let (a, b, c) = (pubkey_hex(1), pubkey_hex(2), pubkey_hex(3));
        std::fs::write(
            &file,
            format!(
                "[inclusion]\nenabled = false\nkeymanager_url = \"http://file:5500\"\n\
                 keymanager_token_file = \"file-token\"\nvalidators = [\"{a}\"]\n"
            ),
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let expect = |enabled: bool, url: &str, token: &str, validators: &[&String]| {
            let section = InclusionConfig {
                enabled,
                keymanager_url: Some(url.to_owned()),
                keymanager_token_file: Some(PathBuf::from(token)),
                validators: validators.iter().map(|v| (*v).clone()).collect(),
            };
            format!("{section:?}")
        };
        // The file alone.
        assert_eq!(
            run_in_child(&["sidecar", "--config", file, "run"], &[]),
            expect(false, "http://file:5500", "file-token", &[&a])
        );
        // The environment over the file.
        let env = [
            ("SIDECAR_INCLUSION", "true"),
            ("SIDECAR_KEYMANAGER_URL", "http://env:5500"),
            ("SIDECAR_KEYMANAGER_TOKEN_FILE", "env-token"),
            ("SIDECAR_INCLUSION_VALIDATORS", &format!("{b},{c}")),
        ];
        assert_eq!(
            run_in_child(&["sidecar", "--config", file, "run"], &env),
            expect(true, "http://env:5500", "env-token", &[&b, &c])
        );
        // The flags over the environment.
        let flags = [
            "sidecar",
            "--config",
            file,
            "run",
            "--no-inclusion",
            "--keymanager-url",
            "https://flag",
            "--keymanager-token-file",
            "flag-token",
            "--inclusion-validators",
            &c,
        ];
        assert_eq!(run_in_child(&flags, &env), expect(false, "https://flag", "flag-token", &[&c]));
        // A bad value from the environment is named by its config key.
        let err = run_in_child(&["sidecar", "run"], &[("SIDECAR_KEYMANAGER_URL", "ftp://vc")]);
        assert!(err.contains("inclusion.keymanager_url") && err.contains("ftp://vc"), "{err}");
    }

    #[test]
    fn bad_values_are_rejected_by_the_parser() {
        assert!(Cli::try_parse_from(["sidecar", "run", "--p2p-port", "70000"]).is_err());
        assert!(Cli::try_parse_from(["sidecar", "verify"]).is_err());
        assert!(Cli::try_parse_from(["sidecar", "keys", "new", "--kdf", "md5"]).is_err());
        assert!(Cli::try_parse_from(["sidecar", "run", "--inclusion", "maybe"]).is_err());
    }
}
