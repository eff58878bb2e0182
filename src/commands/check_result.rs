//! `ceiling check result FILE|RESULT_ID`: the plausibility checks of a benchmark result, read
//! from the store (an imported result's id) or straight from a file (nothing stored).

use std::path::Path;

use serde_json::json;

use ceiling_reports::model::{KvDtype, ModelShape};
use ceiling_reports::peer::PeerPoint;
use ceiling_reports::result_check::against::AgainstRun;
use ceiling_reports::result_check::{
    CheckContext, DEFAULT_SLA_OTPS, Verdict, check_result, render,
};
use ceiling_reports::roofline::Roofline;

use crate::Exit;
use crate::cli::CheckResultArgs;
use crate::exit::Failure;
use crate::store::Store;
use crate::store::results::Deployment;

/// The points to check, with a title each, and the deployment stated at import.
fn resolve(
    db: &Path,
    args: &CheckResultArgs,
) -> anyhow::Result<(Vec<(String, PeerPoint)>, Deployment)> {
    let path = Path::new(&args.result);
    if path.is_file() {
        let file = super::import::read_file(path, super::import::tool(args.tool))?;
        let n = file.points.len();
        let points = file
            .points
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let label = p
                    .label
                    .clone()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                let at = if n > 1 {
                    format!(" point {}", i + 1)
                } else {
                    String::new()
                };
                (
                    format!("{}{at}: {}{label}", path.display(), p.tool.as_str()),
                    p,
                )
            })
            .collect();
        return Ok((points, Deployment::default()));
    }
    let id: i64 = args.result.parse().map_err(|_| {
        Failure::Usage(format!(
            "{:?} is neither a file nor a result id; `ceiling results` lists the ids",
            args.result
        ))
    })?;
    let stored = Store::open_to_read(db)?.load_result(id, true)?;
    let title = format!(
        "result {id}: {} {}{}",
        stored.point.tool.as_str(),
        stored.point.label.clone().unwrap_or_default(),
        stored
            .point
            .model
            .as_ref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default()
    );
    Ok((vec![(title, stored.point)], stored.deployment))
}

/// The roofline of the stated model on the stated GPU, when both are known.
fn roofline(args: &CheckResultArgs, stored: &Deployment) -> anyhow::Result<Option<Roofline>> {
    let config = match &args.deployment.model_config {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!("cannot read model config {}: {e}", path.display()))
        })?),
        None => stored.model_config.clone(),
    };
    let gpu = args.deployment.gpu.clone().or_else(|| stored.gpu.clone());
    let (Some(config), Some(gpu)) = (config, gpu) else {
        return Ok(None);
    };
    let tp = args.deployment.tp.or(stored.tp).unwrap_or(1);
    roofline_of(&config, &gpu, tp).map(Some)
}

/// The roofline of a model's `config.json` text on a GPU at a TP size.
fn roofline_of(config: &str, gpu: &str, tp: u32) -> anyhow::Result<Roofline> {
    let shape = ModelShape::from_config_json(config)
        .map_err(|e| Failure::Usage(format!("model config: {e}")))?;
    let spec = super::roofline::resolve_gpu(gpu, &Default::default())?;
    Ok(Roofline::new(&shape, &spec, tp, None, KvDtype::Bf16))
}

/// The checks' context from what was imported with a result alone, and a run to hold it
/// against (the results report).
pub fn stored_context(
    stored: &Deployment,
    against: Option<AgainstRun>,
) -> anyhow::Result<CheckContext> {
    let roofline = match (&stored.model_config, &stored.gpu) {
        (Some(config), Some(gpu)) => Some(roofline_of(config, gpu, stored.tp.unwrap_or(1))?),
        _ => None,
    };
    Ok(CheckContext {
        roofline,
        dp: stored.dp.unwrap_or(1),
        sla_otps: DEFAULT_SLA_OTPS,
        against,
    })
}

/// The run named by `--against`, analysed, with its step-time fit.
fn against(db: &Path, run: &str) -> anyhow::Result<AgainstRun> {
    let store = Store::open_to_read(db)?;
    let id = super::resolve_run(&store, run)?;
    let opts = super::analyze::AnalyzeOptions::from_ceiling_flags(&Default::default())?;
    let analysed = super::analyze::analyze_run(&store, id, &opts)?;
    let fit = analysed.analysis.fit.ok_or_else(|| {
        Failure::Usage(format!(
            "run {id} has no step-time fit to predict from (it needs steps at two or more batch sizes); probe more batch sizes"
        ))
    })?;
    Ok(AgainstRun { run_id: id, fit })
}

pub fn run(db: &Path, args: &CheckResultArgs) -> anyhow::Result<Exit> {
    let (points, stored) = resolve(db, args)?;
    let ctx = CheckContext {
        against: args
            .against
            .as_deref()
            .map(|r| against(db, r))
            .transpose()?,
        roofline: roofline(args, &stored)?,
        dp: args.deployment.dp.or(stored.dp).unwrap_or(1),
        sla_otps: args.sla_otps.unwrap_or(DEFAULT_SLA_OTPS),
    };
    if !(ctx.sla_otps.is_finite() && ctx.sla_otps > 0.0) {
        return Err(Failure::Usage(format!(
            "--sla-otps must be a positive number, got {}",
            ctx.sla_otps
        ))
        .into());
    }
    let checked: Vec<_> = points
        .iter()
        .map(|(title, p)| (title, check_result(p, &ctx)))
        .collect();
    if args.output.json {
        let out: Vec<_> = checked
            .iter()
            .map(|(title, checks)| json!({"result": title, "verdict": render::worst(checks), "checks": checks}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let text: String = checked
            .iter()
            .map(|(title, checks)| {
                if args.markdown {
                    render::markdown(title, checks)
                } else {
                    render::terminal(title, checks)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        super::emit(&text);
    }
    let failed = checked
        .iter()
        .any(|(_, c)| render::worst(c) == Verdict::Fail);
    Ok(if args.gate && failed {
        Exit::Gate
    } else {
        Exit::Success
    })
}
