//! The `sidecar` binary: parse the command line, resolve the config, set up logging, run the
//! subcommand until it ends or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use sidecar::cli::Cli;
use sidecar::{Config, commands, init_logging};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::resolve(cli.global.config.as_deref(), &cli.overrides())?;
    init_logging(&config.logging)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sidecar")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut stdout = std::io::stdout();
        tokio::select! {
            result = commands::execute(cli, config, &mut stdout) => result.map_err(Into::into),
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot listen for Ctrl-C")?;
                tracing::info!("interrupted, shutting down");
                Ok(())
            }
        }
    })
}
