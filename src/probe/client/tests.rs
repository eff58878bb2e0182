//! The client on canned SSE chunks and on a server that drops the first connection.

use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};

fn rec() -> RequestRecord {
    RequestRecord {
        scheduled_t_s: None,
        response_id: None,
        step_idx: 0,
        worker: 0,
        wave: None,
        warmup: false,
        sent_t_s: 0.0,
        headers_t_s: None,
        first_token_t_s: None,
        first_answer_t_s: None,
        done_t_s: None,
        prompt_tokens_requested: 4,
        completion_tokens_requested: 4,
        prompt_tokens_reported: None,
        completion_tokens_reported: None,
        cached_tokens_reported: None,
        prompt_from_text: false,
        outcome: Outcome::Ok,
        http_status: None,
        error: None,
        chunks: vec![],
    }
}

fn feed(r: &mut RequestRecord, json: &str, at: f64, so_far: &mut Option<u32>) {
    let c: StreamChunk = serde_json::from_str(json).unwrap();
    record_chunk(r, &c, at, so_far);
}

#[test]
fn reasoning_then_answer_chunks_set_both_first_token_instants() {
    let mut r = rec();
    let mut n = None;
    feed(
        &mut r,
        r#"{"choices":[{"delta":{"role":"assistant"}}]}"#,
        0.1,
        &mut n,
    );
    feed(
        &mut r,
        r#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#,
        0.2,
        &mut n,
    );
    feed(
        &mut r,
        r#"{"choices":[{"delta":{"content":"hi"}}]}"#,
        0.3,
        &mut n,
    );
    assert_eq!(r.first_token_t_s, Some(0.2));
    assert_eq!(r.first_answer_t_s, Some(0.3));
    assert_eq!(r.chunks.len(), 2, "the role-only delta carries no token");
    assert_eq!(r.chunks[0].kind, ChunkKind::Reasoning);
}

#[test]
fn continuous_usage_gives_tokens_per_chunk_and_final_usage_is_kept() {
    let mut r = rec();
    let mut n = None;
    let c1 = r#"{"choices":[{"text":"a"}],"usage":{"prompt_tokens":4,"completion_tokens":1}}"#;
    let c2 = r#"{"choices":[{"text":"bc"}],"usage":{"prompt_tokens":4,"completion_tokens":3}}"#;
    let fin = r#"{"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}}"#;
    feed(&mut r, c1, 0.1, &mut n);
    feed(&mut r, c2, 0.2, &mut n);
    feed(&mut r, fin, 0.3, &mut n);
    let toks: Vec<_> = r.chunks.iter().map(|c| c.tokens).collect();
    assert_eq!(toks, vec![Some(1), Some(2)]);
    assert_eq!(r.prompt_tokens_reported, Some(4));
    assert_eq!(r.completion_tokens_reported, Some(3));
    assert_eq!(r.cached_tokens_reported, Some(0));
}

#[test]
fn final_usage_on_the_last_text_chunk_is_not_that_chunks_token_count() {
    // llama.cpp /v1/completions: usage only on the chunk with finish_reason.
    let mut r = rec();
    let mut n = None;
    feed(&mut r, r#"{"choices":[{"text":"a"}]}"#, 0.1, &mut n);
    feed(&mut r, r#"{"choices":[{"text":"b"}]}"#, 0.2, &mut n);
    let fin = r#"{"choices":[{"text":"c","finish_reason":"length"}],"usage":{"prompt_tokens":4,"completion_tokens":3}}"#;
    feed(&mut r, fin, 0.3, &mut n);
    let toks: Vec<_> = r.chunks.iter().map(|c| c.tokens).collect();
    assert_eq!(toks, vec![None, None, None]);
    assert_eq!(r.completion_tokens_reported, Some(3));
}

/// A server that closes its first connection after reading the request, with no response
/// byte (what hyper calls "connection closed before message completed"), then streams one
/// token on the second.
fn closes_first_connection() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let read_request = |c: &mut std::net::TcpStream| {
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("\"stream\":true") {
                let n = c.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        };
        let (mut first, _) = listener.accept().unwrap();
        read_request(&mut first);
        drop(first);
        let (mut second, _) = listener.accept().unwrap();
        read_request(&mut second);
        let body = "data: {\"choices\":[{\"text\":\"a\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        second.write_all(head.as_bytes()).unwrap();
        second.write_all(body.as_bytes()).unwrap();
    });
    url
}

