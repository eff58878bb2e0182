//! `ceiling history`: one metric's trend over the nights of a history key (or of the runs the
//! --host/--gpu/--model flags choose): per night its value, the noise band of its baseline,
//! the verdict and the version changes, printed or as JSON, and the trend chart as SVG or PNG.

use std::path::Path;

use anyhow::Context;

use ceiling_reports::history::regress::RegressOptions;
use ceiling_reports::history::trend::{self, TrendPoint};
use ceiling_reports::history::{frame, parquet};
use ceiling_reports::render::chart::{DEFAULT_SIZE, render_png, render_svg};

use crate::Exit;
use crate::cli::HistoryArgs;
use crate::exit::Failure;
use crate::store::Store;
use crate::store::history::HistoryFilter;

use super::regress::{history_matching, history_of};

pub fn run(db: &Path, args: HistoryArgs) -> anyhow::Result<Exit> {
    if frame::metric(&args.metric).is_none() {
        let names: Vec<&str> = frame::METRICS.iter().map(|m| m.name).collect();
        return Err(Failure::Usage(format!(
            "unknown --metric {:?}; the history follows {}",
            args.metric,
            names.join(", ")
        ))
        .into());
    }
    if args.last < 1 || args.baseline_runs < 1 {
        return Err(Failure::Usage("--last and --baseline-runs must be at least 1".into()).into());
    }
    if let Some(glob) = &args.from {
        return fleet(glob, &args);
    }
    let store = Store::open_to_read(db)?;
    let by_flags = args.host.is_some() || args.gpu.is_some() || args.model.is_some();
    let rows = if by_flags {
        history_matching(
            &store,
            &HistoryFilter {
                host: args.host.clone(),
                gpu_model: args.gpu.clone(),
                model: args.model.clone(),
                ..HistoryFilter::default()
            },
        )?
    } else {
        let id = super::resolve_run(&store, args.like.as_deref().unwrap_or("latest"))?;
        history_of(&store, id)?
    };
    let opts = RegressOptions {
        last_n: args.baseline_runs,
        ..RegressOptions::default()
    };
    let points = trend::trend(&rows, &args.metric, args.bs, args.last, &opts)
        .context("computing the trend (a bug; please report it)")?;
    if points.is_empty() {
        return Err(Failure::Usage(format!(
            "no analysed night has {}{}; `ceiling runs` lists the runs",
            args.metric,
            args.bs.map(|b| format!(" at bs {b}")).unwrap_or_default()
        ))
        .into());
    }
    if let Some(path) = &args.chart {
        write_chart(path, &points, &args.metric)?;
    }
    if args.output.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&points)?));
    } else {
        super::emit(&table(&points));
    }
    Ok(Exit::Success)
}

/// The cross-node view of a fleet's Parquet export.
fn fleet(glob: &str, args: &HistoryArgs) -> anyhow::Result<Exit> {
    let lf = parquet::scan(glob).map_err(|e| {
        Failure::Usage(format!("--from {glob:?}: no Parquet export read ({e}); pass a glob such as 'DIR/**/*.parquet' over `ceiling export`'s files"))
    })?;
    let mut points = parquet::fleet_view(lf, &args.metric, args.date.as_deref())
        .map_err(|e| Failure::Usage(format!("--from {glob:?}: {e}")))?;
    if let Some(bs) = args.bs {
        points.retain(|p| p.batch_size == bs);
    }
    if args.output.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&points)?));
        return Ok(Exit::Success);
    }
    let mut out = format!(
        "{:<24} {:<12} {:>5} {:>12} {:>12} {:>6} {:>8}\n",
        "host", "date", "bs", "value", "fleet med", "nodes", "z"
    );
    for p in &points {
        out.push_str(&format!(
            "{:<24} {:<12} {:>5} {:>12.6} {:>12.6} {:>6} {:>8}\n",
            p.host,
            p.date,
            p.batch_size,
            p.value,
            p.fleet_median,
            p.nodes,
            p.z_text()
        ));
    }
    super::emit(&out);
    Ok(Exit::Success)
}

fn write_chart(path: &Path, points: &[TrendPoint], metric: &str) -> anyhow::Result<()> {
    let spec = trend::chart(points, metric);
    let (w, h) = DEFAULT_SIZE;
    let png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let bytes = if png {
        render_png(&spec, w, h)?
    } else {
        render_svg(&spec, w, h)?.into_bytes()
    };
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn table(points: &[TrendPoint]) -> String {
    let mut out = format!(
        "{:>6}  {:<24} {:>5} {:>12} {:>12} {:>25}  {:<20} changes\n",
        "run", "started", "bs", "value", "median", "noise band", "verdict"
    );
    for p in points {
        let band = p
            .band
            .map_or_else(|| "-".into(), |[a, b]| format!("{a:.6} … {b:.6}"));
        out.push_str(&format!(
            "{:>6}  {:<24} {:>5} {:>12.6} {:>12} {:>25}  {:<20} {}\n",
            p.run_id,
            p.started_at,
            p.batch_size,
            p.value,
            p.baseline_median
                .map_or_else(|| "-".into(), |m| format!("{m:.6}")),
            band,
            p.verdict.as_str(),
            p.changes.join("; ")
        ));
    }
    out
}
