//! Partial proofs: one STARK per AIR instance, their T1 commitments, encoding and verification.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use p3_commit::Pcs as PcsTrait;
use p3_matrix::Matrix;
use p3_uni_stark::{Proof, StarkGenericConfig};
use serde::{Deserialize, Serialize};

use crate::config::{Challenge, Challenger, Pcs, ProofParams, StarkCfg};
use crate::cpu::check_cpu;
use crate::error::{Error, Result};
use crate::generation::segment_public_values as public_values;
use crate::types::{AuthorKey, SegmentSpec, TraceRoot};
use crate::workload::{SegmentWorkload, Workload};

/// Version byte at the start of every encoding this crate writes.
pub const FORMAT_VERSION: u8 = 1;
/// Maximum size of an encoded partial proof (300 KiB, as in EIP-8025).
pub const MAX_PROOF_SIZE: usize = 300 * 1024;

/// Second byte of an encoding: what follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Partial = 1,
    Full = 2,
    Agg = 3,
    Batch = 4,
}

/// Checks size, version byte and kind byte, returning the body.
pub(crate) fn open_envelope<'a>(
    bytes: &'a [u8],
    kind: Kind,
    name: &'static str,
    max: usize,
) -> Result<&'a [u8]> {
    if bytes.len() > max {
        return Err(Error::Oversize { kind: name, size: bytes.len(), max });
    }
    let [version, k, body @ ..] = bytes else {
        return Err(Error::Malformed { kind: name, reason: "shorter than its 2-byte header" });
    };
    if *version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion { got: *version, expected: FORMAT_VERSION });
    }
    if *k != kind as u8 {
        return Err(Error::Malformed { kind: name, reason: "wrong kind byte" });
    }
    Ok(body)
}

/// Encodes `value` after the version and kind bytes, refusing more than `max` bytes.
pub(crate) fn seal<T: Serialize>(
    value: &T,
    kind: Kind,
    name: &'static str,
    max: usize,
) -> Result<Vec<u8>> {
    let out = postcard::to_extend(value, vec![FORMAT_VERSION, kind as u8])
        .map_err(|_| Error::Malformed { kind: name, reason: "cannot encode" })?;
    if out.len() > max {
        return Err(Error::Oversize { kind: name, size: out.len(), max });
    }
    Ok(out)
}

/// Decodes a body completely (no trailing bytes) and checks that it re-encodes to the same bytes,
/// so every accepted encoding is canonical.
pub(crate) fn decode_canonical<T: Serialize + for<'de> Deserialize<'de>>(
    body: &[u8],
    name: &'static str,
) -> Result<T> {
    let (value, rest) = postcard::take_from_bytes::<T>(body)
        .map_err(|_| Error::Malformed { kind: name, reason: "does not decode" })?;
    if !rest.is_empty() {
        return Err(Error::Malformed { kind: name, reason: "trailing bytes" });
    }
    let again = postcard::to_allocvec(&value)
        .map_err(|_| Error::Malformed { kind: name, reason: "cannot re-encode" })?;
    if again != body {
        return Err(Error::Malformed { kind: name, reason: "non-canonical encoding" });
    }
    Ok(value)
}

/// Who proved which statement: the deterministic head of a partial proof's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartialHeader {
    /// The segment proven.
    pub statement: SegmentSpec,
    /// The author, whose key digest is among the public values.
    pub author: AuthorKey,
}

#[derive(Serialize)]
struct PartialWireRef<'a> {
    header: &'a PartialHeader,
    stark: &'a Proof<StarkCfg>,
}

#[derive(Deserialize)]
struct PartialWire {
    header: PartialHeader,
    stark: Proof<StarkCfg>,
}

impl Serialize for PartialWire {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        PartialWireRef { header: &self.header, stark: &self.stark }.serialize(s)
    }
}

/// A partial proof: the STARK of one segment by one author.
///
/// Encoding (version 1): `0x01` (version), `0x01` (kind: partial), then postcard of
/// `(PartialHeader, p3_uni_stark::Proof)`. At most [`MAX_PROOF_SIZE`] bytes; decoding rejects any
/// other input with an error, never a panic, and accepts only canonical encodings.
#[derive(Clone)]
pub struct PartialProof {
    header: PartialHeader,
    trace_root: TraceRoot,
    stark: Arc<Proof<StarkCfg>>,
    bytes: Arc<[u8]>,
}

