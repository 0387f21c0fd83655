//! What a run produces: per-block records, per-prover totals, per-behaviour summaries and the
//! terminal table. Filled incrementally by the simulation loop through [`Accumulator`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use phase_engine::{Phase, ProverIndex, Slot};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::scenario::{Behaviour, Scenario};

/// Who an entry pays (or charges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A prover, by registry index.
    Prover,
    /// A validator, by validator index.
    Validator,
}

/// One ledger entry of one simulated block, flattened for CSV and JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    /// The simulated block (0-based).
    pub block: u64,
    /// Its slot.
    pub slot: Slot,
    /// Prover or validator.
    pub account_kind: AccountKind,
    /// Index of the prover or validator.
    pub account: u64,
    /// Sub-block of the round (0 for block-level rules such as the AggProof's).
    pub sub_block: u32,
    /// Attempt of the round (0 for block-level rules).
    pub attempt: u32,
    /// Phase the rule belongs to.
    pub phase: Phase,
    /// The spec constant that gives the amount.
    pub rule: &'static str,
    /// Amount (negative for penalties).
    pub amount: i64,
}

/// How a block ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockFate {
    /// Every sub-block got a valid full proof; the latest finalising phase among them.
    Finalized(Phase),
    /// Some sub-block exhausted its retries.
    Failed,
}

impl BlockFate {
    /// Column index in phase tables: T1..T5 are 0..4, failed is 5.
    pub fn column(self) -> usize {
        match self {
            Self::Finalized(p) => p as usize,
            Self::Failed => 5,
        }
    }

    /// Label for tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Self::Finalized(Phase::T1) => "T1",
            Self::Finalized(Phase::T2) => "T2",
            Self::Finalized(Phase::T3) => "T3",
            Self::Finalized(Phase::T4) => "T4",
            Self::Finalized(Phase::T5) => "T5",
            Self::Failed => "failed",
        }
    }

    /// Every fate, in column order.
    pub const ALL: [BlockFate; 6] = [
        Self::Finalized(Phase::T1),
        Self::Finalized(Phase::T2),
        Self::Finalized(Phase::T3),
        Self::Finalized(Phase::T4),
        Self::Finalized(Phase::T5),
        Self::Failed,
    ];
}

/// One simulated block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockRecord {
    /// The simulated block (0-based).
    pub block: u64,
    /// Its slot.
    pub slot: Slot,
    /// Gas used.
    pub gas: u64,
    /// Number of sub-blocks.
    pub sub_blocks: u32,
    /// Rounds run (sub-blocks times attempts).
    pub rounds: u32,
    /// Retries over all sub-blocks.
    pub retries: u32,
    /// How it ended.
    pub fate: BlockFate,
    /// Whether a valid AggProof arrived (always `false` for a block of one sub-block).
    pub agg_proof: bool,
    /// Sum of the block's entries paid to provers.
    pub provers_total: i64,
    /// Sum of the block's entries paid to validators.
    pub validators_total: i64,
    /// Number of ledger entries.
    pub entries: u32,
}

/// Totals of one prover over the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProverTotals {
    /// Registry index.
    pub index: ProverIndex,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// Blocks during which it was registered.
    pub active_blocks: u64,
    /// Rounds in which it was selected.
    pub rounds_selected: u64,
    /// Sum of its ledger entries (its balance at the end, from zero).
    pub total: i64,
    /// `total / active_blocks` (0 if never active).
    pub reward_per_block: f64,
}

/// Statistics of one behaviour.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BehaviourSummary {
    /// The behaviour.
    pub behaviour: Behaviour,
    /// Provers with this behaviour that were registered at some block.
    pub provers: u64,
    /// Mean over those provers of their reward per active block.
    pub mean: f64,
    /// Median of the same.
    pub median: f64,
    /// Minimum of the same.
    pub min: f64,
    /// Maximum of the same.
    pub max: f64,
    /// Sum of their ledger entries.
    pub total: i64,
    /// Rounds in which a prover of this behaviour was selected (counted once per prover).
    pub rounds_selected: u64,
    /// Of those, how many finalised in T1..T5 and how many failed (columns of [`BlockFate`]).
    pub rounds_by_fate: [u64; 6],
    /// `rounds_by_fate[failed] / rounds_selected` (0 if never selected).
    pub failure_rate: f64,
}

/// Mean balance of each behaviour's registered provers after a block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BalancePoint {
    /// After this block (0-based).
    pub block: u64,
    /// Mean balance per behaviour, in [`Behaviour::ALL`] order (`None` if none registered).
    pub mean_balance: Vec<Option<f64>>,
}

