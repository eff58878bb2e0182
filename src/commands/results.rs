//! `ceiling results`: the benchmark results imported from other tools.

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::Exit;
use crate::cli::ResultsArgs;
use crate::store::Store;
use crate::store::results::StoredResult;

pub fn run(db: &Path, args: ResultsArgs) -> anyhow::Result<Exit> {
    let store = Store::open_to_read(db)?;
    let results = store.list_results()?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        super::emit(&render(&results));
    }
    Ok(Exit::Success)
}

fn num(v: Option<f64>, scale: f64, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{:.digits$}", x * scale))
}

/// The results as a table, or a line saying there is none.
pub fn render(results: &[StoredResult]) -> String {
    if results.is_empty() {
        return "no results imported yet; `ceiling import FILE` imports one\n".to_string();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "id",
        "tool",
        "point",
        "model",
        "conc",
        "done",
        "failed",
        "req/s",
        "out tok/s",
        "TTFT ms",
        "TPOT ms",
        "file",
    ]);
    for r in results {
        let p = &r.point;
        table.add_row([
            r.id.to_string(),
            p.tool.as_str().to_string(),
            p.label.clone().unwrap_or_else(|| "-".into()),
            p.model.clone().unwrap_or_else(|| "-".into()),
            num(p.concurrency, 1.0, 0),
            p.completed.map_or("-".into(), |c| c.to_string()),
            p.failed.map_or("-".into(), |c| c.to_string()),
            num(p.req_per_s, 1.0, 2),
            num(p.output_tok_per_s, 1.0, 1),
            num(p.ttft.mean_s, 1e3, 2),
            num(p.tpot.mean_s, 1e3, 2),
            r.file_path.clone(),
        ]);
    }
    format!("{table}\n")
}
