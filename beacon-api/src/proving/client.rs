//! A client of the proving extension API, for provers and tools (feature `client`).

use phase_engine::{ProtocolMessage, ProverIndex, SignedPartialProof, SignedProverRegistration};
use reqwest::Method;
use serde::{Serialize, de::DeserializeOwned};
use ssz::{Decode, Encode};

use super::types::{
    AccountBalance, BlockRounds, FinalizedProof, ProverDuties, RegistryEntry, SubmissionReceipt,
    VerificationVerdict,
};
use crate::{
    client::BeaconClient,
    error::{Error, Result},
    types::{ApiResponse, BlockId},
};

const JSON: &str = "application/json";
const SSZ: &str = "application/octet-stream";

/// Calls the extension of one or more sidecars (tried in order, like [`BeaconClient`]).
/// Submissions go as SSZ (half the size of hex JSON for proofs); answers are JSON, except the
/// finalised proof, downloaded as SSZ.
#[derive(Debug, Clone)]
pub struct ProvingClient {
    inner: BeaconClient,
}

impl ProvingClient {
    /// A client over an already configured [`BeaconClient`] (its URLs are the sidecars').
    pub fn new(inner: BeaconClient) -> Self {
        Self { inner }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<T> {
        let bytes = self
            .inner
            .with_fallback(|base| {
                let (method, body) = (method.clone(), body.clone());
                async move { self.inner.request_one(&base, method, path, JSON, body).await }
            })
            .await?;
        let response: ApiResponse<T> = serde_json::from_slice(&bytes)
            .map_err(|source| Error::Decode { what: format!("response of {path}"), source })?;
        Ok(response.data)
    }

    async fn post_ssz<M: Encode>(&self, path: &str, message: &M) -> Result<SubmissionReceipt> {
        self.call(Method::POST, path, Some((SSZ, message.as_ssz_bytes()))).await
    }

    /// `POST /eth/v1/proving/provers`.
    pub async fn register(
        &self,
        registration: &SignedProverRegistration,
    ) -> Result<SubmissionReceipt> {
        self.post_ssz("eth/v1/proving/provers", registration).await
    }

    /// Submits a round message to its route (`commitments`, `declines`, `partial_proofs`,
    /// `full_proofs` or `agg_proofs`).
    pub async fn submit(&self, message: &ProtocolMessage) -> Result<SubmissionReceipt> {
        match message {
            ProtocolMessage::Commitment(m) => self.post_ssz("eth/v1/proving/commitments", m).await,
            ProtocolMessage::Decline(m) => self.post_ssz("eth/v1/proving/declines", m).await,
            ProtocolMessage::PartialProof(m) => {
                self.post_ssz("eth/v1/proving/partial_proofs", m).await
            }
            ProtocolMessage::FullProof(m) => self.post_ssz("eth/v1/proving/full_proofs", m).await,
            ProtocolMessage::AggProof(m) => self.post_ssz("eth/v1/proving/agg_proofs", m).await,
            // A message kind added to phase-engine after this client: send it as JSON to verify.
            #[allow(unreachable_patterns)]
            other => Err(Error::InvalidInput {
                reason: format!("no submission route for {:?}", other.kind()),
            }),
        }
    }

    /// `POST /eth/v1/proving/verify` (JSON body `{"kind", "data"}`).
    pub async fn verify(&self, message: &ProtocolMessage) -> Result<VerificationVerdict> {
        self.call(Method::POST, "eth/v1/proving/verify", Some((JSON, to_json(message)?))).await
    }

    /// `GET /eth/v1/proving/rounds/{block_id}`.
    pub async fn rounds(&self, block: BlockId) -> Result<BlockRounds> {
        self.call(Method::GET, &format!("eth/v1/proving/rounds/{block}"), None).await
    }

    /// `GET /eth/v1/proving/rounds/{block_id}/partial_proofs`, downloaded as SSZ: the accepted
    /// partial proofs of every round of the block (what a T3 aggregator combines).
    pub async fn partial_proofs(&self, block: BlockId) -> Result<Vec<SignedPartialProof>> {
        let path = format!("eth/v1/proving/rounds/{block}/partial_proofs");
        let bytes = self
            .inner
            .with_fallback(|base| {
                let path = path.as_str();
                async move { self.inner.request_one(&base, Method::GET, path, SSZ, None).await }
            })
            .await?;
        Vec::<SignedPartialProof>::from_ssz_bytes(&bytes).map_err(|e| Error::InvalidInput {
            reason: format!("undecodable SSZ partial proofs of {block}: {e:?}"),
        })
    }

    /// `GET /eth/v1/proving/provers/{prover_index}/duties`.
    pub async fn duties(&self, prover: ProverIndex) -> Result<ProverDuties> {
        self.call(Method::GET, &format!("eth/v1/proving/provers/{prover}/duties"), None).await
    }

    /// `GET /eth/v1/proving/proofs/{block_id}`, downloaded as SSZ.
    pub async fn finalized_proof(&self, block: BlockId) -> Result<FinalizedProof> {
        let path = format!("eth/v1/proving/proofs/{block}");
        let bytes = self
            .inner
            .with_fallback(|base| {
                let path = path.as_str();
                async move { self.inner.request_one(&base, Method::GET, path, SSZ, None).await }
            })
            .await?;
        FinalizedProof::from_ssz_bytes(&bytes).map_err(|e| Error::InvalidInput {
            reason: format!("undecodable SSZ proof of {block}: {e:?}"),
        })
    }

    /// `GET /eth/v1/proving/ledgers/{block_id}`.
    pub async fn ledger(&self, block: BlockId) -> Result<rewards::Ledger> {
        self.call(Method::GET, &format!("eth/v1/proving/ledgers/{block}"), None).await
    }

    /// `GET /eth/v1/proving/balances`.
    pub async fn balances(&self) -> Result<Vec<AccountBalance>> {
        self.call(Method::GET, "eth/v1/proving/balances", None).await
    }

    /// `GET /eth/v1/proving/registry`.
    pub async fn registry(&self) -> Result<Vec<RegistryEntry>> {
        self.call(Method::GET, "eth/v1/proving/registry", None).await
    }

    /// `GET /eth/v1/proving/reward_config`.
    pub async fn reward_config(&self) -> Result<rewards::RewardsFile> {
        self.call(Method::GET, "eth/v1/proving/reward_config", None).await
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|source| Error::Decode { what: "request body".into(), source })
}
