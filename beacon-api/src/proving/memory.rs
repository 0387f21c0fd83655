//! An in-memory [`ProvingBackend`] for tests (feature `test-utils`): a real registry with BLS
//! checks (proof of possession, message signatures under the protocol's domains), duplicate
//! detection, and whatever rounds, proofs, ledgers and duties a test inserts. It runs no rounds
//! and verifies no STARKs: the node's backend does.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard},
};

use phase_engine::{
    Capabilities, MessageKind, ProtocolMessage, ProverIndex, ProverRecord, Root,
    SignedPartialProof, SignedProverRegistration, SigningContext, bls,
};
use tokio::sync::broadcast;

use super::{
    backend::ProvingBackend,
    types::{
        AccountBalance, BlockRounds, FinalizedProof, ProverDuties, ProvingEvent, RegistryEntry,
        SubmissionReceipt, SubmissionStatus, VerificationVerdict,
    },
};
use crate::{
    error::{Error, Result},
    types::BlockId,
};

#[derive(Default)]
struct State {
    registry: Vec<ProverRecord>,
    seen: HashMap<Root, MessageKind>,
    blocks: BTreeMap<u64, Root>,
    rounds: HashMap<Root, BlockRounds>,
    proofs: HashMap<Root, FinalizedProof>,
    partials: HashMap<Root, Vec<SignedPartialProof>>,
    ledgers: HashMap<Root, rewards::Ledger>,
    duties: HashMap<ProverIndex, ProverDuties>,
}

/// The in-memory backend.
pub struct InMemoryBackend {
    ctx: SigningContext,
    state: Mutex<State>,
    events: broadcast::Sender<ProvingEvent>,
}

impl std::fmt::Debug for InMemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryBackend").finish_non_exhaustive()
    }
}

impl InMemoryBackend {
    /// An empty backend checking signatures under `ctx`.
    pub fn new(ctx: SigningContext) -> Self {
        Self { ctx, state: Mutex::new(State::default()), events: broadcast::channel(256).0 }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes a block's rounds known.
    pub fn insert_rounds(&self, rounds: BlockRounds) {
        let mut s = self.state();
        s.blocks.insert(rounds.slot.0, rounds.block_root);
        s.rounds.insert(rounds.block_root, rounds);
    }

    /// Stores the finalised proof of a block.
    pub fn insert_proof(&self, proof: FinalizedProof) {
        let mut s = self.state();
        s.blocks.insert(proof.slot.0, proof.block_root);
        s.proofs.insert(proof.block_root, proof);
    }

    /// Stores the accepted partial proofs of a block's rounds.
    pub fn insert_partial_proofs(&self, block_root: Root, partials: Vec<SignedPartialProof>) {
        self.state().partials.insert(block_root, partials);
    }

    /// Stores the settled ledger of a block.
    pub fn insert_ledger(&self, ledger: rewards::Ledger) {
        let mut s = self.state();
        s.blocks.insert(ledger.slot.0, ledger.block_root);
        s.ledgers.insert(ledger.block_root, ledger);
    }

    /// Sets a prover's duties.
    pub fn set_duties(&self, duties: ProverDuties) {
        self.state().duties.insert(duties.prover, duties);
    }

    /// Number of registered provers.
    pub fn registry_len(&self) -> usize {
        self.state().registry.len()
    }

    /// Publishes an event to the stream.
    pub fn publish(&self, event: ProvingEvent) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    fn resolve(&self, s: &State, block: BlockId) -> Result<Root> {
        let found = match block {
            BlockId::Head => s.blocks.values().next_back().copied(),
            BlockId::Slot(slot) => s.blocks.get(&slot.get()).copied(),
            BlockId::Root(root) => Some(root),
            _ => None,
        };
        found.ok_or_else(|| Error::NotFound { what: format!("block {block}") })
    }

    /// The signer of a round message, and whether its signature is valid.
    fn check(&self, s: &State, message: &ProtocolMessage) -> Result<(Root, Option<String>)> {
        let (prover, block_root, signature) = match message {
            ProtocolMessage::Commitment(m) => {
                (m.message.prover, m.message.round.block_root, m.signature)
            }
            ProtocolMessage::Decline(m) => {
                (m.message.prover, m.message.round.block_root, m.signature)
            }
            ProtocolMessage::PartialProof(m) => {
                (m.message.prover, m.message.round.block_root, m.signature)
            }
            ProtocolMessage::FullProof(m) => {
                (m.message.submitter, m.message.round.block_root, m.signature)
            }
            ProtocolMessage::AggProof(m) => {
                (m.message.submitter, m.message.block_root, m.signature)
            }
            _ => return Err(Error::InvalidInput { reason: "unsupported message kind".into() }),
        };
        let root = message.signing_root(&self.ctx);
        let Some(record) = usize::try_from(prover.0).ok().and_then(|i| s.registry.get(i)) else {
            return Ok((root, Some(format!("unknown prover {prover}"))));
        };
        if !s.rounds.contains_key(&block_root) {
            return Ok((root, Some(format!("no round for block {block_root}"))));
        }
        if !bls::verify(&record.pubkey, &root, &signature) {
            return Ok((root, Some(format!("invalid signature of prover {prover}"))));
        }
        Ok((root, None))
    }
}

impl ProvingBackend for InMemoryBackend {
    async fn register_prover(
        &self,
        registration: SignedProverRegistration,
    ) -> Result<SubmissionReceipt> {
        let m = &registration.message;
        if !bls::verify_possession(&m.pubkey, &m.proof_of_possession) {
            return Err(Error::InvalidInput { reason: "invalid proof of possession".into() });
        }
        let root = registration.signing_root(&self.ctx);
        if !bls::verify(&m.pubkey, &root, &registration.signature) {
            return Err(Error::InvalidInput { reason: "invalid registration signature".into() });
        }
        if m.stake == 0 {
            return Err(Error::InvalidInput { reason: "stake must be positive".into() });
        }
        let mut s = self.state();
        if let Some(i) = s.registry.iter().position(|r| r.pubkey == m.pubkey) {
            let index = ProverIndex(u64::try_from(i).unwrap_or(u64::MAX));
            if s.seen.contains_key(&root) {
                return Ok(SubmissionReceipt {
                    kind: MessageKind::Registration,
                    signing_root: root,
                    status: SubmissionStatus::Duplicate,
                    prover_index: Some(index),
                });
            }
            return Err(Error::Conflict {
                reason: format!("key already registered as prover {index}"),
            });
        }
        let index = ProverIndex(u64::try_from(s.registry.len()).unwrap_or(u64::MAX));
        s.registry.push(ProverRecord {
            pubkey: m.pubkey,
            stake: m.stake,
            capabilities: Capabilities { ..m.capabilities },
            active: true,
            reputation: 0,
        });
        s.seen.insert(root, MessageKind::Registration);
        Ok(SubmissionReceipt {
            kind: MessageKind::Registration,
            signing_root: root,
            status: SubmissionStatus::Accepted,
            prover_index: Some(index),
        })
    }

