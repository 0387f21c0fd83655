//! The network task: a libp2p swarm (TCP, noise, yamux; gossipsub, the sync request/response
//! protocols and a block list of banned peers) and discv5 discovery on one tokio task, driven
//! through a cloneable [`NetworkHandle`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::gossipsub::{
    self, AllowAllSubscriptionFilter, MessageAcceptance, MessageAuthenticity, MessageId,
    ValidationMode,
};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, allow_block_list};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::codec::{MAX_GOSSIP_SIZE, SnappyTransform, gossip_message_id, sidecar_topic_sizes};
use super::identity::{NodeKey, enr_peer_id};
use super::peer_score::{PEER_BAN_DURATION, PeerScores, Penalty};
use super::reqresp::{
    self, CodecError, ErrorCode, InboundRequest, RateLimiter, ReqRespConfig, RequestPayload,
    ResponseResult, ResponseSender, SyncCodec, SyncProtocol, SyncResponse, Unanswered,
};
use super::scoring::{GRAYLIST_THRESHOLD, ScoringConfig, enable_peer_scoring};
use super::topic::GossipTopic;
use crate::config::P2pConfig;
use crate::error::{Error, Result};
use sidecar_metrics::Metrics;

type Gossipsub = gossipsub::Behaviour<SnappyTransform, AllowAllSubscriptionFilter>;
type SyncBehaviour = request_response::Behaviour<SyncCodec>;
type SyncEvent = request_response::Event<RequestPayload, SyncResponse>;
type QueryFuture =
    Pin<Box<dyn Future<Output = std::result::Result<Vec<discv5::Enr>, discv5::QueryError>> + Send>>;
/// Where the chunks of one of our requests go.
type ChunksReply = oneshot::Sender<Result<Vec<Vec<u8>>>>;
/// The application's answer to an inbound request, or why there is none.
type Answer = std::result::Result<ResponseResult, Unanswered>;
/// An inbound request waiting for the application's answer.
type ReplyFuture =
    Pin<Box<dyn Future<Output = (SyncProtocol, ResponseChannel<SyncResponse>, Answer)> + Send>>;

/// The swarm's behaviour: the block list first, so that banned peers' connections are denied
/// before any other behaviour sees them.
#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    gossipsub: Gossipsub,
    records_by_range: SyncBehaviour,
    messages_by_id: SyncBehaviour,
}

impl Behaviour {
    fn sync(&mut self, protocol: SyncProtocol) -> &mut SyncBehaviour {
        match protocol {
            SyncProtocol::RecordsByRange => &mut self.records_by_range,
            SyncProtocol::MessagesById => &mut self.messages_by_id,
        }
    }
}

/// Everything the network task needs to start.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// The node's identity (peer id and ENR key).
    pub node_key: NodeKey,
    /// IP address to listen on (TCP and UDP).
    pub listen_address: IpAddr,
    /// libp2p TCP port; 0 picks a free one.
    pub tcp_port: u16,
    /// discv5 UDP port; 0 picks a free one.
    pub discovery_port: u16,
    /// Whether to run discv5 (off: peers only by [`NetworkHandle::dial`]).
    pub enable_discovery: bool,
    /// Bootnode ENRs.
    pub bootnodes: Vec<discv5::Enr>,
    /// Topic prefix (`/<prefix>/<name>/ssz_snappy`).
    pub topic_prefix: String,
    /// Topic names to subscribe to at start.
    pub topics: Vec<String>,
    /// Peers to keep; discovered peers are not dialled beyond this.
    pub target_peers: usize,
    /// Gossipsub heartbeat.
    pub heartbeat_interval: Duration,
    /// How often a discovery query runs while below the target.
    pub discovery_interval: Duration,
    /// Largest message, compressed or decompressed.
    pub max_message_size: usize,
    /// Largest decompressed payload per topic name, checked before decompression (at most
    /// `max_message_size`; topics not listed get `max_message_size`). The defaults are the
    /// proving sidecar's topics (docs/protocol.md, "Peer scoring and limits").
    pub max_topic_sizes: BTreeMap<String, usize>,
    /// Capacity of the queue of messages waiting for validation; beyond it the newest message
    /// is ignored (and counted in [`NetworkHandle::gossip_dropped`]).
    pub validation_queue: usize,
    /// Most messages from one peer waiting for their verdict (queued or being validated);
    /// beyond it the peer's newest message is ignored (and counted), so that one peer cannot
    /// fill the validation queue.
    pub max_pending_per_peer: usize,
    /// Gossipsub peer scoring: slot, mesh sizes and the expected rate of each topic, from which
    /// the score parameters are derived. Every topic in `topics` must have a rate.
    pub scoring: ScoringConfig,
    /// How long a received message stays in gossipsub's message cache: its verdict must come
    /// within this time for it to be forwarded (a STARK check under load, or a message held
    /// until its block arrives, can take seconds), and peers can fetch it (IWANT) meanwhile.
    pub validation_window: Duration,
    /// The sync request/response protocols: timeout, rate limit, size limits.
    pub reqresp: ReqRespConfig,
}

