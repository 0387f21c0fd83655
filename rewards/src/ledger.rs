//! Ledgers: the entries that settlement produces, their canonical order, SSZ encoding and
//! settlement root, and the balances they fold into.

use std::collections::BTreeMap;

use phase_engine::{
    Amount, Attempt, Phase, ProverIndex, Root, Slot, SubBlockIndex, ValidatorIndex, hash_pair,
    merkleize, mix_in_length,
};
use serde::{Deserialize, Serialize};
use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::{VariableList, typenum};
use tree_hash::TreeHash;
use tree_hash_derive::TreeHash;

use crate::error::{Error, Result};
use crate::table::Rule;

/// Who an entry pays or charges.
///
/// JSON is `{"kind": "prover", "index": "3"}`; compact (non-human-readable) formats such as
/// the node's checkpoints, which cannot read that form, hold the variant index and the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Account {
    /// A prover of the prover registry.
    Prover(ProverIndex),
    /// A beacon chain validator (the proposer that included a message).
    Validator(ValidatorIndex),
}

/// The serde forms of [`Account`]: `Tagged` (JSON: adjacently tagged) and `Compact`
/// (externally tagged).
mod account_serde {
    use phase_engine::{ProverIndex, ValidatorIndex};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Account;

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Account", rename_all = "snake_case", tag = "kind", content = "index")]
    enum Tagged {
        Prover(ProverIndex),
        Validator(ValidatorIndex),
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Account")]
    enum Compact {
        Prover(ProverIndex),
        Validator(ValidatorIndex),
    }

    impl Serialize for Account {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match (s.is_human_readable(), *self) {
                (true, Account::Prover(p)) => Tagged::Prover(p).serialize(s),
                (true, Account::Validator(v)) => Tagged::Validator(v).serialize(s),
                (false, Account::Prover(p)) => Compact::Prover(p).serialize(s),
                (false, Account::Validator(v)) => Compact::Validator(v).serialize(s),
            }
        }
    }

    impl<'de> Deserialize<'de> for Account {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(if d.is_human_readable() {
                match Tagged::deserialize(d)? {
                    Tagged::Prover(p) => Account::Prover(p),
                    Tagged::Validator(v) => Account::Validator(v),
                }
            } else {
                match Compact::deserialize(d)? {
                    Compact::Prover(p) => Account::Prover(p),
                    Compact::Validator(v) => Account::Validator(v),
                }
            })
        }
    }
}

impl Account {
    /// SSZ kind byte: 0 for a prover, 1 for a validator.
    pub const fn kind(self) -> u8 {
        match self {
            Account::Prover(_) => 0,
            Account::Validator(_) => 1,
        }
    }

    /// The prover or validator index.
    pub const fn index(self) -> u64 {
        match self {
            Account::Prover(p) => p.0,
            Account::Validator(v) => v.0,
        }
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Prover(p) => write!(f, "prover {p}"),
            Account::Validator(v) => write!(f, "validator {v}"),
        }
    }
}

/// One line of a ledger: `amount` to `account` by `rule`, in `phase` of round
/// (`sub_block`, `attempt`). Block-level rules ([`Rule::is_block_level`], the AggProof rules) carry
/// `sub_block = 0` and `attempt = 0`.
///
/// A ledger holds at most one entry per (`sub_block`, `attempt`, `phase`, `rule`, `account`): a
/// rule that applies several times to the same account in the same round and phase is summed.
/// Entries with amount 0 are omitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The sub-block of the round.
    pub sub_block: SubBlockIndex,
    /// The attempt of the round.
    pub attempt: Attempt,
    /// The phase the rule belongs to.
    pub phase: Phase,
    /// The rule.
    pub rule: Rule,
    /// Who is paid (or charged, when `amount` is negative).
    pub account: Account,
    /// The amount.
    pub amount: Amount,
}

/// The SSZ container of a [`LedgerEntry`] (the form hashed into the settlement root):
///
/// ```text
/// class LedgerEntry(Container):
///     sub_block: uint32
///     attempt: uint32
///     phase: uint8          # 1..=5 for T1..T5
///     rule: uint8           # Rule::code
///     account_kind: uint8   # 0 prover, 1 validator
///     account_index: uint64
///     amount: uint64        # two's complement of the signed amount
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, TreeHash)]
struct LedgerEntrySsz {
    sub_block: u32,
    attempt: u32,
    phase: u8,
    rule: u8,
    account_kind: u8,
    account_index: u64,
    amount: u64,
}

