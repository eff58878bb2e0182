//! One DP rank's continuous-batching scheduler, on its own OS thread: admits requests within
//! `max_num_seqs` and the KV capacity, chunks prefill by the step's token budget, preempts (and
//! later recomputes) when decode outgrows the KV cache, sleeps each step to an absolute deadline
//! and then delivers that step's tokens. It owns the engine's timing; it knows nothing of HTTP.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::profile::Profile;
use crate::stats::{RankStats, SlotView};
use prefix::{PrefixCache, block_hashes};

mod account;
mod messages;
mod observe;
mod prefix;

pub(crate) use messages::{CONTEXT_EXCEEDED, Emit, FinishReason, Msg, Submission};
pub(crate) use observe::Observe;
use observe::SpecTally;

/// The handle the server keeps for one rank.
pub(crate) struct RankHandle {
    pub tx: flume::Sender<Msg>,
    pub stats: Arc<Mutex<RankStats>>,
    pub thread: Option<JoinHandle<()>>,
}

/// Starts rank `rank`'s scheduler thread.
pub(crate) fn spawn_rank(
    rank: u32,
    profile: Arc<Profile>,
    time_scale: f64,
    observe: Observe,
) -> std::io::Result<RankHandle> {
    let (tx, rx) = flume::unbounded();
    let spec_k = profile
        .spec
        .as_ref()
        .map_or(0, |s| s.num_speculative_tokens);
    let stats = Arc::new(Mutex::new(RankStats::new(profile.max_model_len, spec_k)));
    let mut sched = Scheduler {
        rng: SmallRng::seed_from_u64(profile.seed.wrapping_add(u64::from(rank))),
        free_blocks: profile.kv_blocks,
        prefix: PrefixCache::new(profile.kv_blocks as usize),
        free_slots: (0..profile.max_num_seqs).rev().collect(),
        profile,
        time_scale,
        observe,
        rx,
        stats: Arc::clone(&stats),
        waiting: VecDeque::new(),
        running: Vec::new(),
        prev_deadline: None,
        prev_end: Instant::now(),
        sg_window: SgWindow::new(Instant::now()),
    };
    let thread = std::thread::Builder::new()
        .name(format!("sim-rank-{rank}"))
        .spawn(move || sched.run())?;
    Ok(RankHandle {
        tx,
        stats,
        thread: Some(thread),
    })
}

/// A request inside the scheduler.
struct Seq {
    sub: Submission,
    prompt_len: u32,
    block_hashes: Vec<u64>,
    /// Tokens whose KV is computed (context).
    computed: u32,
    /// Tokens to compute before the next token comes out (prompt, plus output after preemption).
    target: u32,
    generated: u32,
    cached: u32,
    blocks: u32,
    admitted_once: bool,
    slot: u32,
    first_scheduled: Option<Instant>,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    /// Prefill tokens computed in the step being run.
    chunk: u32,
    /// Decoding, but not in the step being run (SGLang: a prefill batch runs alone).
    waits: bool,
    /// Verify steps, draft tokens and accepted drafts of this request (llama.cpp adds them to
    /// its counters when the slot is released).
    spec: SpecTally,
}

impl Seq {
    fn decoding(&self) -> bool {
        self.computed >= self.target
    }
}

/// SGLang's decode-log window (gauges refresh when it closes).
struct SgWindow {
    start: Instant,
    tokens: u64,
    decode_steps: u32,
    accept_sum: u64,
    accept_n: u64,
    /// Requests retracted since the window opened (`num_retracted_reqs`).
    retracted: u64,
}

impl SgWindow {
    fn new(start: Instant) -> Self {
        SgWindow {
            start,
            tokens: 0,
            decode_steps: 0,
            accept_sum: 0,
            accept_n: 0,
            retracted: 0,
        }
    }
}

struct Scheduler {
    profile: Arc<Profile>,
    time_scale: f64,
    observe: Observe,
    rng: SmallRng,
    rx: flume::Receiver<Msg>,
    stats: Arc<Mutex<RankStats>>,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    free_blocks: u32,
    prefix: PrefixCache,
    free_slots: Vec<u32>,
    prev_deadline: Option<Instant>,
    prev_end: Instant,
    sg_window: SgWindow,
}

/// What one step computes.
#[derive(Debug, Default)]
struct StepPlan {
    scheduled: u32,
    context_tokens: u64,
    prefill_tokens: u64,
    prefix_query_tokens: u64,
    prefix_hit_tokens: u64,
    preempted: u32,
    admitted: u32,
    /// A waiting request stayed out for want of free KV blocks.
    kv_deferred: bool,
    /// Tokens the decoding sequences put in the batch (1 + drafts each): with the prefill
    /// tokens, what llama.cpp splits into `n_batch` decode calls.
    decode_tokens_in_batch: u64,
    /// Queue times of the requests admitted for the first time, seconds.
    queue_s: Vec<f64>,
}

