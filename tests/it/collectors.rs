//! The collector commands end to end: `scrape` on captures and on a live endpoint, `gpus` on
//! this machine, `import-gpu` into a recorded run. `gpu_*` tests need a real GPU and are
//! ignored elsewhere (run them with `cargo test -- --ignored gpu_`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cli::ceiling;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn stdout_of(args: &[&str]) -> String {
    let out = ceiling().args(args).output().expect("run ceiling");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn scrape_file_prints_signals_sources_and_unmapped() {
    let path = fixture("expositions/llamacpp-local.prom");
    let text = stdout_of(&["scrape", "--file", path.to_str().unwrap()]);
    assert!(text.starts_with("engine llamacpp"), "{text}");
    let running = text.lines().find(|l| l.contains("running")).unwrap();
    assert!(
        running.contains('8') && running.contains("llamacpp:requests_processing"),
        "{running}"
    );
    let steps = text.lines().find(|l| l.contains("steps_total")).unwrap();
    assert!(
        steps.contains("10805") && steps.contains("llamacpp:n_decode_total"),
        "{steps}"
    );
    assert!(
        text.contains("not mapped (4): llamacpp:n_tokens_max"),
        "{text}"
    );
}

#[test]
fn scrape_file_json_counts_dp_ranks_and_reports_elided_lines() {
    let path = fixture("expositions/vllm-v1-0.10.2dev-dp2-apiserver-pr22227.prom");
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "scrape",
        "--json",
        "--file",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["signals"]["flavor"], "vllm");
    assert_eq!(v["signals"]["dp_ranks"], 2);
    assert_eq!(v["signals"]["model"], "/home/jovyan/qwen3-8b");

    let path = fixture("expositions/vllm-v1-0.7-0.8-docs-design-metrics.prom");
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "scrape",
        "--json",
        "--file",
        path.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(v["signals"]["running"], 8.0);
    let errors = v["parse_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0]["line"], 4);
}

#[test]
fn scrape_of_an_unreachable_engine_exits_3() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = ceiling()
        .args([
            "scrape",
            &format!("http://{addr}/metrics"),
            "--timeout",
            "2s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
}

/// A server answering every request with `body`.
fn static_server(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/metrics")
}

#[test]
fn gpus_reads_a_dcgm_exporter() {
    let body = std::fs::read_to_string(fixture("expositions/dcgm-exporter-3.x-v100-issue250.prom"))
        .unwrap();
    let url = static_server(body);
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "gpus",
        "--gpu-source",
        &format!("dcgm:{url}"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["works"], true, "{v}");
    let gpus = v["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 4);
    assert_eq!(gpus[0]["name"], "Tesla V100-SXM2-32GB");
    assert_eq!(gpus[2]["power_limit_w"], 300.0);
}

#[test]
fn gpus_on_a_mig_dcgm_exporter_reads_each_gpu_once_and_says_mig() {
    let body = std::fs::read_to_string(fixture("expositions/dcgm-exporter-a30-mig-issue317.prom"))
        .unwrap();
    let url = static_server(body);
    let text = stdout_of(&["gpus", "--gpu-source", &format!("dcgm:{url}")]);
    assert!(text.contains("works, 2 GPU(s)"), "{text}");
    assert!(text.contains("MIG is on for GPU 0, 1"), "{text}");
    // Power once per GPU (53 W from instance 3), not the four instances' sum.
    assert!(text.contains("53 W") && !text.contains("210 W"), "{text}");
}

/// A `/metrics` server whose generation counter grows by 500 per scrape.
fn counting_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let n = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let k = n.fetch_add(1, Ordering::SeqCst);
            let body = format!(
                "# TYPE vllm:num_requests_running gauge\n\
                 vllm:num_requests_running{{engine=\"0\",model_name=\"m\"}} 4.0\n\
                 # TYPE vllm:generation_tokens_total counter\n\
                 vllm:generation_tokens_total{{engine=\"0\",model_name=\"m\"}} {}\n",
                1000 + 500 * k
            );
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}/metrics")
}

#[test]
fn scrape_delta_prints_rates_between_two_scrapes() {
    let url = counting_server();
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "scrape",
        &url,
        "--delta",
        "--interval",
        "200ms",
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["signals"]["running"], 4.0);
    assert_eq!(v["signals"]["generation_tokens_total"], 1500.0);
    let dt = v["interval_s"].as_f64().unwrap();
    let rate = v["rates"]["generation_tokens_per_s"].as_f64().unwrap();
    assert!(dt >= 0.2);
    assert!((rate * dt - 500.0).abs() < 1e-6, "{rate} over {dt}");
}

