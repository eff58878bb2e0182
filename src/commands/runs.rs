//! `ceiling runs` and `ceiling runs show`: what the recording holds.

use std::path::Path;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use crate::Exit;
use crate::cli::{RunsAction, RunsArgs};
use crate::store::Store;
use crate::store::read::{RunDetail, RunSummary};

pub fn run(db: &Path, args: RunsArgs) -> anyhow::Result<Exit> {
    let store = Store::open_to_read(db)?;
    match args.action {
        None => {
            let runs = store.list_runs()?;
            if args.output.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                print!("{}", crate::printable::printable(&render_list(&runs)));
            }
        }
        Some(RunsAction::Show { run, output }) => {
            let id = super::resolve_run(&store, &run)?;
            let detail = store
                .run_detail(id)
                .with_context(|| format!("reading run {id} from {}", db.display()))?;
            if output.json || args.output.json {
                println!("{}", serde_json::to_string_pretty(&detail)?);
            } else {
                print!("{}", crate::printable::printable(&render_detail(&detail)));
            }
        }
    }
    Ok(Exit::Success)
}

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// The run list as a table, or a line saying there is none.
pub fn render_list(runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return "no runs recorded yet; `ceiling probe --url URL` records one\n".to_string();
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "id",
        "started (UTC)",
        "engine",
        "model",
        "steps",
        "requests",
        "status",
    ]);
    for r in runs {
        table.add_row([
            r.id.to_string(),
            r.started_at.clone(),
            or_dash(&r.engine_kind).to_string(),
            or_dash(&r.model).to_string(),
            r.steps.to_string(),
            r.requests.to_string(),
            r.status.as_str().to_string(),
        ]);
    }
    format!("{table}\n")
}

/// One run's manifest as aligned `key: value` lines and a step table.
pub fn render_detail(d: &RunDetail) -> String {
    let m = &d.manifest;
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<16} {v}\n"));
    line("run", &d.id.to_string());
    line("status", d.status.as_str());
    line("started", &m.started_at);
    line("ended", or_dash(&d.ended_at));
    if let Some(e) = &d.error {
        line("error", e);
    }
    let version = match &m.git_sha {
        Some(sha) => format!("{} ({sha})", m.tool_version),
        None => m.tool_version.clone(),
    };
    line("ceiling", &version);
    line("host", or_dash(&m.host));
    line("command", &m.command_line);
    line("engine", or_dash(&m.engine_kind));
    line("engine version", or_dash(&m.engine_version));
    line("url", or_dash(&m.base_url));
    line("model", or_dash(&m.model));
    line("model revision", or_dash(&m.model_revision));
    if let Some(l) = &m.engine_limits {
        let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        line(
            "engine limits",
            &format!(
                "{} sequences, {} tokens each, {} KV tokens (from {})",
                n(l.max_seqs.map(u64::from)),
                n(l.context_per_seq.map(u64::from)),
                n(l.kv_capacity_tokens),
                l.source
            ),
        );
    }
    if m.gpu_inventory.is_empty() {
        line("gpus", "none recorded");
    }
    for g in &m.gpu_inventory {
        let mem = g
            .mem_total_bytes
            .map(|b| format!("{:.0} GiB", b as f64 / (1u64 << 30) as f64))
            .unwrap_or_else(|| "-".into());
        line(
            &format!("gpu {}", g.index),
            &format!("{} {mem} driver {}", or_dash(&g.name), or_dash(&g.driver)),
        );
    }
    line("probe config", &m.probe_config.to_string());
    line("config hash", &d.probe_config_hash);
    if !d.steps.is_empty() {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED);
        table.set_header([
            "step", "bs", "input", "output", "pattern", "start s", "end s",
        ]);
        for s in &d.steps {
            table.add_row([
                s.idx.to_string(),
                s.batch_size.to_string(),
                s.input_len.to_string(),
                s.output_len.to_string(),
                s.pattern.as_str().to_string(),
                format!("{:.3}", s.start_t_s),
                s.end_t_s.map_or("-".into(), |t| format!("{t:.3}")),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }
    out
}
