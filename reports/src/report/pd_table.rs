//! The disaggregated deployment's table and verdict line, built once: one row per step with
//! each side's running batch, queue and queue time, the prefill side's compute, the decode
//! side's step time beside the client's TPOT, the TTFT hand-off, and the side that limits. The
//! terminal, HTML and Markdown render the same rows.

use crate::analysis::Analysis;
use crate::pd::PdStep;

/// The headers, units included, in the order [`rendered`] fills them.
pub const HEADERS: [&str; 14] = [
    "step",
    "req/s",
    "P running",
    "P waiting",
    "P queue ms",
    "P prefill ms",
    "D running",
    "D waiting",
    "D queue ms",
    "D step ms",
    "TPOT ms",
    "hand-off ms",
    "TTFT ms",
    "limiting",
];

fn ms(v: Option<f64>, empty: &str) -> String {
    v.map_or(empty.into(), |s| format!("{:.1}", s * 1e3))
}

fn n1(v: Option<f64>, empty: &str) -> String {
    v.map_or(empty.into(), |x| format!("{x:.1}"))
}

fn row(s: &PdStep, empty: &str) -> Vec<String> {
    vec![
        s.step_idx.to_string(),
        s.rate_rps.map_or(empty.into(), |r| format!("{r:.2}")),
        n1(s.prefill.running_mean, empty),
        n1(s.prefill.waiting_with_pd_queues(), empty),
        ms(s.prefill.queue_s_mean, empty),
        ms(s.prefill.prefill_s_mean, empty),
        n1(s.decode.running_mean, empty),
        n1(s.decode.waiting_with_pd_queues(), empty),
        ms(s.decode.queue_s_mean, empty),
        ms(s.decode.itl_s_mean, empty),
        ms(s.client_tpot_s, empty),
        ms(s.ttft.handoff_s, empty),
        ms(s.ttft.client_ttft_s, empty),
        s.limiting.as_str().to_string(),
    ]
}

/// The headers and the rows, `empty` for a missing figure; `None` for a run with no role
/// endpoints.
pub fn rendered(a: &Analysis, empty: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let pd = a.pd.as_ref()?;
    let rows = pd.steps.iter().map(|s| row(s, empty)).collect();
    Some((HEADERS.iter().map(|h| h.to_string()).collect(), rows))
}

/// The verdict's line: which side limits where the load broke, or why none was named.
pub fn verdict_line(a: &Analysis) -> Option<String> {
    let pd = a.pd.as_ref()?;
    let sides = |role| pd.endpoints.iter().filter(|e| e.role == role).count();
    let pair = format!(
        "{} prefill + {} decode endpoint(s)",
        sides(crate::pd::Role::Prefill),
        sides(crate::pd::Role::Decode)
    );
    Some(match &pd.verdict {
        Some(v) => format!("{pair}; {}", v.line),
        None => format!(
            "{pair}; no side limits in any step (neither queued, or a side had no queue figures)"
        ),
    })
}
