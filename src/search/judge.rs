//! Whether the engine followed one step of the search: [`StepMeasure`] is what the judgement
//! reads of a finished step (from its [`StepSummary`] and [`StepTiming`]), [`judge`] the pure
//! rule. The engine follows a batch size when its running batch reached `bs` (and the client saw
//! all `bs` sequences decode together), nothing was preempted or left waiting inside the decode
//! window, the KV cache stayed under 95 %, no request failed and the SLA held. Otherwise the
//! first of those that failed is the step's [`Limit`].

use serde::{Deserialize, Serialize};

use ceiling_reports::StepSummary;
use ceiling_reports::recording::Pattern;
use ceiling_reports::step_time::StepTiming;

use super::SearchSettings;

/// KV usage at or above this fraction is a full cache: the next batch would preempt.
pub const KV_FULL_FRAC: f64 = 0.95;

/// What the judgement reads of one finished step. A figure the step did not yield is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMeasure {
    pub step_idx: u32,
    pub batch_size: u32,
    /// Requests sent outside warm-up.
    pub requests: u32,
    pub requests_failed: u32,
    /// Seconds in which the client saw all `bs` sequences decode together (0: never).
    pub window_s: f64,
    /// Wave steps: a window proves the engine ran all `bs` sequences at once.
    pub wave: bool,
    /// The engine's running requests, the most it reported in the windows (or, with no window,
    /// over the requests' span), summed over DP ranks.
    pub running_max: Option<f64>,
    /// Requests waiting in the engine inside the decode windows (`None` without a window).
    pub waiting_max: Option<f64>,
    pub kv_usage_max_frac: Option<f64>,
    pub preemptions: Option<f64>,
    pub t_fwd_s: Option<f64>,
    /// Tokens per sequence per engine step.
    pub mtp: f64,
    /// The step's wall time, start to end.
    pub duration_s: Option<f64>,
}

impl StepMeasure {
    /// The measure of one step from the analysis' figures for it.
    pub fn from_analysis(s: &StepSummary, t: &StepTiming, duration_s: Option<f64>) -> Self {
        let e = &t.engine;
        StepMeasure {
            step_idx: s.step_idx,
            batch_size: s.batch_size,
            requests: s.requests,
            requests_failed: s.requests_failed,
            window_s: t.window_s,
            wave: s.pattern == Pattern::Wave,
            running_max: e.running_max,
            waiting_max: if e.over_requests_span {
                None
            } else {
                e.waiting_max
            },
            kv_usage_max_frac: e.kv_usage_max_frac,
            preemptions: e.preemptions,
            t_fwd_s: t.t_fwd_s.filter(|v| v.is_finite() && *v > 0.0),
            mtp: t.mtp,
            duration_s,
        }
    }

    /// Output tokens per second of one sequence: `MTP / t_fwd`.
    pub fn otps(&self) -> Option<f64> {
        self.t_fwd_s.map(|t| self.mtp / t)
    }

    /// Output tokens per second of the node: `bs × MTP / t_fwd` (bs over all DP ranks).
    pub fn throughput_tok_s(&self) -> Option<f64> {
        self.otps().map(|o| f64::from(self.batch_size) * o)
    }
}

/// Why the engine did not follow a step's batch size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Limit {
    /// Requests failed (any outcome but ok).
    Errors { failed: u32, requests: u32 },
    /// The engine preempted sequences: its KV cache could not hold the batch as it grew.
    Preemption { preemptions: f64 },
    /// The KV cache reached [`KV_FULL_FRAC`].
    KvCapacity { kv_usage_max_frac: f64 },
    /// The running batch stopped below `bs`: the engine runs at most `cap` sequences.
    SequenceCap { cap: u32 },
    /// Requests waited in the engine while the batch decoded.
    Queueing { waiting_max: f64 },
    /// The client never saw all `bs` sequences decode together (and the engine does not say
    /// why): lengthen --output-len, or give the engine's /metrics.
    NoWindow,
    /// No step time could be measured.
    NoStepTime,
    /// Per-sequence speed below the SLA.
    Sla {
        otps: f64,
        tpot_s: f64,
        sla_otps: Option<f64>,
        sla_tpot_s: Option<f64>,
    },
}

