//! The macro ceiling: over a run's rate steps, the highest rate whose p99 TTFT and p99 TPOT
//! meet the SLA (`--sla-ttft`, `--sla-tpot`) with errors under 5 % ([`MacroSla`]). Beside the
//! micro ceiling (`bs × DP × MTP / t_fwd`, [`crate::ceiling`]) it is explained with the
//! identity `QPS × output_len = throughput = bs × DP × MTP × OTPS`: at the macro ceiling the
//! engine ran a batch of `running` sequences (its gauge) each at `OTPS = 1 / TPOT`; against the
//! micro ceiling's `bs` at `1 / t_fwd`, the gap is the product of the batch the engine held
//! (`running / (bs × DP)`) and the per-sequence speed (`t_fwd / TPOT`: prefill chunks and
//! scheduling in the decode steps), with the client's lateness named when it set the pace.

use serde::Serialize;

use super::RateStep;
use crate::ceiling::Ceiling;
use crate::fit::{StepTimeFit, decode_context};

/// The errors above which a rate fails, whatever its latency: 5 %.
pub const MAX_ERROR_RATE: f64 = 0.05;

/// What a rate must meet to count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct MacroSla {
    /// p99 TTFT at most this, seconds.
    pub ttft_p99_s: Option<f64>,
    /// p99 TPOT at most this, seconds.
    pub tpot_p99_s: Option<f64>,
}

impl MacroSla {
    /// Why a rate step misses the SLA, or `None` when it meets it.
    pub fn miss(&self, s: &RateStep) -> Option<String> {
        if s.requests == 0 || s.requests == s.requests_failed {
            return Some("no request succeeded".into());
        }
        if let Some(e) = s.error_rate.filter(|e| *e >= MAX_ERROR_RATE) {
            return Some(format!("{:.1} % of requests failed", e * 100.0));
        }
        let p99 = |d: Option<crate::metrics::Distribution>| d.map(|d| d.p99);
        if let (Some(limit), Some(v)) = (self.ttft_p99_s, p99(s.ttft_s))
            && v > limit
        {
            return Some(format!(
                "p99 TTFT {:.0} ms > {:.0} ms",
                v * 1e3,
                limit * 1e3
            ));
        }
        if let (Some(limit), Some(v)) = (self.tpot_p99_s, p99(s.tpot_s))
            && v > limit
        {
            return Some(format!(
                "p99 TPOT {:.1} ms > {:.1} ms",
                v * 1e3,
                limit * 1e3
            ));
        }
        None
    }
}

/// The macro ceiling of a run's rate steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MacroCeiling {
    pub sla: MacroSla,
    /// The highest-rate step that met the SLA.
    pub step_idx: u32,
    pub rate_asked_rps: Option<f64>,
    pub rate_achieved_rps: Option<f64>,
    /// Successful requests completed per second there (the identity's QPS).
    pub completed_rps: Option<f64>,
    pub output_tokens_per_s: Option<f64>,
    pub ttft_p99_s: Option<f64>,
    pub tpot_p99_s: Option<f64>,
    pub error_rate: Option<f64>,
    /// The lowest rate above it that missed, and why; `None` when every rate measured met it
    /// (the ceiling is then at least this rate, not at it).
    pub first_miss_step_idx: Option<u32>,
    pub first_miss_rate_rps: Option<f64>,
    pub first_miss_reason: Option<String>,
    /// Where the ceiling lies between the step that met the SLA and the first that missed: the
    /// binding criterion (the one furthest over its limit at the miss) interpolated linearly in
    /// the rate to its limit. The measured steps bracket it, so it is the figure to quote and
    /// the bracket its uncertainty; `None` without a miss above.
    pub rate_interpolated_rps: Option<f64>,
    /// The criterion interpolated: `p99 TTFT`, `p99 TPOT` or `errors`.
    pub binding: Option<String>,
    /// Beside the micro ceiling, when the run (or `--against`) has one.
    pub gap: Option<MacroGap>,
}

