//! The client's requests as step timing reads them, per step: the TPOT median, the spans of the
//! measured and of the successful requests, the mean E2E, the client's token totals, and per
//! wave its first send, last first token, prompt tokens and the span of its finished requests.
//! Group-bys over the per-request figures ([`crate::frames::request_figures`]).

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::frames::Rows;
use crate::recording::StepRecord;

/// One wave's requests (measured only).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WaveRequests {
    pub wave: u32,
    pub sent_min: Option<f64>,
    pub first_token_max: Option<f64>,
    /// The last second chunk of the wave's requests: from then on every inter-token gap the
    /// engine records is a decode step of the whole batch. Before it, a request that got its
    /// first token in an earlier prefill step records a first gap that holds the later
    /// requests' prefill (SGLang prefills a wave in several steps when its requests arrive
    /// apart).
    pub settled_t_s: Option<f64>,
    pub prompt_tokens_requested: f64,
    /// First send and last done of the wave's requests that finished.
    pub done_span: Option<(f64, f64)>,
}

/// One step's requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepRequests {
    pub tpot_median_s: Option<f64>,
    /// First measured request sent to the last one done, when it is a positive span.
    pub measured_span: Option<(f64, f64)>,
    /// First successful measured request sent and last one done.
    pub ok_sent_min: Option<f64>,
    pub ok_done_max: Option<f64>,
    pub ok_n: u32,
    pub ok_e2e_mean_s: Option<f64>,
    /// First sent and last done of any request of the step, warm-up included: its traffic.
    pub sent_min: Option<f64>,
    pub done_max: Option<f64>,
    /// Output tokens of every request of the step (warm-up included).
    pub client_output_tokens: u64,
    /// Prompt tokens (reported, else requested) of every request that got a first token.
    pub client_prompt_tokens: u64,
    pub waves: Vec<WaveRequests>,
    /// Every done instant of the step's requests (warm-up included), sorted: the requests the
    /// engine finished, which its slot counters (llama.cpp) count only at their end.
    pub done_ts: Vec<f64>,
}

impl StepRequests {
    /// The step's traffic: its first request sent to its last done (its own end where none was
    /// done); `None` where it sent none. The engine's counters move only inside it.
    pub(crate) fn traffic(&self, step: &StepRecord) -> Option<(f64, f64)> {
        let start = self.sent_min?;
        let end = self.done_max.or(step.end_t_s).unwrap_or(start);
        Some((start, end.max(start)))
    }

    /// What a step's counters are bracketed over: its traffic, else the step itself. Scrapes
    /// that enclose it and none of its neighbours' traffic bracket them exactly.
    pub(crate) fn span(&self, step: &StepRecord) -> (f64, f64) {
        self.traffic(step).unwrap_or_else(|| {
            let end = step.end_t_s.unwrap_or(step.start_t_s);
            (step.start_t_s, end.max(step.start_t_s))
        })
    }
}

