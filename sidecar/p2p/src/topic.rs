//! Ethereum-style gossip topics: `/<prefix>/<name>/ssz_snappy`.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The encoding suffix of every topic: SSZ payloads, snappy-compressed.
pub const SSZ_SNAPPY: &str = "ssz_snappy";

/// A gossip topic `/<prefix>/<name>/ssz_snappy`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GossipTopic {
    prefix: String,
    name: String,
}

/// Checks a topic prefix: 1–64 characters of `[A-Za-z0-9._-]`.
///
/// # Errors
/// A short reason.
pub fn validate_topic_prefix(prefix: &str) -> std::result::Result<(), &'static str> {
    validate_part(prefix)
}

fn validate_part(part: &str) -> std::result::Result<(), &'static str> {
    if part.is_empty() {
        return Err("must not be empty");
    }
    if part.len() > 64 {
        return Err("at most 64 characters");
    }
    if !part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

impl GossipTopic {
    /// The topic `name` under `prefix`.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`] if either part is empty, too long or has other characters than
    /// `[A-Za-z0-9._-]`.
    pub fn new(prefix: &str, name: &str) -> Result<Self> {
        let topic = Self { prefix: prefix.to_owned(), name: name.to_owned() };
        validate_part(prefix)
            .and_then(|()| validate_part(name))
            .map_err(|reason| Error::InvalidTopic { topic: topic.to_string(), reason })?;
        Ok(topic)
    }

    /// The prefix (network name and version).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The message kind, for example `commitment`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The libp2p topic hash (identity hashing: the topic string itself).
    pub fn hash(&self) -> libp2p::gossipsub::TopicHash {
        libp2p::gossipsub::TopicHash::from_raw(self.to_string())
    }
}

impl fmt::Display for GossipTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/{}/{SSZ_SNAPPY}", self.prefix, self.name)
    }
}

impl FromStr for GossipTopic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidTopic { topic: s.to_owned(), reason };
        let rest = s.strip_prefix('/').ok_or_else(|| bad("must start with '/'"))?;
        let mut parts = rest.split('/');
        let (Some(prefix), Some(name), Some(encoding), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected /<prefix>/<name>/ssz_snappy"));
        };
        if encoding != SSZ_SNAPPY {
            return Err(bad("the encoding must be ssz_snappy"));
        }
        Self::new(prefix, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let t = GossipTopic::new("proving-sidecar-0", "commitment").unwrap();
        assert_eq!(t.to_string(), "/proving-sidecar-0/commitment/ssz_snappy");
        assert_eq!(t.to_string().parse::<GossipTopic>().unwrap(), t);
        assert_eq!(t.hash().as_str(), "/proving-sidecar-0/commitment/ssz_snappy");
    }

    #[test]
    fn malformed_topics_are_rejected() {
        for s in [
            "",
            "proving/commitment/ssz_snappy",
            "/p/commitment/ssz",
            "/p/commitment/ssz_snappy/x",
            "//commitment/ssz_snappy",
            "/p/com mitment/ssz_snappy",
        ] {
            assert!(s.parse::<GossipTopic>().is_err(), "{s}");
        }
        assert!(GossipTopic::new("a/b", "c").is_err());
    }
}