impl Scheduler {
    fn run(&mut self) {
        loop {
            if !self.drain() {
                return;
            }
            if self.running.is_empty() && self.waiting.is_empty() {
                self.publish_gauges();
                match self.rx.recv_timeout(self.idle_refresh()) {
                    Ok(Msg::Submit(sub)) => self.enqueue(sub),
                    Err(flume::RecvTimeoutError::Timeout) => self.refresh_idle_gauges(),
                    Ok(Msg::Stop) | Err(flume::RecvTimeoutError::Disconnected) => return,
                }
                self.prev_deadline = None;
                continue;
            }
            self.step();
        }
    }

    /// Takes every queued message; false when told to stop.
    fn drain(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Msg::Submit(sub)) => self.enqueue(sub),
                Ok(Msg::Stop) | Err(flume::TryRecvError::Disconnected) => return false,
                Err(flume::TryRecvError::Empty) => return true,
            }
        }
    }

    fn enqueue(&mut self, sub: Submission) {
        let prompt_len = u32::try_from(sub.prompt.len()).unwrap_or(u32::MAX);
        let block_hashes = if self.profile.prefix_cache {
            block_hashes(&sub.prompt, self.profile.block_size)
        } else {
            Vec::new()
        };
        // A transferred prompt is computed already: its first token comes at the first decode
        // step it joins, and no step computes its prompt.
        let computed = if sub.prefilled { prompt_len } else { 0 };
        self.waiting.push_back(Seq {
            sub,
            prompt_len,
            block_hashes,
            computed,
            target: prompt_len,
            generated: 0,
            cached: 0,
            blocks: 0,
            admitted_once: false,
            slot: 0,
            first_scheduled: None,
            first_token: None,
            last_token: None,
            chunk: 0,
            waits: false,
            spec: SpecTally::default(),
        });
    }

    fn blocks_for(&self, tokens: u32) -> u32 {
        tokens.div_ceil(self.profile.block_size)
    }

    fn lookahead(&self) -> u32 {
        1 + self
            .profile
            .spec
            .as_ref()
            .map_or(0, |s| s.num_speculative_tokens)
    }

    /// Decides this step's batch: decode KV growth (preempting from the tail when it does not
    /// fit), prefill chunks for running sequences, then admission from the queue.
    fn schedule(&mut self, now: Instant) -> StepPlan {
        let mut plan = StepPlan::default();
        let look = self.lookahead();
        let mut i = 0;
        while i < self.running.len() {
            self.running[i].chunk = 0;
            if self.running[i].decoding() {
                let need = self.blocks_for(self.running[i].computed + look);
                let extra = need.saturating_sub(self.running[i].blocks);
                if extra > self.free_blocks && self.observe.fails_when_kv_full {
                    self.context_exceeded(now);
                    break;
                }
                let mut self_preempted = false;
                while extra > self.free_blocks {
                    let victim = self.running.len() - 1;
                    self.preempt(victim);
                    plan.preempted += 1;
                    if victim == i {
                        self_preempted = true;
                        break;
                    }
                }
                if self_preempted {
                    break;
                }
                self.free_blocks -= extra;
                self.running[i].blocks += extra;
            }
            i += 1;
        }
        let mut budget = self.profile.prefill_chunk_tokens;
        for seq in self.running.iter_mut().filter(|s| !s.decoding()) {
            seq.chunk = (seq.target - seq.computed).min(budget);
            budget -= seq.chunk;
        }
        if plan.preempted == 0 {
            self.admit(now, &mut budget, &mut plan);
        }
        let prefills = self.running.iter().any(|s| s.chunk > 0);
        for seq in &mut self.running {
            seq.waits = self.observe.prefill_alone && prefills && seq.decoding();
        }
        for seq in self.running.iter().filter(|s| !s.waits) {
            if seq.decoding() {
                plan.scheduled += 1;
                plan.context_tokens += u64::from(seq.computed) + 1;
                plan.decode_tokens_in_batch += u64::from(look);
            } else if seq.chunk > 0 {
                plan.scheduled += 1;
                plan.context_tokens += u64::from(seq.computed + seq.chunk);
                plan.prefill_tokens += u64::from(seq.chunk);
            }
        }
        plan
    }

    fn admit(&mut self, now: Instant, budget: &mut u32, plan: &mut StepPlan) {
        while *budget > 0 && self.running.len() < self.profile.max_num_seqs as usize {
            let Some(seq) = self.waiting.front() else {
                break;
            };
            let need = self.blocks_for(seq.target + 1);
            if need > self.profile.kv_blocks {
                // Can never fit: the real engines reject such a request.
                if let Some(seq) = self.waiting.pop_front() {
                    self.abort_unscheduled(seq);
                }
                continue;
            }
            // llama.cpp gives a task a free slot whatever its cache holds; the batch that then
            // finds no room fails every slot.
            let fails = need > self.free_blocks && self.observe.fails_when_kv_full;
            if need > self.free_blocks && !fails {
                plan.kv_deferred = true;
                break;
            }
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            if !seq.admitted_once {
                seq.admitted_once = true;
                seq.first_scheduled = Some(now);
                if self.profile.prefix_cache && !seq.sub.prefilled {
                    let hit_blocks = self.prefix.hits(&seq.block_hashes) as u32;
                    // At least one prompt token is always computed.
                    let max_hit = (seq.prompt_len.saturating_sub(1) / self.profile.block_size)
                        * self.profile.block_size;
                    seq.cached = (hit_blocks * self.profile.block_size).min(max_hit);
                    seq.computed = seq.cached;
                    plan.prefix_query_tokens += u64::from(seq.prompt_len);
                    plan.prefix_hit_tokens += u64::from(seq.cached);
                }
                plan.queue_s
                    .push(now.duration_since(seq.sub.arrival).as_secs_f64());
            }
            seq.slot = self.free_slots.pop().unwrap_or(0);
            if fails {
                self.running.push(seq);
                self.context_exceeded(now);
                *budget = self.profile.prefill_chunk_tokens;
                continue;
            }
            self.free_blocks -= need;
            seq.blocks = need;
            seq.chunk = (seq.target - seq.computed).min(*budget);
            *budget -= seq.chunk;
            plan.admitted += 1;
            self.running.push(seq);
        }
    }

    /// Frees a running sequence's KV and puts it at the head of the queue for recompute.
    fn preempt(&mut self, idx: usize) {
        let mut seq = self.running.remove(idx);
        self.free_blocks += seq.blocks;
        self.free_slots.push(seq.slot);
        seq.blocks = 0;
        seq.computed = 0;
        seq.chunk = 0;
        seq.target = seq.prompt_len + seq.generated;
        self.waiting.push_front(seq);
    }

    fn release(&mut self, seq: &Seq) {
        self.free_blocks += seq.blocks;
        self.free_slots.push(seq.slot);
    }

    /// Runs one step: plan, sleep to the deadline, deliver, account.
    fn step(&mut self) {
        let now = Instant::now();
        let plan = self.schedule(now);
        // vLLM makes its scheduler stats when it schedules: during a long step the gauges
        // already count the sequences it runs (a wave's prefill included).
        self.publish_gauges();
        if plan.scheduled == 0 {
            // Nothing runnable (everything waits on KV that nothing will free): avoid spinning.
            std::thread::sleep(Duration::from_millis(1));
            self.prev_deadline = None;
            return;
        }
        let nominal_s =
            self.profile
                .step_s(plan.scheduled, plan.context_tokens, plan.prefill_tokens)
                / self.time_scale;
        let nominal = Duration::from_secs_f64(nominal_s);
        // A step runs from the previous step's delivery (or from now after idle), so the
        // scheduling work between steps counts, as the clients see it. Back-to-back steps chain
        // absolute deadlines (a late wake-up shortens the next step: no drift), unless the
        // previous one overran by more than a step.
        let start = if self.prev_deadline.is_some() {
            self.prev_end
        } else {
            now
        };
        let base = match self.prev_deadline {
            Some(d) if now.saturating_duration_since(d) < nominal.max(Duration::from_millis(2)) => {
                d
            }
            _ => now,
        };
        let deadline = base + nominal;
        let wait = deadline.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        let end = Instant::now();
        self.prev_deadline = Some(deadline);
        self.prev_end = end;
        let actual_s = end.duration_since(start).as_secs_f64();
        self.deliver(end, &plan, actual_s, nominal_s);
    }

    /// Draws how many tokens a decoding sequence emits this step (1 + accepted drafts).
    fn decode_tokens(&mut self) -> (u32, u32) {
        match &self.profile.spec {
            Some(spec) => {
                let k = spec.num_speculative_tokens;
                let p = spec.acceptance_rate;
                let mut accepted = 0;
                while accepted < k && self.rng.random_bool(p) {
                    accepted += 1;
                }
                (1 + accepted, accepted)
            }
            None => (1, 0),
        }
    }

    /// Cuts `n` new tokens at EOS when the request allows it; returns (tokens, stopped).
    fn apply_eos(&mut self, idx: usize, n: u32) -> (u32, bool) {
        let seq = &self.running[idx];
        let (generated, min_tokens) = (seq.generated, seq.sub.min_tokens);
        if seq.sub.ignore_eos || self.profile.eos_probability <= 0.0 {
            return (n, false);
        }
        for j in 0..n {
            let index = generated + j + 1;
            if index > min_tokens && self.rng.random_bool(self.profile.eos_probability) {
                return (j + 1, true);
            }
        }
        (n, false)
    }

    fn slot_views(&self) -> Vec<SlotView> {
        self.running
            .iter()
            .map(|s| SlotView {
                id: s.slot,
                is_processing: true,
                n_prompt_tokens: s.prompt_len,
                n_prompt_tokens_processed: s.computed.min(s.prompt_len).saturating_sub(s.cached),
                n_prompt_tokens_cache: s.cached,
                n_decoded: s.generated,
            })
            .collect()
    }
}
