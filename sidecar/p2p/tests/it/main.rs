//! Integration tests of the `sidecar-p2p` crate.

mod p2p;
mod reqresp;
mod scoring;
