//! `ceiling compare A B --change KIND`: two imported results (ids) or result files, each
//! figure's change with its noise, and the rules of the change as checks.

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use ceiling_reports::peer::PeerPoint;
use ceiling_reports::result_check::compare::{Change, deltas, lengths_differ, rules};
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

/// A result file's first point, or a stored result by id.
fn load(db: &Path, arg: &str) -> anyhow::Result<PeerPoint> {
    let path = Path::new(arg);
    if path.is_file() {
        let mut file = super::import::read_file(path, None)?;
        return Ok(file.points.remove(0));
    }
    let id: i64 = arg.parse().map_err(|_| {
        Failure::Usage(format!(
            "{arg:?} is neither a file nor a result id; `ceiling results` lists the ids"
        ))
    })?;
    Ok(Store::open_to_read(db)?.load_result(id, false)?.point)
}

pub fn run(db: &Path, args: CompareArgs) -> anyhow::Result<Exit> {
    let (a, b) = (load(db, &args.a)?, load(db, &args.b)?);
    if let Some(reason) = lengths_differ(&a, &b) {
        return Err(Failure::Usage(format!("not comparable: {reason}")).into());
    }
    let d = deltas(&a, &b);
    let checks = rules(change(args.change), &d);
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
