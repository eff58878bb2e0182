//! `ceiling report`: analyses a run (as `analyze` does) and writes its report into a directory:
//! `report.html` (self-contained), `report.md` with `charts/*.svg`, `result.json`, and PNG charts
//! on request. [`write_report`] is shared with `demo`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use ceiling_reports::render::{self, ReportDoc, chart::DEFAULT_SIZE};
use ceiling_reports::report::{self, ReportChart};

use crate::Exit;
use crate::cli::{ReportArgs, ReportFormat};
use crate::exit::Failure;
use crate::store::Store;
use crate::store::read::RunDetail;

use super::analyze::{AnalyzeOptions, AnalyzedRun, analyze_run, gate};

/// Which files a report writes besides the SVG charts, which every report has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportFormats {
    pub html: bool,
    pub markdown: bool,
    pub json: bool,
    pub png: bool,
    /// `vllm/step-N.json` per rate step.
    pub vllm_json: bool,
}

impl ReportFormats {
    /// The `--format` list as flags.
    pub fn from_cli(formats: &[ReportFormat]) -> Self {
        let has = |f: ReportFormat| formats.contains(&f);
        ReportFormats {
            html: has(ReportFormat::Html),
            markdown: has(ReportFormat::Md),
            json: has(ReportFormat::Json),
            png: has(ReportFormat::Png),
            vllm_json: has(ReportFormat::VllmJson),
        }
    }
}

pub fn run(db: &Path, args: ReportArgs) -> anyhow::Result<Exit> {
    let opts = AnalyzeOptions::from_cli(&args.ceiling, &args.roofline)?;
    if !args.result.is_empty() {
        return super::report_results::run(db, &args, &opts);
    }
    let store = Store::open_to_read(db)?;
    let id = super::resolve_run(&store, args.run.as_deref().unwrap_or("latest"))?;
    let run = analyze_run(&store, id, &opts)
        .with_context(|| format!("analysing run {id} of {}", db.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("ceiling-report-{id}")));
    let written = write_report(&run, &out, ReportFormats::from_cli(&args.format))?;
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(gate(&opts, &run.analysis))
}

/// Writes the report of `run` into `out` in the given formats; returns the files written.
pub fn write_report(
    run: &AnalyzedRun,
    out: &Path,
    formats: ReportFormats,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let charts = write_charts(
        report::report_charts(&run.analysis, &run.data),
        out,
        formats.png,
        &mut written,
    )?;
    let mut doc = report::report_doc(&run.analysis, &charts, environment(&run.detail));
    if let Some(s) = &run.search {
        doc.verdict
            .insert(1.min(doc.verdict.len()), ("Search".into(), s.verdict()));
    }
    write_doc(&doc, out, formats, &mut written)?;
    if formats.json {
        let mut json = report::result_json(&run.analysis, &run.data, run_json(run)?);
        if let (Some(s), Some(o)) = (&run.search, json.as_object_mut()) {
            o.insert("search".into(), serde_json::to_value(s)?);
        }
        let text = serde_json::to_string_pretty(&json)?;
        write(&out.join("result.json"), text.as_bytes(), &mut written)?;
    }
    if formats.vllm_json {
        write_vllm(run, out, &mut written)?;
    }
    Ok(written)
}

