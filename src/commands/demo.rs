//! `ceiling demo`: the whole job on an embedded default. Starts the built-in simulated engine
//! (profile `llama-8b-h100`, vLLM flavor, real time) on a free loopback port, probes it with a
//! short wave sweep (GPU telemetry from the simulator's DCGM-style endpoint), analyses the run
//! against the Llama-3.1-8B roofline on an H100, writes the report, prints the summary and the
//! report's path, and stops the engine. It builds its probe and analysis configurations in code
//! and calls the same functions `probe`, `analyze` and `report` do. `--nightly` shows the third
//! job instead (`demo/nightly.rs`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use ceiling_reports::model::KvDtype;
use ceiling_reports::recording::Pattern;
use ceiling_sim::{Profile, SimConfig};

use crate::Exit;
use crate::cli::DemoArgs;
use crate::config::{Endpoint, ProbeConfig, StepSpec, Warmup};
use crate::run::probe_run;
use crate::store::Store;

use super::analyze::{AnalyzeOptions, RooflineOptions, analyze_run, gate, print_terminal};
use super::report::{ReportFormats, write_report};

/// The model the demo's profile imitates, for the roofline (shipped in `fixtures/`).
const MODEL_CONFIG: &str =
    include_str!("../../fixtures/model-configs/meta-llama__Llama-3.1-8B-Instruct.json");
const PROFILE: &str = "llama-8b-h100";
const INPUT_LEN: u32 = 64;
const OUTPUT_LEN: u32 = 128;
/// The demo's SLA when none is given: 90 output tokens/s per sequence (TPOT ≤ 11.1 ms).
const DEMO_SLA_OTPS: f64 = 90.0;

mod nightly;

pub async fn run(db: &Path, args: DemoArgs) -> anyhow::Result<Exit> {
    if args.nightly {
        return nightly::run(&args).await;
    }
    let mut opts = AnalyzeOptions::from_ceiling_flags(&args.ceiling)?;
    if opts.sla_otps.is_none() && opts.sla_tpot_s.is_none() {
        opts.sla_otps = Some(DEMO_SLA_OTPS);
    }
    let profile = Profile::builtin(PROFILE).context("the demo's built-in profile is missing")?;
    let sim = ceiling_sim::start(SimConfig::new(profile))
        .await
        .context("starting the simulated engine")?;
    let base = sim.base_url();
    let result = demo(db, &args, &base, opts).await;
    sim.shutdown().await;
    result
}

/// The demo's sweep: 1 warm-up and 2 measured waves per batch size, metrics every 250 ms and
/// GPU samples every 100 ms from the simulator's DCGM-style endpoint; the other settings are
/// `ceiling probe`'s defaults.
fn probe_config(base: &str, batch_sizes: &[u32]) -> ProbeConfig {
    ProbeConfig {
        url: base.to_string(),
        model: None,
        model_revision: None,
        api_key: None,
        endpoint: Endpoint::Completions,
        dp: 1,
        request_timeout: Duration::from_secs(600),
        steps: batch_sizes
            .iter()
            .map(|&batch_size| StepSpec {
                batch_size,
                input_len: INPUT_LEN,
                output_len: OUTPUT_LEN,
            })
            .collect(),
        search: None,
        rate: None,
        mix: crate::config::LengthMix::Fixed,
        pattern: Pattern::Wave,
        waves: 2,
        duration: Duration::from_secs(60),
        warmup: Warmup::Waves(1),
        ramp_per_s: None,
        vocab_size: None,
        tokenizer: None,
        prefix_cache_warm: false,
        seed: rand::random(),
        grace: Duration::from_secs(5),
        metrics_url: Some(format!("{base}/metrics")),
        metrics_roles: Vec::new(),
        scrape_interval: Duration::from_millis(250),
        require_metrics: false,
        gpu_source: Some(format!("dcgm:{base}/dcgm")),
        gpu_interval: Duration::from_millis(100),
        require_gpu: false,
        gpus: None,
        json: false,
    }
}

async fn demo(
    db: &Path,
    args: &DemoArgs,
    base: &str,
    mut opts: AnalyzeOptions,
) -> anyhow::Result<Exit> {
    let cfg = probe_config(base, &args.batch_sizes);
    let bs: Vec<String> = args.batch_sizes.iter().map(u32::to_string).collect();
    eprintln!(
        "ceiling demo: simulated engine ({PROFILE}, vLLM flavor) at {base}; probing bs {} \
         with {INPUT_LEN} input / {OUTPUT_LEN} output tokens, 1 warm-up + 2 waves per step",
        bs.join(",")
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
    opts.roofline = Some(RooflineOptions {
        model_config,
        gpu: Some("H100".into()),
        tp: 1,
        weight_dtype: None,
        kv_dtype: KvDtype::Bf16,
    });
    let store = Store::open(db)?;
    let run = analyze_run(&store, outcome.run_id, &opts)
        .with_context(|| format!("analysing run {}", outcome.run_id))?;
    let formats = ReportFormats {
        html: true,
        markdown: true,
        json: true,
        png: args.png,
        vllm_json: false,
    };
    write_report(&run, &args.out, formats)?;
    print_terminal(&run.analysis);
    let gate = gate(&opts, &run.analysis);
    println!(
        "\nreport: {}  (also report.md, result.json, charts/; run {} in {})",
        args.out.join("report.html").display(),
        outcome.run_id,
        db.display()
    );
    Ok(gate)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The demo's config in code is what the command line it used to parse gave (the seed
    /// aside, fresh in both): `ceiling probe` with the demo's flags and the rest defaulted.
    #[test]
    fn the_demo_probes_as_ceiling_probe_would_with_its_flags() {
        let base = "http://127.0.0.1:4000";
        let cli = crate::Cli::try_parse_from([
            "ceiling",
            "probe",
            "--url",
            base,
            "--batch-sizes",
            "1,4,16",
            "--input-len",
            "64",
            "--output-len",
            "128",
            "--waves",
            "2",
            "--warmup",
            "1",
            "--gpu-source",
            "dcgm:http://127.0.0.1:4000/dcgm",
            "--gpu-interval",
            "100ms",
            "--scrape-interval",
            "250ms",
        ])
        .unwrap();
        let crate::cli::Command::Probe(args) = cli.command else {
            panic!("not a probe command")
        };
        let mut parsed = ProbeConfig::from_cli(&args).unwrap();
        let ours = probe_config(base, &[1, 4, 16]);
        parsed.seed = ours.seed;
        parsed.api_key = None;
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            serde_json::to_value(&ours).unwrap()
        );
    }
}
