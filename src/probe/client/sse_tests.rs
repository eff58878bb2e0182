//! The client against a server that writes real SSE in awkward shapes: events split across
//! reads at random byte offsets, several events in one write, CRLF or LF line ends, comments
//! and heartbeats, `event:` lines, `data:` without its space, usage on any chunk, and streams
//! that end without `[DONE]`. Seeded, so a failure names its case.

use std::io::{Read, Write};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

const TOKENS: u32 = 12;

/// The body of one streamed completion in the shape `seed` picks, and whether it ends with
/// `[DONE]`.
fn body(seed: u64) -> (Vec<u8>, bool) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let nl = if rng.random_bool(0.5) { "\r\n" } else { "\n" };
    let usage_at = rng.random_range(0..TOKENS);
    let mut out = String::new();
    for i in 0..TOKENS {
        if rng.random_bool(0.2) {
            out.push_str(&format!(": keep-alive{nl}{nl}"));
        }
        if rng.random_bool(0.2) {
            out.push_str(&format!("event: message{nl}"));
        }
        let usage = if i == usage_at {
            format!(",\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":{TOKENS}}}")
        } else {
            String::new()
        };
        let space = if rng.random_bool(0.5) { " " } else { "" };
        out.push_str(&format!(
            "data:{space}{{\"choices\":[{{\"index\":0,\"text\":\"t{i}\"}}]{usage}}}{nl}{nl}"
        ));
    }
    let done = rng.random_bool(0.8);
    if done {
        out.push_str(&format!("data: [DONE]{nl}{nl}"));
    }
    (out.into_bytes(), done)
}

/// A one-connection server that writes `body` close-delimited, in random pieces with pauses so
/// the client's reads split events anywhere.
fn serve(seed: u64, body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0xABCD);
        let (mut c, _) = listener.accept().unwrap();
        c.set_nodelay(true).unwrap();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("\"stream\":true") {
            let n = c.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
        c.write_all(head.as_bytes()).unwrap();
        let mut at = 0;
        while at < body.len() {
            let n = rng.random_range(1..=40).min(body.len() - at);
            c.write_all(&body[at..at + n]).unwrap();
            c.flush().unwrap();
            at += n;
            if rng.random_bool(0.3) {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    });
    url
}

#[test]
fn sse_in_awkward_shapes_is_read_event_by_event() {
    for seed in 0..40 {
        let (bytes, done) = body(seed);
        let url = serve(seed, bytes);
        let r = super::tests::stream_once(&url, &[5, 6, 7], TOKENS);
        assert_eq!(r.chunks.len(), TOKENS as usize, "seed {seed}: {r:?}");
        assert_eq!(r.completion_tokens_reported, Some(TOKENS), "seed {seed}");
        assert_eq!(r.prompt_tokens_reported, Some(3), "seed {seed}");
        assert!(
            r.chunks.windows(2).all(|w| w[0].t_s <= w[1].t_s),
            "seed {seed}"
        );
        if done {
            assert_eq!(r.outcome, Outcome::Ok, "seed {seed}: {:?}", r.error);
            assert!(r.done_t_s.is_some(), "seed {seed}");
        } else {
            assert_eq!(r.outcome, Outcome::StreamCut, "seed {seed}");
            assert!(
                r.error.as_deref().is_some_and(|e| e.contains("[DONE]")),
                "seed {seed}: {:?}",
                r.error
            );
        }
    }
}