impl NetworkConfig {
    /// Defaults for everything but the key: the `[p2p]` defaults, no topics.
    pub fn new(node_key: NodeKey) -> Self {
        let p2p = P2pConfig::default();
        Self {
            node_key,
            listen_address: p2p.listen_address,
            tcp_port: p2p.tcp_port,
            discovery_port: p2p.discovery_port,
            enable_discovery: true,
            bootnodes: Vec::new(),
            topic_prefix: p2p.topic_prefix,
            topics: Vec::new(),
            target_peers: p2p.target_peers,
            heartbeat_interval: Duration::from_millis(700),
            discovery_interval: Duration::from_secs(10),
            max_message_size: MAX_GOSSIP_SIZE,
            max_topic_sizes: sidecar_topic_sizes(),
            validation_queue: 1024,
            max_pending_per_peer: 256,
            scoring: ScoringConfig::default(),
            validation_window: Duration::from_secs(30),
            reqresp: ReqRespConfig::default(),
        }
    }

    /// A node on loopback for tests and local devnets: `127.0.0.1`, free TCP (and UDP) ports,
    /// discovery off (connect nodes with [`NetworkHandle::dial`]; set `enable_discovery` and
    /// `bootnodes` to use discv5 instead), a short heartbeat so meshes form within a second,
    /// a low peer target, and no IP-colocation penalty for loopback addresses (every local
    /// node shares them).
    pub fn loopback(node_key: NodeKey) -> Self {
        let base = Self::new(node_key);
        let scoring = ScoringConfig {
            ip_colocation_whitelist: vec![
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ],
            ..base.scoring.clone()
        };
        Self {
            listen_address: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            tcp_port: 0,
            discovery_port: 0,
            enable_discovery: false,
            target_peers: 16,
            heartbeat_interval: Duration::from_millis(200),
            discovery_interval: Duration::from_secs(1),
            scoring,
            ..base
        }
    }

    /// From the `[p2p]` config section (already validated) and the node key.
    ///
    /// # Errors
    /// [`Error::ConfigInvalid`] naming `p2p.bootnodes` for a malformed ENR.
    pub fn from_config(p2p: &P2pConfig, node_key: NodeKey) -> Result<Self> {
        let bootnodes = p2p
            .bootnodes
            .iter()
            .map(|s| {
                discv5::Enr::from_str(s).map_err(|e| Error::ConfigInvalid {
                    key: "p2p.bootnodes".into(),
                    value: s.clone(),
                    reason: format!("not a valid ENR: {e}"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            listen_address: p2p.listen_address,
            tcp_port: p2p.tcp_port,
            discovery_port: p2p.discovery_port,
            bootnodes,
            topic_prefix: p2p.topic_prefix.clone(),
            target_peers: p2p.target_peers,
            ..Self::new(node_key)
        })
    }
}

/// A gossip message waiting for validation: gossipsub holds it (does not forward it) until
/// [`NetworkHandle::report_validation`] gives the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipMessage {
    /// Content-derived message id.
    pub id: MessageId,
    /// The peer that forwarded it to us.
    pub source: PeerId,
    /// Its topic.
    pub topic: GossipTopic,
    /// The decompressed payload (SSZ bytes).
    pub data: Vec<u8>,
}

/// The result of validating a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageVerdict {
    /// Valid: deliver and forward.
    Accept,
    /// Invalid: drop, never forward, and count it against the sender in gossipsub's
    /// bookkeeping (peer scoring, once enabled, turns it into a penalty).
    Reject,
    /// Not useful (duplicate, late): drop without penalty.
    Ignore,
}

impl From<MessageVerdict> for MessageAcceptance {
    fn from(v: MessageVerdict) -> Self {
        match v {
            MessageVerdict::Accept => Self::Accept,
            MessageVerdict::Reject => Self::Reject,
            MessageVerdict::Ignore => Self::Ignore,
        }
    }
}

enum Command {
    Publish { topic: GossipTopic, data: Vec<u8>, reply: oneshot::Sender<Result<MessageId>> },
    Subscribe { topic: GossipTopic, reply: oneshot::Sender<Result<()>> },
    Report { id: MessageId, source: PeerId, verdict: MessageVerdict },
    Dial { address: Multiaddr, reply: oneshot::Sender<Result<()>> },
    MeshPeers { topic: GossipTopic, reply: oneshot::Sender<usize> },
    SendRequest { peer: PeerId, protocol: SyncProtocol, payload: Vec<u8>, reply: ChunksReply },
    ConnectedPeers { reply: oneshot::Sender<Vec<PeerId>> },
    GossipScore { peer: PeerId, reply: oneshot::Sender<Option<f64>> },
    Penalise { peer: PeerId, reason: &'static str },
    Shutdown,
}

/// A cloneable handle to the network task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    peers: Arc<AtomicUsize>,
    banned: Arc<Mutex<HashSet<PeerId>>>,
    dropped: Arc<AtomicU64>,
    peer_id: PeerId,
    enr: Option<discv5::Enr>,
    listen_address: Multiaddr,
    topic_prefix: String,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Publish { .. } => "Publish",
            Self::Subscribe { .. } => "Subscribe",
            Self::Report { .. } => "Report",
            Self::Dial { .. } => "Dial",
            Self::MeshPeers { .. } => "MeshPeers",
            Self::SendRequest { .. } => "SendRequest",
            Self::ConnectedPeers { .. } => "ConnectedPeers",
            Self::GossipScore { .. } => "GossipScore",
            Self::Penalise { .. } => "Penalise",
            Self::Shutdown => "Shutdown",
        })
    }
}

