//! The open loop's table and the macro ceiling's lines, built once: one row per rate step
//! (asked and achieved rate, throughput, p50/p99 TTFT and TPOT, p99 ITL and E2E, errors, the
//! engine's running and waiting gauges, the client's send lateness), and the macro ceiling
//! beside the micro one. The terminal, HTML and Markdown render the same rows.

use crate::analysis::Analysis;
use crate::rate::RateStep;
use crate::terminal::num;

/// The headers, units included, in the order [`rendered`] fills them.
pub const HEADERS: [&str; 15] = [
    "step",
    "asked req/s",
    "sent req/s",
    "done req/s",
    "out tok/s",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "TPOT p50 ms",
    "TPOT p99 ms",
    "ITL p99 ms",
    "E2E p99 s",
    "errors %",
    "running",
    "waiting",
    "late p99 ms",
];

fn ms(v: Option<f64>, empty: &str) -> String {
    v.map_or(empty.into(), |s| format!("{:.1}", s * 1e3))
}

fn row(r: &RateStep, empty: &str) -> Vec<String> {
    let or = |s: String| if s == "-" { empty.to_string() } else { s };
    vec![
        r.step_idx.to_string(),
        r.rate_asked_rps.map_or("inf".into(), |v| format!("{v:.2}")),
        or(num(r.rate_achieved_rps, 2)),
        or(num(r.completed_rps, 2)),
        or(num(r.output_tokens_per_s, 0)),
        ms(r.ttft_s.map(|d| d.p50), empty),
        ms(r.ttft_s.map(|d| d.p99), empty),
        ms(r.tpot_s.map(|d| d.p50), empty),
        ms(r.tpot_s.map(|d| d.p99), empty),
        ms(r.itl_s.map(|d| d.p99), empty),
        or(num(r.e2e_s.map(|d| d.p99), 2)),
        or(num(r.error_rate.map(|e| e * 100.0), 1)),
        or(num(r.engine_running_mean, 1)),
        or(num(r.engine_waiting_mean, 1)),
        ms(r.send_lateness_s.map(|d| d.p99), empty),
    ]
}

/// The table's headers and rows; `None` for a run without rate steps.
pub fn rendered(a: &Analysis, empty: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    if a.rates.is_empty() {
        return None;
    }
    Some((
        HEADERS.iter().map(|h| h.to_string()).collect(),
        a.rates.iter().map(|r| row(r, empty)).collect(),
    ))
}

/// The macro ceiling in words, beside the micro one and the gap's causes; nothing for a run
/// without rate steps.
pub fn macro_lines(a: &Analysis) -> Vec<String> {
    if a.rates.is_empty() {
        return Vec::new();
    }
    let Some(m) = &a.macro_ceiling else {
        return vec!["macro ceiling: no rate met the SLA (p99 TTFT/TPOT, errors under 5 %)".into()];
    };
    let sla = match (m.sla.ttft_p99_s, m.sla.tpot_p99_s) {
        (Some(t), Some(p)) => format!("p99 TTFT ≤ {:.0} ms, p99 TPOT ≤ {:.1} ms", t * 1e3, p * 1e3),
        (Some(t), None) => format!("p99 TTFT ≤ {:.0} ms", t * 1e3),
        (None, Some(p)) => format!("p99 TPOT ≤ {:.1} ms", p * 1e3),
        (None, None) => "no latency SLA".into(),
    };
    let mut out = vec![format!(
        "macro ceiling: {} req/s sent, {} req/s done, {} tok/s at step {} ({sla}, errors < 5 %){}",
        num(m.rate_achieved_rps, 2),
        num(m.completed_rps, 2),
        num(m.output_tokens_per_s, 0),
        m.step_idx,
        match (m.first_miss_rate_rps, &m.first_miss_reason) {
            (Some(r), Some(why)) => format!("; at {r:.2} req/s: {why}"),
            _ => "; every rate measured met it: the ceiling is above".into(),
        }
    )];
    if let (Some(r), Some(b)) = (m.rate_interpolated_rps, &m.binding) {
        out.push(format!(
            "  between the two: {r:.2} req/s, where {b} reaches its limit (linear in the rate between the step that met it and the one that missed)"
        ));
    }
    if let Some(g) = &m.gap {
        out.push(format!(
            "micro ceiling: {:.0} tok/s at bs {:.0} (t_fwd {:.2} ms); the macro ceiling is {:.0} % of it: QPS × output_len = {:.0} tok/s, running × OTPS = {} tok/s",
            g.micro_tok_s,
            g.micro_bs,
            g.micro_t_fwd_s * 1e3,
            g.ratio * 100.0,
            g.macro_tok_s,
            num(g.identity_tok_s, 0),
        ));
        out.extend(g.explanation.iter().map(|e| format!("  - {e}")));
    }
    out
}
