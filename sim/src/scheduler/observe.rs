//! Where the imitated engines differ in how they schedule and count their own work
//! (docs/ENGINE-METRICS.md §8.3): the flags the scheduler and its accounting read, and one
//! request's speculative-decoding tally (llama.cpp adds it to its counters at slot release).

/// Where the imitated engines' schedulers and counters differ (docs/ENGINE-METRICS.md §8).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observe {
    /// llama.cpp: keep the `/slots` views.
    pub track_slots: bool,
    /// SGLang: a step that prefills runs alone, and decoding sequences wait for the next
    /// (`--enable-mixed-chunk` is off by default): a prefill batch is never a decode pass.
    pub prefill_alone: bool,
    /// vLLM: API servers in front of the ranks (`--api-server-count`, the DP size by default in
    /// recent versions); each observes `iteration_tokens_total` once per step in which it has an
    /// output, so one step counts once per front-end with a request in it.
    pub frontends: u32,
    /// llama.cpp: no preemption; a batch its KV cache cannot hold fails every processing slot
    /// with "Context size has been exceeded." (`server_context::update_slots`).
    pub fails_when_kv_full: bool,
}

impl Observe {
    /// The rules of `flavor` with `dp` ranks.
    pub(crate) fn of(flavor: crate::flavor::SimFlavor, dp: u32) -> Self {
        use crate::flavor::SimFlavor;
        Observe {
            track_slots: flavor == SimFlavor::Llamacpp,
            fails_when_kv_full: flavor == SimFlavor::Llamacpp,
            prefill_alone: flavor == SimFlavor::Sglang,
            frontends: if flavor == SimFlavor::Vllm {
                dp.max(1)
            } else {
                1
            },
        }
    }
}

/// One request's speculative-decoding tally.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpecTally {
    pub verify_steps: u64,
    pub draft_tokens: u64,
    pub accepted: u64,
}
