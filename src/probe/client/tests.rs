//! The client on canned SSE chunks and on a server that drops the first connection.

use super::*;

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
    crate::install_tls_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
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
        let slot = RequestSlot {
            step_idx: 0,
            worker: 0,
            wave: None,
            warmup: false,
        };
        let input_len = u32::try_from(prompt.len()).unwrap();
        client
            .stream(
                slot,
                &Prompt::Tokens(prompt.to_vec()),
                input_len,
                max_tokens,
                Instant::now(),
                &CancellationToken::new(),
            )
            .await
    })
}

#[test]
fn a_connection_closed_before_any_byte_is_retried_once() {
    let url = closes_first_connection();
    let r = stream_once(&url, &[5, 6], 1);
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.completion_tokens_reported, Some(1));
    assert_eq!(r.chunks.len(), 1);
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
    assert!(r.chunks.is_empty());
}
