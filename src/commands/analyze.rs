//! `ceiling analyze`: loads one run from the recording, analyses it with `ceiling-reports`,
//! stores the findings (replacing any earlier set) and prints the terminal summary or JSON.

use std::path::Path;

use anyhow::Context;

use ceiling_reports::{AnalysisOptions, RunData, analyze, render_terminal};

use crate::Exit;
use crate::cli::AnalyzeArgs;
use crate::exit::Failure;
use crate::store::Store;

pub fn run(db: &Path, args: AnalyzeArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db)?;
    let id = super::resolve_run(&store, &args.run)?;
    let (data, probe_config) =
        load(&store, id).with_context(|| format!("reading run {id} from {}", db.display()))?;
    let c = &args.ceiling;
    if c.sla_otps.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
        return Err(Failure::Usage("--sla-otps must be a positive number".into()).into());
    }
    let warm = probe_config
        .get("prefix_cache")
        .and_then(serde_json::Value::as_str)
        == Some("warm");
    let opts = AnalysisOptions {
        dp: c.dp,
        sla_otps: c.sla_otps,
        sla_tpot_s: c.sla_tpot.map(|d| d.as_secs_f64()),
        kv_capacity_tokens: c.kv_capacity_tokens.map(|v| v as f64),
        max_num_seqs: c.max_num_seqs,
        prefix_cache_warm_expected: warm,
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&data, &opts);
    store
        .replace_findings(id, &analysis.findings)
        .with_context(|| format!("storing the findings of run {id}"))?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        print!("{}", render_terminal(&analysis));
    }
    Ok(Exit::Success)
}

/// Everything the analysis reads of run `id`, and the run's probe configuration.
pub fn load(store: &Store, id: i64) -> anyhow::Result<(RunData, serde_json::Value)> {
    let detail = store.run_detail(id)?;
    let dp = detail
        .manifest
        .probe_config
        .get("dp")
        .and_then(serde_json::Value::as_u64)
        .map(|v| v as u32);
    let data = RunData {
        run_id: Some(id),
        engine_kind: detail.manifest.engine_kind,
        model: detail.manifest.model,
        dp,
        steps: detail.steps,
        requests: store.load_requests(id)?,
        ticks: store.load_ticks(id)?,
        gpu: store.load_gpu_samples(id)?,
        scrapes: store.load_scrapes(id)?,
    };
    Ok((data, detail.manifest.probe_config))
}