const fn phase_code(phase: Phase) -> u8 {
    match phase {
        Phase::T1 => 1,
        Phase::T2 => 2,
        Phase::T3 => 3,
        Phase::T4 => 4,
        Phase::T5 => 5,
    }
}

fn phase_from_code(code: u8) -> Option<Phase> {
    Phase::ALL.into_iter().find(|&p| phase_code(p) == code)
}

impl From<&LedgerEntry> for LedgerEntrySsz {
    fn from(e: &LedgerEntry) -> Self {
        Self {
            sub_block: e.sub_block.0,
            attempt: e.attempt.0,
            phase: phase_code(e.phase),
            rule: e.rule.code(),
            account_kind: e.account.kind(),
            account_index: e.account.index(),
            amount: e.amount.0.cast_unsigned(),
        }
    }
}

impl TryFrom<LedgerEntrySsz> for LedgerEntry {
    type Error = Error;

    fn try_from(e: LedgerEntrySsz) -> Result<Self> {
        let bad = |reason: String| Error::Ssz { reason };
        Ok(Self {
            sub_block: SubBlockIndex(e.sub_block),
            attempt: Attempt(e.attempt),
            phase: phase_from_code(e.phase).ok_or_else(|| bad(format!("phase {}", e.phase)))?,
            rule: Rule::from_code(e.rule).ok_or_else(|| bad(format!("rule {}", e.rule)))?,
            account: match e.account_kind {
                0 => Account::Prover(ProverIndex(e.account_index)),
                1 => Account::Validator(ValidatorIndex(e.account_index)),
                k => return Err(bad(format!("account kind {k}"))),
            },
            amount: Amount(e.amount.cast_signed()),
        })
    }
}

impl LedgerEntry {
    /// The settlement-root leaf of this entry: `hash_tree_root` of its SSZ container.
    pub fn tree_hash_root(&self) -> Root {
        LedgerEntrySsz::from(self).tree_hash_root()
    }
}

/// Maximum number of entries of one block's ledger (`MAX_LEDGER_ENTRIES = 2**20`).
pub const MAX_LEDGER_ENTRIES: usize = 1 << 20;
type MaxEntries = typenum::U1048576;
/// `log2(MaxEntries)`: depth of the entry list's tree.
const ENTRIES_DEPTH: usize = 20;

/// A basic SSZ value as a leaf: little-endian bytes, zero-padded to 32.
fn leaf(le: &[u8]) -> [u8; 32] {
    let mut c = [0u8; 32];
    c.iter_mut().zip(le).for_each(|(d, s)| *d = *s);
    c
}

fn u64_leaf(v: u64) -> [u8; 32] {
    leaf(&v.to_le_bytes())
}

/// `hash_tree_root` of [`LedgerEntrySsz`] (eight leaves, the last one padding), remembering the
/// subtrees the previous entry shared: `(sub_block, attempt, phase, rule)` and the amount.
/// `(sub_block, attempt, phase, rule)` of an entry: the fields of its left subtree.
type EntryPrefix = (u32, u32, u8, u8);

#[derive(Default)]
struct EntryHasher {
    prefix: Option<(EntryPrefix, [u8; 32])>,
    amount: Option<(u64, [u8; 32])>,
}

impl EntryHasher {
    fn root(&mut self, e: &LedgerEntrySsz) -> [u8; 32] {
        let key = (e.sub_block, e.attempt, e.phase, e.rule);
        let prefix = match self.prefix {
            Some((k, h)) if k == key => h,
            _ => {
                let h = hash_pair(
                    &hash_pair(&leaf(&e.sub_block.to_le_bytes()), &leaf(&e.attempt.to_le_bytes())),
                    &hash_pair(&leaf(&[e.phase]), &leaf(&[e.rule])),
                );
                self.prefix = Some((key, h));
                h
            }
        };
        let amount = match self.amount {
            Some((a, h)) if a == e.amount => h,
            _ => {
                let h = hash_pair(&u64_leaf(e.amount), &[0u8; 32]);
                self.amount = Some((e.amount, h));
                h
            }
        };
        let account = hash_pair(&leaf(&[e.account_kind]), &u64_leaf(e.account_index));
        hash_pair(&prefix, &hash_pair(&account, &amount))
    }
}

