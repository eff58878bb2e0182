//! The recording as the analysis reads it: one [`Recording`] per run, its request, chunk and
//! lateness-tick rows as polars `DataFrame`s, plus the run's manifest (typed) and the short
//! typed lists that are not worth a frame.
//!
//! Frames (column names and types are the contract the analysis' queries rely on):
//!
//! - `requests`: one row per request, in recorded order. `request` (u32, the row number, the key
//!   chunks refer to), `step_idx`, `worker` (u32), `wave` (u32, null outside the wave pattern),
//!   `warmup` (bool), `scheduled_t_s` (f64, a rate step's scheduled send; null elsewhere), the
//!   instants `sent_t_s` (f64) and `headers_t_s`, `first_token_t_s`,
//!   `first_answer_t_s`, `done_t_s` (f64, null when not observed), `prompt_tokens_requested`,
//!   `completion_tokens_requested` (u32), `prompt_tokens_reported`,
//!   `completion_tokens_reported`, `cached_tokens_reported` (u32, null when the engine did not
//!   say), `outcome` (str, [`Outcome::as_str`]), `http_status` (u32), `error`, `response_id`
//!   (str).
//! - `chunks`: one row per streamed chunk that carried tokens, sorted by request then arrival.
//!   `request` (u32), `step_idx` (u32, the request's), `t_s` (f64), `tokens` (u32, null when the
//!   engine did not count), `reasoning` (bool: a `reasoning_content` chunk rather than answer;
//!   a bool, not the kind's name, because this frame has a row per chunk).
//! - `ticks`: the client's lateness ticks, `step_idx` (u32), `t_s`, `late_s` (f64).
//!
//! Kept as typed lists, not frames:
//!
//! - `steps` ([`StepRecord`]): tens of rows, each of which becomes one output row; the queries
//!   group by `step_idx` and the typed list is what the per-step output is built from.
//! - `engine` ([`EngineSample`]): the canonical signals the collectors' adapters make of each
//!   scrape. The analysis reads them as counter deltas between the first and last sample inside
//!   an interval (a binary search on the time-sorted list per window) and through the adapter's
//!   own helpers (`busy_slots_between`); a frame of ~25 signal columns would make each delta a
//!   filter plus two lookups and the llama.cpp busy-slot formula a second copy. Runs have a
//!   sample per scrape interval (thousands, not millions).
//! - `gpu` ([`GpuSample`]): a sample per GPU per interval, read the same way (window means and
//!   per-window energy deltas), and by the report's charts as typed samples.

use ceiling_collectors::GpuSample;
use polars::prelude::*;

use crate::engine::EngineSample;
use crate::recording::{ChunkKind, LatenessTick, RequestRecord, StepRecord};

/// One run's recording: the manifest fields the analysis reads, the frames, and the typed
/// lists (see the module doc for what is where and why).
#[derive(Debug, Clone)]
pub struct Recording {
    pub run_id: Option<i64>,
    /// `vllm`, `sglang`, `llamacpp` as recorded in the run's manifest.
    pub engine_kind: Option<String>,
    pub model: Option<String>,
    /// DP ranks from the probe configuration, where it says.
    pub dp: Option<u32>,
    pub steps: Vec<StepRecord>,
    pub requests: DataFrame,
    pub chunks: DataFrame,
    pub ticks: DataFrame,
    /// The engine's canonical signals per successful scrape, sorted by time.
    pub engine: Vec<EngineSample>,
    /// Scrapes recorded, failed ones included (what `result.json` counts).
    pub scrapes: usize,
    /// The counted GPUs' samples, sorted by time.
    pub gpu: Vec<GpuSample>,
    /// The samples of GPUs recorded but not counted (`--gpus`, or not running the engine),
    /// sorted by time: shown apart, never in the step figures.
    pub gpu_other: Vec<GpuSample>,
    /// The prefill and decode endpoints of a disaggregated deployment (`--metrics-url
    /// ROLE=URL`), each with its own samples; empty for a run with none.
    pub roles: Vec<crate::pd::RoleEngine>,
}

/// The run manifest fields a [`Recording`] carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunInfo {
    pub run_id: Option<i64>,
    pub engine_kind: Option<String>,
    pub model: Option<String>,
    pub dp: Option<u32>,
}

