//! Durable storage in an embedded transactional database ([`redb`]).
//!
//! The store keeps what the node must never lose: accepted protocol messages, round state
//! snapshots, ledger entries, prover balances and the node's latest checkpoint. Values are opaque bytes (SSZ, chosen by the
//! protocol core); the store only knows their keys. Every write is one redb write transaction
//! committed with [`redb::Durability::Immediate`]: when a method returns `Ok`, the data is on
//! disk and survives a crash or `kill -9` ([`Store::commit_deferred`] is the one exception, for
//! writes that can be derived again: durable with the next durable commit). Several writes that must land together (a settlement's
//! ledger entries and balance changes) go in one [`StoreBatch`].
//!
//! The calls block on `fsync`; async code runs them in `tokio::task::spawn_blocking`.

use std::path::{Path, PathBuf};

use redb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use phase_engine::{Amount, ProverIndex, Root};

mod disk;
mod error;
mod stats;

pub(crate) use disk::free_bytes;
pub use error::{StoreError, StoreResult};
use error::{StoreError as Error, StoreResult as Result, db};
pub use stats::{StoreStats, TableSize};

/// The schema version this build writes; opening a database with another version fails.
pub const SCHEMA_VERSION: u32 = 1;

/// A message's identifier inside its round (for example its SSZ hash tree root).
pub type MessageKey = [u8; 32];

/// Accepted messages: (round key, message id) -> SSZ bytes.
const MESSAGES: TableDefinition<'_, ([u8; 32], [u8; 32]), &[u8]> = TableDefinition::new("messages");
/// Round state snapshots: round key -> bytes.
const ROUNDS: TableDefinition<'_, [u8; 32], &[u8]> = TableDefinition::new("rounds");
/// Ledger entries: (block root, entry index) -> bytes.
const LEDGER: TableDefinition<'_, ([u8; 32], u64), &[u8]> = TableDefinition::new("ledger");
/// Prover balances: prover index -> amount.
const BALANCES: TableDefinition<'_, u64, i64> = TableDefinition::new("balances");
/// Metadata: key -> number.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The node's checkpoints: name -> bytes (one, [`CHECKPOINT_LATEST`]). A table of its own, so a
/// store written before checkpoints opens as one without a checkpoint.
const CHECKPOINTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("checkpoints");
const META_SCHEMA: &str = "schema_version";
const CHECKPOINT_LATEST: &str = "latest";

/// One write in a [`StoreBatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Message { round: Root, id: MessageKey, bytes: Vec<u8> },
    RoundState { round: Root, bytes: Vec<u8> },
    DeleteRound { round: Root },
    Ledger { block: Root, index: u64, bytes: Vec<u8> },
    AddBalance { prover: ProverIndex, delta: Amount },
    SetBalance { prover: ProverIndex, amount: Amount },
    DeleteMessages { round: Root, from: MessageKey, to: MessageKey },
    DeleteMessage { round: Root, id: MessageKey },
    Checkpoint { bytes: Vec<u8> },
    Meta { key: &'static str, value: u64 },
}

/// Writes that commit together, atomically and durably, with [`Store::commit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use = "a batch does nothing until it is committed"]
pub struct StoreBatch {
    ops: Vec<Op>,
}

