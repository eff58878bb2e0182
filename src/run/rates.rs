//! The open loop's part of a run: `--pattern rate` runs one step per listed rate; `--pattern
//! sweep` first runs a closed-loop step at the saturation concurrency, reads its completed
//! request rate back from the recording (the saturation rate), then runs `--sweep-points` rate
//! steps spread evenly up to it, stopping early when a step's successful share falls below
//! `--stop-on-failure`. Every decision is read from the recording, so the analysis replays it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use ceiling_reports::StepRecord;
use ceiling_reports::recording::Pattern;

use crate::config::{LengthMix, ProbeConfig, Rate, RateSettings, StepSpec, Warmup};
use crate::exit::Failure;
use crate::probe::EngineInfo;
use crate::probe::arrivals::{Extent, schedule};
use crate::probe::dataset::Dataset;
use crate::probe::mix::{Entry, LengthPlan};
use crate::probe::open_loop::{RatePlan, run_rate_step};
use crate::probe::worker::{Shared, StepPlan, run_step};
use crate::store::{Record, Store};

/// Where the sweep reads its steps back from.
#[derive(Debug, Clone)]
pub struct RateMeter {
    pub db: PathBuf,
    pub run_id: i64,
}

impl RateMeter {
    /// Step `idx`'s summary as the recording holds it now (the caller flushes first).
    async fn summary(&self, idx: u32) -> anyhow::Result<Option<ceiling_reports::StepSummary>> {
        let m = self.clone();
        tokio::task::spawn_blocking(move || {
            let store = Store::open(&m.db)
                .with_context(|| format!("reopening {} for the sweep", m.db.display()))?;
            let rec = store.load_recording(m.run_id)?;
            let s = ceiling_reports::summarize_steps(&rec)?;
            anyhow::Ok(s.into_iter().find(|s| s.step_idx == idx))
        })
        .await
        .context("the sweep's reading thread")?
    }
}

/// Each request's lengths under the run's mix; a dataset's entries longer than the engine's
/// context are left out, and the load says how many (as vLLM's bench filters them).
pub(super) fn length_plan(
    cfg: &ProbeConfig,
    dataset: Option<Dataset>,
    info: &EngineInfo,
) -> anyhow::Result<LengthPlan> {
    Ok(match (&cfg.mix, dataset) {
        (LengthMix::Uniform { range }, _) => LengthPlan::Uniform {
            range: *range,
            seed: cfg.seed,
        },
        (LengthMix::Dataset { path, .. }, Some(set)) => {
            let max = info.max_model_len.unwrap_or(u32::MAX);
            let total = set.lengths.len();
            let mut texts = set.texts.into_iter();
            let fit: Vec<Entry> = set
                .lengths
                .into_iter()
                .map(|lengths| Entry {
                    lengths,
                    text: texts.next().flatten().map(Arc::from),
                })
                .filter(|e| e.lengths.0 + e.lengths.1 <= max)
                .collect();
            if !cfg.json {
                eprintln!(
                    "dataset {}: {} requests{}{}{}",
                    path.display(),
                    fit.len(),
                    if set.skipped > 0 {
                        format!(", {} conversations of one turn skipped", set.skipped)
                    } else {
                        String::new()
                    },
                    if fit.len() < total {
                        format!(
                            ", {} longer than the engine's {max}-token context left out",
                            total - fit.len()
                        )
                    } else {
                        String::new()
                    },
                    if set.estimated {
                        "; lengths estimated at 4 characters a token (give --tokenizer to count them)"
                    } else {
                        ""
                    },
                );
                if fit.iter().any(|e| e.text.is_some()) {
                    eprintln!(
                        "dataset: prompts are sent as its text; each request records the \
                         engine's count of its prompt tokens"
                    );
                }
            }
            if fit.is_empty() {
                return Err(Failure::Usage(format!(
                    "--dataset {}: every entry is longer than the engine's {max}-token context",
                    path.display()
                ))
                .into());
            }
            LengthPlan::dataset(fit, cfg.seed)
        }
        _ => LengthPlan::Fixed,
    })
}

/// The rates of a sweep: `points` evenly from `saturation / points` to `saturation`.
pub fn sweep_rates(saturation_rps: f64, points: u32) -> Vec<f64> {
    (1..=points)
        .map(|k| saturation_rps * f64::from(k) / f64::from(points))
        .collect()
}

/// Runs the open loop of `cfg` (its `rate` settings).
pub async fn run_open_loop(
    cfg: &ProbeConfig,
    rate: &RateSettings,
    lengths: Arc<LengthPlan>,
    meter: &RateMeter,
    shared: Shared,
) -> anyhow::Result<()> {
    let Some(sweep) = &rate.sweep else {
        for (i, r) in rate.rates.iter().enumerate() {
            if shared.stop.is_cancelled() {
                break;
            }
            let idx = u32::try_from(i)?;
            rate_step(cfg, rate, &lengths, &shared, idx, *r).await?;
        }
        shared.boundary.scrape().await;
        return Ok(());
    };
    saturation_step(cfg, rate, sweep.saturation_concurrency, &shared).await?;
    shared.writer.flush().await?;
    let saturation = meter
        .summary(0)
        .await?
        .and_then(|s| s.requests_per_s)
        .filter(|r| *r > 0.0);
    let Some(saturation) = saturation else {
        anyhow::bail!(
            "the sweep's saturation step completed no request, so there is no rate to sweep to; `ceiling runs show latest` has the errors"
        );
    };
    if !cfg.json {
        eprintln!(
            "sweep: saturation {saturation:.2} req/s at {} in flight; {} rates up to it",
            sweep.saturation_concurrency, sweep.points
        );
    }
    for (i, r) in sweep_rates(saturation, sweep.points)
        .into_iter()
        .enumerate()
    {
        if shared.stop.is_cancelled() {
            break;
        }
        let idx = u32::try_from(i + 1)?;
        rate_step(cfg, rate, &lengths, &shared, idx, Rate::PerSecond(r)).await?;
        let Some(threshold) = sweep.stop_on_failure else {
            continue;
        };
        shared.writer.flush().await?;
        let ok_share = meter.summary(idx).await?.and_then(|s| {
            (s.requests > 0).then(|| f64::from(s.requests_ok) / f64::from(s.requests))
        });
        if let Some(ok) = ok_share.filter(|ok| *ok < threshold) {
            if !cfg.json {
                eprintln!(
                    "sweep: stopped after {r:.2} req/s: {:.1} % succeeded, under --stop-on-failure {:.1} %",
                    ok * 100.0,
                    threshold * 100.0
                );
            }
            break;
        }
    }
    shared.boundary.scrape().await;
    Ok(())
}

