//! The open loop's validated settings ([`RateSettings`], [`SweepSettings`]) and the length mix
//! ([`LengthMix`]), from the flags of `cli/rate.rs`. Stored with the run's probe settings
//! (`rate`, `mix` keys), so `analyze` knows the SLA and the sweep a run was recorded under.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cli::{MixArgs, PatternArg, ProbeArgs, RateArg};
use crate::exit::Failure;

/// Concurrency of the sweep's saturation step when neither flag gives one.
pub const DEFAULT_SATURATION_CONCURRENCY: u32 = 256;

/// One rate step's arrival rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rate {
    /// Requests per second.
    PerSecond(f64),
    /// Every request of the step at once.
    Inf,
}

impl Rate {
    /// Requests/s, `+inf` for all at once.
    pub fn rps(self) -> f64 {
        match self {
            Rate::PerSecond(r) => r,
            Rate::Inf => f64::INFINITY,
        }
    }
}

/// The sweep: a closed-loop step at `saturation_concurrency` finds the saturation rate, then
/// `points` rate steps from `saturation / points` to the saturation rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSettings {
    pub points: u32,
    pub saturation_concurrency: u32,
    /// End the sweep when a step's successful share falls below this.
    pub stop_on_failure: Option<f64>,
}

/// How the open loop runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateSettings {
    /// The lengths (the mean of a uniform mix; a dataset's entries bring their own).
    pub input_len: u32,
    pub output_len: u32,
    /// The listed rates (`--pattern rate`); empty for a sweep, whose rates follow the
    /// saturation step.
    pub rates: Vec<Rate>,
    pub burstiness: f64,
    pub max_concurrency: Option<u32>,
    /// Requests per step instead of the duration.
    pub num_prompts: Option<u32>,
    /// Requests an `inf` step sends.
    pub inf_requests: u32,
    pub sweep: Option<SweepSettings>,
    /// The macro ceiling's SLA: p99 TTFT and p99 TPOT, seconds.
    pub sla_ttft_s: Option<f64>,
    pub sla_tpot_s: Option<f64>,
}

/// Where each request's lengths come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LengthMix {
    /// Every request at the step's `--input-len` / `--output-len`.
    #[default]
    Fixed,
    /// Uniform in `[len × (1 − range), len × (1 + range)]`, input and output each.
    Uniform { range: f64 },
    /// The entries of a dataset file, read (and checked) before the run; `text`: its prompts'
    /// text is sent (`--dataset-prompts text`), else prompts of its lengths.
    Dataset {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        text: bool,
    },
}

impl LengthMix {
    pub fn is_fixed(&self) -> bool {
        *self == LengthMix::Fixed
    }

    /// The longest (input, output) this mix draws around `(input_len, output_len)`.
    pub fn longest(&self, input_len: u32, output_len: u32) -> (u32, u32) {
        match self {
            LengthMix::Uniform { range } => (
                uniform_bounds(input_len, *range).1,
                uniform_bounds(output_len, *range).1,
            ),
            LengthMix::Fixed | LengthMix::Dataset { .. } => (input_len, output_len),
        }
    }
}

/// `[len × (1 − range), len × (1 + range)]`, rounded, at least 1 (2 for an output, which TPOT
/// needs; the caller clamps).
pub fn uniform_bounds(len: u32, range: f64) -> (u32, u32) {
    let lo = (f64::from(len) * (1.0 - range)).round().max(1.0) as u32;
    let hi = (f64::from(len) * (1.0 + range)).round().max(1.0) as u32;
    (lo, hi.max(lo))
}

fn usage(msg: String) -> anyhow::Error {
    Failure::Usage(msg).into()
}