/// Renders `charts` into `out/charts` (SVG, and PNG with `png`); returns each with its SVG.
pub(super) fn write_charts(
    charts: Vec<ReportChart>,
    out: &Path,
    png: bool,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<(ReportChart, String)>> {
    let charts_dir = out.join("charts");
    std::fs::create_dir_all(&charts_dir).map_err(|e| {
        Failure::Usage(format!(
            "cannot create the report directory {}: {e}; give --out a writable directory",
            charts_dir.display()
        ))
    })?;
    let (w, h) = DEFAULT_SIZE;
    let mut out = Vec::new();
    for c in charts {
        let svg = render::render_svg(&c.spec, w, h)?;
        write(
            &charts_dir.join(format!("{}.svg", c.name)),
            svg.as_bytes(),
            written,
        )?;
        if png {
            let png = render::render_png(&c.spec, w, h)?;
            write(&charts_dir.join(format!("{}.png", c.name)), &png, written)?;
        }
        out.push((c, svg));
    }
    Ok(out)
}

/// `report.html` and `report.md` of `doc`, as `formats` asks.
pub(super) fn write_doc(
    doc: &ReportDoc,
    out: &Path,
    formats: ReportFormats,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    if formats.html {
        write(
            &out.join("report.html"),
            render::html_page(doc).as_bytes(),
            written,
        )?;
    }
    if formats.markdown {
        write(
            &out.join("report.md"),
            render::markdown(doc).as_bytes(),
            written,
        )?;
    }
    Ok(())
}

/// Each rate step as vLLM's `bench serve` result, in `vllm/`; a run without rate steps has none.
fn write_vllm(run: &AnalyzedRun, out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let m = &run.detail.manifest;
    // vLLM's `%Y%m%d-%H%M%S`, from the run's RFC 3339 start.
    let date: String = m
        .started_at
        .chars()
        .take(19)
        .filter(|c| !matches!(c, '-' | ':'))
        .map(|c| if c == 'T' { '-' } else { c })
        .collect();
    let docs =
        report::vllm_json::vllm_results(&run.analysis, &run.data, m.model.as_deref(), &date)?;
    if docs.is_empty() {
        eprintln!(
            "note: run {} has no rate steps: no vllm/ results (--pattern rate or sweep)",
            run.id
        );
        return Ok(());
    }
    let dir = out.join("vllm");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (idx, doc) in docs {
        let text = serde_json::to_string_pretty(&doc)?;
        write(
            &dir.join(format!("step-{idx}.json")),
            text.as_bytes(),
            written,
        )?;
    }
    Ok(())
}

pub(super) fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    written.push(path.to_path_buf());
    Ok(())
}

/// The run's manifest as result.json carries it (the steps are in the analysis).
fn run_json(run: &AnalyzedRun) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(&run.detail)?;
    if let Some(o) = v.as_object_mut() {
        o.remove("steps");
    }
    Ok(v)
}

/// The environment section: engine, model, GPUs, host, tool, probe configuration.
pub fn environment(d: &RunDetail) -> Vec<(String, String)> {
    let m = &d.manifest;
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    let gpus = if m.gpu_inventory.is_empty() {
        "none recorded (no GPU source on the probing machine)".to_string()
    } else {
        let first = &m.gpu_inventory[0];
        format!(
            "{} × {} (driver {}, {})",
            m.gpu_inventory.len(),
            opt(&first.name),
            opt(&first.driver),
            first
                .mem_total_bytes
                .map_or("memory unknown".into(), |b| format!(
                    "{:.0} GiB",
                    b as f64 / f64::from(1u32 << 30)
                ))
        )
    };
    vec![
        (
            "Engine".into(),
            format!(
                "{} {} at {}",
                opt(&m.engine_kind),
                opt(&m.engine_version),
                opt(&m.base_url)
            ),
        ),
        ("Model".into(), opt(&m.model)),
        ("GPUs".into(), gpus),
        ("Host".into(), opt(&m.host)),
        (
            "Run".into(),
            format!(
                "{} started {} ({}), config hash {}",
                d.id,
                m.started_at,
                d.status.as_str(),
                d.probe_config_hash
            ),
        ),
        (
            "Tool".into(),
            format!(
                "ceiling {}{}",
                m.tool_version,
                m.git_sha
                    .as_ref()
                    .map_or(String::new(), |s| format!(" ({s})"))
            ),
        ),
        ("Command line".into(), m.command_line.clone()),
        ("Probe config".into(), m.probe_config.to_string()),
    ]
}
