//! Store round-trips: every table written through the writer and read back, migrations, and bad
//! files.

use super::*;
use ceiling_collectors::{GpuSample, MetricSample, ScrapeRecord};
use ceiling_reports::recording::{Pattern, RunInfo};
use ceiling_reports::{
    ChunkArrival, ChunkKind, Finding, LatenessTick, Outcome, Recording, RequestRecord, Severity,
    StepRecord,
};

fn manifest() -> RunManifest {
    let mut m = RunManifest::new(
        "ceiling probe --url http://127.0.0.1:1".into(),
        serde_json::json!({"batch_sizes": [1, 8]}),
    );
    m.engine_kind = Some("vllm".into());
    m.model = Some("m".into());
    m.gpu_inventory = vec![GpuInfo {
        index: 0,
        name: Some("NVIDIA H100 80GB HBM3".into()),
        driver: Some("550.54.15".into()),
        mem_total_bytes: Some(85_520_809_984),
        ..GpuInfo::default()
    }];
    m.engine_limits = Some(EngineLimits {
        source: "llama.cpp /props".into(),
        max_seqs: Some(8),
        context_per_seq: Some(1024),
        kv_capacity_tokens: Some(8192),
    });
    m
}

fn request() -> RequestRecord {
    RequestRecord {
        scheduled_t_s: None,
        response_id: Some("cmpl-7".into()),
        step_idx: 0,
        worker: 3,
        wave: Some(1),
        warmup: false,
        sent_t_s: 1.0,
        headers_t_s: Some(1.01),
        first_token_t_s: Some(1.1),
        first_answer_t_s: Some(1.2),
        done_t_s: Some(2.0),
        prompt_tokens_requested: 512,
        completion_tokens_requested: 4,
        prompt_tokens_reported: Some(512),
        completion_tokens_reported: None,
        cached_tokens_reported: Some(0),
        prompt_from_text: false,
        outcome: Outcome::StreamCut,
        http_status: Some(200),
        error: Some("stream ended without [DONE]".into()),
        chunks: vec![
            ChunkArrival {
                t_s: 1.1,
                tokens: Some(1),
                kind: ChunkKind::Reasoning,
            },
            ChunkArrival {
                t_s: 1.2,
                tokens: None,
                kind: ChunkKind::Answer,
            },
        ],
    }
}

fn record_everything(path: &std::path::Path) -> (Store, i64) {
    let store = Store::open(path).unwrap();
    let run = store.create_run(&manifest()).unwrap();
    let (w, thread) = Writer::spawn(path, run, WriterOptions::default()).unwrap();
    let step = StepRecord {
        rate_rps: None,
        burstiness: None,
        idx: 0,
        batch_size: 8,
        input_len: 512,
        output_len: 4,
        pattern: Pattern::ClosedLoop,
        start_t_s: 0.5,
        end_t_s: None,
    };
    w.send_blocking(Record::Step(step)).unwrap();
    w.send_blocking(Record::Request(Box::new(request())))
        .unwrap();
    w.send_blocking(Record::Tick(LatenessTick {
        step_idx: 0,
        t_s: 1.5,
        late_s: 0.0002,
    }))
    .unwrap();
    // The ticker's batches: one record, a row per tick.
    w.send_blocking(Record::Ticks(
        [1.505, 1.51]
            .map(|t_s| LatenessTick {
                step_idx: 0,
                t_s,
                late_s: 0.0001,
            })
            .to_vec(),
    ))
    .unwrap();
    w.send_blocking(Record::Gpu(GpuSample {
        gpu_index: 0,
        t_s: 1.25,
        util_gpu_pct: Some(97.0),
        mem_used_bytes: Some(70_000_000_000),
        energy_j: Some(123_456.5),
        sm_clock_mhz: Some(1980),
        throttle_reasons: Some(4),
        mig_instance: Some(3),
        dram_active: Some(0.81),
        ..GpuSample::default()
    }))
    .unwrap();
    w.send_blocking(Record::Scrape(Box::new(ScrapeRecord {
        seq: 0,
        t_s: 1.3,
        duration_s: Some(0.004),
        http_status: Some(200),
        error: Some("line 7: expected a value".into()),
        samples: vec![
            MetricSample {
                name: "vllm:num_requests_running".into(),
                labels: [
                    ("engine".into(), "0".into()),
                    ("model_name".into(), "m".into()),
                ]
                .into(),
                value: 8.0,
            },
            MetricSample {
                name: "vllm:e2e_request_latency_seconds_bucket".into(),
                labels: [("le".into(), "+Inf".into())].into(),
                value: f64::INFINITY,
            },
        ],
        boundary: true,
    })))
    .unwrap();
    w.send_blocking(Record::StepEnd {
        idx: 0,
        end_t_s: 9.5,
    })
    .unwrap();
    w.send_blocking(Record::Finding(Finding {
        step_idx: Some(0),
        code: "engine_queueing".into(),
        severity: Severity::Warn,
        message: "requests waited in the engine queue".into(),
        evidence: serde_json::json!({"waiting_max": 3}),
    }))
    .unwrap();
    drop(w);
    assert_eq!(
        thread.join().unwrap(),
        8,
        "records, the batch of ticks as one"
    );
    (store, run)
}

