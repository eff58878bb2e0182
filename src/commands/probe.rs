//! `ceiling probe`: drive an engine with fixed batch sizes and record the run, then print what
//! was recorded: the per-step summary (requests by outcome, latency distributions, tokens asked
//! vs reported) and the analysis `ceiling analyze` prints — also after Ctrl-C.

use std::path::Path;

use crate::Exit;
use crate::cli::ProbeArgs;
use crate::config::ProbeConfig;
use crate::exit::Failure;
use crate::run::{RunOutcome, probe_run};
use crate::store::{RunStatus, Store};

use super::analyze::{AnalyzeOptions, AnalyzedRun, analyze_run, print_search, print_terminal};

pub async fn run(db: &Path, args: &ProbeArgs) -> anyhow::Result<Exit> {
    let cfg = ProbeConfig::from_cli(args)?;
    let command_line = crate::redact::command_line(std::env::args());
    let out = probe_run(db, &cfg, command_line).await?;
    // The figures come from the recording, as `ceiling analyze` computes them; a failure here
    // loses nothing (the run is stored) and is a warning.
    let analysed = Store::open(db)
        .map_err(anyhow::Error::from)
        .and_then(|store| analyze_run(&store, out.run_id, &analyze_options(args)));
    let analysed = match analysed {
        Ok(a) => Some(a),
        Err(e) => {
            eprintln!(
                "warning: run {} is recorded but could not be analysed: {e:#}; try `ceiling \
                 analyze {}`",
                out.run_id, out.run_id
            );
            None
        }
    };
    if cfg.json {
        print_json(&out, analysed.as_ref())?;
    } else {
        print_text(&out, analysed.as_ref());
    }
    if out.ok == 0 && out.status != RunStatus::Interrupted {
        return Err(Failure::Unreachable(format!(
            "no request succeeded in run {}; `ceiling runs show {}` has the errors",
            out.run_id, out.run_id
        ))
        .into());
    }
    Ok(Exit::Success)
}

/// The analysis printed at the end: under the probe's SLA flags where given.
pub fn analyze_options(args: &ProbeArgs) -> AnalyzeOptions {
    AnalyzeOptions {
        sla_otps: args.search.sla_otps,
        sla_tpot_s: args.search.sla_tpot.map(|d| d.as_secs_f64()),
        sla_ttft_s: args.rate.sla_ttft.map(|d| d.as_secs_f64()),
        ..AnalyzeOptions::default()
    }
}

fn print_json(out: &RunOutcome, analysed: Option<&AnalyzedRun>) -> anyhow::Result<()> {
    let v = serde_json::json!({
        "run_id": out.run_id,
        "status": out.status.as_str(),
        "requests_ok": out.ok,
        "requests_failed": out.failed,
        "analysis": analysed.map(|a| &a.analysis),
        "search": analysed.and_then(|a| a.search.as_ref()),
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn print_text(out: &RunOutcome, analysed: Option<&AnalyzedRun>) {
    if let Some(a) = analysed {
        print!("{}", ceiling_reports::render_latency(&a.analysis.steps));
        println!();
        print_terminal(&a.analysis);
        print_search(a.search.as_ref());
        println!();
    }
    println!(
        "run {}: {} — {} requests ok, {} failed; `ceiling report {}` writes the report",
        out.run_id,
        out.status.as_str(),
        out.ok,
        out.failed,
        out.run_id
    );
}
