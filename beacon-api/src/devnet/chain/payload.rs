//! The served block: the full `SignedBeaconBlock` of a stored block, with its synthetic
//! execution payload and opaque transactions.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bloom, Bytes, U256};

use super::{Block, Chain, spec::sha256};
use crate::types::{
    BeaconBlock, BeaconBlockBody, BlsSignature, Eth1Data, ExecutionPayload, ExecutionRequests,
    Root, SignedBeaconBlock, SyncAggregate,
};

impl Chain {
    /// The number of transactions of a block with this gas used.
    pub(in crate::devnet) fn transaction_count(&self, gas_used: u64) -> u64 {
        if gas_used == 0 {
            return 0;
        }
        gas_used.div_ceil(self.config.avg_transaction_gas).clamp(1, self.config.max_transactions)
    }

    /// The synthetic transactions of a block: opaque bytes derived from its execution hash.
    pub(in crate::devnet) fn transactions(&self, block: &Block) -> Vec<Bytes> {
        let size = self.config.transaction_size;
        (0..self.transaction_count(block.gas_used))
            .map(|i| {
                let mut tx = Vec::with_capacity(size);
                let mut counter: u64 = 0;
                while tx.len() < size {
                    let chunk = sha256(&[
                        block.block_hash.as_slice(),
                        &i.to_le_bytes(),
                        &counter.to_le_bytes(),
                    ]);
                    let take = (size - tx.len()).min(32);
                    tx.extend_from_slice(&chunk[..take]);
                    counter += 1;
                }
                Bytes::from(tx)
            })
            .collect()
    }

    pub(in crate::devnet) fn signed_block(&self, block: &Block) -> SignedBeaconBlock {
        let payload = ExecutionPayload {
            parent_hash: block.parent_hash,
            fee_recipient: Address::ZERO,
            state_root: Root::from(sha256(&[
                b"devnet execution state",
                block.block_hash.as_slice(),
            ])),
            receipts_root: Root::from(sha256(&[b"devnet receipts", block.block_hash.as_slice()])),
            logs_bloom: Bloom::ZERO,
            prev_randao: block.prev_randao,
            block_number: block.block_number,
            gas_limit: self.config.gas_limit(),
            gas_used: block.gas_used,
            timestamp: block.timestamp,
            extra_data: Bytes::new(),
            base_fee_per_gas: U256::from(7u64),
            block_hash: block.block_hash,
            transactions: self.transactions(block),
            withdrawals: Some(Vec::new()),
            blob_gas_used: Some(0),
            excess_blob_gas: Some(0),
        };
        let body = BeaconBlockBody {
            randao_reveal: block.randao_reveal,
            eth1_data: Eth1Data::default(),
            graffiti: block.graffiti,
            proposer_slashings: Vec::new(),
            attester_slashings: Vec::new(),
            attestations: Vec::new(),
            deposits: Vec::new(),
            voluntary_exits: Vec::new(),
            sync_aggregate: Some(SyncAggregate {
                sync_committee_bits: Bytes::from(vec![0u8; 64]),
                sync_committee_signature: BlsSignature::ZERO,
            }),
            execution_payload: Some(payload),
            bls_to_execution_changes: Some(Vec::new()),
            blob_kzg_commitments: Some(Vec::new()),
            execution_requests: Some(ExecutionRequests::default()),
            other: BTreeMap::new(),
        };
        SignedBeaconBlock {
            message: BeaconBlock {
                slot: block.slot(),
                proposer_index: block.header.proposer_index,
                parent_root: block.header.parent_root,
                state_root: block.header.state_root,
                body,
            },
            signature: block.signature,
        }
    }
}
