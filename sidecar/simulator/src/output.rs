//! Files written to `--out DIR`: every ledger entry (CSV and JSON), per-prover totals, per-block
//! records and the summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{SimError, SimResult};
use super::report::{LedgerRow, RunReport};

fn create(path: &Path) -> SimResult<BufWriter<File>> {
    File::create(path).map(BufWriter::new).map_err(|source| SimError::Io {
        action: "creating",
        path: path.to_owned(),
        source,
    })
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io { action: "writing", path: path.to_owned(), source }
}

/// Creates `dir` (and its parents).
///
/// # Errors
/// [`SimError::Io`].
pub fn create_dir(dir: &Path) -> SimResult<()> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        action: "creating directory",
        path: dir.to_owned(),
        source,
    })
}

/// Streams ledger entries to `ledger.csv` and `ledger.json` (a JSON array) as the run goes.
#[derive(Debug)]
pub struct LedgerWriter {
    csv_path: PathBuf,
    json_path: PathBuf,
    csv: csv::Writer<BufWriter<File>>,
    json: BufWriter<File>,
    first: bool,
}

impl LedgerWriter {
    /// Opens both files in `dir`.
    ///
    /// # Errors
    /// [`SimError::Io`].
    pub fn create(dir: &Path) -> SimResult<Self> {
        let csv_path = dir.join("ledger.csv");
        let json_path = dir.join("ledger.json");
        let csv = csv::Writer::from_writer(create(&csv_path)?);
        let mut json = create(&json_path)?;
        json.write_all(b"[").map_err(io_err(&json_path))?;
        Ok(Self { csv_path, json_path, csv, json, first: true })
    }

    /// Appends one entry.
    ///
    /// # Errors
    /// [`SimError::Csv`], [`SimError::Json`] or [`SimError::Io`].
    pub fn write(&mut self, row: &LedgerRow) -> SimResult<()> {
        self.csv
            .serialize(CsvLedgerRow::from(row))
            .map_err(|source| SimError::Csv { path: self.csv_path.clone(), source })?;
        let sep: &[u8] = if self.first { b"\n" } else { b",\n" };
        self.first = false;
        self.json.write_all(sep).map_err(io_err(&self.json_path))?;
        serde_json::to_writer(&mut self.json, row)
            .map_err(|source| SimError::Json { path: self.json_path.clone(), source })
    }

    /// Closes the JSON array and flushes both files.
    ///
    /// # Errors
    /// [`SimError::Io`].
    pub fn finish(mut self) -> SimResult<()> {
        self.csv.flush().map_err(io_err(&self.csv_path))?;
        self.json.write_all(b"\n]\n").map_err(io_err(&self.json_path))?;
        self.json.flush().map_err(io_err(&self.json_path))
    }
}

/// CSV form of a ledger row.
#[derive(Serialize)]
struct CsvLedgerRow {
    block: u64,
    slot: u64,
    account_kind: &'static str,
    account: u64,
    sub_block: u32,
    attempt: u32,
    phase: &'static str,
    rule: &'static str,
    amount: i64,
}

impl From<&LedgerRow> for CsvLedgerRow {
    fn from(r: &LedgerRow) -> Self {
        Self {
            block: r.block,
            slot: r.slot.0,
            account_kind: match r.account_kind {
                super::report::AccountKind::Prover => "prover",
                super::report::AccountKind::Validator => "validator",
            },
            account: r.account,
            sub_block: r.sub_block,
            attempt: r.attempt,
            phase: phase_label(r.phase),
            rule: r.rule,
            amount: r.amount,
        }
    }
}

pub(crate) fn phase_label(p: phase_engine::Phase) -> &'static str {
    match p {
        phase_engine::Phase::T1 => "T1",
        phase_engine::Phase::T2 => "T2",
        phase_engine::Phase::T3 => "T3",
        phase_engine::Phase::T4 => "T4",
        phase_engine::Phase::T5 => "T5",
    }
}

