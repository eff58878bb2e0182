//! `request_failures`, `length_mismatch`, `no_measurement_window`, `reasoning_exhausted`,
//! `empty_answer`: each fires and stays silent.

use std::collections::BTreeMap;

use super::super::fixture::{BS, OUTPUT_LEN, Step, num};
use super::super::requests::{
    EMPTY_ANSWER, LENGTH_MISMATCH, NO_MEASUREMENT_WINDOW, REASONING_EXHAUSTED, REQUEST_FAILURES,
};
use crate::finding::Severity;

fn failing(requests: u32, failed: u32) -> Step {
    let mut step = Step::clean();
    step.summary.requests = requests;
    step.summary.requests_ok = requests - failed;
    step.summary.requests_failed = failed;
    step.summary.failures_by_outcome = BTreeMap::from([("timeout".into(), failed)]);
    step
}

#[test]
fn request_failures_is_a_warn_up_to_the_error_share() {
    let f = failing(40, 2).one(&REQUEST_FAILURES);
    assert_eq!(
        f.severity,
        Severity::Warn,
        "2 of 40 is the 5 % limit itself"
    );
    assert_eq!((num(&f, "failed"), num(&f, "requests")), (2.0, 40.0));
    assert_eq!(f.evidence["by_outcome"]["timeout"], 2);
    assert!(
        f.message
            .starts_with("2 of 40 requests failed (timeout: 2);"),
        "{}",
        f.message
    );
}

#[test]
fn request_failures_is_an_error_above_the_error_share() {
    let f = failing(16, 1).one(&REQUEST_FAILURES);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!((num(&f, "failed"), num(&f, "requests")), (1.0, 16.0));
}

#[test]
fn request_failures_quotes_the_commonest_error_and_names_llamacpps_context() {
    let mut step = failing(64, 64);
    step.summary.failures_by_outcome = BTreeMap::from([("engine_error".into(), 64)]);
    step.summary.failure_most_common = Some(
        r#"{"code":500,"message":"Context size has been exceeded.","type":"server_error"}"#.into(),
    );
    let f = step.one(&REQUEST_FAILURES);
    assert_eq!(
        f.message,
        "64 of 64 requests failed (engine_error: 64), most with \"Context size has been \
         exceeded.\"; llama.cpp's KV cache (its context, -c, shared by the slots) cannot hold the \
         batch: raise -c or lower the batch size"
    );
    assert_eq!(
        f.evidence["most_common_error"],
        "Context size has been exceeded."
    );
    // Another engine's error body: its message quoted, the general advice; a long text cut.
    step.summary.failure_most_common = Some(format!(
        r#"{{"object":"error","message":"{}","type":"BadRequestError"}}"#,
        "x".repeat(300)
    ));
    let f = step.one(&REQUEST_FAILURES);
    assert!(
        f.message.contains(&format!("\"{}…\"", "x".repeat(160))),
        "{}",
        f.message
    );
    assert!(
        f.message
            .ends_with("check the engine log, raise --request-timeout, or lower the batch size")
    );
    // A client's own error text is quoted as it is.
    step.summary.failure_most_common = Some("no answer within 30s".into());
    let f = step.one(&REQUEST_FAILURES);
    assert!(
        f.message.contains(", most with \"no answer within 30s\";"),
        "{}",
        f.message
    );
}

#[test]
fn request_failures_stays_silent_when_every_request_succeeded() {
    Step::clean().silent(&REQUEST_FAILURES);
}

#[test]
fn length_mismatch_is_an_error_with_the_tokens_asked_and_reported() {
    let mut step = Step::clean();
    step.summary.requests_length_mismatch = 3;
    step.summary.output_tokens_reported = Some(step.summary.output_tokens_requested - 50);
    let f = step.one(&LENGTH_MISMATCH);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(num(&f, "requests"), 3.0);
    assert_eq!(
        num(&f, "output_tokens_requested") - num(&f, "output_tokens_reported"),
        50.0
    );
    assert_eq!(num(&f, "output_len"), f64::from(OUTPUT_LEN));
}

#[test]
fn length_mismatch_stays_silent_when_no_request_came_back_short() {
    // The totals alone may differ (a failed request reports nothing); the rule counts requests.
    let mut step = Step::clean();
    step.summary.output_tokens_reported = Some(step.summary.output_tokens_requested - 50);
    step.silent(&LENGTH_MISMATCH);
}

#[test]
fn no_measurement_window_warns_when_requests_succeeded_without_a_window() {
    let mut step = Step::clean();
    step.timing.windows.clear();
    let f = step.one(&NO_MEASUREMENT_WINDOW);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(num(&f, "batch_size"), f64::from(BS));
    assert_eq!(num(&f, "output_len"), f64::from(OUTPUT_LEN));
}

#[test]
fn no_measurement_window_stays_silent_when_no_request_succeeded() {
    let mut step = failing(16, 16);
    step.timing.windows.clear();
    step.silent(&NO_MEASUREMENT_WINDOW);
    Step::clean().silent(&NO_MEASUREMENT_WINDOW);
}

#[test]
fn reasoning_that_used_the_whole_budget_warns_with_its_count() {
    let mut step = Step::clean();
    step.summary.requests_reasoning_exhausted = 3;
    let f = step.one(&REASONING_EXHAUSTED);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (
            num(&f, "requests"),
            num(&f, "requests_ok"),
            num(&f, "output_len")
        ),
        (3.0, 16.0, f64::from(OUTPUT_LEN))
    );
    assert!(
        f.message
            .starts_with("3 of 16 requests spent all 256 output tokens on reasoning"),
        "{}",
        f.message
    );
}

#[test]
fn reasoning_exhausted_stays_silent_when_every_request_answered() {
    let mut step = Step::clean();
    step.summary.requests_empty_answer = 2;
    step.silent(&REASONING_EXHAUSTED);
}

#[test]
fn an_empty_answer_warns_with_its_count() {
    let mut step = Step::clean();
    step.summary.requests_empty_answer = 2;
    let f = step.one(&EMPTY_ANSWER);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!((num(&f, "requests"), num(&f, "requests_ok")), (2.0, 16.0));
}

#[test]
fn empty_answer_stays_silent_when_the_budget_went_to_reasoning() {
    let mut step = Step::clean();
    step.summary.requests_reasoning_exhausted = 2;
    step.silent(&EMPTY_ANSWER);
}