#[test]
fn every_table_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (store, run) = record_everything(&dir.path().join("r.db"));
    store.finish_run(run, RunStatus::Interrupted, None).unwrap();

    let detail = store.run_detail(run).unwrap();
    assert_eq!(detail.manifest.probe_config, manifest().probe_config);
    assert_eq!(detail.manifest.gpu_inventory, manifest().gpu_inventory);
    assert_eq!(detail.manifest.engine_limits, manifest().engine_limits);
    assert_eq!(detail.manifest.engine_kind.as_deref(), Some("vllm"));
    assert_eq!(detail.status, RunStatus::Interrupted);
    assert!(detail.ended_at.is_some());
    assert_eq!(detail.steps.len(), 1);
    assert_eq!(detail.steps[0].end_t_s, Some(9.5));
    assert_eq!(detail.steps[0].pattern, Pattern::ClosedLoop);

    assert_eq!(store.load_requests(run).unwrap(), vec![request()]);
    let ticks = store.load_ticks(run).unwrap();
    assert_eq!(ticks[0].late_s, 0.0002);
    assert_eq!(
        ticks.iter().map(|t| t.t_s).collect::<Vec<_>>(),
        [1.5, 1.505, 1.51]
    );
    let gpu = &store.load_gpu_samples(run).unwrap()[0];
    assert_eq!(gpu.util_gpu_pct, Some(97.0));
    assert_eq!(gpu.power_w, None, "unread values stay NULL");
    assert_eq!(gpu.throttle_reasons, Some(4));
    assert_eq!((gpu.mig_instance, gpu.dram_active), (Some(3), Some(0.81)));
    assert_eq!(gpu.tensor_active, None);
    let scrapes = store.load_scrapes(run).unwrap();
    assert_eq!(scrapes.len(), 1);
    assert_eq!(scrapes[0].samples[0].label("engine"), Some("0"));
    assert_eq!(scrapes[0].samples[1].value, f64::INFINITY);
    assert!(scrapes[0].boundary);
    let reqs = store.load_requests(run).unwrap();
    assert_eq!(reqs[0].response_id.as_deref(), Some("cmpl-7"));
    assert_eq!(
        scrapes[0].error.as_deref(),
        Some("line 7: expected a value")
    );
    let findings = store.load_findings(run).unwrap();
    assert_eq!(findings[0].code, "engine_queueing");
    assert_eq!(findings[0].evidence["waiting_max"], 3);

    let listed = store.list_runs().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].steps, listed[0].requests), (1, 1));
}

/// The chunk frame as `load_recording` reads it (two halves on two connections, tokens held as
/// values plus the unknown rows) equals the one built from the same rows as records.
#[test]
fn the_chunk_frame_reads_back_as_the_records_make_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let (store, run) = record_everything(&path);
    let (w, thread) = Writer::spawn(&path, run, WriterOptions::default()).unwrap();
    for i in 0..6u32 {
        let mut r = request();
        r.completion_tokens_requested = 1 + i * 3;
        r.chunks = (0..i * 3)
            .map(|k| ChunkArrival {
                t_s: 2.0 + f64::from(i) + f64::from(k) * 0.01,
                tokens: (k % 4 != 1).then_some(k % 3 + 1),
                kind: if k < 2 {
                    ChunkKind::Reasoning
                } else {
                    ChunkKind::Answer
                },
            })
            .collect();
        w.send_blocking(Record::Request(Box::new(r))).unwrap();
    }
    drop(w);
    thread.join().unwrap();
    let rec = store.load_recording(run).unwrap();
    let records = store.load_requests(run).unwrap();
    let expected = Recording::from_records(
        RunInfo::default(),
        &[],
        &records,
        &[],
        Vec::new(),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(rec.chunks.height(), 2 + 3 + 6 + 9 + 12 + 15);
    assert!(rec.chunks.equals_missing(&expected.chunks));
    let tokens = rec.chunks.column("tokens").unwrap().u32().unwrap();
    assert_eq!(tokens.get(1), None);
    assert_eq!(tokens.null_count(), 1 + 1 + 2 + 2 + 3 + 4);
}

#[test]
fn replacing_findings_keeps_only_the_new_set() {
    let dir = tempfile::tempdir().unwrap();
    let (store, run) = record_everything(&dir.path().join("r.db"));
    store.replace_findings(run, &[]).unwrap();
    assert!(store.load_findings(run).unwrap().is_empty());
}

#[test]
fn a_file_that_is_not_sqlite_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("pass --db"));
}

#[test]
fn flush_waits_for_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    let store = Store::open(&path).unwrap();
    let run = store.create_run(&manifest()).unwrap();
    let opts = WriterOptions {
        commit_interval: std::time::Duration::from_secs(3600),
        ..WriterOptions::default()
    };
    let (w, thread) = Writer::spawn(&path, run, opts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        w.send(Record::Tick(LatenessTick {
            step_idx: 0,
            t_s: 0.0,
            late_s: 0.0,
        }))
        .await
        .unwrap();
        w.flush().await.unwrap();
    });
    // Visible to another connection before the hour-long batch would have ended.
    assert_eq!(store.load_ticks(run).unwrap().len(), 1);
    drop(w);
    thread.join().unwrap();
}