impl Limit {
    /// The limit's name as the result spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Limit::Errors { .. } => "errors",
            Limit::Preemption { .. } => "preemption",
            Limit::KvCapacity { .. } => "kv_capacity",
            Limit::SequenceCap { .. } => "sequence_cap",
            Limit::Queueing { .. } => "queueing",
            Limit::NoWindow => "no_window",
            Limit::NoStepTime => "no_step_time",
            Limit::Sla { .. } => "sla",
        }
    }

    /// One line: what stopped the engine, with its numbers.
    pub fn describe(&self) -> String {
        match self {
            Limit::Errors { failed, requests } => {
                format!("errors: {failed} of {requests} requests failed")
            }
            Limit::Preemption { preemptions } => {
                format!("preemptions: the engine preempted {preemptions:.0} sequences")
            }
            Limit::KvCapacity { kv_usage_max_frac } => format!(
                "KV capacity: the cache reached {:.0} %",
                kv_usage_max_frac * 100.0
            ),
            Limit::SequenceCap { cap } => {
                format!("sequence cap: the running batch stopped at {cap}")
            }
            Limit::Queueing { waiting_max } => {
                format!("queueing: {waiting_max:.0} requests waited while the batch decoded")
            }
            Limit::NoWindow => "no decode window: the client never saw the whole batch decode \
                                together"
                .into(),
            Limit::NoStepTime => "no step time could be measured".into(),
            Limit::Sla {
                otps,
                tpot_s,
                sla_otps,
                sla_tpot_s,
            } => {
                let mut need = Vec::new();
                if let Some(s) = sla_otps {
                    need.push(format!("≥ {s:.1} tok/s"));
                }
                if let Some(s) = sla_tpot_s {
                    need.push(format!("TPOT ≤ {:.2} ms", s * 1e3));
                }
                format!(
                    "SLA: {otps:.1} tok/s per sequence (TPOT {:.2} ms) against {}",
                    tpot_s * 1e3,
                    need.join(" and ")
                )
            }
        }
    }
}

/// The judgement of one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Follows,
    Stopped { limit: Limit },
}

impl Verdict {
    pub fn follows(&self) -> bool {
        matches!(self, Verdict::Follows)
    }

    pub fn limit(&self) -> Option<&Limit> {
        match self {
            Verdict::Follows => None,
            Verdict::Stopped { limit } => Some(limit),
        }
    }
}

