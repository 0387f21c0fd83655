//! The node assembled: [`NodeConfig`], [`Node::spawn`] wiring the follower, the driver, the
//! verifiers, gossip and the HTTP server together, and the running node's [`NodeHandle`].

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use beacon_api::{BeaconClient, ProvingEvent, ProvingServerConfig};
use phase_engine::{Engine, ProverRecord, RegistryParams, Root, Slot};
use plonky3_prover::{ProofParams, Prover, SegmentParams, SegmentWorkload};
use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
};
use tracing::info;

use sidecar_metrics::Metrics;
use sidecar_p2p::{NetworkConfig, NetworkHandle};

use crate::backend::NodeApi;
use crate::error::{NodeError, NodeResult};
use crate::follower::ChainTiming;
use crate::gossip::GOSSIP_TOPICS;
use crate::includer::{Includer, InclusionConfig};
use crate::{SlotClock, SlotTiming, Store, SystemSlotClock};
use crate::{driver, follower, gossip, sync, verify};

/// Settings of a validator-mode node.
#[derive(Clone)]
pub struct NodeConfig {
    /// Beacon API URLs, tried in order.
    pub beacon_urls: Vec<String>,
    /// Data directory (the database is `node.redb` in it).
    pub data_dir: PathBuf,
    /// The database's page cache in bytes (default [`Store::DEFAULT_CACHE_BYTES`], 8 MiB).
    /// The node's memory grows with it; more only speeds up reads of old data.
    pub db_cache_bytes: usize,
    /// HTTP address of the proving API and `/metrics` (port 0: any free port).
    pub http_address: SocketAddr,
    /// Reward rules and engine parameters.
    pub rewards: rewards::Config,
    /// Provers known from genesis (sorted by public key on start).
    pub genesis_provers: Vec<ProverRecord>,
    /// Minimum stake of a registration (Gwei).
    pub min_stake: u64,
    /// STARK parameters (must match the provers').
    pub proof_params: ProofParams,
    /// Segment workload parameters (must match the provers').
    pub segment_params: SegmentParams,
    /// The clock; `None`: the system clock.
    pub clock: Option<Arc<dyn SlotClock>>,
    /// Metrics registry (a new one when `None`).
    pub metrics: Option<Metrics>,
    /// Gossip: `None` (the default) runs without peers; `Some` starts the libp2p network with
    /// these settings, subscribes to one topic per message kind ([`GOSSIP_TOPICS`]), publishes
    /// what the HTTP API accepts and validates what peers send through the engine.
    /// [`NetworkConfig::loopback`] is the setting for tests and local devnets.
    pub p2p: Option<NetworkConfig>,
    /// Canonical rounds: `Some` settles every block from the canonical inclusion records (and,
    /// with a validator client, includes for its validators' proposals); `None` (the default)
    /// settles from this node's own clock, as before canonical rounds.
    pub inclusion: Option<InclusionConfig>,
    /// Fault injection (tests, `sidecar devnet --chaos`): every gossip message reaches the
    /// driver this much later than it arrived. Zero (the default) in any real deployment.
    pub gossip_delay: Duration,
    /// Below this many free bytes on the data directory's filesystem the node refuses new work
    /// (HTTP submissions answer 503; gossip and sync are ignored) and keeps serving reads; it
    /// resumes when space returns. 0 (the default here; `sidecar run` defaults to 256 MiB):
    /// never.
    pub min_free_bytes: u64,
    /// Slots of messages and proofs the store keeps (and serves to peers that sync) before it
    /// prunes them; ledgers, balances and the registry are kept for ever
    /// ([`DEFAULT_RETENTION_SLOTS`]).
    pub retention_slots: u64,
}

/// The default of [`NodeConfig::retention_slots`]: 1024 slots (about 3.4 hours of 12-second
/// slots), what sync (a peer back from downtime fetches what it missed) and the API need.
pub const DEFAULT_RETENTION_SLOTS: u64 = 1024;

