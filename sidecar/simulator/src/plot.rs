//! Plots of a run (and of a sweep), each as PNG and SVG.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (see `fonts/LICENSE-DejaVu.txt`), so
//! the plots render the same on a machine without any system font.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::deviations::{DeviationAnalysis, Recipient};
use super::error::{SimError, SimResult};
use super::report::{BlockFate, RunReport};
use super::scenario::Behaviour;

static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TrueType file; a failure would only lose the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;

/// A colour per behaviour (a qualitative palette, readable on white).
pub fn behaviour_colour(b: Behaviour) -> RGBColor {
    const PALETTE: [RGBColor; Behaviour::COUNT] = [
        RGBColor(31, 119, 180),
        RGBColor(127, 127, 127),
        RGBColor(255, 127, 14),
        RGBColor(188, 189, 34),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(23, 190, 207),
        RGBColor(44, 160, 44),
        RGBColor(227, 119, 194),
        RGBColor(102, 0, 0),
        RGBColor(0, 0, 128),
    ];
    PALETTE[b.ordinal()]
}

fn fate_colour(f: BlockFate) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(26, 152, 80),
        RGBColor(145, 207, 96),
        RGBColor(217, 239, 139),
        RGBColor(254, 224, 139),
        RGBColor(252, 141, 89),
        RGBColor(215, 48, 39),
    ];
    PALETTE[f.column()]
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws the same plot to `<base>.png` and `<base>.svg`.
macro_rules! both {
    ($written:expr, $base:expr, |$root:ident| $body:expr) => {{
        let png = $base.with_extension("png");
        {
            let $root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
            $body.map_err(|e| plot_err(&png, e))?;
            $root.present().map_err(|e| plot_err(&png, e))?;
        }
        $written.push(png);
        let svg = $base.with_extension("svg");
        {
            let $root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
            $body.map_err(|e| plot_err(&svg, e))?;
            $root.present().map_err(|e| plot_err(&svg, e))?;
        }
        $written.push(svg);
    }};
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Plot { path: path.to_owned(), reason: e.to_string() }
}

/// Range with a margin, never empty.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let span = (hi - lo).abs().max(1.0);
    (lo - span * 0.05)..(hi + span * 0.05)
}

/// Draws the run's plots into `dir`: `rewards_by_behaviour`, `finalising_phase` and `balances`,
/// each as PNG and SVG. Returns the paths written.
///
/// # Errors
/// [`SimError::Plot`].
pub fn plot_run(dir: &Path, report: &RunReport) -> SimResult<Vec<PathBuf>> {
    register_font();
    let mut written = Vec::new();
    both!(written, dir.join("rewards_by_behaviour"), |root| draw_rewards(&root, report));
    both!(written, dir.join("finalising_phase"), |root| draw_phases(&root, report));
    both!(written, dir.join("balances"), |root| draw_balances(&root, report));
    Ok(written)
}

/// Reward per active block of every prover, one column per behaviour (a strip plot with a
/// deterministic jitter), with the behaviour's mean as a bar.
fn draw_rewards<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let present: Vec<Behaviour> = report.behaviours.iter().map(|b| b.behaviour).collect();
    let (lo, hi) = report
        .provers
        .iter()
        .filter(|p| p.active_blocks > 0)
        .fold((0.0f64, 0.0f64), |(lo, hi), p| {
            (lo.min(p.reward_per_block), hi.max(p.reward_per_block))
        });
    let n = present.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Reward per block by behaviour — {}", report.scenario), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n - 0.5, padded(lo, hi))?;
    let names = present.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(present.len().max(1))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).map(|b| b.as_str().to_owned()).unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("reward per active block")
        .draw()?;
    for (col, &b) in present.iter().enumerate() {
        let colour = behaviour_colour(b);
        let points: Vec<(f64, f64)> = report
            .provers
            .iter()
            .filter(|p| p.behaviour == b && p.active_blocks > 0)
            .map(|p| {
                // Deterministic jitter from the prover index (golden-ratio sequence).
                let jitter = ((p.index.0 as f64 * 0.618_034) % 1.0 - 0.5) * 0.6;
                (col as f64 + jitter, p.reward_per_block)
            })
            .collect();
        chart.draw_series(
            points.iter().map(|&(x, y)| Circle::new((x, y), 2, colour.mix(0.6).filled())),
        )?;
        if let Some(s) = report.behaviours.iter().find(|s| s.behaviour == b) {
            let x = col as f64;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x - 0.4, s.mean), (x + 0.4, s.mean)],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    Ok(())
}

