//! What each subcommand does. `keys` is complete; the node modes check their arguments and
//! config, then report that the parts they need are not wired into this build yet.

use std::io::Write;

use phase_engine::bls;
use plonky3_prover::{ProofParams, Prover, SegmentWorkload};

use crate::cli::{
    Cli, Command, KdfChoice, KeysCommand, KeysNewArgs, KeysShowArgs, ProveArgs, VerifyArgs,
};
use crate::config::Config;
use crate::keys::{Kdf, Keystore, Password, ProverKey, load_key};
use crate::prover::{ProofFile, ProverError, ProverWorker, WorkerConfig, prove_file, verify_file};
use crate::{Error, Result};

/// The environment variable read for a keystore password when no password file is given.
pub const PASSWORD_ENV: &str = "SIDECAR_KEYSTORE_PASSWORD";

/// Runs the subcommand of `cli` with the resolved `config`, writing results to `out`.
///
/// # Errors
/// Whatever the subcommand fails with; [`Error::NotYetAvailable`] for modes not wired yet.
pub async fn execute(cli: Cli, config: Config, out: &mut (dyn Write + Send)) -> Result<()> {
    match cli.command {
        Command::Keys(KeysCommand::New(args)) => keys_new(&args, out),
        Command::Keys(KeysCommand::Show(args)) => keys_show(&args, out),
        Command::Devnet(args) => {
            positive("--sidecars", args.sidecars.into())?;
            positive("--provers", args.provers.into())?;
            positive("--seconds-per-slot", args.seconds_per_slot)?;
            if let Some(blocks) = args.blocks {
                positive("--blocks", blocks)?;
            }
            Err(Error::NotYetAvailable {
                command: "devnet",
                missing: "the embedded devnet beacon node, the protocol engine and the prover",
            })
        }
        Command::Run(_) => run_node(&config, out).await,
        Command::Prover(_) => prover_mode(&config).await,
        Command::Prove(args) => prove(&args, out).await,
        Command::Verify(args) => verify(&args, out).await,
        // Synchronous and CPU-bound: the simulator runs on virtual time.
        Command::Simulate(args) => Ok(crate::simulate::run(args)?),
    }
}

/// Prover mode: registers the key with the sidecar whose extension API listens at
/// `node.http_address`, reads blocks from `beacon.urls`, and proves until interrupted.
async fn prover_mode(config: &Config) -> Result<()> {
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
    worker.run(std::future::pending()).await?;
    Ok(())
}

fn load_prover_key(
    path: &std::path::Path,
    password_file: Option<&std::path::Path>,
) -> Result<bls::SecretKey> {
    let key = load_key(path, &password(password_file)?)?;
    bls::SecretKey::from_bytes(&key.secret_key().to_bytes())
        .map_err(|_| Error::InvalidSecretKey { path: path.to_path_buf() })
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

fn positive(arg: &'static str, value: u64) -> Result<()> {
    if value == 0 {
        return Err(Error::InvalidArgument {
            arg,
            value: "0".into(),
            reason: "must be at least 1",
        });
    }
    Ok(())
}

fn password(file: Option<&std::path::Path>) -> Result<Password> {
    match file {
        Some(path) => Password::from_file(path),
        None => std::env::var(PASSWORD_ENV).map(Password::new).map_err(|_| Error::MissingPassword),
    }
}

fn keys_new(args: &KeysNewArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    if !args.force && args.out.exists() {
        return Err(Error::KeyFileExists { path: args.out.clone() });
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

/// `sidecar run`: the validator-mode node until Ctrl-C, then a clean shutdown.
async fn run_node(config: &Config, out: &mut (dyn Write + Send)) -> Result<()> {
    config.validate_for_run()?;
    let mut node_config =
        crate::node::NodeConfig::new(config.beacon.urls.clone(), config.node.data_dir.clone());
    node_config.http_address = config.node.http_address;
    node_config.rewards = config.rewards()?;
    node_config.genesis_provers = config.genesis_provers()?;
    // Validator sidecars gossip: the `[p2p]` section, the node key kept in the data directory.
    let node_key = crate::p2p::NodeKey::load_or_create(&config.node.node_key_path())?;
    node_config.p2p = Some(crate::p2p::NetworkConfig::from_config(&config.p2p, node_key)?);
    let node = crate::node::Node::spawn(node_config).await.map_err(Box::new)?;
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
    match tokio::signal::ctrl_c().await {
        Ok(()) => tracing::info!("interrupted, shutting down"),
        Err(e) => tracing::warn!(error = %e, "cannot listen for Ctrl-C; shutting down"),
    }
    node.shutdown().await.map_err(Box::new)?;
    Ok(())
}