/// The open loop's settings when the pattern is `rate` or `sweep`, at `lengths` (input,
/// output).
pub fn rate_settings(a: &ProbeArgs, lengths: (u32, u32)) -> anyhow::Result<Option<RateSettings>> {
    let r = &a.rate;
    let sweep = match a.load.pattern {
        PatternArg::Wave | PatternArg::ClosedLoop => {
            if !r.rates.is_empty() {
                return Err(usage(
                    "--rates drives the open loop; add --pattern rate (or --pattern sweep without --rates)".into(),
                ));
            }
            return Ok(None);
        }
        PatternArg::Rate => {
            if r.rates.is_empty() {
                return Err(usage(
                    "--pattern rate needs --rates, e.g. --rates 1,2,4,8,inf".into(),
                ));
            }
            None
        }
        PatternArg::Sweep => {
            if !r.rates.is_empty() {
                return Err(usage(
                    "--pattern sweep chooses its rates from the saturation step; drop --rates, or use --pattern rate".into(),
                ));
            }
            if r.sweep_points == 0 {
                return Err(usage("--sweep-points must be at least 1".into()));
            }
            Some(SweepSettings {
                points: r.sweep_points,
                saturation_concurrency: r
                    .saturation_concurrency
                    .or(r.max_concurrency)
                    .unwrap_or(DEFAULT_SATURATION_CONCURRENCY),
                stop_on_failure: r.stop_on_failure,
            })
        }
    };
    if !(r.burstiness.is_finite() && r.burstiness > 0.0) {
        return Err(usage(
            "--burstiness must be a positive number (1 is Poisson)".into(),
        ));
    }
    if r.max_concurrency == Some(0)
        || r.num_prompts == Some(0)
        || r.saturation_concurrency == Some(0)
    {
        return Err(usage(
            "--max-concurrency, --num-prompts and --saturation-concurrency must be at least 1"
                .into(),
        ));
    }
    if r.sla_ttft.is_some_and(|d| d.is_zero()) {
        return Err(usage("--sla-ttft must be longer than 0".into()));
    }
    let rates: Vec<Rate> = r
        .rates
        .iter()
        .map(|x| match x {
            RateArg::PerSecond(v) => Rate::PerSecond(*v),
            RateArg::Inf => Rate::Inf,
        })
        .collect();
    let duration_s = a.load.duration.as_secs_f64();
    let most_finite = rates
        .iter()
        .filter_map(|x| match x {
            Rate::PerSecond(v) => Some((v * duration_s).round() as u32),
            Rate::Inf => None,
        })
        .max();
    let inf_requests = match (r.num_prompts, most_finite) {
        (Some(n), _) => n,
        (None, Some(n)) => n.max(1),
        (None, None) if rates.contains(&Rate::Inf) => {
            return Err(usage(
                "an `inf` rate alone sends a fixed number of requests: give --num-prompts".into(),
            ));
        }
        (None, None) => 0,
    };
    if duration_s <= 0.0 && r.num_prompts.is_none() {
        return Err(usage(
            "--duration must be longer than 0 for rate steps, or give --num-prompts".into(),
        ));
    }
    Ok(Some(RateSettings {
        input_len: lengths.0,
        output_len: lengths.1,
        rates,
        burstiness: r.burstiness,
        max_concurrency: r.max_concurrency,
        num_prompts: r.num_prompts,
        inf_requests,
        sweep,
        sla_ttft_s: r.sla_ttft.map(|d| d.as_secs_f64()),
        sla_tpot_s: a.search.sla_tpot.map(|d| d.as_secs_f64()),
    }))
}

/// The open loop and the length mix together: a mix only in the open loop, and the open loop
/// at one length pair (`pairs` given).
pub fn check_open_loop(
    rate: Option<&RateSettings>,
    mix: &LengthMix,
    pairs: usize,
) -> anyhow::Result<()> {
    if rate.is_none() && !mix.is_fixed() {
        return Err(usage(
            "--dataset and --input-range mix lengths in the open loop (--pattern rate or sweep); wave and closed-loop steps hold exact lengths".into(),
        ));
    }
    if rate.is_some() && pairs > 1 {
        return Err(usage(
            "--pattern rate and sweep run at one --input-len/--output-len pair (the mean of a --input-range or the fallback of a --dataset)".into(),
        ));
    }
    Ok(())
}

/// The length mix from `--dataset` / `--input-range`. The dataset itself is read (and refused
/// with its line when malformed) when the run starts, before anything is sent.
pub fn length_mix(m: &MixArgs) -> anyhow::Result<LengthMix> {
    if let Some(path) = &m.dataset {
        return Ok(LengthMix::Dataset {
            path: path.clone(),
            text: m.dataset_prompts == crate::cli::DatasetPromptsArg::Text,
        });
    }
    match m.input_range {
        None => Ok(LengthMix::Fixed),
        Some(r) if (0.0..1.0).contains(&r) => Ok(LengthMix::Uniform { range: r }),
        Some(r) => Err(usage(format!(
            "--input-range {r} must be at least 0 and below 1, e.g. 0.5 for lengths from half to one and a half times --input-len"
        ))),
    }
}

#[cfg(test)]
mod tests;
