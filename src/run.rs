//! A probe run from start to end: asks the engine what it is, opens the run in the store,
//! starts the writer, the telemetry and the Ctrl-C handler, runs the steps in order, and closes
//! the run with its status. It owns every long-lived task; one token stops them all.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use ceiling_reports::StepRecord;
use ceiling_reports::recording::Pattern;

use crate::config::{Endpoint, LengthMix, ProbeConfig, StepSpec, Warmup};
use crate::exit::Failure;
use crate::probe::client::{EngineClient, EngineQuirks, RequestSlot};
use crate::probe::dataset::Dataset;
use crate::probe::tokenizer::TokenVocab;
use crate::probe::worker::{Shared, StepPlan, run_step};
use crate::probe::workload::{Prompt, PromptMaker};
use crate::probe::{EngineInfo, preflight};
use crate::search::SearchSettings;
use crate::search::live::StepMeter;
use crate::store::writer::WriterThread;
use crate::store::{EngineLimits, Record, RunManifest, RunStatus, Store, Writer, WriterOptions};
use crate::telemetry::Telemetry;

mod rates;

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: i64,
    pub status: RunStatus,
    pub ok: u64,
    pub failed: u64,
    pub engine: EngineInfo,
}

/// One HTTP client for the whole run: no proxy (loopback engines), no idle-pool limit, no
/// redirect followed (an engine that answers 3xx is an `http_error`, and the API key never
/// travels to another host).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    crate::install_tls_provider();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .build()?)
}

/// Runs the probe described by `cfg`, recording into `db`.
///
/// Setup (engine preflight, the run's row, the writer, the signal watcher, telemetry, the
/// request client and prompts), the steps (`run_steps`), then shutdown (`close_run`). The
/// tasks started here are stopped here: telemetry and the signal watcher before the writer is
/// drained, the writer's thread joined before the run is closed.
pub async fn probe_run(
    db: &Path,
    cfg: &ProbeConfig,
    command_line: String,
) -> anyhow::Result<RunOutcome> {
    // A bad --tokenizer is refused before anything is recorded.
    let vocab = cfg
        .tokenizer
        .as_deref()
        .map(TokenVocab::load)
        .transpose()?
        .map(Arc::new);
    // So is a malformed --dataset, with its line.
    let dataset = match &cfg.mix {
        LengthMix::Dataset { path, text } => Some(Dataset::load(
            path,
            vocab.as_deref(),
            cfg.rate.as_ref().map_or(256, |r| r.output_len),
            *text,
        )?),
        _ => None,
    };
    let http = http_client()?;
    let info = preflight(&http, cfg).await?;
    check_lengths(cfg, &info)?;
    let lengths = Arc::new(rates::length_plan(cfg, dataset, &info)?);
    let cfg = &with_engine_hold(cfg, &info);
    let store = Store::open(db).with_context(|| format!("opening {}", db.display()))?;
    let run_id = store.create_run(&manifest(cfg, &info, command_line)?)?;
    let (writer, writer_thread) = Writer::spawn(db, run_id, WriterOptions::default())?;
    let t0 = Instant::now();
    let stop = CancellationToken::new();
    let abort = CancellationToken::new();
    let signals = tokio::spawn(watch_signals(stop.clone(), abort.clone(), cfg.grace));

    let telemetry = Telemetry::start(cfg, &info, &http, t0, writer.clone()).await;
    let telemetry = match telemetry {
        Ok(t) => t,
        Err(e) => {
            drop(writer);
            let _ = writer_thread.join();
            store.finish_run(run_id, RunStatus::Failed, Some(&format!("{e:#}")))?;
            return Err(e);
        }
    };
    if let Some(gpus) = telemetry.gpu_inventory() {
        // Through the writer: while it runs, it is the one connection that writes.
        writer
            .send(Record::RunGpus(gpus.to_vec()))
            .await
            .context("recording the GPU inventory")?;
    }

    let client = engine_client(&http, cfg, &info);
    let prompts = prompt_maker(cfg, &info, vocab, &client, t0, &abort).await;
    let shared = Shared {
        client,
        prompts: Arc::new(prompts),
        endpoint: cfg.endpoint,
        t0,
        writer: writer.clone(),
        stop,
        abort,
        progress: ProgressBar::hidden(),
        ok: Arc::new(AtomicU64::new(0)),
        failed: Arc::new(AtomicU64::new(0)),
        boundary: telemetry.boundary(),
    };
    let steps_result = match (&cfg.search, &cfg.rate) {
        (Some(search), _) => {
            let meter = StepMeter {
                db: db.to_path_buf(),
                run_id,
                dp: cfg.dp,
            };
            run_search(cfg, search, &meter, shared.clone()).await
        }
        (None, Some(rate)) => {
            let meter = rates::RateMeter {
                db: db.to_path_buf(),
                run_id,
            };
            rates::run_open_loop(cfg, rate, lengths, &meter, shared.clone()).await
        }
        (None, None) => run_steps(cfg, shared.clone()).await,
    };

    telemetry.stop().await;
    signals.abort();
    let (status, ok, failed) =
        close_run(&store, run_id, shared, writer, writer_thread, steps_result).await?;
    Ok(RunOutcome {
        run_id,
        status,
        ok,
        failed,
        engine: info,
    })
}

