//! One metric's trend over a history: per night its value, the noise band its baseline gave
//! (median ± k robust sigmas, the same query `regress` judges with), the verdict, and what
//! changed in the run's key since the night before (driver, engine version, GPU boards); and
//! the trend as a chart spec with the band and the changes marked on the time axis.

use polars::prelude::*;
use serde::Serialize;

use super::HistoryStep;
use super::regress::{RegressOptions, Verdict, judge_history, read_verdicts};
use crate::render::chart::{Band, ChartSpec, LegendPosition, Series, SeriesStyle};

/// One night of a trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendPoint {
    pub run_id: i64,
    pub started_at: String,
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
    pub value: f64,
    pub baseline_median: Option<f64>,
    /// `median ± k × sigma` of the baseline and the run's own interval.
    pub band: Option<[f64; 2]>,
    pub verdict: Verdict,
    /// What changed in the run's key since the previous night, e.g. `driver 550.54 → 560.28`.
    pub changes: Vec<String>,
}

/// The trend of `metric` at batch size `bs` (every batch size when `None`), the last `last`
/// nights.
pub fn trend(
    rows: &[HistoryStep],
    metric: &str,
    bs: Option<u32>,
    last: usize,
    o: &RegressOptions,
) -> PolarsResult<Vec<TrendPoint>> {
    let judged = judge_history(rows, o)?;
    let mut keep = col("metric").eq(lit(metric));
    if let Some(bs) = bs {
        keep = keep.and(col("batch_size").eq(lit(bs)));
    }
    let df = judged
        .lazy()
        .filter(keep)
        .sort(["seq", "batch_size"], SortMultipleOptions::default())
        .collect()?;
    let verdicts = read_verdicts(&df)?;
    let mut runs: Vec<i64> = verdicts.iter().map(|v| v.run_id).collect();
    runs.dedup();
    let first = runs.len().saturating_sub(last);
    let kept = &runs[first..];
    let key = |id: i64| rows.iter().find(|r| r.key.run_id == id).map(|r| &r.key);
    Ok(verdicts
        .into_iter()
        .filter(|v| kept.contains(&v.run_id))
        .map(|v| {
            let this = key(v.run_id);
            let pos = runs.iter().position(|r| *r == v.run_id).unwrap_or(0);
            let before = pos.checked_sub(1).and_then(|p| key(runs[p]));
            TrendPoint {
                run_id: v.run_id,
                started_at: this.map(|k| k.started_at.clone()).unwrap_or_default(),
                batch_size: v.batch_size,
                input_len: v.input_len,
                output_len: v.output_len,
                value: v.value,
                baseline_median: v.baseline_median,
                band: v
                    .baseline_median
                    .zip(v.sigma)
                    .map(|(m, s)| [m - o.k * s, m + o.k * s]),
                verdict: v.verdict,
                changes: this
                    .zip(before)
                    .map(|(t, b)| key_changes(b, t))
                    .unwrap_or_default(),
            }
        })
        .collect())
}

fn key_changes(before: &super::RunKey, after: &super::RunKey) -> Vec<String> {
    let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    [
        ("driver", &before.driver_version, &after.driver_version),
        ("engine", &before.engine_version, &after.engine_version),
        ("GPU boards", &before.gpu_uuids, &after.gpu_uuids),
    ]
    .into_iter()
    .filter(|(_, a, b)| a != b)
    .map(|(what, a, b)| format!("{what} {} → {}", s(a), s(b)))
    .collect()
}

/// The trend as a chart: x is the night (0 = the first shown), one series per batch size,
/// the band's edges dashed, each change of the key a labelled stripe.
pub fn chart(points: &[TrendPoint], metric: &str) -> ChartSpec {
    let mut runs: Vec<i64> = points.iter().map(|p| p.run_id).collect();
    runs.dedup();
    let x = |id: i64| runs.iter().position(|r| *r == id).unwrap_or(0) as f64;
    let mut sizes: Vec<u32> = points.iter().map(|p| p.batch_size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut series = Vec::new();
    for bs in &sizes {
        let of = |f: &dyn Fn(&TrendPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter(|p| p.batch_size == *bs)
                .filter_map(|p| f(p).map(|y| (x(p.run_id), y)))
                .collect()
        };
        series.push(Series {
            name: format!("bs {bs}"),
            points: of(&|p| Some(p.value)),
            style: SeriesStyle::LineAndPoints,
        });
        for (edge, i) in [("low", 0), ("high", 1)] {
            series.push(Series {
                name: format!("bs {bs} noise band ({edge})"),
                points: of(&|p| p.band.map(|b| b[i])),
                style: SeriesStyle::Dashed,
            });
        }
    }
    let mut shaded = Vec::new();
    for p in points {
        if !p.changes.is_empty() && !shaded.iter().any(|b: &Band| b.x_from == x(p.run_id) - 0.5) {
            shaded.push(Band {
                label: p.changes.join("; "),
                x_from: x(p.run_id) - 0.5,
                x_to: x(p.run_id),
            });
        }
    }
    ChartSpec {
        title: format!("{metric} per night"),
        x_label: format!(
            "night (run {} … {})",
            runs.first().copied().unwrap_or(0),
            runs.last().copied().unwrap_or(0)
        ),
        y_label: metric.to_string(),
        series,
        hlines: Vec::new(),
        markers: Vec::new(),
        shaded,
        log_x: false,
        y_from_zero: false,
        legend: LegendPosition::UpperLeft,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{RunKey, StepResult};

    fn night(n: i64, t: f64, driver: &str) -> HistoryStep {
        HistoryStep {
            key: RunKey {
                run_id: n,
                started_at: format!("2026-11-{:02}T02:00:00.000Z", n + 1),
                driver_version: Some(driver.into()),
                status: "complete".into(),
                ..RunKey::default()
            },
            step: StepResult {
                batch_size: 8,
                t_fwd_s: Some(t),
                ..StepResult::default()
            },
            ..HistoryStep::default()
        }
    }

    #[test]
    fn the_trend_has_the_band_the_verdicts_and_the_driver_change() -> PolarsResult<()> {
        let mut rows: Vec<HistoryStep> = (0..8)
            .map(|n| night(n, 0.010 * (1.0 + 0.002 * (n % 3) as f64), "550.54"))
            .collect();
        rows.push(night(8, 0.0109, "560.28"));
        let o = RegressOptions::default();
        let t = trend(&rows, "t_fwd_s", Some(8), 5, &o)?;
        assert_eq!(t.len(), 5, "the last 5 nights");
        assert_eq!(t[0].run_id, 4);
        let last = &t[4];
        assert_eq!(last.verdict, Verdict::Regression);
        assert_eq!(last.changes, ["driver 550.54 → 560.28"]);
        let [lo, hi] = last.band.expect("a band over 7 baseline runs");
        assert!(lo < 0.01002 && hi > 0.01002 && hi < 0.0109, "{lo} {hi}");
        assert!(t[..4].iter().all(|p| p.verdict == Verdict::WithinNoise));
        let spec = chart(&t, "t_fwd_s");
        assert_eq!(spec.series.len(), 3);
        assert_eq!(spec.series[0].points.len(), 5);
        assert_eq!(spec.shaded.len(), 1);
        assert_eq!(spec.shaded[0].label, "driver 550.54 → 560.28");
        Ok(())
    }
}
