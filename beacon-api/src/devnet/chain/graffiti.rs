//! The graffiti each validator's proposals carry: set through the devnet's keymanager API, or
//! the devnet's default (`devnet fork N`).

use super::Chain;
use crate::types::Root;

impl Chain {
    /// The index of the validator with this public key (`0x` hex, any case).
    pub(in crate::devnet) fn validator_by_pubkey(&self, pubkey: &str) -> Option<u64> {
        let wanted = pubkey.strip_prefix("0x").unwrap_or(pubkey).to_lowercase();
        let index = self
            .validators
            .pubkeys
            .iter()
            .position(|pk| alloy_primitives::hex::encode(pk.as_slice()) == wanted)?;
        u64::try_from(index).ok()
    }

    /// The public keys of every validator, `0x` hex, by index.
    pub(in crate::devnet) fn validator_pubkeys(&self) -> Vec<String> {
        self.validators.pubkeys.iter().map(|pk| format!("{pk:#x}")).collect()
    }

    /// The graffiti set for validator `index` (zeros when none is set).
    pub(in crate::devnet) fn graffiti_of(&self, index: u64) -> [u8; 32] {
        self.graffiti.get(&index).copied().unwrap_or([0; 32])
    }

    /// Sets (or with `None` clears) the graffiti of validator `index`'s next proposals.
    pub(in crate::devnet) fn set_graffiti(&mut self, index: u64, graffiti: Option<[u8; 32]>) {
        match graffiti {
            Some(g) => self.graffiti.insert(index, g),
            None => self.graffiti.remove(&index),
        };
    }

    /// The graffiti of a block by `proposer` on fork `fork`.
    pub(super) fn block_graffiti(&self, proposer: u64, fork: u64) -> Root {
        if let Some(g) = self.graffiti.get(&proposer) {
            return Root::from(*g);
        }
        let mut graffiti = [0u8; 32];
        let text = format!("devnet fork {fork}");
        let n = text.len().min(32);
        graffiti[..n].copy_from_slice(&text.as_bytes()[..n]);
        Root::from(graffiti)
    }
}
