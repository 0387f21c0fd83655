//! Wire types of the standard Beacon API endpoints the sidecar follows.
//!
//! Field names and encodings follow `ethereum/beacon-APIs` (`apis/*.yaml`, `types/*.yaml`):
//! integers are quoted decimals, byte strings `0x`-hex, payloads wrapped in `{"data": ...}`.
//! Readers are tolerant: unknown fields are ignored (or kept, where noted), and metadata that some
//! clients omit (`execution_optimistic`, `finalized`, `version`) is optional.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bloom, Bytes, U256};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::{DisplayFromStr, serde_as};

use super::primitives::{
    BlsPubkey, BlsSignature, Epoch, ForkName, ForkVersion, Hash32, Quoted, Root, Slot,
    ValidatorIndex,
};
use crate::error::{Error, Result};

/// The envelope of every Beacon API JSON response: `{"data": ..., "version"?,
/// "execution_optimistic"?, "finalized"?, "dependent_root"?}`.
///
/// The metadata fields are optional on read (Lodestar and older nodes omit some of them) and left
/// out on write when `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiResponse<T> {
    /// The fork of `data`, for fork-versioned endpoints (blocks v2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ForkName>,
    /// Whether the data references an execution payload not yet verified (absent means false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_optimistic: Option<bool>,
    /// Whether the data is in the finalized history of the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalized: Option<bool>,
    /// The block root the response depends on (duties endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent_root: Option<Root>,
    /// The payload.
    pub data: T,
}

impl<T> ApiResponse<T> {
    /// A response with `data` and no metadata.
    pub fn new(data: T) -> Self {
        Self {
            version: None,
            execution_optimistic: None,
            finalized: None,
            dependent_root: None,
            data,
        }
    }

    /// Sets `execution_optimistic` and `finalized`.
    #[must_use]
    pub fn with_status(mut self, execution_optimistic: bool, finalized: bool) -> Self {
        self.execution_optimistic = Some(execution_optimistic);
        self.finalized = Some(finalized);
        self
    }
}

/// The Beacon API error body `{"code": 404, "message": "Block not found"}` returned with every
/// 4xx/5xx status (`types/http.yaml#/ErrorMessage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// The HTTP status code.
    pub code: u16,
    /// A human-readable message.
    pub message: String,
    /// Optional stack traces (some nodes send them in debug builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacktraces: Option<Vec<String>>,
}

impl ErrorMessage {
    /// An error body with this code and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), stacktraces: None }
    }
}

/// `GET /eth/v1/beacon/genesis`: details of the chain's genesis.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisData {
    /// Unix time in seconds at which the chain began.
    #[serde_as(as = "Quoted")]
    pub genesis_time: u64,
    /// The genesis validators root (part of every signing domain).
    pub genesis_validators_root: Root,
    /// The genesis fork version.
    pub genesis_fork_version: ForkVersion,
}

/// `GET /eth/v1/config/spec`: every constant, preset and config value the node knows.
///
/// Kept as a map of raw JSON values: scalars are quoted strings (`"12"`, `"0x06000000"`), while
/// some entries are arrays or objects (`BLOB_SCHEDULE`). Typed accessors parse on demand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecConfig(pub BTreeMap<String, Value>);

impl SpecConfig {
    /// The raw value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// `key` as an unsigned integer (quoted or bare), `None` if absent.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>> {
        let Some(value) = self.0.get(key) else { return Ok(None) };
        let parsed = match value {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| Error::SpecValue { key: key.to_owned(), value: value.to_string() })
    }

    /// `SECONDS_PER_SLOT`, falling back to `SLOT_DURATION_MS / 1000` where only that is given.
    pub fn seconds_per_slot(&self) -> Result<Option<u64>> {
        if let Some(s) = self.get_u64("SECONDS_PER_SLOT")? {
            return Ok(Some(s));
        }
        Ok(self.get_u64("SLOT_DURATION_MS")?.map(|ms| ms / 1000))
    }

    /// `SLOTS_PER_EPOCH`.
    pub fn slots_per_epoch(&self) -> Result<Option<u64>> {
        self.get_u64("SLOTS_PER_EPOCH")
    }
}

/// `GET /eth/v1/node/syncing`: the node's sync status.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncingData {
    /// The head slot the node is trying to reach.
    pub head_slot: Slot,
    /// How many slots the node still has to process; 0 when synced.
    #[serde_as(as = "Quoted")]
    pub sync_distance: u64,
    /// Whether the node is syncing.
    pub is_syncing: bool,
    /// Whether the node is optimistically tracking the head (absent on older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_optimistic: Option<bool>,
    /// Whether the execution client is offline (absent on older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub el_offline: Option<bool>,
}

/// `GET /eth/v1/node/health`: the node's health, carried by the status code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// 200: ready.
    Ready,
    /// 206: syncing, or the execution node is optimistic or offline.
    Syncing,
    /// 503 (or another status): not initialised or having issues; the status is kept.
    Unhealthy(u16),
}

