//! An embedded devnet beacon node: the standard endpoints and events the sidecar follows, served
//! over HTTP on loopback with real slot timing, so the sidecar runs with nothing else installed.
//!
//! ```no_run
//! # async fn run() -> beacon_api::Result<()> {
//! use beacon_api::{DevnetConfig, DevnetNode};
//! let node = DevnetNode::spawn(DevnetConfig { seconds_per_slot: 2, ..DevnetConfig::default() })?;
//! let server = node.serve("127.0.0.1:5052".parse().unwrap()).await?;
//! println!("beacon node at {}", server.url());
//! # Ok(()) }
//! ```

mod chain;
mod clock;
mod keymanager;
mod server;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    sync::{broadcast, watch},
    task::JoinHandle,
};

pub use clock::{Clock, ManualClock, SystemClock};

use crate::{
    error::{Error, Result},
    http::ServerHandle,
    types::{BeaconEvent, BlockHeaderData, ChainReorgEvent, GenesisData, Slot},
};
use chain::Chain;

/// Configuration of the devnet beacon node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevnetConfig {
    /// Seconds per slot (`SECONDS_PER_SLOT`); at least 1.
    pub seconds_per_slot: u64,
    /// Slots per epoch (`SLOTS_PER_EPOCH`); at least 1.
    pub slots_per_epoch: u64,
    /// Genesis time (unix seconds); `None` means "now" when the node starts.
    pub genesis_time: Option<u64>,
    /// Number of validators (each with a BLS key derived from `seed`); 1 to 65536.
    pub validator_count: u64,
    /// Smallest gas used by a block's execution payload.
    pub min_gas_used: u64,
    /// Largest gas used (gigagas blocks are fine: transactions are capped separately).
    pub max_gas_used: u64,
    /// The payload gas limit; `None` means `max(max_gas_used, 36_000_000)`.
    pub gas_limit: Option<u64>,
    /// Average gas per synthetic transaction: a block carries `ceil(gas_used / this)`
    /// transactions, at most `max_transactions`.
    pub avg_transaction_gas: u64,
    /// Cap on the number of transactions of a block.
    pub max_transactions: u64,
    /// Size of each synthetic transaction, in bytes.
    pub transaction_size: usize,
    /// Seed of everything pseudo-random (keys, gas, genesis mix).
    pub seed: u64,
    /// The fork version used for the genesis data and signing domains.
    pub fork_version: [u8; 4],
    /// How many slots of history to keep behind the head.
    pub history_slots: u64,
    /// Interval of SSE keep-alive comments, in seconds.
    pub keep_alive_secs: u64,
    /// Bearer token of the keymanager API the node serves for its validators
    /// (`/eth/v1/keystores`, `/eth/v1/validator/{pubkey}/graffiti`); `None`: not served.
    pub keymanager_token: Option<String>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            seconds_per_slot: 12,
            slots_per_epoch: 32,
            genesis_time: None,
            validator_count: 64,
            min_gas_used: 5_000_000,
            max_gas_used: 36_000_000,
            gas_limit: None,
            avg_transaction_gas: 100_000,
            max_transactions: 10_000,
            transaction_size: 128,
            seed: 0,
            fork_version: [5, 0, 0, 0],
            history_slots: 8192,
            keep_alive_secs: 15,
            keymanager_token: None,
        }
    }
}

impl DevnetConfig {
    /// The payload gas limit in force.
    pub fn gas_limit(&self) -> u64 {
        self.gas_limit.unwrap_or(self.max_gas_used.max(36_000_000))
    }

