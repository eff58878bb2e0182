//! Synthetic recordings with a known truth, for tests, examples and snapshot fixtures: an
//! idealised engine whose decode step takes exactly `step_time_s`, emitting one chunk of
//! `tokens_per_chunk` tokens per sequence per step, with matching engine counters and GPU
//! samples. Nothing here is used on a real recording.

use ceiling_collectors::GpuSample;
use ceiling_collectors::engines::{Flavor, Signals, SumCount};

use crate::engine::EngineSample;
use crate::recording::{
    ChunkArrival, ChunkKind, LatenessTick, Outcome, Pattern, Recording, RequestRecord, RunInfo,
    StepRecord,
};

/// One wave step of the idealised engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaveSpec {
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
    pub waves: u32,
    pub warmup_waves: u32,
    /// Decode step time at this batch size.
    pub step_time_s: f64,
    /// Time from send to the first token (prefill of the whole wave).
    pub prefill_s: f64,
    /// Tokens per sequence per step (the accept length under speculative decoding).
    pub tokens_per_chunk: u32,
    /// Whether chunks say how many tokens they carry (`continuous_usage_stats`).
    pub chunk_tokens_known: bool,
    /// Engine KV capacity in tokens, for the engine samples.
    pub kv_capacity_tokens: f64,
}

impl Default for WaveSpec {
    fn default() -> Self {
        WaveSpec {
            batch_size: 8,
            input_len: 128,
            output_len: 64,
            waves: 3,
            warmup_waves: 1,
            step_time_s: 0.010,
            prefill_s: 0.050,
            tokens_per_chunk: 1,
            chunk_tokens_known: true,
            kv_capacity_tokens: 1_000_000.0,
        }
    }
}

/// A whole synthetic recording.
#[derive(Debug, Clone, Default)]
pub struct SyntheticRun {
    pub steps: Vec<StepRecord>,
    pub requests: Vec<RequestRecord>,
    pub ticks: Vec<LatenessTick>,
    pub gpu: Vec<GpuSample>,
    pub engine: Vec<EngineSample>,
}

impl SyntheticRun {
    /// The run as the analysis reads it, with an empty manifest.
    pub fn recording(&self) -> Recording {
        self.recording_with(RunInfo::default())
    }

    /// The run as the analysis reads it, with the given manifest.
    pub fn recording_with(&self, info: RunInfo) -> Recording {
        Recording::from_records(
            info,
            &self.steps,
            &self.requests,
            &self.ticks,
            self.engine.clone(),
            self.gpu.clone(),
        )
        .expect("a synthetic run's columns make valid frames")
    }
}

/// One wave of the recording as the engine lived it.
struct WaveLife {
    start: f64,
    bs: u32,
    first_token: f64,
    step: f64,
    /// Decode steps after the first token.
    decode_steps: u32,
    tokens_per_step: u32,
    output_len: u32,
}

impl WaveLife {
    fn end(&self) -> f64 {
        self.first_token + f64::from(self.decode_steps) * self.step
    }
    /// Engine steps (one prefill + decode steps) completed by `t`.
    fn steps_by(&self, t: f64) -> f64 {
        if t < self.first_token {
            return 0.0;
        }
        let k = ((t - self.first_token) / self.step + 1e-9).floor();
        1.0 + k.min(f64::from(self.decode_steps))
    }
    fn decode_steps_by(&self, t: f64) -> f64 {
        (self.steps_by(t) - 1.0).max(0.0)
    }
    fn tokens_by(&self, t: f64) -> f64 {
        if t < self.first_token {
            return 0.0;
        }
        let per_seq = (1.0 + self.decode_steps_by(t) * f64::from(self.tokens_per_step))
            .min(f64::from(self.output_len));
        per_seq * f64::from(self.bs)
    }
}

