//! `ceiling check result`: whether an imported benchmark point is plausible. Each check is a
//! small function of the point (and of the hardware roofline, when the model and GPU are
//! known) that gives a [`Verdict`] with its numbers and one line of cause and fix; a figure the
//! check needs and the file lacks gives `cannot_tell`, naming the field. Formulas and sources:
//! `docs/CHECKS.md`.

pub mod render;

use serde::Serialize;
use serde_json::{Value, json};

use crate::peer::PeerPoint;
use crate::roofline::Roofline;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    CannotTell,
    Warn,
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::CannotTell => "cannot tell",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable code, e.g. `littles_law`.
    pub code: &'static str,
    /// `identity`, `workload` or `hardware`.
    pub group: &'static str,
    pub verdict: Verdict,
    /// Cause and fix in one line (or, when it passes, what held; when it cannot tell, which
    /// field was missing).
    pub message: String,
    pub numbers: Value,
}

/// What the checks are run against besides the point.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The model on the GPU at the stated TP, when both were given.
    pub roofline: Option<Roofline>,
    /// Data-parallel replicas (1 when not said).
    pub dp: u32,
    /// Minimum output tokens/s per sequence.
    pub sla_otps: f64,
    /// A `ceiling` run whose fit predicts the result (`--against RUN`).
    pub against: Option<against::AgainstRun>,
}

/// Default SLA: 20 output tokens/s per sequence.
pub const DEFAULT_SLA_OTPS: f64 = 20.0;

fn check(
    code: &'static str,
    group: &'static str,
    verdict: Verdict,
    message: String,
    numbers: Value,
) -> Check {
    Check {
        code,
        group,
        verdict,
        message,
        numbers,
    }
}

/// `cannot tell`, naming the fields (of `(name, present)`) the result lacks.
fn missing(code: &'static str, group: &'static str, fields: &[(&str, bool)]) -> Check {
    let absent: Vec<&str> = fields
        .iter()
        .filter(|(_, has)| !has)
        .map(|(f, _)| *f)
        .collect();
    check(
        code,
        group,
        Verdict::CannotTell,
        format!("the result has no {}", absent.join(", ")),
        Value::Null,
    )
}

