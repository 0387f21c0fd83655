//! What each subcommand does. The long-running ones (`devnet`, `run`, `prover`) run until their
//! [`Shutdown`] fires, then stop their nodes cleanly.

use std::io::Write;

use phase_engine::bls;
use plonky3_prover::{ProofParams, Prover, SegmentWorkload};

use crate::cli::{
    Cli, Command, DbCommand, KdfChoice, KeysCommand, KeysNewArgs, KeysShowArgs, ProveArgs,
    VerifyArgs,
};
use crate::config::Config;
use crate::{Error, Result};
use sidecar_keystore::{Kdf, Keystore, Password, ProverKey, load_key};
use sidecar_prover::{ProofFile, ProverError, ProverWorker, WorkerConfig, prove_file, verify_file};

/// The environment variable read for a keystore password when no password file is given.
pub const PASSWORD_ENV: &str = "SIDECAR_KEYSTORE_PASSWORD";

/// Asks long-running commands to stop (the binary triggers it on Ctrl-C). Cheap to clone; every
/// clone sees the same signal.
#[derive(Clone, Debug)]
pub struct Shutdown(Option<tokio::sync::watch::Receiver<bool>>);

/// The sending side of a [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(tokio::sync::watch::Sender<bool>);

impl Shutdown {
    /// A signal and the trigger that fires it.
    pub fn new() -> (ShutdownTrigger, Self) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (ShutdownTrigger(tx), Self(Some(rx)))
    }

    /// A signal that never fires.
    pub fn never() -> Self {
        Self(None)
    }

    /// Resolves once the trigger fired (or was dropped).
    pub async fn wait(self) {
        match self.0 {
            Some(mut rx) => {
                let _ = rx.wait_for(|stop| *stop).await;
            }
            None => std::future::pending().await,
        }
    }

    /// Whether the trigger fired.
    pub fn is_triggered(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }
}

impl ShutdownTrigger {
    /// Fires the signal.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

/// The logging settings for `cli`: `config.logging`, except that `sidecar devnet` (whose
/// output is its table) logs only errors unless a filter is given by flag, environment or a
/// config file that sets one.
pub fn logging_config(cli: &Cli, config: &Config) -> crate::config::LoggingConfig {
    let mut logging = config.logging.clone();
    let default_filter = crate::config::LoggingConfig::default().filter;
    if matches!(cli.command, Command::Devnet(_))
        && cli.global.log_filter.is_none()
        && logging.filter == default_filter
    {
        logging.filter = sidecar_devnet::DEFAULT_LOG_FILTER.to_owned();
    }
    logging
}

/// Runs the subcommand of `cli` with the resolved `config`, writing results to `out`, until it
/// ends or `shutdown` fires (long-running commands then stop their nodes cleanly).
///
/// # Errors
/// Whatever the subcommand fails with.
pub async fn execute(
    cli: Cli,
    config: Config,
    out: &mut (dyn Write + Send),
    shutdown: Shutdown,
) -> Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::New(args)) => keys_new(&args, out),
        Command::Keys(KeysCommand::Show(args)) => keys_show(&args, out),
        Command::Devnet(args) => {
            let opts =
                sidecar_devnet::DevnetOptions::from_args(&args, cli.global.data_dir.clone())?;
            if args.beacon_only {
                return Ok(sidecar_devnet::serve_beacon(&opts, out, shutdown.wait()).await?);
            }
            let summary = sidecar_devnet::run(&opts, out, shutdown.wait()).await?;
            if let Some(path) = &args.bench_json {
                sidecar_devnet::write_json(path, &summary)?;
            }
            // Without --blocks, Ctrl-C is the normal end; with it, an early stop is a failure.
            Ok(summary.check()?)
        }
        Command::Run(_) => run_node(&config, out, shutdown).await,
        Command::Prover(_) => prover_mode(&config, shutdown).await,
        Command::Prove(args) => prove(&args, out).await,
        Command::Verify(args) => verify(&args, out).await,
        // Synchronous and CPU-bound: the simulator runs on virtual time.
        Command::Simulate(args) => Ok(sidecar_simulator::run(args)?),
        Command::Db(DbCommand::Stats(args)) => db_stats(&config, args.json, out),
        Command::Db(DbCommand::Compact) => db_compact(&config, out).await,
    }
}

