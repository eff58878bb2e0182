//! Rules on the engine's own view of a step (its scraped gauges and counter deltas): the batch
//! it ran, its queue, preemptions, prefix-cache hits, generated tokens and KV usage.

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};
use crate::recording::Pattern;

pub(super) const CLIENT_BEHIND_ENGINE: Rule = Rule {
    code: "client_behind_engine",
    severities: &[Severity::Error],
    what: "the engine was idle at every scrape inside the window while the late client still read the batch's streams",
    check: Check::Step(client_behind_engine),
};

/// The engine idle through the windows the client's instants made ([`StepView`]'s
/// `client_behind_engine`): no figure of the window is the engine's, and a batch or queue
/// finding there would blame the engine for the client's backlog.
fn client_behind_engine(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let (s, t) = (v.summary, v.timing);
    v.client_behind_engine(tol).then(|| {
        v.finding(
            &CLIENT_BEHIND_ENGINE,
            Severity::Error,
            format!(
                "the engine ran and queued no sequence at all {} scrapes inside the {:.2} s measurement window while the probe held {} requests open and its runtime woke {:.0} ms late at p99: the client read its streams behind the engine, so the window's figures are the client's backlog, not the engine's; run a release build of the probe, fewer streams, or the probe on a less loaded host",
                t.engine.samples,
                t.window_s,
                s.batch_size,
                s.client_lateness_p99_s.unwrap_or_default() * 1e3
            ),
            json!({"samples": t.engine.samples, "window_s": t.window_s, "running_max": t.engine.running_max, "waiting_max": t.engine.waiting_max, "client_lateness_p99_s": s.client_lateness_p99_s}),
        )
    })
}

pub(super) const ENGINE_BATCH_MISMATCH: Rule = Rule {
    code: "engine_batch_mismatch",
    severities: &[Severity::Warn, Severity::Error],
    what: "the engine ran another batch than the probe held (running gauge; busy slots per step)",
    check: Check::StepMany(engine_batch_mismatch),
};

/// One finding per reading that disagrees with the probe's batch: the running gauge's range,
/// then llama.cpp's busy slots per step (the latter only when the gauge did not already show a
/// batch too small), so a step may raise two. In a closed loop a batch below `bs` whose engine
/// queue drained at some scrape is the loop's turnaround (requests between a finish and the
/// next send, or waiting for a prefill chunk), not a limit of the engine. None where the client
/// fell behind an idle engine (`client_behind_engine` says so).
fn engine_batch_mismatch(v: &StepView<'_>, tol: &Tolerances) -> Vec<Finding> {
    if v.client_behind_engine(tol) {
        return Vec::new();
    }
    batch_from_running_gauge(v)
        .or_else(|| batch_from_full_slots(v))
        .into_iter()
        .chain(batch_from_busy_slots(v))
        .collect()
}

/// llama.cpp deferred tasks while fewer slots than the batch were busy, so its slots were all
/// taken: the slot count caps the batch. Its deferral means no free slot (a closed loop's
/// turnaround defers nothing), so this holds where the running gauge's range is excused as a
/// turnaround, and over the whole step: a client that falls behind its streams can leave the
/// window with the slots never full.
fn batch_from_full_slots(v: &StepView<'_>) -> Option<Finding> {
    let (s, e, bs) = (v.summary, &v.timing.engine, v.bs());
    let slots = e.slots_full_running.filter(|r| *r < bs - 0.5)?;
    Some(v.finding(
        &ENGINE_BATCH_MISMATCH,
        Severity::Error,
        format!(
            "llama.cpp deferred requests for want of a free slot while {slots:.0} were busy and the probe held {bs:.0}: its slots cap the batch; start llama-server with -np {bs:.0} or more (and -c to match), or lower the batch size"
        ),
        json!({"batch_size": s.batch_size, "slots_full_running": slots, "running_max": e.running_max, "waiting_max_step": e.waiting_max_step}),
    ))
}

