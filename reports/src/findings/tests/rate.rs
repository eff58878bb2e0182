//! `rate_not_kept`: fires when the client sent slower or later than its schedule, names the cap
//! when one held requests back, and stays silent on a kept schedule and on fixed-batch steps.

use super::super::fixture::{Step, num};
use super::super::rate::RATE_NOT_KEPT;
use crate::finding::Severity;

#[test]
fn rate_not_kept_fires_when_the_client_sends_slower_than_the_schedule() {
    let mut step = Step::rate_at(2);
    if let Some(r) = &mut step.rate {
        r.rate_achieved_rps = Some(9.5);
    }
    let f = step.one(&RATE_NOT_KEPT);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(num(&f, "rate_achieved_rps"), 9.5);
    assert_eq!(num(&f, "rate_scheduled_rps"), 10.1);
    assert!(
        f.message.starts_with(
            "the client sent at 9.50 req/s against the schedule's 10.10 (p99 2.0 ms behind it): the client"
        ),
        "{}",
        f.message
    );
}

#[test]
fn rate_not_kept_fires_on_late_sends_and_names_the_concurrency_cap() {
    let mut step = Step::rate_at(0);
    if let Some(r) = &mut step.rate {
        r.max_concurrency = Some(16);
        if let Some(l) = &mut r.send_lateness_s {
            l.p99 = 0.4;
        }
    }
    let f = step.one(&RATE_NOT_KEPT);
    assert_eq!(num(&f, "send_lateness_p99_s"), 0.4);
    assert!(
        f.message
            .contains("--max-concurrency 16 held requests back"),
        "{}",
        f.message
    );
}

#[test]
fn rate_not_kept_stays_silent_on_a_kept_schedule_and_on_fixed_batch_steps() {
    Step::rate_at(0).silent(&RATE_NOT_KEPT);
    Step::clean().silent(&RATE_NOT_KEPT);
    // Within 2 % of the schedule's rate and 25 ms of lateness: kept.
    let mut step = Step::rate_at(0);
    if let Some(r) = &mut step.rate {
        r.rate_achieved_rps = Some(9.95);
        if let Some(l) = &mut r.send_lateness_s {
            l.p99 = 0.024;
        }
    }
    step.silent(&RATE_NOT_KEPT);
}
