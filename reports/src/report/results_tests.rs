//! The results report: its charts (one series per file, the run's ceiling across), its table
//! and its findings (the checks that did not pass, failures first).

use super::*;
use crate::peer::{LoadMode, Tool};

fn check(code: &'static str, verdict: Verdict) -> Check {
    Check {
        code,
        group: "workload",
        verdict,
        message: format!("{code} said so"),
        numbers: serde_json::Value::Null,
    }
}

/// A point of a rate sweep: `rate` asked, `ok` and `failed` requests, tok/s and p99s.
fn point(
    id: i64,
    file: &str,
    rate: f64,
    failed: u64,
    tok_s: f64,
    checks: Vec<Check>,
) -> ImportedPoint {
    let mut p = PeerPoint::new(Tool::Vllm);
    p.mode = LoadMode::Rate;
    p.request_rate = Some(rate);
    p.req_per_s = Some(rate * 0.98);
    p.completed = Some(100 - failed);
    p.failed = Some(failed);
    p.output_tok_per_s = Some(tok_s);
    p.ttft.p99_s = Some(0.05 * rate);
    p.tpot.p99_s = Some(0.010 + 0.001 * rate);
    ImportedPoint {
        id,
        file: format!("/data/{file}"),
        point: p,
        checks,
    }
}

fn sweep() -> Vec<ImportedPoint> {
    vec![
        point(
            1,
            "sweep.jsonl",
            2.0,
            0,
            1000.0,
            vec![check("littles_law", Verdict::Pass)],
        ),
        point(
            2,
            "sweep.jsonl",
            8.0,
            5,
            3000.0,
            vec![check("error_rate", Verdict::Warn)],
        ),
        point(
            3,
            "sweep.jsonl",
            4.0,
            0,
            2000.0,
            vec![check("output_length", Verdict::Fail)],
        ),
        point(
            4,
            "other.json",
            4.0,
            50,
            1500.0,
            vec![check("littles_law", Verdict::CannotTell)],
        ),
    ]
}

#[test]
fn one_series_per_file_sorted_by_x_with_the_runs_ceiling_across() {
    let ceiling = RunCeiling {
        run_id: 9,
        throughput_tok_s: 2500.0,
        batch_size: 64,
    };
    let charts = results_charts(&sweep(), Some(ceiling));
    assert_eq!(
        charts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["results_throughput_vs_p99", "results_error_rate"]
    );
    let lat = &charts[0].spec;
    let names: Vec<&str> = lat.series.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "vllm sweep.jsonl: p99 TTFT",
            "vllm sweep.jsonl: p99 TPOT",
            "vllm other.json: p99 TTFT",
            "vllm other.json: p99 TPOT"
        ]
    );
    // TTFT p99 in ms against tok/s, sorted by latency: rates 2, 4, 8.
    assert_eq!(
        lat.series[0].points,
        [(100.0, 1000.0), (200.0, 2000.0), (400.0, 3000.0)]
    );
    assert_eq!(lat.hlines[0].y, 2500.0);
    assert!(
        charts[0]
            .caption
            .contains("run 9's measured ceiling (2500 tok/s at bs 64)")
    );
    let err = &charts[1].spec;
    assert_eq!(err.series[0].points, [(2.0, 0.0), (4.0, 0.0), (8.0, 5.0)]);
    assert_eq!(err.series[1].points, [(4.0, 50.0)]);
    // Without a run, no line; without latencies or counts, no chart.
    assert!(results_charts(&sweep(), None)[0].spec.hlines.is_empty());
    let mut bare = sweep();
    for p in &mut bare {
        p.point.ttft.p99_s = None;
        p.point.tpot.p99_s = None;
        p.point.completed = None;
    }
    assert!(results_charts(&bare, None).is_empty());
}

#[test]
fn the_doc_lists_each_result_and_the_checks_that_did_not_pass_failures_first() {
    let ceiling = RunCeiling {
        run_id: 9,
        throughput_tok_s: 2500.0,
        batch_size: 64,
    };
    let doc = results_doc(&sweep(), Some(ceiling), &[]);
    assert_eq!(doc.step_table.rows.len(), 4);
    assert_eq!(doc.step_table.rows[1][0], "2");
    assert_eq!(doc.step_table.rows[1][3], "rate");
    assert_eq!(doc.step_table.rows[1][10], "5.0");
    let codes: Vec<&str> = doc.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["output_length", "error_rate"]);
    assert!(doc.findings[0].message.starts_with("result 3: "));
    let v: BTreeMap<_, _> = doc.verdict.iter().cloned().collect();
    assert_eq!(
        v["Checks"],
        "1 pass, 1 warn, 1 fail, 1 cannot tell (ceiling check result ID says why)"
    );
    assert!(
        v["Against run"].ends_with("1 result(s) above it"),
        "{}",
        v["Against run"]
    );
    assert_eq!(doc.environment[0].0, "Result 1");
}
