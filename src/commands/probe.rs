//! `ceiling probe`: drive an engine with fixed batch sizes and record the run, then print what
//! was recorded.

use std::path::Path;

use crate::Exit;
use crate::cli::ProbeArgs;
use crate::config::ProbeConfig;
use crate::exit::Failure;
use crate::run::probe_run;
use crate::store::RunStatus;

pub async fn run(db: &Path, args: &ProbeArgs) -> anyhow::Result<Exit> {
    let cfg = ProbeConfig::from_cli(args)?;
    let command_line = crate::redact::command_line(std::env::args());
    let out = probe_run(db, &cfg, command_line).await?;
    if cfg.json {
        println!(
            "{}",
            serde_json::json!({
                "run_id": out.run_id,
                "status": out.status.as_str(),
                "requests_ok": out.ok,
                "requests_failed": out.failed,
            })
        );
    } else {
        println!(
            "run {}: {} — {} requests ok, {} failed; `ceiling analyze {}` for the figures",
            out.run_id,
            out.status.as_str(),
            out.ok,
            out.failed,
            out.run_id
        );
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
