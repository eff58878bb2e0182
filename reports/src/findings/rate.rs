//! The open-loop step's own check: did the client keep the schedule it was asked to keep.

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

/// A rate step's achieved rate may fall this far below the rate its schedule drew before the
/// client counts as behind.
pub const ACHIEVED_REL: f64 = 0.02;
/// Sends later than this against the schedule, at p99, mean the client set the pace.
pub const SEND_LATENESS_P99_S: f64 = 0.025;

pub(super) const RATE_NOT_KEPT: Rule = Rule {
    code: "rate_not_kept",
    severities: &[Severity::Warn],
    what: "an open-loop step's client sent slower or later than its arrival schedule",
    check: Check::Step(rate_not_kept),
};

fn rate_not_kept(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let r = v.rate?;
    let late = r.send_lateness_s.map(|d| d.p99);
    let (asked, got) = (r.rate_scheduled_rps, r.rate_achieved_rps);
    let slow = asked
        .zip(got)
        .is_some_and(|(a, g)| g < a * (1.0 - ACHIEVED_REL));
    let behind = late.is_some_and(|l| l > SEND_LATENESS_P99_S);
    if !(slow || behind) {
        return None;
    }
    let held = r
        .max_concurrency
        .map(|c| format!("--max-concurrency {c} held requests back, or "))
        .unwrap_or_default();
    Some(v.finding(
        &RATE_NOT_KEPT,
        Severity::Warn,
        format!(
            "the client sent at {} req/s against the schedule's {} (p99 {:.1} ms behind it): {held}the client, not the engine, set the pace; run the probe on a less loaded host, or lower --rates",
            got.map_or("?".into(), |g| format!("{g:.2}")),
            asked.map_or("?".into(), |a| format!("{a:.2}")),
            late.unwrap_or(0.0) * 1e3,
        ),
        json!({"rate_asked_rps": r.rate_asked_rps, "rate_scheduled_rps": asked,
               "rate_achieved_rps": got, "send_lateness_p99_s": late,
               "max_concurrency": r.max_concurrency}),
    ))
}
