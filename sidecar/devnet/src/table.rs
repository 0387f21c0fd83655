//! The live table (one row per settled block), the summary table and the JSON report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use phase_engine::Root;
use rewards::Account;

use crate::error::{DevnetError, DevnetResult};
use crate::report::{BlockReport, DevnetSummary, LatencyStats};

/// The live table.
pub(crate) struct Table {
    pub(crate) sidecars: usize,
    pub(crate) provers: usize,
}

impl Table {
    pub(crate) fn header(&self, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
        writeln!(
            out,
            "{:>6}  {:>6}  {:>4}  {:>7}  {:>5}  {:>10}  {:>8}  {:>7}  {:<18}  {:<12}  sidecars",
            "slot",
            "Mgas",
            "AIRs",
            "provers",
            "phase",
            "full proof",
            "settled",
            "paid",
            "top earner",
            "ledger root",
        )?;
        writeln!(out, "{}", "-".repeat(112))
    }

    pub(crate) fn row(&self, out: &mut (dyn Write + Send), b: &BlockReport) -> std::io::Result<()> {
        let secs =
            |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
        let phase = match (b.finalized_in, b.retries) {
            (Some(p), 0) => p.to_string(),
            (Some(p), r) => format!("{p}/r{r}"),
            (None, _) => "none".to_owned(),
        };
        let top = b.top.map_or("-".to_owned(), |(a, n)| format!("{} {n:+}", short_account(a)));
        let settled = b.roots.iter().filter(|r| r.is_some()).count();
        let agree = match (b.agreed_root(), b.problem()) {
            (Some(_), None) => format!("{settled}/{} agree", self.sidecars),
            (_, Some(p)) => format!("FAIL: {p}"),
            (None, None) => "-".to_owned(),
        };
        let root = b.roots.iter().flatten().next().map_or("-".to_owned(), short_root);
        writeln!(
            out,
            "{:>6}  {:>6}  {:>4}  {:>7}  {:>5}  {:>10}  {:>8}  {:>7}  {:<18}  {:<12}  {}",
            b.slot,
            b.gas_used.map_or("-".to_owned(), |g| format!("{:.2}", g as f64 / 1e6)),
            b.airs,
            format!("{}/{}", b.provers, self.provers),
            phase,
            secs(b.full_proof_after),
            secs(b.settled_after),
            b.paid,
            top,
            root,
            agree
        )
    }
}

pub(crate) fn short_root(root: &Root) -> String {
    format!("0x{}…", hex::encode(root.get(..4).unwrap_or_default()))
}

pub(crate) fn short_account(account: Account) -> String {
    match account {
        Account::Prover(p) => format!("prover {}", p.0),
        Account::Validator(v) => format!("val {}", v.0),
        other => other.to_string(),
    }
}

/// Writes the summary table of a finished run.
///
/// # Errors
/// The writer failing.
pub fn write_summary(out: &mut (dyn Write + Send), s: &DevnetSummary) -> std::io::Result<()> {
    let proven = s.blocks.iter().filter(|b| b.proven.iter().all(|p| *p)).count();
    let agreed = s.blocks.iter().filter(|b| b.agreed_root().is_some()).count();
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    for b in &s.blocks {
        *phases.entry(b.finalized_in.map_or("none".to_owned(), |p| p.to_string())).or_default() +=
            1;
    }
    let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p}: {n}")).collect();
    let stats = |l: &Option<LatencyStats>| {
        l.map_or("-".to_owned(), |l| {
            format!(
                "median {:.2} s   p95 {:.2} s   min {:.2} s   max {:.2} s   ({} blocks)",
                l.median, l.p95, l.min, l.max, l.count
            )
        })
    };
    let paid: i64 = s.blocks.iter().map(|b| b.paid).sum();
    let penalties: i64 = s.blocks.iter().map(|b| b.penalties).sum();
    writeln!(out)?;
    writeln!(out, "summary")?;
    let rows: [(&str, String); 8] = [
        ("sidecars / provers", format!("{} / {}", s.sidecars, s.provers)),
        ("slot time", format!("{} s", s.seconds_per_slot)),
        (
            "blocks",
            format!(
                "{}{}",
                s.blocks.len(),
                s.requested.map_or(String::new(), |r| format!(" of {r}"))
            ),
        ),
        ("fully proven", format!("{proven} (valid full proof verified by every sidecar)")),
        (
            "same ledger root",
            format!("{agreed} (settlement root identical on all {} sidecars)", s.sidecars),
        ),
        ("finalised in", phases.join(", ")),
        ("head -> full proof", stats(&s.full_proof_latency)),
        ("head -> settled", stats(&s.settled_latency)),
    ];
    for (k, v) in rows {
        writeln!(out, "  {k:<20} {v}")?;
    }
    writeln!(out, "  {:<20} {paid} paid, {penalties} in penalties", "rewards")?;
    if let Some(c) = &s.catch_up {
        writeln!(
            out,
            "  {:<20} a fresh sidecar settled {} of {} blocks in {:.1} s: {:.1} blocks/s, {:.0}x \
             the live rate of 1 block per {} s ({} identical, {} different)",
            "catch-up",
            c.identical + c.differing,
            c.blocks,
            c.seconds,
            c.blocks_per_second,
            c.speedup(),
            c.seconds_per_slot,
            c.identical,
            c.differing,
        )?;
    }
    if !s.earnings.is_empty() {
        writeln!(out)?;
        writeln!(out, "  {:<12} {:>10}", "prover", "net earned")?;
        for (account, amount) in s.earnings.iter().take(10) {
            writeln!(out, "  {:<12} {:>10}", short_account(*account), amount)?;
        }
        if s.earnings.len() > 10 {
            writeln!(out, "  ({} more)", s.earnings.len() - 10)?;
        }
    }
    let diverged: Vec<&BlockReport> =
        s.blocks.iter().filter(|b| !b.divergence.is_empty()).collect();
    if !diverged.is_empty() {
        writeln!(out)?;
        writeln!(out, "  ledgers that differ between sidecars (first entries):")?;
        for b in diverged {
            for line in &b.divergence {
                writeln!(out, "  slot {:>6}  {line}", b.slot)?;
            }
        }
    }
    writeln!(out)?;
    match s.check() {
        Ok(()) => writeln!(out, "result: OK"),
        Err(e) => writeln!(out, "result: FAILED: {e}"),
    }
}

/// Writes `summary` as pretty JSON to `path` (`--bench-json`).
///
/// # Errors
/// [`DevnetError::Io`] if the file cannot be written.
pub fn write_json(path: &Path, summary: &DevnetSummary) -> DevnetResult<()> {
    let io = |source| DevnetError::Io { action: "writing", path: path.to_path_buf(), source };
    let json = serde_json::to_vec_pretty(summary).map_err(|e| io(e.into()))?;
    std::fs::write(path, json).map_err(io)
}
