//! Wire types of the standard keymanager API of validator clients (`ethereum/keymanager-APIs`)
//! that the sidecar uses: the keystore list and per-validator graffiti.

use serde::{Deserialize, Serialize};

/// One entry of `GET /eth/v1/keystores`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoreEntry {
    /// The validator's BLS public key, `0x`-prefixed hex of 48 bytes.
    pub validating_pubkey: String,
    /// The EIP-2334 derivation path, when the client knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation_path: Option<String>,
    /// Whether the key is read-only (managed elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
}

/// `GET /eth/v1/keystores`: `{"data": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoreList {
    /// The validators the client signs for.
    pub data: Vec<KeystoreEntry>,
}

/// `GET /eth/v1/validator/{pubkey}/graffiti`: the graffiti a validator's next proposal carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraffitiData {
    /// The validator's public key (`0x` hex).
    pub pubkey: String,
    /// The graffiti, at most 32 bytes of UTF-8.
    pub graffiti: String,
}

/// `{"data": GraffitiData}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraffitiResponse {
    /// The graffiti.
    pub data: GraffitiData,
}

/// Body of `POST /eth/v1/validator/{pubkey}/graffiti`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetGraffitiRequest {
    /// The graffiti, at most 32 bytes of UTF-8.
    pub graffiti: String,
}

/// The largest graffiti in bytes (the beacon block body's field).
pub const MAX_GRAFFITI_BYTES: usize = 32;

/// The 32 block bytes of a graffiti string: its UTF-8 bytes, zero-padded. `None` if longer than
/// [`MAX_GRAFFITI_BYTES`].
#[must_use]
pub fn graffiti_bytes(graffiti: &str) -> Option<[u8; 32]> {
    let bytes = graffiti.as_bytes();
    let mut out = [0u8; 32];
    out.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystore_list_matches_the_spec_example() {
        let json = r#"{"data":[{"validating_pubkey":"0x93247f2209abcacf57b75a51dafae777f9dd38bc7053d1af526f220a7489a6d3a2753e5f3e8b1cfe39b56f43611df74a","derivation_path":"m/12381/3600/0/0/0","readonly":true}]}"#;
        let list: KeystoreList = serde_json::from_str(json).unwrap();
        assert_eq!(list.data.len(), 1);
        assert_eq!(list.data[0].readonly, Some(true));
        let bare: KeystoreList =
            serde_json::from_str(r#"{"data":[{"validating_pubkey":"0x01"}]}"#).unwrap();
        assert_eq!(bare.data[0].derivation_path, None);
    }

    #[test]
    fn graffiti_bytes_pad_and_refuse_overlong() {
        let g = graffiti_bytes("pv1:abc").unwrap();
        assert_eq!(&g[..7], b"pv1:abc");
        assert!(g[7..].iter().all(|b| *b == 0));
        assert!(graffiti_bytes(&"x".repeat(32)).is_some());
        assert!(graffiti_bytes(&"x".repeat(33)).is_none());
    }
}
