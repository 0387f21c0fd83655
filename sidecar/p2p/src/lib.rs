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
//! A crate of its own so that only the programs that talk to peers (the validator node, the
//! devnet) build libp2p; the request/response protocols of sync will live here too.

mod codec;
mod config;
mod error;
mod identity;
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
pub use service::{
    GossipMessage, MessageVerdict, Network, NetworkConfig, NetworkHandle, start_network,
};
pub use topic::{GossipTopic, SSZ_SNAPPY, validate_topic_prefix};
pub use validation::{GossipValidator, spawn_validation};

/// An Ethereum Node Record (discv5).
pub type Enr = discv5::Enr;
