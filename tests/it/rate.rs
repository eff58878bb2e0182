//! The open loop against the simulated engine: `--pattern rate` sends on its gamma schedule
//! whatever is in flight, records each request's scheduled and actual send, and the analysis
//! recovers the asked rate; `inf` sends a step at once; `--dataset` and `--input-range` mix the
//! lengths and record each request's; a malformed dataset is refused before anything is sent;
//! `--pattern sweep` finds the macro ceiling the cost model implies ([`sweep`]).
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

mod pd;
mod sweep;

use std::path::Path;

use ceiling_sim::{Profile, SimFlavor};
use serde_json::Value;

use crate::cli::ceiling;

/// The tiny profile without EOS draws: every request runs to its `max_tokens`.
fn profile() -> Profile {
    Profile {
        eos_probability: 0.0,
        ..crate::sim::tiny()
    }
}

/// `ceiling --db DB probe --url BASE ARGS… --json` off the runtime; the exit status and the
/// JSON it printed (Null when it printed none).
async fn probe(db: &Path, base: &str, args: &[&str]) -> (std::process::Output, Value) {
    let mut cmd = ceiling();
    cmd.arg("--db")
        .arg(db)
        .args(["probe", "--url", base])
        .args([
            "--gpu-interval",
            "0s",
            "--scrape-interval",
            "100ms",
            "--json",
        ])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/datasets")
        .join(name)
        .display()
        .to_string()
}

/// One recorded request: scheduled send, actual send, prompt tokens asked, prompt and output
/// tokens the engine reported.
type Sent = (Option<f64>, f64, u32, Option<u32>, Option<u32>);

/// Each request of a run, in recorded order.
fn requests(db: &Path) -> Vec<Sent> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT scheduled_t_s, sent_t_s, prompt_tokens_requested, prompt_tokens_reported,
                completion_tokens_reported FROM requests ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// At 100 req/s for 8 s the client keeps the schedule: the rate it sent at is within 2 % of
/// the rate its gamma schedule drew, and that within three standard errors of the asked rate
/// (`1/√n` of it); every request records how late it left. `inf` sends its step at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_keeps_its_schedule_and_records_how_late_each_send_was() {
    let _serial = crate::sim::serial().await;
    let sim = crate::sim::start(SimFlavor::Vllm, profile(), 1, 1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rate.db");
    let (out, json) = probe(
        &db,
        &sim.base_url(),
        &[
            "--pattern",
            "rate",
            "--rates",
            "100,inf",
            "--duration",
            "8s",
            "--warmup",
            "0",
            "--input-len",
            "32",
            "--output-len",
            "16",
            "--sla-tpot",
            "50ms",
        ],
    )
    .await;
    let truth = sim.truth();
    sim.shutdown().await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rates = json["analysis"]["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 2, "{json:#}");
    let r = &rates[0];
    let n = f(&r["requests"]);
    assert!(n > 600.0, "{r}");
    let (asked, drawn, sent) = (
        f(&r["rate_asked_rps"]),
        f(&r["rate_scheduled_rps"]),
        f(&r["rate_achieved_rps"]),
    );
    eprintln!("asked {asked} drawn {drawn:.2} sent {sent:.2} over {n} arrivals");
    assert_eq!(asked, 100.0);
    assert!((drawn - asked).abs() / asked < 3.0 / n.sqrt(), "{drawn}");
    assert!((sent - drawn).abs() / drawn < 0.02, "{sent} vs {drawn}");
    assert_eq!(r["error_rate"], 0.0);
    assert!(f(&r["ttft_s"]["p99"]) > 0.0 && f(&r["tpot_s"]["p50"]) > 0.004);
    assert!(r["engine_running_mean"].as_f64().is_some(), "{r}");
    // The inf step: 800 requests (the largest finite step's count) at once, so the last ones
    // leave late against a schedule of all-at-zero.
    let inf = &rates[1];
    assert!(inf["rate_asked_rps"].is_null());
    assert_eq!(f(&inf["requests"]), (100.0f64 * 8.0).round());
    assert!(f(&inf["send_lateness_s"]["max"]) > f(&inf["send_lateness_s"]["p50"]));
    // Every request recorded its schedule, and none left before it.
    let reqs = requests(&db);
    assert_eq!(reqs.len() as u64, truth.totals.requests_finished);
    for (sched, sent, ..) in &reqs {
        let sched = sched.unwrap();
        assert!(*sent >= sched - 1e-6, "sent {sent} before {sched}");
    }
    // The fixed-batch findings do not judge an open loop's queue or batch.
    let codes: Vec<&str> = json["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(!codes.contains(&"engine_queueing"), "{codes:?}");
    assert!(!codes.contains(&"no_measurement_window"), "{codes:?}");

    // The report: the open loop's table and charts, and a result.json that validates.
    let report_dir = dir.path().join("report");
    let report = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["report", "latest", "--out"])
        .arg(&report_dir)
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    for chart in [
        "throughput_vs_rate",
        "ttft_vs_rate",
        "tpot_vs_rate",
        "error_rate_vs_rate",
        "queue_vs_rate",
    ] {
        let svg = std::fs::read_to_string(report_dir.join(format!("charts/{chart}.svg"))).unwrap();
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{chart}"
        );
    }
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    assert!(html.contains("Open loop: rate steps") && html.contains("Macro ceiling"));
    // In headless Chromium: every chart laid out, the five rate charts among them.
    let charts = std::fs::read_dir(report_dir.join("charts"))
        .unwrap()
        .count();
    crate::html_render::check_in_chromium(&report_dir.join("report.html"), charts);
    let result: Value =
        serde_json::from_slice(&std::fs::read(report_dir.join("result.json")).unwrap()).unwrap();
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&result)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_eq!(
        result["analysis"]["rates"].as_array().map(Vec::len),
        Some(2)
    );
}