fn batch_from_running_gauge(v: &StepView<'_>) -> Option<Finding> {
    let (s, e, bs) = (v.summary, &v.timing.engine, v.bs());
    let (Some(max), Some(min)) = (e.running_max, e.running_min) else {
        return None;
    };
    if max < bs - 0.5 && !v.turnaround() {
        Some(v.finding(
            &ENGINE_BATCH_MISMATCH,
            Severity::Error,
            format!(
                "the engine ran at most {max:.0} sequences while the probe held {bs:.0}; raise the engine's sequence cap (--max-num-seqs) or KV memory, or lower the batch size{}",
                no_window_hint(v)
            ),
            json!({"batch_size": s.batch_size, "running_min": min, "running_max": max, "running_mean": e.running_mean, "busy_slots_per_step": e.busy_slots_per_step}),
        ))
    } else if min > v.bs_upper() + 0.5 {
        Some(v.finding(
            &ENGINE_BATCH_MISMATCH,
            Severity::Warn,
            format!(
                "the engine ran {min:.0}+ sequences while the probe held {bs:.0}: other traffic shares the engine; measure on an idle engine"
            ),
            json!({"batch_size": s.batch_size, "running_min": min, "running_max": max}),
        ))
    } else {
        None
    }
}

/// llama.cpp's busy slots per decode call over the windows: the batch every step ran, not a
/// gauge sampled now and then. A decode call is one rank's, so it holds `bs / DP` (ranks behind
/// one exposition, as the simulator's `--dp` sums them).
fn batch_from_busy_slots(v: &StepView<'_>) -> Option<Finding> {
    let (s, e) = (v.summary, &v.timing.engine);
    let (bs, upper) = (v.bs() / v.dp(), v.bs_upper() / v.dp());
    let b = e
        .busy_slots_per_step
        .filter(|b| (*b < bs - 0.5 && !v.turnaround()) || *b > upper + 0.5)?;
    // Only where the gauge is missing or shows at least the probe's batch: a gauge showing too
    // small a batch has its own finding.
    if !e.running_max.is_none_or(|max| max >= bs - 0.5) {
        return None;
    }
    Some(v.finding(
        &ENGINE_BATCH_MISMATCH,
        if b < bs {
            Severity::Error
        } else {
            Severity::Warn
        },
        format!(
            "the engine's steps held {b:.1} sequences on average while the probe held {bs:.0}{}; {}",
            if v.dp() > 1.0 { " per DP rank" } else { "" },
            if b < bs {
                "raise the engine's slots (llama.cpp -np) or sequence cap, or lower the batch size"
            } else {
                "other traffic shares the engine: measure on an idle engine"
            }
        ),
        json!({"batch_size": s.batch_size, "busy_slots_per_step": b, "running_max": e.running_max}),
    ))
}

