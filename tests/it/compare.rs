//! `ceiling compare` beyond imported files: a TP change checked for head divisibility on both
//! sides, and steps of recorded runs (`run:ID[:STEP]`) held against each other and against an
//! imported result.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::Output;

use crate::import::{SGLANG, fixture, path_str, run, stdout_json};
use crate::probe::probe;

/// The checks of `compare --json` by code: (code, verdict) in order.
fn checks(v: &serde_json::Value) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_tp_change_is_checked_for_head_divisibility_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let a = fixture(SGLANG);
    let config = fixture("model-configs/meta-llama__Llama-3.1-8B-Instruct.json");
    let compare = |tp_a: &str, tp_b: &str, more: &[&str]| {
        let mut args = vec![
            "compare",
            path_str(&a),
            path_str(&a),
            "--change",
            "tp",
            "--model-config",
            path_str(&config),
            "--tp-a",
            tp_a,
            "--tp-b",
            tp_b,
        ];
        args.extend(more);
        run(&db, &args)
    };
    // Llama-3.1-8B: 32 attention heads, 8 KV heads. TP 3 divides neither.
    let v = stdout_json(&compare("2", "3", &["--json"]));
    assert_eq!(
        checks(&v),
        [
            ("tp_divides".to_string(), "pass".to_string()),
            ("tp_divides".to_string(), "fail".to_string())
        ],
        "{v}"
    );
    let b = &v["checks"][1]["message"];
    assert!(
        b.as_str()
            .unwrap()
            .contains("32 attention heads are not divisible by tp 3"),
        "{b}"
    );
    assert_eq!(compare("2", "3", &["--gate"]).status.code(), Some(1));
    // 2 → 4 is fine; 8 → 8 is no TP change.
    let v = stdout_json(&compare("2", "4", &["--json"]));
    assert!(
        checks(&v).iter().all(|(_, verdict)| verdict == "pass"),
        "{v}"
    );
    let v = stdout_json(&compare("8", "8", &["--json"]));
    assert_eq!(
        checks(&v).last().unwrap(),
        &("tp_changed".to_string(), "warn".to_string())
    );
    // Without the model's config it cannot tell.
    let out = run(
        &db,
        &[
            "compare",
            path_str(&a),
            path_str(&a),
            "--change",
            "tp",
            "--json",
        ],
    );
    let v = stdout_json(&out);
    assert_eq!(
        checks(&v),
        [("tp_divides".to_string(), "cannot_tell".to_string())]
    );
}

/// A run of two steps on the simulator (bs 1 and 4, 32/32, two waves) into `db`; the caller
/// holds the timing lock.
pub async fn probe_two_steps(db: &Path) {
    let h = crate::sim::start(ceiling::sim::SimFlavor::Vllm, crate::sim::tiny(), 1, 1.0).await;
    let args = [
        "--batch-sizes",
        "1,4",
        "--input-len",
        "32",
        "--output-len",
        "32",
        "--waves",
        "2",
        "--scrape-interval",
        "100ms",
    ];
    let out = probe(db, &h.base_url(), &args).await;
    assert!(out.status.success(), "{out:?}");
    h.shutdown().await;
}

/// `ceiling --db DB ARGS…` off the runtime.
pub async fn cli(db: &Path, args: &[&str]) -> Output {
    let db = db.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&db, &args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_of_recorded_runs_compare_with_each_other_and_refuse_other_lengths() {
    let _serial = crate::sim::serial().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    probe_two_steps(&db).await;
    // bs 1 against bs 4 of the same run, as a decode change: TPOT rises with the batch, and
    // TTFT may not move beyond noise (what a decode-only change promises).
    let v = stdout_json(
        &cli(
            &db,
            &[
                "compare",
                "run:latest:0",
                "run:latest:1",
                "--change",
                "decode",
                "--json",
            ],
        )
        .await,
    );
    let tpot = v["deltas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["metric"] == "tpot")
        .unwrap();
    assert!(tpot["a"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        tpot["change"].as_f64().unwrap() > 0.0,
        "a batch of 4 steps slower than 1: {v}"
    );
    assert_eq!(checks(&v)[0].0, "ttft_unmoved");
    // A run of two steps needs the step named; a step it lacks is refused.
    let out = cli(
        &db,
        &[
            "compare",
            "run:latest",
            "run:latest:1",
            "--change",
            "decode",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("has 2 steps") && err.contains("0 (bs 1, 32/32), 1 (bs 4, 32/32)"),
        "{err}"
    );
    let out = cli(
        &db,
        &[
            "compare",
            "run:latest:7",
            "run:latest:1",
            "--change",
            "decode",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    // A run's step against an imported file of other lengths: not comparable.
    let sglang = fixture(SGLANG);
    let out = cli(
        &db,
        &[
            "compare",
            "run:latest:1",
            path_str(&sglang),
            "--change",
            "decode",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not comparable"));
}
