//! A fleet's history in Parquet: three nodes' runs (one store each, as on the nodes; here
//! written directly with known step times, one node's board slow) exported by `ceiling export`,
//! read back with the fleet reader (polars' Parquet reader per file), and the cross-node view of
//! `ceiling history --from` picking out the slow board by its robust z-score.

use std::path::Path;

use ceiling::store::{RunManifest, RunStatus, Store};
use ceiling_collectors::GpuInfo;
use ceiling_reports::history::{RunResult, StepResult};
use polars::prelude::*;
use serde_json::Value;

use crate::cli::ceiling;

const HOSTS: [(&str, f64); 4] = [
    ("gpu-node-01", 0.0100),
    ("gpu-node-02", 0.0101),
    ("gpu-node-03", 0.0099),
    ("gpu-node-17", 0.0130),
];

/// Two nights of `host` (Dec 1 and 2) in `db`, each at bs 8 and 32 with step time `t` (+10 %
/// at bs 32).
fn record_host(db: &Path, host: &str, t: f64) {
    let store = Store::open(db).unwrap();
    for day in [1, 2] {
        let mut m = RunManifest::new("ceiling probe".into(), serde_json::json!({"dp": 1}));
        m.host = Some(host.into());
        m.started_at = format!("2026-12-0{day}T02:30:00.000Z");
        m.engine_kind = Some("vllm".into());
        m.model = Some("meta-llama/Llama-3.1-8B-Instruct".into());
        m.gpu_inventory = vec![GpuInfo {
            index: 0,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            uuid: Some(format!("GPU-{host}")),
            driver: Some("550.54.15".into()),
            ..GpuInfo::default()
        }];
        let run = store.create_run(&m).unwrap();
        store.finish_run(run, RunStatus::Complete, None).unwrap();
        let steps: Vec<StepResult> = [(8, t), (32, t * 1.1)]
            .iter()
            .enumerate()
            .map(|(i, &(bs, t))| StepResult {
                step_idx: i as u32,
                batch_size: bs,
                input_len: 512,
                output_len: 256,
                t_fwd_s: Some(t),
                ..StepResult::default()
            })
            .collect();
        store
            .replace_results(run, &RunResult::default(), &steps)
            .unwrap();
    }
}

fn export(db: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let o = ceiling()
        .arg("--db")
        .arg(db)
        .args(["export", "--format", "parquet", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_fleets_export_reads_back_and_the_slow_board_stands_out() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet");
    for (host, t) in HOSTS {
        let db = dir.path().join(format!("{host}.db"));
        record_host(&db, host, t);
        let files = export(&db, &fleet, &[]);
        assert_eq!(files.len(), 2, "one file per night: {files:?}");
        assert!(
            files[1].contains(&format!("host={host}/date=2026-12-02/")),
            "{files:?}"
        );
    }
    // --since leaves the first night out.
    let only = dir.path().join("since");
    let db = dir.path().join("gpu-node-01.db");
    assert_eq!(export(&db, &only, &["--since", "2026-12-02"]).len(), 1);

    // Read back with the fleet reader: 4 hosts × 2 nights × 2 steps, partition columns back.
    let glob = format!("{}/**/*.parquet", fleet.display());
    let df = ceiling_reports::history::parquet::scan(&glob)
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 16);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    for c in [
        "host",
        "date",
        "run_id",
        "batch_size",
        "t_fwd_s",
        "driver_version",
    ] {
        assert!(names.contains(&c.to_string()), "{c} in {names:?}");
    }
    let t = df.column("t_fwd_s").unwrap().f64().unwrap().sum().unwrap();
    let hosts = df
        .clone()
        .lazy()
        .group_by([col("host")])
        .agg([len().alias("rows")])
        .collect()
        .unwrap();
    assert_eq!(hosts.height(), 4);
    let truth: f64 = HOSTS.iter().map(|(_, t)| 2.0 * (t + t * 1.1)).sum();
    assert!((t - truth).abs() < 1e-12, "{t} vs {truth}");

    duckdb_reads_it_back(&glob, truth);

    // The cross-node view of the last night: node 17 is the outlier at both batch sizes.
    let o = ceiling()
        .args(["history", "--from", &glob, "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let points = v.as_array().unwrap();
    assert_eq!(points.len(), 8, "{v}");
    for p in points {
        assert_eq!(p["date"], "2026-12-02");
        assert_eq!(p["nodes"], 4);
        let z = p["z"].as_f64().unwrap();
        if p["host"] == "gpu-node-17" {
            assert!(z > 10.0, "{p}");
        } else {
            assert!(z.abs() < 2.0, "{p}");
        }
    }
    // `regress --history-from` adds the node's place in the fleet that night.
    let o = ceiling()
        .arg("--db")
        .arg(dir.path().join("gpu-node-17.db"))
        .args(["regress", "latest", "--json", "--history-from", &glob])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = v["fleet"].as_array().unwrap();
    assert_eq!(f.len(), 2, "t_fwd_s at bs 8 and 32: {v}");
    assert!(f.iter().all(|p| p[1]["z"].as_f64().unwrap() > 10.0), "{v}");

    let o = ceiling()
        .args(["history", "--from", "/nonexistent/**/*.parquet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

/// DuckDB reads the same export (a second engine beside polars, as a fleet's query engine
/// would): the rows, the hosts from the partition paths, and the step times' sum. DuckDB is
/// Python's `duckdb` package from PyPI in `$CEILING_PYTHON` (`.ci/run` installs it in a venv).
fn duckdb_reads_it_back(glob: &str, t_fwd_sum: f64) {
    let script = "import sys, duckdb\n\
        row = duckdb.sql(\"SELECT count(*), count(DISTINCT host), sum(t_fwd_s), min(date) \
        FROM read_parquet(?, hive_partitioning = true)\", params=[sys.argv[1]]).fetchall()[0]\n\
        print(row[0], row[1], repr(row[2]), row[3])";
    let text = super::python_check("duckdb", script, &[glob.as_ref()]);
    let got: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(got[..2], ["16", "4"], "{text}");
    let sum: f64 = got[2].parse().unwrap();
    assert!((sum - t_fwd_sum).abs() < 1e-12, "{sum} vs {t_fwd_sum}");
    assert_eq!(got[3], "2026-12-01", "{text}");
}