/// Prover mode: registers the key with the sidecar whose extension API listens at
/// `node.http_address`, reads blocks from `beacon.urls`, and proves until interrupted.
async fn prover_mode(config: &Config, shutdown: Shutdown) -> Result<()> {
    config.validate_for_prover()?;
    let key_file = config.prover.key_file.as_deref().ok_or(Error::InvalidArgument {
        arg: "--key",
        value: "(unset)".into(),
        reason: "prover mode needs a keystore",
    })?;
    let key = load_prover_key(key_file, config.prover.password_file.as_deref())?;
    let api_error = |what| move |e| Error::from(ProverError::Api { what, source: e });
    let timeout = std::time::Duration::from_millis(config.beacon.request_timeout_ms);
    let beacon = beacon_api::BeaconClient::builder()
        .urls(config.beacon.urls.iter().cloned())
        .request_timeout(timeout)
        .build()
        .map_err(api_error("beacon client"))?;
    let sidecar_url = format!("http://{}", config.node.http_address);
    let proving = beacon_api::ProvingClient::new(
        beacon_api::BeaconClient::builder()
            .url(sidecar_url)
            .request_timeout(timeout)
            .build()
            .map_err(api_error("sidecar client"))?,
    );
    let worker_config =
        WorkerConfig { threads: config.prover.effective_threads(), ..WorkerConfig::default() };
    let worker = ProverWorker::connect(key, proving, beacon, worker_config).await?;
    worker.run(shutdown.wait()).await?;
    Ok(())
}

fn load_prover_key(
    path: &std::path::Path,
    password_file: Option<&std::path::Path>,
) -> Result<bls::SecretKey> {
    let key = load_key(path, &password(password_file)?)?;
    bls::SecretKey::from_bytes(&key.secret_key().to_bytes())
        .map_err(|_| sidecar_keystore::Error::InvalidSecretKey { path: path.to_path_buf() }.into())
}

fn default_prover() -> Result<Prover<SegmentWorkload>> {
    Prover::new(ProofParams::default(), SegmentWorkload::default())
        .map_err(|source| Error::from(ProverError::Stark { what: "proof parameters", source }))
}

/// `sidecar prove`: proves a workload file with the keystore's key (CPU work off the runtime).
async fn prove(args: &ProveArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let key = load_prover_key(&args.key, None)?;
    let input = args.input.clone();
    let file = tokio::task::spawn_blocking(move || -> Result<ProofFile> {
        Ok(prove_file(&default_prover()?, &input, &key)?)
    })
    .await
    .map_err(|e| Error::from(ProverError::Job { reason: e.to_string() }))??;
    file.write(&args.out)?;
    writeln!(
        out,
        "wrote {} ({} AIRs, {} bytes of proof)",
        args.out.display(),
        file.input.num_airs,
        file.full_proof.len()
    )
    .map_err(|e| Error::io("writing", "stdout", e))
}

/// `sidecar verify`: verifies every proof file; fails if any is invalid.
async fn verify(args: &VerifyArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let proofs = args.proofs.clone();
    let results = tokio::task::spawn_blocking(move || -> Result<Vec<_>> {
        let prover = default_prover()?;
        Ok(proofs.iter().map(|p| (p.clone(), verify_file(&prover, p))).collect())
    })
    .await
    .map_err(|e| Error::from(ProverError::Job { reason: e.to_string() }))??;
    let mut first_error = None;
    for (path, result) in results {
        let line = match &result {
            Ok(r) => format!(
                "{}: valid ({} AIRs, builder 0x{}, {} reused parts, {} bytes)",
                path.display(),
                r.num_airs,
                hex::encode(r.builder),
                r.reused,
                r.proof_bytes
            ),
            Err(e) => format!("{}: INVALID: {e}", path.display()),
        };
        writeln!(out, "{line}").map_err(|e| Error::io("writing", "stdout", e))?;
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), |e| Err(e.into()))
}

