//! `ceiling probe` against an engine whose every request misbehaves in its own way and whose
//! `/metrics` is 1 GB: the run finishes, each request is recorded by its kind, the scrapes as
//! failures, and the process stays small.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ceiling::store::Store;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use super::{METRICS_HEAD, SSE_HEAD, chunk, pour, read_request};

/// The answer to the `n`-th completion request and the outcome it must be recorded as.
const PLAN: [&str; 8] = [
    "ok",
    "malformed_sse",
    "malformed_sse",
    "malformed_sse",
    "stream_cut",
    "http_error",
    "stream_cut",
    "ok",
];

async fn answer(n: usize, s: &mut tokio::net::TcpStream, w: &std::sync::atomic::AtomicU64) {
    let ok = format!(
        "{}{}data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":4,\"completion_tokens\":2}}}}\n\ndata: [DONE]\n\n",
        chunk("a"),
        chunk("b")
    );
    let body: Vec<u8> = match n % PLAN.len() {
        1 => {
            // A line that never ends.
            let _ = s.write_all(SSE_HEAD).await;
            pour(s, &[b'x'; 4096], 1 << 40, w).await;
            return;
        }
        2 => [SSE_HEAD, b"data: \xff\xfe\n\n".as_slice()].concat(),
        3 => [
            SSE_HEAD,
            format!("data: {}\n\n", "[".repeat(100_000)).as_bytes(),
        ]
        .concat(),
        4 => [SSE_HEAD, chunk("a").as_bytes()].concat(),
        5 => b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/v1/completions\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
        6 => format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 100000\r\n\r\n{}",
            chunk("a")
        )
        .into_bytes(),
        _ => [SSE_HEAD, ok.as_bytes()].concat(),
    };
    let _ = s.write_all(&body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_hostile_engine_finishes_with_every_request_by_kind() {
    let _serial = crate::sim::serial().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let posts = Arc::new(AtomicUsize::new(0));
    let p = posts.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let p = p.clone();
            tokio::spawn(async move {
                let head = read_request(&mut s).await;
                let w = std::sync::atomic::AtomicU64::new(0);
                if head.starts_with("POST") {
                    answer(p.fetch_add(1, Ordering::SeqCst), &mut s, &w).await;
                } else if head.starts_with("GET /metrics") {
                    if s.write_all(METRICS_HEAD).await.is_ok() {
                        let line = b"vllm:num_requests_running 1\n".repeat(1000);
                        pour(&mut s, &line, 1 << 30, &w).await;
                    }
                } else if head.starts_with("GET /v1/models") {
                    let body = r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#;
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
                                .as_bytes(),
                        )
                        .await;
                } else {
                    let _ = s
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostile.db");
    let mut cmd = crate::cli::ceiling();
    cmd.arg("--db").arg(&db).args([
        "probe",
        "--url",
        &base,
        "--model",
        "m",
        "--gpu-interval",
        "0s",
        "--batch-sizes",
        "1",
        "--waves",
        "8",
        "--warmup",
        "0",
        "--input-len",
        "4",
        "--output-len",
        "2",
        // Every case ends by itself; the timeout only keeps a loaded machine from turning a
        // slow case into a `timeout`.
        "--request-timeout",
        "60s",
        "--scrape-interval",
        "1s",
        "--json",
    ]);
    let out = tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new("/usr/bin/time");
        c.arg("-f")
            .arg("maxrss_kb=%M")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let store = Store::open(&db).unwrap();
    let run = &store.list_runs().unwrap()[0];
    assert_ne!(run.status.as_str(), "running", "{stderr}");
    let mut kinds: Vec<&str> = store
        .load_requests(run.id)
        .unwrap()
        .iter()
        .map(|r| r.outcome.as_str())
        .collect();
    kinds.sort_unstable();
    let mut want = PLAN.to_vec();
    want.sort_unstable();
    assert_eq!(kinds, want, "{stderr}");
    let scrapes = store.load_scrapes(run.id).unwrap();
    assert!(!scrapes.is_empty());
    assert!(
        scrapes
            .iter()
            .all(|s| s.error.is_some() && s.samples.is_empty())
    );
    // The probe's own peak memory while its engine served 1 GB bodies and an endless line.
    let rss_kb: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    eprintln!("ceiling probe against the hostile engine: max RSS {rss_kb} kB");
    assert!(rss_kb < 200_000, "{rss_kb} kB");
}
