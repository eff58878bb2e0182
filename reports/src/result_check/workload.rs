//! The checks of the workload a result was measured under: output and input lengths against
//! what was asked, the error rate, and enough requests per stream.

use serde_json::json;

use super::{Check, Verdict, check, missing, pct, rel};
use crate::peer::PeerPoint;

/// Mean output length against what was asked; per request where the file has them.
pub fn output_length(p: &PeerPoint) -> Check {
    const C: &str = "output_length";
    let Some(out) = p.output_len_mean else {
        return missing(C, "workload", &[("mean output length", false)]);
    };
    let Some(asked) = p.output_len_requested else {
        let (v, m) = if p.ignore_eos == Some(false) {
            (
                Verdict::Warn,
                format!(
                    "mean output {out:.1} tokens without ignore_eos: outputs stop at EOS, so req/s and TPOT depend on the text; send ignore_eos with a fixed max_tokens"
                ),
            )
        } else {
            (
                Verdict::CannotTell,
                format!(
                    "mean output {out:.1} tokens, but the result does not say how many were asked (max_tokens)"
                ),
            )
        };
        return check(C, "workload", v, m, json!({"output_len_mean": out}));
    };
    let short = p
        .requests
        .iter()
        .filter(|r| r.ok && r.output_tokens.is_some_and(|n| n < asked * 0.95))
        .count();
    let ratio = out / asked;
    let numbers =
        json!({"output_len_mean": out, "output_len_requested": asked, "short_requests": short});
    let (v, m) = if ratio < 0.95 {
        (
            Verdict::Fail,
            format!(
                "outputs average {out:.1} tokens of {asked} asked ({short} short requests): no ignore_eos, so short outputs inflate req/s and deflate TPOT; rerun with ignore_eos (and min_tokens)"
            ),
        )
    } else if ratio > 1.05 {
        (
            Verdict::Warn,
            format!(
                "outputs average {out:.1} tokens, more than the {asked} asked: the count is another tokenizer's, or the lengths asked varied; compare with the server's usage"
            ),
        )
    } else {
        (
            Verdict::Pass,
            format!("outputs average {out:.1} tokens of {asked} asked"),
        )
    };
    check(C, "workload", v, m, numbers)
}

/// Mean input length against what was asked.
pub fn input_length(p: &PeerPoint) -> Check {
    const C: &str = "input_length";
    let (Some(inp), Some(asked)) = (p.input_len_mean, p.input_len_requested) else {
        return missing(
            C,
            "workload",
            &[
                ("mean input length", p.input_len_mean.is_some()),
                ("input length asked", p.input_len_requested.is_some()),
            ],
        );
    };
    let d = rel(inp, asked);
    let numbers = json!({"input_len_mean": inp, "input_len_requested": asked});
    let (v, m) = if d <= 0.10 {
        (
            Verdict::Pass,
            format!("inputs average {inp:.1} tokens of {asked} asked"),
        )
    } else {
        (
            Verdict::Warn,
            format!(
                "inputs average {inp:.1} tokens against {asked} asked ({} apart): a chat template, a length range (SGLang's range ratio 0 is uniform [1, N]) or another tokenizer; TTFT and KV use differ from what the label says",
                pct(d)
            ),
        )
    };
    check(C, "workload", v, m, numbers)
}

/// Failed over all requests.
pub fn error_rate(p: &PeerPoint) -> Check {
    const C: &str = "error_rate";
    let (Some(done), Some(failed)) = (p.completed, p.failed) else {
        return missing(
            C,
            "workload",
            &[
                ("completed", p.completed.is_some()),
                ("failed", p.failed.is_some()),
            ],
        );
    };
    let all = done + failed;
    let rate = if all == 0 {
        1.0
    } else {
        failed as f64 / all as f64
    };
    let numbers = json!({"completed": done, "failed": failed, "error_rate": rate});
    let (v, m) = if done == 0 {
        (
            Verdict::Fail,
            format!(
                "no request succeeded ({failed} failed): every figure of this result is empty, whatever the tool printed; fix the endpoint, model name or key and rerun"
            ),
        )
    } else if failed == 0 {
        (Verdict::Pass, format!("{done} requests, none failed"))
    } else if rate <= 0.01 {
        (
            Verdict::Warn,
            format!(
                "{failed} of {all} requests failed ({}); failed requests leave the window's throughput lower than the engine's; look at the errors",
                pct(rate)
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "{failed} of {all} requests failed ({}): the engine was overloaded or misconfigured, and the latencies describe the survivors only; fix the errors before quoting",
                pct(rate)
            ),
        )
    };
    check(C, "workload", v, m, numbers)
}

/// At least ~10 requests per stream, so ramp-up and tail do not dominate.
pub fn requests_per_stream(p: &PeerPoint) -> Check {
    const C: &str = "requests_per_stream";
    let (Some(done), Some(conc)) = (p.completed, p.concurrency) else {
        return missing(
            C,
            "workload",
            &[
                ("completed", p.completed.is_some()),
                ("concurrency", p.concurrency.is_some()),
            ],
        );
    };
    let per = done as f64 / conc.max(1.0);
    let numbers = json!({"requests_per_stream": per});
    let (v, m) = if per >= 10.0 {
        (Verdict::Pass, format!("{per:.1} requests per stream"))
    } else {
        (
            Verdict::Warn,
            format!(
                "{per:.1} requests per stream (fewer than 10): ramp-up and the tail, when fewer than {conc} run, weigh on every mean; send at least {} requests",
                (conc * 10.0).ceil()
            ),
        )
    };
    check(C, "workload", v, m, numbers)
}
