//! Server-sent events of `GET /eth/v1/events?topics=...` (`apis/eventstream/index.yaml`).
//!
//! Readers ignore unknown fields and accept events without `execution_optimistic` (treated as
//! `false`), as some nodes omit it.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_with::serde_as;

use super::primitives::{Epoch, Quoted, Root, Slot};
use crate::error::{Error, Result};

/// A topic of the standard event stream that the sidecar follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventTopic {
    /// `head`: fork choice selected a new head.
    Head,
    /// `block`: a block was imported.
    Block,
    /// `finalized_checkpoint`: the finalized checkpoint advanced.
    FinalizedCheckpoint,
    /// `chain_reorg`: the chain reorganised.
    ChainReorg,
}

impl EventTopic {
    /// Every topic this crate models.
    pub const ALL: [Self; 4] =
        [Self::Head, Self::Block, Self::FinalizedCheckpoint, Self::ChainReorg];

    /// The topic name on the wire (`event:` field and `topics` query value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Block => "block",
            Self::FinalizedCheckpoint => "finalized_checkpoint",
            Self::ChainReorg => "chain_reorg",
        }
    }
}

impl fmt::Display for EventTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventTopic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "head" => Ok(Self::Head),
            "block" => Ok(Self::Block),
            "finalized_checkpoint" => Ok(Self::FinalizedCheckpoint),
            "chain_reorg" => Ok(Self::ChainReorg),
            other => Err(Error::UnknownTopic { topic: other.to_owned() }),
        }
    }
}

/// `event: head`: the node's fork choice selected a new head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadEvent {
    /// The head block's slot.
    pub slot: Slot,
    /// The head block root.
    pub block: Root,
    /// The head state root.
    pub state: Root,
    /// Whether the head crossed an epoch boundary.
    #[serde(default)]
    pub epoch_transition: bool,
    /// The dependent root of the previous epoch's duties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_duty_dependent_root: Option<Root>,
    /// The dependent root of the current epoch's duties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_duty_dependent_root: Option<Root>,
    /// Whether the head is optimistic (absent means false).
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// `event: block`: a block was imported by fork choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    /// The block's slot.
    pub slot: Slot,
    /// The block root.
    pub block: Root,
    /// Whether the block is optimistic (absent means false).
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// `event: finalized_checkpoint`: the finalized checkpoint was updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizedCheckpointEvent {
    /// The finalized block root.
    pub block: Root,
    /// The finalized state root.
    pub state: Root,
    /// The finalized epoch.
    pub epoch: Epoch,
    /// Whether the checkpoint is optimistic (absent means false).
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// `event: chain_reorg`: the node reorganised its chain.
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReorgEvent {
    /// The slot of the new head.
    pub slot: Slot,
    /// The number of blocks reorganised away.
    #[serde_as(as = "Quoted")]
    pub depth: u64,
    /// The old head block root.
    pub old_head_block: Root,
    /// The new head block root.
    pub new_head_block: Root,
    /// The old head state root.
    pub old_head_state: Root,
    /// The new head state root.
    pub new_head_state: Root,
    /// The epoch of the new head.
    pub epoch: Epoch,
    /// Whether the new head is optimistic (absent means false).
    #[serde(default)]
    pub execution_optimistic: bool,
}

/// A decoded event of the standard event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeaconEvent {
    /// `head`.
    Head(HeadEvent),
    /// `block`.
    Block(BlockEvent),
    /// `finalized_checkpoint`.
    FinalizedCheckpoint(FinalizedCheckpointEvent),
    /// `chain_reorg`.
    ChainReorg(ChainReorgEvent),
}

impl BeaconEvent {
    /// Decodes an SSE event from its `event:` name and `data:` payload.
    pub fn decode(event: &str, data: &str) -> Result<Self> {
        let topic: EventTopic = event.parse()?;
        let decode_err = |source| Error::Decode { what: format!("{topic} event"), source };
        Ok(match topic {
            EventTopic::Head => Self::Head(serde_json::from_str(data).map_err(decode_err)?),
            EventTopic::Block => Self::Block(serde_json::from_str(data).map_err(decode_err)?),
            EventTopic::FinalizedCheckpoint => {
                Self::FinalizedCheckpoint(serde_json::from_str(data).map_err(decode_err)?)
            }
            EventTopic::ChainReorg => {
                Self::ChainReorg(serde_json::from_str(data).map_err(decode_err)?)
            }
        })
    }

    /// The topic of this event.
    pub fn topic(&self) -> EventTopic {
        match self {
            Self::Head(_) => EventTopic::Head,
            Self::Block(_) => EventTopic::Block,
            Self::FinalizedCheckpoint(_) => EventTopic::FinalizedCheckpoint,
            Self::ChainReorg(_) => EventTopic::ChainReorg,
        }
    }

    /// The JSON `data:` payload of this event.
    pub fn data_json(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string keys).
        match self {
            Self::Head(e) => serde_json::to_string(e),
            Self::Block(e) => serde_json::to_string(e),
            Self::FinalizedCheckpoint(e) => serde_json::to_string(e),
            Self::ChainReorg(e) => serde_json::to_string(e),
        }
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_unknown_fields_and_missing_optimistic() {
        let data = r#"{"slot":"10","block":"0x9a2fefd2fdb57f74993c7780ea5b9030d2897b615b89f808011ca5aebed54eaf","new_field":[1,2]}"#;
        let BeaconEvent::Block(b) = BeaconEvent::decode("block", data).unwrap() else { panic!() };
        assert_eq!(b.slot, Slot(10));
        assert!(!b.execution_optimistic);
    }

    #[test]
    fn unknown_topic_and_bad_data_are_errors() {
        assert!(matches!(BeaconEvent::decode("weather", "{}"), Err(Error::UnknownTopic { .. })));
        assert!(matches!(BeaconEvent::decode("head", "{"), Err(Error::Decode { .. })));
    }

    #[test]
    fn round_trips_through_data_json() {
        let e = BeaconEvent::Block(BlockEvent {
            slot: Slot(3),
            block: Root::repeat_byte(7),
            execution_optimistic: false,
        });
        assert_eq!(BeaconEvent::decode("block", &e.data_json()).unwrap(), e);
    }
}
