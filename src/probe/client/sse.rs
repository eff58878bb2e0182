//! The server-sent-events framing of a streamed response: bytes in as they arrive, each event's
//! `data` out (WHATWG `text/event-stream`: lines end in CRLF, LF or CR; a line starting with `:`
//! is a comment; one space after a field's colon is dropped; an event's `data` lines join with
//! LF; a blank line ends the event, which is none if it had no `data`; a leading BOM is skipped;
//! an event cut off by the stream's end is dropped). Only `data` matters to the probe: the other
//! fields are skipped. Once its buffers have grown it allocates nothing per event, and it
//! validates nothing: the JSON parser of the data does.

/// A UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Default)]
pub(super) struct SseEvents {
    /// Bytes received and not yet read as lines, from `pos` on.
    buf: Vec<u8>,
    pos: usize,
    /// The `data` of the event being read, each line followed by LF.
    data: Vec<u8>,
    /// `data` was handed out: clear it before the next line.
    dispatched: bool,
    /// The last line ended in CR at the end of the bytes so far: a LF first is part of it.
    skip_lf: bool,
    started: bool,
}

impl SseEvents {
    /// Appends bytes as received.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..self.pos);
        }
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
        // Nothing is read before the first bytes are known to be, or not to be, a BOM.
        if !self.started && (self.buf.len() >= BOM.len() || !BOM.starts_with(&self.buf)) {
            self.started = true;
            if self.buf.starts_with(BOM) {
                self.pos = BOM.len();
            }
        }
    }

    /// Bytes of the event not yet complete: its lines read so far and those still unread. The
    /// caller bounds it ([`super::limits::MAX_EVENT_BYTES`]) once the complete events are out.
    pub(super) fn pending(&self) -> usize {
        let data = if self.dispatched { 0 } else { self.data.len() };
        self.buf.len() - self.pos + data
    }

    /// The `data` of the next complete event among the bytes pushed so far, without its last LF.
    pub(super) fn next_data(&mut self) -> Option<&[u8]> {
        if !self.started {
            return None;
        }
        if self.dispatched {
            self.data.clear();
            self.dispatched = false;
        }
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                self.pos += usize::from(self.buf[self.pos] == b'\n');
                self.skip_lf = false;
            }
            let rest = &self.buf[self.pos..];
            let len = memchr::memchr2(b'\n', b'\r', rest)?;
            let start = self.pos;
            self.pos += len + 1;
            if rest[len] == b'\r' {
                match rest.get(len + 1) {
                    Some(b'\n') => self.pos += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let line = &self.buf[start..start + len];
            if line.is_empty() {
                if self.data.is_empty() {
                    continue;
                }
                self.dispatched = true;
                return Some(&self.data[..self.data.len() - 1]);
            }
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(0) => continue,
                Some(c) => {
                    let v = &line[c + 1..];
                    (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &line[line.len()..]),
            };
            if field == b"data" {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event's data, with `bytes` pushed in pieces of `piece` bytes.
    fn events(bytes: &[u8], piece: usize) -> Vec<String> {
        let mut sse = SseEvents::default();
        let mut out = Vec::new();
        for p in bytes.chunks(piece) {
            sse.push(p);
            while let Some(d) = sse.next_data() {
                out.push(String::from_utf8(d.to_vec()).unwrap());
            }
        }
        out
    }

    #[test]
    fn every_line_end_and_every_split_give_the_same_events() {
        let want = ["a", "b\nc", "", "d"];
        for nl in ["\n", "\r\n", "\r"] {
            let text = format!(
                "\u{feff}data: a{nl}{nl}: comment{nl}event: x{nl}data:b{nl}data: c{nl}id: 7{nl}{nl}\
                 data{nl}{nl}retry: 5{nl}{nl}data: d{nl}{nl}data: cut"
            );
            for piece in 1..=text.len() {
                assert_eq!(
                    events(text.as_bytes(), piece),
                    want,
                    "{nl:?} in pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn what_is_pending_is_the_open_event_its_read_lines_and_its_unread_bytes() {
        let mut sse = SseEvents::default();
        sse.push(b"data: 1\n\ndata: 1234");
        assert_eq!(sse.next_data(), Some(b"1".as_slice()));
        assert_eq!(sse.next_data(), None);
        assert_eq!(sse.pending(), 10);
        // Many short lines of one event add up.
        sse.push(b"5\ndata: 678\n");
        assert_eq!(sse.next_data(), None);
        assert_eq!(sse.pending(), "12345\n678\n".len());
        sse.push(b"\n");
        assert_eq!(sse.next_data(), Some(b"12345\n678".as_slice()));
        assert_eq!(sse.pending(), 0);
    }

    #[test]
    fn an_event_without_data_is_none_and_a_cut_event_is_dropped() {
        assert!(events(b"event: ping\n\n: keep-alive\n\nid: 3\n\n", 4).is_empty());
        assert!(events(b"data: {\"half\":", 3).is_empty());
    }
}