/// The fewest slots [`NodeConfig::retention_slots`] may be: past the reach of a reorg
/// (`phase_engine::SNAPSHOTS_KEPT`) and of a message's inclusion (`inclusion.max_delay_slots`
/// at its largest).
pub const MIN_RETENTION_SLOTS: u64 = 128;

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("beacon_urls", &self.beacon_urls)
            .field("data_dir", &self.data_dir)
            .field("http_address", &self.http_address)
            .field("genesis_provers", &self.genesis_provers.len())
            .field("p2p", &self.p2p)
            .field("inclusion", &self.inclusion.as_ref().map(|i| i.validator_client.is_some()))
            .finish_non_exhaustive()
    }
}

impl NodeConfig {
    /// Defaults for a node following `beacon_urls` with its data in `data_dir`, serving on a
    /// free loopback port.
    pub fn new(beacon_urls: Vec<String>, data_dir: PathBuf) -> Self {
        Self {
            beacon_urls,
            data_dir,
            db_cache_bytes: Store::DEFAULT_CACHE_BYTES,
            http_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            rewards: rewards::Config::default(),
            genesis_provers: Vec::new(),
            min_stake: 1,
            proof_params: ProofParams::default(),
            segment_params: SegmentParams::default(),
            clock: None,
            metrics: None,
            p2p: None,
            inclusion: None,
            gossip_delay: Duration::ZERO,
            min_free_bytes: 0,
            retention_slots: DEFAULT_RETENTION_SLOTS,
        }
    }
}

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    http_addr: SocketAddr,
    api: NodeApi,
    events: broadcast::Sender<ProvingEvent>,
    settled: broadcast::Sender<rewards::Ledger>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    driver: Option<JoinHandle<NodeResult<()>>>,
    metrics: Metrics,
    network: Option<NetworkHandle>,
    after_driver: Vec<JoinHandle<()>>,
}