    async fn submit(&self, message: ProtocolMessage) -> Result<SubmissionReceipt> {
        let mut s = self.state();
        let (root, problem) = self.check(&s, &message)?;
        if let Some(reason) = problem {
            return Err(Error::InvalidInput { reason });
        }
        let status = if s.seen.insert(root, message.kind()).is_some() {
            SubmissionStatus::Duplicate
        } else {
            SubmissionStatus::Accepted
        };
        Ok(SubmissionReceipt {
            kind: message.kind(),
            signing_root: root,
            status,
            prover_index: None,
        })
    }

    async fn rounds(&self, block: BlockId) -> Result<BlockRounds> {
        let s = self.state();
        let root = self.resolve(&s, block)?;
        s.rounds
            .get(&root)
            .cloned()
            .ok_or_else(|| Error::NotFound { what: format!("rounds of block {root}") })
    }

    async fn prover_duties(&self, prover: ProverIndex) -> Result<ProverDuties> {
        let s = self.state();
        if usize::try_from(prover.0).map_or(true, |i| i >= s.registry.len()) {
            return Err(Error::NotFound { what: format!("prover {prover}") });
        }
        Ok(s.duties.get(&prover).cloned().unwrap_or(ProverDuties {
            prover,
            duties: Vec::new(),
            aggregation: Vec::new(),
        }))
    }

    async fn partial_proofs(&self, block: BlockId) -> Result<Vec<SignedPartialProof>> {
        let s = self.state();
        let root = self.resolve(&s, block)?;
        if !s.rounds.contains_key(&root) {
            return Err(Error::NotFound { what: format!("rounds of block {root}") });
        }
        Ok(s.partials.get(&root).cloned().unwrap_or_default())
    }

    async fn finalized_proof(&self, block: BlockId) -> Result<FinalizedProof> {
        let s = self.state();
        let root = self.resolve(&s, block)?;
        s.proofs
            .get(&root)
            .cloned()
            .ok_or_else(|| Error::NotFound { what: format!("finalised proof of block {root}") })
    }

    async fn ledger(&self, block: BlockId) -> Result<rewards::Ledger> {
        let s = self.state();
        let root = self.resolve(&s, block)?;
        s.ledgers
            .get(&root)
            .cloned()
            .ok_or_else(|| Error::NotFound { what: format!("ledger of block {root}") })
    }

    async fn balances(&self) -> Result<Vec<AccountBalance>> {
        let s = self.state();
        let balances = rewards::Balances::from_ledgers(s.ledgers.values())
            .map_err(|e| Error::Unavailable { reason: e.to_string() })?;
        Ok(balances.iter().map(|(account, balance)| AccountBalance { account, balance }).collect())
    }

    async fn registry(&self) -> Result<Vec<RegistryEntry>> {
        Ok(self
            .state()
            .registry
            .iter()
            .enumerate()
            .map(|(i, record)| RegistryEntry {
                index: ProverIndex(u64::try_from(i).unwrap_or(u64::MAX)),
                record: record.clone(),
            })
            .collect())
    }

    async fn reward_config(&self) -> Result<rewards::RewardsFile> {
        Ok(rewards::RewardsFile::default())
    }

    async fn verify(&self, message: ProtocolMessage) -> Result<VerificationVerdict> {
        let s = self.state();
        let (_, problem) = self.check(&s, &message)?;
        Ok(match problem {
            None => VerificationVerdict::valid(),
            Some(reason) => VerificationVerdict::invalid(reason),
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<ProvingEvent> {
        self.events.subscribe()
    }
}
