//! A hostile engine on 127.0.0.1: a raw TCP server answering with what no engine should send
//! (a 100 MB chunk, a line that never ends, no `[DONE]`, invalid UTF-8, JSON 100,000 deep,
//! headers one byte a second, a lying `usage` or `Content-Length`, a redirect, a `/metrics` of
//! 1 GB or of 10 million series). Every answer is generated as it is written, never held.
//!
//! Each request must end as a failure of its kind, and the probe and the scraper must stop
//! reading at their limits: the server counts the bytes the kernel accepted before the client
//! hung up, which bounds what the client read and held (plus the sockets' buffers).
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ceiling::config::Endpoint;
use ceiling::probe::client::{EngineClient, EngineQuirks, MAX_EVENT_BYTES, RequestSlot};
use ceiling::probe::workload::Prompt;
use ceiling_reports::{Outcome, RequestRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

mod metrics;
mod two_clients;
mod whole_run;

/// What a socket's buffers can hold beyond what the client read (loopback autotuning reaches a
/// few MiB each way): the slack allowed over a limit in the byte counts below.
const SOCKET_SLACK: u64 = 16 << 20;

/// A server whose every connection is answered by `answer` once the request is read; returns
/// the base URL and the count of bytes written.
async fn hostile<F, Fut>(answer: F) -> (String, Arc<AtomicU64>)
where
    F: Fn(TcpStream, Arc<AtomicU64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (answer, w) = (answer.clone(), w.clone());
            tokio::spawn(async move {
                read_request(&mut sock).await;
                answer(sock, w).await;
            });
        }
    });
    (format!("http://{addr}"), written)
}

