//! The probe's per-step summary as the terminal shows it: one block per step with requests ok
//! and failed by kind, the latency distributions (TTFT to first token and to first answer token,
//! TPOT, ITL, E2E: mean, p50, p90, p99, max), throughput, and the tokens asked for next to the
//! tokens the engine reported. Plain text from [`StepSummary`]s; never prints.

use comfy_table::{CellAlignment, Table, presets::NOTHING};

use crate::metrics::Distribution;
use crate::summary::StepSummary;
use crate::terminal::num;

/// The per-step summary blocks, in step order.
pub fn render_latency(steps: &[StepSummary]) -> String {
    let mut out = String::new();
    for s in steps {
        out.push_str(&header(s));
        out.push_str(&distributions(s));
        out.push_str(&tokens(s));
    }
    out
}

fn header(s: &StepSummary) -> String {
    let failures = if s.failures_by_outcome.is_empty() {
        String::new()
    } else {
        let kinds: Vec<String> = s
            .failures_by_outcome
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(" ({})", kinds.join(", "))
    };
    // An open-loop step has no batch: its cap, if any.
    let batch = match (s.pattern, s.batch_size) {
        (crate::recording::Pattern::Rate, 0) => "no cap".to_string(),
        (crate::recording::Pattern::Rate, n) => format!("cap {n}"),
        (_, n) => format!("bs {n}"),
    };
    format!(
        "step {} · {batch} · {} in / {} out · {}: {} ok, {} failed{failures}; {} warm-up\n",
        s.step_idx,
        s.input_len,
        s.output_len,
        s.pattern.as_str(),
        s.requests_ok,
        s.requests_failed,
        s.requests_warmup,
    )
}

fn distributions(s: &StepSummary) -> String {
    let rows: [(&str, Option<Distribution>); 5] = [
        ("TTFT", s.ttft_s),
        ("TTFT answer", s.ttft_answer_s),
        ("TPOT", s.tpot_s),
        ("ITL", s.itl_s),
        ("E2E", s.e2e_s),
    ];
    if rows.iter().all(|(_, d)| d.is_none()) {
        return "  no successful measured request: no latencies\n".into();
    }
    let mut table = Table::new();
    table.load_preset(NOTHING).force_no_tty();
    table.set_header(["  ms", "n", "mean", "p50", "p90", "p99", "max"]);
    for (name, d) in rows {
        let mut row = vec![format!("  {name}")];
        match d {
            Some(d) => {
                row.push(d.n.to_string());
                for v in [d.mean, d.p50, d.p90, d.p99, d.max] {
                    row.push(format!("{:.2}", v * 1e3));
                }
            }
            None => row.extend(std::iter::repeat_n("-".to_string(), 6)),
        }
        table.add_row(row);
    }
    for i in 1..7 {
        if let Some(c) = table.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let text = table.to_string();
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn tokens(s: &StepSummary) -> String {
    let reported = |v: Option<u64>| v.map_or("not reported".into(), |n| format!("{n} reported"));
    let mut line = format!(
        "  {} output tok/s, {} req/s; input tokens {} asked / {}, output {} asked / {}",
        num(s.output_tokens_per_s, 1),
        num(s.requests_per_s, 2),
        s.input_tokens_requested,
        reported(s.input_tokens_reported),
        s.output_tokens_requested,
        reported(s.output_tokens_reported),
    );
    if s.requests_length_mismatch > 0 {
        line.push_str(&format!(
            "; {} request(s) not of the asked length",
            s.requests_length_mismatch
        ));
    }
    if let Some(p99) = s.client_lateness_p99_s {
        line.push_str(&format!("; client lateness p99 {:.2} ms", p99 * 1e3));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Pattern;
    use std::collections::BTreeMap;

    fn step() -> StepSummary {
        let d = |ms: f64| Distribution::of([ms, ms * 1.5, ms * 2.0].map(|v| v / 1e3));
        StepSummary {
            step_idx: 2,
            batch_size: 8,
            input_len: 64,
            output_len: 128,
            pattern: Pattern::Wave,
            requests: 16,
            requests_ok: 15,
            requests_failed: 1,
            requests_warmup: 8,
            failures_by_outcome: BTreeMap::from([("timeout".to_string(), 1)]),
            failure_most_common: None,
            ttft_s: d(20.0),
            ttft_answer_s: None,
            tpot_s: d(7.0),
            itl_s: d(7.0),
            e2e_s: d(900.0),
            span_s: Some(2.0),
            output_tokens_per_s: Some(960.0),
            requests_per_s: Some(7.5),
            requests_per_min: Some(450.0),
            input_tokens_requested: 1024,
            input_tokens_reported: Some(960),
            output_tokens_requested: 2048,
            output_tokens_reported: None,
            requests_length_mismatch: 0,
            client_lateness_p50_s: Some(0.0001),
            client_lateness_p99_s: Some(0.0004),
            client_lateness_max_s: Some(0.001),
            requests_reasoning_exhausted: 0,
            requests_empty_answer: 0,
        }
    }

    #[test]
    fn a_step_block_says_failures_by_kind_percentiles_and_tokens() {
        let text = render_latency(&[step()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "step 2 · bs 8 · 64 in / 128 out · wave: 15 ok, 1 failed (timeout 1); 8 warm-up"
        );
        let ttft = lines
            .iter()
            .find(|l| l.trim_start().starts_with("TTFT "))
            .unwrap();
        let cols: Vec<&str> = ttft.split_whitespace().collect();
        // n, mean, p50, p90, p99 (linear between 20, 30 and 40 ms), max.
        assert_eq!(
            cols[1..],
            ["3", "30.00", "30.00", "38.00", "39.80", "40.00"]
        );
        let answer = lines
            .iter()
            .find(|l| l.trim_start().starts_with("TTFT answer"))
            .unwrap();
        assert!(
            answer.split_whitespace().skip(2).all(|c| c == "-"),
            "{answer}"
        );
        assert!(
            text.contains(
                "960.0 output tok/s, 7.50 req/s; input tokens 1024 asked / 960 reported, output \
                 2048 asked / not reported; client lateness p99 0.40 ms"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_step_with_no_successful_request_says_so() {
        let mut s = step();
        s.ttft_s = None;
        s.tpot_s = None;
        s.itl_s = None;
        s.e2e_s = None;
        assert!(render_latency(&[s]).contains("no successful measured request"));
    }
}