/// The config with what the engine said it can hold at the search's lengths, so the run
/// stores it with the search's settings.
fn with_engine_hold(cfg: &ProbeConfig, info: &EngineInfo) -> ProbeConfig {
    let mut cfg = cfg.clone();
    if let Some(s) = &mut cfg.search {
        s.engine_hold = info.declared().hold(s.input_len + s.output_len);
    }
    cfg
}

/// What the run records about itself before its first row: the command line, the probe
/// config, and what preflight learnt about the engine.
fn manifest(
    cfg: &ProbeConfig,
    info: &EngineInfo,
    command_line: String,
) -> anyhow::Result<RunManifest> {
    let mut manifest = RunManifest::new(command_line, serde_json::to_value(cfg)?);
    manifest.base_url = Some(cfg.url.clone());
    manifest.engine_kind = info.flavor.map(str::to_string);
    manifest.engine_version = info.version.clone();
    manifest.model = Some(info.model.clone());
    manifest.model_revision = info.model_revision.clone();
    manifest.engine_limits = info.slots.as_ref().map(|s| EngineLimits {
        source: "llama.cpp /props".into(),
        max_seqs: s.total_slots,
        context_per_seq: s.n_ctx_per_slot,
        kv_capacity_tokens: s
            .total_slots
            .zip(s.n_ctx_per_slot)
            .map(|(n, c)| u64::from(n) * u64::from(c)),
    });
    Ok(manifest)
}

/// The run's one engine client: the probe's own HTTP/1.1 client for a plain-`http` engine
/// (reqwest for `https`, or everywhere with `CEILING_HTTP_CLIENT=reqwest`).
fn engine_client(http: &reqwest::Client, cfg: &ProbeConfig, info: &EngineInfo) -> EngineClient {
    let quirks = EngineQuirks {
        vllm_extensions: info.flavor == Some("vllm"),
    };
    let client = EngineClient::new(
        http.clone(),
        &cfg.url,
        cfg.api_key.clone(),
        info.model.clone(),
        cfg.endpoint,
        quirks,
        cfg.request_timeout,
    );
    // The general HTTP stack instead of the probe's own client, to compare the two
    // (docs/PERFORMANCE.md) or to step around the own client should an engine need it.
    if std::env::var("CEILING_HTTP_CLIENT").is_ok_and(|v| v == "reqwest") {
        client.with_general_client()
    } else {
        client
    }
}

