//! Fault injection for reliability tests: which faults are on, at what rate, and the per-request
//! and per-scrape draws. Counts every fault it injects so `/sim/truth` can report them. It does
//! not touch the scheduler: every fault is applied at the HTTP layer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use crate::error::SimError;

/// Fault rates, each a probability in [0, 1]. All zero by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Answer a completion request with HTTP 500.
    pub http_500: f64,
    /// Answer a completion request with HTTP 429.
    pub http_429: f64,
    /// Close a response mid-stream (the connection is cut, no `[DONE]`).
    pub drop: f64,
    /// Pause a stream once for `stall_ms` milliseconds (wall time; `--time-scale` does not apply).
    pub stall: f64,
    pub stall_ms: u64,
    /// Serve a malformed `/metrics` exposition.
    pub bad_metrics: f64,
}

impl Faults {
    /// Parses `P:MS` (the `--fault-stall` form).
    pub fn parse_stall(text: &str) -> Result<(f64, u64), SimError> {
        let (p, ms) = text
            .split_once(':')
            .ok_or_else(|| SimError::Fault(format!("expected P:MS, e.g. 0.1:500, got {text:?}")))?;
        let p = parse_probability(p)?;
        let ms: u64 = ms.trim().parse().map_err(|_| {
            SimError::Fault(format!("stall milliseconds {ms:?} is not a whole number"))
        })?;
        Ok((p, ms))
    }

    /// Checks every rate is a probability.
    pub fn validate(&self) -> Result<(), SimError> {
        for (name, p) in [
            ("http-500", self.http_500),
            ("http-429", self.http_429),
            ("drop", self.drop),
            ("stall", self.stall),
            ("bad-metrics", self.bad_metrics),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimError::Fault(format!(
                    "--fault-{name} must be a probability in [0, 1], got {p}"
                )));
            }
        }
        Ok(())
    }
}

/// Parses a probability in [0, 1] (clap value parser for the fault flags).
pub fn parse_probability(text: &str) -> Result<f64, SimError> {
    let p: f64 = text
        .trim()
        .parse()
        .map_err(|_| SimError::Fault(format!("{text:?} is not a number")))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(SimError::Fault(format!(
            "{p} is not a probability in [0, 1]"
        )));
    }
    Ok(p)
}

/// What happens to one completion request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFault {
    None,
    Http500,
    Http429,
    /// Cut the connection after this many streamed events.
    Drop {
        after_events: u32,
    },
    /// Hold the stream for this long before this event.
    Stall {
        before_event: u32,
        pause: Duration,
    },
}

/// Counts of injected faults (reported in the truth).
#[derive(Debug, Default)]
pub(crate) struct FaultCounters {
    pub http_500: AtomicU64,
    pub http_429: AtomicU64,
    pub drop: AtomicU64,
    pub stall: AtomicU64,
    pub bad_metrics: AtomicU64,
}

/// How many faults of each kind were injected so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FaultsInjected {
    pub http_500: u64,
    pub http_429: u64,
    pub drop: u64,
    pub stall: u64,
    pub bad_metrics: u64,
}

impl FaultCounters {
    pub fn snapshot(&self) -> FaultsInjected {
        FaultsInjected {
            http_500: self.http_500.load(Ordering::Relaxed),
            http_429: self.http_429.load(Ordering::Relaxed),
            drop: self.drop.load(Ordering::Relaxed),
            stall: self.stall.load(Ordering::Relaxed),
            bad_metrics: self.bad_metrics.load(Ordering::Relaxed),
        }
    }
}

impl Faults {
    /// Draws the fault for one request expected to stream about `expected_events` events.
    pub(crate) fn draw_request(
        &self,
        counters: &FaultCounters,
        expected_events: u32,
    ) -> RequestFault {
        let mut rng = rand::rng();
        let span = expected_events.max(2);
        if rng.random_bool(self.http_500) {
            counters.http_500.fetch_add(1, Ordering::Relaxed);
            return RequestFault::Http500;
        }
        if rng.random_bool(self.http_429) {
            counters.http_429.fetch_add(1, Ordering::Relaxed);
            return RequestFault::Http429;
        }
        if rng.random_bool(self.drop) {
            counters.drop.fetch_add(1, Ordering::Relaxed);
            return RequestFault::Drop {
                after_events: rng.random_range(1..span),
            };
        }
        if rng.random_bool(self.stall) {
            counters.stall.fetch_add(1, Ordering::Relaxed);
            return RequestFault::Stall {
                before_event: rng.random_range(1..span),
                pause: Duration::from_millis(self.stall_ms),
            };
        }
        RequestFault::None
    }

    /// Whether this scrape gets a malformed exposition.
    pub(crate) fn draw_bad_metrics(&self, counters: &FaultCounters) -> bool {
        let bad = rand::rng().random_bool(self.bad_metrics);
        if bad {
            counters.bad_metrics.fetch_add(1, Ordering::Relaxed);
        }
        bad
    }
}

/// Turns a valid exposition into a malformed one: cut mid-line, then a line with an unclosed
/// label set and a non-numeric value, as a half-written or corrupted scrape would look.
pub(crate) fn corrupt_exposition(text: &str) -> String {
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = text[..cut].to_string();
    out.push_str("{le=\"0.5\"\n");
    out.push_str("sim_corrupted{reason=\"injected fault\" not-a-number\n");
    out
}
