//! What one engine response may make the probe hold: an SSE event (all its lines together) of
//! at most [`MAX_EVENT_BYTES`], and an error body of at most [`MAX_ERROR_BODY_BYTES`]. A
//! response past either is cut there and recorded as a failure; nothing past the limit is kept.
//! The hostile-engine tests (`tests/it/hostile.rs`) hold the probe to these numbers.

use futures_util::StreamExt;

/// One SSE event, all its lines together, in bytes. A real chunk is a few hundred bytes; a
/// `usage` with every detail under 2 KiB.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The body of a non-2xx answer kept for its error message (of which 300 characters are shown).
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// A body read whole before the run: the model list, `/version`, `/props`, the first `/metrics`
/// (the scraper's own limit).
pub const MAX_PREFLIGHT_BODY_BYTES: usize = 16 << 20;

/// Why a stream was cut at an event past [`MAX_EVENT_BYTES`].
pub fn event_too_long() -> String {
    format!(
        "an SSE event longer than {MAX_EVENT_BYTES} bytes (the probe's limit per event); the rest of the stream was not read"
    )
}

/// The whole body if it is at most `cap` bytes; else an error naming the limit, the rest
/// unread (the engine's model list, `/version`, `/metrics` before the run).
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, String> {
    let url = resp.url().to_string();
    let too_big = || {
        format!(
            "{url}: body larger than {} MiB; not read further",
            cap >> 20
        )
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("cannot read {url}: {e}"))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most `cap` bytes of the body, decoded lossily; the rest is not read.
pub async fn capped_text(resp: reqwest::Response, cap: usize) -> String {
    let mut kept = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        let room = cap - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if kept.len() >= cap {
            break;
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
