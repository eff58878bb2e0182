//! The search's next move from the steps judged so far: [`decide`], a pure function (the judged
//! steps, the settings and the time spent in; the next batch size or the outcome out).
//!
//! Measure bs 1, then double while the engine follows — up to what the engine says it can hold,
//! then one step just above it to see the limit. At the first batch size it does not follow,
//! narrow the bracket between the last batch size followed and the first not followed until
//! they are within the precision (5 %): to the running batch's plateau when a sequence cap
//! stopped it, to where the measured step times cross the SLA when the SLA did, to where the KV
//! usage would reach 95 % when the cache did, else to the middle. Before each step, the search
//! stops if that step would end past the budget.

use serde::{Deserialize, Serialize};

use super::SearchSettings;
use super::judge::{KV_FULL_FRAC, Limit, StepMeasure, Verdict};

/// No batch size beyond this is tried: an engine that follows 65,536 sequences has no limit
/// this search can find.
pub const MAX_BATCH_SIZE: u32 = 1 << 16;

/// Steps after which the search gives up (it needs about 20 at most from 1 to
/// [`MAX_BATCH_SIZE`] at 5 %): a guard against a bug, not a setting.
pub const MAX_STEPS: usize = 40;

/// A step and its judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub measure: StepMeasure,
    pub verdict: Verdict,
}

impl Judged {
    fn bs(&self) -> u32 {
        self.measure.batch_size
    }
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stop {
    /// The bracket closed at the engine's limit: the first batch size above the ceiling that
    /// the engine did not follow stopped for this reason.
    Limit { limit: Limit },
    /// The next step (`next_bs`, estimated `estimate_s`) would have ended past the budget.
    Budget {
        next_bs: u32,
        elapsed_s: f64,
        estimate_s: Option<f64>,
    },
    /// The engine followed every batch size up to [`MAX_BATCH_SIZE`], or [`MAX_STEPS`] ran.
    SearchBound,
    /// The run stopped (Ctrl-C) before the step at `next_bs`.
    Interrupted { next_bs: u32 },
}

impl Stop {
    pub fn name(&self) -> &'static str {
        match self {
            Stop::Limit { limit } => limit.name(),
            Stop::Budget { .. } => "budget",
            Stop::SearchBound => "search_bound",
            Stop::Interrupted { .. } => "interrupted",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Stop::Limit { limit } => limit.describe(),
            Stop::Budget {
                next_bs,
                elapsed_s,
                estimate_s,
            } => format!(
                "budget: {elapsed_s:.0} s spent, and bs {next_bs} would take {} more",
                estimate_s.map_or("unknown time".into(), |e| format!("about {e:.0} s"))
            ),
            Stop::SearchBound => format!(
                "search bound: the engine followed every batch size tried (up to \
                 {MAX_BATCH_SIZE}, or {MAX_STEPS} steps)"
            ),
            Stop::Interrupted { next_bs } => format!("interrupted before bs {next_bs}"),
        }
    }
}

/// Where the search ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub stop: Stop,
    /// The step followed with the highest throughput below `first_bad_bs`: the ceiling.
    pub ceiling_step: Option<u32>,
    /// The largest batch size followed below the first one not followed.
    pub last_good_bs: Option<u32>,
    /// The smallest batch size the engine did not follow.
    pub first_bad_bs: Option<u32>,
}

/// The search's next move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    Next(u32),
    Done(Outcome),
}

/// The next batch size to measure, or the outcome. `steps` in the order measured; `elapsed_s`
/// from the first step's start to the last one's end.
pub fn decide(s: &SearchSettings, steps: &[Judged], elapsed_s: f64) -> Decision {
    if steps.is_empty() {
        return Decision::Next(1);
    }
    let (good, bad) = bracket(steps);
    let done = |stop| Decision::Done(outcome(steps, stop));
    let next = match (good, bad) {
        (None, Some(b)) if b.bs() <= 1 => return done(stop_at(b)),
        (None, Some(b)) => b.bs() / 2,
        (Some(g), None) if g.bs() >= MAX_BATCH_SIZE => return done(Stop::SearchBound),
        (Some(g), None) => doubled(g.bs(), s),
        (Some(g), Some(b)) if closed(g, b, s.precision) => return done(stop_at(b)),
        (Some(g), Some(b)) => inside(g, b, s),
        (None, None) => 1,
    }
    .clamp(1, MAX_BATCH_SIZE);
    if steps.len() >= MAX_STEPS {
        return done(Stop::SearchBound);
    }
    let estimate_s = estimate_s(steps, next);
    if elapsed_s + estimate_s.unwrap_or(0.0) > s.budget_s {
        return done(Stop::Budget {
            next_bs: next,
            elapsed_s,
            estimate_s,
        });
    }
    Decision::Next(next)
}

/// The outcome of the steps as they are, stopped for `stop`.
pub fn outcome(steps: &[Judged], stop: Stop) -> Outcome {
    let (good, bad) = bracket(steps);
    let below = |j: &&Judged| bad.is_none_or(|b| j.bs() < b.bs());
    let ceiling_step = steps
        .iter()
        .filter(|j| j.verdict.follows())
        .filter(below)
        .filter_map(|j| Some((j, j.measure.throughput_tok_s()?)))
        .max_by(|x, y| x.1.total_cmp(&y.1).then(x.0.bs().cmp(&y.0.bs())))
        .map(|(j, _)| j.measure.step_idx);
    Outcome {
        stop,
        ceiling_step,
        last_good_bs: good.map(Judged::bs),
        first_bad_bs: bad.map(Judged::bs),
    }
}

