//! Prefill/decode disaggregation: each role's engine view per step (running batch, queue, queue
//! time, prefill compute, decode step time), the client's TTFT split into the prefill side's
//! queue and compute, the decode side's queue and the hand-off between them, TPOT's step time
//! from the decode side, and which side limits (a side whose queue holds requests while the
//! other does not). Computed from the role endpoints' recorded scrapes (`--metrics-url
//! prefill=URL --metrics-url decode=URL`) and the client's step figures; nothing is measured
//! here.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::{EngineSample, inside};
use crate::frames::Rows;
use crate::rate::{MacroCeiling, RateStep, gauge};
use crate::recording::{Recording, StepRecord};
use crate::summary::StepSummary;
use ceiling_collectors::engines::SumCount;

/// Which side of a disaggregated deployment an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Prefill,
    Decode,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Prefill => "prefill",
            Role::Decode => "decode",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "prefill" => Some(Role::Prefill),
            "decode" => Some(Role::Decode),
            _ => None,
        }
    }
}

/// One role endpoint's recording: its canonical samples, sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleEngine {
    pub source: u32,
    pub role: Role,
    /// The metrics URL, with any credentials removed.
    pub url: String,
    pub samples: Vec<EngineSample>,
    /// Scrapes recorded, failed ones included.
    pub scrapes: usize,
}

/// One side's view over one step (its endpoints summed: running and queues add up; the times
/// are means over every request the side's histograms counted in the step).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SideStep {
    pub endpoints: u32,
    /// Mean over the scrapes inside the step.
    pub running_mean: Option<f64>,
    pub waiting_mean: Option<f64>,
    pub waiting_max: Option<f64>,
    /// SGLang's PD queues (bootstrap on a prefill server; prealloc and transfer on a decode
    /// server), mean over the scrapes.
    pub pd_queue_mean: Option<f64>,
    /// Mean time a request waited in this side's queue (its queue-time histogram).
    pub queue_s_mean: Option<f64>,
    /// Mean first-scheduled-to-first-token time (the prompt's compute on a prefill side).
    pub prefill_s_mean: Option<f64>,
    /// Mean inter-token latency the side's engine counted: the decode step time.
    pub itl_s_mean: Option<f64>,
    /// Mean time a request spent on this side after its queue: end-to-end less queue time
    /// (the prompt's compute on a prefill side, the whole decode on a decode side).
    pub service_s_mean: Option<f64>,
    /// Requests the side's queue-time (else end-to-end) histogram counted in the step.
    pub requests: Option<f64>,
    /// Mean requests in the side's queue: by Little's law, requests counted ÷ the span × mean
    /// queue time; without a queue-time histogram, the waiting gauges (plus the PD queues).
    pub queue_len: Option<f64>,
}

impl SideStep {
    /// The mean waiting requests with SGLang's PD queues added; `None` where it has neither.
    pub fn waiting_with_pd_queues(&self) -> Option<f64> {
        match (self.waiting_mean, self.pd_queue_mean) {
            (None, None) => None,
            (w, q) => Some(w.unwrap_or(0.0) + q.unwrap_or(0.0)),
        }
    }
}

/// The side that limits a step, or why none does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limiting {
    Prefill,
    Decode,
    /// Both sides queue about as long.
    Both,
    /// Neither side queues: the load is under both sides' capacity.
    Neither,
    /// A side has no queue figures.
    Unknown,
}

impl Limiting {
    pub fn as_str(self) -> &'static str {
        match self {
            Limiting::Prefill => "prefill",
            Limiting::Decode => "decode",
            Limiting::Both => "both",
            Limiting::Neither => "neither",
            Limiting::Unknown => "unknown",
        }
    }
}

/// The client's mean TTFT split by where the time went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TtftSplit {
    pub client_ttft_s: Option<f64>,
    pub prefill_queue_s: Option<f64>,
    pub prefill_compute_s: Option<f64>,
    pub decode_queue_s: Option<f64>,
    /// The rest: the router, the KV transfer and the decode side's first step.
    pub handoff_s: Option<f64>,
}

/// One step of a disaggregated run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PdStep {
    pub step_idx: u32,
    pub rate_rps: Option<f64>,
    pub prefill: SideStep,
    pub decode: SideStep,
    pub ttft: TtftSplit,
    /// The client's mean TPOT, beside the decode side's step time (`decode.itl_s_mean`).
    pub client_tpot_s: Option<f64>,
    pub limiting: Limiting,
    pub why: String,
}

