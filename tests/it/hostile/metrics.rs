//! The scraper against a hostile `/metrics`: a body of 1 GB and ten million series, each cut
//! at its limit with what was read bounded.

use ceiling_collectors::prometheus::{MAX_SCRAPE_BYTES, MAX_SCRAPE_LINES, Scraper};

use super::*;

fn scraper(base: &str) -> Scraper {
    Scraper::new(
        ceiling::commands::http_client().unwrap(),
        format!("{base}/metrics"),
        Duration::from_secs(30),
    )
}

#[tokio::test]
async fn a_metrics_body_of_1_gb_is_cut_at_the_scrape_limit() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    let (base, written) = hostile(|mut s, w| async move {
        if put(&mut s, METRICS_HEAD, &w).await {
            let line = b"vllm:num_requests_running{model_name=\"m\"} 1\n".repeat(1000);
            pour(&mut s, &line, 1 << 30, &w).await;
        }
    })
    .await;
    let r = scraper(&base).scrape_once(0, Instant::now()).await;
    assert!(r.samples.is_empty());
    let error = r.error.unwrap();
    assert!(error.contains("body larger than 16 MiB"), "{error}");
    assert_read_at_most(&written, MAX_SCRAPE_BYTES);
}

#[tokio::test]
async fn ten_million_series_are_refused_at_a_limit() {
    // Apart from the timing-sensitive tests: several of these pour megabytes.
    let _serial = crate::sim::serial().await;
    // 10 M distinct series, generated as written: the byte limit stops them first.
    let (base, written) = hostile(|mut s, w| async move {
        if !put(&mut s, METRICS_HEAD, &w).await {
            return;
        }
        for i in 0..10_000_000u64 {
            let line = format!("vllm:x{{i=\"{i}\"}} 1\n");
            if !put(&mut s, line.as_bytes(), &w).await {
                return;
            }
        }
    })
    .await;
    let r = scraper(&base).scrape_once(0, Instant::now()).await;
    assert!(r.samples.is_empty() && r.error.is_some(), "{:?}", r.error);
    assert_read_at_most(&written, MAX_SCRAPE_BYTES);

    // Short series under the byte limit: the line limit stops them before they are parsed.
    let (base, _) = hostile(|mut s, w| async move {
        let body: String = (0..300_000).map(|i| format!("a{i} 1\n")).collect();
        let _ = put(&mut s, METRICS_HEAD, &w).await && put(&mut s, body.as_bytes(), &w).await;
    })
    .await;
    let r = scraper(&base).scrape_once(0, Instant::now()).await;
    assert!(r.samples.is_empty());
    let error = r.error.unwrap();
    assert!(
        error.contains(&format!("more than {MAX_SCRAPE_LINES}")),
        "{error}"
    );

    // A Content-Length over the limit is refused before a byte of body is read.
    let (base, _) = hostile(|mut s, w| async move {
        let _ = put(
            &mut s,
            b"HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\nvllm:x 1\n",
            &w,
        )
        .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let r = scraper(&base).scrape_once(0, Instant::now()).await;
    assert!(r.error.unwrap().contains("body larger than"));
}
