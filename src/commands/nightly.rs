//! `ceiling nightly`: one night of one node. Probes the engine (the probe's flags), analyses
//! the run, judges it against the node's history as `regress` does, writes the nightly report
//! (`nightly.html`, `nightly.md`, trend charts in `charts/`) beside the run's own report
//! (`run/`), the JUnit file and the Prometheus textfile where asked, prints the morning's line,
//! and exits 1 with `--gate` when a metric regressed.

use std::path::{Path, PathBuf};

use anyhow::Context;

use ceiling_reports::history::nightly::{NightlyParts, nightly_doc};
use ceiling_reports::history::regress::RegressOptions;
use ceiling_reports::history::{HistoryStep, RegressReport, render, trend};
use ceiling_reports::render::{DocChart, chart::DEFAULT_SIZE, html_page, markdown, render_svg};

use crate::Exit;
use crate::cli::NightlyArgs;
use crate::config::ProbeConfig;
use crate::exit::Failure;
use crate::run::probe_run;
use crate::store::{RunStatus, Store};

use super::analyze::{AnalyzedRun, analyze_run};
use super::regress::{self, history_of};
use super::report::{ReportFormats, environment, write_report};

/// Nights a trend chart shows.
const TREND_NIGHTS: usize = 30;

pub async fn run(db: &Path, args: &NightlyArgs) -> anyhow::Result<Exit> {
    // Every flag is checked before the engine is driven.
    let opts = regress::options(&args.judge)?;
    let cfg = ProbeConfig::from_cli(&args.probe)?;
    let command_line = crate::redact::command_line(std::env::args());
    let out = probe_run(db, &cfg, command_line).await?;
    let id = out.run_id;
    if out.status == RunStatus::Interrupted {
        return Err(Failure::Usage(format!(
            "run {id} was interrupted: a partial night is not judged; `ceiling regress {id}` \
             judges it by hand"
        ))
        .into());
    }
    if out.ok == 0 {
        return Err(Failure::Unreachable(format!(
            "no request succeeded in run {id}; `ceiling runs show {id}` has the errors"
        ))
        .into());
    }
    let store = Store::open(db)?;
    let run = analyze_run(&store, id, &super::probe::analyze_options(&args.probe))
        .with_context(|| format!("analysing run {id}"))?;
    let report = regress::judge(&store, id, &args.judge.baseline, &opts)?;
    regress::write_verdicts(&args.judge, &report)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("ceiling-nightly-{id}")));
    let rows = history_of(&store, id)?;
    let written = write_nightly(&run, &report, &rows, &opts, &dir, args.judge.gate)?;
    if cfg.json {
        let v = serde_json::json!({
            "run_id": id,
            "regress": &report,
            "written": written,
        });
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    } else {
        let mut text = render::render_terminal(&report);
        for p in &written {
            text.push_str(&format!("wrote {}\n", p.display()));
        }
        super::emit(&text);
    }
    Ok(regress::gate(args.judge.gate, &report))
}

/// The run's report in `dir/run/`, then the nightly report in `dir`; the files written.
pub fn write_nightly(
    run: &AnalyzedRun,
    report: &RegressReport,
    rows: &[HistoryStep],
    opts: &RegressOptions,
    dir: &Path,
    gate: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let formats = ReportFormats {
        html: true,
        markdown: true,
        json: true,
        ..ReportFormats::default()
    };
    let mut written = write_report(run, &dir.join("run"), formats)?;
    let mut charts = Vec::new();
    for (metric, bs) in charted(report) {
        let points = trend::trend(rows, &metric, Some(bs), TREND_NIGHTS, opts)
            .context("computing the trend (a bug; please report it)")?;
        if points.is_empty() {
            continue;
        }
        let (w, h) = DEFAULT_SIZE;
        let svg = render_svg(&trend::chart(&points, &metric), w, h)?;
        let file = format!("charts/trend-{metric}-bs{bs}.svg");
        write(&dir.join(&file), svg.as_bytes(), &mut written)?;
        charts.push(DocChart {
            caption: format!(
                "{metric} at bs {bs}, the last {} nights, with the baseline's noise band and the version changes",
                points.len()
            ),
            file,
            svg,
        });
    }
    let doc = nightly_doc(
        report,
        NightlyParts {
            charts,
            environment: environment(&run.detail),
            run_report: "run/report.html".into(),
            gate,
        },
    );
    write(
        &dir.join("nightly.html"),
        html_page(&doc).as_bytes(),
        &mut written,
    )?;
    write(
        &dir.join("nightly.md"),
        markdown(&doc).as_bytes(),
        &mut written,
    )?;
    Ok(written)
}

/// The trends shown: each regressed metric at its batch size, and the step time at the largest
/// batch size judged (the night's headline figure, regressed or not).
fn charted(r: &RegressReport) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = r
        .regressions()
        .map(|v| (v.metric.clone(), v.batch_size))
        .collect();
    if let Some(bs) = r
        .verdicts
        .iter()
        .filter(|v| v.metric == "t_fwd_s")
        .map(|v| v.batch_size)
        .max()
    {
        out.insert(0, ("t_fwd_s".into(), bs));
    }
    // The step time first (the night's headline figure), then by metric and batch size.
    out.sort_by(|a, b| (a.0 != "t_fwd_s", &a.0, a.1).cmp(&(b.0 != "t_fwd_s", &b.0, b.1)));
    out.dedup();
    out
}

fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            Failure::Usage(format!(
                "cannot create {}: {e}; give --out a writable directory",
                parent.display()
            ))
        })?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    written.push(path.to_path_buf());
    Ok(())
}
