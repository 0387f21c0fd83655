//! The trait the extension server's handlers call; the sidecar node implements it.

use std::future::Future;

use phase_engine::{ProtocolMessage, ProverIndex, SignedPartialProof, SignedProverRegistration};
use tokio::sync::broadcast;

use super::types::{
    AccountBalance, BlockRounds, FinalizedProof, ProverDuties, ProvingEvent, RegistryEntry,
    SubmissionReceipt, VerificationVerdict,
};
use crate::{error::Result, types::BlockId};

/// What the proving extension API needs from the node.
///
/// Errors map to HTTP statuses: [`crate::Error::NotFound`] → 404,
/// [`crate::Error::InvalidInput`] → 400, [`crate::Error::Conflict`] → 409,
/// [`crate::Error::Unavailable`] → 503, anything else → 500 (logged, with a generic message).
pub trait ProvingBackend: Send + Sync + 'static {
    /// Registers a prover (`POST /eth/v1/proving/provers`).
    fn register_prover(
        &self,
        registration: SignedProverRegistration,
    ) -> impl Future<Output = Result<SubmissionReceipt>> + Send;

    /// Submits a round message: commitment, decline, partial proof, full proof or AggProof.
    fn submit(
        &self,
        message: ProtocolMessage,
    ) -> impl Future<Output = Result<SubmissionReceipt>> + Send;

    /// The rounds of a block (`GET /eth/v1/proving/rounds/{block_id}`).
    fn rounds(&self, block: BlockId) -> impl Future<Output = Result<BlockRounds>> + Send;

    /// A prover's current duties (`GET /eth/v1/proving/provers/{prover_index}/duties`).
    fn prover_duties(
        &self,
        prover: ProverIndex,
    ) -> impl Future<Output = Result<ProverDuties>> + Send;

    /// The accepted partial proofs of a block's rounds, every sub-block and attempt, in
    /// (sub-block, attempt, author, AIR) order
    /// (`GET /eth/v1/proving/rounds/{block_id}/partial_proofs`): what a T3 aggregator needs to
    /// build a full proof from others' parts.
    fn partial_proofs(
        &self,
        block: BlockId,
    ) -> impl Future<Output = Result<Vec<SignedPartialProof>>> + Send;

    /// The finalised proof of a block (`GET /eth/v1/proving/proofs/{block_id}`).
    fn finalized_proof(
        &self,
        block: BlockId,
    ) -> impl Future<Output = Result<FinalizedProof>> + Send;

    /// The settlement ledger of a block (`GET /eth/v1/proving/ledgers/{block_id}`).
    fn ledger(&self, block: BlockId) -> impl Future<Output = Result<rewards::Ledger>> + Send;

    /// Every account's balance (`GET /eth/v1/proving/balances`).
    fn balances(&self) -> impl Future<Output = Result<Vec<AccountBalance>>> + Send;

    /// The prover registry (`GET /eth/v1/proving/registry`).
    fn registry(&self) -> impl Future<Output = Result<Vec<RegistryEntry>>> + Send;

    /// The reward constants in force (`GET /eth/v1/proving/reward_config`).
    fn reward_config(&self) -> impl Future<Output = Result<rewards::RewardsFile>> + Send;

    /// Verifies a message with its proof without submitting it (`POST /eth/v1/proving/verify`).
    /// A failed check is a verdict (`valid: false` with the reason), not an error.
    fn verify(
        &self,
        message: ProtocolMessage,
    ) -> impl Future<Output = Result<VerificationVerdict>> + Send;

    /// Subscribes to round and phase transitions (`GET /eth/v1/proving/events`).
    fn subscribe(&self) -> broadcast::Receiver<ProvingEvent>;

    /// The sidecar's sync status (`GET /eth/v1/node/syncing`, the Beacon API's shape): how far
    /// canonical settlement trails the head it follows. The default: in sync at slot 0.
    fn syncing(&self) -> impl Future<Output = Result<crate::types::SyncingData>> + Send {
        async {
            Ok(crate::types::SyncingData {
                head_slot: crate::types::Slot(0),
                sync_distance: 0,
                is_syncing: false,
                is_optimistic: None,
                el_offline: None,
            })
        }
    }
}