/// Steps of the wave pattern, one after another with a 0.2 s pause between waves.
pub fn wave_recording(specs: &[WaveSpec]) -> SyntheticRun {
    let mut run = SyntheticRun::default();
    let mut lives: Vec<(WaveLife, &WaveSpec)> = Vec::new();
    let mut t = 0.0;
    for (idx, spec) in specs.iter().enumerate() {
        let step_idx = idx as u32;
        let step_start = t;
        let m = spec.tokens_per_chunk.max(1);
        let decode_steps = (spec.output_len.saturating_sub(1)).div_ceil(m);
        for w in 0..spec.warmup_waves + spec.waves {
            let t0 = t + 0.2;
            let life = WaveLife {
                start: t0,
                bs: spec.batch_size,
                first_token: t0 + spec.prefill_s,
                step: spec.step_time_s,
                decode_steps,
                tokens_per_step: m,
                output_len: spec.output_len,
            };
            for i in 0..spec.batch_size {
                run.requests.push(wave_request(spec, step_idx, &life, w, i));
            }
            t = life.end() + 0.001;
            lives.push((life, spec));
        }
        run.steps.push(StepRecord {
            rate_rps: None,
            burstiness: None,
            idx: step_idx,
            batch_size: spec.batch_size,
            input_len: spec.input_len,
            output_len: spec.output_len,
            pattern: Pattern::Wave,
            start_t_s: step_start,
            end_t_s: Some(t),
        });
        let mut tick = step_start;
        while tick < t {
            run.ticks.push(LatenessTick {
                step_idx,
                t_s: tick,
                late_s: 0.0001,
            });
            tick += 0.01;
        }
    }
    let end = t + 0.2;

    // Engine scrapes every 50 ms and GPU samples every 100 ms over the whole run.
    let mut s = 0.0;
    while s <= end {
        let active = lives.iter().find(|(l, _)| l.start <= s && s < l.end());
        run.engine.push(engine_sample(specs, &lives, active, s));
        if ((s * 20.0).round() as u64).is_multiple_of(2) {
            run.gpu.push(gpu_sample(s, active.is_some()));
        }
        s += 0.05;
    }
    run
}

/// Request `i` of wave `w` of a step: its first token after the prefill, then one chunk per
/// decode step of `tokens_per_chunk` tokens.
fn wave_request(spec: &WaveSpec, step_idx: u32, life: &WaveLife, w: u32, i: u32) -> RequestRecord {
    let m = life.tokens_per_step;
    // Per-request delivery offset: a few microseconds, gaps unchanged.
    let off = f64::from(i) * 1e-6;
    let mut chunks = vec![ChunkArrival {
        t_s: life.first_token + off,
        tokens: spec.chunk_tokens_known.then_some(1),
        kind: ChunkKind::Answer,
    }];
    let mut left = spec.output_len.saturating_sub(1);
    for k in 1..=life.decode_steps {
        let n = left.min(m);
        left -= n;
        chunks.push(ChunkArrival {
            t_s: life.first_token + f64::from(k) * spec.step_time_s + off,
            tokens: spec.chunk_tokens_known.then_some(n),
            kind: ChunkKind::Answer,
        });
    }
    let first = chunks.first().map(|c| c.t_s);
    let done = chunks.last().map(|c| c.t_s);
    RequestRecord {
        scheduled_t_s: None,
        response_id: None,
        step_idx,
        worker: i,
        wave: Some(w),
        warmup: w < spec.warmup_waves,
        sent_t_s: life.start,
        headers_t_s: Some(life.start + 0.001),
        first_token_t_s: first,
        first_answer_t_s: first,
        done_t_s: done,
        prompt_tokens_requested: spec.input_len,
        completion_tokens_requested: spec.output_len,
        prompt_tokens_reported: Some(spec.input_len),
        completion_tokens_reported: Some(spec.output_len),
        cached_tokens_reported: Some(0),
        prompt_from_text: false,
        outcome: Outcome::Ok,
        http_status: Some(200),
        error: None,
        chunks,
    }
}