/// The SSZ container of a [`Ledger`]:
///
/// ```text
/// class Ledger(Container):
///     block_root: Root
///     slot: uint64
///     entries: List[LedgerEntry, MAX_LEDGER_ENTRIES]
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TreeHash)]
struct LedgerSsz {
    block_root: Root,
    slot: u64,
    entries: VariableList<LedgerEntrySsz, MaxEntries>,
}

/// The settlement of one block: every entry, in canonical order (ascending by sub-block,
/// attempt, phase, rule, account), whatever the order the messages arrived in.
///
/// JSON: `{"block_root", "slot", "entries": [...]}`; deserialising checks the canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawLedger")]
pub struct Ledger {
    /// Root of the settled block.
    pub block_root: Root,
    /// Its slot.
    pub slot: Slot,
    entries: Vec<LedgerEntry>,
}

impl Ledger {
    /// Builds a ledger from entries in any order: sorts them canonically, merges entries with the
    /// same key (checked sum) and drops zero amounts.
    pub fn new(block_root: Root, slot: Slot, mut entries: Vec<LedgerEntry>) -> Result<Self> {
        // A stable sort keeps entries of equal key in input order, so each key's checked sum
        // adds the same amounts in the same order (and overflows at the same step) as summing
        // the entries one by one as they come. Input that is already sorted (what `settle`
        // produces) costs one pass.
        if !entries.is_sorted_by_key(entry_key) {
            entries.sort_by_key(entry_key);
        }
        let mut overflow = false;
        entries.dedup_by(|next, kept| {
            if entry_key(next) != entry_key(kept) {
                return false;
            }
            match kept.amount.0.checked_add(next.amount.0) {
                Some(sum) => kept.amount.0 = sum,
                None => overflow = true,
            }
            true
        });
        if overflow {
            return Err(Error::Overflow { context: "entry sum" });
        }
        entries.retain(|e| e.amount.0 != 0);
        if entries.len() > MAX_LEDGER_ENTRIES {
            return Err(Error::LedgerTooLong { len: entries.len(), max: MAX_LEDGER_ENTRIES });
        }
        Ok(Self { block_root, slot, entries })
    }

    /// The entries, in canonical order.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// `true` if nothing is paid or charged.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sum of all entries (rewards minus penalties issued for the block).
    pub fn total(&self) -> Result<Amount> {
        sum(self.entries.iter().map(|e| e.amount))
    }

    /// Sum of the entries of one account.
    pub fn net(&self, account: Account) -> Result<Amount> {
        sum(self.entries.iter().filter(|e| e.account == account).map(|e| e.amount))
    }

    /// Sum of the entries of one rule.
    pub fn rule_total(&self, rule: Rule) -> Result<Amount> {
        sum(self.entries.iter().filter(|e| e.rule == rule).map(|e| e.amount))
    }

    fn to_ssz_container(&self) -> LedgerSsz {
        let entries: Vec<LedgerEntrySsz> = self.entries.iter().map(LedgerEntrySsz::from).collect();
        LedgerSsz {
            block_root: self.block_root,
            slot: self.slot.0,
            // `new` bounds the length, so the conversion cannot fail.
            entries: VariableList::new(entries).unwrap_or_default(),
        }
    }

    /// The settlement root: `hash_tree_root` of the SSZ `Ledger` container. Two nodes that saw
    /// the same outcome compute the same root.
    ///
    /// Computed with `phase_engine`'s merkleization primitives rather than the derived
    /// `TreeHash` (the same root, checked by the tests against it): the entries are in canonical
    /// order, so neighbours share their `(sub_block, attempt)` and `(phase, rule)` subtrees and
    /// often their amount, and those nodes are hashed once per run instead of once per entry.
    pub fn settlement_root(&self) -> Root {
        let mut hasher = EntryHasher::default();
        let roots: Vec<[u8; 32]> =
            self.entries.iter().map(|e| hasher.root(&LedgerEntrySsz::from(e))).collect();
        let entries = mix_in_length(&merkleize(&roots, ENTRIES_DEPTH), roots.len());
        Root::from(hash_pair(
            &hash_pair(&self.block_root.0, &u64_leaf(self.slot.0)),
            &hash_pair(&entries, &[0u8; 32]),
        ))
    }