fn stop_at(bad: &Judged) -> Stop {
    match bad.verdict.limit() {
        Some(limit) => Stop::Limit { limit: *limit },
        None => Stop::SearchBound,
    }
}

/// The smallest batch size not followed, and the largest followed below it.
fn bracket(steps: &[Judged]) -> (Option<&Judged>, Option<&Judged>) {
    let bad = steps
        .iter()
        .filter(|j| !j.verdict.follows())
        .min_by_key(|j| j.bs());
    let good = steps
        .iter()
        .filter(|j| j.verdict.follows() && bad.is_none_or(|b| j.bs() < b.bs()))
        .max_by_key(|j| j.bs());
    (good, bad)
}

/// The smallest batch size worth measuring above `g`: `g` grown by the precision, at least +1.
fn up(g: u32, precision: f64) -> u32 {
    ((f64::from(g) * (1.0 + precision)).floor() as u32).max(g + 1)
}

/// The largest batch size worth measuring below `b`.
fn down(b: u32, precision: f64) -> u32 {
    ((f64::from(b) / (1.0 + precision)).ceil() as u32).min(b.saturating_sub(1))
}

/// The bracket is closed when the first batch size not followed is within the precision of
/// the last one followed, or when the engine's running batch plateaued at or below it.
fn closed(g: &Judged, b: &Judged, precision: f64) -> bool {
    if let Some(Limit::SequenceCap { cap }) = b.verdict.limit()
        && *cap <= g.bs()
    {
        return true;
    }
    b.bs() <= up(g.bs(), precision)
}

/// Doubling: twice the last batch size followed, but no more than the engine says it holds;
/// once there, one step just above it, to see the limit rather than take the engine's word.
fn doubled(g: u32, s: &SearchSettings) -> u32 {
    let twice = g.saturating_mul(2);
    match s.engine_hold.as_ref().map(|h| h.max_batch) {
        Some(h) if g < h => twice.min(h),
        Some(h) if f64::from(g) < f64::from(h) * (1.0 + s.precision) => up(g, s.precision),
        _ => twice,
    }
}

/// The next batch size inside an open bracket `(g, b)`: where the bad step's limit points,
/// kept at least the precision away from both ends, else the middle.
fn inside(g: &Judged, b: &Judged, s: &SearchSettings) -> u32 {
    let guess = match b.verdict.limit() {
        Some(Limit::SequenceCap { cap }) if *cap > g.bs() && *cap < b.bs() => return *cap,
        Some(Limit::Sla { .. }) => sla_crossing(g, b, s),
        Some(Limit::KvCapacity { .. } | Limit::Preemption { .. }) => kv_full(g, s),
        _ => None,
    };
    let middle = g.bs() + (b.bs() - g.bs()) / 2;
    let (lo, hi) = (up(g.bs(), s.precision), down(b.bs(), s.precision));
    match guess {
        Some(x) if lo <= hi => x.clamp(lo, hi),
        _ => middle,
    }
}

/// Where the step time, linear in bs between the two ends, reaches the SLA's.
fn sla_crossing(g: &Judged, b: &Judged, s: &SearchSettings) -> Option<u32> {
    let (tg, tb) = (g.measure.t_fwd_s?, b.measure.t_fwd_s?);
    let mtp = g.measure.mtp;
    let by_otps = s.sla_otps_or_default().map(|o| mtp / o);
    let by_tpot = s.sla_tpot_s.map(|t| t * mtp);
    let target = match (by_otps, by_tpot) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    if tb <= tg || target < tg {
        return None;
    }
    let (bg, bb) = (f64::from(g.bs()), f64::from(b.bs()));
    let at = bg + (target - tg) / (tb - tg) * (bb - bg);
    at.is_finite().then(|| at.floor() as u32)
}

/// Where the KV cache reaches [`KV_FULL_FRAC`]: what the engine says it holds when that is a KV
/// figure, else the last good step's usage grown in proportion to bs.
fn kv_full(g: &Judged, s: &SearchSettings) -> Option<u32> {
    if let Some(h) = &s.engine_hold
        && h.limit == super::HoldLimit::KvCapacity
        && h.max_batch > g.bs()
    {
        return Some(h.max_batch);
    }
    let u = g.measure.kv_usage_max_frac.filter(|u| *u > 0.0)?;
    Some((f64::from(g.bs()) * KV_FULL_FRAC / u).floor() as u32)
}

/// How long a step at `next` will take, from the measured steps' durations: between two
/// measured batch sizes the longer one's; above them, extended along the last two.
fn estimate_s(steps: &[Judged], next: u32) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|j| Some((f64::from(j.bs()), j.measure.duration_s?)))
        .collect();
    pts.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = f64::from(next);
    let at_or_below = pts.iter().rposition(|p| p.0 <= n);
    let above = pts.iter().find(|p| p.0 >= n);
    match (at_or_below, above) {
        (Some(i), Some(b)) => Some(pts[i].1.max(b.1)),
        (Some(i), None) => {
            let (bs, d) = pts[i];
            let slope = match i.checked_sub(1).map(|j| pts[j]) {
                Some((bs0, d0)) if bs > bs0 => ((d - d0) / (bs - bs0)).max(0.0),
                _ => d / bs,
            };
            Some(d + slope * (n - bs))
        }
        (None, Some(b)) => Some(b.1),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests;
