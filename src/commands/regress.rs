//! `ceiling regress`: judges one run against the history of its key (host, GPUs, engine kind,
//! model, probe config): regression, improvement, within noise or insufficient history per
//! metric × batch size × lengths, the causes beside a regression, JUnit XML, and exit 1 with
//! `--gate` when a metric regressed. Runs of the history without kept results (recorded before
//! schema v3, or never analysed) are analysed first.

use std::path::Path;

use anyhow::Context;

use ceiling_reports::history::parquet::{self, FleetPoint};
use ceiling_reports::history::regress::RegressOptions;
use ceiling_reports::history::{self, HistoryStep, RegressReport, frame, render};

use crate::Exit;
use crate::cli::{JudgeArgs, RegressArgs};
use crate::exit::Failure;
use crate::store::Store;
use crate::store::history::HistoryFilter;

use super::analyze::{AnalyzeOptions, analyze_run};

pub fn run(db: &Path, args: RegressArgs) -> anyhow::Result<Exit> {
    let opts = options(&args.judge)?;
    let store = Store::open_to_read(db)?;
    let id = super::resolve_run(&store, &args.run)?;
    let mut report = judge(&store, id, &args.judge.baseline, &opts)?;
    if let Some(glob) = &args.history_from {
        report.fleet = fleet(glob, &report)?;
    }
    write_verdicts(&args.judge, &report)?;
    if args.output.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        super::emit(&render::render_terminal(&report));
    }
    Ok(gate(args.judge.gate, &report))
}

/// The JUnit file and the Prometheus textfile, where asked for.
pub fn write_verdicts(args: &JudgeArgs, report: &RegressReport) -> anyhow::Result<()> {
    if let Some(path) = &args.junit {
        std::fs::write(path, render::junit(report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.prom_textfile {
        // node_exporter may read the file at any moment: write beside it, then rename.
        let tmp = path.with_extension("prom.tmp");
        std::fs::write(&tmp, render::prom_textfile(report))
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The node of `r` against its fleet that night, per judged metric, from a Parquet export.
fn fleet(glob: &str, r: &RegressReport) -> anyhow::Result<Vec<(String, FleetPoint)>> {
    let date = r.started_at.get(..10).unwrap_or_default();
    let mut out = Vec::new();
    for m in frame::METRICS.iter().filter(|m| m.judged) {
        let points = parquet::scan(glob)
            .and_then(|lf| parquet::fleet_view(lf, m.name, Some(date)))
            .map_err(|e| Failure::Usage(format!("--history-from {glob:?}: {e}")))?;
        out.extend(
            points
                .into_iter()
                .filter(|p| Some(&p.host) == r.host.as_ref())
                .map(|p| (m.name.to_string(), p)),
        );
    }
    Ok(out)
}

/// Checks the flags.
pub fn options(args: &JudgeArgs) -> anyhow::Result<RegressOptions> {
    if args.last_n < 1 {
        return Err(Failure::Usage("--last must be at least 1".into()).into());
    }
    if !(args.k.is_finite() && args.k > 0.0) {
        return Err(Failure::Usage("--k must be a positive number".into()).into());
    }
    Ok(RegressOptions {
        last_n: args.last_n,
        k: args.k,
        min_effect: args.min_effect,
    })
}

/// `Exit::Gate` when asked to gate and a metric regressed.
pub fn gate(gate: bool, r: &RegressReport) -> Exit {
    let n = r.regressions().count();
    if gate && n > 0 {
        eprintln!("gate: {n} metric(s) regressed beyond noise (exit 1)");
        Exit::Gate
    } else {
        Exit::Success
    }
}

/// Judges run `id` against its history; `baseline` is `auto` or a run id to compare with alone.
pub fn judge(
    store: &Store,
    id: i64,
    baseline: &str,
    opts: &RegressOptions,
) -> anyhow::Result<RegressReport> {
    let rows = history_of(store, id)?;
    let rows = match baseline {
        "auto" => rows,
        other => only_against(rows, id, other)?,
    };
    history::regress(&rows, id, opts)
        .context("judging the history (a bug; please report it)")?
        .ok_or_else(|| {
            Failure::Usage(format!(
                "run {id} has no analysed step with a step time; `ceiling analyze {id}` says why"
            ))
            .into()
        })
}

/// The analysed steps of every run sharing run `id`'s history key, analysing first the runs
/// (and `id` itself) that have no kept results.
pub fn history_of(store: &Store, id: i64) -> anyhow::Result<Vec<HistoryStep>> {
    if !store.has_results(id)? {
        if store.is_read_only() {
            return Err(Failure::Usage(format!(
                "run {id} has no kept results and {} cannot be written to keep them: run `ceiling analyze {id}` on a writable copy first",
                store.path().display()
            ))
            .into());
        }
        analyze_run(store, id, &AnalyzeOptions::default())
            .with_context(|| format!("analysing run {id}"))?;
    }
    history_matching(store, &store.history_filter(id)?)
}

/// The analysed steps of every run matching `filter`, analysing first the complete runs that
/// have no kept results (a run that fails to analyse is left out, with a warning).
pub fn history_matching(store: &Store, filter: &HistoryFilter) -> anyhow::Result<Vec<HistoryStep>> {
    for run in store.runs_without_results(filter)? {
        if store.is_read_only() {
            eprintln!(
                "warning: run {run} left out of the history: it has no kept results and the database cannot be written to keep them"
            );
            continue;
        }
        if let Err(e) = analyze_run(store, run, &AnalyzeOptions::default()) {
            eprintln!("warning: run {run} left out of the history: {e:#}");
        }
    }
    Ok(store.history(filter)?)
}

/// The rows of run `id` and of run `baseline` alone.
fn only_against(
    rows: Vec<HistoryStep>,
    id: i64,
    baseline: &str,
) -> anyhow::Result<Vec<HistoryStep>> {
    let b: i64 = baseline.parse().map_err(|_| {
        Failure::Usage(format!(
            "--baseline {baseline:?} is neither `auto` nor a run id"
        ))
    })?;
    if !rows.iter().any(|r| r.key.run_id == b) {
        return Err(Failure::Usage(format!(
            "run {b} is not in run {id}'s history (another host, GPU, engine, model or probe \
             config, or not complete); `ceiling runs` lists the runs"
        ))
        .into());
    }
    Ok(rows
        .into_iter()
        .filter(|r| r.key.run_id == id || r.key.run_id == b)
        .collect())
}
