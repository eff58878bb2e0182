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
        let mut out = StepOutput {
            per_frontend: vec![None; self.observe.frontends as usize],
            ..StepOutput::default()
        };
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].waits {
                i += 1;
                continue;
            }
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
                out.decoded += 1;
                out.decode_tokens += u64::from(n);
                self.account_spec(&mut st, i, n);
                self.running[i].computed += n;
            }
            out.generated += u64::from(n);
            out.add_frontend_output(&self.running[i], n);
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
                at: end,
            };
            let gone = seq.sub.tx.send(emit).is_err();
            match (finish, gone) {
                (Some(reason), _) => self.finish(&mut st, i, reason, end),
                (None, true) => self.finish(&mut st, i, FinishReason::Abort, end),
                (None, false) => i += 1,
            }
        }
        self.account_step(&mut st, plan, &out, end, actual_s, nominal_s);
    }

    /// One verify step of request `i` that kept `n` tokens: vLLM and SGLang count it now,
    /// llama.cpp when the request ends (its tally).
    fn account_spec(&mut self, st: &mut RankStats, i: usize, n: u32) {
        if let Some(spec) = &self.profile.spec {
            let accepted = n.saturating_sub(1);
            let tally = &mut self.running[i].spec;
            tally.verify_steps += 1;
            tally.draft_tokens += u64::from(spec.num_speculative_tokens);
            tally.accepted += u64::from(accepted);
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

    /// llama.cpp's answer to a batch its KV cache cannot hold: every processing slot gets
    /// [`super::CONTEXT_EXCEEDED`] and is released (its tokens counted, as a reset slot's are).
    pub(super) fn context_exceeded(&mut self, now: Instant) {
        let stats = Arc::clone(&self.stats);
        let mut st = lock(&stats);
        for seq in std::mem::take(&mut self.running) {
            let _ = seq.sub.tx.send(Emit {
                tokens: 0,
                reasoning: 0,
                finish: Some(FinishReason::ContextExceeded),
                prompt_tokens: seq.prompt_len,
                cached_tokens: seq.cached,
                completion_tokens: seq.generated,
                at: now,
            });
            self.release(&seq);
            account_request(&mut st, &seq, FinishReason::ContextExceeded, now);
            st.context_exceeded += 1;
        }
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
            at: Instant::now(),
        });
        let mut st = lock(&self.stats);
        st.finished[2] += 1;
        st.requests_aborted += 1;
    }

    fn account_step(
        &mut self,
        st: &mut RankStats,
        plan: &StepPlan,
        out: &StepOutput,
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
        // vLLM: each front-end with an output this step observes its own tokens once; a step
        // that only prefilled (no output) is observed by none.
        for tokens in out.per_frontend.iter().flatten() {
            st.iteration_tokens.observe(*tokens as f64);
        }
        st.preemptions += u64::from(plan.preempted);
        st.kv_deferred_steps += u64::from(plan.kv_deferred);
        st.prefix_queries += plan.prefix_query_tokens;
        st.prefix_hits += plan.prefix_hit_tokens;
        st.cached_prompt_tokens += plan.prefix_hit_tokens;
        for q in &plan.queue_s {
            st.sg_queue.observe(*q);
        }
        st.sg_retracted += u64::from(plan.preempted);
        self.sg_window.retracted += u64::from(plan.preempted);
        st.sg_realtime_prefill_compute += plan.prefill_tokens;
        st.sg_realtime_prefill_cache += plan.prefix_hit_tokens;
        // llama.cpp: one `llama_decode()` per `n_batch` tokens of the batch, each counting every
        // busy slot (`server_context::update_slots` decodes the batch in `n_batch` views).
        let batch_tokens = plan.prefill_tokens + plan.decode_tokens_in_batch;
        let decodes = batch_tokens
            .div_ceil(u64::from(self.profile.n_batch))
            .max(1);
        st.lc_n_decode += decodes;
        st.lc_busy_slots_sum += u64::from(plan.scheduled) * decodes;
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
        // SGLang: a decode pass is a step in which sequences decoded; its tokens are the decode
        // tokens (a prefill's first token is the prefill batch's).
        if out.decoded > 0 {
            st.sg_decode_passes += 1;
            st.sg_realtime_decode += out.decode_tokens;
            self.sg_window.decode_steps += 1;
            self.sg_window.tokens += out.generated;
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
        if self.observe.track_slots {
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
        st.sg.num_retracted_reqs = self.sg_window.retracted;
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

/// What one step delivered.
#[derive(Debug, Default)]
pub(super) struct StepOutput {
    /// Tokens out (first tokens included).
    generated: u64,
    /// Sequences that decoded, and the tokens they kept.
    decoded: u32,
    decode_tokens: u64,
    /// Per vLLM front-end: the tokens its `iteration_tokens_total` observes (a finished
    /// prefill's prompt plus every output token), `None` when it had no output this step.
    per_frontend: Vec<Option<u64>>,
}

impl StepOutput {
    fn add_frontend_output(&mut self, seq: &Seq, n: u32) {
        let prompt = if seq.last_token.is_none() {
            u64::from(seq.prompt_len)
        } else {
            0
        };
        let i = seq.sub.frontend as usize % self.per_frontend.len().max(1);
        if let Some(slot) = self.per_frontend.get_mut(i) {
            *slot = Some(slot.unwrap_or(0) + prompt + u64::from(n));
        }
    }
}

/// Per-request metrics at finish, for every flavor.
fn account_request(st: &mut RankStats, seq: &Seq, reason: FinishReason, end: Instant) {
    let idx = match reason {
        FinishReason::Stop => 0,
        FinishReason::Length => 1,
        FinishReason::Abort | FinishReason::ContextExceeded => 2,
    };
    st.finished[idx] += 1;
    if idx == 2 {
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
    // `server_metrics::on_prediction` adds the slot's draft tallies when it is released.
    st.lc_spec_drafts += seq.spec.verify_steps;
    st.lc_spec_draft_tokens += seq.spec.draft_tokens;
    st.lc_spec_accepted += seq.spec.accepted;
    st.lc_tokens_predicted_seconds += gen_s;
    st.lc_win_prompt_tokens += u64::from(seq.prompt_len - seq.cached);
    st.lc_win_prompt_s += prompt_s;
    st.lc_win_decode_steps += u64::from(seq.generated.saturating_sub(1));
    st.lc_win_decode_s += gen_s;
}
