//! The probe's own HTTP/1.1 client for its streamed requests to a plain-`http` engine: the
//! request written in one piece, the response read on the request's own task straight from
//! the socket (no connection task, no channel between them: one wake-up per arriving read),
//! its body decoded in place ([`super::wire`]). Connections are kept and reused as the
//! response allows. No proxy, no redirect followed, no TLS: an `https` engine goes through
//! reqwest (`super::EngineClient`).

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use super::wire::{BodyDecoder, Head, MAX_HEAD_BYTES, WireError};

mod arrival;

/// A connection: the socket registered with the runtime as a plain descriptor, so that a read
/// can say its readiness is spent without a second system call ([`arrival::read`]).
type Conn = AsyncFd<std::net::TcpStream>;

/// Bytes read from the socket at a time; the head may grow the buffer to its limit.
const READ_BYTES: usize = 8 << 10;

/// How long the end of a body is waited for after `[DONE]`, to keep its connection.
const DRAIN_WAIT: Duration = Duration::from_millis(50);

/// Where the requests go and the part of their head they all share. Its `Debug` shows the
/// address only: the head holds the API key.
pub(super) struct Http1 {
    /// `host:port` to connect to.
    authority: String,
    /// The request line and every field up to `content-length`'s value.
    head: Vec<u8>,
    /// Connections whose last response was read to its end and may be reused.
    idle: Mutex<Vec<Conn>>,
}

impl fmt::Debug for Http1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http1")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

/// Why no response head came.
#[derive(Debug)]
pub(super) enum SendError {
    /// The connection closed (or was reset) before any byte of a response: nothing was
    /// received, so sending again is safe.
    ClosedBeforeResponse(String),
    Other(String),
}

