//! `ceiling import`, `ceiling results` and `ceiling check result` through the binary, on the
//! real result files in `fixtures/peer-results` and copies of them changed in one field: every
//! peer tool imports, a re-import is a no-op, bad files exit 2 with a located message and leave
//! the store unchanged, and the checks fire (and gate) on the broken copies only.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::cli::ceiling;

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

pub const SGLANG: &str = "peer-results/sglang_py/result.jsonl";

pub fn run(db: &Path, args: &[&str]) -> Output {
    ceiling()
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("ceiling runs")
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn result_count(db: &Path) -> usize {
    stdout_json(&run(db, &["results", "--json"]))
        .as_array()
        .expect("a list")
        .len()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn every_peer_result_imports_and_a_second_import_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let files = [
        SGLANG,
        "peer-results/sglang_rust/result.jsonl",
        "peer-results/guidellm/benchmarks.json",
        "peer-results/aiperf/artifacts/profile_export_aiperf.json",
        "peer-results/evalscope/out/fake-model/parallel_8_number_64/benchmark_summary.json",
    ]
    .map(fixture);
    let mut args = vec!["import", "--json"];
    args.extend(files.iter().map(|f| path_str(f)));
    let out = stdout_json(&run(&db, &args));
    let tools: Vec<&str> = out
        .as_array()
        .expect("list")
        .iter()
        .map(|o| o["tool"].as_str().expect("tool"))
        .collect();
    assert_eq!(
        tools,
        ["sglang", "sglang", "guidellm", "aiperf", "evalscope"]
    );
    assert!(
        out.as_array()
            .expect("list")
            .iter()
            .all(|o| o["requests"] == 64),
        "{out}"
    );
    let results = stdout_json(&run(&db, &["results", "--json"]));
    let evalscope = &results[4]["point"];
    assert_eq!(evalscope["completed"], 64);
    // Our TPOT, recomputed from benchmark_data.db: the engine's 10 ms per token.
    let tpot = evalscope["tpot"]["mean_s"].as_f64().expect("tpot");
    assert!((tpot - 0.010).abs() < 5e-5, "{tpot}");

    let again = run(&db, &["import", path_str(&files[0])]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already imported as result 1"));
    assert_eq!(result_count(&db), 5);
}

/// Writes `bytes` to `name` in `dir`.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn bad_files_exit_2_with_a_located_message_and_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let good = fixture(SGLANG);
    let text = std::fs::read_to_string(&good).expect("fixture");
    let truncated = write(
        dir.path(),
        "truncated.json",
        &text.as_bytes()[..text.len() / 2],
    );
    let empty_csv = write(
        dir.path(),
        "empty.csv",
        b"Type,Name,Request Count,Failure Count\r\n",
    );
    let binary = write(
        dir.path(),
        "binary.json",
        &[0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff, 0xfe],
    );
    let cases: [(&Path, &[&str], &str); 4] = [
        (&truncated, &[], "line 1 column"),
        (&empty_csv, &[], "a locust stats CSV with no rows"),
        (&binary, &[], "a binary file"),
        (&good, &["--tool", "guidellm"], "--tool guidellm expects"),
    ];
    for (file, extra, says) in cases {
        // Each bad file comes after a good one: nothing of either is written.
        let mut args = vec!["import", path_str(&good), path_str(file)];
        args.extend(extra);
        let out = run(&db, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", file.display());
        assert!(err.contains(path_str(file)) && err.contains(says), "{err}");
        assert_eq!(result_count(&db), 0, "{err}");
    }
    let forced = String::from_utf8_lossy(
        &run(&db, &["import", path_str(&good), "--tool", "guidellm"]).stderr,
    )
    .into_owned();
    assert!(forced.contains("it looks like a sglang file"), "{forced}");
}

/// A copy of the SGLang fixture with `edit` applied to its JSON.
fn edited(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> PathBuf {
    let text = std::fs::read_to_string(fixture(SGLANG))
        .expect("fixture")
        .replace("Infinity", "\"inf\"");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    edit(v.as_object_mut().expect("object"));
    write(dir, name, v.to_string().as_bytes())
}

fn verdicts(out: &Output) -> std::collections::BTreeMap<String, String> {
    let v = stdout_json(out);
    v[0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["code"].as_str().expect("code").to_string(),
                c["verdict"].as_str().expect("verdict").to_string(),
            )
        })
        .collect()
}

#[test]
fn checks_fire_on_one_field_changed_copies_and_the_gate_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let clean = fixture(SGLANG);
    let base = verdicts(&run(&db, &["check", "result", path_str(&clean), "--json"]));
    for code in [
        "output_throughput_identity",
        "littles_law",
        "throughput_identity",
        "e2e_identity",
        "tpot_vs_itl",
        "output_length",
        "input_length",
    ] {
        assert_eq!(base[code], "pass", "{code} on the clean file");
    }
    assert_eq!(
        run(&db, &["check", "result", path_str(&clean), "--gate"])
            .status
            .code(),
        Some(0)
    );

    // Asked for 128 output tokens, got 64: no ignore_eos.
    let short = edited(dir.path(), "short.json", |o| {
        o.insert("random_output_len".into(), 128.into());
    });
    let v = verdicts(&run(&db, &["check", "result", path_str(&short), "--json"]));
    assert_eq!(v["output_length"], "fail");
    let gated = run(&db, &["check", "result", path_str(&short), "--gate"]);
    assert_eq!(gated.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gated.stdout).contains("ignore_eos"));

    // Twice the request rate at the same E2E: 16 in flight of 8 allowed.
    let little = edited(dir.path(), "little.json", |o| {
        o.insert("max_concurrency".into(), 16.into());
    });
    let v = verdicts(&run(&db, &["check", "result", path_str(&little), "--json"]));
    assert_eq!(v["littles_law"], "fail", "8 in flight of 16 configured");

    // Markdown for a PR comment.
    let md = run(&db, &["check", "result", path_str(&clean), "--markdown"]);
    assert!(String::from_utf8_lossy(&md.stdout).contains("| ✅ pass | `littles_law` |"));
}