/// Reads one request's head and its `Content-Length` body; returns the head.
async fn read_request(sock: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        let Ok(n) = sock.read(&mut byte).await else {
            return String::new();
        };
        if n == 0 {
            return String::new();
        }
        buf.extend_from_slice(&byte[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < len {
        match sock.read(&mut byte).await {
            Ok(0) | Err(_) => break,
            Ok(n) => have += n,
        }
    }
    head
}

/// Writes `bytes`, counting them; false once the client has gone.
async fn put(sock: &mut TcpStream, bytes: &[u8], written: &AtomicU64) -> bool {
    let ok = sock.write_all(bytes).await.is_ok();
    if ok {
        written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
    ok
}

/// Writes `piece` again and again, up to `total` bytes or until the client goes.
async fn pour(sock: &mut TcpStream, piece: &[u8], total: u64, written: &AtomicU64) {
    let mut sent = 0;
    while sent < total && put(sock, piece, written).await {
        sent += piece.len() as u64;
    }
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

fn chunk(text: &str) -> String {
    format!("data: {{\"id\":\"r\",\"choices\":[{{\"index\":0,\"text\":\"{text}\"}}]}}\n\n")
}

/// One streamed request through the probe's own client, with the probe's own HTTP client.
async fn probe_once(base: &str, timeout: Duration) -> RequestRecord {
    probe_with(base, timeout, false).await
}

/// One streamed request; through reqwest (the client of an `https` engine) where `general`.
async fn probe_with(base: &str, timeout: Duration, general: bool) -> RequestRecord {
    let http = ceiling::run::http_client().unwrap();
    let mut client = EngineClient::new(
        http,
        base,
        Some("sk-hostile-test".into()),
        "m".into(),
        Endpoint::Completions,
        EngineQuirks::default(),
        timeout,
    );
    if general {
        client = client.with_general_client();
    }
    assert_eq!(
        client.http_client_name(),
        if general { "reqwest" } else { "own" }
    );
    let slot = RequestSlot {
        step_idx: 0,
        worker: 0,
        wave: None,
        warmup: false,
    };
    let t0 = Instant::now();
    client
        .stream(
            slot,
            &Prompt::Text("hi".into()),
            1,
            4,
            t0,
            &CancellationToken::new(),
        )
        .await
}

/// The client stopped reading at `limit`: the server could not write more than that and what
/// the sockets' buffers hold.
fn assert_read_at_most(written: &AtomicU64, limit: usize) {
    let n = written.load(Ordering::Relaxed);
    eprintln!("limit {limit} B: the server wrote {n} B before the client hung up");
    assert!(n < limit as u64 + SOCKET_SLACK, "{n} bytes written");
}

fn assert_outcome(rec: &RequestRecord, outcome: Outcome, says: &str) {
    assert_eq!(rec.outcome, outcome, "{rec:?}");
    let error = rec.error.as_deref().unwrap_or_default();
    assert!(error.contains(says), "{error}");
    assert!(rec.done_t_s.is_some(), "the request is closed");
}

#[tokio::test]
async fn a_100_mb_chunk_is_cut_at_the_event_limit() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (base, written) = hostile(|mut s, w| async move {
        if put(&mut s, SSE_HEAD, &w).await && put(&mut s, b"data: ", &w).await {
            pour(&mut s, &[b'a'; 65536], 100 << 20, &w).await;
            put(&mut s, b"\n\n", &w).await;
        }
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::MalformedSse, "longer than 1048576 bytes");
    assert_read_at_most(&written, MAX_EVENT_BYTES);
}

#[tokio::test]
async fn a_line_that_never_ends_is_cut_at_the_event_limit() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (base, written) = hostile(|mut s, w| async move {
        let start = b"data: {\"id\":\"r\",\"choices\":[{\"text\":\"";
        if put(&mut s, SSE_HEAD, &w).await && put(&mut s, start, &w).await {
            // Without end: only the client hanging up stops it (the bound keeps a broken
            // client from filling the test machine's memory).
            pour(&mut s, &[b'x'; 4096], 1 << 40, &w).await;
        }
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::MalformedSse, "longer than");
    assert_read_at_most(&written, MAX_EVENT_BYTES);
}

#[tokio::test]
async fn many_lines_of_one_event_are_cut_at_the_event_limit() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    // SSE joins the `data:` lines of one event: each line is short, the event is not.
    let (base, written) = hostile(|mut s, w| async move {
        if put(&mut s, SSE_HEAD, &w).await {
            pour(
                &mut s,
                &[b"data: ".as_slice(), &[b'y'; 1000], b"\n"].concat(),
                1 << 40,
                &w,
            )
            .await;
        }
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::MalformedSse, "longer than");
    assert_read_at_most(&written, MAX_EVENT_BYTES);
}

#[tokio::test]
async fn a_stream_without_done_times_out_or_is_cut() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (open, _) = hostile(|mut s, w| async move {
        if put(&mut s, SSE_HEAD, &w).await && put(&mut s, chunk("a").as_bytes(), &w).await {
            // Stays open, silent.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    })
    .await;
    let rec = probe_once(&open, Duration::from_millis(800)).await;
    assert_outcome(&rec, Outcome::Timeout, "--request-timeout");
    assert_eq!(rec.chunks.len(), 1, "what arrived is kept");

    let (closed, _) = hostile(|mut s, w| async move {
        let _ = put(&mut s, SSE_HEAD, &w).await && put(&mut s, chunk("a").as_bytes(), &w).await;
    })
    .await;
    let rec = probe_once(&closed, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::StreamCut, "without `data: [DONE]`");
}

#[tokio::test]
async fn invalid_utf8_is_malformed() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (base, _) = hostile(|mut s, w| async move {
        let _ = put(&mut s, SSE_HEAD, &w).await
            && put(
                &mut s,
                b"data: {\"id\":\"\xff\xfe\"}\n\ndata: [DONE]\n\n",
                &w,
            )
            .await;
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_eq!(rec.outcome, Outcome::MalformedSse, "{rec:?}");
}

#[tokio::test]
async fn json_nested_100000_deep_is_malformed_not_a_stack_overflow() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let deep = |field: &'static str| {
        move |mut s: TcpStream, w: Arc<AtomicU64>| async move {
            let body = format!(
                "data: {{\"{field}\":{}{}}}\n\ndata: [DONE]\n\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            );
            let _ = put(&mut s, SSE_HEAD, &w).await && put(&mut s, body.as_bytes(), &w).await;
        }
    };
    // `error` takes any JSON value: serde_json's depth limit (128) stops it.
    for (field, says) in [("error", "recursion limit"), ("choices", ""), ("usage", "")] {
        let (base, _) = hostile(deep(field)).await;
        let rec = probe_once(&base, Duration::from_secs(30)).await;
        assert_outcome(&rec, Outcome::MalformedSse, says);
    }
}

#[tokio::test]
async fn headers_dribbled_one_byte_a_second_time_out() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (base, written) = hostile(|mut s, w| async move {
        for b in SSE_HEAD {
            if !put(&mut s, &[*b], &w).await {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let rec = probe_once(&base, Duration::from_millis(1500)).await;
    assert_outcome(&rec, Outcome::Timeout, "--request-timeout");
    assert_eq!(rec.headers_t_s, None);
    assert!(written.load(Ordering::Relaxed) < 5);
}

#[tokio::test]
async fn a_lying_usage_is_kept_as_the_engine_said_and_never_overflows() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    // Three text chunks, then a usage claiming u32::MAX tokens: kept as reported (the
    // analysis compares it with the chunks), no arithmetic overflows.
    let (base, _) = hostile(|mut s, w| async move {
        let body = format!(
            "{}{}{}data: {{\"id\":\"r\",\"choices\":[],\"usage\":{{\"prompt_tokens\":0,\"completion_tokens\":4294967295}}}}\n\ndata: [DONE]\n\n",
            chunk("a"),
            chunk("b"),
            chunk("c")
        );
        let _ = put(&mut s, SSE_HEAD, &w).await && put(&mut s, body.as_bytes(), &w).await;
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_eq!(rec.outcome, Outcome::Ok, "{rec:?}");
    assert_eq!(rec.completion_tokens_reported, Some(u32::MAX));
    assert_eq!(rec.chunks.len(), 3);

    // A count that fits no u32 (or is negative) is not a usage: the chunk is malformed.
    for lie in ["4294967296", "-3", "1e400"] {
        let body = format!(
            "{}data: {{\"choices\":[],\"usage\":{{\"completion_tokens\":{lie}}}}}\n\ndata: [DONE]\n\n",
            chunk("a")
        );
        let (base, _) = hostile(move |mut s, w| {
            let body = body.clone();
            async move {
                let _ = put(&mut s, SSE_HEAD, &w).await && put(&mut s, body.as_bytes(), &w).await;
            }
        })
        .await;
        let rec = probe_once(&base, Duration::from_secs(30)).await;
        assert_eq!(rec.outcome, Outcome::MalformedSse, "{lie}: {rec:?}");
    }
}

#[tokio::test]
async fn a_lying_content_length_cuts_the_stream() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let done = format!("{}data: [DONE]\n\n", chunk("a"));
    for (body, claimed, says) in [
        // The connection closes 1000 bytes short of what was promised.
        (
            chunk("a"),
            chunk("a").len() + 1000,
            "closed 1000 bytes short of the body's Content-Length",
        ),
        // The body goes on past what was promised: `[DONE]` is never read.
        (done.clone(), done.len() - 20, "without `data: [DONE]`"),
    ] {
        let body = body.clone();
        let (base, _) = hostile(move |mut s, w| {
            let body = body.clone();
            async move {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {claimed}\r\nconnection: close\r\n\r\n"
                );
                let _ = put(&mut s, head.as_bytes(), &w).await
                    && put(&mut s, body.as_bytes(), &w).await;
            }
        })
        .await;
        let rec = probe_once(&base, Duration::from_secs(30)).await;
        assert_outcome(&rec, Outcome::StreamCut, says);
    }
}

#[tokio::test]
async fn a_redirect_is_an_http_error_and_is_not_followed() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (elsewhere, reached) = hostile(|mut s, w| async move {
        let _ = put(&mut s, b"x", &w).await;
    })
    .await;
    let to = format!("{elsewhere}/v1/completions");
    let (base, _) = hostile(move |mut s, w| {
        let head = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        async move {
            let _ = put(&mut s, head.as_bytes(), &w).await;
        }
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::HttpError, "307");
    assert_eq!(rec.http_status, Some(307));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        reached.load(Ordering::Relaxed),
        0,
        "the other host was never asked"
    );
}

#[tokio::test]
async fn a_huge_error_body_is_read_only_to_its_limit() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (base, written) = hostile(|mut s, w| async move {
        if put(
            &mut s,
            b"HTTP/1.1 500 Oops\r\nconnection: close\r\n\r\n",
            &w,
        )
        .await
        {
            pour(&mut s, &[b'e'; 65536], 1 << 40, &w).await;
        }
    })
    .await;
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::HttpError, "HTTP 500");
    assert!(rec.error.as_deref().unwrap().chars().count() < 400);
    assert_read_at_most(&written, 0);
}

#[tokio::test]
async fn an_error_body_that_echoes_the_request_does_not_leak_the_key() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let head = read_request(&mut s).await;
        let resp = format!(
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
            head.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
    });
    let rec = probe_once(&base, Duration::from_secs(30)).await;
    assert_outcome(&rec, Outcome::HttpError, "Bearer ***");
    assert!(!rec.error.unwrap().contains("sk-hostile-test"));
}

/// A `/metrics` answer's head (the scrape tests and the whole run's engine).
const METRICS_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\nconnection: close\r\n\r\n";