/// Everything a run produced.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Blocks simulated.
    pub blocks: u64,
    /// Blocks by fate (columns of [`BlockFate`]).
    pub blocks_by_fate: [u64; 6],
    /// Rounds by fate (columns of [`BlockFate`]).
    pub rounds_by_fate: [u64; 6],
    /// Per behaviour (only behaviours present in the scenario).
    pub behaviours: Vec<BehaviourSummary>,
    /// Per prover.
    pub provers: Vec<ProverTotals>,
    /// Sum paid to validators.
    pub validators_total: i64,
    /// Ledger entries in all.
    pub entries: u64,
    /// `sha256(previous || block || settlement_root)` chained over every block's ledger: equal
    /// across runs iff every block's settlement root is.
    pub ledger_root: String,
    /// Per-block records.
    pub block_log: Vec<BlockRecord>,
    /// Balances over time (at most [`MAX_BALANCE_POINTS`] points).
    pub balances: Vec<BalancePoint>,
    /// Messages the engine rejected, by reason (its error variant).
    pub rejections: BTreeMap<String, u64>,
    /// AIRs each prover proved over the run (its proving work), by registry index: every AIR
    /// recorded as proven, its assigned ones, the sub-block's when it proves alone, those it
    /// took over or completed while aggregating. Not written to the run's files.
    #[serde(skip)]
    pub airs_proved: Vec<u64>,
}

/// Most points kept for the balances-over-time plot.
pub const MAX_BALANCE_POINTS: u64 = 500;

/// Collects a run's results block by block.
#[derive(Debug)]
pub struct Accumulator {
    scenario: String,
    seed: u64,
    behaviour_of: Vec<Behaviour>,
    joined: Vec<u64>,
    exited: Vec<Option<u64>>,
    balance: Vec<i64>,
    rounds_selected: Vec<u64>,
    rounds_by_fate_behaviour: [[u64; 6]; Behaviour::COUNT],
    rounds_by_fate: [u64; 6],
    blocks_by_fate: [u64; 6],
    validators_total: i64,
    entries: u64,
    chain: [u8; 32],
    block_log: Vec<BlockRecord>,
    balances: Vec<BalancePoint>,
    sample_every: u64,
    blocks_done: u64,
    total_blocks: u64,
}

impl Accumulator {
    /// A fresh accumulator for a scenario.
    pub fn new(scenario: &Scenario) -> Self {
        let n = scenario.provers.len();
        Self {
            scenario: scenario.name.clone(),
            seed: scenario.seed,
            behaviour_of: scenario.provers.iter().map(|p| p.behaviour).collect(),
            joined: scenario.provers.iter().map(|p| p.join_at_block).collect(),
            exited: scenario.provers.iter().map(|p| p.exit_at_block).collect(),
            balance: vec![0; n],
            rounds_selected: vec![0; n],
            rounds_by_fate_behaviour: [[0; 6]; Behaviour::COUNT],
            rounds_by_fate: [0; 6],
            blocks_by_fate: [0; 6],
            validators_total: 0,
            entries: 0,
            chain: [0; 32],
            block_log: Vec::new(),
            balances: Vec::new(),
            sample_every: scenario.blocks.div_ceil(MAX_BALANCE_POINTS).max(1),
            blocks_done: 0,
            total_blocks: scenario.blocks,
        }
    }

    /// Records one closed round: the provers selected for it and how it ended (`None`: failed).
    pub fn add_round(&mut self, selected: &[ProverIndex], finalized_in: Option<Phase>) {
        let fate = finalized_in.map_or(BlockFate::Failed, BlockFate::Finalized).column();
        self.rounds_by_fate[fate] += 1;
        for p in selected {
            let Ok(i) = usize::try_from(p.0) else { continue };
            if let Some(count) = self.rounds_selected.get_mut(i) {
                *count += 1;
                if let Some(b) = self.behaviour_of.get(i) {
                    self.rounds_by_fate_behaviour[b.ordinal()][fate] += 1;
                }
            }
        }
    }

    /// Records one ledger entry of the current block. Entries for provers unknown to the
    /// scenario count for no prover's balance.
    pub fn add_entry(&mut self, row: &LedgerRow) {
        self.entries += 1;
        match row.account_kind {
            AccountKind::Validator => self.validators_total += row.amount,
            AccountKind::Prover => {
                if let Some(b) =
                    usize::try_from(row.account).ok().and_then(|i| self.balance.get_mut(i))
                {
                    *b += row.amount;
                }
            }
        }
    }

