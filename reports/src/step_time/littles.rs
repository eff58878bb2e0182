//! Little's law over a step, paired: at each interval scrape inside the measured requests' span,
//! the engine's requests in flight (running + waiting) against the client's at the same
//! instant. The client knows two counts there: the requests it had sent and not yet seen done,
//! and, of those, the ones the engine must already have counted. An engine counts a request
//! only when it next schedules: vLLM makes its scheduler stats as it plans a step, SGLang
//! refreshes its gauges at a prefill batch, so a request sent while a long prefill step runs
//! is in no gauge until that step ends. The first chunk any request received after a request
//! was sent marks the end of the step that was running (a step's tokens are delivered as it
//! ends), so from then on the engine must count it, until its own last token (the engine drops
//! a finished request as that step ends; the client reads the stream's end later). The engine's mean must not fall below the
//! second mean: where it does, requests wait outside the engine (a proxy, a router, the client).
//!
//! Not on SGLang: its scheduler gauges are set only at its log points (a prefill batch, which
//! leaves the batch's own requests out of both gauges, and every 40 decode steps), so a scrape
//! shows a count up to 40 steps old that no client instant pairs with; in a closed loop of 8
//! requests with 1,024-token prompts they averaged 3.8 against the client's 8.
//!
//! The instants come from the requests' figures and the chunks frame (sorted by polars); the
//! next chunk after each send, and the counts at each scrape, are binary searches.

use polars::prelude::*;

use ceiling_collectors::engines::Flavor;

use super::requests::StepRequests;
use super::{LittlesLaw, mean};
use crate::engine::{self, EngineSample};

/// Interval scrapes Little's law needs in the requests' span. Each is compared with the
/// client's count at its own instant (a wave's swing from the whole batch to nothing is in
/// both), so a few suffice; fewer than this and one scrape at a wave's edge moves the mean by
/// more than the tolerance.
const LITTLES_LAW_SAMPLES: usize = 10;

/// The client's requests as the engine must see them, every request of the run with a done
/// instant (warm-up and failed ones too: the engine holds them all), as sorted instant lists:
/// a request is in the client's flight from `sent` to `done`, and surely in the engine's count
/// from `seen` to `last`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InFlight {
    pub sent: Vec<f64>,
    pub done: Vec<f64>,
    /// `min(the first chunk of any request after its send, last)`.
    pub seen: Vec<f64>,
    /// Its last chunk (its last token: the engine drops it from its count as that step ends,
    /// before the client reads the end of the stream), its send where it got none.
    pub last: Vec<f64>,
}

/// One request: its send, its last chunk if any, its done.
pub(crate) type Span = (f64, Option<f64>, f64);

impl InFlight {
    /// From each request's [`Span`] and every chunk instant of the run, sorted.
    pub(crate) fn new(spans: impl IntoIterator<Item = Span>, chunks_sorted: &[f64]) -> Self {
        let mut out = InFlight::default();
        for (sent, last, done) in spans {
            let last = last.unwrap_or(sent).clamp(sent, done);
            let next = chunks_sorted.partition_point(|&c| c <= sent);
            let seen = chunks_sorted.get(next).map_or(last, |&c| c.min(last));
            out.sent.push(sent);
            out.done.push(done);
            out.seen.push(seen);
            out.last.push(last);
        }
        for v in [&mut out.sent, &mut out.done, &mut out.seen, &mut out.last] {
            v.sort_by(f64::total_cmp);
        }
        out
    }

    /// The run's [`InFlight`] from the request figures and the chunks (whose `request` is the
    /// figures' row).
    pub(crate) fn of(figures: &DataFrame, chunks: &DataFrame) -> PolarsResult<Self> {
        let sorted = chunks.column("t_s")?.f64()?.sort(false);
        let sorted = sorted.rechunk();
        let chunk_t = sorted.cont_slice().unwrap_or(&[]);
        let by_request = chunks
            .clone()
            .lazy()
            .group_by([col("request")])
            .agg([col("t_s").max().alias("last")])
            .collect()?;
        let mut last = vec![None; figures.height()];
        let request = by_request.column("request")?.u32()?;
        let last_t = by_request.column("last")?.f64()?;
        for (r, t) in request.iter().zip(last_t.iter()) {
            if let Some(slot) = r.and_then(|r| last.get_mut(r as usize)) {
                *slot = t;
            }
        }
        let sent = figures.column("sent_t_s")?.f64()?;
        let done = figures.column("done_t_s")?.f64()?;
        let spans = sent
            .iter()
            .zip(last)
            .zip(done.iter())
            .filter_map(|((a, l), b)| Some((a?, l, b?)).filter(|(a, _, b)| b >= a));
        Ok(InFlight::new(spans, chunk_t))
    }

