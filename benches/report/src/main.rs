//! Turns what `benches/run` collected into the published results: `results.md` (the timing
//! and memory tables, with the ratio elfuse/qemu-aarch64 and each target) and `ratios.svg`
//! (the ratios as bars on a logarithmic axis), next to a copy of the machine description.
//!
//! Usage: `elfuse-bench-report RESULTS_DIR OUT_DIR`. RESULTS_DIR holds:
//!
//! - `workloads.tsv`: `name ops unit target description`, tab-separated, one workload a line,
//!   in the order to show; `target` is `must R`, `should R` or `report`;
//! - `timings/NAME.ROUND.json`: `hyperfine --export-json` output for one round, with the two
//!   commands named `elfuse` and `qemu`;
//! - `memory.tsv`: `name runner kib`, one measurement a line;
//! - `skipped.tsv` (optional): `name reason` for workloads that could not run;
//! - `machine.txt`: the machine description.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;
use serde::Deserialize;

/// The two runners, as hyperfine names them.
const RUNNERS: [&str; 2] = ["elfuse", "qemu"];

/// One workload as `benches/run` describes it.
struct Workload {
    name: String,
    /// Operations in one run, to show a per-operation time.
    ops: f64,
    /// What one operation is ("call", "file", "MiB").
    unit: String,
    target: Target,
    description: String,
}

/// What the ratio elfuse/qemu should be.
#[derive(Clone, Copy)]
enum Target {
    Must(f64),
    Should(f64),
    Report,
}

impl Target {
    fn parse(text: &str) -> Result<Target> {
        let mut words = text.split_whitespace();
        Ok(match (words.next(), words.next()) {
            (Some("must"), Some(r)) => Target::Must(r.parse().context("target ratio")?),
            (Some("should"), Some(r)) => Target::Should(r.parse().context("target ratio")?),
            (Some("report"), None) => Target::Report,
            _ => bail!("bad target {text:?}"),
        })
    }

    fn limit(self) -> Option<f64> {
        match self {
            Target::Must(r) | Target::Should(r) => Some(r),
            Target::Report => None,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::Must(r) => format!("must ≤ {r}"),
            Target::Should(r) => format!("should ≤ {r}"),
            Target::Report => "report".to_string(),
        }
    }
}

/// The part of hyperfine's JSON export used here.
#[derive(Deserialize)]
struct Export {
    results: Vec<Measured>,
}

#[derive(Deserialize)]
struct Measured {
    command: String,
    times: Vec<f64>,
}

/// Median and range of a set of samples.
#[derive(Clone, Copy)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
    samples: usize,
}

impl Summary {
    fn of(mut samples: Vec<f64>) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: samples[0],
            max: samples[n - 1],
            samples: n,
        })
    }
}

/// A workload's results: a summary per runner, or why it did not run.
struct Row {
    workload: Workload,
    times: BTreeMap<String, Summary>,
    skipped: Option<String>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        Some(self.times.get("elfuse")?.median / self.times.get("qemu")?.median)
    }
}

fn main() -> Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [results, out] = args.as_slice() else {
        bail!("usage: elfuse-bench-report RESULTS_DIR OUT_DIR");
    };
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let rows = read_rows(results)?;
    let memory = read_memory(&results.join("memory.tsv"))?;
    let machine = read(&results.join("machine.txt"))?;

    std::fs::write(out.join("machine.txt"), &machine)?;
    std::fs::write(out.join("results.md"), markdown(&rows, &memory, &machine))?;
    chart(&rows, &out.join("ratios.svg"))?;
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Tab-separated lines of `path` with `fields` fields each (the last may hold anything).
fn tsv(path: &Path, fields: usize) -> Result<Vec<Vec<String>>> {
    let text = read(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let parts: Vec<String> = line.splitn(fields, '\t').map(str::to_string).collect();
            if parts.len() != fields {
                bail!("{}:{}: expected {fields} fields", path.display(), i + 1);
            }
            Ok(parts)
        })
        .collect()
}

