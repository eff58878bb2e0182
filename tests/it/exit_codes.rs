//! Every exit code of README's table, through the `ceiling` binary: 0 success, 1 a tripped gate,
//! 2 usage or input error, 3 an engine that cannot be reached. Code 4 (a bug) has no honest
//! trigger from outside; `ceiling::exit`'s unit tests cover it (an untyped error, a panic).

use std::process::Output;

use crate::analyze::{record, record_with};
use crate::cli::ceiling;

fn run_ceiling(db: &std::path::Path, args: &[&str]) -> Output {
    ceiling()
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("the ceiling binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn success_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    assert_eq!(run_ceiling(&db, &["runs"]).status.code(), Some(0));
    record(&db);
    let out = run_ceiling(&db, &["analyze", "--gate", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "error"),
        "a clean recording passes the gate"
    );
}

#[test]
fn an_error_finding_trips_the_gate_with_exit_1_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    // Three measured requests of the first step came back one token short.
    record_with(&db, |rec| {
        let measured = rec
            .requests
            .iter_mut()
            .filter(|r| r.step_idx == 0 && !r.warmup);
        for r in measured.take(3) {
            r.completion_tokens_reported = r.completion_tokens_reported.map(|n| n - 1);
        }
    });
    let out = run_ceiling(&db, &["analyze", "--gate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error length_mismatch"), "{text}");
    assert!(stderr(&out).contains("gate"), "{}", stderr(&out));
    assert_eq!(run_ceiling(&db, &["analyze"]).status.code(), Some(0));
}

#[test]
fn usage_and_input_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    // Clap's own parse error, and a value only the validation refuses.
    let out = run_ceiling(&db, &["analyze", "--sla-otps", "fast"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    record(&db);
    let out = run_ceiling(&db, &["analyze", "--sla-otps", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--sla-otps"), "{}", stderr(&out));
    // A run that is not there.
    let out = run_ceiling(&db, &["analyze", "9"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no run 9"), "{}", stderr(&out));
    // A model config that is not JSON.
    let bad = dir.path().join("config.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let out = run_ceiling(&db, &["analyze", "--model-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A database file that is not one.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'z'; 8192]).unwrap();
    let out = run_ceiling(&junk, &["analyze"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("bug"),
        "an input error is not reported as a bug: {}",
        stderr(&out)
    );
}

#[test]
fn an_engine_that_cannot_be_reached_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let args =
        format!("probe --url http://127.0.0.1:{port} --batch-sizes 1 --input-len 8 --output-len 8");
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = run_ceiling(&db, &args);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