#[test]
fn hardware_checks_against_the_roofline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let clean = fixture(SGLANG);
    let small = fixture("model-configs/Qwen__Qwen2.5-7B-Instruct.json");
    let big = fixture("model-configs/meta-llama__Llama-3.1-70B-Instruct.json");
    // 7B on an H100: 10 ms per token at bs 8 is possible.
    let ok = verdicts(&run(
        &db,
        &[
            "check",
            "result",
            path_str(&clean),
            "--model-config",
            path_str(&small),
            "--gpu",
            "H100",
            "--json",
        ],
    ));
    assert_eq!(ok["tpot_roofline"], "pass");
    assert_eq!(ok["throughput_roofline"], "pass");
    assert_eq!(ok["ttft_prefill_bound"], "pass");
    // 70B at TP 1: a step reads 140 GB, over 40 ms on an H100; 10 ms is impossible.
    let v = verdicts(&run(
        &db,
        &[
            "check",
            "result",
            path_str(&clean),
            "--model-config",
            path_str(&big),
            "--gpu",
            "H100",
            "--json",
        ],
    ));
    assert_eq!(v["tpot_roofline"], "fail");
    assert_eq!(v["throughput_roofline"], "fail");
    // Stored at import, read back by id.
    let imported = stdout_json(&run(
        &db,
        &[
            "import",
            "--json",
            path_str(&clean),
            "--model-config",
            path_str(&big),
            "--gpu",
            "H100",
            "--tp",
            "1",
        ],
    ));
    let id = imported[0]["result_ids"][0].to_string();
    let by_id = verdicts(&run(&db, &["check", "result", &id, "--json"]));
    assert_eq!(by_id["tpot_roofline"], "fail");
}

