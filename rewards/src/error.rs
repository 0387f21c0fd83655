//! The crate's error type.

use phase_engine::{Attempt, Phase, ProverIndex, Root, SubBlockIndex};

use crate::ledger::Account;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a reward configuration, settling an outcome or
/// folding ledgers into balances. Settlement never panics: inconsistent outcomes and arithmetic
/// overflow are reported here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TOML text does not parse into the file schema (syntax, a missing key, a wrong type or
    /// an unknown key; the message names it).
    #[error("invalid rewards config: {source}")]
    Toml {
        /// The parser's error.
        #[from]
        source: toml::de::Error,
    },
    /// A key has a value outside its allowed range.
    #[error("{key} must be {requirement}")]
    InvalidValue {
        /// The key as written in the file (dotted for keys inside a table).
        key: &'static str,
        /// The requirement it violates, e.g. `> 0`.
        requirement: &'static str,
    },
    /// An override names a key the file schema does not have.
    #[error("unknown rewards config key `{key}` (known keys: {known})")]
    UnknownKey {
        /// The key as given.
        key: String,
        /// Every known key, comma-separated.
        known: String,
    },
    /// An override's value does not fit the key's type.
    #[error("value {value} does not fit rewards config key `{key}`: {reason}")]
    ValueOutOfRange {
        /// The key.
        key: String,
        /// The value given.
        value: i64,
        /// Why it does not fit.
        reason: String,
    },
    /// An override's value is not an integer.
    #[error("value `{value}` for rewards config key `{key}` is not an integer")]
    NotAnInteger {
        /// The key.
        key: String,
        /// The text given.
        value: String,
    },
    /// A checked arithmetic operation overflowed.
    #[error("arithmetic overflow while computing {context}")]
    Overflow {
        /// What was being computed.
        context: &'static str,
    },
    /// A round of the outcome belongs to another block.
    #[error("round {sub_block}/{attempt} is of block {got}, expected {expected}")]
    ForeignRound {
        /// Sub-block of the round.
        sub_block: SubBlockIndex,
        /// Attempt of the round.
        attempt: Attempt,
        /// The round's block root.
        got: Root,
        /// The outcome's block root.
        expected: Root,
    },
    /// Two rounds of the outcome have the same sub-block and attempt.
    #[error("round {sub_block}/{attempt} appears twice")]
    DuplicateRound {
        /// Sub-block of the round.
        sub_block: SubBlockIndex,
        /// Attempt of the round.
        attempt: Attempt,
    },
    /// An assignment names a prover that is not selected, or a selected prover appears twice.
    #[error("round {sub_block}/{attempt}: assignment of prover {prover} does not match selection")]
    AssignmentMismatch {
        /// Sub-block of the round.
        sub_block: SubBlockIndex,
        /// Attempt of the round.
        attempt: Attempt,
        /// The prover.
        prover: ProverIndex,
    },
    /// The round says it finalised in a phase without a valid full proof in that phase.
    #[error("round {sub_block}/{attempt} finalised in {phase:?} without a full proof in it")]
    FinalizedWithoutFullProof {
        /// Sub-block of the round.
        sub_block: SubBlockIndex,
        /// Attempt of the round.
        attempt: Attempt,
        /// The claimed finalising phase.
        phase: Phase,
    },
    /// A full proof is listed in a phase other than the finalising one.
    #[error(
        "round {sub_block}/{attempt}: full proof of prover {submitter} in {phase:?}, \
         but the round finalised in {finalized_in:?}"
    )]
    FullProofOutsideFinalizingPhase {
        /// Sub-block of the round.
        sub_block: SubBlockIndex,
        /// Attempt of the round.
        attempt: Attempt,
        /// Its submitter.
        submitter: ProverIndex,
        /// Its phase.
        phase: Phase,
        /// The round's finalising phase.
        finalized_in: Option<Phase>,
    },
    /// An AggProof is recorded for a block without an aggregator group (a block of one
    /// sub-block has no AggProof).
    #[error("AggProof recorded for a block without an aggregator group")]
    AggProofWithoutAggregators,
    /// The ledger has more entries than its SSZ list type allows.
    #[error("ledger has {len} entries, more than the maximum {max}")]
    LedgerTooLong {
        /// Number of entries.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Ledger entries (decoded from SSZ or JSON) are not in canonical form: not strictly
    /// ascending by key, or with a zero amount.
    #[error("ledger entries are not in canonical form (strictly ascending keys, no zero amount)")]
    NonCanonicalLedger,
    /// SSZ bytes of a ledger do not decode.
    #[error("invalid SSZ ledger: {reason}")]
    Ssz {
        /// What is wrong.
        reason: String,
    },
    /// A balance would overflow.
    #[error("balance of {account} overflows")]
    BalanceOverflow {
        /// The account.
        account: Account,
    },
}
