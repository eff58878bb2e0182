//! llama.cpp `llama-server`'s exposition (b11434 names and HELP text): unlabelled families,
//! numbers in C++ `ostream` format, token counters that move when a request ends, and two
//! throughput gauges over a window that every scrape resets.

use super::text::{Expo, Getter, cpp_g6};
use crate::profile::Profile;
use crate::stats::RankStats;

/// llama.cpp: unlabelled, one process; with `--dp` the ranks are summed.
pub(super) fn render(profile: &Profile, ranks: &[RankStats]) -> String {
    let mut e = Expo::new(cpp_g6);
    let sum = |f: Getter| ranks.iter().map(f).sum::<f64>();
    let n_decode = sum(|s| s.lc_n_decode as f64);
    let mut rows: Vec<(&str, &str, &str, f64)> = vec![
        (
            "llamacpp:prompt_tokens_total",
            "Number of prompt tokens processed, excluding cached tokens",
            "counter",
            sum(|s| s.lc_prompt_tokens as f64),
        ),
        (
            "llamacpp:prompt_tokens_cached_total",
            "Number of prompt tokens reused from the cache",
            "counter",
            sum(|s| s.lc_prompt_tokens_cached as f64),
        ),
        (
            "llamacpp:prompt_seconds_total",
            "Total time spent processing prompts",
            "counter",
            sum(|s| s.lc_prompt_seconds),
        ),
        (
            "llamacpp:tokens_predicted_total",
            "Number of generation tokens processed",
            "counter",
            sum(|s| s.lc_tokens_predicted as f64),
        ),
        (
            "llamacpp:tokens_predicted_seconds_total",
            "Total time spent generating tokens",
            "counter",
            sum(|s| s.lc_tokens_predicted_seconds),
        ),
        (
            "llamacpp:n_decode_total",
            "Total number of llama_decode() calls, excluding speculative decoding and multimodal decoding",
            "counter",
            n_decode,
        ),
        (
            "llamacpp:n_tokens_max",
            "Largest observed sequence length (prompt + generation)",
            "counter",
            ranks
                .iter()
                .map(|s| s.lc_n_tokens_max as f64)
                .fold(0.0, f64::max),
        ),
        (
            "llamacpp:spec_decode_num_draft_tokens_total",
            "Speculative: Total draft tokens generated",
            "counter",
            sum(|s| s.lc_spec_draft_tokens as f64),
        ),
        (
            "llamacpp:spec_decode_num_accepted_tokens_total",
            "Speculative: Total draft tokens accepted by the target model",
            "counter",
            sum(|s| s.lc_spec_accepted as f64),
        ),
        (
            "llamacpp:spec_decode_num_drafts_total",
            "Speculative: Total speculative decoding verification steps",
            "counter",
            sum(|s| s.lc_spec_drafts as f64),
        ),
    ];
    rows.extend(gauges(profile, ranks));
    for (name, help, kind, v) in rows {
        e.header(name, help, kind);
        e.sample(name, &Vec::new(), v);
    }
    e.finish()
}

/// Of a rank's waiting sequences, those that hold a slot: llama.cpp gives a task a free slot as
/// it arrives (`max_num_seqs` is the `-np` slots), and the slot is busy (`requests_processing`)
/// from then, its prompt still to compute; the rest found no free slot and are deferred.
fn in_slots(profile: &Profile, s: &RankStats) -> u32 {
    s.waiting
        .min(profile.max_num_seqs.saturating_sub(s.running))
}

/// The gauges: two throughputs over the window since the last scrape, the slots' state.
/// `requests_processing` counts the busy slots, a task's from its arrival (its prompt waiting
/// for its turn included); `requests_deferred` the tasks that found no free slot
/// (server-context.cpp defers a task only when `get_available_slot` returns none).
fn gauges(
    profile: &Profile,
    ranks: &[RankStats],
) -> Vec<(&'static str, &'static str, &'static str, f64)> {
    let sum = |f: Getter| ranks.iter().map(f).sum::<f64>();
    let win_prompt_tokens = sum(|s| s.lc_win_prompt_tokens as f64);
    let win_prompt_s = sum(|s| s.lc_win_prompt_s);
    let win_steps = sum(|s| s.lc_win_decode_steps as f64);
    let win_s = sum(|s| s.lc_win_decode_s);
    let n_decode = sum(|s| s.lc_n_decode as f64);
    let busy = sum(|s| s.lc_busy_slots_sum as f64);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    vec![
        (
            "llamacpp:prompt_tokens_seconds",
            "Average prompt throughput in tokens/s",
            "gauge",
            ratio(win_prompt_tokens, win_prompt_s),
        ),
        (
            "llamacpp:predicted_tokens_seconds",
            "Average generation throughput in tokens/s",
            "gauge",
            ratio(win_steps, win_s),
        ),
        (
            "llamacpp:requests_processing",
            "Number of requests processing",
            "gauge",
            ranks
                .iter()
                .map(|s| f64::from(s.running + in_slots(profile, s)))
                .sum::<f64>(),
        ),
        (
            "llamacpp:requests_deferred",
            "Number of requests deferred",
            "gauge",
            ranks
                .iter()
                .map(|s| f64::from(s.waiting - in_slots(profile, s)))
                .sum::<f64>(),
        ),
        (
            "llamacpp:n_busy_slots_per_decode",
            "Average number of busy slots per llama_decode() call",
            "gauge",
            ratio(busy, n_decode),
        ),
    ]
}
