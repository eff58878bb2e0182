//! Nothing leaks, nothing injects: the API key given by `--api-key-env` reaches no artefact of a
//! run (database, WAL, stdout, stderr, report.html, report.md, result.json, charts), not even
//! when the engine echoes it in an error body; strings from the engine (a model named
//! `<script>…` with terminal escape sequences) are escaped in the reports and stripped of
//! control sequences before they are printed.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::Output;

use ceiling::sim::{Faults, SimFlavor};

use crate::cli::ceiling;

const KEY: &str = "sk-ceiling-test-0123456789abcdef";
/// Markup that would run or fetch if spliced into the page (a fetch of `x` that fails, or a
/// `console.log`, is a console message Chromium reports), terminal escapes, and SQL.
const HOSTILE_MODEL: &str = "<script>alert(1)</script><img src=x onerror=console.log(1)>\u{1b}[2J\u{1b}]0;pwned\u{7}'); DROP TABLE runs; --";

async fn run(args: Vec<String>) -> Output {
    let mut cmd = ceiling();
    cmd.env("CEILING_TEST_KEY", KEY).args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn args(db: &Path, rest: &[&str]) -> Vec<String> {
    let mut v = vec!["--db".to_string(), db.display().to_string()];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// Every file under `dir` (recursively) as bytes, with its path.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_reaches_no_artefact_and_engine_strings_are_escaped() {
    let _serial = crate::sim::serial().await;
    let mut cfg = ceiling::sim::SimConfig::new(ceiling::sim::Profile {
        model: HOSTILE_MODEL.into(),
        ..crate::sim::tiny()
    });
    cfg.flavor = SimFlavor::Vllm;
    cfg.faults = Faults::default();
    let h = ceiling::sim::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("leak.db");
    let out_dir = dir.path().join("report");
    let base = h.base_url();
    let probe = run(args(
        &db,
        &[
            "probe",
            "--url",
            &base,
            "--api-key-env",
            "CEILING_TEST_KEY",
            "--gpu-interval",
            "0s",
            "--batch-sizes",
            "2",
            "--output-len",
            "8",
        ],
    ))
    .await;
    assert!(probe.status.success(), "{probe:?}");
    let report = run(args(
        &db,
        &[
            "report",
            "latest",
            "--out",
            &out_dir.display().to_string(),
            "--format",
            "html,md,json",
        ],
    ))
    .await;
    assert!(report.status.success(), "{report:?}");
    let runs = run(args(&db, &["runs", "show", "latest"])).await;
    let mut artefacts = files(dir.path());
    for (name, o) in [("probe", &probe), ("report", &report), ("runs", &runs)] {
        artefacts.push((format!("{name} stdout"), o.stdout.clone()));
        artefacts.push((format!("{name} stderr"), o.stderr.clone()));
    }
    assert!(artefacts.iter().any(|(n, _)| n.ends_with("report.html")));
    for (name, bytes) in &artefacts {
        assert!(!contains(bytes, KEY.as_bytes()), "the API key is in {name}");
    }

    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(!html.contains("<script>alert"), "unescaped in report.html");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the name is shown as text"
    );
    assert!(!html.contains("<img src=x"), "unescaped in report.html");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    // Markdown escapes with a backslash (GFM renders `\<` as a literal `<`): every `<` and
    // `>` of the name is escaped.
    assert!(
        md.contains(r"\<script\>alert(1)\</script\>\<img src=x onerror=console.log(1)\>"),
        "unescaped in report.md"
    );
    assert!(!md.contains("<script>"), "unescaped in report.md");

    // In a browser: nothing runs, nothing is fetched (check_html.sh counts console messages).
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_html.sh");
    let shot = dir.path().join("shot.png");
    let html_path = out_dir.join("report.html");
    let chromium = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg(script)
            .arg(html_path)
            .arg(shot)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let seen = String::from_utf8_lossy(&chromium.stdout);
    assert!(
        seen.lines().any(|l| l == "console: 0"),
        "check_html.sh (Debian's chromium, which .ci/run installs): {chromium:?}"
    );

    // The name went into the database as a value, not as SQL, and comes back whole.
    let listed = run(args(&db, &["runs", "--json"])).await;
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v[0]["model"], HOSTILE_MODEL, "{v}");
    for (name, o) in [("probe", &probe), ("report", &report), ("runs", &runs)] {
        for stream in [&o.stdout, &o.stderr] {
            assert!(
                !stream.iter().any(|&b| b == 0x1b || b == 0x07),
                "a control character from the engine reached the terminal via `{name}`: {}",
                String::from_utf8_lossy(stream)
            );
        }
    }
    h.shutdown().await;
}