/// The node.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Connects to the beacon node (genesis, `SECONDS_PER_SLOT`), opens the store, replays its
    /// input log, and starts the driver, the beacon follower and the HTTP server.
    ///
    /// # Errors
    /// The beacon node unreachable, the store unusable, the address taken.
    pub async fn spawn(config: NodeConfig) -> NodeResult<NodeHandle> {
        let started = std::time::Instant::now();
        if config.retention_slots < MIN_RETENTION_SLOTS {
            return Err(NodeError::Config {
                reason: format!(
                    "retention_slots {} is below the minimum {MIN_RETENTION_SLOTS}",
                    config.retention_slots
                ),
            });
        }
        let client = BeaconClient::builder()
            .urls(config.beacon_urls.clone())
            .request_timeout(Duration::from_secs(10))
            .build()?;
        let genesis = client.genesis().await?;
        let spec = client.spec().await?;
        let seconds_per_slot = spec.get_u64("SECONDS_PER_SLOT")?.ok_or_else(|| {
            NodeError::Config { reason: "the beacon node's spec has no SECONDS_PER_SLOT".into() }
        })?;
        let timing = ChainTiming { genesis_time: genesis.genesis_time, seconds_per_slot };
        let clock: Arc<dyn SlotClock> = match config.clock.clone() {
            Some(c) => c,
            None => Arc::new(SystemSlotClock::new(
                SlotTiming::from_secs(genesis.genesis_time, seconds_per_slot)
                    .map_err(|e| NodeError::Config { reason: e.to_string() })?,
            )),
        };
        let ctx = genesis.signing_context();
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|source| NodeError::DataDir { path: config.data_dir.clone(), source })?;
        let db = config.data_dir.join("node.redb");
        let cache = config.db_cache_bytes;
        let store = Arc::new(
            tokio::task::spawn_blocking(move || Store::open_with_cache(&db, cache))
                .await
                .map_err(|_| NodeError::Stopped)??,
        );
        let mut engine = Engine::with_registry_params(
            config.rewards.engine,
            ctx,
            RegistryParams { min_stake: config.min_stake },
        );
        let mut genesis_provers = config.genesis_provers.clone();
        genesis_provers.sort_by_key(|r| r.pubkey);
        for record in genesis_provers {
            engine.add_prover(record)?;
        }
        let settling = match &config.inclusion {
            Some(_) => Some(
                phase_engine::CanonicalRounds::new(
                    engine.clone(),
                    config.rewards.inclusion,
                    phase_engine::UnixMillis(genesis.genesis_time.saturating_mul(1000)),
                    seconds_per_slot.saturating_mul(1000),
                )
                .map_err(|e| NodeError::Config { reason: e.to_string() })?,
            ),
            None => None,
        };
        let keymanager = match config.inclusion.as_ref().and_then(|i| i.validator_client.as_ref()) {
            Some(vc) => Some((
                beacon_api::KeymanagerClient::new(&vc.keymanager_url, vc.token.clone())?,
                vc.validators.clone(),
            )),
            None => None,
        };
        match (&config.inclusion, &keymanager) {
            (Some(_), Some((km, _))) => {
                info!(keymanager = %km.url(), "canonical rounds: including for the validator client's proposals");
            }
            (Some(_), None) => info!(
                "canonical rounds: no validator client configured, so this sidecar includes \
                 nothing; it settles from the records of other proposers' sidecars"
            ),
            (None, _) => {}
        }
        let slots_per_epoch = spec.slots_per_epoch()?.unwrap_or(32);
        let workload = SegmentWorkload::new(config.segment_params.clone())
            .map_err(|e| NodeError::Config { reason: format!("segment parameters: {e}") })?;
        let prover = Prover::new(config.proof_params.clone(), workload)
            .map_err(|e| NodeError::Config { reason: format!("proof parameters: {e}") })?;
        let metrics = config.metrics.clone().unwrap_or_default();
        // The network first: a taken port fails the start before anything else runs.
        let network = match config.p2p.clone() {
            Some(mut p2p) => {
                for name in GOSSIP_TOPICS {
                    if !p2p.topics.iter().any(|t| t == name) {
                        p2p.topics.push(name.to_owned());
                    }
                }
                let network = sidecar_p2p::start_network(p2p, Some(metrics.clone()))
                    .await
                    .map_err(NodeError::P2p)?;
                info!(address = %network.handle.listen_address(), "gossip started");
                Some(network)
            }
            None => None,
        };
        let (publish_tx, publish_rx) = mpsc::channel(1024);
        let grace_ms = config.rewards.engine.phases.max_relay_delay_ms;
        let (events, _) = broadcast::channel(1024);
        let (settled, _) = broadcast::channel(256);
        let (tx, rx) = mpsc::channel(1024);
        let parts = driver::DriverParts {
            engine,
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
            rewards: config.rewards,
            verifier: Arc::new(verify::StarkVerifier::new(prover)),
            metrics: metrics.clone(),
            settling,
            events: events.clone(),
            settled: settled.clone(),
            publish: network.is_some().then_some(publish_tx),
            min_free_bytes: config.min_free_bytes,
            retention_slots: config.retention_slots,
        };
        // Replaying reads and writes the store: off the async workers.
        let tx2 = tx.clone();
        let driver = tokio::task::spawn_blocking(move || driver::Driver::new(parts, &tx2))
            .await
            .map_err(|_| NodeError::Stopped)??;
        let last = driver.last_block();
        // Every line the driver logs names the node by its data directory (several nodes share
        // a process in the devnet and in tests).
        let name = config.data_dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let span = tracing::info_span!("node", dir = name.unwrap_or_default());
        let driver_task = tokio::spawn(tracing::Instrument::instrument(driver.run(rx), span));

        let api = NodeApi::new(tx.clone(), Arc::clone(&clock), events.clone());
        let router =
            beacon_api::proving_router(Arc::new(api.clone()), &ProvingServerConfig::default())
                .merge(metrics.router());
        let listener = tokio::net::TcpListener::bind(config.http_address)
            .await
            .map_err(|source| NodeError::Http { addr: config.http_address, source })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| NodeError::Http { addr: config.http_address, source })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut stop = shutdown_rx.clone();
        let http = tokio::spawn(async move {
            let until = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(until).await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        let mut tasks = vec![http];
        let mut after_driver = Vec::new();
        let mut network_handle = None;
        if let Some(network) = network {
            if config.inclusion.is_some() {
                let (server, fetcher) = sync::spawn(
                    network.handle.clone(),
                    network.requests,
                    tx.clone(),
                    Arc::clone(&store),
                    ctx,
                    metrics.clone(),
                    shutdown_rx.clone(),
                );
                tasks.push(server);
                tasks.push(fetcher);
            }
            let (receive, publisher) = gossip::spawn(
                network.handle.clone(),
                network.messages,
                publish_rx,
                tx.clone(),
                gossip::ArrivalClock {
                    clock: Arc::clone(&clock),
                    grace_ms,
                    delay: config.gossip_delay,
                },
                metrics.clone(),
                shutdown_rx.clone(),
            );
            tasks.push(receive);
            after_driver.push(publisher);
            after_driver.push(network.task);
            network_handle = Some(network.handle);
        }
        if let Some((keymanager, listed)) = keymanager {
            let includer = Includer {
                beacon: client.clone(),
                keymanager,
                listed,
                clock: Arc::clone(&clock),
                slots_per_epoch,
                cutoff_margin: Duration::from_millis(config.rewards.inclusion.cutoff_margin_ms),
                tx: tx.clone(),
            };
            tasks.push(tokio::spawn(includer.run(shutdown_rx.clone())));
        }
        let from_genesis = config.inclusion.is_some();
        let follower =
            tokio::spawn(follower::follow(client, timing, last, from_genesis, tx, shutdown_rx));
        tasks.push(follower);
        // From the call to serving: the store opened, the checkpoint restored, the log after it
        // replayed, the network and the HTTP server up.
        let start_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        info!(%http_addr, genesis_time = timing.genesis_time, seconds_per_slot, start_ms, "node started");
        Ok(NodeHandle {
            http_addr,
            api,
            events,
            settled,
            shutdown,
            tasks,
            driver: Some(driver_task),
            metrics,
            network: network_handle,
            after_driver,
        })
    }
}