#[test]
fn against_a_recorded_run_its_fit_predicts_the_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    // Waves at bs 4 and 16 with a step of 8 ms + 0.2 ms per sequence: 9.6 ms at bs 8.
    crate::analyze::record(&db);
    let clean = fixture(SGLANG);
    let v = verdicts(&run(
        &db,
        &[
            "check",
            "result",
            path_str(&clean),
            "--against",
            "latest",
            "--json",
        ],
    ));
    assert_eq!(
        v["against_run_tpot"], "pass",
        "10.0 ms within 10 % of 9.6 ms"
    );
    let fast = edited(dir.path(), "fast.json", |o| {
        o.insert("max_concurrency".into(), 64.into());
    });
    let v = verdicts(&run(
        &db,
        &[
            "check",
            "result",
            path_str(&fast),
            "--against",
            "latest",
            "--json",
        ],
    ));
    assert_eq!(
        v["against_run_tpot"], "fail",
        "at bs 64 the run predicts 20.8 ms, not 10"
    );
}

#[test]
fn compare_fires_when_an_mtp_change_moved_ttft_and_refuses_other_lengths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let a = fixture(SGLANG);
    let same = run(
        &db,
        &[
            "compare",
            path_str(&a),
            path_str(&a),
            "--change",
            "mtp",
            "--gate",
        ],
    );
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );
    // TTFT 30 % higher in B: an MTP change cannot do that.
    let b = edited(dir.path(), "b.json", |o| {
        let t = o["mean_ttft_ms"].as_f64().expect("ttft") * 1.3;
        o.insert("mean_ttft_ms".into(), t.into());
    });
    let out = run(
        &db,
        &[
            "compare",
            path_str(&a),
            path_str(&b),
            "--change",
            "mtp",
            "--json",
        ],
    );
    let v = stdout_json(&out);
    assert_eq!(v["checks"][0]["code"], "ttft_unmoved");
    assert_eq!(v["checks"][0]["verdict"], "fail");
    assert_eq!(
        run(
            &db,
            &[
                "compare",
                path_str(&a),
                path_str(&b),
                "--change",
                "mtp",
                "--gate"
            ]
        )
        .status
        .code(),
        Some(1)
    );
    // The same B is fine for a prefix-cache change (it moves TTFT, not TPOT).
    let kv = stdout_json(&run(
        &db,
        &[
            "compare",
            path_str(&a),
            path_str(&b),
            "--change",
            "kv-cache",
            "--json",
        ],
    ));
    assert_eq!(kv["checks"][0]["verdict"], "pass");
    let longer = edited(dir.path(), "long.json", |o| {
        o.insert("total_output_tokens".into(), 8192.into());
    });
    let refused = run(
        &db,
        &[
            "compare",
            path_str(&a),
            path_str(&longer),
            "--change",
            "mtp",
        ],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not comparable"));
}

/// Markup, terminal escapes (clear screen, a window title, BEL) and SQL, as a result file's
/// model, label, dataset and backend.
const HOSTILE: &str =
    "<script>alert(1)</script>\u{1b}[2J\u{1b}]0;pwned\u{7}'); DROP TABLE results; --";

#[test]
fn imported_strings_are_stored_whole_and_printed_without_control_sequences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let file = edited(dir.path(), "hostile.json", |o| {
        for key in ["model_id", "tag", "dataset_name", "backend"] {
            o.insert(key.into(), HOSTILE.into());
        }
    });
    stdout_json(&run(&db, &["import", "--json", path_str(&file)]));
    // Bound, not spliced: the string comes back whole and the table is still there.
    let listed = stdout_json(&run(&db, &["results", "--json"]));
    for key in ["model", "label", "dataset", "endpoint"] {
        assert_eq!(listed[0]["point"][key], HOSTILE, "{key}: {listed}");
    }
    for args in [vec!["results"], vec!["check", "result", "1"]] {
        let out = run(&db, &args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(['\u{1b}', '\u{7}']), "{args:?}: {text:?}");
        assert!(
            text.contains("<script>alert(1)</script>"),
            "{args:?}: {text}"
        );
    }
    assert_eq!(result_count(&db), 1);
}