/// The prompt maker for every step; on the chat endpoint it first asks the engine how many
/// tokens the chat template adds.
async fn prompt_maker(
    cfg: &ProbeConfig,
    info: &EngineInfo,
    vocab: Option<Arc<TokenVocab>>,
    client: &EngineClient,
    t0: Instant,
    abort: &CancellationToken,
) -> PromptMaker {
    let mut prompts = PromptMaker::new(
        cfg.seed,
        cfg.vocab_size.or(info.vocab_size),
        cfg.prefix_cache_warm,
    );
    if let Some(v) = vocab {
        prompts = prompts.with_vocab(v);
    }
    if cfg.endpoint == Endpoint::Chat {
        prompts.chat_overhead_tokens = calibrate_chat(client, t0, abort).await;
    }
    prompts
}

/// Shutdown once the steps are over and telemetry and the signal watcher are stopped: reads the
/// request counts, drains and joins the writer, then closes the run in the store with its
/// status and error. Returns the status and the ok and failed counts, or the steps' or the
/// writer's error once the run is closed.
async fn close_run(
    store: &Store,
    run_id: i64,
    shared: Shared,
    writer: Writer,
    writer_thread: WriterThread,
    steps_result: anyhow::Result<()>,
) -> anyhow::Result<(RunStatus, u64, u64)> {
    let ok = shared.ok.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    let stop = shared.stop.clone();
    drop(shared);
    let flushed = writer.flush().await;
    drop(writer);
    let joined = writer_thread.join();
    let status = if stop.is_cancelled() {
        RunStatus::Interrupted
    } else if ok == 0 || steps_result.is_err() || flushed.is_err() || joined.is_err() {
        RunStatus::Failed
    } else {
        RunStatus::Complete
    };
    // A writer that stopped (a full disk) is the cause of the steps' "channel closed": its
    // error is the one recorded and returned.
    let error = match (&joined, &steps_result) {
        (Err(e), _) => Some(format!("the recording stopped: {e}")),
        (_, Err(e)) => Some(format!("{e:#}")),
        _ if ok == 0 && status == RunStatus::Failed => Some("no request succeeded".to_string()),
        _ => None,
    };
    let finished = store.finish_run(run_id, status, error.as_deref());
    let recorded = joined.context("the recording stopped")?;
    steps_result?;
    finished.context("closing the run")?;
    let _ = recorded;
    Ok((status, ok, failed))
}

fn check_lengths(cfg: &ProbeConfig, info: &EngineInfo) -> anyhow::Result<()> {
    let Some(max) = info.max_model_len else {
        return Ok(());
    };
    for (input_len, output_len) in cfg.length_pairs() {
        if input_len + output_len > max {
            return Err(Failure::Usage(format!(
                "--input-len {input_len} + --output-len {output_len} exceeds the engine's context of {max} tokens; shorten them"
            ))
            .into());
        }
    }
    Ok(())
}

async fn run_steps(cfg: &ProbeConfig, mut shared: Shared) -> anyhow::Result<()> {
    for (i, spec) in cfg.steps.iter().enumerate() {
        if shared.stop.is_cancelled() {
            break;
        }
        run_one_step(cfg, &mut shared, u32::try_from(i)?, *spec).await?;
    }
    shared.boundary.scrape().await;
    Ok(())
}

/// `--batch-sizes auto`: after each step, the run is read back and the search replayed over it
/// ([`crate::search`]); its next batch size is the next step, until it is done or stopped.
async fn run_search(
    cfg: &ProbeConfig,
    search: &SearchSettings,
    meter: &StepMeter,
    mut shared: Shared,
) -> anyhow::Result<()> {
    let mut idx = 0u32;
    let mut next = Some(1);
    while let Some(bs) = next {
        if shared.stop.is_cancelled() {
            break;
        }
        let spec = StepSpec {
            batch_size: bs,
            input_len: search.input_len,
            output_len: search.output_len,
        };
        run_one_step(cfg, &mut shared, idx, spec).await?;
        // The step's rows on disk before they are read back: a scrape after its end, handed
        // on to the writer (the scraper's forwarder is one hop), then a flush.
        shared.boundary.scrape().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        shared.writer.flush().await?;
        let report = meter.replay(search).await?;
        if !cfg.json
            && let Some(step) = report.steps.last()
        {
            let verdict = step
                .verdict
                .limit()
                .map_or("follows".to_string(), |l| l.describe());
            eprintln!(
                "search: step {} bs {}: {verdict}",
                step.step_idx, step.batch_size
            );
        }
        next = report.next_bs;
        idx += 1;
    }
    shared.boundary.scrape().await;
    Ok(())
}

