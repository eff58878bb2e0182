//! One open-loop (rate) step: requests leave on the arrival schedule ([`super::arrivals`]),
//! each a new request whatever is in flight; the client never throttles. A dispatcher sleeps
//! until each arrival is due and hands it to one of [`LANES`] long-lived lanes, each streaming
//! its requests concurrently (no task per request); with `--max-concurrency` an arrival first
//! waits for a slot, as vLLM's bench does. Each request records when it was due
//! (`scheduled_t_s`) beside when it left (`sent_t_s`): the lateness is measured, not assumed.
//! Workers compute nothing; the analysis reads the schedule back ([`ceiling_reports::rate`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::config::Endpoint;

use super::client::RequestSlot;
use super::mix::LengthPlan;
use super::worker::{Shared, Ticker, keep};
use super::workload::Prompt;

/// Lanes streaming a step's requests: each holds any number in flight, so the count only
/// spreads the polling over the runtime's threads.
pub const LANES: u32 = 16;

/// A rate step's schedule and what shapes its requests.
#[derive(Debug, Clone)]
pub struct RatePlan {
    /// Arrival offsets from the step's start, ascending.
    pub offsets: Vec<f64>,
    /// Arrivals due before this offset are warm-up.
    pub warmup_s: f64,
    pub max_concurrency: Option<u32>,
    /// The step's base lengths (input, output).
    pub base: (u32, u32),
    pub lengths: Arc<LengthPlan>,
}

/// An arrival handed to a lane.
struct Arrival {
    n: u64,
    scheduled: Instant,
    warmup: bool,
    permit: Option<OwnedSemaphorePermit>,
}

/// Runs one rate step to its last arrival's end (or until stopped).
pub async fn run_rate_step(shared: &Shared, idx: u32, plan: RatePlan) {
    let ticker = Ticker::start(shared, idx);
    let plan = Arc::new(plan);
    let mut lanes = JoinSet::new();
    let mut senders = Vec::with_capacity(LANES as usize);
    for lane in 0..LANES {
        let (tx, rx) = flume::unbounded::<Arrival>();
        senders.push(tx);
        let (shared, plan) = (shared.clone(), plan.clone());
        lanes.spawn(async move { run_lane(&shared, idx, lane, &plan, rx).await });
    }
    dispatch(shared, &plan, &senders).await;
    drop(senders);
    while lanes.join_next().await.is_some() {}
    ticker.stop().await;
}

/// Sleeps until each arrival is due (and, under a cap, until a slot frees), then hands it to
/// the next lane in turn.
async fn dispatch(shared: &Shared, plan: &RatePlan, lanes: &[flume::Sender<Arrival>]) {
    let start = Instant::now();
    let slots = plan
        .max_concurrency
        .map(|c| Arc::new(Semaphore::new(c as usize)));
    for (n, &offset) in plan.offsets.iter().enumerate() {
        let due = start + Duration::from_secs_f64(offset);
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = tokio::time::sleep_until(due.into()) => {}
        }
        let permit = match &slots {
            Some(s) => tokio::select! {
                () = shared.stop.cancelled() => return,
                p = s.clone().acquire_owned() => p.ok(),
            },
            None => None,
        };
        let arrival = Arrival {
            n: n as u64,
            scheduled: due,
            warmup: offset < plan.warmup_s,
            permit,
        };
        if lanes[n % lanes.len()].send(arrival).is_err() {
            return;
        }
    }
}

/// Streams the arrivals handed to this lane, all at once, recording each as it ends.
async fn run_lane(
    shared: &Shared,
    idx: u32,
    lane: u32,
    plan: &RatePlan,
    rx: flume::Receiver<Arrival>,
) {
    let mut flying = FuturesUnordered::new();
    let mut open = true;
    loop {
        tokio::select! {
            a = rx.recv_async(), if open => match a {
                Ok(a) => flying.push(one(shared, idx, lane, plan, a)),
                Err(_) => open = false,
            },
            Some(rec) = flying.next(), if !flying.is_empty() => {
                if !keep(shared, rec).await {
                    return;
                }
            }
            else => return,
        }
    }
}

/// One arrival's request, its schedule recorded; the slot (if any) freed when it ends.
async fn one(
    shared: &Shared,
    idx: u32,
    lane: u32,
    plan: &RatePlan,
    a: Arrival,
) -> ceiling_reports::RequestRecord {
    let (input_len, output_len) = plan.lengths.lengths(idx, a.n, plan.base);
    // A dataset's own text where the run sends it, else a prompt made to length.
    let text = plan.lengths.text(idx, a.n);
    let prompt = match (&text, shared.endpoint) {
        (Some(t), _) => Prompt::Text(t.to_string()),
        (None, Endpoint::Completions) => shared.prompts.tokens(idx, 0, a.n, input_len),
        (None, Endpoint::Chat) => shared.prompts.text(idx, 0, a.n, input_len),
    };
    let slot = RequestSlot {
        step_idx: idx,
        worker: lane,
        wave: None,
        warmup: a.warmup,
    };
    let mut rec = shared
        .client
        .stream(
            slot,
            &prompt,
            input_len,
            output_len,
            shared.t0,
            &shared.abort,
        )
        .await;
    rec.prompt_from_text = text.is_some();
    rec.scheduled_t_s = Some(
        a.scheduled
            .saturating_duration_since(shared.t0)
            .as_secs_f64(),
    );
    drop(a.permit);
    rec
}