/// Whether the engine followed the step, and if not, the first limit it hit: errors,
/// preemptions, a full KV cache, a running batch below `bs` (the sequence cap), requests waiting
/// inside the window, no window at all, no step time, the SLA — in that order.
pub fn judge(m: &StepMeasure, settings: &SearchSettings) -> Verdict {
    let stop = |limit| Verdict::Stopped { limit };
    if m.requests_failed > 0 {
        return stop(Limit::Errors {
            failed: m.requests_failed,
            requests: m.requests,
        });
    }
    if let Some(p) = m.preemptions.filter(|p| *p > 0.0) {
        return stop(Limit::Preemption { preemptions: p });
    }
    if let Some(u) = m.kv_usage_max_frac.filter(|u| *u >= KV_FULL_FRAC) {
        return stop(Limit::KvCapacity {
            kv_usage_max_frac: u,
        });
    }
    // Gauges are whole numbers of requests; half a request of slack absorbs averaging over
    // ranks. A wave's window is the client's proof that all `bs` decoded at once: a gauge below
    // bs then lags (SGLang refreshes its gauges every 40 decode steps), it is not a cap.
    let proven = m.wave && m.window_s > 0.0;
    if let Some(r) = m
        .running_max
        .filter(|r| *r < f64::from(m.batch_size) - 0.5 && !proven)
    {
        return stop(Limit::SequenceCap {
            cap: r.round().max(0.0) as u32,
        });
    }
    if let Some(w) = m.waiting_max.filter(|w| *w >= 0.5) {
        return stop(Limit::Queueing { waiting_max: w });
    }
    if m.window_s <= 0.0 {
        return stop(Limit::NoWindow);
    }
    let (Some(otps), Some(t)) = (m.otps(), m.t_fwd_s) else {
        return stop(Limit::NoStepTime);
    };
    let tpot_s = t / m.mtp;
    let sla_otps = settings.sla_otps_or_default();
    let slow =
        sla_otps.is_some_and(|s| otps < s) || settings.sla_tpot_s.is_some_and(|s| tpot_s > s);
    if slow {
        return stop(Limit::Sla {
            otps,
            tpot_s,
            sla_otps,
            sla_tpot_s: settings.sla_tpot_s,
        });
    }
    Verdict::Follows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A healthy bs-64 step: 12 ms steps (83 tok/s per sequence), engine at 64, nothing waiting.
    fn healthy() -> StepMeasure {
        StepMeasure {
            step_idx: 3,
            batch_size: 64,
            requests: 128,
            requests_failed: 0,
            window_s: 2.0,
            wave: true,
            running_max: Some(64.0),
            waiting_max: Some(0.0),
            kv_usage_max_frac: Some(0.40),
            preemptions: Some(0.0),
            t_fwd_s: Some(0.012),
            mtp: 1.0,
            duration_s: Some(8.0),
        }
    }

    fn settings() -> SearchSettings {
        SearchSettings::new(128, 128)
    }

    fn limit_of(m: &StepMeasure, s: &SearchSettings) -> Option<Limit> {
        judge(m, s).limit().copied()
    }

    #[test]
    fn a_healthy_step_follows_and_its_throughput_is_bs_times_otps() {
        let m = healthy();
        assert_eq!(judge(&m, &settings()), Verdict::Follows);
        assert!((m.throughput_tok_s().unwrap() - 64.0 / 0.012).abs() < 1e-6);
        // Missing engine figures are not evidence against the step: the client's window holds.
        let bare = StepMeasure {
            running_max: None,
            waiting_max: None,
            kv_usage_max_frac: None,
            preemptions: None,
            ..healthy()
        };
        assert_eq!(judge(&bare, &settings()), Verdict::Follows);
    }

    #[test]
    fn failed_requests_stop_the_search_and_none_do_not() {
        let m = StepMeasure {
            requests_failed: 3,
            ..healthy()
        };
        assert_eq!(
            limit_of(&m, &settings()),
            Some(Limit::Errors {
                failed: 3,
                requests: 128
            })
        );
        assert_eq!(limit_of(&healthy(), &settings()), None);
    }

    #[test]
    fn preemptions_stop_and_zero_preemptions_do_not() {
        let m = StepMeasure {
            preemptions: Some(5.0),
            ..healthy()
        };
        assert_eq!(
            limit_of(&m, &settings()),
            Some(Limit::Preemption { preemptions: 5.0 })
        );
        assert!(judge(&healthy(), &settings()).follows());
    }

    #[test]
    fn a_kv_cache_at_95_percent_stops_and_at_94_does_not() {
        let full = StepMeasure {
            kv_usage_max_frac: Some(0.95),
            ..healthy()
        };
        assert_eq!(limit_of(&full, &settings()).unwrap().name(), "kv_capacity");
        let nearly = StepMeasure {
            kv_usage_max_frac: Some(0.94),
            ..healthy()
        };
        assert!(judge(&nearly, &settings()).follows());
    }

    #[test]
    fn a_running_batch_below_bs_is_the_sequence_cap_and_at_bs_is_not() {
        // bs 512 against a 256-sequence engine: no window, the running batch plateaus at 256.
        let capped = StepMeasure {
            batch_size: 512,
            window_s: 0.0,
            running_max: Some(256.0),
            waiting_max: None,
            ..healthy()
        };
        assert_eq!(
            limit_of(&capped, &settings()),
            Some(Limit::SequenceCap { cap: 256 })
        );
        let full = StepMeasure {
            batch_size: 256,
            running_max: Some(256.0),
            ..healthy()
        };
        assert!(judge(&full, &settings()).follows());
        // A stale gauge under a wave's window is not a cap; under a closed loop's window (where
        // the client holds bs, the engine perhaps fewer) it is.
        let stale = StepMeasure {
            running_max: Some(60.0),
            ..healthy()
        };
        assert!(judge(&stale, &settings()).follows());
        let closed_loop = StepMeasure {
            wave: false,
            ..stale
        };
        assert_eq!(
            limit_of(&closed_loop, &settings()),
            Some(Limit::SequenceCap { cap: 60 })
        );
    }

    #[test]
    fn requests_waiting_inside_the_window_stop_and_none_waiting_do_not() {
        let m = StepMeasure {
            waiting_max: Some(2.0),
            ..healthy()
        };
        assert_eq!(
            limit_of(&m, &settings()),
            Some(Limit::Queueing { waiting_max: 2.0 })
        );
        // Waiting outside any window (a wave's prefill) is not read: `waiting_max` is None.
        let m = StepMeasure {
            waiting_max: None,
            ..healthy()
        };
        assert!(judge(&m, &settings()).follows());
    }

    #[test]
    fn no_window_or_no_step_time_stops() {
        let m = StepMeasure {
            window_s: 0.0,
            running_max: None,
            ..healthy()
        };
        assert_eq!(limit_of(&m, &settings()), Some(Limit::NoWindow));
        let m = StepMeasure {
            t_fwd_s: None,
            ..healthy()
        };
        assert_eq!(limit_of(&m, &settings()), Some(Limit::NoStepTime));
    }

    #[test]
    fn the_sla_stops_below_it_and_not_at_or_above_it() {
        // 12 ms steps: 83.3 tok/s per sequence.
        let mut s = settings();
        s.sla_otps = Some(90.0);
        let Some(Limit::Sla { otps, .. }) = limit_of(&healthy(), &s) else {
            panic!("83 tok/s is below a 90 tok/s SLA")
        };
        assert!((otps - 83.33).abs() < 0.01);
        s.sla_otps = Some(80.0);
        assert!(judge(&healthy(), &s).follows());
        // TPOT: 12 ms against 10 ms stops; against 15 ms follows.
        let mut s = settings();
        s.sla_tpot_s = Some(0.010);
        assert_eq!(limit_of(&healthy(), &s).unwrap().name(), "sla");
        s.sla_tpot_s = Some(0.015);
        assert!(judge(&healthy(), &s).follows());
        // The default SLA: 20 tok/s per sequence, i.e. a 50 ms step.
        let slow = StepMeasure {
            t_fwd_s: Some(0.051),
            ..healthy()
        };
        assert_eq!(limit_of(&slow, &settings()).unwrap().name(), "sla");
        // MTP 2 doubles the tokens per step: 2 / 51 ms = 39 tok/s meets it.
        let spec = StepMeasure { mtp: 2.0, ..slow };
        assert!(judge(&spec, &settings()).follows());
    }
}
