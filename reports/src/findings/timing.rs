//! Rules on the step's timing: client vs engine step time, the throughput identity, Little's
//! law, the roofline, and whether the client itself set the pace.

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

pub(super) const STEP_TIME_DISAGREEMENT: Rule = Rule {
    code: "step_time_disagreement",
    severities: &[Severity::Warn],
    what: "the client's and the engine's step times disagree; the message names the likely cause",
    check: Check::Step(step_time_disagreement),
};

fn step_time_disagreement(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let (s, t) = (v.summary, v.timing);
    // Under speculative decoding an engine figure read per token carries the sampled
    // acceptance of the gaps' tokens (`acceptance_noise_rel`).
    let noise = t.acceptance_noise_rel.unwrap_or(0.0);
    let d = t
        .client_engine_rel_diff
        .filter(|d| *d > resolvable(tol.step_time_rel, v).max(noise))?;
    // The client's mean, as the engine's figure is a mean (see `client_engine_rel_diff`).
    let (c, en) = (
        t.t_fwd_client_mean_s.or(t.t_fwd_client_s)?,
        t.t_fwd_engine_s?,
    );
    let late = s
        .client_lateness_p99_s
        .is_some_and(|l| l > tol.lateness_p99_s);
    let preempted = t.engine.preemptions.filter(|p| *p > 0.0);
    let cause = if late {
        "the client woke late (see client_lateness): run the probe on a quieter host"
    } else if preempted.is_some() {
        "the engine preempted sequences in this step and recomputed them (see preemptions), so its steps were not all decode steps at the batch: lower the batch size or give the engine more KV memory"
    } else if c > en {
        "the chunks leave the engine slower than it steps: a front-end that cannot keep up with this many streams (detokenization, SSE writes), stream batching (stream interval) or the network"
    } else {
        "the engine's counters run slower than the chunks: check the scrape interval and DP ranks (--dp)"
    };
    Some(v.finding(
        &STEP_TIME_DISAGREEMENT,
        Severity::Warn,
        format!(
            "client mean step time {:.2} ms vs engine {:.2} ms ({:.0} % apart); {cause}",
            c * 1e3,
            en * 1e3,
            d * 100.0
        ),
        json!({"t_fwd_client_s": t.t_fwd_client_s, "t_fwd_client_mean_s": t.t_fwd_client_mean_s, "t_fwd_engine_s": en, "t_fwd_identity_s": t.t_fwd_identity_s, "rel_diff": d, "acceptance_noise_rel": t.acceptance_noise_rel, "client_lateness_p99_s": s.client_lateness_p99_s, "preemptions": preempted}),
    ))
}

/// The tolerance a step's window can resolve: a window of N engine steps places its edges to
/// within a step each, so two figures read over it (or one over it and one over the whole
/// waves) agree only to about 2 / N. A 16-token output with speculative decoding holds ~7
/// steps: its figures cannot tell 5 % apart, and a finding there would be noise. Where the
/// gaps are uneven an edge falls in a long gap more often than a short one: it is placed to
/// within the length-biased mean gap (`chunk_gap_at_edge_s`; SGLang's 0.23 s prefill batches
/// among 3 ms decode steps in a closed loop of 8,192-token prompts: ~0.18 s, ±22 % in a
/// 1.7 s window, where the step alone said ±3 %).
///
/// The client's reads place the edges too: a read late by L moves an edge's chunks by L, so a
/// window resolves no better than `lateness max / window_s` (a 104 ms stall in a 0.74 s SGLang
/// wave window pushed its last chunks out: throughput 11 % under `bs / TPOT`, with the
/// lateness p99 still under its 5 ms limit).
fn resolvable(tol: f64, v: &StepView<'_>) -> f64 {
    let t = v.timing;
    let edge = match (t.t_fwd_s, t.chunk_gap_at_edge_s) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let late = v.summary.client_lateness_max_s.unwrap_or(0.0);
    match edge {
        Some(edge) if t.window_s > 0.0 => tol.max(2.0 * edge / t.window_s).max(late / t.window_s),
        _ => tol,
    }
}