/// Runs one step: a scrape at its start, its record, its workers, its end.
async fn run_one_step(
    cfg: &ProbeConfig,
    shared: &mut Shared,
    idx: u32,
    spec: StepSpec,
) -> anyhow::Result<()> {
    // A scrape between steps: each step's engine counters are then bracketed by samples that
    // hold none of its neighbours' traffic.
    shared.boundary.scrape().await;
    let plan = match (cfg.pattern, cfg.warmup) {
        (Pattern::Wave, Warmup::Waves(w)) => StepPlan::Wave {
            warmup_waves: w,
            waves: cfg.waves,
        },
        (Pattern::ClosedLoop, Warmup::Duration(d)) => StepPlan::ClosedLoop {
            warmup: d,
            duration: cfg.duration,
            ramp_per_s: cfg.ramp_per_s,
        },
        _ => anyhow::bail!("warm-up does not match the pattern (a bug in config.rs)"),
    };
    shared.progress = progress_bar(cfg, idx, spec.batch_size, plan);
    let start_t_s = shared.t0.elapsed().as_secs_f64();
    shared
        .writer
        .send(Record::Step(StepRecord {
            rate_rps: None,
            burstiness: None,
            idx,
            batch_size: spec.batch_size,
            input_len: spec.input_len,
            output_len: spec.output_len,
            pattern: cfg.pattern,
            start_t_s,
            end_t_s: None,
        }))
        .await?;
    run_step(shared, idx, spec, plan).await;
    let end_t_s = shared.t0.elapsed().as_secs_f64();
    shared.writer.send(Record::StepEnd { idx, end_t_s }).await?;
    shared.progress.finish();
    Ok(())
}

fn progress_bar(cfg: &ProbeConfig, idx: u32, bs: u32, plan: StepPlan) -> ProgressBar {
    if cfg.json {
        return ProgressBar::hidden();
    }
    let (pb, template) = match plan {
        StepPlan::Wave {
            warmup_waves,
            waves,
        } => (
            ProgressBar::new(u64::from(bs) * u64::from(warmup_waves + waves)),
            "{prefix} [{bar:30}] {pos}/{len} requests  {per_sec}  {msg}",
        ),
        StepPlan::ClosedLoop { .. } => (
            ProgressBar::new_spinner(),
            "{prefix} {spinner} {pos} requests  {per_sec}  {msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_prefix(format!("step {idx} bs={bs}"));
    pb
}

/// Chat prompts are text: one short request tells how many tokens the chat template adds.
async fn calibrate_chat(client: &EngineClient, t0: Instant, abort: &CancellationToken) -> u32 {
    let slot = RequestSlot {
        step_idx: u32::MAX,
        worker: 0,
        wave: None,
        warmup: true,
    };
    let rec = client
        .stream(slot, &Prompt::Text("the".into()), 1, 2, t0, abort)
        .await;
    rec.prompt_tokens_reported
        .map_or(0, |n| n.saturating_sub(1))
}

/// Ctrl-C or SIGTERM: stop sending, give in-flight requests `grace`, then cancel them.
async fn watch_signals(
    stop: CancellationToken,
    abort: CancellationToken,
    grace: std::time::Duration,
) {
    wait_for_signal().await;
    eprintln!(
        "interrupted: no new requests; in-flight ones get {}s to finish (--grace)",
        grace.as_secs_f64()
    );
    stop.cancel();
    tokio::select! {
        () = tokio::time::sleep(grace) => {}
        () = wait_for_signal() => {}
    }
    abort.cancel();
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
