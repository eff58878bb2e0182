//! The SSE event reader and chunk decoder, through the probe's public client: a loopback
//! server answers each request with the fuzz input as a `text/event-stream` body in HTTP
//! chunks (the first byte sets the chunk size, so events split at every offset) on a kept
//! connection, and the record the client returns must be whole.
#![no_main]

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use ceiling::config::Endpoint;
use ceiling::probe::client::{EngineClient, EngineQuirks, RequestSlot};
use ceiling::probe::workload::Prompt;
use ceiling_reports::Outcome;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Harness {
    rt: tokio::runtime::Runtime,
    client: EngineClient,
}

/// The body the server writes next.
static BODY: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        rt.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(answer(conn));
            }
        });
        let client = EngineClient::new(
            ceiling::run::http_client().expect("the probe's client"),
            &url,
            None,
            "m".into(),
            Endpoint::Completions,
            EngineQuirks::default(),
            Duration::from_secs(10),
        );
        Harness { rt, client }
    })
}

/// Answers each request on the connection in turn: reads it up to its body's end, then writes
/// the body in chunks. The connection is kept (a new one for each input cost two thirds of an
/// execution): it ends when the client closes it, which it does after any response it does
/// not read to its end.
async fn answer(mut conn: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        let mut got = Vec::new();
        while !got.ends_with(b"}") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let data = BODY.lock().expect("body").clone();
        if conn.write_all(&response(&data)).await.is_err() {
            return;
        }
    }
}

/// The response: the first byte sets the HTTP chunk size, the rest is the event stream.
fn response(data: &[u8]) -> Vec<u8> {
    let (size, body) = match data.split_first() {
        Some((&s, rest)) => (usize::from(s).max(1), rest),
        None => (1, &[][..]),
    };
    let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    *BODY.lock().expect("body") = data.to_vec();
    let slot = RequestSlot {
        step_idx: 0,
        worker: 0,
        wave: None,
        warmup: false,
    };
    let prompt = Prompt::Tokens(vec![1, 2, 3]);
    let cancel = CancellationToken::new();
    let rec = h.rt.block_on(
        h.client
            .stream(slot, &prompt, 3, 16, Instant::now(), &cancel),
    );
    assert!(rec.done_t_s.is_some(), "every record has its end");
    assert_ne!(
        rec.outcome,
        Outcome::Timeout,
        "a body that ends never times out"
    );
    assert!(rec.chunks.windows(2).all(|w| w[0].t_s <= w[1].t_s));
    if rec.outcome == Outcome::Ok {
        assert!(rec.error.is_none());
    } else {
        assert!(rec.error.is_some(), "a failure says why");
    }
});
