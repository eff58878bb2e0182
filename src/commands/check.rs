//! `ceiling check tp`: which TP (and EP) sizes the engines accept for a model, one line per
//! size with the reason. `ceiling check result` is in [`super::check_result`].

use serde_json::json;

use ceiling_reports::model::ModelShape;
use ceiling_reports::tp::{TpVerdict, check_tp};

use crate::Exit;
use crate::cli::{CheckArgs, CheckTpArgs, CheckWhat};

pub fn run(db: &std::path::Path, args: CheckArgs) -> anyhow::Result<Exit> {
    match args.what {
        CheckWhat::Tp(args) => tp(args),
        CheckWhat::Result(args) => super::check_result::run(db, &args),
    }
}

fn tp(args: CheckTpArgs) -> anyhow::Result<Exit> {
    let shape = super::roofline::load_model_shape(&args.model.model_config)?;
    let verdicts = check_tp(&shape, &args.tp, args.ep, args.gpus);
    if args.output.json {
        let out = json!({
            "model": {
                "model_type": shape.model_type,
                "architecture": shape.architecture,
                "heads": shape.heads,
                "kv_heads": shape.kv_heads,
                "mla": shape.is_mla(),
                "intermediate": shape.intermediate,
                "moe": shape.moe,
                "vocab": shape.vocab,
            },
            "verdicts": verdicts,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", render(&shape, &verdicts));
    }
    Ok(Exit::Success)
}

/// A header line for the model, then one line per size: `tp N: ok: …` or `tp N: rejected: …`.
pub fn render(shape: &ModelShape, verdicts: &[TpVerdict]) -> String {
    let mut out = format!(
        "{} ({}): {} attention heads, {}, vocab {}\n",
        shape.architecture.as_deref().unwrap_or("?"),
        shape.model_type,
        shape.heads,
        if shape.is_mla() {
            "MLA".to_string()
        } else {
            format!("{} KV heads", shape.kv_heads)
        },
        shape.vocab,
    );
    for v in verdicts {
        let ep = v.ep.map_or(String::new(), |ep| format!(" ep {ep}"));
        if v.ok {
            out.push_str(&format!("tp {}{ep}: ok: {}\n", v.tp, v.notes.join("; ")));
        } else {
            out.push_str(&format!(
                "tp {}{ep}: rejected: {}\n",
                v.tp,
                v.problems.join("; ")
            ));
        }
    }
    out
}
