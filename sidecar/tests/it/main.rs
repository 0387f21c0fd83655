//! Integration tests of the `sidecar` crate: the binary's command line, storage durability
//! under `kill -9`, the metrics endpoint and peer-to-peer gossip on loopback.

mod cli;
mod devnet;
mod e2e;
mod faults;
mod metrics;
mod node;
mod p2p;
mod prover;
mod simulate;
mod store;
mod support;
