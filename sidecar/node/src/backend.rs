//! The node's [`ProvingBackend`]: HTTP handlers send inputs and queries to the driver.

use beacon_api::{
    AccountBalance, BlockId, BlockRounds, FinalizedProof, ProverDuties, ProvingBackend,
    ProvingEvent, RegistryEntry, SubmissionReceipt, VerificationVerdict,
};
use phase_engine::{
    ProtocolMessage, ProverIndex, SignedPartialProof, SignedProverRegistration, UnixMillis, bls,
};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::driver::{Driver, Input};
use crate::SlotClock;

/// The proving extension's backend over a running node.
#[derive(Clone)]
pub struct NodeApi {
    tx: mpsc::Sender<Input>,
    clock: Arc<dyn SlotClock>,
    events: broadcast::Sender<ProvingEvent>,
}

impl std::fmt::Debug for NodeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeApi").finish_non_exhaustive()
    }
}

fn stopped() -> beacon_api::Error {
    beacon_api::Error::Unavailable { reason: "the node is shutting down".into() }
}

impl NodeApi {
    pub(super) fn new(
        tx: mpsc::Sender<Input>,
        clock: Arc<dyn SlotClock>,
        events: broadcast::Sender<ProvingEvent>,
    ) -> Self {
        Self { tx, clock, events }
    }

    /// Runs `f` on the driver's state.
    pub(super) async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Driver) -> T + Send + 'static,
    ) -> beacon_api::Result<T> {
        let (reply, rx) = oneshot::channel();
        let query = Box::new(move |d: &Driver| {
            let _ = reply.send(f(d));
        });
        self.tx.send(Input::Query(query)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    async fn send(
        &self,
        input: impl FnOnce(super::driver::Reply) -> Input,
    ) -> beacon_api::Result<SubmissionReceipt> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(input(reply)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

impl ProvingBackend for NodeApi {
    async fn register_prover(
        &self,
        registration: SignedProverRegistration,
    ) -> beacon_api::Result<SubmissionReceipt> {
        self.send(|reply| Input::Registration { registration, reply }).await
    }

    async fn submit(&self, message: ProtocolMessage) -> beacon_api::Result<SubmissionReceipt> {
        // The arrival time is read here, when the request body is complete.
        let arrived = UnixMillis(self.clock.now_unix_millis());
        self.send(|reply| Input::Message { message, arrived, reply: Some(reply) }).await
    }

    async fn rounds(&self, block: BlockId) -> beacon_api::Result<BlockRounds> {
        self.query(move |d| d.rounds(block)).await?
    }

    async fn prover_duties(&self, prover: ProverIndex) -> beacon_api::Result<ProverDuties> {
        self.query(move |d| d.duties(prover)).await?
    }

    async fn partial_proofs(&self, block: BlockId) -> beacon_api::Result<Vec<SignedPartialProof>> {
        self.query(move |d| d.partial_proofs(block)).await?
    }

    async fn finalized_proof(&self, block: BlockId) -> beacon_api::Result<FinalizedProof> {
        self.query(move |d| d.finalized_proof(block)).await?
    }

    async fn ledger(&self, block: BlockId) -> beacon_api::Result<rewards::Ledger> {
        self.query(move |d| d.ledger(block)).await?
    }

    async fn balances(&self) -> beacon_api::Result<Vec<AccountBalance>> {
        self.query(|d| d.balances()).await
    }

    async fn registry(&self) -> beacon_api::Result<Vec<RegistryEntry>> {
        self.query(|d| d.registry()).await
    }

    async fn syncing(&self) -> beacon_api::Result<beacon_api::SyncingData> {
        self.query(|d| d.syncing()).await
    }

    async fn reward_config(&self) -> beacon_api::Result<rewards::RewardsFile> {
        self.query(|d| d.reward_file()).await
    }

    /// Checks the signer and the signature against the registry; STARKs are checked when the
    /// message is submitted (the verdict of a submission is its receipt).
    async fn verify(&self, message: ProtocolMessage) -> beacon_api::Result<VerificationVerdict> {
        let (signer, signature) = match &message {
            ProtocolMessage::Commitment(m) => (m.message.prover, m.signature),
            ProtocolMessage::Decline(m) => (m.message.prover, m.signature),
            ProtocolMessage::PartialProof(m) => (m.message.prover, m.signature),
            ProtocolMessage::FullProof(m) => (m.message.submitter, m.signature),
            ProtocolMessage::AggProof(m) => (m.message.submitter, m.signature),
            _ => return Ok(VerificationVerdict::invalid("unsupported message kind")),
        };
        let found = self
            .query(move |d| {
                let ctx = *d.engine().signing_context();
                (d.engine().prover(signer).map(|r| r.pubkey), message.signing_root(&ctx))
            })
            .await?;
        let (Some(pubkey), root) = found else {
            return Ok(VerificationVerdict::invalid(format!("unknown prover {signer}")));
        };
        let valid = tokio::task::spawn_blocking(move || bls::verify(&pubkey, &root, &signature))
            .await
            .unwrap_or(false);
        Ok(if valid {
            VerificationVerdict::valid()
        } else {
            VerificationVerdict::invalid(format!("invalid signature of prover {signer}"))
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<ProvingEvent> {
        self.events.subscribe()
    }
}
