//! The probe's own HTTP/1.1 response reader (`ceiling::probe::client::wire`): the fuzz input
//! is a whole response (head and body) as an engine might send it. Read whole, and again in
//! pieces whose sizes the first byte sets, it must give the same head, the same body bytes and
//! the same error: the split of a stream into reads never changes what is read. The body
//! handed out is never longer than the bytes given.
#![no_main]

use ceiling::probe::client::wire::{BodyDecoder, Head};
use libfuzzer_sys::fuzz_target;

/// The head, the body and how the reading ended, with `input` arriving `piece` bytes a read.
fn read(input: &[u8], piece: usize) -> (Option<Head>, Vec<u8>, Result<bool, String>) {
    let mut held: Vec<u8> = Vec::new();
    let mut head = None;
    let mut decoder = None;
    let mut body = Vec::new();
    for p in input.chunks(piece) {
        held.extend_from_slice(p);
        if head.is_none() {
            match Head::parse(&held) {
                Ok(None) => continue,
                Ok(Some((h, used))) => {
                    decoder = Some(BodyDecoder::new(h.framing));
                    head = Some(h);
                    held.drain(..used);
                }
                Err(e) => return (None, body, Err(e.0)),
            }
        }
        let Some(d) = decoder.as_mut() else { continue };
        match d.decode(&held, |b| body.extend_from_slice(b)) {
            Ok(r) => {
                held.drain(..r.used);
                if r.done {
                    return (head, body, Ok(true));
                }
            }
            Err(e) => return (head, body, Err(e.0)),
        }
    }
    let end = match decoder.as_mut() {
        Some(d) => d.closed().map(|()| false).map_err(|e| e.0),
        None => Err("no complete head".into()),
    };
    (head, body, end)
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let whole = read(input, input.len().max(1));
    let pieces = read(input, usize::from(first % 64).max(1));
    assert!(whole.1.len() <= input.len(), "more body than bytes");
    // An error found at a split may name a limit the whole read meets at another place; the
    // kind of ending and everything read before it agree.
    assert_eq!(whole.0, pieces.0, "the head depends on the split");
    assert_eq!(whole.2.is_ok(), pieces.2.is_ok(), "{whole:?} / {pieces:?}");
    if whole.2.is_ok() {
        assert_eq!(whole.1, pieces.1, "the body depends on the split");
        assert_eq!(whole.2, pieces.2);
    }
});
