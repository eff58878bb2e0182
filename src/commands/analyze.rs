//! `ceiling analyze`: loads one run from the recording, analyses it with `ceiling-reports`,
//! stores the findings (replacing any earlier set) and prints the terminal summary or JSON.
//! [`analyze_run`] is the shared path `report`, `probe` and `demo` take too, under an
//! [`AnalyzeOptions`] validated from the flags ([`AnalyzeOptions::from_cli`]) or built in code.

use std::path::{Path, PathBuf};

use anyhow::Context;

use ceiling_reports::gpu_specs::GpuSpecOverride;
use ceiling_reports::model::{KvDtype, WeightDtype};
use ceiling_reports::roofline::Roofline;
use ceiling_reports::{Analysis, AnalysisOptions, Recording, analyze, render_terminal};

use crate::Exit;
use crate::cli::{AnalyzeArgs, CeilingArgs, RunRooflineArgs};
use crate::config::ProbeSettings;
use crate::exit::Failure;
use crate::store::Store;
use crate::store::read::RunDetail;

use super::roofline::{kv_dtype, load_model_shape, resolve_gpu, weight_dtype};

/// What a run is analysed under: the ceiling's constraints, the gate, the roofline. Checked;
/// `None` takes the recording's value (the probe's `--dp`, the engine's KV capacity and
/// sequence cap) or the analysis's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeOptions {
    /// Minimum output tokens/s per sequence; positive.
    pub sla_otps: Option<f64>,
    pub sla_tpot_s: Option<f64>,
    pub dp: Option<u32>,
    pub kv_capacity_tokens: Option<u64>,
    pub max_num_seqs: Option<u32>,
    /// Exit 1 when any finding is an `error`.
    pub gate: bool,
    /// The macro ceiling's p99 TTFT limit; `None`: the probe's `--sla-ttft`.
    pub sla_ttft_s: Option<f64>,
    /// A run whose micro ceiling the macro one is set beside.
    pub against: Option<String>,
    pub roofline: Option<RooflineOptions>,
}

/// The deployment a run's step times are compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct RooflineOptions {
    /// The model's `config.json`.
    pub model_config: PathBuf,
    /// A GPU name the datasheet table knows; `None`: the run's first recorded GPU.
    pub gpu: Option<String>,
    /// Tensor-parallel size, at least 1.
    pub tp: u32,
    /// `None`: as the config says.
    pub weight_dtype: Option<WeightDtype>,
    pub kv_dtype: KvDtype,
}

impl AnalyzeOptions {
    /// Checks and resolves the flags of `analyze` and `report`.
    pub fn from_cli(c: &CeilingArgs, r: &RunRooflineArgs) -> anyhow::Result<Self> {
        Ok(AnalyzeOptions {
            roofline: r.model_config.clone().map(|model_config| RooflineOptions {
                model_config,
                gpu: r.gpu.clone(),
                tp: r.tp.max(1),
                weight_dtype: r.weight_dtype.map(weight_dtype),
                kv_dtype: kv_dtype(r.kv_dtype),
            }),
            ..Self::from_ceiling_flags(c)?
        })
    }

    /// Checks and resolves the ceiling's flags alone (`demo` sets its own roofline); no
    /// roofline.
    pub fn from_ceiling_flags(c: &CeilingArgs) -> anyhow::Result<Self> {
        if c.sla_otps.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err(Failure::Usage("--sla-otps must be a positive number".into()).into());
        }
        if c.sla_tpot.is_some_and(|d| d.is_zero()) {
            return Err(Failure::Usage("--sla-tpot must be longer than 0".into()).into());
        }
        if c.dp == Some(0) {
            return Err(Failure::Usage("--dp must be at least 1".into()).into());
        }
        Ok(AnalyzeOptions {
            sla_otps: c.sla_otps,
            sla_tpot_s: c.sla_tpot.map(|d| d.as_secs_f64()),
            dp: c.dp,
            kv_capacity_tokens: c.kv_capacity_tokens,
            max_num_seqs: c.max_num_seqs,
            gate: c.gate,
            roofline: None,
            sla_ttft_s: c.sla_ttft.map(|d| d.as_secs_f64()),
            against: c.against.clone(),
        })
    }
}

pub fn run(db: &Path, args: AnalyzeArgs) -> anyhow::Result<Exit> {
    let opts = AnalyzeOptions::from_cli(&args.ceiling, &args.roofline)?;
    let store = Store::open_to_read(db)?;
    let id = super::resolve_run(&store, &args.run)?;
    let run = analyze_run(&store, id, &opts)
        .with_context(|| format!("analysing run {id} of {}", db.display()))?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&run.analysis)?);
    } else {
        print_terminal(&run.analysis);
        print_search(run.search.as_ref());
    }
    Ok(gate(&opts, &run.analysis))
}

/// Prints the terminal summary, the severities coloured when stdout is a terminal and
/// `NO_COLOR` is unset.
pub fn print_terminal(a: &Analysis) {
    use std::io::IsTerminal;
    let text = crate::printable::printable(&render_terminal(a)).into_owned();
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        print!("{}", ceiling_reports::terminal::colourize(&text));
    } else {
        print!("{text}");
    }
}