/// The `requests` frame's columns, filled row by row (from SQLite or from records).
#[derive(Debug, Clone, Default)]
pub struct RequestColumns {
    pub step_idx: Vec<u32>,
    pub worker: Vec<u32>,
    pub wave: Vec<Option<u32>>,
    pub warmup: Vec<bool>,
    pub scheduled_t_s: Vec<Option<f64>>,
    pub sent_t_s: Vec<f64>,
    pub headers_t_s: Vec<Option<f64>>,
    pub first_token_t_s: Vec<Option<f64>>,
    pub first_answer_t_s: Vec<Option<f64>>,
    pub done_t_s: Vec<Option<f64>>,
    pub prompt_tokens_requested: Vec<u32>,
    pub completion_tokens_requested: Vec<u32>,
    pub prompt_tokens_reported: Vec<Option<u32>>,
    pub completion_tokens_reported: Vec<Option<u32>>,
    pub cached_tokens_reported: Vec<Option<u32>>,
    pub outcome: Vec<&'static str>,
    pub http_status: Vec<Option<u32>>,
    pub error: Vec<Option<String>>,
    pub response_id: Vec<Option<String>>,
    pub prompt_from_text: Vec<bool>,
}

/// The `chunks` frame's columns, appended row by row with [`ChunkColumns::push`].
///
/// The tokens are held as plain values plus the rows where the engine did not count (usually
/// none or all), not as `Option<u32>`: half the bytes per row while loading, and the frame's
/// column is the value vector itself, not a copy, when every chunk was counted.
#[derive(Debug, Clone, Default)]
pub struct ChunkColumns {
    request: Vec<u32>,
    step_idx: Vec<u32>,
    t_s: Vec<f64>,
    /// 0 where unknown (see `tokens_unknown`).
    tokens: Vec<u32>,
    /// The rows whose tokens are unknown, ascending.
    tokens_unknown: Vec<usize>,
    reasoning: Vec<bool>,
}

impl RequestColumns {
    pub fn len(&self) -> usize {
        self.step_idx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.step_idx.is_empty()
    }

    fn push(&mut self, r: &RequestRecord) {
        self.step_idx.push(r.step_idx);
        self.worker.push(r.worker);
        self.wave.push(r.wave);
        self.warmup.push(r.warmup);
        self.scheduled_t_s.push(r.scheduled_t_s);
        self.sent_t_s.push(r.sent_t_s);
        self.headers_t_s.push(r.headers_t_s);
        self.first_token_t_s.push(r.first_token_t_s);
        self.first_answer_t_s.push(r.first_answer_t_s);
        self.done_t_s.push(r.done_t_s);
        self.prompt_tokens_requested.push(r.prompt_tokens_requested);
        self.completion_tokens_requested
            .push(r.completion_tokens_requested);
        self.prompt_tokens_reported.push(r.prompt_tokens_reported);
        self.completion_tokens_reported
            .push(r.completion_tokens_reported);
        self.cached_tokens_reported.push(r.cached_tokens_reported);
        self.outcome.push(r.outcome.as_str());
        self.http_status.push(r.http_status.map(u32::from));
        self.error.push(r.error.clone());
        self.response_id.push(r.response_id.clone());
        self.prompt_from_text.push(r.prompt_from_text);
    }

    /// The `requests` frame.
    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.len() as u32;
        df!(
            "request" => (0..n).collect::<Vec<u32>>(),
            "step_idx" => self.step_idx,
            "worker" => self.worker,
            "wave" => self.wave,
            "warmup" => self.warmup,
            "scheduled_t_s" => self.scheduled_t_s,
            "sent_t_s" => self.sent_t_s,
            "headers_t_s" => self.headers_t_s,
            "first_token_t_s" => self.first_token_t_s,
            "first_answer_t_s" => self.first_answer_t_s,
            "done_t_s" => self.done_t_s,
            "prompt_tokens_requested" => self.prompt_tokens_requested,
            "completion_tokens_requested" => self.completion_tokens_requested,
            "prompt_tokens_reported" => self.prompt_tokens_reported,
            "completion_tokens_reported" => self.completion_tokens_reported,
            "cached_tokens_reported" => self.cached_tokens_reported,
            "outcome" => self.outcome,
            "http_status" => self.http_status,
            "error" => self.error,
            "response_id" => self.response_id,
            "prompt_from_text" => self.prompt_from_text,
        )
    }
}