    /// The settlement root through the derived `TreeHash` of the SSZ container (the reference
    /// [`Ledger::settlement_root`] is tested against).
    #[cfg(test)]
    fn settlement_root_reference(&self) -> Root {
        self.to_ssz_container().tree_hash_root()
    }

    /// SSZ encoding of the `Ledger` container.
    pub fn as_ssz_bytes(&self) -> Vec<u8> {
        self.to_ssz_container().as_ssz_bytes()
    }

    /// Decodes SSZ bytes of a `Ledger` container. The entries must be in canonical order, without
    /// duplicate keys or zero amounts.
    pub fn from_ssz_bytes(bytes: &[u8]) -> Result<Self> {
        let c = LedgerSsz::from_ssz_bytes(bytes)
            .map_err(|e| Error::Ssz { reason: format!("{e:?}") })?;
        let entries =
            c.entries.iter().map(|e| LedgerEntry::try_from(*e)).collect::<Result<Vec<_>>>()?;
        check_canonical(&entries)?;
        Ok(Self { block_root: c.block_root, slot: Slot(c.slot), entries })
    }
}

/// The serde form of a [`Ledger`], checked on the way in.
#[derive(Deserialize)]
struct RawLedger {
    block_root: Root,
    slot: Slot,
    entries: Vec<LedgerEntry>,
}

impl TryFrom<RawLedger> for Ledger {
    type Error = Error;

    fn try_from(raw: RawLedger) -> Result<Self> {
        check_canonical(&raw.entries)?;
        Ok(Self { block_root: raw.block_root, slot: raw.slot, entries: raw.entries })
    }
}

/// The canonical sort key of an entry: everything but the amount.
fn entry_key(e: &LedgerEntry) -> (SubBlockIndex, Attempt, Phase, Rule, Account) {
    (e.sub_block, e.attempt, e.phase, e.rule, e.account)
}

/// Entries strictly ascending by key, without zero amounts, within the maximum length.
fn check_canonical(entries: &[LedgerEntry]) -> Result<()> {
    if entries.len() > MAX_LEDGER_ENTRIES {
        return Err(Error::LedgerTooLong { len: entries.len(), max: MAX_LEDGER_ENTRIES });
    }
    let ascending = entries.windows(2).all(|w| match w {
        [a, b] => entry_key(a) < entry_key(b),
        _ => true,
    });
    if !ascending || entries.iter().any(|e| e.amount.0 == 0) {
        return Err(Error::NonCanonicalLedger);
    }
    Ok(())
}

fn sum(mut amounts: impl Iterator<Item = Amount>) -> Result<Amount> {
    amounts
        .try_fold(0i64, |acc, a| acc.checked_add(a.0))
        .map(Amount)
        .ok_or(Error::Overflow { context: "ledger sum" })
}

/// Per-account balances folded from ledgers, with checked arithmetic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    balances: BTreeMap<Account, Amount>,
}