pub(super) fn requests_by_step(figures: &DataFrame) -> PolarsResult<BTreeMap<u32, StepRequests>> {
    let measured = col("warmup").not();
    let ok = col("measured_ok");
    let tpot = col("tpot_s").filter(ok.clone().and(col("tpot_s").is_finite()));
    let per_step = Rows::new(
        figures
            .clone()
            .lazy()
            .group_by([col("step_idx")])
            .agg([
                tpot.quantile(lit(0.5), QuantileMethod::Linear)
                    .alias("tpot_median"),
                col("sent_t_s")
                    .filter(measured.clone())
                    .min()
                    .alias("m_sent"),
                col("done_t_s").filter(measured).max().alias("m_done"),
                col("sent_t_s").filter(ok.clone()).min().alias("ok_sent"),
                col("done_t_s").filter(ok.clone()).max().alias("ok_done"),
                ok.clone().sum().alias("ok_n"),
                col("e2e_s").filter(ok).mean().alias("ok_e2e_mean"),
                col("sent_t_s").min().alias("sent_min"),
                col("done_t_s").max().alias("done_max"),
                col("output_tokens")
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("out_tokens"),
                col("prompt_tokens_reported")
                    .fill_null(col("prompt_tokens_requested"))
                    .cast(DataType::UInt64)
                    .filter(col("first_token_t_s").is_not_null())
                    .sum()
                    .alias("prompt_tokens"),
            ])
            .collect()?,
        "step_idx",
    )?;
    let mut waves = waves_by_step(figures)?;
    let mut done_ts = done_by_step(figures)?;
    let mut out = BTreeMap::new();
    let steps = figures.column("step_idx")?.u32()?.unique()?;
    for step in steps.iter().flatten() {
        let f = |name: &str| per_step.f64(step, name);
        let measured_span = match (f("m_sent")?, f("m_done")?) {
            (Some(a), Some(b)) if b > a => Some((a, b)),
            _ => None,
        };
        out.insert(
            step,
            StepRequests {
                tpot_median_s: f("tpot_median")?,
                measured_span,
                ok_sent_min: f("ok_sent")?,
                ok_done_max: f("ok_done")?,
                ok_n: per_step.u64(step, "ok_n")?.unwrap_or(0) as u32,
                ok_e2e_mean_s: f("ok_e2e_mean")?,
                sent_min: f("sent_min")?,
                done_max: f("done_max")?,
                client_output_tokens: per_step.u64(step, "out_tokens")?.unwrap_or(0),
                client_prompt_tokens: per_step.u64(step, "prompt_tokens")?.unwrap_or(0),
                waves: waves.remove(&step).unwrap_or_default(),
                done_ts: done_ts.remove(&step).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// Per step, the sorted done instants of its requests.
fn done_by_step(figures: &DataFrame) -> PolarsResult<BTreeMap<u32, Vec<f64>>> {
    let df = figures
        .clone()
        .lazy()
        .select([col("step_idx"), col("done_t_s")])
        .drop_nulls(None)
        .sort(["step_idx", "done_t_s"], SortMultipleOptions::default())
        .collect()?;
    let mut out: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    let step = df.column("step_idx")?.u32()?;
    let done = df.column("done_t_s")?.f64()?;
    for (s, d) in step.iter().zip(done.iter()) {
        if let (Some(s), Some(d)) = (s, d) {
            out.entry(s).or_default().push(d);
        }
    }
    Ok(out)
}

/// Per step, its measured waves in wave order.
fn waves_by_step(figures: &DataFrame) -> PolarsResult<BTreeMap<u32, Vec<WaveRequests>>> {
    let done = col("done_t_s").is_not_null();
    let df = figures
        .clone()
        .lazy()
        .filter(col("warmup").not().and(col("wave").is_not_null()))
        .group_by([col("step_idx"), col("wave")])
        .agg([
            col("sent_t_s").min().alias("sent_min"),
            col("first_token_t_s").max().alias("first_max"),
            col("second_chunk_t_s").max().alias("second_max"),
            col("prompt_tokens_requested")
                .cast(DataType::Float64)
                .sum()
                .alias("prompt"),
            col("sent_t_s")
                .filter(done.clone())
                .min()
                .alias("done_sent"),
            col("done_t_s").max().alias("done_max"),
        ])
        .sort(["step_idx", "wave"], SortMultipleOptions::default())
        .collect()?;
    let get = |name: &str| df.column(name).and_then(|c| c.f64().cloned());
    let (sent, first, second, prompt, done_sent, done_max) = (
        get("sent_min")?,
        get("first_max")?,
        get("second_max")?,
        get("prompt")?,
        get("done_sent")?,
        get("done_max")?,
    );
    let step = df.column("step_idx")?.u32()?;
    let wave = df.column("wave")?.u32()?;
    let mut out: BTreeMap<u32, Vec<WaveRequests>> = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(s), Some(w)) = (step.get(i), wave.get(i)) else {
            continue;
        };
        out.entry(s).or_default().push(WaveRequests {
            wave: w,
            sent_min: sent.get(i),
            first_token_max: first.get(i),
            settled_t_s: second.get(i),
            prompt_tokens_requested: prompt.get(i).unwrap_or(0.0),
            done_span: done_sent.get(i).zip(done_max.get(i)),
        });
    }
    Ok(out)
}
