//! The workers of one step: exactly `bs` long-lived tasks, each looping send → stream →
//! record. `wave`: the workers meet at a barrier before every wave, so a wave is `bs` requests
//! sent at once. `closed-loop`: each worker sends back to back until the step's end, started
//! all at once or ramped. Records go to the writer; workers compute nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use ceiling_reports::{LatenessTick, Outcome};

use crate::config::{Endpoint, StepSpec};
use crate::store::{Record, Writer};

use super::boundary::Boundary;
use super::client::{EngineClient, RequestSlot};
use super::workload::{Prompt, PromptMaker};

/// How often the lateness ticker asks to be woken. Each wake-up of an idle runtime costs the
/// probe ~40 µs of CPU on a VM: at 5 ms the ticker was 44 % of the probe's CPU at 8 streams
/// (docs/PERFORMANCE.md, "The client's error against what the engine wrote, and the lateness
/// ticker every 20 ms"). Lateness is read as a p99 over a step, and a 20 ms grid still samples
/// stalls against the 5 ms tolerance.
pub const TICK_PERIOD: Duration = Duration::from_millis(20);

/// What every worker of a run shares.
#[derive(Clone)]
pub struct Shared {
    pub client: EngineClient,
    pub prompts: Arc<PromptMaker>,
    pub endpoint: Endpoint,
    pub t0: Instant,
    pub writer: Writer,
    /// Stop sending new requests (Ctrl-C).
    pub stop: CancellationToken,
    /// Cancel requests in flight (Ctrl-C after the grace period).
    pub abort: CancellationToken,
    pub progress: ProgressBar,
    pub ok: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    /// Takes a scrape of the engine's metrics between waves (nothing without a scraper).
    pub boundary: Boundary,
}

/// A wave's start: all workers arrive, a scrape is taken, all are released.
pub struct WaveBarrier {
    arrived: Barrier,
    release: Barrier,
}

/// How one step's workers behave.
#[derive(Debug, Clone, Copy)]
pub enum StepPlan {
    Wave {
        warmup_waves: u32,
        waves: u32,
    },
    ClosedLoop {
        warmup: Duration,
        duration: Duration,
        ramp_per_s: Option<f64>,
    },
}