impl Health {
    /// Interprets the HTTP status code of the health endpoint.
    pub fn from_status(status: u16) -> Self {
        match status {
            200 => Self::Ready,
            206 => Self::Syncing,
            other => Self::Unhealthy(other),
        }
    }

    /// The status code the endpoint returns for this health.
    pub fn status(self) -> u16 {
        match self {
            Self::Ready => 200,
            Self::Syncing => 206,
            Self::Unhealthy(code) => code,
        }
    }
}

/// `BeaconBlockHeader` (`types/phase0/block.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconBlockHeader {
    /// The block's slot.
    pub slot: Slot,
    /// The proposer's validator index.
    pub proposer_index: ValidatorIndex,
    /// The parent block root.
    pub parent_root: Root,
    /// The post-state root.
    pub state_root: Root,
    /// The hash-tree-root of the block body.
    pub body_root: Root,
}

/// `SignedBeaconBlockHeader` (`types/phase0/block.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBeaconBlockHeader {
    /// The header.
    pub message: BeaconBlockHeader,
    /// The proposer's signature.
    pub signature: BlsSignature,
}

/// `GET /eth/v1/beacon/headers/{block_id}`: a block header with its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeaderData {
    /// The block root.
    pub root: Root,
    /// Whether the block is in the canonical chain.
    pub canonical: bool,
    /// The signed header.
    pub header: SignedBeaconBlockHeader,
}

/// `Eth1Data` (`types/phase0/eth1.yaml`).
#[serde_as]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eth1Data {
    /// The deposit tree root.
    pub deposit_root: Root,
    /// The deposit count.
    #[serde_as(as = "Quoted")]
    pub deposit_count: u64,
    /// The eth1 block hash.
    pub block_hash: Hash32,
}

/// `SyncAggregate` (`types/altair/sync_aggregate.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncAggregate {
    /// The participation bitvector, `0x`-hex.
    pub sync_committee_bits: Bytes,
    /// The aggregate signature.
    pub sync_committee_signature: BlsSignature,
}

/// `Withdrawal` (`types/capella/withdrawal.yaml`).
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The withdrawal index.
    #[serde_as(as = "Quoted")]
    pub index: u64,
    /// The validator withdrawing.
    pub validator_index: ValidatorIndex,
    /// The execution address credited.
    pub address: Address,
    /// The amount in Gwei.
    #[serde_as(as = "Quoted")]
    pub amount: u64,
}

/// `ExecutionPayload` (`types/{bellatrix,capella,deneb}/execution_payload.yaml`): the fields of
/// every post-Merge fork; the ones added later are optional.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionPayload {
    /// The parent execution block hash.
    pub parent_hash: Hash32,
    /// The fee recipient.
    pub fee_recipient: Address,
    /// The execution state root.
    pub state_root: Root,
    /// The receipts root.
    pub receipts_root: Root,
    /// The logs bloom (256 bytes).
    pub logs_bloom: Bloom,
    /// The RANDAO mix of the previous slot, as seen by the EVM.
    pub prev_randao: Root,
    /// The execution block number.
    #[serde_as(as = "Quoted")]
    pub block_number: u64,
    /// The gas limit.
    #[serde_as(as = "Quoted")]
    pub gas_limit: u64,
    /// The gas used by the block's transactions.
    #[serde_as(as = "Quoted")]
    pub gas_used: u64,
    /// The execution timestamp (unix seconds).
    #[serde_as(as = "Quoted")]
    pub timestamp: u64,
    /// Extra data (at most 32 bytes).
    pub extra_data: Bytes,
    /// The base fee per gas in wei (a quoted 256-bit decimal).
    #[serde_as(as = "DisplayFromStr")]
    pub base_fee_per_gas: U256,
    /// The execution block hash.
    pub block_hash: Hash32,
    /// The opaque, RLP-encoded transactions.
    pub transactions: Vec<Bytes>,
    /// Withdrawals (Capella and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawals: Option<Vec<Withdrawal>>,
    /// Blob gas used (Deneb and later).
    #[serde_as(as = "Option<Quoted>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_gas_used: Option<u64>,
    /// Excess blob gas (Deneb and later).
    #[serde_as(as = "Option<Quoted>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excess_blob_gas: Option<u64>,
}

/// `ExecutionRequests` (`types/electra/execution_requests.yaml`), kept as raw JSON entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRequests {
    /// Deposit requests.
    pub deposits: Vec<Value>,
    /// Withdrawal requests.
    pub withdrawals: Vec<Value>,
    /// Consolidation requests.
    pub consolidations: Vec<Value>,
}

