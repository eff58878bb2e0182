//! `ceiling demo`: the whole job on an embedded default. Starts the built-in simulated engine
//! (profile `llama-8b-h100`, vLLM flavor, real time) on a free loopback port, probes it with a
//! short wave sweep (GPU telemetry from the simulator's DCGM-style endpoint), analyses the run
//! against the Llama-3.1-8B roofline on an H100, writes the report, prints the summary and the
//! report's path, and stops the engine.

use std::path::Path;

use anyhow::Context;
use ceiling_sim::{Profile, SimConfig};
use clap::Parser;

use crate::Exit;
use crate::cli::{Cli, Command, DemoArgs, ReportFormat, RunRooflineArgs};
use crate::config::ProbeConfig;
use crate::run::probe_run;
use crate::store::Store;

use super::analyze::analyze_run;
use super::report::write_report;

/// The model the demo's profile imitates, for the roofline (shipped in `fixtures/`).
const MODEL_CONFIG: &str =
    include_str!("../../fixtures/model-configs/meta-llama__Llama-3.1-8B-Instruct.json");
const PROFILE: &str = "llama-8b-h100";
const INPUT_LEN: u32 = 64;
const OUTPUT_LEN: u32 = 128;
/// The demo's SLA when none is given: 90 output tokens/s per sequence (TPOT ≤ 11.1 ms).
const DEMO_SLA_OTPS: f64 = 90.0;

pub async fn run(db: &Path, args: DemoArgs) -> anyhow::Result<Exit> {
    let profile = Profile::builtin(PROFILE).context("the demo's built-in profile is missing")?;
    let sim = crate::sim::start(SimConfig::new(profile))
        .await
        .context("starting the simulated engine")?;
    let base = sim.base_url();
    let result = demo(db, &args, &base).await;
    sim.shutdown().await;
    result
}

async fn demo(db: &Path, args: &DemoArgs, base: &str) -> anyhow::Result<Exit> {
    let bs: Vec<String> = args.batch_sizes.iter().map(u32::to_string).collect();
    let bs = bs.join(",");
    let dcgm = format!("dcgm:{base}/dcgm");
    let (input, output) = (INPUT_LEN.to_string(), OUTPUT_LEN.to_string());
    let probe = Cli::try_parse_from([
        "ceiling",
        "probe",
        "--url",
        base,
        "--batch-sizes",
        &bs,
        "--input-len",
        &input,
        "--output-len",
        &output,
        "--waves",
        "2",
        "--warmup",
        "1",
        "--gpu-source",
        &dcgm,
        "--gpu-interval",
        "100ms",
        "--scrape-interval",
        "250ms",
    ])?;
    let Command::Probe(probe) = probe.command else {
        anyhow::bail!("the demo's probe flags did not parse as a probe");
    };
    let cfg = ProbeConfig::from_cli(&probe)?;
    eprintln!(
        "ceiling demo: simulated engine ({PROFILE}, vLLM flavor) at {base}; probing bs {bs} \
         with {INPUT_LEN} input / {OUTPUT_LEN} output tokens, 1 warm-up + 2 waves per step"
    );
    let command_line = crate::redact::command_line(std::env::args());
    let outcome = probe_run(db, &cfg, command_line)
        .await
        .context("probing the simulated engine")?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let model_config = args.out.join("model-config.json");
    std::fs::write(&model_config, MODEL_CONFIG)
        .with_context(|| format!("writing {}", model_config.display()))?;
    let roofline = RunRooflineArgs {
        model_config: Some(model_config),
        gpu: Some("H100".into()),
        ..RunRooflineArgs::default()
    };
    let store = Store::open(db)?;
    let mut ceiling = args.ceiling.clone();
    if ceiling.sla_otps.is_none() && ceiling.sla_tpot.is_none() {
        ceiling.sla_otps = Some(DEMO_SLA_OTPS);
    }
    let run = analyze_run(&store, outcome.run_id, &ceiling, &roofline)
        .with_context(|| format!("analysing run {}", outcome.run_id))?;
    let mut formats = vec![ReportFormat::Html, ReportFormat::Md, ReportFormat::Json];
    if args.png {
        formats.push(ReportFormat::Png);
    }
    write_report(&run, &args.out, &formats)?;
    super::analyze::print_terminal(&run.analysis);
    let gate = super::analyze::gate(&ceiling, &run.analysis);
    println!(
        "\nreport: {}  (also report.md, result.json, charts/; run {} in {})",
        args.out.join("report.html").display(),
        outcome.run_id,
        db.display()
    );
    Ok(gate)
}