/// The search's section after the analysis, for a `--batch-sizes auto` run.
pub fn print_search(search: Option<&crate::search::SearchReport>) {
    if let Some(s) = search {
        println!();
        for line in s.lines() {
            println!("{}", crate::printable::printable(&line));
        }
    }
}

/// `Exit::Gate` when asked to gate (`--gate`) and an `error` finding is present.
pub fn gate(opts: &AnalyzeOptions, a: &Analysis) -> Exit {
    if opts.gate && a.has_errors() {
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
    /// The search's path and outcome, for a `--batch-sizes auto` run.
    pub search: Option<crate::search::SearchReport>,
}

/// Loads run `id`, analyses it under `opts`, stores the findings and kept results (unless the
/// store is read-only).
pub fn analyze_run(store: &Store, id: i64, opts: &AnalyzeOptions) -> anyhow::Result<AnalyzedRun> {
    let detail = store.run_detail(id)?;
    let settings = probe_settings(id, &detail)?;
    let data = run_data(store, id, &settings)?;
    // Flags first, then what the engine said of itself (llama.cpp's slots from `/props`).
    let limits = detail.manifest.engine_limits.clone().unwrap_or_default();
    let rate = settings.rate.as_ref();
    // The open loop's SLA, given or stored; the `--against` run is judged under the same TPOT.
    let sla_tpot_s = opts.sla_tpot_s.or(rate.and_then(|r| r.sla_tpot_s));
    let analysis_opts = AnalysisOptions {
        dp: opts.dp,
        sla_otps: opts.sla_otps,
        sla_tpot_s,
        sla_ttft_s: opts.sla_ttft_s.or(rate.and_then(|r| r.sla_ttft_s)),
        against: against(
            store,
            &AnalyzeOptions {
                sla_tpot_s,
                ..opts.clone()
            },
        )?,
        kv_capacity_tokens: opts
            .kv_capacity_tokens
            .or(limits.kv_capacity_tokens)
            .map(|v| v as f64),
        max_num_seqs: opts.max_num_seqs.or(limits.max_seqs),
        prefix_cache_warm_expected: settings.prefix_cache_warm,
        roofline: opts
            .roofline
            .as_ref()
            .map(|r| roofline(r, &detail))
            .transpose()?,
        ..AnalysisOptions::default()
    };
    let (analysis, search) = match &settings.search {
        Some(s) => {
            let (a, r) = crate::search::section::analyze_search(s, &data, analysis_opts)?;
            (a, Some(r))
        }
        None => (analyze(&data, &analysis_opts)?, None),
    };
    // A database that cannot be written is read as it is ([`Store::open_to_read`]).
    if !store.is_read_only() {
        store
            .replace_findings(id, &analysis.findings)
            .with_context(|| format!("storing the findings of run {id}"))?;
        let (run_result, step_results) = ceiling_reports::history::results_of(&analysis);
        store
            .replace_results(id, &run_result, &step_results)
            .with_context(|| format!("storing the results of run {id}"))?;
    }
    Ok(AnalyzedRun {
        id,
        detail,
        data,
        analysis,
        search,
    })
}

/// The micro ceiling (and fit) of the `--against` run under `opts` (the SLA of the run it is set
/// beside), for the macro ceiling to be set beside.
fn against(
    store: &Store,
    opts: &AnalyzeOptions,
) -> anyhow::Result<
    Option<(
        ceiling_reports::ceiling::Ceiling,
        Option<ceiling_reports::fit::StepTimeFit>,
    )>,
> {
    let Some(run) = &opts.against else {
        return Ok(None);
    };
    let id = super::resolve_run(store, run)?;
    let other = analyze_run(
        store,
        id,
        &AnalyzeOptions {
            against: None,
            gate: false,
            ..opts.clone()
        },
    )?;
    let Some(c) = other.analysis.headline().cloned() else {
        return Err(Failure::Usage(format!(
            "--against {run}: run {id} has no micro ceiling (no wave or closed-loop step with a step time)"
        ))
        .into());
    };
    Ok(Some((c, other.analysis.fit.clone())))
}

/// The run's stored probe configuration, through its type; a stored value of the wrong type is
/// a corrupt recording (exit 2).
fn probe_settings(id: i64, detail: &RunDetail) -> anyhow::Result<ProbeSettings> {
    ProbeSettings::from_stored(&detail.manifest.probe_config).map_err(|e| {
        Failure::Usage(format!(
            "run {id}'s stored probe config does not read as probe settings: {e}"
        ))
        .into()
    })
}

/// The deployment's roofline; the GPU is the option's, else the run's first recorded GPU.
fn roofline(r: &RooflineOptions, detail: &RunDetail) -> anyhow::Result<Roofline> {
    let shape = load_model_shape(&r.model_config)?;
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
    Ok(Roofline::new(
        &shape,
        &gpu,
        r.tp,
        r.weight_dtype,
        r.kv_dtype,
    ))
}

/// The recording of run `id`, with the DP ranks its stored probe settings name.
fn run_data(store: &Store, id: i64, settings: &ProbeSettings) -> anyhow::Result<Recording> {
    let mut rec = store.load_recording(id)?;
    rec.dp = Some(settings.dp);
    Ok(rec)
}