/// Runs one step to its end (or until stopped) and returns when every worker is done.
pub async fn run_step(shared: &Shared, idx: u32, spec: StepSpec, plan: StepPlan) {
    let ticker = Ticker::start(shared, idx);
    let mut workers = JoinSet::new();
    let barrier = Arc::new(WaveBarrier {
        arrived: Barrier::new(spec.batch_size as usize),
        release: Barrier::new(spec.batch_size as usize),
    });
    let started = Instant::now();
    for w in 0..spec.batch_size {
        let shared = shared.clone();
        let barrier = barrier.clone();
        workers.spawn(async move {
            match plan {
                StepPlan::Wave {
                    warmup_waves,
                    waves,
                } => {
                    wave_worker(
                        &shared,
                        idx,
                        w,
                        spec,
                        warmup_waves + waves,
                        warmup_waves,
                        &barrier,
                    )
                    .await
                }
                StepPlan::ClosedLoop {
                    warmup,
                    duration,
                    ramp_per_s,
                } => {
                    let delay = ramp_per_s.map_or(Duration::ZERO, |r| {
                        Duration::from_secs_f64(f64::from(w) / r)
                    });
                    loop_worker(&shared, idx, w, spec, started, delay, warmup, duration).await
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    ticker.stop().await;
}

/// A step's [`lateness_ticker`], running until stopped.
pub(super) struct Ticker {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    pub(super) fn start(shared: &Shared, idx: u32) -> Ticker {
        let stop = CancellationToken::new();
        let task = tokio::spawn(lateness_ticker(
            shared.writer.clone(),
            idx,
            shared.t0,
            stop.clone(),
        ));
        Ticker { stop, task }
    }

    pub(super) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn wave_worker(
    shared: &Shared,
    idx: u32,
    w: u32,
    spec: StepSpec,
    total_waves: u32,
    warmup_waves: u32,
    barrier: &WaveBarrier,
) {
    for wave in 0..total_waves {
        let n = u64::from(wave);
        let slot = RequestSlot {
            step_idx: idx,
            worker: w,
            wave: Some(wave),
            warmup: wave < warmup_waves,
        };
        // The prompt is made before the barrier, so no worker's tokenizing staggers the sends.
        let prompt = make_prompt(shared, slot, spec, n);
        // Every worker waits for the others, so the wave leaves together; a stop releases
        // whoever is waiting. Once all have arrived (the previous wave is over), one of them
        // takes a scrape: each wave is then bracketed by scrapes, and the engine's counters
        // over it hold no other wave's tokens.
        let leader = tokio::select! {
            () = shared.stop.cancelled() => return,
            r = barrier.arrived.wait() => r.is_leader(),
        };
        if leader {
            shared.boundary.scrape().await;
        }
        tokio::select! {
            () = shared.stop.cancelled() => return,
            _ = barrier.release.wait() => {}
        }
        if shared.stop.is_cancelled() {
            return;
        }
        if !one_request(shared, slot, spec, &prompt).await {
            return;
        }
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the step's coordinates, passed through once"
)]
async fn loop_worker(
    shared: &Shared,
    idx: u32,
    w: u32,
    spec: StepSpec,
    started: Instant,
    delay: Duration,
    warmup: Duration,
    duration: Duration,
) {
    let warm_until = started + warmup;
    let end = warm_until + duration;
    tokio::select! {
        () = shared.stop.cancelled() => return,
        () = tokio::time::sleep(delay) => {}
    }
    let mut n = 0u64;
    while Instant::now() < end && !shared.stop.is_cancelled() {
        let slot = RequestSlot {
            step_idx: idx,
            worker: w,
            wave: None,
            warmup: Instant::now() < warm_until,
        };
        let prompt = make_prompt(shared, slot, spec, n);
        if !one_request(shared, slot, spec, &prompt).await {
            return;
        }
        n += 1;
    }
}

/// The prompt of request `n` of a worker.
fn make_prompt(shared: &Shared, slot: RequestSlot, spec: StepSpec, n: u64) -> Prompt {
    match shared.endpoint {
        Endpoint::Completions => {
            shared
                .prompts
                .tokens(slot.step_idx, slot.worker, n, spec.input_len)
        }
        Endpoint::Chat => shared
            .prompts
            .text(slot.step_idx, slot.worker, n, spec.input_len),
    }
}

/// Sends one request and records it; false when the writer is gone (nothing more can be kept).
async fn one_request(shared: &Shared, slot: RequestSlot, spec: StepSpec, prompt: &Prompt) -> bool {
    let rec = shared
        .client
        .stream(
            slot,
            prompt,
            spec.input_len,
            spec.output_len,
            shared.t0,
            &shared.abort,
        )
        .await;
    keep(shared, rec).await
}

/// Counts a finished request and hands it to the writer; false when the writer is gone.
pub(super) async fn keep(shared: &Shared, rec: ceiling_reports::RequestRecord) -> bool {
    if rec.outcome == Outcome::Ok {
        shared.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        shared.failed.fetch_add(1, Ordering::Relaxed);
    }
    shared.progress.inc(1);
    shared
        .progress
        .set_message(format!("failed {}", shared.failed.load(Ordering::Relaxed)));
    shared
        .writer
        .send(Record::Request(Box::new(rec)))
        .await
        .is_ok()
}

/// How many ticks the ticker hands the writer at once: 12 × 20 ms, about the writer's commit
/// interval. One send per tick would wake the writer's thread for one row each.
const TICKS_PER_SEND: usize = 12;

/// Measures how late the runtime wakes this task: a tick due every [`TICK_PERIOD`] records
/// when it was due and how late it woke. Late wake-ups mean the client, not the engine, may set
/// the pace. The ticks go to the writer [`TICKS_PER_SEND`] at a time, the rest when stopped.
async fn lateness_ticker(writer: Writer, idx: u32, t0: Instant, stop: CancellationToken) {
    let mut due = Instant::now() + TICK_PERIOD;
    let mut ticks = Vec::with_capacity(TICKS_PER_SEND);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep_until(due.into()) => {}
        }
        let now = Instant::now();
        ticks.push(LatenessTick {
            step_idx: idx,
            t_s: due.duration_since(t0).as_secs_f64(),
            late_s: now.duration_since(due).as_secs_f64(),
        });
        if ticks.len() == TICKS_PER_SEND {
            let full = std::mem::replace(&mut ticks, Vec::with_capacity(TICKS_PER_SEND));
            if writer.send(Record::Ticks(full)).await.is_err() {
                return;
            }
        }
        due += TICK_PERIOD;
        if due < now {
            // Skip the ticks a long stall swallowed rather than firing them in a burst.
            due = now + TICK_PERIOD;
        }
    }
    if !ticks.is_empty() {
        // The writer gone: nothing more can be kept, and the step's end says so.
        let _ = writer.send(Record::Ticks(ticks)).await;
    }
}
