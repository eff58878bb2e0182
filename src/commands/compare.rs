//! `ceiling compare A B --change KIND`: two imported results (ids), result files or steps of
//! recorded runs (`run:ID[:STEP]`), each figure's change with its noise, and the rules of the
//! change as checks (with `--change tp`, each side's TP size against the model's heads).

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use ceiling_reports::model::ModelShape;
use ceiling_reports::peer::{PeerPoint, own_run};
use ceiling_reports::result_check::compare::{Change, deltas, lengths_differ, rules, tp_rules};
use ceiling_reports::result_check::{Verdict, render};

use crate::Exit;
use crate::cli::{ChangeArg, CompareArgs};
use crate::exit::Failure;
use crate::store::Store;

fn change(c: ChangeArg) -> Change {
    match c {
        ChangeArg::Decode => Change::Decode,
        ChangeArg::Prefill => Change::Prefill,
        ChangeArg::KvCache => Change::KvCache,
        ChangeArg::Mtp => Change::Mtp,
        ChangeArg::Ep => Change::Ep,
        ChangeArg::Pd => Change::Pd,
        ChangeArg::Tp => Change::Tp,
        ChangeArg::Quantization => Change::Quantization,
        ChangeArg::Hardware => Change::Hardware,
        ChangeArg::EngineVersion => Change::EngineVersion,
    }
}

/// One side of the comparison: its point, and the TP size and model config imported with it.
struct Side {
    point: PeerPoint,
    tp: Option<u32>,
    model_config: Option<String>,
}

impl From<PeerPoint> for Side {
    fn from(point: PeerPoint) -> Self {
        Side {
            point,
            tp: None,
            model_config: None,
        }
    }
}

/// A result file's first point, a stored result by id, or a step of a recorded run.
fn load(db: &Path, arg: &str) -> anyhow::Result<Side> {
    let path = Path::new(arg);
    if path.is_file() {
        let mut file = super::import::read_file(path, None)?;
        return Ok(file.points.remove(0).into());
    }
    if let Some(run) = arg.strip_prefix("run:") {
        return run_step(db, run).map(Side::from);
    }
    let id: i64 = arg.parse().map_err(|_| {
        Failure::Usage(format!(
            "{arg:?} is neither a file, a result id nor run:ID[:STEP]; `ceiling results` and `ceiling runs` list the ids"
        ))
    })?;
    let stored = Store::open_to_read(db)?.load_result(id, true)?;
    Ok(Side {
        point: stored.point,
        tp: stored.deployment.tp,
        model_config: stored.deployment.model_config,
    })
}

/// `ID[:STEP]` of `run:ID[:STEP]`: that step of the run, analysed, as a point; STEP may be
/// left out when the run has one step.
fn run_step(db: &Path, spec: &str) -> anyhow::Result<PeerPoint> {
    let (run, step) = match spec.split_once(':') {
        Some((run, step)) => (run, Some(step)),
        None => (spec, None),
    };
    let store = Store::open_to_read(db)?;
    let id = super::resolve_run(&store, run)?;
    let opts = super::analyze::AnalyzeOptions::from_ceiling_flags(&Default::default())?;
    let analysed = super::analyze::analyze_run(&store, id, &opts)?;
    let steps = &analysed.analysis.steps;
    let list = || {
        steps
            .iter()
            .map(|s| {
                format!(
                    "{} (bs {}, {}/{})",
                    s.step_idx, s.batch_size, s.input_len, s.output_len
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match step {
        Some(k) => {
            let k: u32 = k.parse().map_err(|_| {
                Failure::Usage(format!(
                    "run:{spec}: the step {k:?} is no step index; run {id} has steps {}",
                    list()
                ))
            })?;
            steps.iter().find(|s| s.step_idx == k)
        }
        None if steps.len() == 1 => steps.first(),
        None => {
            return Err(Failure::Usage(format!(
                "run {id} has {} steps: name one as run:{id}:STEP, STEP one of {}",
                steps.len(),
                list()
            ))
            .into());
        }
    };
    let s = chosen.ok_or_else(|| {
        Failure::Usage(format!(
            "run {id} has no such step; its steps are {}",
            list()
        ))
    })?;
    Ok(own_run::point_of_step(
        id,
        s,
        analysed.analysis.model.as_deref(),
    ))
}

/// The model's shape for `--change tp`: the flag's file, else a config imported with a side.
fn shape(args: &CompareArgs, a: &Side, b: &Side) -> anyhow::Result<Option<ModelShape>> {
    let text = match &args.model_config {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Failure::Usage(format!("cannot read model config {}: {e}", path.display()))
        })?),
        None => a.model_config.clone().or_else(|| b.model_config.clone()),
    };
    text.map(|t| {
        ModelShape::from_config_json(&t)
            .map_err(|e| Failure::Usage(format!("model config: {e}")).into())
    })
    .transpose()
}

pub fn run(db: &Path, args: CompareArgs) -> anyhow::Result<Exit> {
    let (sa, sb) = (load(db, &args.a)?, load(db, &args.b)?);
    let (a, b) = (&sa.point, &sb.point);
    if let Some(reason) = lengths_differ(a, b) {
        return Err(Failure::Usage(format!("not comparable: {reason}")).into());
    }
    let d = deltas(a, b);
    let mut checks = rules(change(args.change), &d);
    if args.change == ChangeArg::Tp {
        let shape = shape(&args, &sa, &sb)?;
        checks.extend(tp_rules(
            shape.as_ref(),
            args.tp_a.or(sa.tp),
            args.tp_b.or(sb.tp),
        ));
    }
    if args.output.json {
        let out = json!({"change": change(args.change), "deltas": d, "checks": checks});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header(["figure", "A", "B", "change", "noise"]);
        let f = |v: Option<f64>| v.map_or("-".into(), |x| format!("{x:.4}"));
        for x in &d {
            table.add_row([
                x.metric.to_string(),
                f(x.a),
                f(x.b),
                x.change
                    .map_or("-".into(), |c| format!("{:+.1} %", c * 100.0)),
                format!("±{:.1} %", x.noise * 100.0),
            ]);
        }
        let mut text = format!("{table}\n");
        if !checks.is_empty() {
            text.push_str(&render::terminal("what the change may not move", &checks));
        }
        super::emit(&text);
    }
    let broken = render::worst(&checks) == Verdict::Fail;
    Ok(if args.gate && broken {
        Exit::Gate
    } else {
        Exit::Success
    })
}
