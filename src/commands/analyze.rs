//! `ceiling analyze`: loads one run from the recording, analyses it with `ceiling-reports`,
//! stores the findings (replacing any earlier set) and prints the terminal summary or JSON.
//! [`analyze_run`] is the shared path `report`, `probe` and `demo` take too.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use ceiling_reports::analysis::Roofline as RooflineFn;
use ceiling_reports::gpu_specs::GpuSpecOverride;
use ceiling_reports::roofline::Roofline;
use ceiling_reports::{Analysis, AnalysisOptions, Recording, analyze, render_terminal};

use crate::Exit;
use crate::cli::{AnalyzeArgs, CeilingArgs, RunRooflineArgs};
use crate::exit::Failure;
use crate::store::Store;
use crate::store::read::RunDetail;

use super::roofline::{kv_dtype, load_model_shape, resolve_gpu, weight_dtype};

pub fn run(db: &Path, args: AnalyzeArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db)?;
    let id = super::resolve_run(&store, &args.run)?;
    let run = analyze_run(&store, id, &args.ceiling, &args.roofline)
        .with_context(|| format!("analysing run {id} of {}", db.display()))?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&run.analysis)?);
    } else {
        print_terminal(&run.analysis);
    }
    Ok(gate(&args.ceiling, &run.analysis))
}

/// Prints the terminal summary, the severities coloured when stdout is a terminal and
/// `NO_COLOR` is unset.
pub fn print_terminal(a: &Analysis) {
    use std::io::IsTerminal;
    let text = render_terminal(a);
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        print!("{}", ceiling_reports::terminal::colourize(&text));
    } else {
        print!("{text}");
    }
}

/// `Exit::Gate` when asked to gate (`--gate`) and an `error` finding is present.
pub fn gate(c: &CeilingArgs, a: &Analysis) -> Exit {
    if c.gate && a.has_errors() {
        eprintln!("gate: the run has `error` findings (exit 1)");
        Exit::Gate
    } else {
        Exit::Success
    }
}

/// One run loaded and analysed, its findings stored.
pub struct AnalyzedRun {
    pub id: i64,
    pub detail: RunDetail,
    pub data: Recording,
    pub analysis: Analysis,
}

/// Loads run `id`, analyses it under the given constraints and roofline, stores the findings.
pub fn analyze_run(
    store: &Store,
    id: i64,
    c: &CeilingArgs,
    roof: &RunRooflineArgs,
) -> anyhow::Result<AnalyzedRun> {
    if c.sla_otps.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
        return Err(Failure::Usage("--sla-otps must be a positive number".into()).into());
    }
    let detail = store.run_detail(id)?;
    let data = run_data(store, id, &detail)?;
    // The probe stores `prefix_cache_warm: true` when `--prefix-cache warm` was asked.
    let warm = detail
        .manifest
        .probe_config
        .get("prefix_cache_warm")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    // Flags first, then what the engine said of itself (llama.cpp's slots from `/props`).
    let limits = detail.manifest.engine_limits.clone().unwrap_or_default();
    let opts = AnalysisOptions {
        dp: c.dp,
        sla_otps: c.sla_otps,
        sla_tpot_s: c.sla_tpot.map(|d| d.as_secs_f64()),
        kv_capacity_tokens: c
            .kv_capacity_tokens
            .or(limits.kv_capacity_tokens)
            .map(|v| v as f64),
        max_num_seqs: c.max_num_seqs.or(limits.max_seqs),
        prefix_cache_warm_expected: warm,
        roofline: roofline(roof, &detail)?,
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&data, &opts)?;
    store
        .replace_findings(id, &analysis.findings)
        .with_context(|| format!("storing the findings of run {id}"))?;
    Ok(AnalyzedRun {
        id,
        detail,
        data,
        analysis,
    })
}

/// The roofline's `t_min(bs per rank, context)` when a model config was given; the GPU is the
/// flag's, else the run's first recorded GPU.
fn roofline(r: &RunRooflineArgs, detail: &RunDetail) -> anyhow::Result<Option<RooflineFn>> {
    let Some(path) = &r.model_config else {
        return Ok(None);
    };
    let shape = load_model_shape(path)?;
    let recorded = detail
        .manifest
        .gpu_inventory
        .first()
        .and_then(|g| g.name.clone());
    let Some(name) = r.gpu.clone().or(recorded) else {
        return Err(Failure::Usage(
            "the run recorded no GPU; give --gpu NAME (e.g. H100) to compare with the roofline"
                .into(),
        )
        .into());
    };
    let gpu = resolve_gpu(&name, &GpuSpecOverride::default())?;
    let line = Roofline::new(
        &shape,
        &gpu,
        r.tp,
        r.weight_dtype.map(weight_dtype),
        kv_dtype(r.kv_dtype),
    );
    Ok(Some(Arc::new(move |bs: f64, ctx: f64| {
        line.at(bs.round().max(1.0) as u32, ctx.round().max(1.0) as u32)
            .t_min_s
    })))
}

/// Everything the analysis reads of run `id`, and the run's probe configuration.
pub fn load(store: &Store, id: i64) -> anyhow::Result<(Recording, serde_json::Value)> {
    let detail = store.run_detail(id)?;
    let data = run_data(store, id, &detail)?;
    Ok((data, detail.manifest.probe_config))
}

fn run_data(store: &Store, id: i64, detail: &RunDetail) -> anyhow::Result<Recording> {
    let dp = detail
        .manifest
        .probe_config
        .get("dp")
        .and_then(serde_json::Value::as_u64)
        .map(|v| v as u32);
    let mut rec = store.load_recording(id)?;
    rec.dp = dp;
    Ok(rec)
}
