//! `ceiling report --result ID,… [RUN]`: the report of imported results — their table, the
//! checks `check result` gives them that did not pass, and the charts load-testing practice
//! keeps for a sweep or a multi-rate file (throughput vs p99 latency, request rate vs error
//! rate), with a run's measured ceiling across the throughput chart, its fit behind the
//! `--against` checks and its GPU vs time charts when a run is named. Writes `report.html`, `report.md`, `charts/` and
//! `results.json` as `--format` asks.

use std::path::{Path, PathBuf};

use serde_json::json;

use ceiling_reports::report::ReportChart;
use ceiling_reports::report::charts::gpu_charts;
use ceiling_reports::report::results::{ImportedPoint, RunCeiling, results_charts, results_doc};
use ceiling_reports::result_check::against::AgainstRun;
use ceiling_reports::result_check::check_result;

use crate::Exit;
use crate::cli::ReportArgs;
use crate::store::Store;

use super::analyze::{AnalyzeOptions, analyze_run};
use super::check_result::stored_context;
use super::report::{ReportFormats, write, write_charts, write_doc};

/// What a named run adds: its headline ceiling, its fit and its GPU vs time charts.
#[derive(Default)]
struct RunSide {
    ceiling: Option<RunCeiling>,
    against: Option<AgainstRun>,
    gpu_charts: Vec<ReportChart>,
}

fn run_side(store: &Store, run: Option<&str>, opts: &AnalyzeOptions) -> anyhow::Result<RunSide> {
    let Some(run) = run else {
        return Ok(RunSide::default());
    };
    let id = super::resolve_run(store, run)?;
    let analysed = analyze_run(store, id, opts)?;
    let a = analysed.analysis;
    Ok(RunSide {
        ceiling: a.headline().map(|c| RunCeiling {
            run_id: id,
            throughput_tok_s: c.throughput_tok_s,
            batch_size: c.bs_per_rank * c.dp,
        }),
        against: a.fit.map(|fit| AgainstRun { run_id: id, fit }),
        gpu_charts: gpu_charts(&analysed.data),
    })
}

pub fn run(db: &Path, args: &ReportArgs, opts: &AnalyzeOptions) -> anyhow::Result<Exit> {
    let store = Store::open_to_read(db)?;
    let side = run_side(&store, args.run.as_deref(), opts)?;
    let ceiling = side.ceiling;
    let mut points = Vec::new();
    for &id in &args.result {
        let stored = store.load_result(id, true)?;
        let ctx = stored_context(&stored.deployment, side.against.clone())?;
        points.push(ImportedPoint {
            id,
            checks: check_result(&stored.point, &ctx),
            file: stored.file_path,
            point: stored.point,
        });
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let ids: Vec<String> = args.result.iter().map(i64::to_string).collect();
        PathBuf::from(format!("ceiling-results-{}", ids.join("-")))
    });
    let formats = ReportFormats::from_cli(&args.format);
    let mut written = Vec::new();
    let mut charts = results_charts(&points, ceiling);
    charts.extend(side.gpu_charts);
    let charts = write_charts(charts, &out, formats.png, &mut written)?;
    write_doc(
        &results_doc(&points, ceiling, &charts),
        &out,
        formats,
        &mut written,
    )?;
    if formats.json {
        let doc = json!({
            "tool": { "name": "ceiling", "version": env!("CARGO_PKG_VERSION") },
            "against_run": ceiling.map(|c| c.run_id),
            "run_ceiling_tok_s": ceiling.map(|c| c.throughput_tok_s),
            "results": points.iter().map(|p| json!({
                "id": p.id, "file": p.file, "point": p.point, "checks": p.checks,
            })).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&doc)?;
        write(&out.join("results.json"), text.as_bytes(), &mut written)?;
    }
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(Exit::Success)
}
