//! The `sidecar` binary: parse the command line, resolve the config, set up logging, run the
//! subcommand until it ends. Ctrl-C asks it to stop cleanly (nodes shut down, stores closed); a
//! second Ctrl-C exits at once.

use anyhow::Context as _;
use clap::Parser as _;
use sidecar::cli::Cli;
use sidecar::commands::{self, Shutdown};
use sidecar::{Config, init_logging};

/// mimalloc: glibc's allocator locks an arena when a thread frees memory another thread
/// allocated, which the simulator's helper thread and the node's tasks do all the time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::resolve(cli.global.config.as_deref(), &cli.overrides())?;
    init_logging(&commands::logging_config(&cli, &config))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sidecar")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (trigger, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: shutting down (Ctrl-C again to exit at once)");
                trigger.trigger();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        let mut stdout = std::io::stdout();
        commands::execute(cli, config, &mut stdout, shutdown).await.map_err(Into::into)
    })
}