impl NetworkHandle {
    /// The topic `name` under this network's prefix.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`].
    pub fn topic(&self, name: &str) -> Result<GossipTopic> {
        GossipTopic::new(&self.topic_prefix, name)
    }

    /// Publishes `data` (uncompressed SSZ) on topic `name`; returns its message id.
    ///
    /// # Errors
    /// [`Error::P2p`] (for example no peer on the topic, or a duplicate), or
    /// [`Error::NetworkStopped`].
    pub async fn publish(&self, name: &str, data: Vec<u8>) -> Result<MessageId> {
        let topic = self.topic(name)?;
        self.request(|reply| Command::Publish { topic, data, reply }).await?
    }

    /// Subscribes to topic `name`; its messages then arrive on the validation queue.
    ///
    /// # Errors
    /// [`Error::P2p`] or [`Error::NetworkStopped`].
    pub async fn subscribe(&self, name: &str) -> Result<()> {
        let topic = self.topic(name)?;
        self.request(|reply| Command::Subscribe { topic, reply }).await?
    }

    /// Reports the verdict on a message from the validation queue: accepted messages are
    /// forwarded to the mesh, rejected and ignored ones are dropped.
    ///
    /// # Errors
    /// [`Error::NetworkStopped`].
    pub async fn report_validation(
        &self,
        message: &GossipMessage,
        verdict: MessageVerdict,
    ) -> Result<()> {
        let command = Command::Report { id: message.id.clone(), source: message.source, verdict };
        self.commands.send(command).await.map_err(|_| Error::NetworkStopped)
    }

    /// Dials a peer by address (`/ip4/.../tcp/...`, optionally with `/p2p/<peer id>`).
    ///
    /// # Errors
    /// [`Error::P2p`] if the dial cannot start, [`Error::NetworkStopped`].
    pub async fn dial(&self, address: Multiaddr) -> Result<()> {
        self.request(|reply| Command::Dial { address, reply }).await?
    }

    /// Number of peers in our gossipsub mesh for topic `name`.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`] or [`Error::NetworkStopped`].
    pub async fn mesh_peers(&self, name: &str) -> Result<usize> {
        let topic = self.topic(name)?;
        self.request(|reply| Command::MeshPeers { topic, reply }).await
    }

    /// Sends `payload` (uncompressed SSZ) to `peer` on `protocol` and returns the response's
    /// chunks, decompressed, in order. The whole exchange is bounded by
    /// [`ReqRespConfig::request_timeout`] and the protocol's
    /// [`ProtocolLimits`](crate::ProtocolLimits).
    ///
    /// The peer should be connected ([`Self::connected_peers`]); otherwise libp2p dials it with
    /// the addresses its behaviours know, which for a peer never dialled fails with
    /// [`Error::DialFailure`].
    ///
    /// # Errors
    /// [`Error::RequestTooLarge`], [`Error::PeerBanned`], [`Error::DialFailure`],
    /// [`Error::RequestTimeout`], [`Error::PeerError`] (the peer answered an error code),
    /// [`Error::ResponseOverCap`], [`Error::InvalidResponse`], [`Error::RequestFailed`], or
    /// [`Error::NetworkStopped`].
    pub async fn send_request(
        &self,
        peer: PeerId,
        protocol: SyncProtocol,
        payload: Vec<u8>,
    ) -> Result<Vec<Vec<u8>>> {
        self.request(|reply| Command::SendRequest { peer, protocol, payload, reply }).await?
    }

    /// The peers with an open connection.
    ///
    /// # Errors
    /// [`Error::NetworkStopped`].
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>> {
        self.request(|reply| Command::ConnectedPeers { reply }).await
    }

    /// Penalises `peer` for misbehaviour the application found (an invalid response, a
    /// useless request), counted in `sidecar_p2p_peer_penalties_total{reason}`. Each penalty
    /// costs [`PEER_PENALTY`](crate::PEER_PENALTY) points; at
    /// [`PEER_BAN_THRESHOLD`](crate::PEER_BAN_THRESHOLD) the peer is disconnected and banned
    /// for [`PEER_BAN_DURATION`](crate::PEER_BAN_DURATION).
    ///
    /// # Errors
    /// [`Error::NetworkStopped`].
    pub async fn penalise(&self, peer: PeerId, reason: &'static str) -> Result<()> {
        self.commands
            .send(Command::Penalise { peer, reason })
            .await
            .map_err(|_| Error::NetworkStopped)
    }

    /// The gossipsub score of `peer` (`None` if scoring is off; 0 for a peer never seen).
    /// Below [`GRAYLIST_THRESHOLD`](crate::GRAYLIST_THRESHOLD) the peer is disconnected and
    /// banned.
    ///
    /// # Errors
    /// [`Error::NetworkStopped`].
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>> {
        self.request(|reply| Command::GossipScore { peer, reply }).await
    }

