//! Golden vectors of the settlement root: the SSZ `hash_tree_root` of a ledger, recomputed here
//! by hand (SHA-256 merkleization as in the consensus specs) and pinned as hex.

use phase_engine::{
    Amount, Attempt, Phase, ProverIndex, Root, Slot, SubBlockIndex, ValidatorIndex,
};
use rewards::{Account, Ledger, LedgerEntry, Rule};
use sha2::{Digest, Sha256};

fn h(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut s = Sha256::new();
    s.update(a);
    s.update(b);
    s.finalize().into()
}

fn chunk(le_bytes: &[u8]) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[..le_bytes.len()].copy_from_slice(le_bytes);
    c
}

/// Root of `leaves` padded with zero chunks to `2^depth` leaves.
fn merkleize(leaves: &[[u8; 32]], depth: usize) -> [u8; 32] {
    let mut zero = [0u8; 32];
    let mut layer: Vec<[u8; 32]> = leaves.to_vec();
    for _ in 0..depth {
        if layer.len() % 2 == 1 {
            layer.push(zero);
        }
        layer = layer.chunks(2).map(|p| h(&p[0], &p[1])).collect();
        zero = h(&zero, &zero);
    }
    layer.first().copied().unwrap_or(zero)
}

fn entry_root(e: &LedgerEntry) -> [u8; 32] {
    let (kind, index) = match e.account {
        Account::Prover(p) => (0u8, p.0),
        Account::Validator(v) => (1u8, v.0),
        _ => unreachable!(),
    };
    let fields = [
        chunk(&e.sub_block.0.to_le_bytes()),
        chunk(&e.attempt.0.to_le_bytes()),
        chunk(&[e.phase as u8 + 1]),
        chunk(&[e.rule.code()]),
        chunk(&[kind]),
        chunk(&index.to_le_bytes()),
        chunk(&(e.amount.0 as u64).to_le_bytes()), // two's complement
    ];
    merkleize(&fields, 3)
}

fn ledger_root(l: &Ledger) -> [u8; 32] {
    let leaves: Vec<[u8; 32]> = l.entries().iter().map(entry_root).collect();
    // List[LedgerEntry, 2**20]: merkleize to depth 20, mix in the length.
    let entries = h(&merkleize(&leaves, 20), &chunk(&(leaves.len() as u64).to_le_bytes()));
    let fields = [l.block_root.0, chunk(&l.slot.0.to_le_bytes()), entries];
    merkleize(&fields, 2)
}

fn sample() -> Ledger {
    let entry = |sub, attempt, phase, rule, account, amount| LedgerEntry {
        sub_block: SubBlockIndex(sub),
        attempt: Attempt(attempt),
        phase,
        rule,
        account,
        amount: Amount(amount),
    };
    Ledger::new(
        Root::repeat_byte(0x11),
        Slot(123_456),
        vec![
            entry(
                0,
                0,
                Phase::T1,
                Rule::RewardT1Validator,
                Account::Validator(ValidatorIndex(7)),
                12,
            ),
            entry(0, 0, Phase::T1, Rule::PenaltyT1Prover, Account::Prover(ProverIndex(3)), -1),
            entry(0, 0, Phase::T2, Rule::RewardT2Prover, Account::Prover(ProverIndex(2)), 100),
            entry(0, 0, Phase::T2, Rule::PenaltyT2Prover, Account::Prover(ProverIndex(3)), -6),
            entry(
                0,
                1,
                Phase::T3,
                Rule::RewardProverReusingT3,
                Account::Prover(ProverIndex(9)),
                20,
            ),
            entry(
                1,
                0,
                Phase::T1,
                Rule::RewardFullProofProverT1,
                Account::Prover(ProverIndex(u64::MAX)),
                9000,
            ),
        ],
    )
    .unwrap()
}

#[test]
fn settlement_root_matches_hand_merkleization() {
    let ledger = sample();
    assert_eq!(ledger.settlement_root().0, ledger_root(&ledger));
    for e in ledger.entries() {
        assert_eq!(e.tree_hash_root().0, entry_root(e));
    }
    let empty = Ledger::new(Root::ZERO, Slot(0), vec![]).unwrap();
    assert_eq!(empty.settlement_root().0, ledger_root(&empty));
}

/// Pinned: any change to the entry container, the rule codes or the amount encoding changes it.
#[test]
fn settlement_root_golden_vector() {
    assert_eq!(
        sample().settlement_root().to_string(),
        "0xe7ebc3d75fbcb66ae955bd937b189e9f3c648da2e5e43bc0f3e702423354d24f"
    );
}
