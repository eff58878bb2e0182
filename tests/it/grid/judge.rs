//! Each `warn` or `error` finding of a cell against what really happened: `/sim/truth` (its
//! preemptions, prefix-cache hits, aborted requests and injected faults) and the cell's own
//! setting (a batch beyond the sequence cap or the KV cache, prompts whose chunked prefill
//! outlasts the output so no moment has the whole batch, reasoning longer than the output).
//! A finding nothing explains is a false alarm. For a cell with a fault, whether one of the
//! findings that fault must raise came.

use std::process::Output;

use ceiling::sim::Truth;
use serde_json::Value;

use super::cells::{Cell, Fault};
use super::findings;

/// What a cell's findings came to.
#[derive(Debug, Default)]
pub struct Verdict {
    /// `code (severity) step N` of each warn/error finding nothing explains.
    pub unexplained: Vec<String>,
    /// Every warn/error finding, explained or not.
    pub raised: Vec<String>,
    /// For a cell with a fault: one of the findings it must raise came (true without a fault,
    /// and where the fault could not happen: a prompt of one KV block never hits the cache).
    pub expected_seen: bool,
    /// For a cell with a fault: the analysis said its window is not the engine's
    /// (`client_behind_engine`: the client read its streams behind an idle engine), so the
    /// fault could not be seen there; counted apart, neither seen nor missed.
    pub void: bool,
    /// For a cell with a fault: `/sim/truth` says it never acted on the engine (no prefix hit,
    /// no 500 drawn, a cap or cache the engine never reached); counted apart, neither seen nor
    /// missed.
    pub inert: bool,
}

impl Verdict {
    pub fn summary(&self) -> String {
        let s = match (self.raised.is_empty(), self.unexplained.is_empty()) {
            (true, _) => "clean".to_string(),
            (false, true) => format!("explained: {}", self.raised.join(", ")),
            (false, false) => format!("FALSE ALARM: {}", self.unexplained.join(", ")),
        };
        if self.inert {
            format!("{s} (fault inert)")
        } else {
            s
        }
    }
}

/// What the truth and the cell say happened, as the findings' explanations need it.
struct Happened {
    preempted: bool,
    cache_hits: bool,
    failed_requests: bool,
    /// The batch per rank is beyond the sequence cap or the KV cache.
    over_capacity: bool,
    /// The batch per rank needs 90 % of the KV cache or more.
    kv_nearly_full: bool,
    /// The batch's prompts take more chunked prefill steps than the output has decode steps, so
    /// the first requests finish before the last start: no moment has the whole batch.
    prefill_outlasts_output: bool,
    reasoning_exhausted: bool,
    /// The simulator's front-end wrote a chunk more than two decode steps (and 5 ms) after its
    /// step ended (`frontend_lag`: hundreds of streams on a busy host; a vLLM wave of 256 at
    /// 2.4 ms steps lagged up to 59–150 ms): the chunks' instants are late as a late client's
    /// are, and the stream's pace is the front-end's.
    frontend_behind: bool,
    /// One DP rank's time-weighted running batch below three quarters of another's
    /// (`RankTruth::batch_mean`): the ranks really ran unlike batches (a warm prefix cached on
    /// one rank only makes its requests quicker, and the simulator routes round-robin).
    ranks_unbalanced: bool,
}

impl Happened {
    fn of(cell: &Cell, truth: &Truth) -> Happened {
        let p = &truth.profile;
        let needed = cell.kv_blocks_needed(p.block_size);
        let f = &truth.faults_injected;
        Happened {
            preempted: truth.totals.preemptions > 0,
            cache_hits: truth.totals.cached_prompt_tokens > 0,
            failed_requests: f.http_500 + f.http_429 + f.drop > 0
                || truth.totals.requests_aborted > 0,
            over_capacity: cell.bs_per_rank() > p.max_num_seqs || needed > p.kv_blocks,
            kv_nearly_full: needed * 10 >= p.kv_blocks * 9,
            prefill_outlasts_output: {
                let prompt = u64::from(cell.bs_per_rank()) * u64::from(cell.input);
                let prefill_steps = prompt.div_ceil(u64::from(p.prefill_chunk_tokens.max(1)));
                let decode_steps = u64::from(cell.output) / if cell.spec { 2 } else { 1 };
                prefill_steps + 1 >= decode_steps
            },
            reasoning_exhausted: p.reasoning_tokens >= cell.output,
            frontend_behind: {
                let step = truth
                    .decode_steps
                    .iter()
                    .map(|s| s.mean_s)
                    .fold(0.0, f64::max);
                truth.frontend_lag.max_s > (2.0 * step).max(0.005)
            },
            ranks_unbalanced: {
                let means: Vec<f64> = truth.ranks.iter().filter_map(|r| r.batch_mean).collect();
                let (lo, hi) = means.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), m| {
                    (lo.min(*m), hi.max(*m))
                });
                means.len() > 1 && lo < 0.75 * hi
            },
        }
    }
}

