//! What the store holds, table by table (`sidecar db stats`), and shrinking its file offline
//! (`sidecar db compact`).

use std::path::Path;

use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};
use serde::Serialize;

use super::{BALANCES, CHECKPOINTS, LEDGER, MESSAGES, META, ROUNDS, Store, error::db};
use super::{StoreError as Error, StoreResult as Result};

/// The size of one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableSize {
    /// The table's name.
    pub name: String,
    /// Entries in it.
    pub entries: u64,
    /// Bytes of keys and values stored.
    pub stored_bytes: u64,
    /// Bytes of the tree's own bookkeeping.
    pub metadata_bytes: u64,
    /// Bytes of its pages not used (what compaction can give back).
    pub fragmented_bytes: u64,
}

/// What a store holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// The database file's size on disk.
    pub file_bytes: u64,
    /// Each table, in a fixed order.
    pub tables: Vec<TableSize>,
}

impl Store {
    /// The size of every table and of the file.
    ///
    /// # Errors
    /// [`Error::Database`], or an I/O error reading the file's size.
    pub fn stats(&self) -> Result<StoreStats> {
        let tx = self.db.begin_read().map_err(db)?;
        let mut tables = Vec::new();
        macro_rules! size {
            ($def:expr) => {{
                let table = tx.open_table($def).map_err(db)?;
                let stats = table.stats().map_err(db)?;
                tables.push(TableSize {
                    name: $def.name().to_owned(),
                    entries: table.len().map_err(db)?,
                    stored_bytes: stats.stored_bytes(),
                    metadata_bytes: stats.metadata_bytes(),
                    fragmented_bytes: stats.fragmented_bytes(),
                });
            }};
        }
        size!(MESSAGES);
        size!(ROUNDS);
        size!(LEDGER);
        size!(BALANCES);
        size!(META);
        size!(CHECKPOINTS);
        let file_bytes = file_size(&self.path)?;
        Ok(StoreStats { file_bytes, tables })
    }

    /// Opens the existing store at `path` for an offline command: an error, never a new empty
    /// store, if there is none.
    ///
    /// # Errors
    /// [`Error::Io`] if no file is there; as [`Store::open`] otherwise.
    pub fn open_existing(path: &Path) -> Result<Self> {
        if !path.is_file() {
            let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no store there");
            return Err(Error::io("opening", path, missing));
        }
        Self::open(path)
    }

    /// Shrinks the store at `path` (offline: no node may have it open): rewrites its pages so
    /// that freed space goes back to the file system. Returns the file's size before and after.
    ///
    /// # Errors
    /// As [`Store::open_existing`]; [`Error::Database`] if compaction fails (the store is left
    /// as it was: redb compacts within transactions).
    pub fn compact(path: &Path) -> Result<(u64, u64)> {
        let before = file_size(path)?;
        let mut store = Self::open_existing(path)?;
        // Compacting again until nothing moves: each pass can free pages the next one reuses.
        while store.db.compact().map_err(db)? {}
        drop(store);
        Ok((before, file_size(path)?))
    }
}

fn file_size(path: &Path) -> Result<u64> {
    std::fs::metadata(path).map(|m| m.len()).map_err(|e| Error::io("reading the size of", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreBatch;
    use phase_engine::Root;

    #[test]
    fn stats_count_entries_and_compaction_shrinks_after_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        {
            let store = Store::open(&path).unwrap();
            for round in 0..20u8 {
                let mut batch = StoreBatch::new();
                for id in 0..20u8 {
                    batch.put_message(Root::repeat_byte(round), [id; 32], &[round; 4096]);
                }
                store.commit(batch).unwrap();
            }
            let stats = store.stats().unwrap();
            let messages = stats.tables.iter().find(|t| t.name == "messages").unwrap();
            assert_eq!(messages.entries, 400);
            assert!(messages.stored_bytes >= 400 * 4096);
            assert!(stats.file_bytes >= messages.stored_bytes);
            for round in 0..20u8 {
                let mut batch = StoreBatch::new();
                batch.delete_round(Root::repeat_byte(round));
                store.commit(batch).unwrap();
            }
            assert_eq!(store.stats().unwrap().tables[0].entries, 0);
        }
        let (before, after) = Store::compact(&path).unwrap();
        assert!(after < before, "{before} -> {after}");
        // Still a valid store.
        assert_eq!(Store::open(&path).unwrap().stats().unwrap().tables[0].entries, 0);
    }

    #[test]
    fn offline_commands_never_create_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("node.redb");
        assert!(matches!(Store::open_existing(&path), Err(Error::Io { .. })));
        assert!(Store::compact(&path).is_err());
        assert!(!path.exists());
    }
}
