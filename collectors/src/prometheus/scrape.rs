//! The `/metrics` scraper: one GET with a timeout per tick, each scrape stamped with its start
//! (seconds from the run's `t0`) and its duration, the body parsed and the engine's families
//! (`vllm:*`, `sglang:*`, `llamacpp:*`) and `process_*` kept as raw samples.
//!
//! A failed or malformed scrape is a [`ScrapeRecord`] with `error` set, never a panic and never
//! an early exit: the caller decides whether lost metrics are fatal (`--require-metrics`). The
//! scraper does not retry and does not scrape faster than asked: llama.cpp resets the window of
//! its `*_tokens_seconds` gauges on every scrape, so every extra scrape changes what they mean.
//!
//! One scrape holds at most [`MAX_SCRAPE_BYTES`] of body and parses at most
//! [`MAX_SCRAPE_LINES`] lines: a bigger body is not read further and the scrape is a failure
//! with no samples (an engine's real `/metrics` is 10–500 KiB).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::ScrapeRecord;

/// The most body one scrape reads.
pub const MAX_SCRAPE_BYTES: usize = 16 << 20;

/// The most lines (series, comments and blank lines together) one scrape parses.
pub const MAX_SCRAPE_LINES: usize = 200_000;

/// The least a boundary scrape (between two probe steps) is given to answer. A step's counter
/// deltas are bracketed by it: one lost to a short timeout on a busy host leaves the step
/// bracketed by a scrape taken during its neighbour's traffic, and the wait costs only the
/// pause between steps.
pub const MIN_BOUNDARY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a boundary scrape is given, for a scraper whose ticks are given `timeout`.
pub fn boundary_timeout(timeout: Duration) -> Duration {
    timeout.max(MIN_BOUNDARY_TIMEOUT)
}

use super::parse_after;
use crate::MetricSample;

/// Scrapes one URL. Cheap to clone (the reqwest client is shared).
#[derive(Debug, Clone)]
pub struct Scraper {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// Whether a sample is recorded: the engines' own families and the process metrics.
pub fn keep_for_recording(name: &str) -> bool {
    ["vllm:", "sglang:", "llamacpp:", "process_"]
        .iter()
        .any(|p| name.starts_with(p))
}

impl Scraper {
    pub fn new(client: reqwest::Client, url: impl Into<String>, timeout: Duration) -> Scraper {
        Scraper {
            client,
            url: url.into(),
            timeout,
        }
    }

