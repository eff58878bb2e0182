//! `--batch-sizes auto`: the search for the largest batch size the engine follows at the SLA.
//!
//! A search is a probe run whose steps are not listed in advance: after each step the run is
//! read back from the recording and analysed like any other, each step is judged
//! ([`judge()`]: did the engine follow this batch size, and if not, which limit stopped it), and
//! [`decide()`] picks the next batch size or ends the search — both pure functions of the
//! measurements. Because the decisions are functions of the recording, `ceiling analyze` and
//! `ceiling report` replay them from the database alone ([`section::replay`]) and show the same
//! path. This module owns the search's settings ([`SearchSettings`], stored in the run's probe
//! configuration), what the engine says it can hold ([`EngineHold`]), the judgement, the
//! decision and the search's section of the result; it does not run steps (`run.rs` does).

pub mod decide;
pub mod judge;
pub mod live;
pub mod section;

use serde::{Deserialize, Serialize};

use ceiling_reports::ceiling::DEFAULT_SLA_OTPS;

pub use decide::{Decision, Judged, Outcome, Stop, decide};
pub use judge::{Limit, StepMeasure, Verdict, judge};
pub use section::{SearchReport, replay};

/// The bracket's default precision: the search stops when the first batch size not followed is
/// within 5 % of the last one followed.
pub const DEFAULT_PRECISION: f64 = 0.05;

/// How a search runs, as the run's probe configuration stores it (`search` key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    pub input_len: u32,
    pub output_len: u32,
    /// `--budget`: no step starts that would end past this many seconds of search.
    pub budget_s: f64,
    /// `--sla-otps`; with neither SLA given, [`DEFAULT_SLA_OTPS`] applies.
    pub sla_otps: Option<f64>,
    /// `--sla-tpot`, seconds.
    pub sla_tpot_s: Option<f64>,
    /// The bracket's relative width at which the search stops.
    pub precision: f64,
    /// What the engine said it can hold at these lengths, read before the run.
    pub engine_hold: Option<EngineHold>,
}

impl SearchSettings {
    /// A search at these lengths with the defaults: a 5-minute budget, the default SLA, 5 %.
    pub fn new(input_len: u32, output_len: u32) -> Self {
        SearchSettings {
            input_len,
            output_len,
            budget_s: 300.0,
            sla_otps: None,
            sla_tpot_s: None,
            precision: DEFAULT_PRECISION,
            engine_hold: None,
        }
    }

    /// The OTPS SLA in force: the one given, else the default when no TPOT SLA is given either.
    pub fn sla_otps_or_default(&self) -> Option<f64> {
        match (self.sla_otps, self.sla_tpot_s) {
            (Some(o), _) => Some(o),
            (None, None) => Some(DEFAULT_SLA_OTPS),
            (None, Some(_)) => None,
        }
    }
}

/// Which of the engine's figures bounds what it can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldLimit {
    /// The engine's slots or sequence cap.
    SequenceCap,
    /// The KV cache divided by the tokens one sequence needs at the search's lengths.
    KvCapacity,
}

/// The most sequences the engine says it can run at once at the search's lengths (all DP ranks
/// together): the doubling goes no further than this before one step above it checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineHold {
    pub max_batch: u32,
    pub limit: HoldLimit,
    /// Where it was read, e.g. `llama.cpp /props total_slots`.
    pub source: String,
}

/// What the engine declared, read before the run: llama.cpp's slots (`/props`), the KV
/// capacity in tokens of the whole node (vLLM `cache_config_info` blocks × block size, SGLang
/// `max_total_num_tokens`, llama.cpp slots × per-slot context).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Declared {
    pub slots: Option<u32>,
    pub kv_capacity_tokens: Option<f64>,
    /// Where the KV figure came from (the metric name).
    pub kv_source: Option<String>,
}

impl Declared {
    /// What the engine can hold when each sequence needs `tokens_per_seq` KV tokens (prompt plus
    /// output): the smaller of its slots and its KV capacity over `tokens_per_seq`.
    pub fn hold(&self, tokens_per_seq: u32) -> Option<EngineHold> {
        let by_slots = self.slots.filter(|n| *n > 0).map(|n| EngineHold {
            max_batch: n,
            limit: HoldLimit::SequenceCap,
            source: "llama.cpp /props total_slots".into(),
        });
        let by_kv = self
            .kv_capacity_tokens
            .filter(|k| k.is_finite() && *k >= f64::from(tokens_per_seq.max(1)))
            .map(|k| EngineHold {
                max_batch: (k / f64::from(tokens_per_seq.max(1)))
                    .floor()
                    .min(f64::from(u32::MAX)) as u32,
                limit: HoldLimit::KvCapacity,
                source: self.kv_source.clone().unwrap_or_else(|| "/metrics".into()),
            });
        match (by_slots, by_kv) {
            (Some(s), Some(k)) if k.max_batch < s.max_batch => Some(k),
            (Some(s), _) => Some(s),
            (None, k) => k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hold_is_the_smaller_of_the_slots_and_the_kv_over_a_sequence() {
        // vLLM llama-8b-h100: 28,000 blocks × 16 tokens, 384 tokens a sequence.
        let vllm = Declared {
            kv_capacity_tokens: Some(448_000.0),
            kv_source: Some("vllm:cache_config_info".into()),
            ..Declared::default()
        };
        let h = vllm.hold(384).unwrap();
        assert_eq!((h.max_batch, h.limit), (1166, HoldLimit::KvCapacity));
        assert_eq!(h.source, "vllm:cache_config_info");
        // llama.cpp: 8 slots of 1,024 tokens; the slots bind.
        let llama = Declared {
            slots: Some(8),
            kv_capacity_tokens: Some(8192.0),
            kv_source: None,
        };
        let h = llama.hold(160).unwrap();
        assert_eq!((h.max_batch, h.limit), (8, HoldLimit::SequenceCap));
        // A KV cache too small for one sequence says nothing usable.
        let tiny = Declared {
            kv_capacity_tokens: Some(100.0),
            ..Declared::default()
        };
        assert_eq!(tiny.hold(384), None);
        assert_eq!(Declared::default().hold(384), None);
    }

    #[test]
    fn the_default_sla_applies_only_when_none_is_given() {
        let mut s = SearchSettings::new(1, 2);
        assert_eq!(s.sla_otps_or_default(), Some(DEFAULT_SLA_OTPS));
        s.sla_tpot_s = Some(0.05);
        assert_eq!(s.sla_otps_or_default(), None);
        s.sla_otps = Some(7.0);
        assert_eq!(s.sla_otps_or_default(), Some(7.0));
    }
}
