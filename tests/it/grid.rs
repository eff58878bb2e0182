//! Findings that never cry wolf (issue 13): the probe and the analysis over a grid of simulated
//! engines, each cell one batch size against a fresh simulator, and every `warn` or `error`
//! finding checked against what `/sim/truth` and the cell's own setting say really happened
//! (preemptions, a KV cache too small for the batch, a batch beyond the sequence cap, prefix-cache
//! hits, injected faults, reasoning longer than the output). A finding nothing explains is a
//! false alarm; a cell with an injected fault whose finding does not come is a miss.
//!
//! `a_small_grid_*` runs in CI (a few healthy cells along every axis, and two with faults). The
//! full grid is `full_grid_false_alarm_and_miss_rates`, ignored (minutes to hours) and driven by
//! `scripts/bench_grid.sh`, which prints the rates.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::time::Instant;

use ceiling::sim::{Faults, Profile, SimConfig, SimFlavor, SpecConfig, Truth};
use serde_json::Value;

mod cells;
mod judge;

pub use cells::{Cell, Fault, full_grid};
use judge::{Verdict, judge};

/// What one cell gave: its verdict and the findings it raised, for the report.
#[derive(Debug)]
pub struct CellRun {
    pub cell: Cell,
    pub verdict: Verdict,
    pub wall_s: f64,
}

/// The tokenizer chat prompts are built with, so their lengths are exact.
fn tokenizer() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tokenizers/word-level-tokenizer.json")
        .display()
        .to_string()
}