fn password(file: Option<&std::path::Path>) -> Result<Password> {
    match file {
        Some(path) => Ok(Password::from_file(path)?),
        None => std::env::var(PASSWORD_ENV).map(Password::new).map_err(|_| Error::MissingPassword),
    }
}

fn keys_new(args: &KeysNewArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    if !args.force && args.out.exists() {
        return Err(sidecar_keystore::Error::KeyFileExists { path: args.out.clone() }.into());
    }
    let password = password(args.password_file.as_deref())?;
    let kdf = match args.kdf {
        KdfChoice::Scrypt => Kdf::SCRYPT_DEFAULT,
        KdfChoice::Pbkdf2 => Kdf::PBKDF2_DEFAULT,
    };
    let key = ProverKey::generate()?;
    let keystore = Keystore::encrypt(&key, &password, kdf)?;
    keystore.write(&args.out, args.force)?;
    writeln!(out, "wrote {}", args.out.display())
        .and_then(|()| writeln!(out, "pubkey 0x{}", keystore.pubkey))
        .map_err(|e| Error::io("writing", "stdout", e))
}

fn db_stats(config: &Config, json: bool, out: &mut (dyn Write + Send)) -> Result<()> {
    let path = config.node.database_path();
    let store = sidecar_node::Store::open_existing(&path).map_err(store_error)?;
    let stats = store.stats().map_err(store_error)?;
    let checkpoint =
        sidecar_node::checkpoint_position(&store).map_err(|e| Error::Node(Box::new(e)))?;
    let text = if json {
        let encoding = |e| Error::io("encoding", "stdout", std::io::Error::other(e));
        let mut value = serde_json::to_value(&stats).map_err(encoding)?;
        value["checkpoint"] = serde_json::to_value(checkpoint).map_err(encoding)?;
        let mut text = serde_json::to_string_pretty(&value).map_err(encoding)?;
        text.push('\n');
        text
    } else {
        let mut text = format!("{}: {} bytes\n", path.display(), stats.file_bytes);
        text.push_str(&format!(
            "{:<10} {:>10} {:>14} {:>14} {:>14}\n",
            "table", "entries", "stored bytes", "metadata", "fragmented"
        ));
        for t in &stats.tables {
            text.push_str(&format!(
                "{:<10} {:>10} {:>14} {:>14} {:>14}\n",
                t.name, t.entries, t.stored_bytes, t.metadata_bytes, t.fragmented_bytes
            ));
        }
        match checkpoint {
            Some(c) => text.push_str(&format!(
                "checkpoint at slot {} ({} bytes): a restart replays the input log from entry {}; \
                 entries before {} are pruned\n",
                c.slot, c.bytes, c.next_entry, c.log_start
            )),
            None => text.push_str("no checkpoint: a restart replays the whole input log\n"),
        }
        text
    };
    out.write_all(text.as_bytes()).map_err(|e| Error::io("writing", "stdout", e))
}

/// Compacts the store offline, on a blocking thread (a large store takes a while).
async fn db_compact(config: &Config, out: &mut (dyn Write + Send)) -> Result<()> {
    let path = config.node.database_path();
    let target = path.clone();
    let (before, after) =
        tokio::task::spawn_blocking(move || sidecar_node::Store::compact(&target))
            .await
            .map_err(|_| Error::Node(Box::new(sidecar_node::NodeError::Stopped)))?
            .map_err(store_error)?;
    let text = format!("{}: {before} -> {after} bytes\n", path.display());
    out.write_all(text.as_bytes()).map_err(|e| Error::io("writing", "stdout", e))
}

