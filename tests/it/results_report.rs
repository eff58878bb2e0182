//! `ceiling report --result ID,…`: a multi-rate vLLM file imported and reported — its table,
//! the checks that did not pass, throughput vs p99 latency and request rate vs error rate — and
//! the same beside a simulator run, whose measured ceiling crosses the throughput chart.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::path::Path;

use crate::import::{fixture, path_str, run, stdout_json};

const SWEEP: &str =
    "peer-formats/vllm/nerdalert_vllm-bench-automation_results_4xL40S_llama3.2-3b.jsonl";

/// Imports the 9-point file into `db`; its result ids, comma-separated.
fn import_sweep(db: &Path) -> String {
    let file = fixture(SWEEP);
    let imported = stdout_json(&run(db, &["import", path_str(&file), "--json"]));
    let ids: Vec<String> = imported[0]["result_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 9, "{imported}");
    ids.join(",")
}

#[test]
fn imported_rates_are_reported_with_their_table_checks_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let list = import_sweep(&db);
    let out_dir = dir.path().join("rep");
    let out = run(
        &db,
        &[
            "report",
            "--result",
            &list,
            "--out",
            path_str(&out_dir),
            "--format",
            "html,md,json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<figure>").count(), 2, "two charts");
    assert!(
        html.contains("Request rate vs error rate")
            || out_dir.join("charts/results_error_rate.svg").is_file()
    );
    assert!(
        out_dir
            .join("charts/results_throughput_vs_p99.svg")
            .is_file()
    );
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Results"), "{md}");
    // One row per point; the file's unlimited rate shows as no rate.
    assert_eq!(md.matches("| vllm |").count(), 9, "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 9);
    assert!(
        results
            .iter()
            .all(|r| !r["checks"].as_array().unwrap().is_empty())
    );
    assert_eq!(json["against_run"], serde_json::Value::Null);
    // A result id that is not in the store: exit 2.
    let out = run(
        &db,
        &[
            "report",
            "--result",
            "999",
            "--out",
            path_str(&dir.path().join("x")),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_rates_beside_a_run_get_its_ceiling_and_its_fit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let list = import_sweep(&db);
    let _serial = crate::sim::serial().await;
    crate::compare::probe_two_steps(&db).await;
    let beside = dir.path().join("beside");
    let out = crate::compare::cli(
        &db,
        &[
            "report",
            "latest",
            "--result",
            &list,
            "--out",
            path_str(&beside),
            "--format",
            "html,json",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(beside.join("report.html")).unwrap();
    assert!(html.contains("Against run"), "the verdict names the run");
    let svg = std::fs::read_to_string(beside.join("charts/results_throughput_vs_p99.svg")).unwrap();
    assert!(svg.contains("ceiling"), "the run's ceiling is drawn");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(beside.join("results.json")).unwrap())
            .unwrap();
    assert!(json["run_ceiling_tok_s"].as_f64().unwrap() > 0.0);
    let codes: Vec<&str> = json["results"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"against_run_tpot"), "{codes:?}");
}