/// Runs one cell: a fresh simulator, the probe (twice with one seed for a warm prefix), the
/// analysis, the truth; then the verdict.
pub async fn run_cell(cell: Cell) -> CellRun {
    let started = Instant::now();
    let mut cfg = SimConfig::new(cell.profile());
    cfg.flavor = cell.flavor;
    cfg.dp = cell.dp;
    cfg.time_scale = cell.time_scale;
    cfg.faults = cell.faults();
    let h = ceiling::sim::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("grid.db");
    let runs = if cell.fault == Fault::WarmPrefix {
        2
    } else {
        1
    };
    let mut out = None;
    for _ in 0..runs {
        let args = cell.probe_args(&tokenizer());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        out = Some(crate::probe::probe(&db, &h.base_url(), &args).await);
    }
    let out = out.unwrap();
    let truth: Truth = h.truth();
    h.shutdown().await;
    let analysis = if out.status.code().is_some_and(|c| c <= 1) {
        Some(crate::probe::analyze_json(&db, &[]).await)
    } else {
        None
    };
    let verdict = judge(&cell, analysis.as_ref(), &truth, &out);
    if analysis.is_none() && std::env::var_os("GRID_KEEP").is_some() {
        eprintln!(
            "{cell}: probe exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    keep(&db, &cell);
    // Every cell's evidence where its recording is kept (`GRID_KEEP`), else a false alarm's.
    if (!verdict.unexplained.is_empty() || std::env::var_os("GRID_KEEP").is_some())
        && let Some(v) = &analysis
    {
        let lag = &truth.frontend_lag;
        eprintln!(
            "{}    sim front-end lag: mean {:.2} ms, max {:.2} ms over {} chunks",
            evidence(v),
            lag.mean_s * 1e3,
            lag.max_s * 1e3,
            lag.chunks
        );
    }
    CellRun {
        cell,
        verdict,
        wall_s: started.elapsed().as_secs_f64(),
    }
}

/// `GRID_KEEP=DIR`: the cell's recording is copied there (named after the cell), to read a
/// false alarm's chunks and scrapes afterwards with `ceiling analyze --db`.
fn keep(db: &std::path::Path, cell: &Cell) {
    if let Ok(dir) = std::env::var("GRID_KEEP") {
        let name: String = cell
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::create_dir_all(&dir).unwrap();
        // A probe that failed before recording leaves no database: nothing to keep.
        if db.exists() {
            std::fs::copy(db, std::path::Path::new(&dir).join(format!("{name}.db"))).unwrap();
        }
    }
}

/// What a false alarm is read against: each finding's evidence and each step's timing and the
/// client's lateness, printed under the cell's line so a failure in CI can be diagnosed.
fn evidence(v: &Value) -> String {
    let mut out = String::new();
    for f in v["findings"].as_array().into_iter().flatten() {
        out.push_str(&format!("    finding {} {}\n", f["code"], f["evidence"]));
    }
    let timings = v["timings"].as_array().into_iter().flatten();
    for (m, t) in v["steps"].as_array().into_iter().flatten().zip(timings) {
        out.push_str(&format!(
            "    step {}: window {} s, t_fwd client {} engine {} identity {}; lateness p50 {} p99 {} max {}\n",
            m["step_idx"], t["window_s"], t["t_fwd_client_s"], t["t_fwd_engine_s"],
            t["t_fwd_identity_s"], m["client_lateness_p50_s"], m["client_lateness_p99_s"],
            m["client_lateness_max_s"]
        ));
    }
    out
}

/// Runs cells one after the other (each cell's timing needs the cores) and prints a line each.
pub async fn run_all(cells: Vec<Cell>) -> Vec<CellRun> {
    let mut out = Vec::with_capacity(cells.len());
    for cell in cells {
        let run = run_cell(cell).await;
        eprintln!("{}", run.line());
        out.push(run);
    }
    out
}

impl CellRun {
    fn line(&self) -> String {
        format!(
            "{:>5.1}s {} {}",
            self.wall_s,
            self.cell,
            self.verdict.summary()
        )
    }
}

/// The rates over a set of runs: false alarms over the healthy cells, misses
/// over the cells with a fault.
#[derive(Debug, Default)]
pub struct Rates {
    pub healthy: usize,
    pub false_alarms: usize,
    pub faulty: usize,
    pub misses: usize,
    /// Fault cells whose window the analysis said was not the engine's (the client behind).
    pub void: usize,
    /// Fault cells whose fault never acted on the engine (`/sim/truth`).
    pub inert: usize,
}

impl Rates {
    pub fn of(runs: &[CellRun]) -> Rates {
        let mut r = Rates::default();
        for run in runs {
            if run.cell.fault == Fault::None {
                r.healthy += 1;
                r.false_alarms += usize::from(!run.verdict.unexplained.is_empty());
            } else {
                r.faulty += 1;
                if run.verdict.inert {
                    r.inert += 1;
                } else if run.verdict.void && !run.verdict.expected_seen {
                    r.void += 1;
                } else {
                    r.misses += usize::from(!run.verdict.expected_seen);
                }
            }
        }
        r
    }

    pub fn print(&self) {
        let pct = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        println!(
            "false-alarm rate: {:.1} % ({} of {} healthy cells raised a warn/error /sim/truth does not explain)",
            pct(self.false_alarms, self.healthy),
            self.false_alarms,
            self.healthy
        );
        let judged = self.faulty - self.void - self.inert;
        println!(
            "miss rate: {:.1} % ({} of {} cells with an injected fault raised none of its findings; {} more void: the client read behind an idle engine, client_behind_engine; {} more inert: /sim/truth says the fault never acted on the engine)",
            pct(self.misses, judged),
            self.misses,
            judged,
            self.void,
            self.inert
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_grid_of_healthy_engines_raises_no_warning_the_truth_does_not_explain() {
    let _serial = crate::sim::serial().await;
    let runs = run_all(cells::ci_grid()).await;
    let rates = Rates::of(&runs);
    rates.print();
    let alarms: Vec<String> = runs
        .iter()
        .filter(|r| r.cell.fault == Fault::None)
        .flat_map(|r| {
            r.verdict
                .unexplained
                .iter()
                .map(move |f| format!("{}: {f}", r.cell))
        })
        .collect();
    assert!(alarms.is_empty(), "false alarms:\n{}", alarms.join("\n"));
    assert!(rates.healthy >= 10, "{rates:?}");
    // The faults are seen: the grid can fail.
    let missed: Vec<String> = runs
        .iter()
        .filter(|r| r.cell.fault != Fault::None && !r.verdict.expected_seen)
        .map(|r| format!("{}: {}", r.cell, r.verdict.summary()))
        .collect();
    assert!(missed.is_empty(), "missed faults:\n{}", missed.join("\n"));
    assert_eq!(rates.faulty, 2, "{rates:?}");
}

/// The full grid (issue 13), or `GRID_CELLS` of its cells drawn with `GRID_SEED`, with and
/// without faults; prints each cell and the rates. `scripts/bench_grid.sh` runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark of minutes to hours: scripts/bench_grid.sh"]
async fn full_grid_false_alarm_and_miss_rates() {
    let n = std::env::var("GRID_CELLS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let seed = std::env::var("GRID_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(13);
    // `GRID_FILTER`: only the cells whose line holds each `|`-separated part, to rerun one.
    let filter = std::env::var("GRID_FILTER").unwrap_or_default();
    let cells: Vec<Cell> = full_grid(None, seed)
        .into_iter()
        .filter(|c| {
            let line = c.to_string();
            filter.split('|').all(|part| line.contains(part))
        })
        .collect();
    let cells = cells::draw(cells, n.unwrap_or(usize::MAX), seed);
    println!("grid: {} cells", cells.len());
    let runs = run_all(cells).await;
    for r in runs.iter().filter(|r| {
        !r.verdict.unexplained.is_empty()
            || (r.cell.fault != Fault::None && !r.verdict.expected_seen)
            || r.verdict.void
            || r.verdict.inert
    }) {
        println!("{}", r.line());
    }
    Rates::of(&runs).print();
}

/// The profile a cell names, with the cell's switches applied.
fn base_profile(name: &str) -> Profile {
    let mut p = Profile::builtin(name).unwrap();
    p.eos_probability = 0.0;
    p
}

/// Speculative decoding as the grid turns it on: 3 drafts, acceptance 0.7.
fn spec() -> SpecConfig {
    SpecConfig {
        num_speculative_tokens: 3,
        acceptance_rate: 0.7,
    }
}

/// The flavors, in the grid's order.
pub const FLAVORS: [SimFlavor; 3] = [SimFlavor::Vllm, SimFlavor::Sglang, SimFlavor::Llamacpp];

/// No fault.
fn no_faults() -> Faults {
    Faults::default()
}

/// A finding of the analysis: (code, severity, step).
fn findings(v: &Value) -> Vec<(String, String, Option<u64>)> {
    v["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["code"].as_str().unwrap_or("").to_string(),
                f["severity"].as_str().unwrap_or("").to_string(),
                f["step_idx"].as_u64(),
            )
        })
        .collect()
}