fn write_csv<T: Serialize>(path: &Path, rows: impl Iterator<Item = T>) -> SimResult<()> {
    let mut w = csv::Writer::from_writer(create(path)?);
    for row in rows {
        w.serialize(row).map_err(|source| SimError::Csv { path: path.to_owned(), source })?;
    }
    w.flush().map_err(io_err(path))
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> SimResult<()> {
    let mut w = create(path)?;
    serde_json::to_writer_pretty(&mut w, value)
        .map_err(|source| SimError::Json { path: path.to_owned(), source })?;
    w.write_all(b"\n").map_err(io_err(path))?;
    w.flush().map_err(io_err(path))
}

#[derive(Serialize)]
struct CsvProver {
    index: u64,
    behaviour: &'static str,
    active_blocks: u64,
    rounds_selected: u64,
    total: i64,
    reward_per_block: f64,
}

#[derive(Serialize)]
struct CsvBlock {
    block: u64,
    slot: u64,
    gas: u64,
    sub_blocks: u32,
    rounds: u32,
    retries: u32,
    fate: &'static str,
    agg_proof: bool,
    provers_total: i64,
    validators_total: i64,
    entries: u32,
}

/// The summary without the bulky per-prover and per-block lists.
#[derive(Serialize)]
struct Summary<'a> {
    scenario: &'a str,
    seed: u64,
    blocks: u64,
    provers: usize,
    ledger_root: &'a str,
    entries: u64,
    validators_total: i64,
    blocks_by_fate: [u64; 6],
    rounds_by_fate: [u64; 6],
    fate_columns: [&'static str; 6],
    behaviours: &'a [super::report::BehaviourSummary],
    rejections: &'a std::collections::BTreeMap<String, u64>,
}

/// Writes `provers.csv`/`.json`, `blocks.csv`/`.json`, `summary.json` and `balances.csv` into
/// `dir`; returns the paths written.
///
/// # Errors
/// [`SimError::Io`], [`SimError::Csv`] or [`SimError::Json`].
pub fn write_report(dir: &Path, report: &RunReport) -> SimResult<Vec<PathBuf>> {
    let mut written = Vec::new();
    let path = dir.join("provers.csv");
    write_csv(
        &path,
        report.provers.iter().map(|p| CsvProver {
            index: p.index.0,
            behaviour: p.behaviour.as_str(),
            active_blocks: p.active_blocks,
            rounds_selected: p.rounds_selected,
            total: p.total,
            reward_per_block: p.reward_per_block,
        }),
    )?;
    written.push(path);
    let path = dir.join("provers.json");
    write_json(&path, &report.provers)?;
    written.push(path);
    let path = dir.join("blocks.csv");
    write_csv(
        &path,
        report.block_log.iter().map(|b| CsvBlock {
            block: b.block,
            slot: b.slot.0,
            gas: b.gas,
            sub_blocks: b.sub_blocks,
            rounds: b.rounds,
            retries: b.retries,
            fate: b.fate.label(),
            agg_proof: b.agg_proof,
            provers_total: b.provers_total,
            validators_total: b.validators_total,
            entries: b.entries,
        }),
    )?;
    written.push(path);
    let path = dir.join("blocks.json");
    write_json(&path, &report.block_log)?;
    written.push(path);
    let path = dir.join("summary.json");
    write_json(
        &path,
        &Summary {
            scenario: &report.scenario,
            seed: report.seed,
            blocks: report.blocks,
            provers: report.provers.len(),
            ledger_root: &report.ledger_root,
            entries: report.entries,
            validators_total: report.validators_total,
            blocks_by_fate: report.blocks_by_fate,
            rounds_by_fate: report.rounds_by_fate,
            fate_columns: super::report::BlockFate::ALL.map(|f| f.label()),
            behaviours: &report.behaviours,
            rejections: &report.rejections,
        },
    )?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use phase_engine::{Phase, Slot};

    use super::super::report::AccountKind;
    use super::*;

    #[test]
    fn ledger_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LedgerWriter::create(dir.path()).unwrap();
        let rows = [
            LedgerRow {
                block: 0,
                slot: Slot(10),
                account_kind: AccountKind::Prover,
                account: 3,
                sub_block: 0,
                attempt: 1,
                phase: Phase::T2,
                rule: "REWARD_T2_PROVER",
                amount: 100,
            },
            LedgerRow {
                block: 0,
                slot: Slot(10),
                account_kind: AccountKind::Validator,
                account: 7,
                sub_block: 0,
                attempt: 0,
                phase: Phase::T1,
                rule: "REWARD_AGG_PROOF_VALIDATOR",
                amount: 3,
            },
        ];
        for r in &rows {
            w.write(r).unwrap();
        }
        w.finish().unwrap();
        let csv = std::fs::read_to_string(dir.path().join("ledger.csv")).unwrap();
        assert_eq!(
            csv,
            "block,slot,account_kind,account,sub_block,attempt,phase,rule,amount\n\
             0,10,prover,3,0,1,T2,REWARD_T2_PROVER,100\n\
             0,10,validator,7,0,0,T1,REWARD_AGG_PROOF_VALIDATOR,3\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("ledger.json")).unwrap())
                .unwrap();
        assert_eq!(json.as_array().unwrap().len(), 2);
        assert_eq!(json[0]["phase"], "T2");
        assert_eq!(json[1]["account_kind"], "validator");
        assert_eq!(json[1]["amount"], 3);
    }
}