impl StoreBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an accepted message (replaces one with the same key).
    pub fn put_message(&mut self, round: Root, id: MessageKey, bytes: &[u8]) -> &mut Self {
        self.ops.push(Op::Message { round, id, bytes: bytes.to_vec() });
        self
    }

    /// Stores the snapshot of a round's state (replaces the previous one).
    pub fn put_round_state(&mut self, round: Root, bytes: &[u8]) -> &mut Self {
        self.ops.push(Op::RoundState { round, bytes: bytes.to_vec() });
        self
    }

    /// Deletes a round's state and all its messages (for example an orphaned block's round).
    pub fn delete_round(&mut self, round: Root) -> &mut Self {
        self.ops.push(Op::DeleteRound { round });
        self
    }

    /// Stores ledger entry `index` of `block`.
    pub fn put_ledger_entry(&mut self, block: Root, index: u64, bytes: &[u8]) -> &mut Self {
        self.ops.push(Op::Ledger { block, index, bytes: bytes.to_vec() });
        self
    }

    /// Adds `delta` (negative for a penalty) to a prover's balance; overflow fails the commit.
    pub fn add_balance(&mut self, prover: ProverIndex, delta: Amount) -> &mut Self {
        self.ops.push(Op::AddBalance { prover, delta });
        self
    }

    /// Sets a prover's balance.
    pub fn set_balance(&mut self, prover: ProverIndex, amount: Amount) -> &mut Self {
        self.ops.push(Op::SetBalance { prover, amount });
        self
    }

    /// Deletes the messages of `round` with ids in `from..to` (by key range: only those keys
    /// are visited, never the whole table).
    pub fn delete_messages(&mut self, round: Root, from: MessageKey, to: MessageKey) -> &mut Self {
        self.ops.push(Op::DeleteMessages { round, from, to });
        self
    }

    /// Deletes one message.
    pub fn delete_message(&mut self, round: Root, id: MessageKey) -> &mut Self {
        self.ops.push(Op::DeleteMessage { round, id });
        self
    }

    /// Stores the node's checkpoint (replaces the previous one).
    pub fn put_checkpoint(&mut self, bytes: &[u8]) -> &mut Self {
        self.ops.push(Op::Checkpoint { bytes: bytes.to_vec() });
        self
    }

    /// Sets a metadata number.
    pub fn put_meta(&mut self, key: &'static str, value: u64) -> &mut Self {
        self.ops.push(Op::Meta { key, value });
        self
    }

    /// Number of writes in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The node's database.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// The page cache [`Store::open`] gives redb: 8 MiB. redb's own default (1 GiB) lets the
    /// cache grow with every stored proof, so a node's resident memory would grow by megabytes
    /// per block; the node's reads are few and recent, and 8 MiB holds the B-tree's upper
    /// pages and the latest writes.
    pub const DEFAULT_CACHE_BYTES: usize = 8 << 20;

    /// Opens the database at `path`, creating it (and its tables) if needed, with a page cache
    /// of [`Store::DEFAULT_CACHE_BYTES`].
    ///
    /// # Errors
    /// [`Error::Database`] if it cannot be opened (including: another process has it open),
    /// [`Error::SchemaVersion`] if it was written by an incompatible build.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, Self::DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with a page cache of at most `cache_bytes` (memory the database may keep
    /// for reads and writes; more makes repeated reads of old data faster, not writes safer).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        let database = Builder::new().set_cache_size(cache_bytes).create(path).map_err(db)?;
        let store = Self { db: database, path: path.to_owned() };
        let tx = store.begin_write()?;
        {
            tx.open_table(MESSAGES).map_err(db)?;
            tx.open_table(ROUNDS).map_err(db)?;
            tx.open_table(LEDGER).map_err(db)?;
            tx.open_table(BALANCES).map_err(db)?;
            tx.open_table(CHECKPOINTS).map_err(db)?;
            let mut meta = tx.open_table(META).map_err(db)?;
            let found = meta.get(META_SCHEMA).map_err(db)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(META_SCHEMA, u64::from(SCHEMA_VERSION)).map_err(db)?;
                }
                Some(v) if v == u64::from(SCHEMA_VERSION) => {}
                Some(v) => {
                    return Err(Error::SchemaVersion {
                        found: u32::try_from(v).unwrap_or(u32::MAX),
                        expected: SCHEMA_VERSION,
                    });
                }
            }
        }
        tx.commit().map_err(db)?;
        Ok(store)
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version recorded in the database.
    ///
    /// # Errors
    /// [`Error::Database`] or [`Error::CorruptValue`] if it is missing.
    pub fn schema_version(&self) -> Result<u32> {
        let tx = self.db.begin_read().map_err(db)?;
        let meta = tx.open_table(META).map_err(db)?;
        let v = meta.get(META_SCHEMA).map_err(db)?.map(|v| v.value());
        v.and_then(|v| u32::try_from(v).ok())
            .ok_or(Error::CorruptValue { table: "meta", reason: "no schema version".into() })
    }

    /// Commits every write of `batch` in one durable transaction: all or nothing.
    ///
    /// # Errors
    /// [`Error::Database`]; [`Error::CorruptValue`] if a balance would overflow (nothing of
    /// the batch is written then).
    pub fn commit(&self, batch: StoreBatch) -> Result<()> {
        self.commit_with(batch, Durability::Immediate).map(drop)
    }

    /// [`Store::commit`], returning the bytes of the values its deletions removed (what
    /// pruning gave back).
    ///
    /// # Errors
    /// As [`Store::commit`].
    pub fn commit_counting_removed(&self, batch: StoreBatch) -> Result<u64> {
        self.commit_with(batch, Durability::Immediate)
    }

    /// Commits every write of `batch` in one transaction, all or nothing, without waiting for
    /// the disk: it is visible to reads at once and made durable by the next [`Store::commit`]
    /// (of any batch). A crash before then loses it, with every deferred commit since the last
    /// durable one: what survives is always a prefix of the commits, never part of one. For
    /// writes that can be derived again (verdicts, which are deterministic; messages peers
    /// serve again).
    ///
    /// # Errors
    /// As [`Store::commit`].
    pub fn commit_deferred(&self, batch: StoreBatch) -> Result<()> {
        self.commit_with(batch, Durability::None).map(drop)
    }

    fn commit_with(&self, batch: StoreBatch, durability: Durability) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut removed = 0u64;
        let tx = self.begin_write_with(durability)?;
        {
            let mut messages = tx.open_table(MESSAGES).map_err(db)?;
            let mut rounds = tx.open_table(ROUNDS).map_err(db)?;
            let mut ledger = tx.open_table(LEDGER).map_err(db)?;
            let mut balances = tx.open_table(BALANCES).map_err(db)?;
            let mut checkpoints = tx.open_table(CHECKPOINTS).map_err(db)?;
            let mut meta = tx.open_table(META).map_err(db)?;
            for op in batch.ops {
                match op {
                    Op::Message { round, id, bytes } => {
                        messages.insert((round.0, id), bytes.as_slice()).map_err(db)?;
                    }
                    Op::RoundState { round, bytes } => {
                        rounds.insert(round.0, bytes.as_slice()).map_err(db)?;
                    }
                    Op::DeleteRound { round } => {
                        rounds.remove(round.0).map_err(db)?;
                        messages
                            .retain_in((round.0, [0u8; 32])..=(round.0, [0xffu8; 32]), |_, _| false)
                            .map_err(db)?;
                    }
                    Op::Ledger { block, index, bytes } => {
                        ledger.insert((block.0, index), bytes.as_slice()).map_err(db)?;
                    }
                    Op::AddBalance { prover, delta } => {
                        let old = balances.get(prover.0).map_err(db)?.map_or(0, |v| v.value());
                        let new = old.checked_add(delta.0).ok_or_else(|| Error::CorruptValue {
                            table: "balances",
                            reason: format!(
                                "balance of prover {prover} overflows: {old} + {delta}"
                            ),
                        })?;
                        balances.insert(prover.0, new).map_err(db)?;
                    }
                    Op::SetBalance { prover, amount } => {
                        balances.insert(prover.0, amount.0).map_err(db)?;
                    }
                    Op::DeleteMessages { round, from, to } => {
                        messages
                            .retain_in((round.0, from)..(round.0, to), |_, v| {
                                removed = removed.saturating_add(v.len() as u64);
                                false
                            })
                            .map_err(db)?;
                    }
                    Op::DeleteMessage { round, id } => {
                        if let Some(v) = messages.remove((round.0, id)).map_err(db)? {
                            removed = removed.saturating_add(v.value().len() as u64);
                        }
                    }
                    Op::Checkpoint { bytes } => {
                        checkpoints.insert(CHECKPOINT_LATEST, bytes.as_slice()).map_err(db)?;
                    }
                    Op::Meta { key, value } => {
                        meta.insert(key, value).map_err(db)?;
                    }
                }
            }
        }
        tx.commit().map_err(db)?;
        Ok(removed)
    }

    /// The node's latest checkpoint, if one was stored.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn checkpoint(&self) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(CHECKPOINTS).map_err(db)?;
        Ok(table.get(CHECKPOINT_LATEST).map_err(db)?.map(|v| v.value().to_vec()))
    }

    /// A metadata number, if set.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn meta(&self, key: &str) -> Result<Option<u64>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(META).map_err(db)?;
        Ok(table.get(key).map_err(db)?.map(|v| v.value()))
    }

    /// The messages of `round` with ids in `from..=to`, ordered by id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn messages_in(
        &self,
        round: Root,
        from: MessageKey,
        to: MessageKey,
    ) -> Result<Vec<(MessageKey, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(MESSAGES).map_err(db)?;
        let range = table.range((round.0, from)..=(round.0, to)).map_err(db)?;
        range
            .map(|entry| {
                let (k, v) = entry.map_err(db)?;
                Ok((k.value().1, v.value().to_vec()))
            })
            .collect()
    }

    /// The messages of `round` with ids from `from` on, ordered by id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn messages_from(
        &self,
        round: Root,
        from: MessageKey,
    ) -> Result<Vec<(MessageKey, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(MESSAGES).map_err(db)?;
        let range = table.range((round.0, from)..=(round.0, [0xffu8; 32])).map_err(db)?;
        range
            .map(|entry| {
                let (k, v) = entry.map_err(db)?;
                Ok((k.value().1, v.value().to_vec()))
            })
            .collect()
    }

    /// Stores an accepted message, durably.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn put_message(&self, round: Root, id: MessageKey, bytes: &[u8]) -> Result<()> {
        let mut batch = StoreBatch::new();
        batch.put_message(round, id, bytes);
        self.commit(batch)
    }

    /// Stores a round state snapshot, durably.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn put_round_state(&self, round: Root, bytes: &[u8]) -> Result<()> {
        let mut batch = StoreBatch::new();
        batch.put_round_state(round, bytes);
        self.commit(batch)
    }

    /// Stores a ledger entry, durably.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn put_ledger_entry(&self, block: Root, index: u64, bytes: &[u8]) -> Result<()> {
        let mut batch = StoreBatch::new();
        batch.put_ledger_entry(block, index, bytes);
        self.commit(batch)
    }

    /// Deletes a round's state and messages, durably.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn delete_round(&self, round: Root) -> Result<()> {
        let mut batch = StoreBatch::new();
        batch.delete_round(round);
        self.commit(batch)
    }

    /// One message.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn message(&self, round: Root, id: MessageKey) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(MESSAGES).map_err(db)?;
        Ok(table.get((round.0, id)).map_err(db)?.map(|v| v.value().to_vec()))
    }

    /// All messages of a round, ordered by id.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn messages(&self, round: Root) -> Result<Vec<(MessageKey, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(MESSAGES).map_err(db)?;
        let range = table.range((round.0, [0u8; 32])..=(round.0, [0xffu8; 32])).map_err(db)?;
        range
            .map(|entry| {
                let (k, v) = entry.map_err(db)?;
                Ok((k.value().1, v.value().to_vec()))
            })
            .collect()
    }

    /// A round's latest state snapshot.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn round_state(&self, round: Root) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(ROUNDS).map_err(db)?;
        Ok(table.get(round.0).map_err(db)?.map(|v| v.value().to_vec()))
    }

    /// Every stored round state (what a restart resumes), ordered by round key.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn round_states(&self) -> Result<Vec<(Root, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(ROUNDS).map_err(db)?;
        table
            .iter()
            .map_err(db)?
            .map(|entry| {
                let (k, v) = entry.map_err(db)?;
                Ok((Root::from(k.value()), v.value().to_vec()))
            })
            .collect()
    }

    /// The ledger entries of a block, ordered by index.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn ledger_entries(&self, block: Root) -> Result<Vec<(u64, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(LEDGER).map_err(db)?;
        let range = table.range((block.0, 0u64)..=(block.0, u64::MAX)).map_err(db)?;
        range
            .map(|entry| {
                let (k, v) = entry.map_err(db)?;
                Ok((k.value().1, v.value().to_vec()))
            })
            .collect()
    }

    /// A prover's balance (zero if it has none).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn balance(&self, prover: ProverIndex) -> Result<Amount> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(BALANCES).map_err(db)?;
        Ok(Amount(table.get(prover.0).map_err(db)?.map_or(0, |v| v.value())))
    }

    /// Every prover balance, ordered by prover index.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub fn balances(&self) -> Result<Vec<(ProverIndex, Amount)>> {
        let tx = self.db.begin_read().map_err(db)?;
        let table = tx.open_table(BALANCES).map_err(db)?;
        table
            .iter()
            .map_err(db)?
            .map(|entry| {
                let (k, v) = entry.map_err(db)?;
                Ok((ProverIndex(k.value()), Amount(v.value())))
            })
            .collect()
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        self.begin_write_with(Durability::Immediate)
    }

    fn begin_write_with(&self, durability: Durability) -> Result<redb::WriteTransaction> {
        let mut tx = self.db.begin_write().map_err(db)?;
        tx.set_durability(durability).map_err(db)?;
        Ok(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(b: u8) -> Root {
        Root::repeat_byte(b)
    }

    #[test]
    fn a_deferred_commit_is_read_at_once_and_kept_with_the_next_durable_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.redb");
        {
            let store = Store::open(&path).unwrap();
            let mut deferred = StoreBatch::new();
            deferred.put_message(root(1), [1; 32], b"deferred");
            store.commit_deferred(deferred).unwrap();
            assert_eq!(store.messages(root(1)).unwrap(), vec![([1; 32], b"deferred".to_vec())]);
            let mut durable = StoreBatch::new();
            durable.put_message(root(1), [2; 32], b"durable");
            store.commit(durable).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let kept: Vec<Vec<u8>> =
            store.messages(root(1)).unwrap().into_iter().map(|(_, v)| v).collect();
        assert_eq!(kept, vec![b"deferred".to_vec(), b"durable".to_vec()]);
    }

    #[test]
    fn write_reopen_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db").join("sidecar.redb");
        {
            let store = Store::open(&path).unwrap();
            store.put_message(root(1), [2; 32], b"msg-a").unwrap();
            store.put_message(root(1), [1; 32], b"msg-b").unwrap();
            store.put_message(root(9), [1; 32], b"other round").unwrap();
            store.put_round_state(root(1), b"state-1").unwrap();
            store.put_round_state(root(1), b"state-2").unwrap();
            store.put_ledger_entry(root(1), 1, b"entry-1").unwrap();
            store.put_ledger_entry(root(1), 0, b"entry-0").unwrap();
            let mut batch = StoreBatch::new();
            batch.add_balance(ProverIndex(7), Amount(100)).add_balance(ProverIndex(7), Amount(-30));
            store.commit(batch).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(
            store.messages(root(1)).unwrap(),
            vec![([1; 32], b"msg-b".to_vec()), ([2; 32], b"msg-a".to_vec())]
        );
        assert_eq!(store.message(root(9), [1; 32]).unwrap().unwrap(), b"other round");
        assert_eq!(store.message(root(9), [2; 32]).unwrap(), None);
        assert_eq!(store.round_state(root(1)).unwrap().unwrap(), b"state-2");
        assert_eq!(store.round_states().unwrap(), vec![(root(1), b"state-2".to_vec())]);
        assert_eq!(
            store.ledger_entries(root(1)).unwrap(),
            vec![(0, b"entry-0".to_vec()), (1, b"entry-1".to_vec())]
        );
        assert_eq!(store.balance(ProverIndex(7)).unwrap(), Amount(70));
        assert_eq!(store.balance(ProverIndex(8)).unwrap(), Amount(0));
        assert_eq!(store.balances().unwrap(), vec![(ProverIndex(7), Amount(70))]);
    }

    #[test]
    fn a_small_cache_keeps_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.redb");
        let big = vec![7u8; 256 << 10];
        {
            // A cache smaller than what is written: the data still lands on disk, whole.
            let store = Store::open_with_cache(&path, 64 << 10).unwrap();
            for i in 0..8u8 {
                store.put_message(root(1), [i; 32], &big).unwrap();
            }
        }
        let store = Store::open_with_cache(&path, 64 << 10).unwrap();
        let messages = store.messages(root(1)).unwrap();
        assert_eq!(messages.len(), 8);
        assert!(messages.iter().all(|(_, bytes)| *bytes == big));
    }

    #[test]
    fn delete_round_removes_only_that_round() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut batch = StoreBatch::new();
        batch
            .put_round_state(root(1), b"a")
            .put_round_state(root(2), b"b")
            .put_message(root(1), [0xff; 32], b"x")
            .put_message(root(1), [0; 32], b"y")
            .put_message(root(2), [0; 32], b"z");
        store.commit(batch).unwrap();
        store.delete_round(root(1)).unwrap();
        assert!(store.messages(root(1)).unwrap().is_empty());
        assert_eq!(store.round_state(root(1)).unwrap(), None);
        assert_eq!(store.messages(root(2)).unwrap().len(), 1);
        assert_eq!(store.round_states().unwrap().len(), 1);
    }

    #[test]
    fn a_failing_batch_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        store
            .commit({
                let mut b = StoreBatch::new();
                b.set_balance(ProverIndex(1), Amount(i64::MAX));
                b
            })
            .unwrap();
        let mut batch = StoreBatch::new();
        batch.put_ledger_entry(root(3), 0, b"e").add_balance(ProverIndex(1), Amount(1));
        assert!(matches!(store.commit(batch), Err(Error::CorruptValue { table: "balances", .. })));
        assert!(store.ledger_entries(root(3)).unwrap().is_empty());
        assert_eq!(store.balance(ProverIndex(1)).unwrap(), Amount(i64::MAX));
    }

    #[test]
    fn other_schema_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = Store::open(&path).unwrap();
            let tx = store.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert(META_SCHEMA, 99).unwrap();
            tx.commit().unwrap();
        }
        assert!(matches!(
            Store::open(&path),
            Err(Error::SchemaVersion { found: 99, expected: SCHEMA_VERSION })
        ));
    }
}
