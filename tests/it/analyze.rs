//! `ceiling analyze` on a recording written through the store's writer: the step times come
//! back as the synthetic engine ran them, the findings are stored, and bad arguments exit 2.

use ceiling::store::{Record, RunManifest, RunStatus, Store, Writer, WriterOptions};
use ceiling_reports::synthetic::{SyntheticRun, WaveSpec, wave_recording};

use crate::cli::ceiling;

/// A two-step synthetic wave sweep (bs 4 and 16) recorded through the store's writer.
pub fn record(db: &std::path::Path) {
    record_with(db, |_| {});
}

/// [`record`] with the synthetic recording edited first (to plant a fault).
#[expect(
    clippy::unwrap_used,
    reason = "a test fixture: failing to record fails the test"
)]
pub fn record_with(db: &std::path::Path, edit: impl FnOnce(&mut SyntheticRun)) {
    let mut rec = wave_recording(&[4u32, 16].map(|bs| WaveSpec {
        batch_size: bs,
        output_len: 51,
        step_time_s: 0.008 + 0.0002 * f64::from(bs),
        ..WaveSpec::default()
    }));
    edit(&mut rec);
    let store = Store::open(db).unwrap();
    let mut m = RunManifest::new("ceiling probe".into(), serde_json::json!({"dp": 1}));
    m.engine_kind = Some("vllm".into());
    let run = store.create_run(&m).unwrap();
    let (w, thread) = Writer::spawn(db, run, WriterOptions::default()).unwrap();
    for s in &rec.steps {
        w.send_blocking(Record::Step(s.clone())).unwrap();
        w.send_blocking(Record::StepEnd {
            idx: s.idx,
            end_t_s: s.end_t_s.unwrap(),
        })
        .unwrap();
    }
    for r in &rec.requests {
        w.send_blocking(Record::Request(Box::new(r.clone())))
            .unwrap();
    }
    for t in &rec.ticks {
        w.send_blocking(Record::Tick(*t)).unwrap();
    }
    for g in &rec.gpu {
        w.send_blocking(Record::Gpu(g.clone())).unwrap();
    }
    drop(w);
    thread.join().unwrap();
    store.finish_run(run, RunStatus::Complete, None).unwrap();
}

#[test]
fn analyze_json_recovers_the_step_times_and_stores_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    record(&db);
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["analyze", "latest", "--json", "--sla-tpot", "12ms 10us"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (i, bs) in [4.0, 16.0].into_iter().enumerate() {
        let truth = 0.008 + 0.0002 * bs;
        let t = v["timings"][i]["t_fwd_client_s"].as_f64().unwrap();
        assert!((t - truth).abs() / truth < 0.02, "{t} vs {truth}");
    }
    assert_eq!(v["steps"][0]["requests_ok"], 12, "4 × 3 waves");
    assert!((v["fit"]["b_s_per_seq"].as_f64().unwrap() - 0.0002).abs() < 1e-5);
    assert_eq!(v["ceilings"][0]["limited_by"], "sla");
    assert_eq!(v["ceiling_options"]["sla_tpot_s"], 0.01201);
    assert_eq!(
        v["ceilings"][0]["bs_per_rank"], 20,
        "0.008 + 0.0002 × 20 = 12 ms ≤ 12.01 ms < 12.2 ms at bs 21"
    );

    // The findings (here: the ceiling is extrapolated) are stored with the run.
    let stored = Store::open(&db).unwrap().load_findings(1).unwrap();
    assert_eq!(stored.len(), v["findings"].as_array().unwrap().len());
    assert!(stored.iter().any(|f| f.code == "ceiling_extrapolated"));

    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["analyze", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("fit: t_fwd ="), "{text}");
    assert!(text.contains("ceiling 128/51"), "{text}");
}

#[test]
fn analyze_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .arg("analyze")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no runs yet");
    record(&db);
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["analyze", "--sla-otps", "-3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
