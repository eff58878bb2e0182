//! The floor of a streaming client built on tokio (`scripts/bench_probe.sh`, `FLOOR=1`; issue
//! 18): what `scripts/floor_client.c` does (STREAMS requests in flight, each response read to
//! its end, nothing parsed, timed or recorded), on the runtime the probe runs on: tokio's
//! multi-thread scheduler and its reactor, one task a stream, one `read` a readiness event.
//! Its CPU per streamed chunk, against the C floor's, is the price of the runtime's wake-ups
//! alone; against the probe's, what the probe's own work on each chunk costs.
//!
//! ```sh
//! cargo build --release --example floor_tokio
//! floor_tokio HOST PORT STREAMS REQUESTS BODY_FILE
//! ```
//!
//! Prints the number of SSE events ("data: " at a line start) it read. Each request is a POST
//! to /v1/completions with BODY_FILE as its body and `Connection: close`, as the C floor's.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, host, port, streams, requests, body] = args.as_slice() else {
        eprintln!("usage: floor_tokio HOST PORT STREAMS REQUESTS BODY_FILE");
        std::process::exit(2);
    };
    let (Ok(streams), Ok(requests)) = (streams.parse::<usize>(), requests.parse::<i64>()) else {
        eprintln!("STREAMS and REQUESTS are counts");
        std::process::exit(2);
    };
    let body = std::fs::read(body).unwrap_or_else(|e| {
        eprintln!("{body}: {e}");
        std::process::exit(2);
    });
    let mut request = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let request = Arc::new(request);
    let authority = Arc::new(format!("{host}:{port}"));
    let left = Arc::new(AtomicI64::new(requests));
    let events = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("no runtime: {e}");
            std::process::exit(1);
        });
    runtime.block_on(async {
        let tasks: Vec<_> = (0..streams)
            .map(|_| {
                let (request, authority) = (request.clone(), authority.clone());
                let (left, events) = (left.clone(), events.clone());
                tokio::spawn(async move {
                    while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                        let n = one(&authority, &request).await?;
                        events.fetch_add(n, Ordering::Relaxed);
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        for t in tasks {
            if let Ok(Err(e)) | Err(e) = t.await.map_err(std::io::Error::other) {
                eprintln!("floor_tokio: {e}");
                std::process::exit(1);
            }
        }
    });
    println!("{}", events.load(Ordering::Relaxed));
}

/// One request on its own connection, read to the server's close: the events it held.
async fn one(authority: &str, request: &[u8]) -> std::io::Result<u64> {
    let mut conn = TcpStream::connect(authority).await?;
    conn.set_nodelay(true)?;
    conn.write_all(request).await?;
    let mut buf = vec![0u8; 64 << 10];
    // Bytes of "data: " matched at the current line's start; -1 once the line is something else.
    let mut state: i32 = 0;
    let mut events = 0;
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(events);
        }
        for &c in &buf[..n] {
            if c == b'\n' {
                state = 0;
            } else if (0..6).contains(&state) {
                state = if c == b"data: "[state as usize] {
                    state + 1
                } else {
                    -1
                };
                if state == 6 {
                    events += 1;
                }
            }
        }
    }
}