/// One streamed completion of `prompt` (asking `max_tokens`) from the engine at `url`, as the
/// probe records it, on a runtime of its own.
pub(super) fn stream_once(url: &str, prompt: &[u32], max_tokens: u32) -> RequestRecord {
    let mut recs = stream_in_turn(url, prompt, max_tokens, 1, false);
    recs.remove(0)
}

/// A request slot outside any step's bookkeeping.
const SLOT: RequestSlot = RequestSlot {
    step_idx: 0,
    worker: 0,
    wave: None,
    warmup: false,
};

/// The client of the tests against `url`: the probe's own, or reqwest where `general`.
fn test_client(url: &str, general: bool) -> EngineClient {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let client = EngineClient::new(
        http,
        url,
        None,
        "m".into(),
        Endpoint::Completions,
        EngineQuirks::default(),
        Duration::from_secs(10),
    );
    if general {
        client.with_general_client()
    } else {
        client
    }
}

/// `n` streamed completions one after the other through one client: the probe's own, or
/// reqwest where `general`.
fn stream_in_turn(
    url: &str,
    prompt: &[u32],
    max_tokens: u32,
    n: usize,
    general: bool,
) -> Vec<RequestRecord> {
    crate::install_tls_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = test_client(url, general);
        let slot = SLOT;
        let input_len = u32::try_from(prompt.len()).unwrap();
        let mut recs = Vec::new();
        for _ in 0..n {
            let prompt = Prompt::Tokens(prompt.to_vec());
            let cancel = CancellationToken::new();
            let t0 = Instant::now();
            recs.push(
                client
                    .stream(slot, &prompt, input_len, max_tokens, t0, &cancel)
                    .await,
            );
        }
        recs
    })
}

#[test]
fn a_connection_closed_before_any_byte_is_retried_once() {
    for general in [false, true] {
        let url = closes_first_connection();
        let r = stream_in_turn(&url, &[5, 6], 1, 1, general).remove(0);
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.completion_tokens_reported, Some(1));
        assert_eq!(r.chunks.len(), 1);
    }
}

/// A server answering every request of a connection with one token in HTTP chunks, the last
/// chunk `last_after` after `[DONE]`, keeping the connection unless `close`; returns its URL
/// and the count of connections it accepted.
fn keeps_connections(close: bool, last_after: Duration) -> (String, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    let mut got = Vec::new();
                    while !String::from_utf8_lossy(&got).contains("\"stream\":true") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let event = "data: {\"choices\":[{\"text\":\"a\"}],\"usage\":{\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
                    let connection = if close { "connection: close\r\n" } else { "" };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n{connection}\r\n{:x}\r\n{event}\r\n",
                        event.len()
                    );
                    if conn.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    std::thread::sleep(last_after);
                    if conn.write_all(b"0\r\n\r\n").is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[test]