    /// Closes the current block; `settlement_root` is the root of its ledger
    /// (`rewards::Ledger::settlement_root`), chained into the run's [`RunReport::ledger_root`].
    pub fn end_block(&mut self, record: BlockRecord, settlement_root: [u8; 32]) {
        let mut next = Sha256::new();
        next.update(self.chain);
        next.update(record.block.to_le_bytes());
        next.update(settlement_root);
        self.chain = next.finalize().into();
        self.blocks_by_fate[record.fate.column()] += 1;
        let block = record.block;
        self.block_log.push(record);
        self.blocks_done += 1;
        if (block + 1).is_multiple_of(self.sample_every) || self.blocks_done == self.total_blocks {
            let mut sums = [(0i128, 0u64); Behaviour::COUNT];
            for (i, &bal) in self.balance.iter().enumerate() {
                if self.joined[i] <= block {
                    let s = &mut sums[self.behaviour_of[i].ordinal()];
                    s.0 += i128::from(bal);
                    s.1 += 1;
                }
            }
            let mean_balance =
                sums.iter().map(|&(s, n)| (n > 0).then(|| s as f64 / n as f64)).collect();
            self.balances.push(BalancePoint { block, mean_balance });
        }
    }

    /// The balance of a prover so far.
    pub fn balance(&self, prover: ProverIndex) -> i64 {
        usize::try_from(prover.0).ok().and_then(|i| self.balance.get(i)).copied().unwrap_or(0)
    }

    /// The chained ledger digest so far, hex.
    pub fn ledger_root(&self) -> String {
        hex::encode(self.chain)
    }