fn read_rows(results: &Path) -> Result<Vec<Row>> {
    let skipped: BTreeMap<String, String> = match results.join("skipped.tsv") {
        path if path.exists() => tsv(&path, 2)?
            .into_iter()
            .map(|f| (f[0].clone(), f[1].clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let mut samples: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let timings = results.join("timings");
    for entry in
        std::fs::read_dir(&timings).with_context(|| format!("cannot read {}", timings.display()))?
    {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some((name, _round)) = stem.rsplit_once('.') else {
            continue;
        };
        let export: Export = serde_json::from_str(&read(&path)?)
            .with_context(|| format!("{}: not a hyperfine export", path.display()))?;
        for measured in export.results {
            samples
                .entry((name.to_string(), measured.command))
                .or_default()
                .extend(measured.times);
        }
    }

    tsv(&results.join("workloads.tsv"), 5)?
        .into_iter()
        .map(|f| {
            let workload = Workload {
                name: f[0].clone(),
                ops: f[1].parse().context("ops")?,
                unit: f[2].clone(),
                target: Target::parse(&f[3])?,
                description: f[4].clone(),
            };
            let times = RUNNERS
                .iter()
                .filter_map(|runner| {
                    let key = (workload.name.clone(), runner.to_string());
                    let summary = Summary::of(samples.get(&key).cloned().unwrap_or_default())?;
                    Some((runner.to_string(), summary))
                })
                .collect();
            let skipped = skipped.get(&workload.name).cloned();
            Ok(Row {
                workload,
                times,
                skipped,
            })
        })
        .collect()
}

/// Peak resident sizes in KiB, by (workload, runner).
fn read_memory(path: &Path) -> Result<BTreeMap<(String, String), Summary>> {
    let mut samples: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for f in tsv(path, 3)? {
        let kib: f64 = f[2]
            .trim()
            .parse()
            .with_context(|| format!("{}: size", path.display()))?;
        samples
            .entry((f[0].clone(), f[1].clone()))
            .or_default()
            .push(kib);
    }
    Ok(samples
        .into_iter()
        .filter_map(|(key, v)| Some((key, Summary::of(v)?)))
        .collect())
}

/// A duration in seconds, in the unit that reads best.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 1e-3 => format!("{:.1} ms", s * 1e3),
        s if s >= 1e-6 => format!("{:.2} µs", s * 1e6),
        s => format!("{:.0} ns", s * 1e9),
    }
}

fn markdown(rows: &[Row], memory: &BTreeMap<(String, String), Summary>, machine: &str) -> String {
    let mut md = String::new();
    md.push_str("# Benchmark results\n\n");
    md.push_str(
        "Written by `benches/run`; see [../benchmarks.md](../benchmarks.md) for what each \
         workload does and how to read this. Times are whole-process wall-clock times from \
         hyperfine: the median over every run of every round, and the range (min–max). \
         Per-operation figures divide the median by the operations in one run, start-up \
         included.\n\n",
    );
    md.push_str(
        "| workload | elfuse | qemu-aarch64 | elfuse/qemu | per op (elfuse / qemu) | target |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---|\n");
    for row in rows {
        let w = &row.workload;
        let cell = |runner: &str| match row.times.get(runner) {
            Some(s) => format!(
                "{} ({}–{})",
                duration(s.median),
                duration(s.min),
                duration(s.max)
            ),
            None => "—".to_string(),
        };
        let per_op = match (row.times.get("elfuse"), row.times.get("qemu")) {
            (Some(e), Some(q)) if w.ops > 1.0 => format!(
                "{} / {} per {}",
                duration(e.median / w.ops),
                duration(q.median / w.ops),
                w.unit
            ),
            _ => String::new(),
        };
        let (ratio, verdict) = match (row.ratio(), &row.skipped) {
            (_, Some(reason)) => ("—".to_string(), format!("not run: {reason}")),
            (Some(r), None) => {
                let met = match w.target.limit() {
                    Some(limit) if r <= limit => " ✓",
                    Some(_) => " ✗",
                    None => "",
                };
                (format!("{r:.2}"), format!("{}{met}", w.target.describe()))
            }
            (None, None) => ("—".to_string(), w.target.describe()),
        };
        let _ = writeln!(
            md,
            "| {} ({}) | {} | {} | **{ratio}** | {per_op} | {verdict} |",
            w.name,
            w.description,
            cell("elfuse"),
            cell("qemu")
        );
    }

    md.push_str("\n## Peak memory (maximum resident set size)\n\n");
    md.push_str("| program | elfuse | qemu-aarch64 | elfuse/qemu |\n|---|---:|---:|---:|\n");
    let names: Vec<&String> = memory.keys().map(|(name, _)| name).collect();
    let mut seen = Vec::new();
    for name in names {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let get = |runner: &str| memory.get(&(name.clone(), runner.to_string()));
        let mib = |s: Option<&Summary>| match s {
            Some(s) => format!("{:.1} MiB", s.median / 1024.0),
            None => "—".to_string(),
        };
        let ratio = match (get("elfuse"), get("qemu")) {
            (Some(e), Some(q)) => format!("{:.2}", e.median / q.median),
            _ => "—".to_string(),
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {ratio} |",
            mib(get("elfuse")),
            mib(get("qemu"))
        );
    }

    let samples: usize = rows
        .iter()
        .flat_map(|r| r.times.values())
        .map(|s| s.samples)
        .sum();
    let _ = write!(
        md,
        "\n{samples} timed runs in all.\n\n## Machine\n\n```text\n{}\n```\n",
        machine.trim_end()
    );
    md
}

/// The ratios as horizontal bars on a log scale, with the parity line at 1.
fn chart(rows: &[Row], path: &Path) -> Result<()> {
    let measured: Vec<(&Row, f64)> = rows.iter().filter_map(|r| Some((r, r.ratio()?))).collect();
    if measured.is_empty() {
        bail!("no workload has timings for both runners");
    }
    let low = measured.iter().map(|m| m.1).fold(0.5, f64::min) / 1.5;
    let high = measured.iter().map(|m| m.1).fold(2.0, f64::max) * 1.5;
    let height = 80 + 32 * measured.len() as u32;

    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("drawing {}: {e:?}", path.display());
    if measured.len() < 2 {
        bail!(
            "the chart needs two workloads with timings, not {}",
            measured.len()
        );
    }
    root.fill(&WHITE).map_err(draw)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "elfuse / qemu-aarch64 wall-clock time (lower is better)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(150)
        .build_cartesian_2d(
            (low..high).log_scale(),
            (0..measured.len() - 1).into_segmented(),
        )
        .map_err(draw)?;
    let names: Vec<String> = measured
        .iter()
        .map(|(r, _)| r.workload.name.clone())
        .collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(measured.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => {
                names.get(names.len() - 1 - *i).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .x_labels(12)
        .x_label_formatter(&|x| format!("{x:.2}"))
        .x_desc("ratio (log scale)")
        .draw()
        .map_err(draw)?;

    chart
        .draw_series(measured.iter().enumerate().map(|(i, (row, ratio))| {
            let color = match row.workload.target.limit() {
                Some(limit) if *ratio <= limit => RGBColor(46, 139, 87),
                Some(_) => RGBColor(200, 60, 60),
                None => RGBColor(120, 120, 140),
            };
            // The first workload at the top.
            let slot = measured.len() - 1 - i;
            let top = SegmentValue::Exact(slot);
            let bottom = SegmentValue::Exact(slot + 1);
            let mut bar = Rectangle::new([(low, top), (*ratio, bottom)], color.filled());
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(draw)?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
            BLACK.stroke_width(2),
        )))
        .map_err(draw)?;
    root.present().map_err(draw)?;
    Ok(())
}