/// The macro ceiling against the micro one, through the identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MacroGap {
    /// The micro ceiling: `bs × DP × MTP / t_fwd`, output tokens/s.
    pub micro_tok_s: f64,
    pub micro_bs: f64,
    pub micro_t_fwd_s: f64,
    /// The macro ceiling's output tokens/s.
    pub macro_tok_s: f64,
    /// `macro_tok_s / micro_tok_s`.
    pub ratio: f64,
    /// The batch the engine ran at the macro ceiling (its running gauge, mean over the step).
    pub running_bs: Option<f64>,
    /// `running_bs / (micro_bs × DP)`: the share of the micro ceiling's batch the engine held.
    pub batch_share: Option<f64>,
    /// Mean TPOT at the macro ceiling.
    pub tpot_mean_s: Option<f64>,
    /// A pure decode step at the batch the engine ran, from the micro fit (`None` without one).
    pub t_fwd_at_running_s: Option<f64>,
    /// `t_fwd_at_running / TPOT`: the share of each token's time that was decode; the rest went
    /// to prefill chunks and scheduling in the same steps.
    pub decode_share: Option<f64>,
    /// `running × DP-free OTPS = running / TPOT`: the identity's right side at the macro ceiling.
    pub identity_tok_s: Option<f64>,
    /// p99 of the client's send lateness at the macro ceiling.
    pub send_lateness_p99_s: Option<f64>,
    /// One line per cause, largest first.
    pub explanation: Vec<String>,
}

/// The macro ceiling over `steps` (rate steps), or `None` when no rate met the SLA.
pub fn macro_ceiling(
    steps: &[RateStep],
    sla: MacroSla,
    micro: Option<&Ceiling>,
    fit: Option<&StepTimeFit>,
) -> Option<MacroCeiling> {
    let mut by_rate: Vec<&RateStep> = steps.iter().filter(|s| s.rate_rps().is_some()).collect();
    by_rate.sort_by(|a, b| {
        a.rate_rps()
            .unwrap_or(0.0)
            .total_cmp(&b.rate_rps().unwrap_or(0.0))
    });
    let best = by_rate.iter().rev().find(|s| sla.miss(s).is_none())?;
    let best_rate = best.rate_rps().unwrap_or(0.0);
    let miss = by_rate
        .iter()
        .filter(|s| s.rate_rps().unwrap_or(0.0) > best_rate)
        .find_map(|s| sla.miss(s).map(|why| (*s, why)));
    let crossing = miss.as_ref().and_then(|(m, _)| crossing(best, m, &sla));
    Some(MacroCeiling {
        sla,
        step_idx: best.step_idx,
        rate_asked_rps: best.rate_asked_rps,
        rate_achieved_rps: best.rate_achieved_rps,
        completed_rps: best.completed_rps,
        output_tokens_per_s: best.output_tokens_per_s,
        ttft_p99_s: best.ttft_s.map(|d| d.p99),
        tpot_p99_s: best.tpot_s.map(|d| d.p99),
        error_rate: best.error_rate,
        first_miss_step_idx: miss.as_ref().map(|(s, _)| s.step_idx),
        first_miss_rate_rps: miss.as_ref().and_then(|(s, _)| s.rate_rps()),
        first_miss_reason: miss.map(|(_, why)| why),
        rate_interpolated_rps: crossing.map(|c| c.0),
        binding: crossing.map(|c| c.1.to_string()),
        gap: micro.and_then(|m| gap(best, m, fit)),
    })
}

/// Where the criterion that binds at `miss` (the furthest over its limit) crosses its limit,
/// linear in the rate between `kept` (within every limit) and `miss`; with its name.
fn crossing(kept: &RateStep, miss: &RateStep, sla: &MacroSla) -> Option<(f64, &'static str)> {
    let (r0, r1) = (kept.rate_rps()?, miss.rate_rps()?);
    let p99 = |d: Option<crate::metrics::Distribution>| d.map(|d| d.p99);
    let criteria = [
        (
            "errors",
            Some(MAX_ERROR_RATE),
            kept.error_rate,
            miss.error_rate,
        ),
        (
            "p99 TTFT",
            sla.ttft_p99_s,
            p99(kept.ttft_s),
            p99(miss.ttft_s),
        ),
        (
            "p99 TPOT",
            sla.tpot_p99_s,
            p99(kept.tpot_s),
            p99(miss.tpot_s),
        ),
    ];
    let (name, limit, v0, v1) = criteria
        .into_iter()
        .filter_map(|(n, limit, v0, v1)| Some((n, limit?, v0?, v1?)))
        .filter(|(_, limit, _, v1)| *limit > 0.0 && v1 > limit)
        .max_by(|a, b| (a.3 / a.1).total_cmp(&(b.3 / b.1)))?;
    if !(v1 > v0 && r1 > r0) {
        return None;
    }
    let frac = ((limit - v0) / (v1 - v0)).clamp(0.0, 1.0);
    Some((r0 + frac * (r1 - r0), name))
}