    /// Requests past `from` and not past `to` at `t`: `#{from ≤ t} − #{to ≤ t}`.
    fn at(from: &[f64], to: &[f64], t: f64) -> f64 {
        let started = from.partition_point(|&x| x <= t);
        let ended = to.partition_point(|&x| x <= t);
        started.saturating_sub(ended) as f64
    }
}

/// How long a request may have reached the engine and still be in no gauge, for Little's law:
/// one step (`t_fwd`), from the end of which the client marks it seen. With DP ranks the chunk
/// that marks it may come from another rank, whose short decode steps end while the request's
/// own rank is inside a long prefill step; the client cannot tell the ranks apart, so the
/// allowance is then the length-biased mean chunk gap `Σ g² / Σ g` (the step a random arrival
/// falls into) where it is longer.
pub(super) fn unseen_step_s(
    dp: u32,
    t_fwd_s: Option<f64>,
    gap_at_edge_s: Option<f64>,
) -> Option<f64> {
    if dp > 1 {
        [t_fwd_s, gap_at_edge_s]
            .into_iter()
            .flatten()
            .reduce(f64::max)
    } else {
        t_fwd_s
    }
}

/// Little's law over the span of the measured requests, paired scrape by scrape; needs
/// [`LITTLES_LAW_SAMPLES`] interval scrapes in it.
pub(super) fn littles_law(
    requests: &StepRequests,
    flight: &InFlight,
    eng: &[EngineSample],
    unseen_s: Option<f64>,
) -> Option<LittlesLaw> {
    let start = requests.ok_sent_min?;
    let end = requests.ok_done_max?;
    if end <= start {
        return None;
    }
    // Boundary scrapes are taken when a wave is over and the engine idle, on the probe's cue:
    // the interval scrapes sample the span evenly.
    let inside = engine::inside(eng, start, end);
    if inside
        .iter()
        .any(|s| s.signals.flavor == Some(Flavor::Sglang))
    {
        return None;
    }
    let (mut engine, mut sent, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for s in inside.iter().filter(|s| !s.boundary) {
        let Some(running) = s.signals.running else {
            continue;
        };
        engine.push(running + s.signals.waiting.unwrap_or(0.0));
        sent.push(InFlight::at(&flight.sent, &flight.done, s.t_s));
        seen.push(InFlight::at(&flight.seen, &flight.last, s.t_s));
    }
    if engine.len() < LITTLES_LAW_SAMPLES {
        return None;
    }
    let engine_in_flight_mean = mean(&engine)?;
    let client_in_flight_mean = mean(&sent)?;
    let client_seen_mean = mean(&seen)?;
    let qps = f64::from(requests.ok_n) / (end - start);
    // A request sent just before a step ended can reach the engine's queue after it: one more
    // step unseen, `QPS × t_fwd` requests on average (a closed loop of 8 short requests at 118
    // req/s and 8.5 ms steps: one request). With DP ranks the caller passes the longer,
    // length-biased step (`unseen_step_s`).
    let step_allowance = qps * unseen_s.unwrap_or(0.0);
    // Only a shortfall: an engine holding more than the client sent is other traffic, which the
    // token counters say exactly (`token_count_mismatch`).
    let rel_err =
        ((client_seen_mean - step_allowance - engine_in_flight_mean) / client_seen_mean).max(0.0);
    Some(LittlesLaw {
        engine_in_flight_mean,
        client_in_flight_mean,
        client_seen_mean,
        samples: engine.len() as u32,
        step_allowance,
        qps,
        e2e_mean_s: requests.ok_e2e_mean_s?,
        rel_err,
    })
}

#[cfg(test)]
#[path = "littles/tests.rs"]
mod tests;
