//! Integration tests of the `sidecar` binary and of the whole system: the command line run as a
//! user would, validator nodes with real prover workers over loopback (`node`), three gossiping
//! sidecars end to end (`e2e`), and fault cases including `kill -9` of `sidecar run` (`faults`).

mod cli;
mod e2e;
mod faults;
mod node;
mod support;
