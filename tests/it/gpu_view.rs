//! The GPU view end to end: `ceiling probe --gpus` against the simulator's DCGM endpoint (one
//! simulated GPU per DP rank), the choice stored with the run's GPUs and the uncounted GPU shown
//! apart by the analysis and the reports; a `--gpus` naming no GPU is a usage error.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use ceiling::sim::SimFlavor;
use ceiling::store::Store;

use crate::probe::{analyze_json, probe};

/// A simulator with two DP ranks (two simulated GPUs), a database path and the `--gpu-source`
/// that reads the simulator's DCGM endpoint.
struct Setup {
    sim: ceiling::sim::SimHandle,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    source: String,
}

async fn two_gpu_sim() -> Setup {
    let mut cfg = ceiling::sim::SimConfig::new(crate::sim::tiny());
    cfg.flavor = SimFlavor::Vllm;
    cfg.dp = 2;
    let sim = ceiling::sim::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let source = format!("dcgm:{}/dcgm", sim.base_url());
    Setup {
        sim,
        _dir: dir,
        db,
        source,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_flag_counts_the_named_gpu_and_shows_the_other_apart() {
    let _serial = crate::sim::serial().await;
    let Setup {
        sim: h,
        _dir,
        db,
        source,
    } = two_gpu_sim().await;
    let args = [
        "--batch-sizes",
        "2",
        "--input-len",
        "16",
        "--output-len",
        "64",
        "--dp",
        "2",
        "--gpu-source",
        &source,
        "--gpu-interval",
        "50ms",
        "--gpus",
        "GPU-00000000-0000-0000-0000-000000000001",
    ];
    let out = probe(&db, &h.base_url(), &args).await;
    assert!(out.status.success(), "{out:?}");
    let store = Store::open(&db).unwrap();
    let id = store.latest_run().unwrap();
    let detail = store.run_detail(id).unwrap();
    let counted: Vec<(u32, Option<bool>)> = detail
        .manifest
        .gpu_inventory
        .iter()
        .map(|g| (g.index, g.counted))
        .collect();
    assert_eq!(counted, [(0, Some(false)), (1, Some(true))]);
    // Both GPUs recorded; GPU 0 only apart.
    let v = analyze_json(&db, &[]).await;
    let apart = v["gpus_apart"].as_array().unwrap();
    assert_eq!(apart.len(), 1, "{v}");
    assert_eq!(apart[0]["gpu"], 0);
    assert!(apart[0]["samples"].as_u64().unwrap() > 5);
    for t in v["timings"].as_array().unwrap() {
        assert!(t["gpu"]["gpus"].as_u64().unwrap() <= 1, "{t}");
    }
    // The reports show it under the step table.
    let out_dir = crate::lengths::report_latest(&db, _dir.path()).await;
    // result.json with the GPU figures and the GPU apart validates against the schema.
    let result = crate::report::validate(&out_dir.join("result.json"));
    assert_eq!(result["analysis"]["gpus_apart"][0]["gpu"], 0, "{result}");
    let gpu = &result["analysis"]["timings"][0]["gpu"];
    assert!(
        gpu["power_by_gpu"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{gpu}"
    );
    for file in ["report.html", "report.md"] {
        let text = std::fs::read_to_string(out_dir.join(file)).unwrap();
        assert!(
            text.contains("GPUs recorded but not counted (not the engine&#39;s, or left out by --gpus): 0 (util")
                || text.contains("GPUs recorded but not counted (not the engine's, or left out by --gpus): 0 (util"),
            "{file}: {text}"
        );
    }
    // An imported result reported beside this run gets the run's GPU vs time charts too.
    let sglang = crate::import::fixture(crate::import::SGLANG);
    let beside = _dir.path().join("beside");
    for args in [
        vec!["import", crate::import::path_str(&sglang)],
        vec![
            "report",
            "latest",
            "--result",
            "1",
            "--out",
            crate::import::path_str(&beside),
        ],
    ] {
        let out = crate::compare::cli(&db, &args).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(beside.join("charts/gpu_util_mem.svg").is_file());
    assert!(
        beside
            .join("charts/results_throughput_vs_p99.svg")
            .is_file()
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_flag_naming_no_gpu_is_a_usage_error() {
    let _serial = crate::sim::serial().await;
    let Setup {
        sim: h,
        _dir,
        db,
        source,
    } = two_gpu_sim().await;
    let args = [
        "--batch-sizes",
        "1",
        "--output-len",
        "8",
        "--gpu-source",
        &source,
        "--gpus",
        "7",
    ];
    let out = probe(&db, &h.base_url(), &args).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--gpus: no GPU 7 here; this node has 0 (GPU-"),
        "{stderr}"
    );
    h.shutdown().await;
}

/// A closed-loop probe of 4 s at bs 2 against a simulator whose DCGM energy counter refreshes
/// every `every_s`; the first step's GPU figures from `ceiling analyze --json`.
async fn energy_run(every_s: f64) -> serde_json::Value {
    let mut cfg = ceiling::sim::SimConfig::new(crate::sim::tiny());
    cfg.gpu = ceiling::sim::SimGpu {
        energy_every_s: every_s,
        mig_instances: 0,
    };
    let h = ceiling::sim::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("e.db");
    let source = format!("dcgm:{}/dcgm", h.base_url());
    let args = [
        "--pattern",
        "closed-loop",
        "--batch-sizes",
        "2",
        "--input-len",
        "16",
        "--output-len",
        "1200",
        "--duration",
        "4s",
        "--warmup",
        "0s",
        "--gpu-source",
        &source,
        "--gpu-interval",
        "100ms",
    ];
    let out = probe(&db, &h.base_url(), &args).await;
    assert!(out.status.success(), "{out:?}");
    let v = analyze_json(&db, &[]).await;
    h.shutdown().await;
    v["timings"][0]["gpu"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_energy_counter_falls_back_to_mean_power_never_zero() {
    let _serial = crate::sim::serial().await;
    // Refreshed on every scrape: the counter's rate.
    let fast = energy_run(0.0).await;
    assert_eq!(
        fast["power_by_gpu"][0]["source"], "energy_counter",
        "{fast}"
    );
    // Refreshed every 30 s, as the exporter does by default: it never moves twice in the
    // window, so the GPU's mean power is charged; the old first-to-last difference read 0 J.
    let slow = energy_run(30.0).await;
    assert_eq!(slow["power_by_gpu"][0]["source"], "mean_power", "{slow}");
    let (jf, js) = (
        fast["energy_per_output_token_j"].as_f64().unwrap(),
        slow["energy_per_output_token_j"].as_f64().unwrap(),
    );
    assert!(js > 0.0 && (js / jf - 1.0).abs() < 0.25, "{jf} vs {js}");
}
