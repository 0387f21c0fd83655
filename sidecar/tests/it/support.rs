//! Set-up shared by the integration tests.

use beacon_api::{DevnetConfig, DevnetNode, ServerHandle};

/// The embedded devnet beacon node with small blocks (0.2–0.4 Mgas: one or two small AIRs, so
/// real STARKs stay fast on CI), served on a free loopback port.
pub(crate) async fn small_devnet(seconds_per_slot: u64) -> (DevnetNode, ServerHandle) {
    let devnet = DevnetNode::spawn(DevnetConfig {
        seconds_per_slot,
        min_gas_used: 200_000,
        max_gas_used: 400_000,
        avg_transaction_gas: 100_000,
        ..DevnetConfig::default()
    })
    .unwrap();
    let server = devnet.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (devnet, server)
}

/// The signing context of `devnet`'s chain.
pub(crate) fn ctx_of(devnet: &DevnetNode) -> phase_engine::SigningContext {
    sidecar::signing_context(&devnet.genesis())
}
