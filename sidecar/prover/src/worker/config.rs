//! The worker's settings ([`WorkerConfig`]) and behaviours ([`Behaviour`]).

use std::time::Duration;

use phase_engine::Capabilities;
use plonky3_prover::{ProofParams, SegmentParams};

/// Size of the reuse Bloom filter the worker sends (the protocol's maximum, 256 bytes).
pub const REUSE_BLOOM_BYTES: usize = 256;

/// How a worker behaves. Anything but [`Behaviour::Honest`] exists to exercise the protocol's
/// fault handling on devnets and in tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Follows the protocol.
    #[default]
    Honest,
    /// Registers, then never submits anything (the fallback phases must cover for it).
    Silent,
    /// Commits honestly, then in T2 submits other provers' partial proofs of its AIRs as its own
    /// (re-signed); they must be rejected and earn nothing.
    CopyPartials,
    /// Commits honestly and proves nothing; once another prover's full proof of its round is
    /// finalised, resubmits it under its own index (same parts and bundle, re-signed, with the
    /// reuse Bloom filter claiming every part as reused); it must be rejected and earn nothing.
    CopyFullProof,
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Stake declared at registration (Gwei).
    pub stake: u64,
    /// Hardware declared at registration.
    pub capabilities: Capabilities,
    /// How often duties are polled.
    pub poll_interval: Duration,
    /// Proving threads; 0 for all cores.
    pub threads: usize,
    /// STARK parameters (must match the sidecars').
    pub proof_params: ProofParams,
    /// Workload parameters (must match the sidecars').
    pub segment_params: SegmentParams,
    /// Behaviour (honest unless testing faults).
    pub behaviour: Behaviour,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            stake: 32_000_000_000,
            capabilities: Capabilities { gpu_count: 0, gpu_memory_mib: 0, max_trace_log_rows: 20 },
            poll_interval: Duration::from_millis(200),
            threads: 0,
            proof_params: ProofParams::default(),
            segment_params: SegmentParams::default(),
            behaviour: Behaviour::Honest,
        }
    }
}
