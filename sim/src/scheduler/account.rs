//! Delivery and bookkeeping of one step: sends each request its tokens, finishes requests, and
//! updates every engine's counters exactly as that engine defines them (vLLM per step, SGLang
//! gauges per decode-log window, llama.cpp token counters at request end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Emit, FinishReason, Scheduler, Seq, SgWindow, StepPlan};
use crate::stats::{RankStats, lock};

fn secs(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64()
}

impl Scheduler {
    /// Delivers the step's tokens (the instant `end` is when the step's output came out).
    pub(super) fn deliver(&mut self, end: Instant, plan: &StepPlan, actual_s: f64, nominal_s: f64) {
        let stats = Arc::clone(&self.stats);
        let mut st = lock(&stats);
        let mut generated = 0u64;
        let mut decoded = 0u32;
        let mut i = 0;
        while i < self.running.len() {
            let was_decoding = self.running[i].decoding();
            let chunk = self.running[i].chunk;
            let (n, _) = if was_decoding {
                self.decode_tokens()
            } else if chunk > 0 {
                self.running[i].computed += chunk;
                if !self.running[i].decoding() {
                    i += 1;
                    continue;
                }
                (1, 0)
            } else {
                i += 1;
                continue;
            };
            let remaining = self.running[i].sub.max_tokens - self.running[i].generated;
            let (n, stopped) = self.apply_eos(i, n.min(remaining));
            if was_decoding {
                decoded += 1;
                self.account_spec(&mut st, n);
                self.running[i].computed += n;
            }
            generated += u64::from(n);
            self.account_tokens(&mut st, i, n, end);
            let seq = &mut self.running[i];
            let before = seq.generated;
            seq.generated += n;
            let finish = if stopped {
                Some(FinishReason::Stop)
            } else if seq.generated >= seq.sub.max_tokens {
                Some(FinishReason::Length)
            } else {
                None
            };
            let reasoning = seq.sub.reasoning_tokens.saturating_sub(before).min(n);
            let emit = Emit {
                tokens: n,
                reasoning,
                finish,
                prompt_tokens: seq.prompt_len,
                cached_tokens: seq.cached,
                completion_tokens: seq.generated,
            };
            let gone = seq.sub.tx.send(emit).is_err();
            match (finish, gone) {
                (Some(reason), _) => self.finish(&mut st, i, reason, end),
                (None, true) => self.finish(&mut st, i, FinishReason::Abort, end),
                (None, false) => i += 1,
            }
        }
        self.account_step(&mut st, plan, generated, decoded, end, actual_s, nominal_s);
    }

    fn account_spec(&mut self, st: &mut RankStats, n: u32) {
        if let Some(spec) = &self.profile.spec {
            let accepted = n.saturating_sub(1);
            st.spec_drafts += 1;
            st.spec_draft_tokens += u64::from(spec.num_speculative_tokens);
            st.spec_accepted += u64::from(accepted);
            for pos in st.spec_accepted_per_pos.iter_mut().take(accepted as usize) {
                *pos += 1;
            }
            self.sg_window.accept_sum += u64::from(n);
            self.sg_window.accept_n += 1;
        }
    }

    /// Per-output-event timing: TTFT on the first token, ITL after it.
    fn account_tokens(&mut self, st: &mut RankStats, i: usize, n: u32, end: Instant) {
        st.generation_tokens += u64::from(n);
        let seq = &mut self.running[i];
        match seq.last_token {
            None => {
                st.prompt_tokens += u64::from(seq.prompt_len);
                let ttft = secs(seq.sub.arrival, end);
                st.ttft.observe(ttft);
                st.sg_ttft.observe(ttft);
                seq.first_token = Some(end);
                if self.profile.prefix_cache {
                    self.prefix.insert(&seq.block_hashes);
                }
            }
            Some(last) => {
                let gap = secs(last, end);
                st.itl.observe(gap);
                st.sg_itl
                    .observe_weighted(gap / f64::from(n.max(1)), gap, u64::from(n));
            }
        }
        seq.last_token = Some(end);
    }

    /// Removes running request `i` and records its per-request metrics.
    fn finish(&mut self, st: &mut RankStats, i: usize, reason: FinishReason, end: Instant) {
        let seq = self.running.remove(i);
        self.release(&seq);
        account_request(st, &seq, reason, end);
        st.lc_n_tokens_max = st
            .lc_n_tokens_max
            .max(u64::from(seq.prompt_len + seq.generated));
    }

