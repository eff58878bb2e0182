//! HTTP/1.1 response framing, as bytes arrive, with nothing async in it: the response head
//! (status, how the body is delimited, whether the connection may be reused) and the body's
//! bytes out of `Transfer-Encoding: chunked`, a `Content-Length` or the connection's end
//! (RFC 9112 §6.3). The probe's own client (`client/http1.rs`) reads its streamed responses
//! with it; the `http1` fuzz target holds it to one answer whatever the bytes' split.
//!
//! Limits, so that no response makes the reader hold more than it was given: a head of at
//! most [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`] fields, a chunk-size line or a trailer line of
//! at most [`MAX_LINE_BYTES`], trailers of at most [`MAX_HEAD_BYTES`] in all.

use std::fmt;

/// A response head (status line and fields), in bytes.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// Header fields in one head.
pub const MAX_HEADERS: usize = 100;

/// A chunk-size line (with its extensions) or one trailer field.
pub const MAX_LINE_BYTES: usize = 4 << 10;

/// Why a response cannot be read; the message says what the engine sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WireError {}

fn err<T>(msg: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(msg.into()))
}

/// What a response's head says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// How the body ends.
    pub framing: Framing,
    /// The connection may carry another request once this body is read to its end.
    pub reusable: bool,
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Length(u64),
    /// Until the connection closes.
    Close,
}

impl Head {
    /// The head at the start of `buf`, with the bytes it took; `None` while incomplete.
    /// Interim (1xx) heads are skipped.
    pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, WireError> {
        let mut used = 0;
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut fields);
            let n = match resp.parse(&buf[used..]) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => {
                    if buf.len() - used > MAX_HEAD_BYTES {
                        return err(too_long_head());
                    }
                    return Ok(None);
                }
                Err(e) => return err(format!("an invalid HTTP response head ({e})")),
            };
            if n > MAX_HEAD_BYTES {
                return err(too_long_head());
            }
            used += n;
            let status = resp.code.unwrap_or_default();
            if status == 101 {
                return err("the engine switched protocols (HTTP 101) on a completion request");
            }
            if (100..200).contains(&status) {
                continue;
            }
            let head = Head::from_fields(status, resp.version == Some(1), resp.headers)?;
            return Ok(Some((head, used)));
        }
    }

    fn from_fields(
        status: u16,
        http11: bool,
        fields: &[httparse::Header<'_>],
    ) -> Result<Head, WireError> {
        let values = |name: &str| -> Vec<String> {
            fields
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .collect()
        };
        let tokens = |name: &str| -> Vec<String> {
            values(name)
                .iter()
                .flat_map(|v| {
                    v.split(',')
                        .map(|t| t.trim().to_ascii_lowercase())
                        .collect::<Vec<_>>()
                })
                .filter(|t| !t.is_empty())
                .collect()
        };
        let connection = tokens("connection");
        let mut reusable = if http11 {
            !connection.iter().any(|t| t == "close")
        } else {
            connection.iter().any(|t| t == "keep-alive")
        };
        let codings = tokens("transfer-encoding");
        let framing = if status == 204 || status == 304 {
            Framing::Length(0)
        } else if let Some(last) = codings.last() {
            // A body whose last coding is not chunked ends with the connection.
            if last == "chunked" {
                Framing::Chunked
            } else {
                Framing::Close
            }
        } else {
            let lengths = values("content-length");
            match lengths.first() {
                None => Framing::Close,
                Some(first) => {
                    let n = content_length(first)?;
                    for other in &lengths[1..] {
                        if content_length(other)? != n {
                            return err("a response with two different Content-Length fields");
                        }
                    }
                    Framing::Length(n)
                }
            }
        };
        if framing == Framing::Close {
            reusable = false;
        }
        Ok(Head {
            status,
            framing,
            reusable,
        })
    }
}

fn too_long_head() -> String {
    format!("a response head longer than {MAX_HEAD_BYTES} bytes (the probe's limit)")
}