/// The disaggregated view of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PdView {
    pub endpoints: Vec<PdEndpoint>,
    pub steps: Vec<PdStep>,
    /// The limiting side where the load broke: at the first rate over the macro ceiling, else
    /// the run's highest-load step with a side limiting.
    pub verdict: Option<PdVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PdEndpoint {
    pub source: u32,
    pub role: Role,
    pub url: String,
    pub scrapes: usize,
    pub samples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PdVerdict {
    pub step_idx: u32,
    pub limiting: Limiting,
    pub line: String,
}

/// A side is saturated when at least this many requests wait in its queue on average (Little's
/// law: its arrival rate × its mean queue time). Random arrivals queue a little at any load;
/// one request always waiting is a queue the side's capacity makes: for Poisson arrivals at a
/// single server with a fixed service time (M/D/1) it takes a utilisation of 0.73, and a side
/// that batches many requests at once reaches it only nearer its capacity still.
const SATURATED_QUEUE_LEN: f64 = 1.0;
/// …and each of them waits at least this many of the side's steps: a request that arrives
/// mid-step waits for the step's end in every engine's queue-time histogram, which is not a
/// queue. (Its step: the decode step time; on a prefill side, where no decode step is counted,
/// the prompt's compute.)
const SATURATED_WAIT_STEPS: f64 = 2.0;
/// Where both sides are saturated, one limits when its queue is at least this many times the
/// other's.
const DOMINANCE: f64 = 2.0;

/// Where each step's measured part begins: its first request sent after the warm-up, by step.
/// A step whose requests all warmed up has none.
pub fn measured_starts(rec: &Recording) -> PolarsResult<BTreeMap<u32, f64>> {
    let df = rec
        .requests
        .clone()
        .lazy()
        .filter(col("warmup").not())
        .group_by([col("step_idx")])
        .agg([col("sent_t_s").min().alias("measured_start")])
        .collect()?;
    let rows = Rows::new(df, "step_idx")?;
    let mut out = BTreeMap::new();
    for s in &rec.steps {
        if let Some(t) = rows.f64(s.idx, "measured_start")? {
            out.insert(s.idx, t);
        }
    }
    Ok(out)
}

/// The disaggregated view of `rec` ([`pd_view`] from its role endpoints, steps and measured
/// starts), or `None` for a run with no role endpoints.
pub fn pd_view_of(
    rec: &Recording,
    summaries: &[StepSummary],
    rates: &[RateStep],
    macro_ceiling: Option<&MacroCeiling>,
) -> PolarsResult<Option<PdView>> {
    if rec.roles.is_empty() {
        return Ok(None);
    }
    let measured = measured_starts(rec)?;
    Ok(pd_view(
        &rec.roles,
        &rec.steps,
        summaries,
        rates,
        macro_ceiling,
        &measured,
    ))
}

/// The disaggregated view, or `None` for a run with no role endpoints. Each step is read from
/// its measured start (`measured`, [`measured_starts`]; the step's start where it has none) to
/// its end, so the sides' histograms count the requests the client's figures count.
pub fn pd_view(
    roles: &[RoleEngine],
    steps: &[StepRecord],
    summaries: &[StepSummary],
    rates: &[RateStep],
    macro_ceiling: Option<&MacroCeiling>,
    measured: &BTreeMap<u32, f64>,
) -> Option<PdView> {
    if roles.is_empty() {
        return None;
    }
    let pd_steps: Vec<PdStep> = steps
        .iter()
        .filter_map(|s| {
            let end = s.end_t_s?;
            let summary = summaries.iter().find(|x| x.step_idx == s.idx)?;
            let rate = rates
                .iter()
                .find(|r| r.step_idx == s.idx)
                .and_then(RateStep::rate_rps);
            let start = measured.get(&s.idx).copied().unwrap_or(s.start_t_s);
            Some(pd_step(roles, s.idx, start, end, summary, rate))
        })
        .collect();
    let verdict = verdict(&pd_steps, macro_ceiling);
    Some(PdView {
        endpoints: roles
            .iter()
            .map(|r| PdEndpoint {
                source: r.source,
                role: r.role,
                url: r.url.clone(),
                scrapes: r.scrapes,
                samples: r.samples.len(),
            })
            .collect(),
        steps: pd_steps,
        verdict,
    })
}

fn pd_step(
    roles: &[RoleEngine],
    step_idx: u32,
    start: f64,
    end: f64,
    summary: &StepSummary,
    rate_rps: Option<f64>,
) -> PdStep {
    let side = |role| side_step(roles.iter().filter(|r| r.role == role), start, end);
    let (prefill, decode) = (side(Role::Prefill), side(Role::Decode));
    let client_ttft_s = summary.ttft_s.as_ref().map(|d| d.mean);
    // The hand-off is what the client waited beyond the sides' own figures: only where the
    // prefill side counted the client's requests (within 10 %), or the means are of other sets.
    let same_requests = match (summary.ttft_s.as_ref(), prefill.requests) {
        (Some(d), Some(n)) => (n - d.n as f64).abs() <= 0.1 * d.n as f64,
        _ => false,
    };
    let handoff_s = match (
        client_ttft_s,
        prefill.queue_s_mean,
        prefill.prefill_s_mean,
        decode.queue_s_mean,
    ) {
        (Some(t), Some(pq), Some(pc), dq) if same_requests => Some(t - pq - pc - dq.unwrap_or(0.0)),
        _ => None,
    };
    let ttft = TtftSplit {
        client_ttft_s,
        prefill_queue_s: prefill.queue_s_mean,
        prefill_compute_s: prefill.prefill_s_mean,
        decode_queue_s: decode.queue_s_mean,
        handoff_s,
    };
    let (limiting, why) = limiting(&prefill, &decode);
    PdStep {
        step_idx,
        rate_rps,
        prefill,
        decode,
        ttft,
        client_tpot_s: summary.tpot_s.as_ref().map(|d| d.mean),
        limiting,
        why,
    }
}

/// The histogram's mean over `[start, end]`: Δsum / Δcount between the first and last sample.
fn hist_delta(samples: &[EngineSample], get: fn(&EngineSample) -> Option<SumCount>) -> SumCount {
    let (Some(a), Some(b)) = (samples.first().and_then(get), samples.last().and_then(get)) else {
        return SumCount::default();
    };
    if b.count < a.count || b.sum < a.sum {
        // A counter reset (the engine restarted): no delta.
        return SumCount::default();
    }
    SumCount {
        sum: b.sum - a.sum,
        count: b.count - a.count,
    }
}

fn side_step<'a>(roles: impl Iterator<Item = &'a RoleEngine>, start: f64, end: f64) -> SideStep {
    let mut out = SideStep::default();
    let (mut queue, mut prefill, mut itl, mut e2e) = (
        SumCount::default(),
        SumCount::default(),
        SumCount::default(),
        SumCount::default(),
    );
    let add = |acc: &mut Option<f64>, x: Option<f64>| {
        if let Some(x) = x {
            *acc = Some(acc.unwrap_or(0.0) + x);
        }
    };
    for r in roles {
        out.endpoints += 1;
        // Counters from the last scrape before the step to the first after it; gauges inside.
        let span = crate::engine::around(&r.samples, start, end);
        let within = inside(&r.samples, start, end);
        for (acc, get) in [
            (
                &mut queue,
                (|s| s.signals.queue_s) as fn(&EngineSample) -> Option<SumCount>,
            ),
            (&mut prefill, |s| s.signals.prefill_s),
            (&mut itl, |s| s.signals.itl_s),
            (&mut e2e, |s| s.signals.e2e_s),
        ] {
            let d = hist_delta(span, get);
            acc.sum += d.sum;
            acc.count += d.count;
        }
        add(
            &mut out.running_mean,
            gauge(within, |s| s.signals.running).0,
        );
        let (waiting, waiting_max) = gauge(within, |s| s.signals.waiting);
        add(&mut out.waiting_mean, waiting);
        add(&mut out.waiting_max, waiting_max);
        add(
            &mut out.pd_queue_mean,
            gauge(within, |s| {
                let g = &s.signals;
                let parts = [
                    g.pd_bootstrap_queue,
                    g.pd_prealloc_queue,
                    g.pd_transfer_queue,
                ];
                parts
                    .iter()
                    .any(Option::is_some)
                    .then(|| parts.iter().flatten().sum())
            })
            .0,
        );
    }
    let mean = |h: SumCount| (h.count > 0.0).then(|| h.sum / h.count);
    out.queue_s_mean = mean(queue);
    out.prefill_s_mean = mean(prefill);
    out.itl_s_mean = mean(itl);
    out.service_s_mean = match (mean(e2e), out.queue_s_mean) {
        (Some(e), Some(q)) => Some((e - q).max(0.0)),
        _ => None,
    };
    out.requests = [queue, e2e].iter().find(|h| h.count > 0.0).map(|h| h.count);
    out.queue_len = match (out.queue_s_mean, queue.count > 0.0 && end > start) {
        (Some(q), true) => Some(queue.count / (end - start) * q),
        _ => out.waiting_with_pd_queues(),
    };
    out
}

