//! `ceiling demo --nightly`: the third job on an embedded default. Two weeks of one simulated
//! node, a night each few seconds into a fresh recording (`DIR/nightly.db`): thirteen nights of
//! noise only, then a fourteenth whose steps are 8 % slower with the SM clock down 8 % and a new
//! driver on the simulator's `/dcgm`. The last night is judged and reported as `ceiling nightly`
//! does (`DIR/nightly.html`, `nightly.md`, the trend charts, the run's report in `DIR/run/`).

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use ceiling_reports::history::regress::RegressOptions;
use ceiling_reports::history::render;
use ceiling_reports::recording::Pattern;
use ceiling_sim::{GpuCondition, Profile, SimConfig};

use crate::Exit;
use crate::cli::DemoArgs;
use crate::config::{ProbeConfig, StepSpec, Warmup};
use crate::run::probe_run;
use crate::store::Store;

use super::super::analyze::{AnalyzeOptions, analyze_run};
use super::super::nightly::write_nightly;
use super::super::regress::{history_of, judge};

/// Noise-only nights before the planted one.
const QUIET_NIGHTS: usize = 13;

/// The nights' engine: the simulator's `nightly` profile (t_fwd = 60 ms + 2 ms × bs), with the
/// night's planted slowdown and GPU condition.
fn profile(step_scale: f64, gpu: GpuCondition) -> anyhow::Result<Profile> {
    Ok(Profile {
        step_scale,
        gpu,
        ..Profile::builtin("nightly").context("the demo's built-in profile is missing")?
    })
}

/// A night's probe: bs 4 and 16, 16 tokens in and out, one measured wave, no warm-up.
fn night_config(base: &str) -> ProbeConfig {
    let mut cfg = super::probe_config(base, &[4, 16]);
    cfg.steps = [4, 16]
        .map(|batch_size| StepSpec {
            batch_size,
            input_len: 16,
            output_len: 16,
        })
        .to_vec();
    cfg.pattern = Pattern::Wave;
    cfg.waves = 1;
    cfg.warmup = Warmup::Waves(0);
    cfg.scrape_interval = Duration::from_millis(100);
    cfg.gpu_interval = Duration::from_millis(50);
    cfg
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let db = args.out.join("nightly.db");
    for stale in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{stale}", db.display()));
    }
    eprintln!(
        "ceiling demo --nightly: {} nights of a simulated node into {}, the last one planted \
         (steps +8 %, SM clock 1980 → 1820 MHz, driver 535.183.01 → 560.28)",
        QUIET_NIGHTS + 1,
        db.display()
    );
    let planted = GpuCondition {
        sm_clock_mhz: 1820,
        driver_version: "560.28".into(),
        ..GpuCondition::default()
    };
    let mut port = 0;
    let mut last = 0;
    for night in 1..=QUIET_NIGHTS + 1 {
        let p = if night > QUIET_NIGHTS {
            profile(1.08, planted.clone())?
        } else {
            profile(1.0, GpuCondition::default())?
        };
        // The same URL every night, as a node's engine has: it is part of the history key.
        let (id, p) = one_night(&db, p, port).await?;
        (last, port) = (id, p);
        eprintln!("night {night:>2}: run {id}");
    }
    let store = Store::open(&db)?;
    let opts = RegressOptions::default();
    let report = judge(&store, last, "auto", &opts)?;
    let rows = history_of(&store, last)?;
    let run = analyze_run(&store, last, &AnalyzeOptions::default())?;
    write_nightly(&run, &report, &rows, &opts, &args.out, false)?;
    print!("{}", render::render_terminal(&report));
    println!(
        "\nnightly report: {}  (also nightly.md, charts/, the run's report in run/; the nights \
         in {}: `ceiling --db {} history --bs 16`)",
        args.out.join("nightly.html").display(),
        db.display(),
        db.display()
    );
    Ok(Exit::Success)
}

/// One night: a fresh simulator on `port` (0: a free one), probed and analysed; the run id and
/// the port.
async fn one_night(db: &Path, profile: Profile, port: u16) -> anyhow::Result<(i64, u16)> {
    let mut cfg = SimConfig::new(profile);
    cfg.port = port;
    let sim = ceiling_sim::start(cfg)
        .await
        .context("starting the simulated engine")?;
    let port = sim.addr().port();
    let command_line = crate::redact::command_line(std::env::args());
    let outcome = probe_run(db, &night_config(&sim.base_url()), command_line).await;
    sim.shutdown().await;
    let id = outcome.context("probing the simulated engine")?.run_id;
    analyze_run(&Store::open(db)?, id, &AnalyzeOptions::default())
        .with_context(|| format!("analysing run {id}"))?;
    Ok((id, port))
}