pub(super) const IDENTITY_BROKEN: Rule = Rule {
    code: "identity_broken",
    severities: &[Severity::Warn],
    what: "throughput in the window differs from bs × DP × MTP / t_fwd",
    check: Check::Step(identity_broken),
};

fn identity_broken(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let t = v.timing;
    let err = t
        .identity_rel_err
        .filter(|e| *e > resolvable(tol.identity_rel, v))?;
    Some(v.finding(
        &IDENTITY_BROKEN,
        Severity::Warn,
        format!(
            "throughput in the window ({:.0} tok/s) differs from bs × DP × MTP / t_fwd ({:.0} tok/s) by {:.0} %; check --dp, the MTP source ({:?}) and whether all bs sequences decoded",
            t.throughput_window_tok_s.unwrap_or(f64::NAN),
            t.throughput_identity_tok_s.unwrap_or(f64::NAN),
            err * 100.0,
            t.mtp_source
        ),
        json!({"throughput_window_tok_s": t.throughput_window_tok_s, "throughput_identity_tok_s": t.throughput_identity_tok_s, "mtp": t.mtp, "rel_err": err}),
    ))
}

pub(super) const LITTLES_LAW_BROKEN: Rule = Rule {
    code: "littles_law_broken",
    severities: &[Severity::Warn],
    what: "the engine held fewer requests than the client had sent it a step before",
    check: Check::Step(littles_law_broken),
};

fn littles_law_broken(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let l = v
        .timing
        .littles_law
        .filter(|l| l.rel_err > tol.littles_law_rel)?;
    let message = format!(
        "the engine held {:.1} requests on average at its {} scrapes, but the client had {:.1} in flight there, {:.1} of them sent before an engine step that had since ended (QPS × E2E says {:.1}); requests wait outside the engine (a proxy, a router, the client)",
        l.engine_in_flight_mean,
        l.samples,
        l.client_in_flight_mean,
        l.client_seen_mean,
        l.qps * l.e2e_mean_s
    );
    Some(v.finding(&LITTLES_LAW_BROKEN, Severity::Warn, message, json!(l)))
}

pub(super) const ABOVE_ROOFLINE: Rule = Rule {
    code: "above_roofline",
    severities: &[Severity::Error],
    what: "the step is faster than the hardware's minimum step time",
    check: Check::Step(above_roofline),
};

fn above_roofline(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let (tmin, tf) = (v.timing.roofline_t_min_s?, v.timing.t_fwd_s?);
    (tf < tmin * (1.0 - tol.roofline_margin)).then(|| {
        v.finding(
            &ABOVE_ROOFLINE,
            Severity::Error,
            format!(
                "the step takes {:.2} ms, faster than the hardware's minimum {:.2} ms: the model config, GPU, TP or quantization given is wrong, or tokens are not really generated",
                tf * 1e3,
                tmin * 1e3
            ),
            json!({"t_fwd_s": tf, "t_min_s": tmin}),
        )
    })
}

pub(super) const CLIENT_LATENESS: Rule = Rule {
    code: "client_lateness",
    severities: &[Severity::Warn],
    what: "the probe's own runtime woke late, so the client may have set the pace",
    check: Check::Step(client_lateness),
};

fn client_lateness(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let s = v.summary;
    let p99 = s
        .client_lateness_p99_s
        .filter(|l| *l > tol.lateness_p99_s)?;
    Some(v.finding(
        &CLIENT_LATENESS,
        Severity::Warn,
        format!(
            "the probe's runtime woke {:.1} ms late at p99 (max {:.1} ms): the client may set the pace; run the probe on a less loaded host or with fewer streams",
            p99 * 1e3,
            s.client_lateness_max_s.unwrap_or(p99) * 1e3
        ),
        json!({"p50_s": s.client_lateness_p50_s, "p99_s": p99, "max_s": s.client_lateness_max_s}),
    ))
}