    /// Whether `peer` is banned (by its application score or its gossipsub score). A validator
    /// can skip, as ignored, the queued messages of a peer banned meanwhile.
    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.lock().unwrap_or_else(PoisonError::into_inner).contains(peer)
    }

    /// Gossip messages ignored, since the start, because the validation queue or the sender's
    /// share of it ([`NetworkConfig::max_pending_per_peer`]) was full.
    pub fn gossip_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Our libp2p peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Our ENR, if discovery runs.
    pub fn local_enr(&self) -> Option<&discv5::Enr> {
        self.enr.as_ref()
    }

    /// Our TCP listen address, with `/p2p/<peer id>`.
    pub fn listen_address(&self) -> &Multiaddr {
        &self.listen_address
    }

    /// Asks the network task to stop (it also stops when every handle is dropped).
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| Error::NetworkStopped)?;
        rx.await.map_err(|_| Error::NetworkStopped)
    }
}

/// A started network: its handle, the queues of gossip messages to validate and of requests to
/// answer, and the task.
#[derive(Debug)]
pub struct Network {
    /// Handle for publishing, subscribing, reporting verdicts, sending requests.
    pub handle: NetworkHandle,
    /// Gossip messages waiting for validation, in arrival order.
    pub messages: mpsc::Receiver<GossipMessage>,
    /// Sync requests from peers waiting for an answer, in arrival order (rate-limited and
    /// malformed ones are answered by the network and never appear here). If this receiver is
    /// dropped, or lets the queue fill up, requests are answered with a server error.
    pub requests: mpsc::Receiver<InboundRequest>,
    /// The network task; it ends on [`NetworkHandle::shutdown`] or when all handles are gone.
    pub task: JoinHandle<()>,
}

fn free_port(ip: IpAddr, udp: bool) -> Result<u16> {
    let addr = SocketAddr::new(ip, 0);
    let port = if udp {
        std::net::UdpSocket::bind(addr).and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind(addr).and_then(|s| s.local_addr())
    };
    port.map(|a| a.port())
        .map_err(|e| Error::P2p { action: "find a free port", reason: e.to_string() })
}

fn tcp_multiaddr(ip: IpAddr, port: u16) -> Multiaddr {
    let mut addr = Multiaddr::empty();
    addr.push(match ip {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    });
    addr.push(Protocol::Tcp(port));
    addr
}

fn enr_dial_target(enr: &discv5::Enr) -> Option<(PeerId, Multiaddr)> {
    let peer = enr_peer_id(enr)?;
    let socket: SocketAddr =
        enr.tcp4_socket().map(SocketAddr::V4).or_else(|| enr.tcp6_socket().map(SocketAddr::V6))?;
    Some((peer, tcp_multiaddr(socket.ip(), socket.port())))
}

/// The wire size (protobuf message: compressed data, topic, fields) of a message whose
/// decompressed payload is at most `max`.
fn max_wire_size(max: usize) -> usize {
    match snap::raw::max_compress_len(max) {
        0 => usize::MAX,
        n => n.saturating_add(1024),
    }
}