/// A `Content-Length` value: digits only (a list of one repeated value is allowed).
fn content_length(v: &str) -> Result<u64, WireError> {
    let mut n = None;
    for part in v.split(',') {
        let part = part.trim();
        let parsed = if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse::<u64>().ok()
        } else {
            None
        };
        match (parsed, n) {
            (Some(p), None) => n = Some(p),
            (Some(p), Some(q)) if p == q => {}
            _ => return err(format!("an invalid Content-Length {:?}", clip(v))),
        }
    }
    n.map_or_else(|| err("an empty Content-Length"), Ok)
}

fn clip(s: &str) -> String {
    crate::printable::clip(s, 40)
}

/// Where the body decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `n` body bytes still to come (a `Content-Length` body or a chunk's data).
    Length(u64),
    Close,
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer fields after the last chunk, `n` bytes of them so far.
    Trailers(usize),
    Done,
}

/// A body's bytes out of its framing, fed as they arrive.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
}

fn long_size_line() -> String {
    format!("a chunk-size line longer than {MAX_LINE_BYTES} bytes")
}

/// What [`BodyDecoder::decode`] made of the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes of the input taken; the rest belongs to a later call (an incomplete line) or,
    /// once the body is done, to no response of this request.
    pub used: usize,
    /// The body is complete.
    pub done: bool,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::Chunked => State::ChunkSize,
            Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Close => State::Close,
        };
        BodyDecoder { state }
    }

    /// Hands the body's bytes in `input` to `sink`, in order; keeps no byte itself.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut sink: impl FnMut(&[u8]),
    ) -> Result<Decoded, WireError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                State::Done => break,
                State::Close => {
                    if !rest.is_empty() {
                        sink(rest);
                    }
                    at = input.len();
                    break;
                }
                State::Length(n) | State::ChunkData(n) => {
                    if rest.is_empty() {
                        break;
                    }
                    let take = rest.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    sink(&rest[..take]);
                    at += take;
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), _) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, _))) if n > MAX_LINE_BYTES => {
                        return err(long_size_line());
                    }
                    Ok(httparse::Status::Complete((n, size))) => {
                        at += n;
                        self.state = if size == 0 {
                            State::Trailers(0)
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    Ok(httparse::Status::Partial) if rest.len() <= MAX_LINE_BYTES => break,
                    Ok(httparse::Status::Partial) => return err(long_size_line()),
                    Err(_) => {
                        let line = &rest[..rest.len().min(24)];
                        return err(format!(
                            "an invalid chunk-size line {:?}",
                            clip(&String::from_utf8_lossy(line))
                        ));
                    }
                },
                State::ChunkEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.state = State::ChunkSize;
                    }
                    [b'\n', ..] => {
                        at += 1;
                        self.state = State::ChunkSize;
                    }
                    [] | [b'\r'] => break,
                    _ => return err("a chunk's data runs past its size"),
                },
                State::Trailers(seen) => {
                    let nl = memchr::memchr(b'\n', rest);
                    if nl.unwrap_or(rest.len()) > MAX_LINE_BYTES {
                        return err(format!(
                            "a trailer field longer than {MAX_LINE_BYTES} bytes"
                        ));
                    }
                    let Some(nl) = nl else { break };
                    at += nl + 1;
                    let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
                    self.state = if line.is_empty() {
                        State::Done
                    } else if seen + nl + 1 > MAX_HEAD_BYTES {
                        return err(format!("trailers longer than {MAX_HEAD_BYTES} bytes"));
                    } else {
                        State::Trailers(seen + nl + 1)
                    };
                }
            }
        }
        Ok(Decoded {
            used: at,
            done: self.state == State::Done,
        })
    }

    /// The connection closed: the body's end if it is delimited by the close, else an error
    /// that says how much was missing.
    pub fn closed(&mut self) -> Result<(), WireError> {
        match self.state {
            State::Done => Ok(()),
            State::Close => {
                self.state = State::Done;
                Ok(())
            }
            State::Length(n) => err(format!(
                "the connection closed {n} bytes short of the body's Content-Length"
            )),
            _ => err("the connection closed inside a chunked body, before its last chunk"),
        }
    }
}

#[cfg(test)]
mod tests;