/// A JSONL dataset's lengths are sent exactly, each request's recorded and matched by the
/// engine's usage; `--input-range` draws around the lengths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_and_a_uniform_range_mix_the_lengths_and_record_each() {
    let _serial = crate::sim::serial().await;
    let sim = crate::sim::start(SimFlavor::Vllm, profile(), 1, 1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mix.db");
    let base = [
        "--pattern",
        "rate",
        "--rates",
        "40",
        "--num-prompts",
        "40",
        "--warmup",
        "0",
    ];
    let set = fixture("lengths.jsonl");
    let (out, _) = probe(
        &db,
        &sim.base_url(),
        &[&base[..], &["--dataset", &set, "--output-len", "24"]].concat(),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reqs = requests(&db);
    assert_eq!(reqs.len(), 40);
    // The file's 30 `{prompt_len, output_len}` lines and 10 `{prompt}` lines (output 24),
    // each sent once in a shuffled order.
    let text = std::fs::read_to_string(&set).unwrap();
    let mut want: Vec<u32> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["prompt_len"].as_u64().map(|n| n as u32))
        .collect();
    want.sort_unstable();
    let mut got: Vec<u32> = reqs
        .iter()
        .map(|r| r.2)
        .filter(|n| want.contains(n))
        .collect();
    got.sort_unstable();
    assert!(got.len() >= 30, "{got:?}");
    for (_, _, asked, reported, _) in &reqs {
        assert_eq!(Some(*asked), *reported, "the engine saw the length sent");
    }
    let outputs: std::collections::BTreeSet<u32> = reqs.iter().filter_map(|r| r.4).collect();
    assert!(outputs.len() > 10 && outputs.contains(&24), "{outputs:?}");

    let db2 = dir.path().join("uniform.db");
    let (out, _) = probe(
        &db2,
        &sim.base_url(),
        &[
            &base[..],
            &[
                "--input-len",
                "100",
                "--output-len",
                "20",
                "--input-range",
                "0.5",
            ],
        ]
        .concat(),
    )
    .await;
    sim.shutdown().await;
    assert!(out.status.success());
    let reqs = requests(&db2);
    assert!(reqs.iter().all(|r| (50..=150).contains(&r.2)), "{reqs:?}");
    assert!(reqs.iter().all(|r| (10..=30).contains(&r.4.unwrap())));
    let distinct: std::collections::BTreeSet<u32> = reqs.iter().map(|r| r.2).collect();
    assert!(distinct.len() > 20);
}

/// `--dataset-prompts text` sends each ShareGPT conversation's first turn as it is: the engine
/// counts it (the simulator one token a word), each request records that count and that its
/// prompt was text, and no length mismatch is claimed for the estimate it was asked with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datasets_text_is_sent_as_it_is_and_the_engine_counts_it() {
    let _serial = crate::sim::serial().await;
    let sim = crate::sim::start(SimFlavor::Vllm, profile(), 1, 1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("text.db");
    let set = fixture("sharegpt-synthetic.json");
    let (out, json) = probe(
        &db,
        &sim.base_url(),
        &[
            "--pattern",
            "rate",
            "--rates",
            "40",
            "--num-prompts",
            "60",
            "--warmup",
            "0",
            "--dataset",
            &set,
            "--dataset-prompts",
            "text",
        ],
    )
    .await;
    sim.shutdown().await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The prompts' word counts: what the simulator counts for a text prompt.
    let convs: Value = serde_json::from_str(&std::fs::read_to_string(&set).unwrap()).unwrap();
    let words: std::collections::BTreeSet<u32> = convs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["conversations"][1]["value"].as_str().map(|_| c))
        .map(|c| c["conversations"][0]["value"].as_str().unwrap())
        .map(|t| t.split_whitespace().count() as u32)
        .collect();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(u32, Option<u32>, Option<bool>)> = conn
        .prepare("SELECT prompt_tokens_requested, prompt_tokens_reported, prompt_from_text FROM requests")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 60);
    for (asked, reported, from_text) in &rows {
        assert_eq!(*from_text, Some(true));
        let n = reported.expect("the engine reported its count");
        assert!(words.contains(&n), "{n} is no prompt's word count");
        assert!(*asked > 0);
    }
    // Asked: the text's estimate at four characters a token, which the engine's count is not.
    assert!(
        rows.iter()
            .any(|(asked, reported, _)| Some(*asked) != *reported)
    );
    let codes: Vec<&str> = json["analysis"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    assert!(!codes.contains(&"length_mismatch"), "{codes:?}");
}

/// A malformed dataset is a usage error (exit 2) naming its line, and the engine received
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_dataset_is_refused_before_anything_is_sent() {
    let _serial = crate::sim::serial().await;
    let sim = crate::sim::start(SimFlavor::Vllm, profile(), 1, 1.0).await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"prompt_len\": 10, \"output_len\": 8}\n{\"prompt_len\": \"ten\"}\n",
    )
    .unwrap();
    let db = dir.path().join("bad.db");
    let (out, _) = probe(
        &db,
        &sim.base_url(),
        &[
            "--pattern",
            "rate",
            "--rates",
            "5",
            "--dataset",
            bad.to_str().unwrap(),
        ],
    )
    .await;
    let truth = sim.truth();
    sim.shutdown().await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2 is neither"), "{err}");
    assert_eq!(
        truth.totals.requests_finished + truth.totals.requests_aborted,
        0
    );
}