fn a_connection_is_kept_for_the_next_request_unless_the_response_forbids_it() {
    for (close, last_after, connections) in [
        (false, Duration::ZERO, 1),
        // `connection: close`: one connection a request.
        (true, Duration::ZERO, 5),
        // The last chunk later than the probe waits for after `[DONE]`: the connection is
        // dropped, the request is complete all the same.
        (false, Duration::from_millis(200), 5),
    ] {
        let (url, accepted) = keeps_connections(close, last_after);
        let recs = stream_in_turn(&url, &[1], 1, 5, false);
        for r in &recs {
            assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
            assert_eq!(r.chunks.len(), 1);
            assert!(
                r.done_t_s.unwrap() - r.sent_t_s < 0.15,
                "done at [DONE]: {r:?}"
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            connections,
            "close {close}, last chunk after {last_after:?}"
        );
    }
}

#[test]
fn chunks_without_usage_have_unknown_token_counts() {
    let mut r = rec();
    let mut n = None;
    feed(&mut r, r#"{"choices":[{"text":"a"}]}"#, 0.1, &mut n);
    assert_eq!(r.chunks[0].tokens, None);
}

#[test]
fn escaped_text_and_ids_read_like_plain_ones() {
    let mut r = rec();
    let mut n = None;
    let events: [&[u8]; 4] = [
        br#"{"id":"cmpl-\u0041b","choices":[{"delta":{"content":""}}]}"#,
        br#"{"id":"cmpl-Ab","choices":[{"delta":{"content":"\n"}}]}"#,
        br#"{"id":"cmpl-Ab","choices":[{"text":"\u00e9t\u00e9"}]}"#,
        b" [DONE] ",
    ];
    let read: Vec<_> = events
        .iter()
        .zip([0.1, 0.2, 0.3, 0.4])
        .map(|(e, at)| read_event(&mut r, e, at, &mut n))
        .collect();
    assert_eq!(read, [Ok(true), Ok(true), Ok(true), Ok(false)]);
    assert_eq!(r.response_id.as_deref(), Some("cmpl-Ab"));
    assert_eq!(
        r.chunks.iter().map(|c| c.t_s).collect::<Vec<_>>(),
        [0.2, 0.3],
        "the empty content carries no token; escaped text does"
    );
    assert_eq!(r.done_t_s, Some(0.4));
}

#[test]
fn bad_json_and_engine_errors_end_the_request_by_kind() {
    let mut r = rec();
    let mut n = None;
    let bad = read_event(&mut r, b"{\"choices\":[{\"text\":7}]}", 0.1, &mut n);
    assert!(matches!(bad, Err((Outcome::MalformedSse, ref e)) if e.contains("choices")));
    let err = read_event(
        &mut r,
        br#"{"error":{"message":"overloaded"}}"#,
        0.2,
        &mut n,
    );
    assert!(matches!(err, Err((Outcome::EngineError, ref e)) if e.contains("overloaded")));
    // Invalid UTF-8 inside a string: the event is checked whole before serde_json reads it.
    let bytes = b"{\"choices\":[{\"text\":\"\xff\"}]}";
    let bad_utf8 = read_event(&mut r, bytes, 0.3, &mut n);
    assert!(matches!(bad_utf8, Err((Outcome::MalformedSse, ref e)) if e.contains("invalid utf-8")));
    assert!(r.chunks.is_empty());
}

/// A server that answers one request at once and says when it wrote the answer; it tells
/// `read` when it has read the request.
fn answers_at_once(
    read: Arc<tokio::sync::Notify>,
) -> (String, Arc<std::sync::Mutex<Option<Instant>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = Arc::new(std::sync::Mutex::new(None));
    let w = written.clone();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\"stream\":true") {
            let n = conn.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        read.notify_one();
        let body = "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n";
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(resp.as_bytes()).unwrap();
        *w.lock().unwrap() = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(500));
    });
    (url, written)
}

#[test]
fn a_late_client_records_when_the_bytes_arrived_not_when_it_read_them() {
    crate::install_tls_provider();
    for general in [false, true] {
        let read = Arc::new(tokio::sync::Notify::new());
        let (url, written) = answers_at_once(read.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (rec, t0, unblocked) = rt.block_on(async {
            // Once the server has the request, the client's one thread is busy for 300 ms.
            let blocker = tokio::spawn(async move {
                read.notified().await;
                std::thread::sleep(Duration::from_millis(300));
                Instant::now()
            });
            let client = test_client(&url, general);
            let slot = SLOT;
            let t0 = Instant::now();
            let cancel = CancellationToken::new();
            let rec = client
                .stream(slot, &Prompt::Tokens(vec![1]), 1, 1, t0, &cancel)
                .await;
            (rec, t0, blocker.await.unwrap())
        });
        assert_eq!(rec.outcome, Outcome::Ok, "{:?}", rec.error);
        let written = written.lock().unwrap().unwrap();
        let first = t0 + Duration::from_secs_f64(rec.first_token_t_s.unwrap());
        let headers = t0 + Duration::from_secs_f64(rec.headers_t_s.unwrap());
        if general {
            // reqwest reads when the thread is free again.
            assert!(
                first >= unblocked,
                "general client: {first:?} before {unblocked:?}"
            );
        } else {
            // The kernel's stamp: at the server's write, ~300 ms before the client read it.
            assert!(
                first <= written + Duration::from_millis(5),
                "{first:?} vs {written:?}"
            );
            assert!(first + Duration::from_millis(150) < unblocked);
            assert!(headers <= first);
        }
    }
}