impl NodeHandle {
    /// The address of the proving API and `/metrics`.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The base URL of the HTTP server (`http://addr`).
    pub fn url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// Round, phase and block events.
    pub fn subscribe(&self) -> broadcast::Receiver<ProvingEvent> {
        self.events.subscribe()
    }

    /// Every ledger as it is settled.
    pub fn subscribe_settled(&self) -> broadcast::Receiver<rewards::Ledger> {
        self.settled.subscribe()
    }

    /// The node's backend (what the HTTP API calls), for in-process use.
    pub fn api(&self) -> &NodeApi {
        &self.api
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The gossip network, when the node runs one ([`NodeConfig::p2p`]): its listen address
    /// ([`NetworkHandle::listen_address`], dialable), ENR, peer count, and
    /// [`NetworkHandle::dial`] to connect to other nodes.
    pub fn p2p(&self) -> Option<&NetworkHandle> {
        self.network.as_ref()
    }

    /// The latest block fed to the engine.
    pub async fn head(&self) -> NodeResult<Option<(Slot, Root)>> {
        self.api.query(|d| d.last_block()).await.map_err(|_| NodeError::Stopped)
    }

    /// The settled ledgers still in memory, by slot.
    pub async fn ledgers(&self) -> NodeResult<Vec<rewards::Ledger>> {
        self.api.query(|d| d.ledgers()).await.map_err(|_| NodeError::Stopped)
    }

    /// Stops the follower and the HTTP server, then the driver once its queue is empty.
    ///
    /// # Errors
    /// What the driver failed with, if it did.
    pub async fn shutdown(mut self) -> NodeResult<()> {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        drop(self.api);
        let result = match self.driver.take() {
            Some(driver) => driver.await.map_err(|_| NodeError::Stopped)?,
            None => Ok(()),
        };
        // The publisher ends with the driver; then the network.
        if let Some(network) = self.network.take() {
            network.shutdown().await;
        }
        for task in self.after_driver.drain(..) {
            let _ = task.await;
        }
        result
    }

    /// Stops every task at once, without draining anything (what a crash does; the store keeps
    /// only what was committed). Waits until the tasks are gone, so the data directory can be
    /// reopened.
    pub async fn abort(mut self) {
        for task in self.tasks.iter().chain(&self.after_driver) {
            task.abort();
        }
        if let Some(driver) = &self.driver {
            driver.abort();
        }
        for task in self.tasks.drain(..).chain(self.after_driver.drain(..)) {
            let _ = task.await;
        }
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
    }
}