    /// Checks every value; the error names the offending key.
    pub fn validate(&self) -> Result<()> {
        let fail = |key, reason: &str| Err(Error::Config { key, reason: reason.to_owned() });
        if self.seconds_per_slot == 0 {
            return fail("seconds_per_slot", "must be at least 1");
        }
        if self.slots_per_epoch == 0 {
            return fail("slots_per_epoch", "must be at least 1");
        }
        if !(1..=65_536).contains(&self.validator_count) {
            return fail("validator_count", "must be between 1 and 65536");
        }
        if self.min_gas_used > self.max_gas_used {
            return fail("min_gas_used", "must not exceed max_gas_used");
        }
        if self.gas_limit() < self.max_gas_used {
            return fail("gas_limit", "must be at least max_gas_used");
        }
        if self.avg_transaction_gas == 0 {
            return fail("avg_transaction_gas", "must be at least 1");
        }
        if self.max_transactions == 0 || self.transaction_size == 0 {
            return fail("max_transactions", "transactions must have a positive count and size");
        }
        let bytes = u128::from(self.max_transactions) * self.transaction_size as u128;
        if bytes > 64 * 1024 * 1024 {
            return fail(
                "max_transactions",
                "max_transactions * transaction_size must be at most 64 MiB",
            );
        }
        if self.history_slots < self.slots_per_epoch.saturating_mul(4) {
            return fail(
                "history_slots",
                "must cover at least four epochs (finality looks three back)",
            );
        }
        if self.keep_alive_secs == 0 {
            return fail("keep_alive_secs", "must be at least 1");
        }
        if self.keymanager_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return fail("keymanager_token", "must not be empty");
        }
        Ok(())
    }
}

/// State shared by the node's driver and its HTTP handlers.
struct Inner {
    chain: Mutex<Chain>,
    events: broadcast::Sender<BeaconEvent>,
    head_slot: watch::Sender<Slot>,
    clock: Arc<dyn Clock>,
    keymanager_token: Option<String>,
}

impl Inner {
    fn chain(&self) -> MutexGuard<'_, Chain> {
        // A panic while holding the lock cannot leave the chain half-updated in a way that
        // matters more than stopping the devnet would; keep serving.
        self.chain.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, events: Vec<BeaconEvent>, head: Slot) {
        for event in events {
            // No subscriber is fine.
            let _ = self.events.send(event);
        }
        self.head_slot.send_replace(head);
    }

    /// The current wall-clock slot, `None` before genesis.
    fn clock_slot(&self, chain: &Chain) -> Option<Slot> {
        let now = self.clock.now().as_secs();
        let since = now.checked_sub(chain.genesis_time())?;
        Some(Slot(since / chain.config().seconds_per_slot))
    }
}

/// The embedded devnet beacon node: produces a block at every slot on its clock and serves the
/// standard endpoints (see [`DevnetNode::serve`]). Dropping it stops block production.
pub struct DevnetNode {
    inner: Arc<Inner>,
    driver: JoinHandle<()>,
}

impl std::fmt::Debug for DevnetNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetNode").field("head_slot", &*self.inner.head_slot.borrow()).finish()
    }
}

impl DevnetNode {
    /// Starts a devnet on the system clock. Requires a Tokio runtime.
    pub fn spawn(config: DevnetConfig) -> Result<Self> {
        Self::spawn_with_clock(config, Arc::new(SystemClock))
    }

    /// Starts a devnet on the given clock (a [`ManualClock`] in tests). Requires a Tokio runtime.
    pub fn spawn_with_clock(config: DevnetConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        let genesis_time = config.genesis_time.unwrap_or_else(|| clock.now().as_secs());
        let keymanager_token = config.keymanager_token.clone();
        let chain = Chain::new(config, genesis_time)?;
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            chain: Mutex::new(chain),
            events,
            head_slot: watch::Sender::new(Slot(0)),
            clock,
            keymanager_token,
        });
        let driver = tokio::spawn(drive(Arc::clone(&inner)));
        Ok(Self { inner, driver })
    }

    /// The genesis data.
    pub fn genesis(&self) -> GenesisData {
        self.inner.chain().genesis()
    }

    /// The configuration.
    pub fn config(&self) -> DevnetConfig {
        self.inner.chain().config().clone()
    }

    /// The current head header.
    pub fn head(&self) -> BlockHeaderData {
        let chain = self.inner.chain();
        chain.header(chain.head())
    }

    /// Waits until the head reaches `slot`.
    pub async fn wait_for_slot(&self, slot: Slot) {
        let mut rx = self.inner.head_slot.subscribe();
        // The sender lives in `self.inner`, so this cannot fail while `self` is borrowed.
        let _ = rx.wait_for(|head| *head >= slot).await;
    }

    /// Subscribes to the node's events (every topic).
    pub fn subscribe(&self) -> broadcast::Receiver<BeaconEvent> {
        self.inner.events.subscribe()
    }

    /// Reorganises the chain: the last `depth` blocks are replaced by blocks of a new fork at the
    /// same slots. Emits `block` events for the new blocks, then `chain_reorg`, then `head`.
    /// Fails if `depth` is 0 or reaches the justified checkpoint.
    pub fn inject_reorg(&self, depth: u64) -> Result<ChainReorgEvent> {
        let (events, head) = {
            let mut chain = self.inner.chain();
            let events = chain.reorg(depth)?;
            (events, chain.head().slot())
        };
        let reorg = events.iter().find_map(|e| match e {
            BeaconEvent::ChainReorg(r) => Some(r.clone()),
            _ => None,
        });
        self.inner.publish(events, head);
        reorg.ok_or(Error::ReorgTooDeep { depth, available: 0 })
    }

    /// The HTTP router of the standard endpoints (for embedding in another server), with the
    /// keymanager API when a token is configured.
    pub fn router(&self) -> axum::Router {
        routes(Arc::clone(&self.inner), watch::channel(false).1)
    }

    /// Serves the standard endpoints (and the keymanager API when a token is configured) on
    /// `addr` (use port 0 for any free port).
    pub async fn serve(&self, addr: SocketAddr) -> Result<ServerHandle> {
        let inner = Arc::clone(&self.inner);
        let handle = ServerHandle::start(addr, move |shutdown| routes(inner, shutdown)).await?;
        tracing::info!(addr = %handle.addr(), "devnet beacon node listening");
        Ok(handle)
    }
}

