//! Set-up shared by the integration tests.

use beacon_api::{DevnetConfig, DevnetNode, ServerHandle};
use phase_engine::{Capabilities, ProverRecord, bls};

/// Prover `i`'s BLS key, from the key range starting at `offset` (each test file has its own,
/// so that no two tests share a key).
pub(crate) fn prover_key(offset: u8, i: u8) -> bls::SecretKey {
    bls::SecretKey::from_ikm(&[i.wrapping_add(offset); 32]).expect("32 bytes of key material")
}

/// A genesis prover with `key`: 32 ETH staked, CPU only, proving traces of up to 2^20 rows.
pub(crate) fn genesis_record(key: &bls::SecretKey) -> ProverRecord {
    ProverRecord {
        pubkey: key.public_key(),
        stake: 32_000_000_000,
        capabilities: Capabilities { gpu_count: 0, gpu_memory_mib: 0, max_trace_log_rows: 20 },
        active: true,
        reputation: 0,
    }
}

/// The shipped reward configuration with `settings` (`KEY`, value) applied.
pub(crate) fn rewards_config(settings: &[(&str, i64)]) -> rewards::Config {
    let mut c = rewards::Config::default();
    for (k, v) in settings {
        c.set(k, *v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    c
}

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
    devnet.genesis().signing_context()
}
