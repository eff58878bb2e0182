//! The hostile answers through both HTTP clients (the probe's own, and reqwest for `https`):
//! the same outcome kinds.

use std::time::Duration;

use ceiling_reports::Outcome;

use super::{
    MAX_EVENT_BYTES, SSE_HEAD, assert_outcome, assert_read_at_most, chunk, hostile, pour,
    probe_with, put,
};

#[tokio::test]
async fn the_general_client_ends_hostile_answers_as_the_own_one_does() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let claimed = chunk("a").len() + 1000;
    let (short, _) = hostile(move |mut s, w| async move {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {claimed}\r\n\r\n"
        );
        let _ = put(&mut s, head.as_bytes(), &w).await && put(&mut s, chunk("a").as_bytes(), &w).await;
    })
    .await;
    let (no_done, _) = hostile(|mut s, w| async move {
        let _ = put(&mut s, SSE_HEAD, &w).await && put(&mut s, chunk("a").as_bytes(), &w).await;
    })
    .await;
    let (redirect, _) = hostile(|mut s, w| async move {
        let head = b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://192.0.2.1/\r\ncontent-length: 0\r\n\r\n";
        let _ = put(&mut s, head, &w).await;
    })
    .await;
    let (long_event, written) = hostile(|mut s, w| async move {
        if put(&mut s, SSE_HEAD, &w).await {
            pour(&mut s, &[b'x'; 65536], 100 << 20, &w).await;
        }
    })
    .await;
    for general in [false, true] {
        let t = Duration::from_secs(30);
        let rec = probe_with(&short, t, general).await;
        let says = if general {
            "error decoding response body"
        } else {
            "1000 bytes short"
        };
        assert_outcome(&rec, Outcome::StreamCut, says);
        let rec = probe_with(&no_done, t, general).await;
        assert_outcome(&rec, Outcome::StreamCut, "without `data: [DONE]`");
        let rec = probe_with(&redirect, t, general).await;
        assert_outcome(&rec, Outcome::HttpError, "HTTP 307 Temporary Redirect");
        let rec = probe_with(&long_event, t, general).await;
        assert_outcome(&rec, Outcome::MalformedSse, "longer than 1048576 bytes");
    }
    assert_read_at_most(&written, 2 * MAX_EVENT_BYTES);
}