fn routes(inner: Arc<Inner>, shutdown: watch::Receiver<bool>) -> axum::Router {
    let keymanager =
        inner.keymanager_token.clone().map(|t| keymanager::router(Arc::clone(&inner), &t));
    let beacon = server::router(inner, shutdown);
    match keymanager {
        Some(k) => beacon.merge(k),
        None => beacon,
    }
}

impl Drop for DevnetNode {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Produces the blocks of every slot the clock reaches, then sleeps until the next slot.
async fn drive(inner: Arc<Inner>) {
    loop {
        let next_start = {
            let mut chain = inner.chain();
            let sps = chain.config().seconds_per_slot;
            let genesis = chain.genesis_time();
            match inner.clock_slot(&chain) {
                Some(slot) => {
                    let events = chain.advance_to(slot);
                    let head = chain.head().slot();
                    drop(chain);
                    inner.publish(events, head);
                    genesis.saturating_add(slot.get().saturating_add(1).saturating_mul(sps))
                }
                None => genesis,
            }
        };
        inner.clock.sleep_until(Duration::from_secs(next_start)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        assert!(DevnetConfig::default().validate().is_ok());
        let cases = [
            (DevnetConfig { seconds_per_slot: 0, ..DevnetConfig::default() }, "seconds_per_slot"),
            (
                DevnetConfig { min_gas_used: 10, max_gas_used: 5, ..DevnetConfig::default() },
                "min_gas_used",
            ),
            (
                DevnetConfig {
                    max_gas_used: 2_000_000_000,
                    gas_limit: Some(30_000_000),
                    ..DevnetConfig::default()
                },
                "gas_limit",
            ),
            (DevnetConfig { history_slots: 10, ..DevnetConfig::default() }, "history_slots"),
            (DevnetConfig { validator_count: 0, ..DevnetConfig::default() }, "validator_count"),
        ];
        for (config, key) in cases {
            assert!(
                matches!(config.validate(), Err(Error::Config { key: k, .. }) if k == key),
                "{key}"
            );
        }
        // Gigagas blocks are fine: the gas limit follows.
        let giga = DevnetConfig { max_gas_used: 3_000_000_000, ..DevnetConfig::default() };
        assert!(giga.validate().is_ok());
        assert_eq!(giga.gas_limit(), 3_000_000_000);
    }

    #[test]
    fn config_reads_from_toml_like_serde_and_rejects_unknown_keys() {
        let config: DevnetConfig =
            serde_json::from_str(r#"{"seconds_per_slot": 2, "max_gas_used": 1000000000}"#).unwrap();
        assert_eq!(config.seconds_per_slot, 2);
        assert!(serde_json::from_str::<DevnetConfig>(r#"{"secs_per_slot": 2}"#).is_err());
    }
}