/// `BeaconBlockBody` of any fork (`types/*/block.yaml`).
///
/// The fields every fork has are required; the ones added by later forks are optional.
/// Operations the sidecar does not interpret (attestations, slashings, ...) stay raw JSON, and
/// fields of forks this crate does not know are kept in [`BeaconBlockBody::other`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconBlockBody {
    /// The proposer's RANDAO reveal (a BLS signature over the epoch).
    pub randao_reveal: BlsSignature,
    /// The eth1 vote.
    pub eth1_data: Eth1Data,
    /// 32 bytes of graffiti.
    pub graffiti: Root,
    /// Proposer slashings.
    pub proposer_slashings: Vec<Value>,
    /// Attester slashings.
    pub attester_slashings: Vec<Value>,
    /// Attestations.
    pub attestations: Vec<Value>,
    /// Deposits.
    pub deposits: Vec<Value>,
    /// Voluntary exits.
    pub voluntary_exits: Vec<Value>,
    /// The sync aggregate (Altair and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_aggregate: Option<SyncAggregate>,
    /// The execution payload (Bellatrix to Fulu; absent before the Merge and from Gloas on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_payload: Option<ExecutionPayload>,
    /// BLS-to-execution changes (Capella and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bls_to_execution_changes: Option<Vec<Value>>,
    /// Blob KZG commitments (Deneb and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_kzg_commitments: Option<Vec<Bytes>>,
    /// Execution requests (Electra and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_requests: Option<ExecutionRequests>,
    /// Fields of forks this crate does not model (for example Gloas' payload bid), kept as is.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `BeaconBlock` of any fork (`types/*/block.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconBlock {
    /// The block's slot.
    pub slot: Slot,
    /// The proposer's validator index.
    pub proposer_index: ValidatorIndex,
    /// The parent block root.
    pub parent_root: Root,
    /// The post-state root.
    pub state_root: Root,
    /// The body.
    pub body: BeaconBlockBody,
}

/// `GET /eth/v2/beacon/blocks/{block_id}`: a signed block of any fork. The fork is the
/// response's `version` field (the `Eth-Consensus-Version` header is not needed: Lodestar omits
/// it on JSON responses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBeaconBlock {
    /// The block.
    pub message: BeaconBlock,
    /// The proposer's signature.
    pub signature: BlsSignature,
}

/// `GET /eth/v1/beacon/states/{state_id}/randao`: the RANDAO mix of an epoch in a state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandaoData {
    /// The RANDAO mix.
    pub randao: Root,
}

/// One entry of `GET /eth/v1/validator/duties/proposer/{epoch}` (`types/duty.yaml#/ProposerDuty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposerDuty {
    /// The proposer's public key.
    pub pubkey: BlsPubkey,
    /// The proposer's validator index.
    pub validator_index: ValidatorIndex,
    /// The slot to propose at.
    pub slot: Slot,
}

/// `Checkpoint` (`types/misc.yaml`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint epoch.
    pub epoch: Epoch,
    /// The checkpoint block root (zero before finality).
    pub root: Root,
}

/// `GET /eth/v1/beacon/states/{state_id}/finality_checkpoints`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalityCheckpoints {
    /// The previous justified checkpoint.
    pub previous_justified: Checkpoint,
    /// The current justified checkpoint.
    pub current_justified: Checkpoint,
    /// The finalized checkpoint.
    pub finalized: Checkpoint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_tolerates_arrays_and_reads_numbers() {
        let json = r#"{"DEPOSIT_CONTRACT_ADDRESS":"0x00000000219ab540356cBB839Cbe05303d7705Fa",
            "SECONDS_PER_SLOT":"12","SLOTS_PER_EPOCH":"32","BAD":"x",
            "BLOB_SCHEDULE":[{"EPOCH":"269568","MAX_BLOBS_PER_BLOCK":"6"}]}"#;
        let spec: SpecConfig = serde_json::from_str(json).unwrap();
        assert_eq!(spec.seconds_per_slot().unwrap(), Some(12));
        assert_eq!(spec.slots_per_epoch().unwrap(), Some(32));
        assert!(spec.get("BLOB_SCHEDULE").unwrap().is_array());
        assert!(matches!(spec.get_u64("BAD"), Err(Error::SpecValue { .. })));
        assert!(matches!(spec.get_u64("BLOB_SCHEDULE"), Err(Error::SpecValue { .. })));
        assert_eq!(spec.get_u64("MISSING").unwrap(), None);
    }

    #[test]
    fn spec_slot_duration_ms_fallback() {
        let spec: SpecConfig = serde_json::from_str(r#"{"SLOT_DURATION_MS":"6000"}"#).unwrap();
        assert_eq!(spec.seconds_per_slot().unwrap(), Some(6));
    }

    #[test]
    fn health_from_status() {
        assert_eq!(Health::from_status(200), Health::Ready);
        assert_eq!(Health::from_status(206), Health::Syncing);
        assert_eq!(Health::from_status(503), Health::Unhealthy(503));
        assert_eq!(Health::Syncing.status(), 206);
    }

    #[test]
    fn envelope_metadata_is_optional() {
        let r: ApiResponse<RandaoData> = serde_json::from_str(
            r#"{"data":{"randao":"0xcf8e0d4e9587369b2301d0790347320302cc0943d5a1884560367e8208d920f2"}}"#,
        )
        .unwrap();
        assert_eq!(r.execution_optimistic, None);
        let out = serde_json::to_value(&r).unwrap();
        assert!(out.get("finalized").is_none());
    }
}