/// Share of blocks finalised in each phase (or failed), per bucket of consecutive blocks, as
/// stacked bars.
fn draw_phases<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let blocks = report.block_log.len().max(1);
    let bucket = blocks.div_ceil(200).max(1);
    let buckets = blocks.div_ceil(bucket);
    let mut counts = vec![[0u32; 6]; buckets];
    for b in &report.block_log {
        let i = (b.block as usize / bucket).min(buckets - 1);
        counts[i][b.fate.column()] += 1;
    }
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Phase in which blocks finalised ({bucket} block(s) per bar) — {}",
                report.scenario
            ),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..(buckets * bucket) as f64, 0f64..1.0)?;
    chart.configure_mesh().disable_x_mesh().x_desc("block").y_desc("share of blocks").draw()?;
    for fate in BlockFate::ALL {
        let colour = fate_colour(fate);
        let col = fate.column();
        let rects: Vec<Rectangle<(f64, f64)>> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c[col] > 0)
            .map(|(i, c)| {
                let total = f64::from(c.iter().sum::<u32>());
                let below = f64::from(c[..col].iter().sum::<u32>()) / total;
                let top = below + f64::from(c[col]) / total;
                let x0 = (i * bucket) as f64;
                Rectangle::new([(x0, below), (x0 + bucket as f64, top)], colour.filled())
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(fate.label())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

/// Mean balance of each behaviour's registered provers after each block.
fn draw_balances<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &RunReport,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (lo, hi) = report
        .balances
        .iter()
        .flat_map(|p| p.mean_balance.iter().flatten())
        .fold((0.0f64, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let last = report.balances.last().map_or(1, |p| p.block + 1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Mean balance by behaviour — {}", report.scenario), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..last, padded(lo, hi))?;
    chart.configure_mesh().x_desc("block").y_desc("mean balance").draw()?;
    for s in &report.behaviours {
        let b = s.behaviour;
        let colour = behaviour_colour(b);
        let series: Vec<(f64, f64)> = report
            .balances
            .iter()
            .filter_map(|p| p.mean_balance[b.ordinal()].map(|v| (p.block as f64 + 1.0, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(series, colour.stroke_width(2)))?
            .label(b.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// One point of a sweep: the value of the swept key and the run's report.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    /// Value of the swept key.
    pub value: i64,
    /// The run at that value.
    pub report: RunReport,
}

/// Draws the sweep's plots into `dir`: `sweep_reward` (mean reward per block of each behaviour
/// against the key) and `sweep_phases` (share of blocks finalised in each phase, and failed,
/// against the key). Returns the paths written.
///
/// # Errors
/// [`SimError::Plot`].
pub fn plot_sweep(dir: &Path, key: &str, points: &[SweepPoint]) -> SimResult<Vec<PathBuf>> {
    register_font();
    let mut written = Vec::new();
    both!(written, dir.join("sweep_reward"), |root| draw_sweep_reward(&root, key, points));
    both!(written, dir.join("sweep_phases"), |root| draw_sweep_phases(&root, key, points));
    Ok(written)
}

/// Draws the deviation analysis's plots into `dir`: `deviation_payoff` (each deviation's
/// payoff relative to honest, with its 95% interval as error bars) and `issuance_split` (the
/// issuance per block by recipient), each as PNG and SVG. Returns the paths written.
///
/// # Errors
/// [`SimError::Plot`].
pub fn plot_deviations(dir: &Path, analysis: &DeviationAnalysis) -> SimResult<Vec<PathBuf>> {
    register_font();
    let mut written = Vec::new();
    both!(written, dir.join("deviation_payoff"), |root| draw_deviation_payoff(&root, analysis));
    both!(written, dir.join("issuance_split"), |root| draw_issuance_split(&root, analysis));
    Ok(written)
}

/// One bar: its value, an optional interval drawn as an error bar, its colour.
type Bar = (f64, Option<(f64, f64)>, RGBColor);

/// A horizontal bar chart: one row per category of `labels` (the first on top), bars of
/// `bars` from zero, and their intervals as error bars.
fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    caption: &str,
    value_desc: &str,
    labels: &[String],
    bars: &[Bar],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (lo, hi) = bars.iter().fold((0.0f64, 0.0f64), |(lo, hi), (v, ci, _)| {
        let (a, b) = ci.unwrap_or((*v, *v));
        (lo.min(*v).min(a), hi.max(*v).max(b))
    });
    let n = labels.len().max(1);
    // Row of category `i`: the first category on top.
    let row = |i: usize| (n - 1 - i) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(250)
        .build_cartesian_2d(padded(lo, hi), -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let r = y.round();
            if (y - r).abs() > 1e-6 || r < 0.0 || r >= n as f64 {
                return String::new();
            }
            labels.get(n - 1 - r as usize).cloned().unwrap_or_default()
        })
        .y_label_style(("sans-serif", 15))
        .x_desc(value_desc)
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (v, _, c))| {
        let y = row(i);
        Rectangle::new([(0.0, y - 0.35), (*v, y + 0.35)], c.filled())
    }))?;
    // Error bars: a line from low to high with caps (the workspace's plotters has no
    // `errorbar` feature).
    let whiskers: Vec<Vec<(f64, f64)>> = bars
        .iter()
        .enumerate()
        .filter_map(|(i, (_, ci, _))| ci.map(|ci| (row(i), ci)))
        .flat_map(|(y, (a, b))| {
            [
                vec![(a, y), (b, y)],
                vec![(a, y - 0.15), (a, y + 0.15)],
                vec![(b, y - 0.15), (b, y + 0.15)],
            ]
        })
        .collect();
    chart.draw_series(whiskers.into_iter().map(|w| PathElement::new(w, BLACK.stroke_width(2))))?;
    chart.draw_series(LineSeries::new(
        [(0.0, -0.5), (0.0, n as f64 - 0.5)],
        BLACK.stroke_width(1),
    ))?;
    Ok(())
}

fn draw_deviation_payoff<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    analysis: &DeviationAnalysis,
) -> DrawResult<DB> {
    let labels: Vec<String> =
        analysis.deviations.iter().map(|d| d.behaviour.as_str().to_owned()).collect();
    let bars: Vec<Bar> = analysis
        .deviations
        .iter()
        .map(|d| {
            let ci = d.difference;
            (ci.mean, Some((ci.low, ci.high)), behaviour_colour(d.behaviour))
        })
        .collect();
    draw_bars(
        root,
        &format!(
            "Deviators' reward per block minus honest ({}, {} seeds, 95% intervals)",
            analysis.scenario,
            analysis.seeds.len()
        ),
        "difference in reward per block",
        &labels,
        &bars,
    )
}

fn draw_issuance_split<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    analysis: &DeviationAnalysis,
) -> DrawResult<DB> {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
    ];
    let split = &analysis.issuance.split_per_block;
    let labels: Vec<String> = split.iter().map(|(r, _)| r.label().to_owned()).collect();
    let bars: Vec<Bar> = split
        .iter()
        .map(|(r, v)| {
            let i = Recipient::ALL.iter().position(|x| x == r).unwrap_or(0);
            (*v, None, COLOURS[i % COLOURS.len()])
        })
        .collect();
    draw_bars(
        root,
        &format!(
            "Issuance per block by recipient ({}: {:.1} net per block, {:.2} per Mgas)",
            analysis.scenario, analysis.issuance.per_block, analysis.issuance.per_mgas
        ),
        "reward units per block",
        &labels,
        &bars,
    )
}

