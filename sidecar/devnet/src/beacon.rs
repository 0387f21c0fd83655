//! `--beacon-only`: the devnet beacon node alone, for sidecars and provers run as processes.

use std::future::Future;
use std::io::Write;

use beacon_api::{BeaconEvent, DevnetNode};

use crate::error::{DevnetError, DevnetResult, out_err};
use crate::options::DevnetOptions;

/// `--beacon-only`: serves the devnet beacon node on `opts.beacon_address`, writes its URL and a
/// line per head, until `opts.blocks` heads or `shutdown`.
///
/// # Errors
/// The beacon node failing to start, or the writer failing.
pub async fn serve_beacon(
    opts: &DevnetOptions,
    out: &mut (dyn Write + Send),
    shutdown: impl Future<Output = ()>,
) -> DevnetResult<()> {
    let devnet =
        DevnetNode::spawn(opts.chain.clone()).map_err(|source| DevnetError::Beacon { source })?;
    let mut events = devnet.subscribe();
    let beacon =
        devnet.serve(opts.beacon_address).await.map_err(|source| DevnetError::Beacon { source })?;
    let genesis = devnet.genesis();
    writeln!(
        out,
        "devnet beacon node {} · genesis {} · {} s slots · {:.1}–{:.1} Mgas blocks; Ctrl-C to stop",
        beacon.url(),
        genesis.genesis_time,
        opts.chain.seconds_per_slot,
        opts.chain.min_gas_used as f64 / 1e6,
        opts.chain.max_gas_used as f64 / 1e6,
    )
    .map_err(out_err)?;
    if let Some(token) = &opts.chain.keymanager_token {
        writeln!(
            out,
            "keymanager API of its validators at {} (bearer token {token:?}): \
             `sidecar run --keymanager-url URL --keymanager-token-file FILE` includes for them",
            beacon.url(),
        )
        .map_err(out_err)?;
    }
    out.flush().map_err(out_err)?;
    tokio::pin!(shutdown);
    let mut heads = 0u64;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            e = events.recv() => match e {
                Ok(BeaconEvent::Head(head)) => {
                    heads += 1;
                    writeln!(out, "head slot {} block {}", head.slot, head.block).map_err(out_err)?;
                    out.flush().map_err(out_err)?;
                    if opts.blocks.is_some_and(|n| heads >= n) {
                        break;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
        }
    }
    beacon.shutdown().await.map_err(|source| DevnetError::Beacon { source })
}
