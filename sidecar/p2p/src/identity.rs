//! The node's network identity: one secp256k1 key for both libp2p (peer id) and discv5 (ENR),
//! as consensus clients do.

use std::path::Path;

use enr::{CombinedKey, CombinedPublicKey, EnrPublicKey};
use libp2p::PeerId;
use libp2p::identity::{Keypair, secp256k1};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A node's secp256k1 secret key.
#[derive(Clone)]
pub struct NodeKey {
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("peer_id", &self.peer_id()).finish()
    }
}

impl NodeKey {
    /// A fresh key from OS randomness.
    ///
    /// # Errors
    /// [`Error::Randomness`] if the OS random source fails.
    pub fn generate() -> Result<Self> {
        loop {
            let mut secret = Zeroizing::new([0u8; 32]);
            getrandom::fill(secret.as_mut())
                .map_err(|e| Error::Randomness { reason: e.to_string() })?;
            // Out-of-range scalars (probability ~2^-128) are simply drawn again.
            if let Ok(key) = Self::from_bytes(*secret) {
                return Ok(key);
            }
        }
    }

    /// A key from its 32 secret bytes.
    ///
    /// # Errors
    /// [`Error::P2p`] if the bytes are not a valid secp256k1 scalar.
    pub fn from_bytes(secret: [u8; 32]) -> Result<Self> {
        let mut copy = Zeroizing::new(secret);
        secp256k1::SecretKey::try_from_bytes(copy.as_mut())
            .map_err(|e| Error::P2p { action: "load node key", reason: e.to_string() })?;
        Ok(Self { secret: Zeroizing::new(secret) })
    }

    /// Loads the key stored (hex) at `path`, or creates one there (mode 0600) if there is none.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::P2p`] for a malformed file.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes: [u8; 32] = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| Error::P2p {
                        action: "load node key",
                        reason: format!("{} does not hold 32 hex-encoded bytes", path.display()),
                    })?;
                Self::from_bytes(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate()?;
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("creating", parent, e))?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(|e| Error::io("creating", path, e))?;
                use std::io::Write;
                file.write_all(hex::encode(key.secret.as_ref()).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::io("writing", path, e))?;
                Ok(key)
            }
            Err(e) => Err(Error::io("reading", path, e)),
        }
    }

    /// The libp2p keypair.
    pub fn libp2p_keypair(&self) -> Keypair {
        let mut copy = self.secret.clone();
        // Validated in the constructors.
        let secret = secp256k1::SecretKey::try_from_bytes(copy.as_mut())
            .unwrap_or_else(|_| unreachable!("node key validated at construction"));
        Keypair::from(secp256k1::Keypair::from(secret))
    }

    /// The discv5 / ENR key.
    pub fn enr_key(&self) -> CombinedKey {
        let mut copy = self.secret.clone();
        CombinedKey::secp256k1_from_bytes(copy.as_mut())
            .unwrap_or_else(|_| unreachable!("node key validated at construction"))
    }

    /// The libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.libp2p_keypair().public().to_peer_id()
    }
}

/// The libp2p peer id of the node an ENR describes (secp256k1 and ed25519 keys).
pub fn enr_peer_id(enr: &discv5::Enr) -> Option<PeerId> {
    let public = match enr.public_key() {
        CombinedPublicKey::Secp256k1(_) => {
            let bytes = enr.public_key().encode();
            libp2p::identity::PublicKey::from(secp256k1::PublicKey::try_from_bytes(&bytes).ok()?)
        }
        CombinedPublicKey::Ed25519(_) => return None,
    };
    Some(public.to_peer_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libp2p_and_enr_keys_agree() {
        let key = NodeKey::generate().unwrap();
        let enr = discv5::Enr::builder().build(&key.enr_key()).unwrap();
        assert_eq!(enr_peer_id(&enr), Some(key.peer_id()));
    }

    #[test]
    fn key_file_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net").join("node-key");
        let a = NodeKey::load_or_create(&path).unwrap();
        let b = NodeKey::load_or_create(&path).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        std::fs::write(&path, "zz").unwrap();
        assert!(NodeKey::load_or_create(&path).is_err());
    }

    #[test]
    fn invalid_scalars_are_rejected() {
        assert!(NodeKey::from_bytes([0; 32]).is_err());
        assert!(NodeKey::from_bytes([0xff; 32]).is_err());
    }
}