/// The engine's counters at `s`: every wave's steps and tokens so far, the active wave's batch
/// and KV use.
fn engine_sample(
    specs: &[WaveSpec],
    lives: &[(WaveLife, &WaveSpec)],
    active: Option<&(WaveLife, &WaveSpec)>,
    s: f64,
) -> EngineSample {
    let steps: f64 = lives.iter().map(|(l, _)| l.steps_by(s)).sum();
    let decode: f64 = lives
        .iter()
        .map(|(l, _)| l.decode_steps_by(s) * f64::from(l.bs))
        .sum();
    let itl_sum: f64 = lives
        .iter()
        .map(|(l, _)| l.decode_steps_by(s) * f64::from(l.bs) * l.step)
        .sum();
    let tokens: f64 = lives.iter().map(|(l, _)| l.tokens_by(s)).sum();
    let prompt: f64 = lives
        .iter()
        .filter(|(l, _)| l.first_token <= s)
        .map(|(l, sp)| f64::from(l.bs * sp.input_len))
        .sum();
    let spec_on = specs.iter().any(|sp| sp.tokens_per_chunk > 1);
    let accepted: f64 = lives
        .iter()
        .map(|(l, _)| l.decode_steps_by(s) * f64::from(l.bs * (l.tokens_per_step - 1)))
        .sum();
    let (running, kv) = match active {
        Some((l, sp)) => (
            f64::from(l.bs),
            f64::from(l.bs * (sp.input_len + sp.output_len)) / sp.kv_capacity_tokens,
        ),
        None => (0.0, 0.0),
    };
    let capacity = active
        .map(|(_, sp)| sp.kv_capacity_tokens)
        .or(specs.first().map(|sp| sp.kv_capacity_tokens));
    EngineSample {
        t_s: s,
        boundary: false,
        signals: Signals {
            flavor: Some(Flavor::Vllm),
            dp_ranks: 1,
            running: Some(running),
            waiting: Some(0.0),
            kv_usage_frac: Some(kv),
            kv_capacity_tokens: capacity,
            prompt_tokens_total: Some(prompt),
            generation_tokens_total: Some(tokens),
            live_generation_tokens_total: Some(tokens),
            steps_total: Some(steps),
            preemptions_total: Some(0.0),
            prefix_cache_queries_total: Some(prompt),
            prefix_cache_hits_total: Some(0.0),
            spec_drafts_total: spec_on.then_some(decode),
            spec_draft_tokens_total: spec_on.then_some(decode * 3.0),
            spec_accepted_tokens_total: spec_on.then_some(accepted),
            itl_s: Some(SumCount {
                sum: itl_sum,
                count: decode,
            }),
            ..Signals::default()
        },
    }
}

/// One GPU at `s`: busy while a wave runs, idle between.
fn gpu_sample(s: f64, busy: bool) -> GpuSample {
    GpuSample {
        gpu_index: 0,
        t_s: s,
        util_gpu_pct: Some(if busy { 95.0 } else { 0.0 }),
        mem_used_bytes: Some(60_000_000_000),
        mem_total_bytes: Some(80_000_000_000),
        power_w: Some(500.0),
        energy_j: Some(1_000.0 + 500.0 * s),
        sm_clock_mhz: Some(1980),
        throttle_reasons: Some(0),
        ..GpuSample::default()
    }
}

/// A successful one-chunk request sent at `sent`, for hand-built cases.
pub fn request_at(sent: f64) -> RequestRecord {
    RequestRecord {
        scheduled_t_s: None,
        response_id: None,
        step_idx: 0,
        worker: 0,
        wave: None,
        warmup: false,
        sent_t_s: sent,
        headers_t_s: Some(sent),
        first_token_t_s: Some(sent),
        first_answer_t_s: Some(sent),
        done_t_s: Some(sent),
        prompt_tokens_requested: 1,
        completion_tokens_requested: 1,
        prompt_tokens_reported: Some(1),
        completion_tokens_reported: Some(1),
        cached_tokens_reported: None,
        prompt_from_text: false,
        outcome: Outcome::Ok,
        http_status: Some(200),
        error: None,
        chunks: Vec::new(),
    }
}
