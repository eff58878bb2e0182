//! The polars pipeline against the loops it replaced (`ceiling_reports::legacy`), on runs the
//! probe recorded from the simulator: the run loaded column by column into frames
//! (`Store::load_recording`) and loaded as per-request records must give every figure of every
//! `StepSummary` and `StepTiming` equal to 1e-9 relative (`None` only equals `None`). What that
//! tolerance allows is only the order in which a mean or a sum adds its terms.

use std::path::Path;

use ceiling::sim::Faults;
use ceiling::store::Store;
use ceiling_reports::{engine, legacy, step_time, summary};

use super::{db_in, linear, probe, sim};

/// Loads the latest run of `db` both ways and asserts the same figures; returns the steps seen.
fn assert_pipelines_agree(db: &Path) -> usize {
    let store = Store::open(db).unwrap();
    let id = store.latest_run().unwrap();
    let rec = store.load_recording(id).unwrap();
    let new_summary = summary::summarize_steps(&rec).unwrap();
    let new_timing = step_time::time_recording(&rec, 1).unwrap();

    let steps = store.load_steps(id).unwrap();
    let requests = store.load_requests(id).unwrap();
    let ticks = store.load_ticks(id).unwrap();
    let mut gpu = store.load_gpu_samples(id).unwrap();
    gpu.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let samples = engine::engine_samples(
        &store.load_scrapes(id).unwrap(),
        engine::flavor(rec.engine_kind.as_deref()),
    );
    let old_summary = legacy::summarize_steps(&steps, &requests, &ticks);
    let old_timing = legacy::time_steps(&steps, &requests, &samples, &gpu, 1);

    assert_eq!(rec.request_count(), requests.len());
    let chunks: usize = requests.iter().map(|r| r.chunks.len()).sum();
    assert_eq!(rec.chunks.height(), chunks);
    let d = legacy::differences(&new_summary, &old_summary, 1e-9);
    assert!(d.is_empty(), "summaries differ: {d:#?}");
    let d = legacy::differences(&new_timing, &old_timing, 1e-9);
    assert!(d.is_empty(), "timings differ: {d:#?}");
    assert!(
        new_timing.iter().any(|t| t.t_fwd_client_s.is_some()),
        "no step was timed: the comparison would be vacuous"
    );
    steps.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polars_and_the_old_loops_agree_on_simulated_waves_with_faults_and_a_closed_loop() {
    let _serial = crate::sim::serial().await;
    let faults = Faults {
        http_500: 0.05,
        drop: 0.05,
        ..Faults::default()
    };
    let h = sim(linear(), faults).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let wave = [
        "--batch-sizes",
        "1,4,16",
        "--input-len",
        "32",
        "--output-len",
        "24",
        "--waves",
        "2",
        "--scrape-interval",
        "50ms",
        "--request-timeout",
        "20s",
    ];
    let out = probe(&db, &h.base_url(), &wave).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(assert_pipelines_agree(&db), 3);
    let closed = [
        "--pattern",
        "closed-loop",
        "--batch-sizes",
        "4",
        "--input-len",
        "16",
        "--output-len",
        "16",
        "--warmup",
        "200ms",
        "--duration",
        "1s",
        "--scrape-interval",
        "100ms",
        "--request-timeout",
        "20s",
    ];
    let out = probe(&db, &h.base_url(), &closed).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(assert_pipelines_agree(&db), 1);
    h.shutdown().await;
}
