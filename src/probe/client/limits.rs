//! What one engine response may make the probe hold: an SSE event (all its lines together) of
//! at most [`MAX_EVENT_BYTES`], and an error body of at most [`MAX_ERROR_BODY_BYTES`]. A
//! response past either is cut there and recorded as a failure; nothing past the limit is kept.
//! The hostile-engine tests (`tests/it/hostile.rs`) hold the probe to these numbers.

use std::fmt;

use futures_util::{Stream, StreamExt};

/// One SSE event, all its lines together, in bytes. A real chunk is a few hundred bytes; a
/// `usage` with every detail under 2 KiB.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// The body of a non-2xx answer kept for its error message (of which 300 characters are shown).
pub const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// A body read whole before the run: the model list, `/version`, `/props`, the first `/metrics`
/// (the scraper's own limit).
pub const MAX_PREFLIGHT_BODY_BYTES: usize = 16 << 20;

/// The body stream failed, or an event ran past [`MAX_EVENT_BYTES`].
#[derive(Debug)]
pub enum BodyError<E> {
    Transport(E),
    EventTooLong,
}

impl<E: fmt::Display> fmt::Display for BodyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Transport(e) => e.fmt(f),
            BodyError::EventTooLong => write!(
                f,
                "an SSE event longer than {} bytes (the probe's limit per event); the rest of the stream was not read",
                MAX_EVENT_BYTES
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BodyError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Transport(e) => Some(e),
            BodyError::EventTooLong => None,
        }
    }
}

/// Bytes since the last event boundary (a blank line; `\r\n`, `\n` and `\r` all end a line).
#[derive(Debug, Default)]
struct EventMeter {
    line: usize,
    event: usize,
    after_cr: bool,
}

impl EventMeter {
    /// Counts `bytes`; false as soon as the current event passes `limit` (even if it ends later
    /// in the same chunk).
    fn feed(&mut self, bytes: &[u8], limit: usize) -> bool {
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    if self.line == 0 {
                        self.event = 0;
                    }
                    self.line = 0;
                }
                _ => {
                    self.after_cr = false;
                    self.line += 1;
                    self.event += 1;
                    if self.event > limit {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// The body unchanged, ending in [`BodyError::EventTooLong`] as soon as one event passes `limit`.
pub fn bounded_events<S, B, E>(body: S, limit: usize) -> impl Stream<Item = Result<B, BodyError<E>>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    let mut meter = EventMeter::default();
    let mut over = false;
    body.map(move |item| match item {
        Err(e) => Err(BodyError::Transport(e)),
        Ok(_) if over => Err(BodyError::EventTooLong),
        Ok(b) => {
            if meter.feed(b.as_ref(), limit) {
                Ok(b)
            } else {
                over = true;
                Err(BodyError::EventTooLong)
            }
        }
    })
    .take_while({
        let mut done = false;
        move |item| {
            let keep = !done;
            done |= matches!(item, Err(BodyError::EventTooLong));
            std::future::ready(keep)
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_measured_across_lines_and_chunks_and_reset_by_a_blank_line() {
        let mut m = EventMeter::default();
        assert!(m.feed(b"data: 1234\r", 20));
        assert!(m.feed(b"\ndata: 5678\r\n", 20));
        assert_eq!(m.event, 20);
        assert!(m.feed(b"\r\n", 20));
        assert_eq!(m.event, 0);
        assert!(m.feed(b"data: x\n\ndata: y\n\n", 10));
        assert!(!m.feed(b"data: 0123456789", 10));
    }

    #[tokio::test]
    async fn the_stream_ends_with_one_error_once_an_event_is_too_long() {
        let chunks: Vec<Result<&[u8], std::io::Error>> = vec![
            Ok(b"data: 1\n\n"),
            Ok(b"data: 12345678"),
            Ok(b"9\n\n"),
            Ok(b"data: 2\n\n"),
        ];
        let out: Vec<_> = bounded_events(futures_util::stream::iter(chunks), 14)
            .collect()
            .await;
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].is_ok() && out[1].is_ok());
        assert!(matches!(out[2], Err(BodyError::EventTooLong)));
    }
}