    /// Rejects a queued request that can never fit in the KV cache.
    pub(super) fn abort_unscheduled(&mut self, seq: Seq) {
        let _ = seq.sub.tx.send(Emit {
            tokens: 0,
            reasoning: 0,
            finish: Some(FinishReason::Abort),
            prompt_tokens: seq.prompt_len,
            cached_tokens: 0,
            completion_tokens: 0,
        });
        let mut st = lock(&self.stats);
        st.finished[2] += 1;
        st.requests_aborted += 1;
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; all are this step's facts"
    )]
    fn account_step(
        &mut self,
        st: &mut RankStats,
        plan: &StepPlan,
        generated: u64,
        decoded: u32,
        end: Instant,
        actual_s: f64,
        nominal_s: f64,
    ) {
        st.steps += 1;
        st.busy_s += actual_s;
        let map = if plan.prefill_tokens == 0 {
            &mut st.decode_steps
        } else {
            &mut st.mixed_steps
        };
        map.entry(plan.scheduled)
            .or_default()
            .add(actual_s, nominal_s);
        let iteration = plan.prefill_tokens + generated;
        if iteration > 0 {
            st.iteration_tokens.observe(iteration as f64);
        }
        st.preemptions += u64::from(plan.preempted);
        st.prefix_queries += plan.prefix_query_tokens;
        st.prefix_hits += plan.prefix_hit_tokens;
        st.cached_prompt_tokens += plan.prefix_hit_tokens;
        for q in &plan.queue_s {
            st.sg_queue.observe(*q);
        }
        st.sg_retracted += u64::from(plan.preempted);
        st.sg_realtime_prefill_compute += plan.prefill_tokens;
        st.sg_realtime_prefill_cache += plan.prefix_hit_tokens;
        st.lc_n_decode += 1;
        st.lc_busy_slots_sum += u64::from(plan.scheduled);
        self.publish_live(st);
        if plan.prefill_tokens > 0 {
            let total = plan.prefill_tokens + plan.prefix_hit_tokens;
            st.sg.cache_hit_rate = if total > 0 {
                plan.prefix_hit_tokens as f64 / total as f64
            } else {
                0.0
            };
            self.refresh_sglang(st);
        }
        if decoded > 0 {
            st.sg_decode_passes += 1;
            st.sg_realtime_decode += generated;
            self.sg_window.decode_steps += 1;
            self.sg_window.tokens += generated;
            if self.sg_window.decode_steps >= self.profile.sglang_gauge_interval_steps {
                let elapsed = secs(self.sg_window.start, end);
                if elapsed > 0.0 {
                    st.sg.gen_throughput = self.sg_window.tokens as f64 / elapsed;
                }
                if self.sg_window.accept_n > 0 {
                    st.sg.spec_accept_length =
                        self.sg_window.accept_sum as f64 / self.sg_window.accept_n as f64;
                }
                self.refresh_sglang(st);
                self.sg_window = SgWindow::new(end);
            }
        }
    }

    /// vLLM-style gauges: the state after the last step.
    fn publish_live(&self, st: &mut RankStats) {
        st.running = self.running.len() as u32;
        st.waiting = self.waiting.len() as u32;
        st.kv_used_blocks = self.profile.kv_blocks - self.free_blocks;
        if self.track_slots {
            st.slots = self.slot_views();
        }
    }

    /// SGLang's scheduler gauges, refreshed only at its log points.
    fn refresh_sglang(&self, st: &mut RankStats) {
        let used = u64::from(self.profile.kv_blocks - self.free_blocks)
            * u64::from(self.profile.block_size);
        st.sg.num_running_reqs = self.running.len() as u32;
        st.sg.num_queue_reqs = self.waiting.len() as u32;
        st.sg.num_used_tokens = used;
        let usage = used as f64 / self.profile.kv_capacity_tokens() as f64;
        st.sg.token_usage = (usage * 100.0).round() / 100.0;
        st.sg.decode_sum_seq_lens = self.running.iter().map(|s| u64::from(s.computed)).sum();
    }

    /// Publishes the vLLM-style gauges (running, waiting, KV) as the scheduler holds them now.
    pub(super) fn publish_gauges(&self) {
        let mut st = lock(&self.stats);
        self.publish_live(&mut st);
    }

    /// How long an idle SGLang scheduler waits before logging its (zero) gauges: 30 s.
    pub(super) fn idle_refresh(&self) -> Duration {
        Duration::from_secs_f64(30.0 / self.time_scale)
    }

    pub(super) fn refresh_idle_gauges(&mut self) {
        let mut st = lock(&self.stats);
        st.sg.gen_throughput = 0.0;
        self.refresh_sglang(&mut st);
        self.sg_window = SgWindow::new(Instant::now());
    }
}

/// Per-request metrics at finish, for every flavor.
fn account_request(st: &mut RankStats, seq: &Seq, reason: FinishReason, end: Instant) {
    let idx = match reason {
        FinishReason::Stop => 0,
        FinishReason::Length => 1,
        FinishReason::Abort => 2,
    };
    st.finished[idx] += 1;
    if reason == FinishReason::Abort {
        st.requests_aborted += 1;
    } else {
        st.requests_finished += 1;
    }
    let arrival = seq.sub.arrival;
    let scheduled = seq.first_scheduled.unwrap_or(arrival);
    let first = seq.first_token.unwrap_or(end);
    let last = seq.last_token.unwrap_or(end);
    st.e2e.observe(secs(arrival, end));
    st.queue.observe(secs(arrival, scheduled));
    st.prefill.observe(secs(scheduled, first));
    st.decode.observe(secs(first, last));
    st.inference.observe(secs(scheduled, last));
    if seq.generated > 1 {
        st.tpot_request
            .observe(secs(first, last) / f64::from(seq.generated - 1));
    }
    st.request_prompt_tokens.observe(f64::from(seq.prompt_len));
    st.request_generation_tokens
        .observe(f64::from(seq.generated));
    // SGLang tokenizer-side counters move at finish.
    st.sg_prompt_tokens += u64::from(seq.prompt_len);
    st.sg_generation_tokens += u64::from(seq.generated);
    st.sg_cached_tokens += u64::from(seq.cached);
    st.sg_requests += 1;
    st.sg_e2e.observe(secs(arrival, end));
    // llama.cpp: token counters move when the slot is released.
    let prompt_s = secs(scheduled, first);
    let gen_s = secs(first, last);
    st.lc_prompt_tokens += u64::from(seq.prompt_len - seq.cached);
    st.lc_prompt_tokens_cached += u64::from(seq.cached);
    st.lc_prompt_seconds += prompt_s;
    st.lc_tokens_predicted += u64::from(seq.generated);
    st.lc_tokens_predicted_seconds += gen_s;
    st.lc_win_prompt_tokens += u64::from(seq.prompt_len - seq.cached);
    st.lc_win_prompt_s += prompt_s;
    st.lc_win_decode_steps += u64::from(seq.generated.saturating_sub(1));
    st.lc_win_decode_s += gen_s;
}