/// For a step without a decode window, the other cause of a batch that never ran whole.
fn no_window_hint(v: &StepView<'_>) -> &'static str {
    if v.timing.windows.is_empty() {
        "; or the prompts' chunked prefill outlasted the output, so the first requests finished before the last started: raise --output-len"
    } else {
        ""
    }
}

pub(super) const ENGINE_QUEUEING: Rule = Rule {
    code: "engine_queueing",
    severities: &[Severity::Info, Severity::Warn],
    what: "requests waited in the engine's queue: in the decode window (warn), or only for their prefill chunk (info)",
    check: Check::Step(engine_queueing),
};

/// Judged inside the decode window: there, with every sequence decoding, nobody should wait.
/// Waiting before it, while a wave's prompts are prefilled in chunks, is how chunked prefill
/// works (`info`, with the steps the prefill took). A step without a window is judged over the
/// requests' span: requests that wait for a slot decode in turns, so such a wave has no window.
fn engine_queueing(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let (s, t, e, bs) = (v.summary, v.timing, &v.timing.engine, v.bs());
    let window = e.waiting_max.filter(|w| *w > 0.0);
    let step = e.waiting_max_step.filter(|w| *w > 0.0);
    let evidence = |w: f64| {
        json!({"waiting_max": w, "waiting_max_window": e.waiting_max, "waiting_max_step": e.waiting_max_step,
               "batch_size": s.batch_size, "running_max": e.running_max, "prefill_steps_max": t.prefill_steps_max})
    };
    // A closed-loop window counts requests from their send, so a request just sent waits for
    // the next step (or its prefill chunk) inside it; only an engine that never ran bs there,
    // with a queue that never drained, is queueing.
    let held_bs = e.running_max.is_some_and(|r| r >= bs - 0.5);
    let in_window = match s.pattern {
        Pattern::Wave => window,
        Pattern::ClosedLoop => window.filter(|_| !held_bs && !v.turnaround()),
        // An open loop's queue is its load, not a fault (the rule does not run there).
        Pattern::Rate => None,
    };
    if let Some(w) = in_window.or(step.filter(|_| t.windows.is_empty())) {
        return Some(v.finding(
            &ENGINE_QUEUEING,
            Severity::Warn,
            format!(
                "up to {w:.0} requests waited in the engine queue {} at bs {bs:.0}; the engine cannot hold the batch (KV memory or sequence cap, llama.cpp -np slots): lower the batch size or raise the engine's limits{}",
                if t.windows.is_empty() { "and no moment had the whole batch decoding" } else { "inside the decode window" },
                no_window_hint(v)
            ),
            evidence(w),
        ));
    }
    let w = step.or(window)?;
    let message = if s.pattern == Pattern::ClosedLoop && !held_bs {
        format!(
            "up to {w:.0} requests waited in the engine queue, which drained at some scrape inside the decode window: a closed loop's new requests wait for the next step or their prefill chunk"
        )
    } else {
        let steps = t.prefill_steps_max.map_or(String::new(), |p| {
            format!(" (a wave's prefill took {p} engine steps)")
        });
        format!(
            "up to {w:.0} requests waited for their prefill chunk before the decode window{steps}: expected with chunked prefill; the decode window itself had the whole batch"
        )
    };
    Some(v.finding(&ENGINE_QUEUEING, Severity::Info, message, evidence(w)))
}

pub(super) const PREEMPTIONS: Rule = Rule {
    code: "preemptions",
    severities: &[Severity::Error],
    what: "the engine's preemption counter rose during the step",
    check: Check::Step(preemptions),
};

fn preemptions(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let (s, e, bs) = (v.summary, &v.timing.engine, v.bs());
    let p = e.preemptions.filter(|p| *p > 0.0)?;
    Some(v.finding(
        &PREEMPTIONS,
        Severity::Error,
        format!(
            "the engine preempted {p:.0} sequences: its KV cache cannot hold bs {bs:.0} × {} tokens; lower the batch size or give the engine more KV memory (--gpu-memory-utilization)",
            s.input_len + s.output_len
        ),
        json!({"preemptions": p, "batch_size": s.batch_size, "kv_usage_max_frac": e.kv_usage_max_frac}),
    ))
}

pub(super) const PREFIX_CACHE_WARM: Rule = Rule {
    code: "prefix_cache_warm",
    severities: &[Severity::Warn],
    what: "prompt tokens hit the prefix cache in a run that asked for a cold one",
    check: Check::Step(prefix_cache_warm),
};

fn prefix_cache_warm(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let e = &v.timing.engine;
    if v.prefix_cache_warm_expected {
        return None;
    }
    let (h, q) = (e.prefix_cache_hits?, e.prefix_cache_queries?);
    (q > 0.0 && h / q > tol.prefix_hit_frac).then(|| {
        v.finding(
            &PREFIX_CACHE_WARM,
            Severity::Warn,
            format!(
                "{:.0} % of prompt tokens hit the prefix cache in a cold run, so TTFT and prefill rate are flattered; keep unique prompts (--prefix-cache cold) or disable the engine's prefix caching",
                100.0 * h / q
            ),
            json!({"hits": h, "queries": q}),
        )
    })
}

pub(super) const TOKEN_COUNT_MISMATCH: Rule = Rule {
    code: "token_count_mismatch",
    severities: &[Severity::Warn],
    what: "the engine's generated-token delta differs from the client's output tokens",
    check: Check::Step(token_count_mismatch),
};

fn token_count_mismatch(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let e = &v.timing.engine;
    let g = e.generation_tokens?;
    if e.client_output_tokens == 0 {
        return None;
    }
    let c = e.client_output_tokens as f64;
    ((g - c).abs() / c > tol.token_count_rel).then(|| {
        v.finding(
            &TOKEN_COUNT_MISMATCH,
            Severity::Warn,
            format!(
                "the engine counted {g:.0} generated tokens over the step, the client {c:.0}; other traffic on the engine, or a scrape interval too long for the step (--scrape-interval)"
            ),
            json!({"engine_generation_tokens": g, "client_output_tokens": c}),
        )
    })
}

pub(super) const KV_NEAR_FULL: Rule = Rule {
    code: "kv_near_full",
    severities: &[Severity::Warn],
    what: "the engine's KV-cache usage came near full during the step",
    check: Check::Step(kv_near_full),
};

fn kv_near_full(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let (e, bs) = (&v.timing.engine, v.bs());
    let k = e.kv_usage_max_frac.filter(|k| *k >= tol.kv_usage_frac)?;
    Some(v.finding(
        &KV_NEAR_FULL,
        Severity::Warn,
        format!(
            "the KV cache reached {:.0} % at bs {bs:.0}; a larger batch or longer sequences will queue or preempt",
            k * 100.0
        ),
        json!({"kv_usage_max_frac": k, "kv_capacity_tokens": e.kv_capacity_tokens}),
    ))
}