fn warmup_s(cfg: &ProbeConfig) -> f64 {
    match cfg.warmup {
        Warmup::Duration(d) => d.as_secs_f64(),
        Warmup::Waves(_) => 0.0,
    }
}

/// The sweep's first step: a closed loop at `concurrency` for the run's duration.
async fn saturation_step(
    cfg: &ProbeConfig,
    rate: &RateSettings,
    concurrency: u32,
    shared: &Shared,
) -> anyhow::Result<()> {
    shared.boundary.scrape().await;
    let spec = StepSpec {
        batch_size: concurrency,
        input_len: rate.input_len,
        output_len: rate.output_len,
    };
    let start_t_s = shared.t0.elapsed().as_secs_f64();
    shared
        .writer
        .send(Record::Step(step_record(
            0,
            spec,
            Pattern::ClosedLoop,
            start_t_s,
            None,
        )))
        .await?;
    let plan = StepPlan::ClosedLoop {
        warmup: std::time::Duration::from_secs_f64(warmup_s(cfg)),
        duration: cfg.duration,
        ramp_per_s: cfg.ramp_per_s,
    };
    run_step(shared, 0, spec, plan).await;
    let end_t_s = shared.t0.elapsed().as_secs_f64();
    shared
        .writer
        .send(Record::StepEnd { idx: 0, end_t_s })
        .await?;
    Ok(())
}

fn step_record(
    idx: u32,
    spec: StepSpec,
    pattern: Pattern,
    start_t_s: f64,
    rate: Option<(f64, f64)>,
) -> StepRecord {
    StepRecord {
        idx,
        batch_size: spec.batch_size,
        input_len: spec.input_len,
        output_len: spec.output_len,
        pattern,
        start_t_s,
        end_t_s: None,
        rate_rps: rate.map(|r| r.0),
        burstiness: rate.map(|r| r.1),
    }
}

/// One rate step: its schedule, its record, its arrivals, its end.
async fn rate_step(
    cfg: &ProbeConfig,
    rate: &RateSettings,
    lengths: &Arc<LengthPlan>,
    shared: &Shared,
    idx: u32,
    r: Rate,
) -> anyhow::Result<()> {
    let warmup = warmup_s(cfg);
    let extent = match (r, rate.num_prompts) {
        (Rate::Inf, _) => Extent::Count(rate.inf_requests),
        (_, Some(n)) => Extent::Count(n),
        (Rate::PerSecond(_), None) => Extent::Until(warmup + cfg.duration.as_secs_f64()),
    };
    let seed = cfg.seed ^ (u64::from(idx) << 32) ^ 0x000A_77A1_u64;
    let offsets = schedule(r, rate.burstiness, extent, seed)
        .context("the arrival schedule (burstiness and rate must be positive)")?;
    shared.boundary.scrape().await;
    let spec = StepSpec {
        batch_size: rate.max_concurrency.unwrap_or(0),
        input_len: rate.input_len,
        output_len: rate.output_len,
    };
    if !cfg.json {
        let rps = r.rps();
        eprintln!(
            "step {idx}: {} arrivals at {}",
            offsets.len(),
            if rps.is_finite() {
                format!("{rps:.2} req/s")
            } else {
                "once (inf)".into()
            }
        );
    }
    let start_t_s = shared.t0.elapsed().as_secs_f64();
    shared
        .writer
        .send(Record::Step(step_record(
            idx,
            spec,
            Pattern::Rate,
            start_t_s,
            Some((r.rps(), rate.burstiness)),
        )))
        .await?;
    let plan = RatePlan {
        offsets,
        warmup_s: warmup,
        max_concurrency: rate.max_concurrency,
        base: (rate.input_len, rate.output_len),
        lengths: lengths.clone(),
    };
    // A scrape where the warm-up ends, so the engine's counters can be read over the measured
    // part alone (the open loop does not wait for it).
    if warmup > 0.0 {
        let boundary = shared.boundary.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs_f64(warmup)).await;
            boundary.scrape().await;
        });
    }
    run_rate_step(shared, idx, plan).await;
    let end_t_s = shared.t0.elapsed().as_secs_f64();
    shared.writer.send(Record::StepEnd { idx, end_t_s }).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_spreads_its_rates_evenly_up_to_saturation() {
        let r = sweep_rates(100.0, 4);
        assert_eq!(r, [25.0, 50.0, 75.0, 100.0]);
        assert_eq!(sweep_rates(9.0, 1), [9.0]);
    }
}