/// Which side's queue holds requests: a side is saturated when [`SATURATED_QUEUE_LEN`]
/// requests wait in its queue on average, each for at least [`SATURATED_WAIT_STEPS`] of its
/// steps (where it has queue times). One saturated side limits; where both are, the one whose
/// queue is [`DOMINANCE`] times the other's, else both.
fn limiting(p: &SideStep, d: &SideStep) -> (Limiting, String) {
    if p.endpoints == 0 || d.endpoints == 0 {
        return (Limiting::Unknown, "one side has no metrics endpoint".into());
    }
    let (Some(pl), Some(dl)) = (p.queue_len, d.queue_len) else {
        return (Limiting::Unknown, "a side has no queue figures".into());
    };
    let saturated = |len: f64, s: &SideStep| {
        let step = s.itl_s_mean.or(s.prefill_s_mean).or(s.service_s_mean);
        let waits_steps = match (s.queue_s_mean, step) {
            (Some(q), Some(t)) => q >= SATURATED_WAIT_STEPS * t,
            _ => true,
        };
        len >= SATURATED_QUEUE_LEN && waits_steps
    };
    let verdict = match (saturated(pl, p), saturated(dl, d)) {
        (false, false) => Limiting::Neither,
        (true, false) => Limiting::Prefill,
        (false, true) => Limiting::Decode,
        (true, true) if pl >= DOMINANCE * dl => Limiting::Prefill,
        (true, true) if dl >= DOMINANCE * pl => Limiting::Decode,
        (true, true) => Limiting::Both,
    };
    let side = |name: &str, len: f64, s: &SideStep| {
        let time = s
            .queue_s_mean
            .map_or(String::new(), |q| format!(" for {:.0} ms", q * 1e3));
        let running = s
            .running_mean
            .map_or(String::new(), |r| format!(", {r:.1} running"));
        format!("{name}: {len:.1} requests waiting{time}{running}")
    };
    let line = format!("{}; {}", side("prefill", pl, p), side("decode", dl, d));
    (verdict, line)
}

