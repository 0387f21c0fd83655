//! Peer-to-peer networking: libp2p gossipsub (TCP, noise, yamux) with discv5 discovery.
//!
//! Topics follow the consensus specs: `/<prefix>/<name>/ssz_snappy`, payloads are
//! snappy-compressed (block format) on the wire, and message ids are
//! `sha256(MESSAGE_DOMAIN_VALID_SNAPPY || len(topic) || topic || decompressed data)[:20]`.
//! Gossipsub runs with `validate_messages()`: a received message is not forwarded until the
//! application reports a verdict ([`NetworkHandle::report_validation`], or
//! [`spawn_validation`] with a [`GossipValidator`]). Payloads are opaque bytes here; the
//! protocol's message types are decoded by the caller.
//!
//! One secp256k1 [`NodeKey`] gives both the libp2p peer id and the discv5 ENR (with its TCP
//! port), so discovered ENRs can be dialled directly.
//!
//! Sync runs on request/response protocols next to gossip ([`SyncProtocol`]), framed like the
//! consensus specs' `BlocksByRange`/`BlocksByRoot` (`ssz_snappy` chunks with a result byte),
//! also with opaque payloads: [`NetworkHandle::send_request`] returns a response's chunks, and
//! requests from peers arrive on [`Network::requests`] to be answered. The network bounds
//! sizes and chunk counts ([`ProtocolLimits`]), times requests out and rate-limits peers per
//! protocol ([`RateLimit`]). [`NetworkHandle::penalise`] scores peers for misbehaviour the
//! application detects, and bans those that reach [`PEER_BAN_THRESHOLD`].
//!
//! Gossipsub peer scoring is on, with parameters derived from each topic's expected message
//! rate ([`ScoringConfig`]): rejected messages count against their sender, the application
//! score counts too, and a peer below [`GRAYLIST_THRESHOLD`] is disconnected and banned.
//! Payload sizes are capped per topic before decompression, and each peer's share of the
//! validation queue is bounded ([`NetworkConfig::max_pending_per_peer`]).
//!
//! A crate of its own so that only the programs that talk to peers (the validator node, the
//! devnet) build libp2p.

mod codec;
mod config;
mod error;
mod identity;
mod peer_score;
mod reqresp;
mod scoring;
mod service;
mod topic;
mod validation;

pub use codec::{MAX_GOSSIP_SIZE, MESSAGE_DOMAIN_VALID_SNAPPY, SnappyTransform, message_id};
pub use config::P2pConfig;
pub use error::{Error, Result};
pub use identity::{NodeKey, enr_peer_id};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId};
pub use peer_score::{
    PEER_BAN_DURATION, PEER_BAN_THRESHOLD, PEER_PENALTY, PEER_SCORE_RECOVERY_INTERVAL,
};
pub use reqresp::{
    CodecError, ErrorCode, InboundRequest, MAX_RECORDS_CHUNK_BYTES, MAX_REQUEST_BYTES,
    ProtocolLimits, RateLimit, ReqRespConfig, ResponseError, ResponseResult, ResponseSender,
    SyncProtocol, decode_request_bytes, decode_response_bytes, encode_request_bytes,
    encode_response_bytes,
};
pub use scoring::{
    APP_SPECIFIC_WEIGHT, DECAY_TO_ZERO, GOSSIP_THRESHOLD, GRAYLIST_THRESHOLD, PUBLISH_THRESHOLD,
    ScoringConfig, TopicRate,
};
pub use service::{
    GossipMessage, MessageVerdict, Network, NetworkConfig, NetworkHandle, start_network,
};
pub use topic::{GossipTopic, SSZ_SNAPPY, validate_topic_prefix};
pub use validation::{GossipValidator, spawn_validation};

/// An Ethereum Node Record (discv5).
pub type Enr = discv5::Enr;