/// `|a / b − 1|`.
fn rel(a: f64, b: f64) -> f64 {
    (a / b - 1.0).abs()
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// Every check, in a fixed order.
pub fn check_result(p: &PeerPoint, ctx: &CheckContext) -> Vec<Check> {
    let mut out = vec![
        output_identity(p),
        littles_law(p),
        throughput_identity(p),
        e2e_identity(p),
        tpot_vs_itl(p),
        output_length(p),
        input_length(p),
        error_rate(p),
        requests_per_stream(p),
        warmup(p),
    ];
    out.extend(hardware::checks(p, ctx));
    if let Some(run) = &ctx.against {
        out.extend(against::checks(p, run, ctx.dp));
    }
    out
}

/// output tok/s = completed × mean output tokens / duration.
fn output_identity(p: &PeerPoint) -> Check {
    const C: &str = "output_throughput_identity";
    let (Some(done), Some(out), Some(dur), Some(tps)) = (
        p.completed,
        p.output_len_mean,
        p.duration_s,
        p.output_tok_per_s,
    ) else {
        return missing(
            C,
            "identity",
            &[
                ("completed", p.completed.is_some()),
                ("mean output length", p.output_len_mean.is_some()),
                ("duration", p.duration_s.is_some()),
                ("output tok/s", p.output_tok_per_s.is_some()),
            ],
        );
    };
    let expected = done as f64 * out / dur;
    let d = rel(tps, expected);
    let numbers = json!({"output_tok_per_s": tps, "completed_x_mean_out_over_duration": expected});
    let (v, m) = match d {
        d if d <= 0.03 => (
            Verdict::Pass,
            format!(
                "{tps:.1} tok/s = {done} × {out:.1} / {dur:.2} s within {}",
                pct(d)
            ),
        ),
        d if d <= 0.10 => (
            Verdict::Warn,
            format!(
                "{tps:.1} tok/s against {expected:.1} from completed × mean output / duration ({} apart): the tool divides a different window or token count; recompute from its per-request data",
                pct(d)
            ),
        ),
        _ => (
            Verdict::Fail,
            format!(
                "{tps:.1} tok/s against {expected:.1} from completed × mean output / duration ({} apart): the throughput is not what the requests add up to (a window that excludes ramp-up, another tokenizer's count); quote the recomputed figure",
                pct(d)
            ),
        ),
    };
    check(C, "identity", v, m, numbers)
}

/// Little's law: mean in flight = req/s × mean E2E, against the configured concurrency.
fn littles_law(p: &PeerPoint) -> Check {
    const C: &str = "littles_law";
    let (Some(rps), Some(e2e)) = (p.req_per_s, p.e2e.mean_s) else {
        return missing(
            C,
            "identity",
            &[
                ("req/s", p.req_per_s.is_some()),
                ("mean E2E", p.e2e.mean_s.is_some()),
            ],
        );
    };
    let in_flight = rps * e2e;
    let Some(conc) = p.concurrency else {
        return check(
            C,
            "identity",
            Verdict::CannotTell,
            format!(
                "mean in flight {in_flight:.2} (req/s × mean E2E), but the result states no concurrency to hold it against"
            ),
            json!({"mean_in_flight": in_flight}),
        );
    };
    let ratio = in_flight / conc;
    let numbers = json!({"mean_in_flight": in_flight, "concurrency": conc, "ratio": ratio});
    let (v, m) = if ratio > 1.05 {
        (
            Verdict::Fail,
            format!(
                "{in_flight:.2} requests in flight on average, more than the {conc} allowed: req/s or E2E is wrong (a duration shorter than the run, E2E from another clock); recompute both from per-request times"
            ),
        )
    } else if ratio >= 0.90 {
        (
            Verdict::Pass,
            format!(
                "{in_flight:.2} in flight on average of {conc} configured ({})",
                pct(ratio)
            ),
        )
    } else if ratio >= 0.75 || p.request_rate.is_some() {
        (
            Verdict::Warn,
            format!(
                "only {in_flight:.2} of {conc} streams busy on average ({}): the client or a rate limit set the pace, not the engine; raise the rate, or read the point at its real concurrency",
                pct(ratio)
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "only {in_flight:.2} of {conc} streams busy on average ({}): the client could not keep {conc} requests in flight (client saturated, a proxy limit, long gaps between requests); the result measures a lower concurrency than it says",
                pct(ratio)
            ),
        )
    };
    check(C, "identity", v, m, numbers)
}

/// Closed loop, decode-dominated: output tok/s ≈ C / TPOT × (1 − TTFT / E2E), i.e. `bs × DP ×
/// MTP / t_fwd` with `t_fwd = MTP × TPOT`, discounted for the share of each request's life in
/// prefill.
fn throughput_identity(p: &PeerPoint) -> Check {
    const C: &str = "throughput_identity";
    let (Some(conc), Some(tpot), Some(ttft), Some(e2e), Some(tps)) = (
        p.concurrency,
        p.tpot.mean_s,
        p.ttft.mean_s,
        p.e2e.mean_s,
        p.output_tok_per_s,
    ) else {
        return missing(
            C,
            "identity",
            &[
                ("concurrency", p.concurrency.is_some()),
                ("TPOT", p.tpot.mean_s.is_some()),
                ("TTFT", p.ttft.mean_s.is_some()),
                ("E2E", p.e2e.mean_s.is_some()),
                ("output tok/s", p.output_tok_per_s.is_some()),
            ],
        );
    };
    if p.request_rate.is_some() || tpot <= 0.0 || e2e <= 0.0 {
        return check(
            C,
            "identity",
            Verdict::CannotTell,
            "holds for a closed loop only; this point was offered at a rate".into(),
            Value::Null,
        );
    }
    let expected = conc / tpot * (1.0 - ttft / e2e).max(0.0);
    let ratio = tps / expected;
    let numbers = json!({"output_tok_per_s": tps, "concurrency_over_tpot_decode_share": expected, "ratio": ratio});
    let (v, m) = if ratio > 1.10 {
        (
            Verdict::Fail,
            format!(
                "{tps:.1} tok/s is more than {conc} streams at TPOT {:.2} ms can emit ({expected:.1}): TPOT is overstated (another convention, TTFT folded in) or more streams ran than stated; recompute TPOT as (E2E − TTFT)/(n − 1)",
                tpot * 1e3
            ),
        )
    } else if ratio >= 0.85 {
        (
            Verdict::Pass,
            format!("{tps:.1} tok/s against {expected:.1} from concurrency / TPOT × decode share"),
        )
    } else {
        (
            Verdict::Warn,
            format!(
                "{tps:.1} tok/s is {} of what {conc} streams at TPOT {:.2} ms emit ({expected:.1}): the streams were not all decoding (client pacing, queueing, ramp-up, a long tail); check Little's law",
                pct(ratio),
                tpot * 1e3
            ),
        )
    };
    check(C, "identity", v, m, numbers)
}

/// E2E ≈ TTFT + TPOT × (n − 1), on means.
fn e2e_identity(p: &PeerPoint) -> Check {
    const C: &str = "e2e_identity";
    let (Some(e2e), Some(ttft), Some(tpot), Some(n)) = (
        p.e2e.mean_s,
        p.ttft.mean_s,
        p.tpot.mean_s,
        p.output_len_mean,
    ) else {
        return missing(
            C,
            "identity",
            &[
                ("E2E", p.e2e.mean_s.is_some()),
                ("TTFT", p.ttft.mean_s.is_some()),
                ("TPOT", p.tpot.mean_s.is_some()),
                ("mean output length", p.output_len_mean.is_some()),
            ],
        );
    };
    let expected = ttft + tpot * (n - 1.0).max(0.0);
    let d = rel(e2e, expected);
    let numbers = json!({"e2e_s": e2e, "ttft_plus_tpot_n_minus_1_s": expected});
    let (v, m) = match d {
        d if d <= 0.05 => (
            Verdict::Pass,
            format!(
                "E2E {:.1} ms = TTFT + TPOT × (n − 1) within {}",
                e2e * 1e3,
                pct(d)
            ),
        ),
        d if d <= 0.15 => (
            Verdict::Warn,
            format!(
                "E2E {:.1} ms against {:.1} ms from TTFT + TPOT × (n − 1) ({} apart): lengths vary widely or TPOT uses another convention",
                e2e * 1e3,
                expected * 1e3,
                pct(d)
            ),
        ),
        _ => (
            Verdict::Fail,
            format!(
                "E2E {:.1} ms against {:.1} ms from TTFT + TPOT × (n − 1) ({} apart): TPOT is not (E2E − TTFT)/(n − 1) (TTFT folded in, per-chunk not per-token) or E2E includes queueing; recompute from per-request data",
                e2e * 1e3,
                expected * 1e3,
                pct(d)
            ),
        ),
    };
    check(C, "identity", v, m, numbers)
}

/// TPOT against the mean chunk gap × tokens per chunk.
fn tpot_vs_itl(p: &PeerPoint) -> Check {
    const C: &str = "tpot_vs_itl";
    let (Some(tpot), Some(itl)) = (p.tpot.mean_s, p.itl.mean_s) else {
        return missing(
            C,
            "identity",
            &[
                ("TPOT", p.tpot.mean_s.is_some()),
                ("ITL (chunk gaps)", p.itl.mean_s.is_some()),
            ],
        );
    };
    // Tokens per chunk from the requests: (n − 1) decode tokens over their gaps.
    let (tokens, gaps) = p
        .requests
        .iter()
        .filter(|r| r.ok && !r.itl_s.is_empty())
        .fold((0.0, 0usize), |(t, g), r| {
            (t + r.output_tokens.unwrap_or(0.0) - 1.0, g + r.itl_s.len())
        });
    let per_chunk = (gaps > 0).then(|| tokens / gaps as f64);
    let k = per_chunk.unwrap_or(1.0);
    let ratio = itl / (tpot * k);
    let numbers = json!({"tpot_s": tpot, "itl_s": itl, "tokens_per_chunk": per_chunk, "itl_over_tpot_x_chunk": ratio});
    let (v, m) = if (0.85..=1.15).contains(&ratio) {
        (
            Verdict::Pass,
            format!(
                "ITL {:.2} ms = TPOT {:.2} ms × {k:.2} tokens per chunk within {}",
                itl * 1e3,
                tpot * 1e3,
                pct((ratio - 1.0).abs())
            ),
        )
    } else if per_chunk.is_none() {
        (
            Verdict::Warn,
            format!(
                "ITL {:.2} ms is {ratio:.2} × TPOT {:.2} ms: chunks carry about {ratio:.1} tokens (MTP, speculative decoding, stream_interval); say so, and count throughput in tokens, not chunks",
                itl * 1e3,
                tpot * 1e3
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "ITL {:.2} ms against TPOT {:.2} ms × {k:.2} tokens per chunk ({ratio:.2}×): the gaps and the token counts disagree (tokens counted by another tokenizer, or gaps that include pauses); recount with the server's usage",
                itl * 1e3,
                tpot * 1e3
            ),
        )
    };
    check(C, "identity", v, m, numbers)
}

pub mod against;
pub mod compare;
pub mod hardware;
mod warmup;
mod workload;
use warmup::warmup;
use workload::{error_rate, input_length, output_length, requests_per_stream};

#[cfg(test)]
mod tests;