/// Whether what happened explains a finding `code` on a step whose findings are `on_step`.
fn explains(h: &Happened, code: &str, on_step: &[&str]) -> bool {
    // Chunks read late, whether the client or the engine's front-end held them.
    let client_late = on_step.contains(&"client_lateness") || h.frontend_behind;
    match code {
        // The client's own measurement of itself: true by construction.
        "client_lateness" => true,
        // Fires only with the client late (and the engine idle through the window).
        "client_behind_engine" => client_late,
        // A late client or front-end sets the chunks' pace: the finding names it as the cause.
        "step_time_disagreement" => client_late || h.preempted,
        "littles_law_broken" => client_late,
        // Requests that failed leave fewer than bs sequences decoding: the window's throughput
        // falls short of `bs × DP × MTP / t_fwd`, as the finding's message says to check.
        "identity_broken" => client_late || h.failed_requests,
        "preemptions" => h.preempted,
        "kv_near_full" => h.kv_nearly_full || h.preempted,
        // A late client also moves the window's edges (its first tokens and finishes are read
        // late), so scrapes it counts as inside may hold the prefill or the tail.
        "engine_queueing" => {
            h.over_capacity || h.preempted || h.prefill_outlasts_output || client_late
        }
        // Requests that failed leave the engine a smaller batch than the probe's.
        "engine_batch_mismatch" | "no_measurement_window" => {
            h.over_capacity
                || h.preempted
                || h.failed_requests
                || h.prefill_outlasts_output
                || client_late
        }
        "prefix_cache_warm" => h.cache_hits,
        "dp_rank_imbalance" => h.ranks_unbalanced,
        "request_failures" | "length_mismatch" | "token_count_mismatch" => h.failed_requests,
        "reasoning_exhausted" => h.reasoning_exhausted,
        // A request the engine aborted (it can never fit the KV cache) ends with no answer.
        "empty_answer" => h.failed_requests,
        _ => false,
    }
}

/// The findings a fault must raise (any one of them).
fn expected(fault: Fault) -> &'static [&'static str] {
    match fault {
        Fault::None => &[],
        Fault::Http500 => &["request_failures"],
        Fault::SeqCap => &[
            "engine_batch_mismatch",
            "engine_queueing",
            "no_measurement_window",
        ],
        // A cache smaller than one sequence (bs 1 per rank) cuts it short: `length_mismatch`.
        // llama.cpp preempts nothing: a batch its cache cannot hold fails every slot.
        Fault::SmallKv => &[
            "request_failures",
            "length_mismatch",
            "preemptions",
            "kv_near_full",
            "engine_batch_mismatch",
            "engine_queueing",
            "no_measurement_window",
        ],
        Fault::WarmPrefix => &["prefix_cache_warm"],
        Fault::ReasoningExhausted => &["reasoning_exhausted"],
    }
}

/// The most sequences one rank's step ran (prefill or decode).
fn most_run(truth: &Truth) -> u32 {
    truth
        .decode_steps
        .iter()
        .chain(&truth.mixed_steps)
        .map(|s| s.batch_size)
        .max()
        .unwrap_or(0)
}

/// The verdict on one cell. A probe that failed outright (exit 2 and up) is a false alarm of
/// its own in a healthy cell, and the expected finding of a fault that failed requests.
pub fn judge(cell: &Cell, analysis: Option<&Value>, truth: &Truth, out: &Output) -> Verdict {
    let Some(v) = analysis else {
        let why = format!(
            "probe exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        // A fault that failed requests (a 500 drawn; llama.cpp's cache failing every slot)
        // may fail them all: the probe's exit 3 then says so.
        let failed = cell.fault != Fault::None && Happened::of(cell, truth).failed_requests;
        return Verdict {
            unexplained: if failed {
                Vec::new()
            } else {
                vec![why.clone()]
            },
            raised: vec![why],
            expected_seen: failed,
            void: false,
            inert: false,
        };
    };
    let h = Happened::of(cell, truth);
    let all = findings(v);
    let injected = match cell.fault {
        Fault::None => false,
        // The sim keeps at least one prompt token to compute: a one-block prompt never hits.
        // With DP 2 the ranks take requests in turn, each with its own cache, so the second
        // run's prompts land on their first run's rank only when the first run sent an even
        // number of requests (a closed loop's count varies): hits on 10 % of the second run's
        // prompt tokens (5 % of both runs') at least, twice the finding's tolerance.
        Fault::WarmPrefix => truth.totals.cached_prompt_tokens * 20 >= truth.totals.prompt_tokens,
        // At 30 %, a step of few requests may draw no 500 at all.
        Fault::Http500 => h.failed_requests,
        // The cache is sized for whole sequences; a closed loop's requests are at every stage
        // of their lives, so a short one's batch may fit the smaller cache: it bit only where
        // the engine preempted or aborted, or left a waiting request out for want of blocks.
        // (A batch that never ran whole is not enough: a client too late to keep the loop full
        // leaves the engine short of bs with blocks to spare.)
        Fault::SmallKv => {
            h.preempted || truth.totals.requests_aborted > 0 || truth.totals.kv_deferred_steps > 0
        }
        // A client that cannot keep the loop full leaves the engine below its cap: it acted
        // only where some step ran at it.
        Fault::SeqCap => most_run(truth) >= truth.profile.max_num_seqs,
        _ => true,
    };
    let mut verdict = Verdict {
        expected_seen: !injected,
        ..Verdict::default()
    };
    let serious = |s: &str| s == "warn" || s == "error";
    let mut saw_expected = false;
    for (code, severity, step) in all.iter().filter(|f| serious(&f.1)) {
        let on_step: Vec<&str> = all
            .iter()
            .filter(|f| f.2 == *step)
            .map(|f| f.0.as_str())
            .collect();
        let name = format!(
            "{code} ({severity}) {}",
            step.map_or("run".to_string(), |s| format!("step {s}"))
        );
        if expected(cell.fault).contains(&code.as_str()) {
            verdict.expected_seen = true;
            saw_expected = true;
        }
        if code == "client_behind_engine" && cell.fault != Fault::None {
            verdict.void = true;
        }
        if !explains(&h, code, &on_step) {
            verdict.unexplained.push(name.clone());
        }
        verdict.raised.push(name);
    }
    // A fault the truth says never acted, and whose findings did not come either.
    verdict.inert = cell.fault != Fault::None && !injected && !saw_expected;
    verdict
}