impl Balances {
    /// No balances.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds ledgers into balances.
    pub fn from_ledgers<'a>(ledgers: impl IntoIterator<Item = &'a Ledger>) -> Result<Self> {
        let mut balances = Self::new();
        for ledger in ledgers {
            balances.apply(ledger)?;
        }
        Ok(balances)
    }

    /// Applies one ledger. All or nothing: on overflow the balances are unchanged.
    pub fn apply(&mut self, ledger: &Ledger) -> Result<()> {
        let mut next = self.balances.clone();
        for e in ledger.entries() {
            let balance = next.entry(e.account).or_default();
            balance.0 = balance
                .0
                .checked_add(e.amount.0)
                .ok_or(Error::BalanceOverflow { account: e.account })?;
        }
        self.balances = next;
        Ok(())
    }

    /// Undoes one ledger applied before (a ledger replaced after a reorg). All or nothing: on
    /// overflow the balances are unchanged.
    pub fn revert(&mut self, ledger: &Ledger) -> Result<()> {
        let mut next = self.balances.clone();
        for e in ledger.entries() {
            let balance = next.entry(e.account).or_default();
            balance.0 = balance
                .0
                .checked_sub(e.amount.0)
                .ok_or(Error::BalanceOverflow { account: e.account })?;
        }
        self.balances = next;
        Ok(())
    }

    /// The balance of one account (0 if it never appeared).
    pub fn get(&self, account: Account) -> Amount {
        self.balances.get(&account).copied().unwrap_or_default()
    }

    /// Every account that appeared, ascending, with its balance.
    pub fn iter(&self) -> impl Iterator<Item = (Account, Amount)> + '_ {
        self.balances.iter().map(|(a, b)| (*a, *b))
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.balances.len()
    }

    /// `true` if no account appeared.
    pub fn is_empty(&self) -> bool {
        self.balances.is_empty()
    }

    /// Sum of all balances.
    pub fn total(&self) -> Result<Amount> {
        sum(self.balances.values().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(account: Account, rule: Rule, amount: i64) -> LedgerEntry {
        LedgerEntry {
            sub_block: SubBlockIndex(0),
            attempt: Attempt(0),
            phase: Phase::T1,
            rule,
            account,
            amount: Amount(amount),
        }
    }

    /// The entry a proptest's raw key names (sub-block, attempt, index into `Phase::ALL`, index
    /// into `Rule::ALL`, validator or prover, account index), with `amount`.
    fn raw_entry(
        (s, a, p, r, validator, i): (u32, u32, usize, usize, bool, u64),
        amount: i64,
    ) -> LedgerEntry {
        LedgerEntry {
            sub_block: SubBlockIndex(s),
            attempt: Attempt(a),
            phase: Phase::ALL[p],
            rule: Rule::ALL[r],
            account: if validator {
                Account::Validator(ValidatorIndex(i))
            } else {
                Account::Prover(ProverIndex(i))
            },
            amount: Amount(amount),
        }
    }

    #[test]
    fn accounts_keep_their_json_form_and_round_trip_in_compact_formats() {
        let p1 = Account::Prover(ProverIndex(1));
        let v7 = Account::Validator(ValidatorIndex(7));
        assert_eq!(serde_json::to_string(&p1).unwrap(), r#"{"kind":"prover","index":"1"}"#);
        assert_eq!(
            serde_json::from_str::<Account>(r#"{"kind":"validator","index":"7"}"#).unwrap(),
            v7
        );
        let ledger = Ledger::new(
            Root::repeat_byte(3),
            Slot(9),
            vec![entry(v7, Rule::RewardT1Validator, 3), entry(p1, Rule::PenaltyT1Prover, -1)],
        )
        .unwrap();
        let bytes = postcard::to_allocvec(&ledger).unwrap();
        assert_eq!(postcard::from_bytes::<Ledger>(&bytes).unwrap(), ledger);
        let balances = Balances::from_ledgers([&ledger]).unwrap();
        let bytes = postcard::to_allocvec(&balances).unwrap();
        assert_eq!(postcard::from_bytes::<Balances>(&bytes).unwrap(), balances);
    }

    #[test]
    fn reverting_a_ledger_undoes_it() {
        let p1 = Account::Prover(ProverIndex(1));
        let v7 = Account::Validator(ValidatorIndex(7));
        let a =
            Ledger::new(Root::ZERO, Slot(1), vec![entry(v7, Rule::RewardT1Validator, 3)]).unwrap();
        let b =
            Ledger::new(Root::ZERO, Slot(2), vec![entry(p1, Rule::PenaltyT1Prover, -5)]).unwrap();
        let mut balances = Balances::from_ledgers([&a, &b]).unwrap();
        balances.revert(&b).unwrap();
        assert_eq!((balances.get(v7), balances.get(p1)), (Amount(3), Amount(0)));
        let mut full = Balances::new();
        full.apply(
            &Ledger::new(Root::ZERO, Slot(3), vec![entry(p1, Rule::PenaltyT1Prover, i64::MIN)])
                .unwrap(),
        )
        .unwrap();
        let before = full.clone();
        assert!(full.revert(&a).is_ok());
        let mut again = before.clone();
        let big =
            Ledger::new(Root::ZERO, Slot(4), vec![entry(p1, Rule::RewardT1Validator, 1)]).unwrap();
        assert!(again.revert(&big).is_err(), "i64::MIN - 1 overflows");
        assert_eq!(again, before, "all or nothing");
    }

    #[test]
    fn new_sorts_merges_and_drops_zero() {
        let p1 = Account::Prover(ProverIndex(1));
        let v7 = Account::Validator(ValidatorIndex(7));
        let ledger = Ledger::new(
            Root::ZERO,
            Slot(1),
            vec![
                entry(v7, Rule::RewardT1Validator, 3),
                entry(p1, Rule::PenaltyT1Prover, -1),
                entry(v7, Rule::RewardT1Validator, 3),
                entry(p1, Rule::RewardFullProofSenderT1, 0),
            ],
        )
        .unwrap();
        assert_eq!(
            ledger.entries(),
            &[entry(v7, Rule::RewardT1Validator, 6), entry(p1, Rule::PenaltyT1Prover, -1)]
        );
        assert_eq!(ledger.total().unwrap(), Amount(5));
        assert_eq!(ledger.net(p1).unwrap(), Amount(-1));
    }

    #[test]
    fn merge_overflow_is_an_error() {
        let p1 = Account::Prover(ProverIndex(1));
        let err = Ledger::new(
            Root::ZERO,
            Slot(1),
            vec![entry(p1, Rule::RewardT2Prover, i64::MAX), entry(p1, Rule::RewardT2Prover, 1)],
        )
        .unwrap_err();
        assert!(matches!(err, Error::Overflow { .. }));
    }

    proptest::proptest! {
        /// The settlement root with shared subtrees equals the derived `TreeHash` of the SSZ
        /// container, for ledgers with runs of shared prefixes and amounts and without.
        #[test]
        fn settlement_root_equals_derived_tree_hash(
            block in proptest::prelude::any::<[u8; 32]>(),
            slot in proptest::prelude::any::<u64>(),
            raw in proptest::collection::vec(
                ((0u32..3, 0u32..3, 0usize..5, 0usize..31, proptest::prelude::any::<bool>(),
                  0u64..50), -5i64..5),
                0..300,
            ),
        ) {
            let entries = raw
                .into_iter()
                .map(|(key, amount)| raw_entry(key, amount * 1_000_000_007))
                .collect();
            let ledger = Ledger::new(Root::from(block), Slot(slot), entries).unwrap();
            proptest::prop_assert_eq!(ledger.settlement_root(), ledger.settlement_root_reference());
        }
    }

    /// Amounts of one key are summed in input order, wherever the other entries are: a sum that
    /// passes `i64::MAX` on the way overflows even if it would end in range.
    #[test]
    fn merge_sums_each_key_in_input_order() {
        let p1 = Account::Prover(ProverIndex(1));
        let filler = |i: u64| entry(Account::Validator(ValidatorIndex(i % 7)), Rule::ALL[0], 1);
        let with_filler = |amounts: [i64; 3]| {
            let mut entries: Vec<LedgerEntry> = (0..200).map(filler).collect();
            for (k, a) in amounts.into_iter().enumerate() {
                entries.insert(50 * k + 7, entry(p1, Rule::RewardT2Prover, a));
            }
            entries
        };
        let ok = Ledger::new(Root::ZERO, Slot(1), with_filler([i64::MAX, -1, 1])).unwrap();
        assert_eq!(ok.net(p1).unwrap(), Amount(i64::MAX));
        let err = Ledger::new(Root::ZERO, Slot(1), with_filler([i64::MAX, 1, -1])).unwrap_err();
        assert!(matches!(err, Error::Overflow { context: "entry sum" }));
    }

    proptest::proptest! {
        /// `Ledger::new` (stable sort, merge of neighbours) gives exactly what merging through a
        /// `BTreeMap` in input order gives: the same entries, or the same overflow, for entries
        /// with many repeated keys, zero sums and amounts near the limits.
        #[test]
        fn new_equals_the_map_based_reference(
            raw in proptest::collection::vec(
                ((0u32..2, 0u32..2, 0usize..2, 0usize..4, proptest::prelude::any::<bool>(),
                  0u64..4), 0u8..8, -3i64..4),
                0..120,
            ),
        ) {
            let entries: Vec<LedgerEntry> = raw
                .into_iter()
                .map(|(key, kind, small)| {
                    let amount = match kind {
                        0 => i64::MAX,
                        1 => i64::MIN,
                        2 => i64::MAX - small.abs(),
                        _ => small,
                    };
                    raw_entry(key, amount)
                })
                .collect();
            let fast = Ledger::new(Root::ZERO, Slot(3), entries.clone());
            let slow = crate::settle::reference::ledger_new(Root::ZERO, Slot(3), entries);
            match (fast, slow) {
                (Ok(fast), Ok(slow)) => proptest::prop_assert_eq!(fast, slow),
                (Err(fast), Err(slow)) => {
                    proptest::prop_assert_eq!(format!("{fast:?}"), format!("{slow:?}"))
                }
                (fast, slow) => proptest::prop_assert!(false, "new {fast:?}, reference {slow:?}"),
            }
        }
    }

    #[test]
    fn ssz_round_trip_and_negative_amounts() {
        let ledger = Ledger::new(
            Root::repeat_byte(0xab),
            Slot(42),
            vec![
                entry(Account::Prover(ProverIndex(3)), Rule::PenaltyT1Prover, -1),
                entry(Account::Validator(ValidatorIndex(9)), Rule::RewardT1Validator, 3),
            ],
        )
        .unwrap();
        let bytes = ledger.as_ssz_bytes();
        assert_eq!(Ledger::from_ssz_bytes(&bytes).unwrap(), ledger);
        // 32 + 8 + 4 (offset) + 2 * (4 + 4 + 1 + 1 + 1 + 8 + 8)
        assert_eq!(bytes.len(), 32 + 8 + 4 + 2 * 27);
        // Canonical order puts REWARD_T1_VALIDATOR (code 4) before PENALTY_T1_PROVER (code 5):
        // 3 little-endian, then -1 as 0xff..ff in two's complement, at the end of each entry.
        assert_eq!(&bytes[44 + 19..44 + 27], &[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[44 + 27 + 19..44 + 2 * 27], &[0xff; 8]);
        assert!(Ledger::from_ssz_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn from_ssz_rejects_non_canonical_order() {
        let a = entry(Account::Prover(ProverIndex(3)), Rule::PenaltyT1Prover, -1);
        let b = entry(Account::Validator(ValidatorIndex(9)), Rule::RewardT1Validator, 3);
        let c = LedgerSsz {
            block_root: Root::ZERO,
            slot: 1,
            entries: VariableList::new(vec![(&a).into(), (&b).into()]).unwrap(),
        };
        assert!(matches!(
            Ledger::from_ssz_bytes(&c.as_ssz_bytes()),
            Err(Error::NonCanonicalLedger)
        ));
        let mut bad = LedgerEntrySsz::from(&a);
        bad.rule = 0;
        assert!(LedgerEntry::try_from(bad).is_err());
    }

    #[test]
    fn json_round_trip_checks_canonical_form() {
        let ledger = Ledger::new(
            Root::repeat_byte(1),
            Slot(9),
            vec![
                entry(Account::Prover(ProverIndex(3)), Rule::PenaltyT1Prover, -1),
                entry(Account::Validator(ValidatorIndex(9)), Rule::RewardT1Validator, 3),
            ],
        )
        .unwrap();
        let json = serde_json::to_string(&ledger).unwrap();
        assert!(json.contains(r#""rule":"PENALTY_T1_PROVER""#), "{json}");
        assert!(json.contains(r#""account":{"kind":"prover","index":"3"}"#), "{json}");
        assert_eq!(serde_json::from_str::<Ledger>(&json).unwrap(), ledger);
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["entries"].as_array_mut().unwrap().reverse();
        assert!(serde_json::from_value::<Ledger>(value).is_err());
    }

    #[test]
    fn balances_fold_with_checked_arithmetic() {
        let p1 = Account::Prover(ProverIndex(1));
        let v7 = Account::Validator(ValidatorIndex(7));
        let l1 = Ledger::new(
            Root::ZERO,
            Slot(1),
            vec![entry(p1, Rule::RewardT2Prover, 100), entry(v7, Rule::RewardT2Validator, 3)],
        )
        .unwrap();
        let l2 =
            Ledger::new(Root::ZERO, Slot(2), vec![entry(p1, Rule::PenaltyT2Prover, -3)]).unwrap();
        let balances = Balances::from_ledgers([&l1, &l2]).unwrap();
        assert_eq!(balances.get(p1), Amount(100 - 3));
        assert_eq!(balances.get(v7), Amount(3));
        assert_eq!(balances.get(Account::Prover(ProverIndex(2))), Amount(0));
        assert_eq!(balances.total().unwrap(), Amount(100 - 3 + 3));
        assert_eq!(balances.len(), 2);

        let big = Ledger::new(Root::ZERO, Slot(3), vec![entry(p1, Rule::RewardT2Prover, i64::MAX)])
            .unwrap();
        let mut b = balances.clone();
        let err = b.apply(&big).unwrap_err();
        assert!(matches!(err, Error::BalanceOverflow { account } if account == p1));
        assert_eq!(b, balances, "a failed apply changes nothing");
    }
}
