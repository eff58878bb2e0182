//! `ceiling demo` and `ceiling report` end to end: the demo probes the built-in simulated
//! engine and writes every output; result.json validates against the committed schema; the
//! HTML renders in headless Chromium; the roofline flags reach the report; `--gate` exits 1 on
//! an `error` finding; a bad output directory is a usage error.

use std::path::Path;

use crate::analyze::record;
use crate::cli::ceiling;
use crate::html_render::check_in_chromium;

const CHARTS: [&str; 9] = [
    "throughput_vs_bs",
    "tpot_vs_bs",
    "step_time_vs_bs",
    "gpu_util_mem",
    "gpu_power",
    "gpu_sm_clock",
    "throughput_vs_p99",
    "error_rate",
    "itl_distribution",
];

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure fails the test"
)]
pub fn validate(result: &Path) -> serde_json::Value {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result.json breaks its schema:\n{}",
        errors.join("\n")
    );
    v
}

#[expect(
    clippy::unwrap_used,
    reason = "a test helper: a failure fails the test"
)]
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    let reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let info = reader.info();
    (info.width, info.height)
}

#[test]
fn demo_probes_the_simulator_and_writes_a_report_that_validates_and_renders() {
    let _serial = crate::sim::serial_blocking();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let out_dir = dir.path().join("demo");
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["demo", "--batch-sizes", "1,8,32", "--png", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("fit: t_fwd ="), "{stdout}");
    assert!(stdout.contains("ceiling 64/128:"), "{stdout}");
    assert!(stdout.contains("report.html"), "{stdout}");

    for f in [
        "report.html",
        "report.md",
        "result.json",
        "model-config.json",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
    for c in CHARTS {
        let svg = std::fs::read_to_string(out_dir.join(format!("charts/{c}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{c}.svg");
        assert_eq!(
            png_size(&out_dir.join(format!("charts/{c}.png"))),
            (900, 500)
        );
    }

    let v = validate(&out_dir.join("result.json"));
    assert_eq!(v["run"]["status"], "complete");
    assert_eq!(v["counts"]["steps"], 3);
    // The simulator's llama-8b-h100 profile: t_fwd = 6.5 ms + 0.03 ms × bs + context terms.
    let fit = &v["analysis"]["fit"];
    let a = fit["a_s"].as_f64().unwrap();
    assert!((a - 0.0065).abs() / 0.0065 < 0.05, "a = {a}");
    // Every step is compared with the Llama-3.1-8B roofline on an H100 and runs slower than it.
    for t in v["analysis"]["timings"].as_array().unwrap() {
        let eff = t["roofline_efficiency"].as_f64().unwrap();
        assert!(eff > 0.2 && eff < 1.0, "efficiency {eff}");
        let d = t["client_engine_rel_diff"].as_f64().unwrap();
        assert!(d.abs() < 0.05, "client vs engine {d}");
    }
    let head = &v["headline"];
    assert_eq!(head["limited_by"], "sla");
    assert_eq!(v["analysis"]["ceiling_options"]["sla_otps"], 90.0);

    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Verdict") && md.contains("(charts/tpot_vs_bs.svg)"),
        "{md}"
    );
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(!html.contains("<script"), "the report needs no JavaScript");
    assert!(!html.contains("src=\"http"), "nothing fetched");
    check_in_chromium(&out_dir.join("report.html"), CHARTS.len());
}

#[test]
fn demo_nightly_flags_the_planted_night_and_names_the_clock_and_the_driver() {
    let _serial = crate::sim::serial_blocking();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let out = ceiling()
        .args(["demo", "--nightly", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict = |metric: &str, bs: u32| {
        stdout
            .lines()
            .find(|l| l.starts_with(metric) && l.split_whitespace().nth(1) == Some(&bs.to_string()))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
    };
    for bs in [4, 16] {
        assert_eq!(
            verdict("t_fwd_s", bs).as_deref(),
            Some("regression"),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("driver_changed         driver 535.183.01 → 560.28"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sm_clock_lower         SM clock -8 %"),
        "{stdout}"
    );
    assert!(
        stdout.contains("baseline: runs [7, 8, 9, 10, 11, 12, 13]"),
        "{stdout}"
    );
    for f in [
        "nightly.html",
        "nightly.md",
        "nightly.db",
        "run/report.html",
        "charts/trend-t_fwd_s-bs16.svg",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing");
    }
}

#[test]
fn report_takes_the_roofline_and_gates_on_error_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    record(&db);
    let out_dir = dir.path().join("rep");
    let config = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/model-configs/meta-llama__Llama-3.1-8B-Instruct.json");
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args([
            "report", "latest", "--format", "md,json", "--gpu", "H100", "--out",
        ])
        .arg(&out_dir)
        .arg("--model-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !out_dir.join("report.html").exists(),
        "html was not asked for"
    );
    let v = validate(&out_dir.join("result.json"));
    let t_min = v["analysis"]["timings"][0]["roofline_t_min_s"]
        .as_f64()
        .unwrap();
    // 16.06 GB of bf16 weights over 3.35 TB/s, plus the KV cache: about 4.8 ms.
    assert!((0.0045..0.0052).contains(&t_min), "t_min {t_min}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("| Efficiency vs roofline |"), "{md}");

    // Claiming the 70B model (about 140 GB read per step, 42 ms on one H100) makes the synthetic
    // engine's 8.8 ms step faster than the hardware can be: `above_roofline` is an error, and
    // --gate turns it into exit 1 while still writing the report.
    let big = config.with_file_name("meta-llama__Llama-3.1-70B-Instruct.json");
    let gated = dir.path().join("gated");
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args([
            "report",
            "--gpu",
            "H100",
            "--gate",
            "--format",
            "json",
            "--model-config",
        ])
        .arg(&big)
        .arg("--out")
        .arg(&gated)
        .output()
        .unwrap();
    let v = validate(&gated.join("result.json"));
    let t = &v["analysis"]["timings"];
    assert_eq!(v["has_errors"], true, "{}", t);
    let codes: Vec<&str> = v["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"above_roofline"), "{codes:?}");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn report_into_a_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    record(&db);
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["report", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--out"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}