impl ChunkColumns {
    /// Empty columns with room for `rows` rows (an estimate: more rows still fit; room not
    /// written is address space, not memory).
    pub fn with_capacity(rows: usize) -> ChunkColumns {
        ChunkColumns {
            request: Vec::with_capacity(rows),
            step_idx: Vec::with_capacity(rows),
            t_s: Vec::with_capacity(rows),
            tokens: Vec::with_capacity(rows),
            tokens_unknown: Vec::new(),
            reasoning: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.request.len()
    }

    pub fn is_empty(&self) -> bool {
        self.request.is_empty()
    }

    /// Appends one chunk of request row `request`.
    pub fn push(
        &mut self,
        request: u32,
        step_idx: u32,
        t_s: f64,
        tokens: Option<u32>,
        reasoning: bool,
    ) {
        if tokens.is_none() {
            self.tokens_unknown.push(self.request.len());
        }
        self.request.push(request);
        self.step_idx.push(step_idx);
        self.t_s.push(t_s);
        self.tokens.push(tokens.unwrap_or(0));
        self.reasoning.push(reasoning);
    }

    /// Appends `other`'s rows after these.
    pub fn append(&mut self, other: ChunkColumns) {
        let offset = self.len();
        self.tokens_unknown
            .extend(other.tokens_unknown.iter().map(|&i| i + offset));
        self.request.extend_from_slice(&other.request);
        self.step_idx.extend_from_slice(&other.step_idx);
        self.t_s.extend_from_slice(&other.t_s);
        self.tokens.extend_from_slice(&other.tokens);
        self.reasoning.extend_from_slice(&other.reasoning);
    }

    /// The `chunks` frame. Each numeric vector becomes its column without a copy; the tokens
    /// are copied only where some are unknown.
    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        let height = self.len();
        let tokens = if self.tokens_unknown.is_empty() {
            UInt32Chunked::from_vec("tokens".into(), self.tokens)
        } else if self.tokens_unknown.len() == height {
            UInt32Chunked::full_null("tokens".into(), height)
        } else {
            let mut unknown = self.tokens_unknown.iter().peekable();
            let values = self.tokens.iter().enumerate().map(|(i, &t)| {
                if unknown.next_if_eq(&&i).is_some() {
                    None
                } else {
                    Some(t)
                }
            });
            UInt32Chunked::from_iter_options("tokens".into(), values)
        };
        DataFrame::new(
            height,
            vec![
                UInt32Chunked::from_vec("request".into(), self.request).into_column(),
                UInt32Chunked::from_vec("step_idx".into(), self.step_idx).into_column(),
                Float64Chunked::from_vec("t_s".into(), self.t_s).into_column(),
                tokens.into_column(),
                BooleanChunked::from_slice("reasoning".into(), &self.reasoning).into_column(),
            ],
        )
    }
}

/// The `ticks` frame from lateness ticks.
pub fn ticks_frame(ticks: &[LatenessTick]) -> PolarsResult<DataFrame> {
    df!(
        "step_idx" => ticks.iter().map(|t| t.step_idx).collect::<Vec<u32>>(),
        "t_s" => ticks.iter().map(|t| t.t_s).collect::<Vec<f64>>(),
        "late_s" => ticks.iter().map(|t| t.late_s).collect::<Vec<f64>>(),
    )
}

/// The columns a recording is built from (see [`Recording::from_columns`]).
#[derive(Debug, Clone, Default)]
pub struct RecordingParts {
    pub info: RunInfo,
    pub steps: Vec<StepRecord>,
    pub requests: RequestColumns,
    pub chunks: ChunkColumns,
    pub ticks: Vec<LatenessTick>,
    pub engine: Vec<EngineSample>,
    pub scrapes: usize,
    pub gpu: Vec<GpuSample>,
    pub gpu_other: Vec<GpuSample>,
}

