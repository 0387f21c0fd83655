//! The `[p2p]` section of the sidecar's config file (`configs/sidecar.toml`), typed.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// `[p2p]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// IP address to listen on (TCP for libp2p, UDP for discv5).
    pub listen_address: IpAddr,
    /// libp2p TCP port (0: any free port).
    pub tcp_port: u16,
    /// discv5 UDP port (0: any free port).
    pub discovery_port: u16,
    /// Bootnode ENRs (`enr:-...`).
    pub bootnodes: Vec<String>,
    /// First element of every gossip topic: `/<topic_prefix>/<name>/ssz_snappy`.
    pub topic_prefix: String,
    /// Number of peers the node tries to keep.
    pub target_peers: usize,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            listen_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tcp_port: 9100,
            discovery_port: 9100,
            bootnodes: Vec::new(),
            topic_prefix: "proving-sidecar-0".to_owned(),
            target_peers: 50,
        }
    }
}
