//! Integration tests of the `sidecar` binary and of the whole system: the command line run as a
//! user would, validator nodes with real prover workers over loopback (`node`), three gossiping
//! sidecars end to end (`e2e`), `sidecar devnet` as the library call the subcommand makes
//! (`devnet`), and fault cases including `kill -9` of `sidecar run` (`faults`). The system tests
//! live here, above every crate they exercise, so that one test binary links the whole program.

mod bad_input;
mod cli;
mod devnet;
mod e2e;
mod faults;
mod node;
mod support;
