//! What each subcommand does. `keys` is complete; the node modes check their arguments and
//! config, then report that the parts they need are not wired into this build yet.

use std::io::Write;

use crate::cli::{Cli, Command, KdfChoice, KeysCommand, KeysNewArgs, KeysShowArgs};
use crate::config::Config;
use crate::keys::{Kdf, Keystore, Password, ProverKey};
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
        Command::Run(_) => {
            config.validate_for_run()?;
            Err(Error::NotYetAvailable {
                command: "run",
                missing: "the protocol engine and the beacon-node client",
            })
        }
        Command::Prover(_) => {
            config.validate_for_prover()?;
            if let Some(key) = &config.prover.key_file {
                Keystore::read(key)?;
            }
            Err(Error::NotYetAvailable {
                command: "prover",
                missing: "the STARK prover and the protocol engine",
            })
        }
        Command::Prove(args) => {
            readable(&args.input)?;
            Keystore::read(&args.key)?;
            Err(Error::NotYetAvailable { command: "prove", missing: "the STARK prover" })
        }
        Command::Verify(args) => {
            for proof in &args.proofs {
                readable(proof)?;
            }
            Err(Error::NotYetAvailable { command: "verify", missing: "the STARK verifier" })
        }
        // Synchronous and CPU-bound: the simulator runs on virtual time.
        Command::Simulate(args) => Ok(crate::simulate::run(args)?),
    }
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

fn readable(path: &std::path::Path) -> Result<()> {
    std::fs::File::open(path).map(drop).map_err(|e| Error::io("opening", path, e))
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
