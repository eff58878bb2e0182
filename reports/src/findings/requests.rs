//! Rules on the requests themselves: failures, lengths other than asked, answers that did not come
//! (reasoning that used the whole budget, an empty answer), and a step too short to
//! hold a measurement window. They read the step's summary (and whether it has windows).

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

pub(super) const REQUEST_FAILURES: Rule = Rule {
    code: "request_failures",
    severities: &[Severity::Warn, Severity::Error],
    what: "measured requests failed (timeout, HTTP error, stream error, cancelled)",
    check: Check::Step(request_failures),
};

fn request_failures(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let s = v.summary;
    if s.requests_failed == 0 {
        return None;
    }
    let frac = f64::from(s.requests_failed) / f64::from(s.requests.max(1));
    let said = s.failure_most_common.as_deref().map(error_message);
    let what_to_do = match &said {
        Some(m) if is_context_exceeded(m) => {
            "llama.cpp's KV cache (its context, -c, shared by the slots) cannot hold the batch: \
             raise -c or lower the batch size"
        }
        _ => "check the engine log, raise --request-timeout, or lower the batch size",
    };
    Some(v.finding(
        &REQUEST_FAILURES,
        if frac > tol.failures_error_frac {
            Severity::Error
        } else {
            Severity::Warn
        },
        format!(
            "{} of {} requests failed ({}){}; {what_to_do}",
            s.requests_failed,
            s.requests,
            s.failures_by_outcome
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            said.as_deref()
                .map_or(String::new(), |m| format!(", most with \"{m}\""))
        ),
        json!({"failed": s.requests_failed, "requests": s.requests, "by_outcome": s.failures_by_outcome,
               "most_common_error": said}),
    ))
}

/// The most an error is quoted in a finding, in characters.
const ERROR_QUOTED_CHARS: usize = 160;

/// An error as a finding quotes it: the `message` of an engine's JSON error body (OpenAI's
/// `{"error": {"message"}}`, vLLM's `{"message"}`, llama.cpp's `{"code", "message"}`), else
/// the text itself; at most [`ERROR_QUOTED_CHARS`] characters.
fn error_message(text: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let message = json.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or(v["message"].as_str())
            .or(v["error"].as_str())
    });
    let m = message.unwrap_or(text).trim();
    match m.char_indices().nth(ERROR_QUOTED_CHARS) {
        Some((i, _)) => format!("{}…", &m[..i]),
        None => m.to_string(),
    }
}

/// llama.cpp's errors for a batch or a prompt its KV cache cannot hold.
fn is_context_exceeded(message: &str) -> bool {
    message.contains("Context size has been exceeded")
        || message.contains("exceeds the available context size")
}

pub(super) const LENGTH_MISMATCH: Rule = Rule {
    code: "length_mismatch",
    severities: &[Severity::Error],
    what: "requests whose reported prompt or completion tokens differ from what was asked",
    check: Check::Step(length_mismatch),
};

fn length_mismatch(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let s = v.summary;
    (s.requests_length_mismatch > 0).then(|| {
        v.finding(
            &LENGTH_MISMATCH,
            Severity::Error,
            format!(
                "{} requests came back with other lengths than {}/{} tokens asked; make the engine honour ignore_eos/min_tokens and max_model_len, or use /v1/completions with token ids",
                s.requests_length_mismatch, s.input_len, s.output_len
            ),
            json!({"requests": s.requests_length_mismatch, "input_len": s.input_len, "output_len": s.output_len,
                   "input_tokens_requested": s.input_tokens_requested, "input_tokens_reported": s.input_tokens_reported,
                   "output_tokens_requested": s.output_tokens_requested, "output_tokens_reported": s.output_tokens_reported}),
        )
    })
}

pub(super) const NO_MEASUREMENT_WINDOW: Rule = Rule {
    code: "no_measurement_window",
    severities: &[Severity::Warn],
    what: "requests succeeded but no interval had the whole batch decoding, so no step time",
    check: Check::Step(no_measurement_window),
};

fn no_measurement_window(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let s = v.summary;
    (s.requests_ok > 0 && v.timing.windows.is_empty()).then(|| {
        v.finding(
            &NO_MEASUREMENT_WINDOW,
            Severity::Warn,
            format!(
                "no interval where all {} sequences decoded together, so no step time; raise --output-len (now {})",
                s.batch_size, s.output_len
            ),
            json!({"batch_size": s.batch_size, "output_len": s.output_len}),
        )
    })
}

pub(super) const REASONING_EXHAUSTED: Rule = Rule {
    code: "reasoning_exhausted",
    severities: &[Severity::Warn],
    what: "requests whose reasoning used the whole max_tokens, so no answer came",
    check: Check::Step(reasoning_exhausted),
};

fn reasoning_exhausted(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let s = v.summary;
    (s.requests_reasoning_exhausted > 0).then(|| {
        v.finding(
            &REASONING_EXHAUSTED,
            Severity::Warn,
            format!(
                "{} of {} requests spent all {} output tokens on reasoning and gave no answer: the throughput counts thinking only and TTFT to answer is missing; raise --output-len or lower the model's reasoning budget",
                s.requests_reasoning_exhausted, s.requests_ok, s.output_len
            ),
            json!({"requests": s.requests_reasoning_exhausted, "requests_ok": s.requests_ok, "output_len": s.output_len}),
        )
    })
}

pub(super) const EMPTY_ANSWER: Rule = Rule {
    code: "empty_answer",
    severities: &[Severity::Warn],
    what: "requests that succeeded with no answer token (not for lack of budget)",
    check: Check::Step(empty_answer),
};

fn empty_answer(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let s = v.summary;
    (s.requests_empty_answer > 0).then(|| {
        v.finding(
            &EMPTY_ANSWER,
            Severity::Warn,
            format!(
                "{} of {} requests succeeded with an empty answer; check the chat template, the stop strings and that the engine honours ignore_eos",
                s.requests_empty_answer, s.requests_ok
            ),
            json!({"requests": s.requests_empty_answer, "requests_ok": s.requests_ok}),
        )
    })
}