/// Starts the network task on the current tokio runtime.
///
/// # Errors
/// [`Error::P2p`] or [`Error::Discovery`] if the swarm or discv5 cannot start (for example the
/// ports are taken, or gossipsub refuses the mesh sizes); [`Error::PeerScoring`] if the scoring
/// parameters are refused or a topic in `topics` has no expected rate.
pub async fn start_network(config: NetworkConfig, metrics: Option<Metrics>) -> Result<Network> {
    let p2p_err = |action: &'static str| move |e: String| Error::P2p { action, reason: e };
    let ip = config.listen_address;
    let tcp_port = if config.tcp_port == 0 {
        free_port(ip, false)?
    } else {
        // libp2p listens with SO_REUSEPORT, so a second node on the same port would silently
        // share it; a plain bind first turns a taken port into an error.
        std::net::TcpListener::bind(SocketAddr::new(ip, config.tcp_port)).map_err(|e| {
            Error::P2p { action: "listen", reason: format!("{ip}:{}: {e}", config.tcp_port) }
        })?;
        config.tcp_port
    };

    // The message cache keeps `history_length` heartbeats: enough to cover the validation window.
    let heartbeat_ms = config.heartbeat_interval.as_millis().max(1);
    let history_length =
        usize::try_from(config.validation_window.as_millis().div_ceil(heartbeat_ms))
            .unwrap_or(usize::MAX)
            .max(6);
    // Every topic subscribed at start is scored: one without a rate would take invalid messages
    // without penalty.
    if let Some(name) =
        config.topics.iter().find(|name| !config.scoring.topics.iter().any(|t| &t.name == *name))
    {
        return Err(Error::PeerScoring {
            reason: format!("topic `{name}` has no expected rate (`NetworkConfig::scoring`)"),
        });
    }
    let scoring = &config.scoring;
    let mut transform = SnappyTransform::new(config.max_message_size);
    let mut builder = gossipsub::ConfigBuilder::default();
    for (name, max) in &config.max_topic_sizes {
        let topic = GossipTopic::new(&config.topic_prefix, name)?.hash();
        transform = transform.with_topic_limit(topic.clone(), *max);
        // The same cap on the wire, where gossipsub checks it before the transform: the
        // longest compression of the cap and room for the protobuf fields around it.
        let wire = max_wire_size(transform.limit(&topic)).min(config.max_message_size);
        builder.max_transmit_size_for_topic(wire, topic);
    }
    let gossip_config = builder
        .heartbeat_interval(config.heartbeat_interval)
        .mesh_n(scoring.mesh_n)
        .mesh_n_low(scoring.mesh_n_low)
        .mesh_n_high(scoring.mesh_n_high)
        .gossip_lazy(6)
        .history_length(history_length)
        .history_gossip(3)
        .max_transmit_size(config.max_message_size)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(gossip_message_id)
        .duplicate_cache_time(Duration::from_secs(385))
        .build()
        .map_err(|e| p2p_err("configure gossipsub")(e.to_string()))?;
    let mut gossipsub =
        Gossipsub::new_with_transform(MessageAuthenticity::Anonymous, gossip_config, transform)
            .map_err(|e| p2p_err("create gossipsub")(e.to_owned()))?;
    enable_peer_scoring(&mut gossipsub, scoring, &config.topic_prefix)?;
    let behaviour = Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        gossipsub,
        records_by_range: reqresp::behaviour(
            SyncProtocol::RecordsByRange,
            &config.topic_prefix,
            &config.reqresp,
        )?,
        messages_by_id: reqresp::behaviour(
            SyncProtocol::MessagesById,
            &config.topic_prefix,
            &config.reqresp,
        )?,
    };

    let keypair = config.node_key.libp2p_keypair();
    let peer_id = keypair.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| p2p_err("build transport")(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| p2p_err("build behaviour")(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let listen = tcp_multiaddr(ip, tcp_port);
    swarm.listen_on(listen.clone()).map_err(|e| p2p_err("listen")(e.to_string()))?;
    // The TCP listener binds asynchronously: wait for it, so that a taken port is an error here.
    let listening = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    tracing::info!(%address, "listening");
                    return Ok(());
                }
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(match reason {
                        Err(e) => e.to_string(),
                        Ok(()) => "listener closed".to_owned(),
                    });
                }
                _ => {}
            }
        }
    })
    .await;
    match listening {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => {
            return Err(Error::P2p { action: "listen", reason: format!("{listen}: {reason}") });
        }
        Err(_) => {
            return Err(Error::P2p { action: "listen", reason: format!("{listen}: timed out") });
        }
    }
    for name in &config.topics {
        let topic = GossipTopic::new(&config.topic_prefix, name)?;
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&gossipsub::IdentTopic::new(topic.to_string()))
            .map_err(|e| p2p_err("subscribe")(e.to_string()))?;
    }

    let mut discovery = None;
    let mut enr = None;
    if config.enable_discovery {
        let disc_err =
            |action: &'static str| move |reason: String| Error::Discovery { action, reason };
        let udp_port =
            if config.discovery_port == 0 { free_port(ip, true)? } else { config.discovery_port };
        let enr_key = config.node_key.enr_key();
        let mut builder = discv5::Enr::builder();
        match ip {
            IpAddr::V4(v4) if !v4.is_unspecified() => {
                builder.ip4(v4).udp4(udp_port).tcp4(tcp_port);
            }
            IpAddr::V6(v6) if !v6.is_unspecified() => {
                builder.ip6(v6).udp6(udp_port).tcp6(tcp_port);
            }
            // Unspecified listen address: the IP is learnt from peers (PONG votes).
            IpAddr::V4(_) => {
                builder.udp4(udp_port).tcp4(tcp_port);
            }
            IpAddr::V6(_) => {
                builder.udp6(udp_port).tcp6(tcp_port);
            }
        }
        let local_enr =
            builder.build(&enr_key).map_err(|e| disc_err("build ENR")(e.to_string()))?;
        let disc_config =
            discv5::ConfigBuilder::new(discv5::ListenConfig::from_ip(ip, udp_port)).build();
        let mut disc = discv5::Discv5::new(local_enr.clone(), enr_key, disc_config)
            .map_err(|e| disc_err("create")(e.to_owned()))?;
        disc.start().await.map_err(|e| disc_err("start")(e.to_string()))?;
        for boot in &config.bootnodes {
            if let Err(e) = disc.add_enr(boot.clone()) {
                tracing::warn!(bootnode = %boot, error = e, "cannot add bootnode");
            }
        }
        let events = disc.event_stream().await.map_err(|e| disc_err("events")(e.to_string()))?;
        tracing::info!(enr = %local_enr.to_base64(), "discv5 started");
        enr = Some(local_enr);
        discovery = Some((disc, events));
    }

    let (commands_tx, commands_rx) = mpsc::channel(256);
    let (messages_tx, messages_rx) = mpsc::channel(config.validation_queue.max(1));
    let (requests_tx, requests_rx) = mpsc::channel(config.reqresp.inbound_queue.max(1));
    let peers = Arc::new(AtomicUsize::new(0));
    let banned = Arc::new(Mutex::new(HashSet::new()));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut listen_address = listen;
    listen_address.push(Protocol::P2p(peer_id));
    let handle = NetworkHandle {
        commands: commands_tx,
        peers: Arc::clone(&peers),
        banned: Arc::clone(&banned),
        dropped: Arc::clone(&dropped),
        peer_id,
        enr,
        listen_address,
        topic_prefix: config.topic_prefix.clone(),
    };
    let driver = Driver {
        swarm,
        discovery,
        queries: FuturesUnordered::new(),
        commands: commands_rx,
        messages: messages_tx,
        requests: requests_tx,
        outbound: HashMap::new(),
        replies: FuturesUnordered::new(),
        rate_limiter: RateLimiter::new(config.reqresp.rate_limit, Instant::now()),
        scores: PeerScores::default(),
        pending: HashMap::new(),
        banned,
        dropped,
        peers,
        metrics,
        config,
        local_peer_id: peer_id,
    };
    let task = tokio::spawn(driver.run());
    Ok(Network { handle, messages: messages_rx, requests: requests_rx, task })
}

