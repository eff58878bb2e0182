use super::*;

fn head(text: &str) -> Result<Option<(Head, usize)>, WireError> {
    Head::parse(text.as_bytes())
}

fn complete(text: &str) -> Head {
    match head(text) {
        Ok(Some((h, used))) => {
            assert_eq!(used, text.len(), "{text:?}");
            h
        }
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn the_head_says_how_the_body_ends_and_whether_the_connection_is_kept() {
    let h = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(
        (h.status, h.framing, h.reusable),
        (200, Framing::Chunked, true)
    );
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: Close\r\n\r\n");
    assert_eq!(
        (h.status, h.framing, h.reusable),
        (200, Framing::Length(12), false)
    );
    // Neither: the body runs to the close, so the connection cannot be reused.
    let h = complete("HTTP/1.1 500 Oops\r\n\r\n");
    assert_eq!(
        (h.status, h.framing, h.reusable),
        (500, Framing::Close, false)
    );
    // A coding after chunked: to the close (RFC 9112 §6.3).
    let h = complete("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
    assert_eq!(h.framing, Framing::Close);
    // Transfer-Encoding wins over Content-Length.
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n");
    assert_eq!(h.framing, Framing::Chunked);
    // HTTP/1.0 keeps the connection only when asked to.
    let h = complete("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(!h.reusable);
    let h = complete("HTTP/1.0 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n");
    assert!(h.reusable);
    let h = complete("HTTP/1.1 204 No Content\r\n\r\n");
    assert_eq!((h.framing, h.reusable), (Framing::Length(0), true));
    // A repeated identical length is one length.
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\ncontent-length: 7\r\n\r\n");
    assert_eq!(h.framing, Framing::Length(7));
}

#[test]
fn interim_heads_are_skipped_and_an_incomplete_head_is_none() {
    let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n";
    assert_eq!(complete(text).status, 200);
    for cut in 0..text.len() {
        assert_eq!(head(&text[..cut]), Ok(None), "cut at {cut}");
    }
}

#[test]
fn a_bad_head_is_an_error_that_says_what_was_wrong() {
    let says = |text: &str, what: &str| match head(text) {
        Err(WireError(e)) => assert!(e.contains(what), "{text:?}: {e}"),
        other => panic!("{text:?}: {other:?}"),
    };
    says(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        "two different",
    );
    says(
        "HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n",
        "invalid Content-Length",
    );
    says(
        "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\n",
        "invalid Content-Length",
    );
    says(
        "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        "invalid",
    );
    says("SSH-2.0-OpenSSH\r\n\r\n", "invalid HTTP response head");
    says("HTTP/1.1 101 Switching Protocols\r\n\r\n", "HTTP 101");
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: y\r\n")).collect();
    says(
        &format!("HTTP/1.1 200 OK\r\n{many}\r\n"),
        "invalid HTTP response head",
    );
    let long = format!("HTTP/1.1 200 OK\r\nx: {}", "y".repeat(MAX_HEAD_BYTES));
    says(&long, "longer than 65536 bytes");
    // Complete, but past the limit all the same: the limit does not depend on the reads.
    says(&format!("{long}\r\n\r\n"), "longer than 65536 bytes");
}

/// The body `input` decodes to when it arrives in pieces of `piece` bytes, and whether it
/// was complete before the close.
fn body(framing: Framing, input: &[u8], piece: usize) -> Result<(Vec<u8>, bool), WireError> {
    let mut d = BodyDecoder::new(framing);
    let mut out = Vec::new();
    let mut held = Vec::new();
    let mut done = false;
    for p in input.chunks(piece) {
        held.extend_from_slice(p);
        let r = d.decode(&held, |b| out.extend_from_slice(b))?;
        held.drain(..r.used);
        done = r.done;
        if done {
            break;
        }
    }
    if !done {
        d.closed()?;
    }
    Ok((out, done))
}

#[test]
fn every_split_of_a_chunked_body_gives_the_same_bytes() {
    let input =
        b"5;ext=\"a b\"\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
    for piece in 1..=input.len() {
        assert_eq!(
            body(Framing::Chunked, input, piece),
            Ok((b"hello 0123456789".to_vec(), true)),
            "pieces of {piece}"
        );
    }
    let mut d = BodyDecoder::new(Framing::Chunked);
    let r = d.decode(input, |_| {}).unwrap();
    assert_eq!(&input[r.used..], b"NEXT", "bytes past the body are left");
}

#[test]
fn a_length_body_ends_at_its_length_and_a_close_body_at_the_close() {
    for piece in 1..=12 {
        assert_eq!(
            body(Framing::Length(10), b"0123456789extra", piece),
            Ok((b"0123456789".to_vec(), true))
        );
        assert_eq!(
            body(Framing::Close, b"0123456789extra", piece),
            Ok((b"0123456789extra".to_vec(), false))
        );
    }
    assert_eq!(body(Framing::Length(0), b"x", 1), Ok((Vec::new(), true)));
}

#[test]
fn a_body_cut_short_or_badly_chunked_is_an_error_that_says_how() {
    let says = |framing, input: &[u8], what: &str| match body(framing, input, 3) {
        Err(WireError(e)) => assert!(e.contains(what), "{input:?}: {e}"),
        other => panic!("{input:?}: {other:?}"),
    };
    says(
        Framing::Length(1010),
        &[b'a'; 10],
        "closed 1000 bytes short",
    );
    says(Framing::Chunked, b"5\r\nhel", "inside a chunked body");
    says(Framing::Chunked, b"5\r\nhello\r\n", "inside a chunked body");
    says(Framing::Chunked, b"zz\r\n", "invalid chunk-size line");
    says(
        Framing::Chunked,
        b"ffffffffffffffffff\r\n",
        "invalid chunk-size line",
    );
    says(Framing::Chunked, b"2\r\nhello\r\n", "past its size");
    let long_ext = format!("5;{}", "e".repeat(MAX_LINE_BYTES));
    says(
        Framing::Chunked,
        long_ext.as_bytes(),
        "chunk-size line longer",
    );
    says(
        Framing::Chunked,
        format!("{long_ext}\r\n").as_bytes(),
        "chunk-size line longer",
    );
    let long_trailer = format!("0\r\nx: {}", "t".repeat(MAX_LINE_BYTES));
    says(
        Framing::Chunked,
        long_trailer.as_bytes(),
        "trailer field longer",
    );
    says(
        Framing::Chunked,
        format!("{long_trailer}\r\n\r\n").as_bytes(),
        "trailer field longer",
    );
    let many: String = "x: y\r\n".repeat(MAX_HEAD_BYTES / 6 + 1);
    says(
        Framing::Chunked,
        format!("0\r\n{many}").as_bytes(),
        "trailers longer",
    );
}
