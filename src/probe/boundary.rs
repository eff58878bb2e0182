//! [`Boundary`]: the handle a step's workers use to take one engine scrape between two probe
//! steps. The telemetry makes it (it owns the scraper); the probe only calls it, so the probe
//! depends on nothing of the telemetry.

use std::time::Duration;

use ceiling_collectors::prometheus::ScrapeNow;
use tokio::sync::mpsc;

/// Takes one scrape between two probe steps, so a step's counter deltas are bracketed by
/// samples with no neighbouring step's traffic in them. Without a scraper it does nothing.
#[derive(Debug, Clone, Default)]
pub struct Boundary {
    now: Option<mpsc::Sender<ScrapeNow>>,
    timeout: Duration,
}

impl Boundary {
    /// A boundary that asks the scraper behind `now` for a scrape, waiting at most `timeout`.
    pub fn new(now: mpsc::Sender<ScrapeNow>, timeout: Duration) -> Self {
        Boundary {
            now: Some(now),
            timeout,
        }
    }

    /// Scrapes now and waits until the record is taken (at most `timeout`: a tick's scrape in
    /// flight and the boundary's own, plus a second for the queue): a slow or dead engine
    /// delays the next step by that, never more.
    pub async fn scrape(&self) {
        let Some(now) = &self.now else {
            return;
        };
        let (reply, answered) = tokio::sync::oneshot::channel();
        if now.send(reply).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(self.timeout + Duration::from_secs(1), answered).await;
    }
}