fn x_range(points: &[SweepPoint]) -> std::ops::Range<f64> {
    let lo = points.first().map_or(0.0, |p| p.value as f64);
    let hi = points.last().map_or(1.0, |p| p.value as f64);
    if hi > lo { lo..hi } else { padded(lo, hi) }
}

fn draw_sweep_reward<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    key: &str,
    points: &[SweepPoint],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (lo, hi) = points
        .iter()
        .flat_map(|p| p.report.behaviours.iter().map(|b| b.mean))
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Mean reward per block vs {key}"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range(points), padded(lo, hi))?;
    chart.configure_mesh().x_desc(key).y_desc("mean reward per active block").draw()?;
    for b in Behaviour::ALL {
        let series: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| {
                p.report
                    .behaviours
                    .iter()
                    .find(|s| s.behaviour == b)
                    .map(|s| (p.value as f64, s.mean))
            })
            .collect();
        if series.is_empty() {
            continue;
        }
        let colour = behaviour_colour(b);
        chart.draw_series(series.iter().map(|&(x, y)| Circle::new((x, y), 3, colour.filled())))?;
        chart
            .draw_series(LineSeries::new(series, colour.stroke_width(2)))?
            .label(b.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

fn draw_sweep_phases<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    key: &str,
    points: &[SweepPoint],
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("Blocks by finalising phase, and failure rate, vs {key}"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(points), 0f64..1.0)?;
    chart.configure_mesh().x_desc(key).y_desc("share of blocks").draw()?;
    for fate in BlockFate::ALL {
        let colour = if fate == BlockFate::Failed { RGBColor(0, 0, 0) } else { fate_colour(fate) };
        let series: Vec<(f64, f64)> = points
            .iter()
            .map(|p| {
                let total = p.report.blocks.max(1) as f64;
                (p.value as f64, p.report.blocks_by_fate[fate.column()] as f64 / total)
            })
            .collect();
        let label = if fate == BlockFate::Failed { "failure rate" } else { fate.label() };
        chart.draw_series(LineSeries::new(series, colour.stroke_width(2)))?.label(label).legend(
            move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)),
        );
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use phase_engine::{Phase, ProverIndex, Slot};

    use super::super::report::{AccountKind, Accumulator, BlockRecord, LedgerRow};
    use super::super::scenario::Scenario;
    use super::*;

    fn report(bonus: i64) -> RunReport {
        let s = Scenario::from_toml_str(
            "blocks = 3\nprovers = 4\n[[group]]\nbehaviour = \"honest\"\nweight = 1\n[[group]]\nbehaviour = \"copier\"\nweight = 1",
        )
        .unwrap();
        let mut acc = Accumulator::new(&s);
        for block in 0..3u64 {
            acc.add_round(&[ProverIndex(0), ProverIndex(2)], Some(Phase::T2));
            for p in 0..4u64 {
                acc.add_entry(&LedgerRow {
                    block,
                    slot: Slot(block),
                    account_kind: AccountKind::Prover,
                    account: p,
                    sub_block: 0,
                    attempt: 0,
                    phase: Phase::T2,
                    rule: "REWARD_FULL_PROOF_PROVER_T2",
                    amount: if p < 2 { 100 + bonus } else { -3 },
                });
            }
            acc.end_block(
                BlockRecord {
                    block,
                    slot: Slot(block),
                    gas: 1,
                    sub_blocks: 1,
                    rounds: 1,
                    retries: 0,
                    fate: if block == 2 {
                        BlockFate::Failed
                    } else {
                        BlockFate::Finalized(Phase::T2)
                    },
                    agg_proof: false,
                    provers_total: 0,
                    validators_total: 0,
                    entries: 4,
                },
                [block as u8; 32],
            );
        }
        acc.finish()
    }

    #[test]
    fn plots_render_to_png_and_svg_with_text() {
        let dir = tempfile::tempdir().unwrap();
        let files = plot_run(dir.path(), &report(0)).unwrap();
        assert_eq!(files.len(), 6);
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            if f.extension().unwrap() == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
            } else {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.starts_with("<svg"), "{}", f.display());
                // Labels are laid out with the embedded font.
                assert!(text.contains("<text"), "{}", f.display());
            }
        }
        let svg = std::fs::read_to_string(dir.path().join("rewards_by_behaviour.svg")).unwrap();
        assert!(svg.contains("copier") && svg.contains("honest"));
        let points = vec![
            SweepPoint { value: 0, report: report(0) },
            SweepPoint { value: 50, report: report(50) },
        ];
        let files = plot_sweep(dir.path(), "REWARD_T2_PROVER", &points).unwrap();
        assert_eq!(files.len(), 4);
        let svg = std::fs::read_to_string(dir.path().join("sweep_reward.svg")).unwrap();
        assert!(svg.contains("REWARD_T2_PROVER"));
    }
}