/// The side that limits where the load broke: the first rate over the macro ceiling, else the
/// last step (the highest load of a sweep) where a side limits.
fn verdict(steps: &[PdStep], macro_ceiling: Option<&MacroCeiling>) -> Option<PdVerdict> {
    let at_miss = macro_ceiling
        .and_then(|m| m.first_miss_step_idx)
        .and_then(|i| steps.iter().find(|s| s.step_idx == i));
    let limited = |s: &&PdStep| {
        matches!(
            s.limiting,
            Limiting::Prefill | Limiting::Decode | Limiting::Both
        )
    };
    let step = at_miss
        .filter(limited)
        .or_else(|| steps.iter().rev().find(limited))?;
    let at = step
        .rate_rps
        .map_or(format!("step {}", step.step_idx), |r| {
            format!("{r:.2} req/s (step {})", step.step_idx)
        });
    let who = match step.limiting {
        Limiting::Prefill => {
            "the prefill side limits: its queue holds requests while decode has room"
        }
        Limiting::Decode => "the decode side limits: requests wait for it while prefill keeps up",
        _ => "both sides queue: the pair is balanced at its limit",
    };
    Some(PdVerdict {
        step_idx: step.step_idx,
        limiting: step.limiting,
        line: format!("{who}; at {at}: {}", step.why),
    })
}

#[cfg(test)]
mod tests;