impl Recording {
    /// Builds the frames from columns; the engine and GPU samples are sorted by time here.
    pub fn from_columns(parts: RecordingParts) -> PolarsResult<Recording> {
        let RecordingParts {
            info,
            steps,
            requests,
            chunks,
            ticks,
            mut engine,
            scrapes,
            mut gpu,
            mut gpu_other,
        } = parts;
        engine.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        gpu.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        gpu_other.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        Ok(Recording {
            run_id: info.run_id,
            engine_kind: info.engine_kind,
            model: info.model,
            dp: info.dp,
            steps,
            requests: requests.into_frame()?,
            chunks: chunks.into_frame()?,
            ticks: ticks_frame(&ticks)?,
            engine,
            scrapes,
            gpu,
            gpu_other,
            roles: Vec::new(),
        })
    }

    /// Builds a recording from the probe's row types (tests, synthetic runs, imports that
    /// produce records).
    pub fn from_records(
        info: RunInfo,
        steps: &[StepRecord],
        requests: &[RequestRecord],
        ticks: &[LatenessTick],
        engine: Vec<EngineSample>,
        gpu: Vec<GpuSample>,
    ) -> PolarsResult<Recording> {
        let mut req = RequestColumns::default();
        let mut ch = ChunkColumns::default();
        for (i, r) in requests.iter().enumerate() {
            req.push(r);
            for c in &r.chunks {
                ch.push(
                    i as u32,
                    r.step_idx,
                    c.t_s,
                    c.tokens,
                    c.kind == ChunkKind::Reasoning,
                );
            }
        }
        let scrapes = engine.len();
        Recording::from_columns(RecordingParts {
            info,
            steps: steps.to_vec(),
            requests: req,
            chunks: ch,
            ticks: ticks.to_vec(),
            engine,
            scrapes,
            gpu,
            gpu_other: Vec::new(),
        })
    }

    /// Requests recorded (warm-up and failed included).
    pub fn request_count(&self) -> usize {
        self.requests.height()
    }
}

#[cfg(test)]
mod tests {
    use crate::synthetic::{WaveSpec, wave_recording};

    #[test]
    fn frames_carry_one_row_per_request_and_chunk() {
        let rec = wave_recording(&[WaveSpec {
            output_len: 11,
            ..WaveSpec::default()
        }]);
        let r = rec.recording();
        assert_eq!(r.requests.height(), rec.requests.len());
        assert_eq!(r.chunks.height(), rec.requests.len() * 11);
        assert_eq!(r.ticks.height(), rec.ticks.len());
        let last = r.requests.height() as u32 - 1;
        let req = r.chunks.column("request").unwrap().u32().unwrap();
        assert_eq!(req.get(r.chunks.height() - 1), Some(last));
    }

    fn tokens_of(tokens: &[Option<u32>]) -> Vec<Option<u32>> {
        let mut c = super::ChunkColumns::with_capacity(2);
        for (i, &t) in tokens.iter().enumerate() {
            c.push(i as u32 / 2, 0, i as f64, t, false);
        }
        let mut more = super::ChunkColumns::default();
        more.push(9, 1, 9.0, None, true);
        more.push(9, 1, 9.5, Some(7), true);
        c.append(more);
        let df = c.into_frame().unwrap();
        assert_eq!(df.height(), tokens.len() + 2);
        let col = df.column("tokens").unwrap().u32().unwrap();
        col.iter().collect()
    }

    #[test]
    fn unknown_tokens_are_null_wherever_they_fall() {
        assert_eq!(
            tokens_of(&[Some(1), None, Some(3), None]),
            [Some(1), None, Some(3), None, None, Some(7)]
        );
        assert_eq!(tokens_of(&[None, None]), [None, None, None, Some(7)]);
        assert_eq!(tokens_of(&[]), [None, Some(7)]);
        let mut all_known = super::ChunkColumns::default();
        all_known.push(0, 0, 0.0, Some(2), false);
        let df = all_known.into_frame().unwrap();
        assert_eq!(df.column("tokens").unwrap().null_count(), 0);
        let mut none_known = super::ChunkColumns::default();
        none_known.push(0, 0, 0.0, None, false);
        let df = none_known.into_frame().unwrap();
        assert_eq!(df.column("tokens").unwrap().null_count(), 1);
    }
}