impl core::fmt::Debug for PartialProof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PartialProof")
            .field("header", &self.header)
            .field("trace_root", &self.trace_root)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl PartialEq for PartialProof {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for PartialProof {}

const PARTIAL: &str = "partial proof";

fn trace_root_of(stark: &Proof<StarkCfg>) -> Result<TraceRoot> {
    match stark.commitments.trace.roots() {
        [root] => Ok(TraceRoot::from_fields(root)),
        _ => {
            Err(Error::Malformed { kind: PARTIAL, reason: "trace commitment is not a single root" })
        }
    }
}

impl PartialProof {
    fn from_parts(header: PartialHeader, stark: Proof<StarkCfg>) -> Result<Self> {
        let trace_root = trace_root_of(&stark)?;
        let bytes = seal(
            &PartialWireRef { header: &header, stark: &stark },
            Kind::Partial,
            PARTIAL,
            MAX_PROOF_SIZE,
        )?;
        Ok(Self { header, trace_root, stark: Arc::new(stark), bytes: bytes.into() })
    }

    /// Decodes a partial proof. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let body = open_envelope(bytes, Kind::Partial, PARTIAL, MAX_PROOF_SIZE)?;
        let wire: PartialWire = decode_canonical(body, PARTIAL)?;
        let trace_root = trace_root_of(&wire.stark)?;
        Ok(Self {
            header: wire.header,
            trace_root,
            stark: Arc::new(wire.stark),
            bytes: bytes.into(),
        })
    }

    /// The encoding.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The header: statement and author.
    #[must_use]
    pub fn header(&self) -> &PartialHeader {
        &self.header
    }

    /// The segment proven.
    #[must_use]
    pub fn statement(&self) -> &SegmentSpec {
        &self.header.statement
    }

    /// The author.
    #[must_use]
    pub fn author(&self) -> &AuthorKey {
        &self.header.author
    }

    /// The trace commitment inside the proof (to compare with the T1 commitment).
    #[must_use]
    pub fn trace_root(&self) -> TraceRoot {
        self.trace_root
    }

    /// `log2` of the trace height claimed by the STARK.
    #[must_use]
    pub fn degree_bits(&self) -> usize {
        self.stark.degree_bits
    }
}

/// Names the first field in which `got` differs from `expected`.
pub(crate) fn compare_spec(got: &SegmentSpec, expected: &SegmentSpec) -> Result<()> {
    let field = if got.round_digest != expected.round_digest {
        "round_digest"
    } else if got.sub_block_index != expected.sub_block_index {
        "sub_block_index"
    } else if got.air_index != expected.air_index {
        "air_index"
    } else if got.log_rows != expected.log_rows {
        "log_rows"
    } else if got.start_state != expected.start_state {
        "start_state"
    } else if got.end_state != expected.end_state {
        "end_state"
    } else {
        return Ok(());
    };
    Err(Error::WrongPublicValues { field })
}

/// Proves and verifies segments of a [`Workload`] with fixed [`ProofParams`].
///
/// Cheap to share (`&Prover` is `Sync`); proving and verification use the rayon pool.
pub struct Prover<W: Workload = SegmentWorkload> {
    params: ProofParams,
    config: StarkCfg,
    workload: W,
    /// Conjectured security bits by `log_rows - min_log_rows`.
    security: Vec<usize>,
}

impl<W: Workload> core::fmt::Debug for Prover<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Prover").field("params", &self.params).finish_non_exhaustive()
    }
}

impl<W: Workload> Prover<W> {
    /// Checks the CPU and the parameters (conjectured security at every supported size must be
    /// at least `params.min_security_bits`) and builds the Plonky3 configuration.
    pub fn new(params: ProofParams, workload: W) -> Result<Self> {
        check_cpu()?;
        params.validate()?;
        let (min, max) = workload.log_rows_range();
        let security: Vec<usize> =
            (min..=max).map(|log| params.conjectured_security(workload.air(), log)).collect();
        for (log, bits) in (min..=max).zip(&security) {
            if *bits < params.min_security_bits {
                return Err(Error::InsecureParams {
                    bits: *bits,
                    min: params.min_security_bits,
                    log_rows: log,
                });
            }
        }
        let config = params.stark_config();
        Ok(Self { params, config, workload, security })
    }