fn store_error(e: sidecar_node::StoreError) -> Error {
    Error::Node(Box::new(sidecar_node::NodeError::from(e)))
}

fn keys_show(args: &KeysShowArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let keystore = Keystore::read(&args.key)?;
    let mut text = format!(
        "pubkey 0x{}\nuuid {}\nkdf {}\n",
        keystore.pubkey, keystore.uuid, keystore.crypto.kdf.function
    );
    if let Some(file) = &args.password_file {
        keystore.decrypt(&Password::from_file(file)?)?;
        text.push_str("password ok\n");
    }
    out.write_all(text.as_bytes()).map_err(|e| Error::io("writing", "stdout", e))
}

/// The node's canonical-round settings from `[inclusion]`: `None` (settle from the node's own
/// clock) when `inclusion.enabled` is false; else canonical settlement, with the validator client
/// when `inclusion.keymanager_url` is set, its token read from `inclusion.keymanager_token_file`
/// (trimmed). Without a validator client the node includes nothing (and says so when it starts).
///
/// # Errors
/// [`Error::ConfigInvalid`] naming `inclusion.keymanager_token_file` when the token file cannot be
/// read or holds only whitespace, naming `inclusion.keymanager_url` when the keymanager client
/// rejects the URL, or as [`Config::validate`] for the `[inclusion]` keys.
pub fn node_inclusion(config: &Config) -> Result<Option<sidecar_node::InclusionConfig>> {
    let inclusion = &config.inclusion;
    config.validate_validator_client()?;
    let validators = config.inclusion_validators()?;
    if !inclusion.enabled {
        if let Some(url) = &inclusion.keymanager_url {
            tracing::warn!(
                keymanager = %url,
                "inclusion.enabled = false: settling from this node's own clock; the validator \
                 client's graffiti is left alone"
            );
        }
        return Ok(None);
    }
    let validator_client = match (&inclusion.keymanager_url, &inclusion.keymanager_token_file) {
        (Some(url), Some(token_file)) => {
            let token = read_keymanager_token(token_file)?;
            // The client the node builds from these, built here first so that a URL it rejects
            // is reported with its config key.
            beacon_api::KeymanagerClient::new(url, token.clone()).map_err(|e| match e {
                beacon_api::Error::InvalidUrl { reason, .. } => {
                    Error::invalid("inclusion.keymanager_url", url, reason)
                }
                other => Error::invalid("inclusion.keymanager_url", url, other.to_string()),
            })?;
            Some(sidecar_node::ValidatorClientConfig {
                keymanager_url: url.clone(),
                token,
                validators,
            })
        }
        // `validate_validator_client` admits both or neither.
        _ => None,
    };
    Ok(Some(sidecar_node::InclusionConfig { validator_client }))
}

/// The keymanager API token: the content of `path`, trimmed.
fn read_keymanager_token(path: &std::path::Path) -> Result<String> {
    const KEY: &str = "inclusion.keymanager_token_file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(KEY, path.display(), format!("cannot be read: {e}")))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::invalid(KEY, path.display(), "the token file is empty"));
    }
    Ok(token.to_owned())
}

