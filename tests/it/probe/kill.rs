//! Losing nothing: `ceiling probe` killed with SIGKILL at several moments of a run against the
//! simulator. The database passes `PRAGMA integrity_check`, the killed run is marked
//! `interrupted` when the next run starts, and `ceiling analyze` reports what was recorded.
//! Two `ceiling probe` processes on one database both complete.

use std::time::Duration;

use ceiling::store::Store;
use serde_json::Value;

use super::{db_in, linear, probe, probe_command, sim};
use ceiling::sim::Faults;

const SHORT: [&str; 8] = [
    "--gpu-interval",
    "0s",
    "--batch-sizes",
    "2",
    "--input-len",
    "16",
    "--output-len",
    "8",
];

fn integrity(db: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_loses_nothing_recorded() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    // Before the first request, during the warm-up, mid-step, during a later step.
    for kill_after_ms in [150u64, 700, 1500, 3000] {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(&dir);
        let mut child = probe_command(
            &db,
            &h.base_url(),
            &[
                "--gpu-interval",
                "0s",
                "--batch-sizes",
                "2,4,8",
                "--input-len",
                "16",
                "--output-len",
                "300",
                "--scrape-interval",
                "100ms",
            ],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        // std's kill sends SIGKILL: no destructor, no final commit, no close of the run.
        child.kill().unwrap();
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        if !db.exists() {
            continue;
        }
        assert_eq!(integrity(&db), "ok", "killed after {kill_after_ms} ms");
        let killed = Store::open(&db).unwrap().list_runs().unwrap();
        let Some(killed) = killed.first().map(|r| r.id) else {
            continue;
        };
        let recorded: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM requests WHERE run_id = ?1",
                [killed],
                |r| r.get(0),
            )
            .unwrap_or(-1);

        // The next start finds the killed run abandoned.
        let out = probe(&db, &h.base_url(), &SHORT).await;
        assert!(out.status.success(), "{out:?}");
        let store = Store::open(&db).unwrap();
        let runs = store.list_runs().unwrap();
        let status = |id: i64| runs.iter().find(|r| r.id == id).unwrap().status.as_str();
        assert_eq!(
            status(killed),
            "interrupted",
            "killed after {kill_after_ms} ms"
        );
        assert_eq!(status(killed + 1), "complete");
        assert_eq!(
            store.load_requests(killed).unwrap().len() as i64,
            recorded,
            "everything recorded before the kill is still there"
        );

        // `analyze` reports the killed run's recording.
        let mut cmd = crate::cli::ceiling();
        cmd.arg("--db")
            .arg(&db)
            .args(["analyze", &killed.to_string(), "--json"]);
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        if recorded > 0 {
            assert!(out.status.success(), "after {kill_after_ms} ms: {out:?}");
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let analysed: i64 = v["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["requests"].as_i64().unwrap() + s["requests_warmup"].as_i64().unwrap())
                .sum();
            assert_eq!(analysed, recorded, "after {kill_after_ms} ms: {v}");
        }
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_probes_writing_one_database_both_complete() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let args = [
        "--gpu-interval",
        "0s",
        "--batch-sizes",
        "2,4",
        "--input-len",
        "16",
        "--output-len",
        "100",
        "--scrape-interval",
        "50ms",
    ];
    let base = h.base_url();
    let (a, b) = tokio::join!(probe(&db, &base, &args), probe(&db, &base, &args));
    // Two probes share one engine, so each may see the other's batch and trip its gate (exit
    // 1, an `error` finding); what this test holds is the store: both runs recorded whole.
    for out in [&a, &b] {
        assert!(out.status.code().is_some_and(|c| c <= 1), "{out:?}");
    }
    let store = Store::open(&db).unwrap();
    let runs = store.list_runs().unwrap();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(r.status.as_str(), "complete", "run {}", r.id);
        // Warm-up 2 + 2 + 4 per run, each with its own rows.
        assert!(store.load_requests(r.id).unwrap().len() >= 6);
    }
    assert_eq!(integrity(&db), "ok");
    h.shutdown().await;
}