    /// The proof parameters.
    #[must_use]
    pub fn params(&self) -> &ProofParams {
        &self.params
    }

    /// The workload.
    #[must_use]
    pub fn workload(&self) -> &W {
        &self.workload
    }

    /// The Plonky3 configuration (for benchmarks against raw Plonky3).
    #[must_use]
    pub fn stark_config(&self) -> &StarkCfg {
        &self.config
    }

    /// Conjectured security in bits (as computed by `p3-uni-stark`) of a segment of `2^log_rows`
    /// rows, or `None` outside the workload's size range.
    #[must_use]
    pub fn security_bits(&self, log_rows: u8) -> Option<usize> {
        let (min, _) = self.workload.log_rows_range();
        self.security.get(usize::from(log_rows.checked_sub(min)?)).copied()
    }

    fn check_size(&self, spec: &SegmentSpec) -> Result<()> {
        let (min, max) = self.workload.log_rows_range();
        if (min..=max).contains(&spec.log_rows) {
            Ok(())
        } else {
            Err(Error::UnsupportedSize { log_rows: spec.log_rows, min, max })
        }
    }

    /// The T1 commitment of `author`'s trace of `spec`, computed without proving: the same PCS
    /// commitment the prover makes first, so it equals [`PartialProof::trace_root`] of the later
    /// proof.
    pub fn commit(&self, spec: &SegmentSpec, author: &AuthorKey) -> Result<TraceRoot> {
        self.check_size(spec)?;
        let trace = self.workload.generate_trace(spec, &author.digest())?;
        let pcs = self.config.pcs();
        let domain = <Pcs as PcsTrait<Challenge, Challenger>>::natural_domain_for_degree(
            pcs,
            trace.height(),
        );
        let (com, _data) = <Pcs as PcsTrait<Challenge, Challenger>>::commit(pcs, [(domain, trace)])
            .map_err(|e| Error::Proving { detail: format!("{e:?}") })?;
        match com.roots() {
            [root] => Ok(TraceRoot::from_fields(root)),
            _ => Err(Error::Proving { detail: "trace commitment is not a single root".into() }),
        }
    }

    /// Proves `spec` as `author`.
    pub fn prove_partial(&self, spec: &SegmentSpec, author: &AuthorKey) -> Result<PartialProof> {
        self.check_size(spec)?;
        let key = author.digest();
        let trace = self.workload.generate_trace(spec, &key)?;
        let pv = public_values(spec, &key);
        let stark = p3_uni_stark::prove(&self.config, self.workload.air(), trace, &pv)
            .map_err(|e| Error::Proving { detail: format!("{e:?}") })?;
        PartialProof::from_parts(PartialHeader { statement: *spec, author: *author }, stark)
    }

    /// Verifies that `proof` proves `expected` and was made by `author`, and, when given, that
    /// its trace commitment is the committed T1 root.
    ///
    /// Errors: [`Error::WrongKey`], [`Error::WrongPublicValues`], [`Error::WrongCommitment`],
    /// [`Error::Malformed`] (wrong trace height), [`Error::InvalidProof`].
    pub fn verify_partial(
        &self,
        proof: &PartialProof,
        expected: &SegmentSpec,
        author: &AuthorKey,
        committed: Option<&TraceRoot>,
    ) -> Result<()> {
        if proof.author() != author {
            return Err(Error::WrongKey {
                expected: author.digest(),
                got: proof.author().digest(),
            });
        }
        compare_spec(proof.statement(), expected)?;
        if let Some(root) = committed
            && *root != proof.trace_root()
        {
            return Err(Error::WrongCommitment { expected: *root, got: proof.trace_root() });
        }
        self.check_size(expected)?;
        if proof.degree_bits() != usize::from(expected.log_rows) {
            return Err(Error::Malformed {
                kind: PARTIAL,
                reason: "trace height differs from the statement",
            });
        }
        let pv = public_values(expected, &author.digest());
        // The verifier is given untrusted data; a panic inside Plonky3 on a malformed shape it
        // does not check is turned into a rejection rather than taking the node down.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            p3_uni_stark::verify(&self.config, self.workload.air(), &proof.stark, &pv)
        }));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::InvalidProof { detail: format!("{e:?}") }),
            Err(_) => Err(Error::InvalidProof {
                detail: "verifier rejected a malformed proof shape".into(),
            }),
        }
    }
}