#[test]
fn gpus_says_whether_a_source_works_here() {
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&["gpus", "--json"])).unwrap();
    assert_eq!(v["source"], "nvml");
    if v["works"] == true {
        assert!(!v["gpus"].as_array().unwrap().is_empty());
    } else {
        assert!(v["error"].as_str().unwrap().contains("NVML"), "{v}");
    }
    let out = ceiling()
        .args(["gpus", "--gpu-source", "rocm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn import_gpu_aligns_an_nvidia_smi_log_to_the_run_start() {
    use ceiling::store::{RunManifest, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let run_id = {
        let store = Store::open(&db).unwrap();
        let mut m = RunManifest::new("ceiling probe".into(), serde_json::json!({}));
        // The log's first tick is 14:03:12.101 (UTC+01:00 local): 0.1 s after the start.
        m.started_at = "2026-11-22T13:03:12.001Z".into();
        store.create_run(&m).unwrap()
    };
    let log = fixture("nvidia-smi/h100x2-units-lms100.csv");
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args([
            "import-gpu",
            log.to_str().unwrap(),
            "--run",
            "latest",
            "--utc-offset",
            "+01:00",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("imported 24 GPU samples of 2 GPU(s) into run"),
        "{text}"
    );

    let store = Store::open(&db).unwrap();
    let samples = store.load_gpu_samples(run_id).unwrap();
    assert_eq!(samples.len(), 24);
    let first = samples.iter().map(|s| s.t_s).fold(f64::INFINITY, f64::min);
    assert!((first - 0.1).abs() < 1e-6, "{first}");
    assert!(
        samples.iter().any(|s| s.power_w.is_none()),
        "[N/A] stays NULL"
    );
    let detail = store.run_detail(run_id).unwrap();
    assert_eq!(detail.manifest.gpu_inventory.len(), 2);
    assert_eq!(
        detail.manifest.gpu_inventory[0].name.as_deref(),
        Some("NVIDIA H100 80GB HBM3")
    );

    // Without the offset every row predates the run: nothing imported, a usage error.
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args([
            "import-gpu",
            log.to_str().unwrap(),
            "--run",
            "latest",
            "--utc-offset",
            "+02:00",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Samples the machine's real GPUs through NVML at 10 ms for 2 s and reports what one read of
/// all GPUs costs. Needs an NVIDIA driver: `cargo test -- --ignored gpu_`.
#[test]
#[ignore = "needs an NVIDIA GPU and driver"]
fn gpu_nvml_samples_a_real_gpu() {
    use ceiling_collectors::gpu::nvml::NvmlSource;
    use ceiling_collectors::gpu::{GpuSource, spawn_gpu_sampler};
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    let mut src = NvmlSource::init().expect("NVML on a GPU machine");
    let inv = src.inventory().unwrap();
    assert!(!inv.is_empty());
    assert!(inv[0].name.is_some() && inv[0].uuid.is_some());
    let n = inv.len();

    let reads = 200;
    let start = Instant::now();
    for _ in 0..reads {
        let s = src.sample(0.0);
        assert_eq!(s.len(), n);
    }
    let per_read = start.elapsed() / reads;
    let s = &src.sample(0.0)[0];
    assert!(s.mem_total_bytes.is_some() && s.power_w.is_some() && s.sm_clock_mhz.is_some());

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    let stop = Arc::new(AtomicBool::new(false));
    let h = spawn_gpu_sampler(
        Box::new(src),
        Duration::from_millis(10),
        Instant::now(),
        stop.clone(),
        tx,
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let mut got = Vec::new();
    rt.block_on(async {
        while let Ok(s) = rx.try_recv() {
            got.push(s);
        }
    });
    let ticks = got.len() / n;
    eprintln!(
        "NVML: {n} GPU(s), one read of all GPUs {per_read:?}; {ticks} ticks in 2 s at 10 ms \
         (ideal 200)"
    );
    assert!(ticks >= 100, "{ticks}");
}

/// The probe's telemetry on its own: scrapes recorded for the whole run, and on a machine
/// without a GPU no GPU rows and no failure.
#[test]
fn telemetry_records_scrapes_and_survives_a_missing_gpu() {
    use ceiling::cli::{Cli, Command};
    use ceiling::config::ProbeConfig;
    use ceiling::probe::EngineInfo;
    use ceiling::store::{RunManifest, Store, Writer, WriterOptions};
    use ceiling::telemetry::Telemetry;
    use clap::Parser;
    use std::time::{Duration, Instant};

    let url = counting_server();
    let base = url.trim_end_matches("/metrics").to_string();
    let cli = Cli::try_parse_from([
        "ceiling",
        "probe",
        "--url",
        &base,
        "--batch-sizes",
        "1",
        "--input-len",
        "8",
        "--output-len",
        "8",
        "--scrape-interval",
        "50ms",
        "--gpu-interval",
        "20ms",
    ])
    .unwrap();
    let Command::Probe(args) = cli.command else {
        panic!("not a probe command")
    };
    let cfg = ProbeConfig::from_cli(&args).unwrap();
    assert_eq!(cfg.metrics_url.as_deref(), Some(url.as_str()));

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let store = Store::open(&db).unwrap();
    let run_id = store
        .create_run(&RunManifest::new("t".into(), serde_json::json!({})))
        .unwrap();
    let (writer, thread) = Writer::spawn(&db, run_id, WriterOptions::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gpu_works = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let t = Telemetry::start(
            &cfg,
            &EngineInfo::default(),
            &http,
            Instant::now(),
            writer.clone(),
        )
        .await
        .unwrap();
        let works = t.gpu_inventory().is_some();
        tokio::time::sleep(Duration::from_millis(400)).await;
        t.stop().await;
        works
    });
    drop(writer);
    thread.join().unwrap();
    let scrapes = store.load_scrapes(run_id).unwrap();
    assert!(scrapes.len() >= 4, "{}", scrapes.len());
    assert!(
        scrapes
            .iter()
            .all(|s| s.error.is_none() && s.samples.len() == 2)
    );
    assert!(
        scrapes
            .windows(2)
            .all(|w| w[1].seq == w[0].seq + 1 && w[1].t_s > w[0].t_s)
    );
    let gpu_rows = store.load_gpu_samples(run_id).unwrap().len();
    if gpu_works {
        assert!(gpu_rows > 0);
    } else {
        assert_eq!(gpu_rows, 0);
    }
}

/// `ceiling scrape URL --json` as a child process, off the runtime.
async fn scrape_json(url: String) -> serde_json::Value {
    let text = tokio::task::spawn_blocking(move || stdout_of(&["scrape", &url, "--json"]))
        .await
        .expect("join");
    serde_json::from_str(&text).expect("scrape --json prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_of_the_simulator_prints_what_its_truth_says() {
    use ceiling::sim::SimFlavor;

    use crate::sim::{client, serial, start, tiny, unique_completion};
    let _serial = serial().await;
    for flavor in [SimFlavor::Vllm, SimFlavor::Sglang, SimFlavor::Llamacpp] {
        let mut profile = tiny();
        profile.sglang_gauge_interval_steps = 5;
        let h = start(flavor, profile, 1, 1.0).await;
        let c = client();
        let url = format!("{}/v1/completions", h.base_url());
        let metrics = format!("{}/metrics", h.base_url());
        let streams: Vec<_> = (0..3)
            .map(|i| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move {
                    crate::sim::stream(&c, &url, unique_completion(i, 16, 300)).await
                })
            })
            .collect();
        // Mid-flight (300 steps of ~5 ms): three sequences run, none waits.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let mid = scrape_json(metrics.clone()).await;
        let truth = h.truth();
        assert_eq!(truth.ranks[0].running, 3, "{flavor:?}");
        assert_eq!(mid["signals"]["running"], 3.0, "{flavor:?}: {mid}");
        assert_eq!(mid["signals"]["waiting"], 0.0, "{flavor:?}: {mid}");
        for s in streams {
            assert_eq!(s.await.expect("join").tokens().0, 300);
        }
        // Done: the token counters equal the truth's totals (llama.cpp's move at request end).
        let end = scrape_json(metrics).await;
        let truth = h.truth();
        assert_eq!(truth.totals.generation_tokens, 900);
        assert_eq!(
            end["signals"]["generation_tokens_total"], truth.totals.generation_tokens as f64,
            "{flavor:?}: {end}"
        );
        assert_eq!(
            end["signals"]["prompt_tokens_total"], truth.totals.prompt_tokens as f64,
            "{flavor:?}: {end}"
        );
        h.shutdown().await;
    }
}