struct Driver {
    swarm: Swarm<Behaviour>,
    discovery: Option<(discv5::Discv5, mpsc::Receiver<discv5::Event>)>,
    queries: FuturesUnordered<QueryFuture>,
    commands: mpsc::Receiver<Command>,
    messages: mpsc::Sender<GossipMessage>,
    requests: mpsc::Sender<InboundRequest>,
    /// Our requests in flight, by protocol (request ids are per behaviour) and id.
    outbound: HashMap<(SyncProtocol, OutboundRequestId), ChunksReply>,
    /// Inbound requests waiting for the application's answer.
    replies: FuturesUnordered<ReplyFuture>,
    rate_limiter: RateLimiter,
    scores: PeerScores,
    /// Per peer, the messages it sent that wait for their verdict, with their arrival.
    pending: HashMap<PeerId, HashMap<MessageId, Instant>>,
    /// The banned peers, shared with the handles.
    banned: Arc<Mutex<HashSet<PeerId>>>,
    /// Gossip messages ignored because a queue was full.
    dropped: Arc<AtomicU64>,
    peers: Arc<AtomicUsize>,
    metrics: Option<Metrics>,
    config: NetworkConfig,
    local_peer_id: PeerId,
}

impl Driver {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.config.discovery_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut score_tick = tokio::time::interval(self.config.heartbeat_interval);
        score_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let discovery_on = self.discovery.is_some();
            let next_unban = self.scores.next_unban();
            tokio::select! {
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.on_command(command),
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(event) = async {
                    match self.discovery.as_mut() {
                        Some((_, events)) => events.recv().await,
                        None => None,
                    }
                }, if discovery_on => self.on_discovery_event(event),
                _ = tick.tick(), if discovery_on => self.start_query(),
                _ = score_tick.tick() => self.check_scores(),
                Some(result) = self.queries.next(), if !self.queries.is_empty() => match result {
                    Ok(enrs) => enrs.iter().for_each(|enr| self.dial_enr(enr)),
                    Err(e) => tracing::debug!(error = %e, "discovery query failed"),
                },
                Some((protocol, channel, answer)) = self.replies.next(),
                    if !self.replies.is_empty() => self.on_answer(protocol, channel, answer),
                () = tokio::time::sleep_until(next_unban.unwrap_or_else(Instant::now)),
                    if next_unban.is_some() => self.lift_bans(),
            }
        }
        if let Some((mut disc, _)) = self.discovery.take() {
            disc.shutdown();
        }
        tracing::debug!("network task stopped");
    }

    fn start_query(&mut self) {
        let Some((disc, _)) = &self.discovery else { return };
        // With an empty routing table (no bootnodes, and nobody has contacted this node yet)
        // there is nobody to ask: discv5 would only warn, every interval. The first incoming
        // session fills the table and the queries start.
        if disc.table_entries_id().is_empty() {
            return;
        }
        if self.queries.is_empty()
            && self.swarm.connected_peers().count() < self.config.target_peers
        {
            self.queries.push(Box::pin(disc.find_node(enr::NodeId::random())));
        }
    }

    fn dial_enr(&mut self, enr: &discv5::Enr) {
        let Some((peer, address)) = enr_dial_target(enr) else { return };
        if peer == self.local_peer_id
            || self.scores.is_banned(&peer)
            || self.swarm.is_connected(&peer)
            || self.swarm.connected_peers().count() >= self.config.target_peers
        {
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![address])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "dial failed");
        }
    }

    fn on_discovery_event(&mut self, event: discv5::Event) {
        match event {
            discv5::Event::Discovered(enr) | discv5::Event::SessionEstablished(enr, _) => {
                self.dial_enr(&enr);
            }
            _ => {}
        }
    }

    fn on_command(&mut self, command: Command) {
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        match command {
            Command::Publish { topic, data, reply } => {
                let result = gossip
                    .publish(topic.hash(), data)
                    .map_err(|e| Error::P2p { action: "publish", reason: e.to_string() });
                let _ = reply.send(result);
            }
            Command::Subscribe { topic, reply } => {
                let result = gossip
                    .subscribe(&gossipsub::IdentTopic::new(topic.to_string()))
                    .map(drop)
                    .map_err(|e| Error::P2p { action: "subscribe", reason: e.to_string() });
                let _ = reply.send(result);
            }
            Command::Report { id, source, verdict } => {
                // A rejection counts against `source` (and any peer that sent the same message
                // meanwhile): P4 of its gossipsub score.
                gossip.report_message_validation_result(&id, &source, verdict.into());
                if let Some(waiting) = self.pending.get_mut(&source) {
                    waiting.remove(&id);
                    if waiting.is_empty() {
                        self.pending.remove(&source);
                    }
                }
            }
            Command::Dial { address, reply } => {
                let result = self
                    .swarm
                    .dial(address)
                    .map_err(|e| Error::P2p { action: "dial", reason: e.to_string() });
                let _ = reply.send(result);
            }
            Command::MeshPeers { topic, reply } => {
                let _ = reply.send(gossip.mesh_peers(&topic.hash()).count());
            }
            Command::SendRequest { peer, protocol, payload, reply } => {
                self.send_request(peer, protocol, payload, reply);
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::GossipScore { peer, reply } => {
                let _ = reply.send(gossip.peer_score(&peer));
            }
            Command::Penalise { peer, reason } => self.penalise(peer, reason),
            Command::Shutdown => {}
        }
    }

    fn send_request(
        &mut self,
        peer: PeerId,
        protocol: SyncProtocol,
        payload: Vec<u8>,
        reply: ChunksReply,
    ) {
        let max = self.config.reqresp.limits(protocol).max_request_bytes;
        if payload.len() > max {
            let _ = reply.send(Err(Error::RequestTooLarge { protocol, len: payload.len(), max }));
            return;
        }
        if self.scores.is_banned(&peer) {
            let _ = reply.send(Err(Error::PeerBanned { peer }));
            return;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .sync(protocol)
            .send_request(&peer, RequestPayload::Payload(payload));
        self.outbound.insert((protocol, id), reply);
    }

    fn penalise(&mut self, peer: PeerId, reason: &'static str) {
        if let Some(m) = &self.metrics {
            m.peer_penalised(reason);
        }
        let penalty = self.scores.penalise(peer, Instant::now());
        if let Penalty::Scored(score) | Penalty::Banned(score) = penalty {
            // P5 of the gossipsub score.
            self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, f64::from(score));
        }
        match penalty {
            Penalty::Scored(score) => tracing::debug!(%peer, reason, score, "peer penalised"),
            Penalty::Banned(score) => {
                tracing::warn!(
                    %peer,
                    reason,
                    score,
                    ban_secs = PEER_BAN_DURATION.as_secs(),
                    "peer penalised to the ban threshold; disconnecting and banning it",
                );
                self.block(peer);
            }
            Penalty::AlreadyBanned => tracing::trace!(%peer, reason, "banned peer penalised"),
        }
    }

    /// Closes the connections of a banned peer and refuses new ones, both ways.
    fn block(&mut self, peer: PeerId) {
        self.banned.lock().unwrap_or_else(PoisonError::into_inner).insert(peer);
        self.swarm.behaviour_mut().blocked.block_peer(peer);
    }

    fn lift_bans(&mut self) {
        for peer in self.scores.lift_bans(Instant::now()) {
            tracing::info!(%peer, "peer ban lifted");
            self.banned.lock().unwrap_or_else(PoisonError::into_inner).remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            // The application score starts again from 0 (the gossipsub counters, kept for
            // `retain_score`, still count).
            self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, 0.0);
        }
    }

    /// Every heartbeat: forgets verdicts that will not come (gossipsub dropped their messages
    /// after the validation window), gives gossipsub the healed application scores, and bans
    /// the connected peers whose gossipsub score is below the graylist threshold.
    fn check_scores(&mut self) {
        let now = Instant::now();
        let window = self.config.validation_window;
        self.pending.retain(|_, waiting| {
            waiting.retain(|_, at| now.saturating_duration_since(*at) < window);
            !waiting.is_empty()
        });
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        for (peer, score) in self.scores.current(now) {
            gossip.set_application_score(&peer, f64::from(score));
        }
        let scores: Vec<(PeerId, f64)> = self
            .swarm
            .connected_peers()
            .filter_map(|peer| Some((*peer, self.swarm.behaviour().gossipsub.peer_score(peer)?)))
            .collect();
        if let Some(m) = &self.metrics {
            m.set_peer_scores(scores.iter().map(|(_, s)| *s));
        }
        let graylisted: Vec<(PeerId, f64)> =
            scores.into_iter().filter(|(_, score)| *score < GRAYLIST_THRESHOLD).collect();
        for (peer, score) in graylisted {
            if !self.scores.ban(peer, now) {
                continue;
            }
            tracing::warn!(
                %peer,
                score,
                ban_secs = PEER_BAN_DURATION.as_secs(),
                "gossipsub score below the graylist threshold; disconnecting and banning the peer",
            );
            if let Some(m) = &self.metrics {
                m.peer_penalised("gossipsub_graylisted");
            }
            self.block(peer);
        }
    }

    fn on_sync_event(&mut self, protocol: SyncProtocol, event: SyncEvent) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => self.on_request(protocol, peer, request, channel),
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, response },
                ..
            } => {
                let result = match response.error {
                    None => Ok(response.chunks),
                    Some(e) => {
                        Err(Error::PeerError { peer, protocol, code: e.code, message: e.message })
                    }
                };
                self.complete(protocol, request_id, result);
            }
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, %protocol, %error, "request failed");
                let error = outbound_error(peer, protocol, error);
                self.complete(protocol, request_id, Err(error));
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %protocol, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { peer, .. } => {
                tracing::trace!(%peer, %protocol, "response sent");
            }
        }
    }

    fn complete(
        &mut self,
        protocol: SyncProtocol,
        id: OutboundRequestId,
        result: Result<Vec<Vec<u8>>>,
    ) {
        if let Some(reply) = self.outbound.remove(&(protocol, id)) {
            // The caller may have given up waiting; nothing to do then.
            let _ = reply.send(result);
        }
    }

    fn on_request(
        &mut self,
        protocol: SyncProtocol,
        peer: PeerId,
        request: RequestPayload,
        channel: ResponseChannel<SyncResponse>,
    ) {
        if !self.rate_limiter.allow(peer, protocol, Instant::now()) {
            tracing::debug!(%peer, %protocol, "inbound request rate-limited");
            let response = SyncResponse::error(ErrorCode::RateLimited, "rate limited");
            self.respond(protocol, channel, response);
            return;
        }
        let payload = match request {
            RequestPayload::Payload(payload) => payload,
            RequestPayload::Malformed(error) => {
                tracing::debug!(%peer, %protocol, %error, "malformed inbound request");
                let response = SyncResponse::error(ErrorCode::InvalidRequest, error.to_string());
                self.respond(protocol, channel, response);
                return;
            }
        };
        let (reply, answer) = ResponseSender::new();
        let request = InboundRequest { peer, protocol, payload, reply };
        if let Err(e) = self.requests.try_send(request) {
            tracing::debug!(%peer, %protocol, error = %e, "request queue full or closed");
            let response = SyncResponse::error(ErrorCode::ServerError, "not serving");
            self.respond(protocol, channel, response);
            return;
        }
        let timeout = self.config.reqresp.request_timeout;
        self.replies.push(Box::pin(async move {
            let answer = match tokio::time::timeout(timeout, answer).await {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(_)) => Err(Unanswered::Dropped),
                Err(_) => Err(Unanswered::TimedOut),
            };
            (protocol, channel, answer)
        }));
    }

    fn on_answer(
        &mut self,
        protocol: SyncProtocol,
        channel: ResponseChannel<SyncResponse>,
        answer: Answer,
    ) {
        let limits = self.config.reqresp.limits(protocol);
        let response = reqresp::bounded_response(protocol, &limits, answer);
        self.respond(protocol, channel, response);
    }

    fn respond(
        &mut self,
        protocol: SyncProtocol,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) {
        if self.swarm.behaviour_mut().sync(protocol).send_response(channel, response).is_err() {
            tracing::debug!(%protocol, "requester gone before the response");
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::RecordsByRange(event)) => {
                self.on_sync_event(SyncProtocol::RecordsByRange, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::MessagesById(event)) => {
                self.on_sync_event(SyncProtocol::MessagesById, event);
            }
            SwarmEvent::ConnectionEstablished { .. } | SwarmEvent::ConnectionClosed { .. } => {
                let peers: BTreeSet<_> = self.swarm.connected_peers().collect();
                self.peers.store(peers.len(), Ordering::Relaxed);
                if let Some(m) = &self.metrics {
                    m.set_peers(peers.len());
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            other => tracing::trace!(event = ?other, "swarm event"),
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        let topic = match GossipTopic::from_str(message.topic.as_str()) {
            Ok(t) if t.prefix() == self.config.topic_prefix => t,
            _ => {
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &id,
                    &source,
                    MessageAcceptance::Reject,
                );
                return;
            }
        };
        if self.scores.is_banned(&source) {
            // Sent before its connection closed.
            self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &id,
                &source,
                MessageAcceptance::Ignore,
            );
            return;
        }
        let waiting = self.pending.get(&source).map_or(0, HashMap::len);
        if waiting >= self.config.max_pending_per_peer {
            // Drop the newest: the older ones are already on their way to the validator.
            tracing::debug!(%source, waiting, "the peer's share of the queue is full; ignoring");
            self.ignore_dropped(&id, &source);
            return;
        }
        let pending = GossipMessage { id: id.clone(), source, topic, data: message.data };
        match self.messages.try_send(pending) {
            Ok(()) => {
                self.pending.entry(source).or_default().insert(id, Instant::now());
            }
            Err(e) => {
                // Once per 1,024 drops: a flood must not flood the log too.
                if self.dropped.load(Ordering::Relaxed).is_multiple_of(1024) {
                    tracing::warn!(error = %e, dropped = self.dropped.load(Ordering::Relaxed), "validation queue full or closed; ignoring messages");
                }
                self.ignore_dropped(&id, &source);
            }
        }
    }

    /// Ignores (no penalty) a message that found no room, and counts it.
    fn ignore_dropped(&mut self, id: &MessageId, source: &PeerId) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.metrics {
            m.gossip_dropped();
        }
        self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
            id,
            source,
            MessageAcceptance::Ignore,
        );
    }
}

/// The typed error of a failed outbound request.
fn outbound_error(peer: PeerId, protocol: SyncProtocol, failure: OutboundFailure) -> Error {
    match failure {
        OutboundFailure::DialFailure => Error::DialFailure { peer, protocol },
        OutboundFailure::Timeout => Error::RequestTimeout { peer, protocol },
        OutboundFailure::Io(e) => match CodecError::from_io(&e) {
            Some(reason) if reason.is_over_cap() => {
                Error::ResponseOverCap { peer, protocol, reason: reason.clone() }
            }
            Some(reason) => Error::InvalidResponse { peer, protocol, reason: reason.clone() },
            None => Error::RequestFailed { peer, protocol, reason: e.to_string() },
        },
        other => Error::RequestFailed { peer, protocol, reason: other.to_string() },
    }
}
