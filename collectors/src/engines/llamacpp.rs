//! llama.cpp `llama-server --metrics`: `docs/ENGINE-METRICS.md` section 3. One process, no
//! labels. No KV capacity in `/metrics` (it is in `/props`, read by [`props_capacity`]); no
//! latency histograms.
//!
//! Traps the adapter and its callers must respect:
//! - `tokens_predicted_total` and `tokens_predicted_seconds_total` move only when a request
//!   finishes (b11434 adds a request's tokens and its generation time at the end), so they are
//!   `generation_tokens_total` / `generation_seconds_total`, never the live counter: a rate over a
//!   window in which no request finished reads 0. `live_generation_tokens_total` stays `None`.
//! - `n_decode_total` counts `llama_decode()` calls, prefill batches included: a step time from it
//!   needs a window in which every sequence decodes (the probe's measurement window).
//! - `n_busy_slots_per_decode` is a running average since start; [`busy_slots_between`] turns two
//!   scrapes of it into the mean busy slots per decode call between them.
//! - The spec-decode counters are present (at 0) even without a draft model.
//!
//! The `/metrics` part is a table; the windowed busy slots and `/props` stay code. It reads
//! names and values only; it never fetches anything.

use serde::Serialize;

use super::Signals;
use super::table::{Adapter, Derived, Num, Reduce, Row, num};
use super::view::{Keep, View};

use Num::*;
use Reduce::Sum;

/// One row per signal: the signal, the reduction, the name. One process and no labels, so
/// `Sum` reads the one series.
#[rustfmt::skip]
const ROWS: &[Row] = &[
    num(Running, Sum, &["llamacpp:requests_processing"]),
    num(Waiting, Sum, &["llamacpp:requests_deferred"]),
    // Both removed in May 2025 (#13660); older builds only.
    num(KvUsageFrac, Sum, &["llamacpp:kv_cache_usage_ratio"]),
    num(KvUsedTokens, Sum, &["llamacpp:kv_cache_tokens"]),
    // Evaluated prompt tokens: cached ones are not in it (b11434 HELP).
    num(PromptTokensTotal, Sum, &["llamacpp:prompt_tokens_total"]),
    // Added when a request finishes: never the live counter.
    num(GenerationTokensTotal, Sum, &["llamacpp:tokens_predicted_total"]),
    num(GenerationSecondsTotal, Sum, &["llamacpp:tokens_predicted_seconds_total"]),
    num(StepsTotal, Sum, &["llamacpp:n_decode_total"]),
    num(BusySlotsPerDecode, Sum, &["llamacpp:n_busy_slots_per_decode"]),
    num(PrefixCacheHitsTotal, Sum, &["llamacpp:prompt_tokens_cached_total"]),
    num(SpecDraftsTotal, Sum, &["llamacpp:spec_decode_num_drafts_total"]),
    num(SpecDraftTokensTotal, Sum, &["llamacpp:spec_decode_num_draft_tokens_total"]),
    num(SpecAcceptedTokensTotal, Sum,
        &["llamacpp:spec_decode_num_accepted_tokens_total"]),
];

/// Prefix-cache queries: the evaluated prompt tokens plus the cached ones.
const DERIVED: &[Derived] = &[Derived::Add {
    signal: PrefixCacheQueriesTotal,
    a: PromptTokensTotal,
    b: PrefixCacheHitsTotal,
}];

pub(super) static ADAPTER: Adapter = Adapter {
    keep: Keep::All,
    dp_label: None,
    rows: ROWS,
    derived: DERIVED,
    code: Some(spec_at_request_end),
};

/// The spec-decode counters are added when a slot is released (`server_metrics::on_prediction`).
fn spec_at_request_end(_: &View<'_>, out: &mut Signals) {
    out.spec_at_request_end = out.spec_drafts_total.is_some();
}

/// Mean busy slots per `llama_decode()` call between two scrapes, from the running average
/// `r = n_busy_slots_per_decode` and the call count `n = n_decode_total`:
/// `(r₂·n₂ − r₁·n₁) / (n₂ − n₁)`. `None` when either scrape lacks them or no call happened
/// between them (or the counter went back: a restart).
pub fn busy_slots_between(before: &Signals, after: &Signals) -> Option<f64> {
    let (r1, n1) = (before.busy_slots_per_decode?, before.steps_total?);
    let (r2, n2) = (after.busy_slots_per_decode?, after.steps_total?);
    (n2 > n1).then(|| (r2 * n2 - r1 * n1) / (n2 - n1))
}

/// The serving capacity `llama-server` reports at `GET /props`. A field the answer does not
/// carry is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlotCapacity {
    /// `total_slots`: sequences served at once (`-np`); more requests wait in
    /// `requests_deferred`.
    pub total_slots: Option<u32>,
    /// `default_generation_settings.n_ctx`: the context of one slot (`-c / -np`), the most
    /// prompt + output tokens one request can hold.
    pub n_ctx_per_slot: Option<u32>,
    /// `build_info`, e.g. `b11434-unknown`: the engine's version.
    pub build_info: Option<String>,
    pub model_path: Option<String>,
}

impl SlotCapacity {
    /// KV capacity in tokens over every slot (`total_slots × n_ctx`).
    pub fn kv_capacity_tokens(&self) -> Option<u64> {
        Some(u64::from(self.total_slots?) * u64::from(self.n_ctx_per_slot?))
    }
}

/// Reads the capacity out of a `/props` answer.
pub fn props_capacity(props: &serde_json::Value) -> SlotCapacity {
    let u32_at = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let str_at = |key: &str| props.get(key).and_then(|v| v.as_str()).map(str::to_string);
    SlotCapacity {
        total_slots: u32_at(props.get("total_slots")),
        n_ctx_per_slot: u32_at(
            props
                .get("default_generation_settings")
                .and_then(|g| g.get("n_ctx")),
        ),
        build_info: str_at("build_info"),
        model_path: str_at("model_path"),
    }
}
