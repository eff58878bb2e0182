//! Runs that do not end by themselves: Ctrl-C mid-run, and an engine that goes away mid-run.
//! Either way the run is recorded, every request is closed and the summary prints.

use ceiling::store::Store;
use ceiling_reports::Outcome;
use serde_json::Value;

use super::{codes, db_in, linear, probe_command, requests, sim};
use ceiling::sim::Faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_leaves_an_interrupted_run_and_prints_its_summary() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let child = probe_command(
        &db,
        &h.base_url(),
        &[
            "--gpu-interval",
            "0s",
            "--batch-sizes",
            "4,8",
            "--input-len",
            "16",
            "--output-len",
            "2000",
            "--grace",
            "1s",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(stdout.contains("step 0 · bs 4"), "{stdout}");
    let store = Store::open(&db).unwrap();
    let run = &store.list_runs().unwrap()[0];
    assert_eq!(run.status.as_str(), "interrupted");
    let reqs = store.load_requests(run.id).unwrap();
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter().all(|r| r.done_t_s.is_some()),
        "every request closed"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_dies_mid_run_leaves_a_recorded_run_and_no_hang() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let child = probe_command(
        &db,
        &h.base_url(),
        &[
            "--json",
            "--batch-sizes",
            "4,4,4",
            "--input-len",
            "16",
            "--output-len",
            "400",
            "--request-timeout",
            "30s",
            "--scrape-interval",
            "100ms",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // A wave takes ~1.8 s (400 tokens × 4.6 ms): the engine goes during the first step's second
    // wave, after the 4 warm-up requests succeeded.
    tokio::time::sleep(std::time::Duration::from_millis(3000)).await;
    h.shutdown().await;
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        started.elapsed().as_secs() < 20,
        "the probe hung after the engine died"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let reqs = requests(&db);
    let cut = reqs
        .iter()
        .filter(|r| r.outcome == Outcome::StreamCut)
        .count();
    let refused = reqs
        .iter()
        .filter(|r| r.outcome == Outcome::ConnectError)
        .count();
    assert!(
        cut > 0,
        "streams open when the engine went are recorded as cut"
    );
    assert!(refused > 0, "later requests find no engine");
    assert!(
        reqs.iter().all(|r| r.done_t_s.is_some()),
        "every request closed"
    );
    assert_eq!(
        v["requests_failed"].as_u64().unwrap() as usize,
        cut + refused
    );
    assert!(
        v["requests_ok"].as_u64().unwrap() >= 4,
        "the first step's requests"
    );
    let findings = codes(&v["analysis"], &["warn", "error"]);
    assert!(
        findings.contains(&"request_failures".to_string()),
        "{findings:?}"
    );
    // The scraper's failures are warnings, counted once at the end.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed or were malformed during the run"),
        "{stderr}"
    );
}