/// The send lateness (p99) above which the client, not the engine, is named as a cause.
const LATENESS_CAUSE_S: f64 = 0.010;

fn gap(s: &RateStep, micro: &Ceiling, fit: Option<&StepTimeFit>) -> Option<MacroGap> {
    let macro_tok_s = s.output_tokens_per_s?;
    if !(micro.throughput_tok_s > 0.0 && micro.bs_per_rank > 0) {
        return None;
    }
    let micro_bs = f64::from(micro.bs_per_rank);
    let dp = f64::from(micro.dp.max(1));
    let running = s.engine_running_mean;
    let tpot = s.tpot_s.map(|d| d.mean);
    let context = decode_context(
        s.input_len_mean
            .unwrap_or(f64::from(micro.input_len))
            .round() as u32,
        s.output_len_mean
            .unwrap_or(f64::from(micro.output_len))
            .round() as u32,
    );
    let t_fwd_at_running = running
        .zip(fit)
        .map(|(r, f)| f.predict(r / dp, context) / micro.mtp.max(1e-9));
    let decode_share = t_fwd_at_running.zip(tpot).map(|(t, p)| t / p);
    let batch_share = running.map(|r| r / (micro_bs * dp));
    let ratio = macro_tok_s / micro.throughput_tok_s;
    let lateness = s.send_lateness_s.map(|d| d.p99);
    let mut explanation = Vec::new();
    if let Some(b) = batch_share {
        explanation.push(format!(
            "the engine ran {:.0} sequences at the macro ceiling against the micro ceiling's {:.0} × {} DP: {:.0} % of its batch (the SLA on latency bound the batch before it filled)",
            running.unwrap_or(0.0),
            micro_bs,
            micro.dp,
            b * 100.0
        ));
    }
    if let (Some(d), Some(t), Some(p)) = (decode_share, t_fwd_at_running, tpot) {
        explanation.push(format!(
            "each token took {:.2} ms (mean TPOT) where a pure decode step at that batch takes {:.2} ms: {:.0} % of the time went to prefill chunks and scheduling",
            p * 1e3,
            t * 1e3,
            (1.0 - d).max(0.0) * 100.0
        ));
    }
    if let (Some(p99), Some(mean)) = (s.tpot_s.map(|d| d.p99), tpot) {
        explanation.push(format!(
            "the macro SLA holds each request's p99 TPOT ({:.2} ms here) where the micro ceiling holds the mean step ({:.2} ms): the tail is {:.0} % above the mean at this rate",
            p99 * 1e3,
            micro.t_fwd_s * 1e3 / micro.mtp.max(1e-9),
            (p99 / mean - 1.0) * 100.0
        ));
    }
    if let Some(l) = lateness.filter(|l| *l > LATENESS_CAUSE_S) {
        explanation.push(format!(
            "the client sent up to {:.0} ms late (p99) against its schedule: part of the gap is the client",
            l * 1e3
        ));
    }
    Some(MacroGap {
        micro_tok_s: micro.throughput_tok_s,
        micro_bs,
        micro_t_fwd_s: micro.t_fwd_s,
        macro_tok_s,
        ratio,
        running_bs: running,
        batch_share,
        tpot_mean_s: tpot,
        t_fwd_at_running_s: t_fwd_at_running,
        decode_share,
        identity_tok_s: running.zip(tpot).map(|(r, p)| r / p),
        send_lateness_p99_s: lateness,
        explanation,
    })
}