    /// Finishes the run.
    pub fn finish(self) -> RunReport {
        let blocks = self.blocks_done;
        let provers: Vec<ProverTotals> = (0..self.balance.len())
            .map(|i| {
                let start = self.joined[i];
                let end = self.exited[i].unwrap_or(blocks).min(blocks);
                let active_blocks = end.saturating_sub(start);
                let total = self.balance[i];
                ProverTotals {
                    index: ProverIndex(i as u64),
                    behaviour: self.behaviour_of[i],
                    active_blocks,
                    rounds_selected: self.rounds_selected[i],
                    total,
                    reward_per_block: if active_blocks == 0 {
                        0.0
                    } else {
                        total as f64 / active_blocks as f64
                    },
                }
            })
            .collect();
        let behaviours = Behaviour::ALL
            .iter()
            .filter_map(|&b| {
                let members: Vec<&ProverTotals> =
                    provers.iter().filter(|p| p.behaviour == b && p.active_blocks > 0).collect();
                if members.is_empty() {
                    return None;
                }
                let mut per_block: Vec<f64> = members.iter().map(|p| p.reward_per_block).collect();
                per_block.sort_by(f64::total_cmp);
                let by_fate = self.rounds_by_fate_behaviour[b.ordinal()];
                let selected: u64 = by_fate.iter().sum();
                Some(BehaviourSummary {
                    behaviour: b,
                    provers: members.len() as u64,
                    mean: per_block.iter().sum::<f64>() / per_block.len() as f64,
                    median: median(&per_block),
                    min: per_block[0],
                    max: per_block[per_block.len() - 1],
                    total: members.iter().map(|p| p.total).sum(),
                    rounds_selected: selected,
                    rounds_by_fate: by_fate,
                    failure_rate: if selected == 0 {
                        0.0
                    } else {
                        by_fate[5] as f64 / selected as f64
                    },
                })
            })
            .collect();
        RunReport {
            scenario: self.scenario,
            seed: self.seed,
            blocks,
            blocks_by_fate: self.blocks_by_fate,
            rounds_by_fate: self.rounds_by_fate,
            behaviours,
            provers,
            validators_total: self.validators_total,
            entries: self.entries,
            ledger_root: hex::encode(self.chain),
            block_log: self.block_log,
            balances: self.balances,
            rejections: BTreeMap::new(),
            airs_proved: Vec::new(),
        }
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 { "-".to_owned() } else { format!("{:.1}%", 100.0 * part as f64 / whole as f64) }
}

impl RunReport {
    /// The terminal summary: per behaviour, reward per block (mean/median/min/max over its
    /// provers), the phases in which the rounds it was selected for finalised, and its failure
    /// rate; then the blocks by finalising phase.
    pub fn summary_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} · seed {} · {} blocks · {} provers · ledger root {}",
            self.scenario,
            self.seed,
            self.blocks,
            self.provers.len(),
            self.ledger_root
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>11} {:>11} {:>11} {:>11} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7}",
            "behaviour",
            "provers",
            "mean/blk",
            "median/blk",
            "min/blk",
            "max/blk",
            "selected",
            "T1",
            "T2",
            "T3",
            "T4",
            "T5",
            "failed"
        );
        for b in &self.behaviours {
            let f = &b.rounds_by_fate;
            let s = b.rounds_selected;
            let _ = writeln!(
                out,
                "{:<16} {:>7} {:>11.2} {:>11.2} {:>11.2} {:>11.2} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7}",
                b.behaviour.as_str(),
                b.provers,
                b.mean,
                b.median,
                b.min,
                b.max,
                s,
                pct(f[0], s),
                pct(f[1], s),
                pct(f[2], s),
                pct(f[3], s),
                pct(f[4], s),
                pct(f[5], s),
            );
        }
        let _ = writeln!(out);
        let mut line = String::from("blocks finalised in:");
        for fate in BlockFate::ALL {
            let n = self.blocks_by_fate[fate.column()];
            let _ = write!(line, "  {} {} ({})", fate.label(), n, pct(n, self.blocks));
        }
        let _ = writeln!(out, "{line}");
        let rounds: u64 = self.rounds_by_fate.iter().sum();
        let _ = writeln!(
            out,
            "rounds: {rounds} ({} failed attempts) · ledger entries: {} · paid to validators: {}",
            self.rounds_by_fate[5], self.entries, self.validators_total
        );
        if !self.rejections.is_empty() {
            let list: Vec<String> =
                self.rejections.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "rejected messages: {}", list.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::from_toml_str(
            "blocks = 2\nprovers = 3\n[[group]]\nbehaviour = \"honest\"\nweight = 2\n[[group]]\nbehaviour = \"lazy\"\nweight = 1",
        )
        .unwrap()
    }

    fn row(block: u64, account: u64, amount: i64) -> LedgerRow {
        LedgerRow {
            block,
            slot: Slot(block),
            account_kind: AccountKind::Prover,
            account,
            sub_block: 0,
            attempt: 0,
            phase: Phase::T1,
            rule: "REWARD_FULL_PROOF_PROVER_T1",
            amount,
        }
    }

    fn record(block: u64, fate: BlockFate) -> BlockRecord {
        BlockRecord {
            block,
            slot: Slot(block),
            gas: 1,
            sub_blocks: 1,
            rounds: 1,
            retries: 0,
            fate,
            agg_proof: false,
            provers_total: 0,
            validators_total: 0,
            entries: 0,
        }
    }

    fn run(amounts: [i64; 2]) -> RunReport {
        // Stand-ins for the settlement roots: a digest of the amounts.
        let root = |a: i64| -> [u8; 32] { Sha256::digest(a.to_le_bytes()).into() };
        let s = scenario();
        let mut acc = Accumulator::new(&s);
        acc.add_round(&[ProverIndex(0), ProverIndex(2)], Some(Phase::T1));
        acc.add_entry(&row(0, 0, amounts[0]));
        acc.add_entry(&row(0, 2, -1));
        acc.end_block(record(0, BlockFate::Finalized(Phase::T1)), root(amounts[0]));
        acc.add_round(&[ProverIndex(1), ProverIndex(2)], None);
        acc.add_entry(&row(1, 1, amounts[1]));
        acc.end_block(record(1, BlockFate::Failed), root(amounts[1]));
        acc.finish()
    }

    #[test]
    fn totals_stats_and_root() {
        let r = run([10, 4]);
        assert_eq!(r.provers.iter().map(|p| p.total).collect::<Vec<_>>(), vec![10, 4, -1]);
        let honest = &r.behaviours[0];
        assert_eq!(honest.behaviour, Behaviour::Honest);
        assert_eq!((honest.mean, honest.median, honest.min, honest.max), (3.5, 3.5, 2.0, 5.0));
        assert_eq!(honest.rounds_by_fate, [1, 0, 0, 0, 0, 1]);
        assert_eq!(honest.failure_rate, 0.5);
        let lazy = &r.behaviours[1];
        assert_eq!((lazy.mean, lazy.rounds_selected), (-0.5, 2));
        assert_eq!(r.blocks_by_fate, [1, 0, 0, 0, 0, 1]);
        assert_eq!(r.balances.last().unwrap().mean_balance[0], Some(7.0));
        // Same ledger, same root; one amount differs, another root.
        assert_eq!(r.ledger_root, run([10, 4]).ledger_root);
        assert_ne!(r.ledger_root, run([10, 5]).ledger_root);
        let table = r.summary_table();
        assert!(table.contains("honest") && table.contains("50.0%"), "{table}");
    }
}