    /// The same scraper, given `timeout` to answer.
    pub fn with_timeout(&self, timeout: Duration) -> Scraper {
        Scraper {
            timeout,
            ..self.clone()
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Fetches the body once; on success the HTTP status and text.
    pub async fn fetch(&self) -> Result<(u16, String), (Option<u16>, String)> {
        let resp = self
            .client
            .get(&self.url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| (None, describe(&e, &self.url, self.timeout)))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err((Some(status), format!("{}: HTTP {status}", self.url)));
        }
        let too_big = || {
            (
                Some(status),
                format!(
                    "{}: body larger than {} MiB (the scraper's limit per scrape); not read further",
                    self.url,
                    MAX_SCRAPE_BYTES >> 20
                ),
            )
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_SCRAPE_BYTES as u64)
        {
            return Err(too_big());
        }
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| (Some(status), describe(&e, &self.url, self.timeout)))?
        {
            if body.len() + chunk.len() > MAX_SCRAPE_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        let lines = body.iter().filter(|&&b| b == b'\n').count();
        if lines > MAX_SCRAPE_LINES {
            return Err((
                Some(status),
                format!(
                    "{}: {lines} lines, more than {MAX_SCRAPE_LINES} (the scraper's limit per scrape); not parsed",
                    self.url
                ),
            ));
        }
        // Lossy, as reqwest's `text()` was: a stray byte costs one line, not the scrape.
        let text = String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok((status, text))
    }

    /// One scrape, started now and stamped relative to `t0`.
    pub async fn scrape_once(&self, seq: u64, t0: Instant) -> ScrapeRecord {
        self.scrape_after(seq, t0, &mut Vec::new()).await
    }

    /// [`Scraper::scrape_once`], parsed against `last`, every sample of the endpoint's previous
    /// scrape (recorded or not): a sample that repeats the series at its position there shares
    /// its name and labels ([`parse_after`]). A scrape that answered replaces `last` with its
    /// own samples.
    pub async fn scrape_after(
        &self,
        seq: u64,
        t0: Instant,
        last: &mut Vec<MetricSample>,
    ) -> ScrapeRecord {
        let start = Instant::now();
        let t_s = start.saturating_duration_since(t0).as_secs_f64();
        let fetched = self.fetch().await;
        let duration_s = Some(start.elapsed().as_secs_f64());
        match fetched {
            Err((http_status, error)) => ScrapeRecord {
                seq,
                t_s,
                duration_s,
                http_status,
                error: Some(error),
                boundary: false,
                samples: Vec::new(),
            },
            Ok((status, text)) => {
                let exposition = parse_after(&text, last);
                let error = (!exposition.errors.is_empty()).then(|| {
                    let first: Vec<String> = exposition
                        .errors
                        .iter()
                        .take(3)
                        .map(ToString::to_string)
                        .collect();
                    format!(
                        "{}: {} malformed line(s): {}",
                        self.url,
                        exposition.errors.len(),
                        first.join("; ")
                    )
                });
                let samples = exposition
                    .samples
                    .iter()
                    .filter(|s| keep_for_recording(&s.name))
                    .cloned()
                    .collect();
                *last = exposition.samples;
                ScrapeRecord {
                    seq,
                    t_s,
                    duration_s,
                    http_status: Some(status),
                    error,
                    samples,
                    boundary: false,
                }
            }
        }
    }
}

fn describe(e: &reqwest::Error, url: &str, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("{url}: no answer within {timeout:?}")
    } else if e.is_connect() {
        format!("{url}: cannot connect ({e})")
    } else {
        format!("{url}: {e}")
    }
}

/// A request for one scrape now (at a probe step's boundary); answered once its record is
/// queued on the scraper's channel.
pub type ScrapeNow = tokio::sync::oneshot::Sender<()>;

/// Scrapes every `interval`, and at once on each request from `now` (given
/// [`boundary_timeout`] to answer), until `cancel` fires or the receiver is gone. Ticks missed
/// while a slow scrape was in flight are skipped, not bunched up. Records are numbered in the
/// order taken, whatever started them.
pub async fn run_scraper(
    scraper: Scraper,
    interval: Duration,
    t0: Instant,
    cancel: CancellationToken,
    tx: mpsc::Sender<ScrapeRecord>,
    mut now: mpsc::Receiver<ScrapeNow>,
) {
    let at_boundary = scraper.with_timeout(boundary_timeout(scraper.timeout));
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut seq = 0;
    let mut last = Vec::new();
    let mut requests_open = true;
    loop {
        let reply = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => None,
            r = now.recv(), if requests_open => match r {
                Some(reply) => Some(reply),
                None => {
                    requests_open = false;
                    continue;
                }
            },
        };
        let mut record = tokio::select! {
            _ = cancel.cancelled() => return,
            r = if reply.is_some() { &at_boundary } else { &scraper }
                .scrape_after(seq, t0, &mut last) => r,
        };
        record.boundary = reply.is_some();
        if tx.send(record).await.is_err() {
            return;
        }
        if let Some(reply) = reply {
            let _ = reply.send(());
        }
        seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-route HTTP server answering every request with `status` and `body`.
    async fn serve(status: u16, body: &'static str) -> String {
        serve_after(Duration::ZERO, status, body).await
    }

    /// [`serve`], each answer `delay` after the request.
    async fn serve_after(delay: Duration, status: u16, body: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}/metrics")
    }

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
    }

    #[tokio::test]
    async fn scrape_keeps_engine_and_process_samples_and_reports_bad_lines() {
        let url = serve(
            200,
            "process_open_fds 4\npython_gc_objects_collected_total 3\nvllm:num_requests_running{engine=\"0\"} 2\n...\n",
        )
        .await;
        let s = Scraper::new(client(), url, Duration::from_secs(2));
        let r = s.scrape_once(7, Instant::now()).await;
        assert_eq!(r.seq, 7);
        assert_eq!(r.http_status, Some(200));
        assert_eq!(r.samples.len(), 2);
        assert!(r.error.as_deref().is_some_and(|e| e.contains("line 4")));
        assert!(r.duration_s.is_some_and(|d| d >= 0.0));
    }

    #[tokio::test]
    async fn http_error_and_refused_connection_are_records() {
        let url = serve(503, "busy").await;
        let s = Scraper::new(client(), url, Duration::from_secs(2));
        let r = s.scrape_once(0, Instant::now()).await;
        assert_eq!(r.http_status, Some(503));
        assert!(r.error.is_some() && r.samples.is_empty());

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let s = Scraper::new(
            client(),
            format!("http://{addr}/metrics"),
            Duration::from_secs(2),
        );
        let r = s.scrape_once(0, Instant::now()).await;
        assert_eq!(r.http_status, None);
        assert!(r.error.is_some());
    }

    #[tokio::test]
    async fn run_scraper_numbers_scrapes_and_stops_on_cancel() {
        let url = serve(200, "llamacpp:requests_processing 1\n").await;
        let s = Scraper::new(client(), url, Duration::from_secs(2));
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let (_now_tx, now_rx) = mpsc::channel(1);
        let task = tokio::spawn(run_scraper(
            s,
            Duration::from_millis(10),
            Instant::now(),
            cancel.clone(),
            tx,
            now_rx,
        ));
        let mut seqs = Vec::new();
        while seqs.len() < 3 {
            let r = rx.recv().await.expect("record");
            assert!(r.error.is_none());
            seqs.push(r.seq);
        }
        cancel.cancel();
        task.await.expect("join");
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    /// `s` run with an hourly tick (its first at once): its records, the boundary requests,
    /// the cancel and the task.
    fn hourly(
        s: Scraper,
    ) -> (
        mpsc::Receiver<ScrapeRecord>,
        mpsc::Sender<ScrapeNow>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(16);
        let (now_tx, now_rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_scraper(
            s,
            Duration::from_secs(3600),
            Instant::now(),
            cancel.clone(),
            tx,
            now_rx,
        ));
        (rx, now_tx, cancel, task)
    }

    #[tokio::test]
    async fn a_scrape_on_request_is_taken_at_once_and_answered_after_it_is_queued() {
        let url = serve(200, "vllm:num_requests_running 3\n").await;
        let s = Scraper::new(client(), url, Duration::from_secs(2));
        let (mut rx, now_tx, cancel, task) = hourly(s);
        // The interval's first tick fires at once; take that record first.
        let first = rx.recv().await.expect("first tick");
        assert_eq!(first.seq, 0);
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        now_tx.send(reply_tx).await.expect("request");
        tokio::time::timeout(Duration::from_secs(5), reply_rx)
            .await
            .expect("answered well before the next tick")
            .expect("reply");
        let r = rx
            .try_recv()
            .expect("the record is queued before the answer");
        assert_eq!(r.seq, 1);
        assert_eq!(r.samples.len(), 1);
        cancel.cancel();
        task.await.expect("join");
    }

    #[tokio::test]
    async fn a_boundary_scrape_is_given_longer_than_a_tick() {
        // An engine 300 ms slow to answer: a tick given 100 ms loses its scrape, a boundary
        // (between two probe steps, bracketing their counters) waits for it.
        let url = serve_after(
            Duration::from_millis(300),
            200,
            "vllm:num_requests_running 3\n",
        )
        .await;
        let s = Scraper::new(client(), url, Duration::from_millis(100));
        let (mut rx, now_tx, cancel, task) = hourly(s);
        let tick = rx.recv().await.expect("first tick");
        assert!(
            tick.error
                .as_deref()
                .is_some_and(|e| e.contains("no answer")),
            "{tick:?}"
        );
        assert!(!tick.boundary);
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        now_tx.send(reply_tx).await.expect("request");
        let wait = boundary_timeout(Duration::from_millis(100)) + Duration::from_secs(1);
        assert_eq!(wait, Duration::from_secs(3));
        tokio::time::timeout(wait, reply_rx)
            .await
            .expect("answered")
            .expect("reply");
        let r = rx.try_recv().expect("queued");
        assert!(r.boundary && r.error.is_none(), "{r:?}");
        assert_eq!(r.samples.len(), 1);
        cancel.cancel();
        task.await.expect("join");
    }
}
