//! Integration tests of `beacon-api`: golden vectors from the Beacon API spec, and the client,
//! devnet node and proving extension tested against each other over real loopback HTTP.

mod devnet;
mod golden;
mod keymanager;
mod proving;
mod sse;