#[test]
fn config_hash_ignores_the_prompt_seed_but_not_the_load() {
    let with = |config: serde_json::Value| RunManifest::new("c".into(), config).probe_config_hash();
    let a = with(serde_json::json!({"batch_sizes": [1, 8], "seed": 1}));
    assert_eq!(
        a,
        with(serde_json::json!({"batch_sizes": [1, 8], "seed": 2}))
    );
    assert_eq!(a.len(), 16);
    assert_eq!(
        a,
        with(serde_json::json!({"batch_sizes": [1, 8], "seed": 1, "version": 1})),
        "the settings' layout version is not part of what was measured"
    );
    assert_ne!(
        a,
        with(serde_json::json!({"batch_sizes": [1, 16], "seed": 1}))
    );
}

#[test]
fn the_gpu_inventory_can_come_through_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let store = Store::open(&db).unwrap();
    let run = store
        .create_run(&RunManifest::new("c".into(), serde_json::json!({})))
        .unwrap();
    let (w, thread) = Writer::spawn(&db, run, WriterOptions::default()).unwrap();
    let gpus: Vec<GpuInfo> = (0..2)
        .map(|index| GpuInfo {
            index,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            driver: Some("550.54.15".into()),
            ..GpuInfo::default()
        })
        .collect();
    w.send_blocking(Record::RunGpus(gpus.clone())).unwrap();
    drop(w);
    thread.join().unwrap();
    assert_eq!(store.run_detail(run).unwrap().manifest.gpu_inventory, gpus);
    let (model, count): (String, i64) = store
        .conn()
        .query_row(
            "SELECT gpu_model, gpu_count FROM runs WHERE id = ?1",
            [run],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((model.as_str(), count), ("NVIDIA H100 80GB HBM3", 2));
}

#[test]
fn kept_results_round_trip_into_the_history_of_the_runs_key() {
    use ceiling_reports::history::{RunResult, StepResult};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("h.db")).unwrap();
    let mut other = manifest();
    other.model = Some("another".into());
    let runs: Vec<i64> = [manifest(), manifest(), other]
        .iter()
        .map(|m| store.create_run(m).unwrap())
        .collect();
    for &id in &runs {
        store.finish_run(id, RunStatus::Complete, None).unwrap();
    }
    let filter = store.history_filter(runs[0]).unwrap();
    assert_eq!(store.runs_without_results(&filter).unwrap(), runs[..2]);
    let step = StepResult {
        step_idx: 1,
        batch_size: 8,
        t_fwd_s: Some(0.0061),
        sm_clock_mean_mhz: Some(1980.0),
        throttle_reasons: Some("sw_power_cap".into()),
        ..StepResult::default()
    };
    let run = RunResult {
        fit_a_s: Some(0.004),
        ceilings: vec![(64, 32, 1234.5)],
        findings_warn: 2,
        ..RunResult::default()
    };
    store
        .replace_results(runs[0], &run, std::slice::from_ref(&step))
        .unwrap();
    // Analysing again replaces the rows.
    store
        .replace_results(runs[0], &run, std::slice::from_ref(&step))
        .unwrap();
    assert!(store.has_results(runs[0]).unwrap());
    assert_eq!(store.runs_without_results(&filter).unwrap(), [runs[1]]);
    let h = store.history(&filter).unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!((&h[0].run, &h[0].step), (&run, &step));
    assert_eq!(h[0].key.run_id, runs[0]);
    assert_eq!(h[0].key.driver_version.as_deref(), Some("550.54.15"));
    assert_eq!(h[0].key.gpu_count, 1);
    assert_eq!(h[0].key.status, "complete");
}

#[test]
fn labels_json_writes_what_serde_json_writes_for_the_sorted_map() {
    let reference = |labels: &[(String, String)]| {
        let map: std::collections::BTreeMap<&str, &str> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        serde_json::to_string(&map).unwrap()
    };
    let l = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let cases = [
        l(&[]),
        l(&[("model_name", "meta-llama/Llama-3.1-8B"), ("engine", "0")]),
        l(&[("le", "+Inf"), ("a", "b")]),
        // The last of equal keys wins, as in the map.
        l(&[("k", "first"), ("a", "x"), ("k", "last")]),
        // Escapes: quote, backslash, control characters; non-ASCII and DEL as they are.
        l(&[
            ("q", "say \"hi\""),
            ("p", "C:\\x"),
            ("n", "a\nb\t\u{1}"),
            ("u", "é€\u{7f}"),
        ]),
    ];
    for labels in &cases {
        assert_eq!(
            crate::store::series::labels_json(labels),
            reference(labels),
            "{labels:?}"
        );
    }
    assert_eq!(
        crate::store::series::labels_json(&cases[3]),
        r#"{"a":"x","k":"last"}"#
    );
}

mod migrations;
mod rows;
mod series;
