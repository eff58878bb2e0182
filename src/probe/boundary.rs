//! [`Boundary`]: the handle a step's workers use to take one engine scrape between two probe
//! steps. The telemetry makes it (it owns the scraper); the probe only calls it, so the probe
//! depends on nothing of the telemetry.

use std::time::Duration;

use ceiling_collectors::prometheus::ScrapeNow;
use tokio::sync::mpsc;

/// Takes one scrape between two probe steps, so a step's counter deltas are bracketed by
/// samples with no neighbouring step's traffic in them. Every scraper is asked at once; without one it does nothing.
#[derive(Debug, Clone, Default)]
pub struct Boundary {
    /// One per scraper (the engine's, each prefill or decode server's).
    now: Vec<mpsc::Sender<ScrapeNow>>,
    timeout: Duration,
}

impl Boundary {
    /// A boundary that asks the scraper behind `now` for a scrape, waiting at most `timeout`.
    pub fn new(now: mpsc::Sender<ScrapeNow>, timeout: Duration) -> Self {
        let mut b = Boundary::default();
        b.add(now, timeout);
        b
    }

    /// Asks the scraper behind `now` too; the wait is the longest of the scrapers' timeouts.
    pub fn add(&mut self, now: mpsc::Sender<ScrapeNow>, timeout: Duration) {
        self.now.push(now);
        self.timeout = self.timeout.max(timeout);
    }

    /// Scrapes now and waits until the record is taken (at most `timeout`: a tick's scrape in
    /// flight and the boundary's own, plus a second for the queue): a slow or dead engine
    /// delays the next step by that, never more.
    pub async fn scrape(&self) {
        let asks = self.now.iter().map(|now| async move {
            let (reply, answered) = tokio::sync::oneshot::channel();
            if now.send(reply).await.is_err() {
                return;
            }
            let _ = tokio::time::timeout(self.timeout + Duration::from_secs(1), answered).await;
        });
        futures_util::future::join_all(asks).await;
    }
}