/// `sidecar run`: the validator-mode node until Ctrl-C, then a clean shutdown.
async fn run_node(config: &Config, out: &mut (dyn Write + Send), shutdown: Shutdown) -> Result<()> {
    config.validate_for_run()?;
    let mut node_config =
        sidecar_node::NodeConfig::new(config.beacon.urls.clone(), config.node.data_dir.clone());
    node_config.http_address = config.node.http_address;
    node_config.rewards = config.rewards()?;
    node_config.genesis_provers = config.genesis_provers()?;
    node_config.inclusion = node_inclusion(config)?;
    node_config.min_free_bytes = config.storage.min_free_bytes;
    node_config.retention_slots = config.storage.retention_slots;
    // Validator sidecars gossip: the `[p2p]` section, the node key kept in the data directory.
    let node_key = sidecar_p2p::NodeKey::load_or_create(&config.node.node_key_path())?;
    node_config.p2p = Some(sidecar_p2p::NetworkConfig::from_config(&config.p2p, node_key)?);
    let node = sidecar_node::Node::spawn(node_config).await.map_err(Box::new)?;
    if let Some(p2p) = node.p2p() {
        writeln!(out, "gossip on {}", p2p.listen_address())
            .map_err(|e| Error::io("writing", "stdout", e))?;
        if let Some(enr) = p2p.local_enr() {
            writeln!(out, "node record {}", enr.to_base64())
                .map_err(|e| Error::io("writing", "stdout", e))?;
        }
    }
    writeln!(out, "proving API and metrics on http://{}", node.http_addr())
        .map_err(|e| Error::io("writing", "stdout", e))?;
    shutdown.wait().await;
    tracing::info!("shutting down");
    node.shutdown().await.map_err(Box::new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_validator_client(token_file: &std::path::Path) -> Config {
        let mut config = Config::default();
        config.inclusion.keymanager_url = Some("http://127.0.0.1:5500".into());
        config.inclusion.keymanager_token_file = Some(token_file.to_owned());
        config
    }

    fn invalid_key(result: Result<Option<sidecar_node::InclusionConfig>>) -> (String, String) {
        match result {
            Err(Error::ConfigInvalid { key, value, .. }) => (key, value),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn inclusion_maps_to_the_node_config() {
        // Disabled: the node settles from its own clock.
        let mut config = Config::default();
        config.inclusion.enabled = false;
        assert!(node_inclusion(&config).unwrap().is_none());
        // Enabled without a validator client: canonical settlement, nothing included.
        let inclusion = node_inclusion(&Config::default()).unwrap().unwrap();
        assert!(inclusion.validator_client.is_none());
    }

    #[test]
    fn the_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("api-token.txt");
        std::fs::write(&token_file, "  api-token-0xabc\n\n").unwrap();
        let mut config = with_validator_client(&token_file);
        let key = phase_engine::bls::SecretKey::from_ikm(&[7; 32]).unwrap().public_key();
        config.inclusion.validators = vec![format!("0x{}", hex::encode_upper(key))];
        let vc = node_inclusion(&config).unwrap().unwrap().validator_client.unwrap();
        assert_eq!(vc.keymanager_url, "http://127.0.0.1:5500");
        assert_eq!(vc.token, "api-token-0xabc");
        assert_eq!(vc.validators, [key.to_string()]);
        // Disabled, the validator client is not used (and its token not read).
        config.inclusion.enabled = false;
        std::fs::remove_file(&token_file).unwrap();
        assert!(node_inclusion(&config).unwrap().is_none());
    }

    #[test]
    fn a_missing_or_empty_token_file_is_a_config_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.txt");
        let (key, value) = invalid_key(node_inclusion(&with_validator_client(&missing)));
        assert_eq!(key, "inclusion.keymanager_token_file");
        assert_eq!(value, missing.display().to_string());
        let err = node_inclusion(&with_validator_client(&missing)).unwrap_err().to_string();
        assert!(err.contains("cannot be read"), "{err}");

        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, " \n").unwrap();
        let (key, value) = invalid_key(node_inclusion(&with_validator_client(&empty)));
        assert_eq!(key, "inclusion.keymanager_token_file");
        assert_eq!(value, empty.display().to_string());
        // A directory is unreadable as a file.
        let (key, _) = invalid_key(node_inclusion(&with_validator_client(dir.path())));
        assert_eq!(key, "inclusion.keymanager_token_file");
    }

    #[test]
    fn a_half_configured_validator_client_is_refused() {
        let mut config = Config::default();
        config.inclusion.keymanager_url = Some("http://127.0.0.1:5500".into());
        let (key, _) = invalid_key(node_inclusion(&config));
        assert_eq!(key, "inclusion.keymanager_token_file");
    }
}