impl Http1 {
    /// A client for `url` (the endpoint's whole URL), or `None` when the URL is not plain
    /// `http` without credentials in it, or the key holds a control character (a line break
    /// would end the header: reqwest refuses such a key with an error).
    pub(super) fn for_url(url: &str, api_key: Option<&str>) -> Option<Http1> {
        if api_key.is_some_and(|k| k.bytes().any(|b| b.is_ascii_control())) {
            return None;
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        if parsed.scheme() != "http" || !parsed.username().is_empty() || parsed.password().is_some()
        {
            return None;
        }
        let host = parsed.host_str()?;
        let port = parsed.port_or_known_default()?;
        let authority = format!("{host}:{port}");
        let host_field = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let mut head = format!(
            "POST {target} HTTP/1.1\r\nhost: {host_field}\r\ncontent-type: application/json\r\naccept: */*\r\n"
        );
        if let Some(k) = api_key {
            head.push_str(&format!("authorization: Bearer {k}\r\n"));
        }
        head.push_str("content-length: ");
        Some(Http1 {
            authority,
            head: head.into_bytes(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `body` and reads the response's head: on a kept connection unless `fresh`.
    pub(super) async fn send(&self, body: &[u8], fresh: bool) -> Result<Response<'_>, SendError> {
        let kept = if fresh { None } else { self.take_idle() };
        let conn = match kept {
            Some(c) => c,
            None => self.connect().await.map_err(|e| {
                SendError::Other(format!("cannot connect to {}: {e}", self.authority))
            })?,
        };
        let mut request = Vec::with_capacity(self.head.len() + 24 + body.len());
        request.extend_from_slice(&self.head);
        request.extend_from_slice(body.len().to_string().as_bytes());
        request.extend_from_slice(b"\r\n\r\n");
        request.extend_from_slice(body);
        if let Err(e) = write_all(&conn, &request).await {
            return Err(closed_or_other(e, "sending the request"));
        }
        let mut buf = vec![0u8; READ_BYTES];
        let mut end = 0;
        loop {
            if end == buf.len() {
                buf.resize((buf.len() * 2).min(MAX_HEAD_BYTES + READ_BYTES), 0);
            }
            let (n, arrived) = match arrival::read(&conn, &mut buf[end..]).await {
                Ok((0, _)) if end == 0 => {
                    return Err(SendError::ClosedBeforeResponse(
                        "the connection closed before any byte of a response".into(),
                    ));
                }
                Ok((0, _)) => {
                    return Err(SendError::Other(
                        "the connection closed inside the response head".into(),
                    ));
                }
                Ok(read) => read,
                Err(e) if end == 0 => return Err(closed_or_other(e, "reading the response")),
                Err(e) => return Err(SendError::Other(format!("reading the response head: {e}"))),
            };
            end += n;
            match Head::parse(&buf[..end]) {
                Ok(None) => {}
                Ok(Some((head, used))) => {
                    return Ok(Response {
                        client: self,
                        decoder: BodyDecoder::new(head.framing),
                        head,
                        conn: Some(conn),
                        buf,
                        start: used,
                        end,
                        pending: true,
                        arrived,
                        eof: false,
                        done: false,
                    });
                }
                Err(WireError(e)) => return Err(SendError::Other(e)),
            }
        }
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        let c = tokio::net::TcpStream::connect(&self.authority).await?;
        // Each chunk goes out as written: no Nagle delay on the request.
        let _ = c.set_nodelay(true);
        // Still non-blocking, as tokio left it.
        let c = c.into_std()?;
        arrival::enable(&c);
        register(c)
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().ok()?.pop()
    }

    fn keep(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// The socket registered with the runtime. `AsyncFd::new` is deprecated for a descriptor its
/// owner might close under the runtime (tokio #8587); a `TcpStream` owns its descriptor and
/// closes it only when dropped, after the registration, which is this call's sound case (its
/// replacement, `register`, is `unsafe`, which this workspace forbids).
fn register(socket: std::net::TcpStream) -> std::io::Result<Conn> {
    #[allow(deprecated)]
    AsyncFd::new(socket)
}

/// Writes all of `bytes`, waiting whenever the socket's send buffer is full (tokio's
/// `async_io` waits for writability and retries on `WouldBlock`).
async fn write_all(conn: &Conn, mut bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    while !bytes.is_empty() {
        let n = conn
            .async_io(tokio::io::Interest::WRITABLE, |mut c| c.write(bytes))
            .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// A reset or a broken pipe before any response byte is the kept connection the server had
/// closed; anything else is an error of its own.
fn closed_or_other(e: std::io::Error, doing: &str) -> SendError {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let msg = format!("{doing}: {e}");
    if matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) {
        SendError::ClosedBeforeResponse(msg)
    } else {
        SendError::Other(msg)
    }
}

/// A response whose head was read; its body is read with [`Response::read`].
#[derive(Debug)]
pub(super) struct Response<'a> {
    client: &'a Http1,
    pub(super) head: Head,
    decoder: BodyDecoder,
    /// `None` once handed back to the idle connections.
    conn: Option<Conn>,
    /// Bytes read and not yet decoded: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes were read that `decode` has not seen.
    pending: bool,
    /// When the last read's bytes arrived (the kernel's stamp where it gives one).
    pub(super) arrived: Instant,
    eof: bool,
    done: bool,
}

impl Response<'_> {
    /// Waits for the next bytes of the body unless some read are not decoded yet.
    /// `Ok(false)` once the body is complete.
    pub(super) async fn fill(&mut self) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        if self.pending {
            return Ok(true);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() + READ_BYTES, 0);
        }
        match arrival::read(conn, &mut self.buf[self.end..]).await {
            Ok((0, _)) => self.eof = true,
            Ok((n, at)) => {
                self.end += n;
                // Never before the bytes read earlier (a wall clock stepped between stamps).
                self.arrived = at.max(self.arrived);
            }
            Err(e) => return Err(format!("reading the response body: {e}")),
        }
        self.pending = true;
        Ok(true)
    }

    /// Hands the body's bytes read so far to `sink`. `Ok(true)` once the body is complete;
    /// then a connection the response allows to be reused is kept for the next request.
    pub(super) fn decode(&mut self, sink: impl FnMut(&[u8])) -> Result<bool, String> {
        self.pending = false;
        if self.done {
            return Ok(true);
        }
        let r = self
            .decoder
            .decode(&self.buf[self.start..self.end], sink)
            .map_err(|WireError(e)| e)?;
        self.start += r.used;
        if r.done {
            self.done = true;
            // Bytes past the body belong to no request of ours: such a connection is not kept.
            if self.head.reusable
                && self.start == self.end
                && !self.eof
                && let Some(conn) = self.conn.take()
            {
                self.client.keep(conn);
            }
            return Ok(true);
        }
        // An incomplete line (at most `wire::MAX_LINE_BYTES`) waits at the buffer's start.
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        if self.eof {
            self.decoder.closed().map_err(|WireError(e)| e)?;
            self.done = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// After `[DONE]`: the rest of the body (the last chunk, in practice) is read, for at most
    /// [`DRAIN_WAIT`], so that the connection can be kept; past that it is closed.
    pub(super) async fn finish(mut self) {
        let drained = tokio::time::timeout(DRAIN_WAIT, async {
            while let Ok(true) = self.fill().await {
                if !matches!(self.decode(|_| {}), Ok(false)) {
                    break;
                }
            }
        });
        let _ = drained.await;
    }

    /// At most `cap` bytes of the body, decoded lossily; the rest is not read.
    pub(super) async fn capped_text(mut self, cap: usize) -> String {
        let mut kept = Vec::new();
        while kept.len() < cap && matches!(self.fill().await, Ok(true)) {
            let done = self.decode(|b| {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&b[..b.len().min(room)]);
            });
            if !matches!(done, Ok(false)) {
                break;
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(url: &str, key: Option<&str>) -> Option<(String, String)> {
        Http1::for_url(url, key).map(|c| (c.authority, String::from_utf8(c.head).unwrap()))
    }

    #[test]
    fn plain_http_gets_the_own_client_with_the_url_as_written() {
        let (authority, head) = head_of("http://127.0.0.1:8000/v1/completions", None).unwrap();
        assert_eq!(authority, "127.0.0.1:8000");
        assert_eq!(
            head,
            "POST /v1/completions HTTP/1.1\r\nhost: 127.0.0.1:8000\r\ncontent-type: application/json\r\naccept: */*\r\ncontent-length: "
        );
        let (authority, head) =
            head_of("http://Engine.local/proxy/v1/completions?x=1", Some("sk-1")).unwrap();
        assert_eq!(authority, "engine.local:80");
        assert!(
            head.starts_with("POST /proxy/v1/completions?x=1 HTTP/1.1\r\nhost: engine.local\r\n"),
            "{head}"
        );
        assert!(head.contains("authorization: Bearer sk-1\r\n"));
        let (authority, head) = head_of("http://[::1]:9/v1/completions", None).unwrap();
        assert_eq!(authority, "[::1]:9");
        assert!(head.contains("host: [::1]:9\r\n"));
    }

    #[test]
    fn the_key_in_the_shared_head_never_shows_in_debug() {
        let c = Http1::for_url("http://127.0.0.1:8000/v1/completions", Some("sk-secret")).unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("127.0.0.1:8000") && !shown.contains("sk-secret"),
            "{shown}"
        );
    }

    #[test]
    fn tls_credentials_or_a_key_with_a_line_break_go_through_reqwest() {
        assert!(head_of("https://127.0.0.1:8000/v1/completions", None).is_none());
        assert!(head_of("http://user:pw@127.0.0.1:8000/v1/completions", None).is_none());
        assert!(head_of("not a url", None).is_none());
        let url = "http://127.0.0.1:8000/v1/completions";
        assert!(head_of(url, Some("sk-1\r\nx-injected: 1")).is_none());
    }
}
