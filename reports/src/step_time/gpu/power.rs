//! Each counted GPU's power over a step's windows, and where it came from.
//!
//! The energy counter is the better source: it integrates every millisecond, where a power
//! reading is a 1 s average (recent NVML) or a value the DCGM exporter refreshes every 30 s.
//! But a counter that updates slowly (the DCGM exporter's default 30 s) sits unchanged through
//! a short window and jumps inside another, so a rate between the window's first and last
//! samples reads 0 W or a 30 s jump over a short Δt. The rate is therefore taken between the
//! first and last instants **the counter changed** inside each window (a sample whose value
//! differs from the GPU's sample before it, which may lie before the window), and only where it
//! changed at least twice (two distinct fresh values). Otherwise the GPU's own mean power in the
//! window is used; a GPU with neither is missing, and the node's power is then partial (never a
//! figure that silently leaves a GPU out, and never a GPU counted that has no readings).

use std::collections::BTreeMap;

use serde::Serialize;

use ceiling_collectors::GpuSample;

use crate::window::Window;

/// Where a GPU's power over the windows came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerSource {
    /// The energy counter's rate between the instants it changed.
    EnergyCounter,
    /// The mean of the GPU's power readings (the counter did not change twice in any window).
    MeanPower,
    /// Neither: the GPU has no usable reading in the windows.
    Missing,
}

/// One GPU's power over a step's windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuPower {
    pub gpu: u32,
    pub watts: Option<f64>,
    pub source: PowerSource,
}

/// The energy counter's (ΔE, Δt) over one window, between the first and last instants it
/// changed; `series` is one GPU's (t, energy) sorted by time. `None` unless it changed twice
/// and went up.
fn counter_span(series: &[(f64, f64)], w: &Window) -> Option<(f64, f64)> {
    let changed = series
        .windows(2)
        .filter(|p| w.contains(p[1].0) && p[1].1 != p[0].1)
        .map(|p| p[1]);
    let (first, last) = changed.fold(None, |acc: Option<((f64, f64), (f64, f64))>, c| {
        Some(acc.map_or((c, c), |(f, _)| (f, c)))
    })?;
    let (de, dt) = (last.1 - first.1, last.0 - first.0);
    (dt > 0.0 && de >= 0.0).then_some((de, dt))
}

/// Each GPU of `gpu` (the run's counted samples, sorted by time) with its power over
/// `windows`; `mean_power` gives a GPU's mean power reading in the windows, where it has one.
pub(super) fn power_by_gpu(
    gpu: &[GpuSample],
    windows: &[Window],
    mean_power: impl Fn(u32) -> Option<f64>,
) -> Vec<GpuPower> {
    let mut series: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for g in gpu {
        let s = series.entry(g.gpu_index).or_default();
        if let Some(e) = g.energy_j {
            s.push((g.t_s, e));
        }
    }
    series
        .into_iter()
        .map(|(idx, s)| {
            let (de, dt) = windows
                .iter()
                .filter_map(|w| counter_span(&s, w))
                .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
            let (watts, source) = if dt > 0.0 {
                (Some(de / dt), PowerSource::EnergyCounter)
            } else if let Some(p) = mean_power(idx) {
                (Some(p), PowerSource::MeanPower)
            } else {
                (None, PowerSource::Missing)
            };
            GpuPower {
                gpu: idx,
                watts,
                source,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::w;
    use super::*;

    /// A counter refreshed every `every` s at 400 W, sampled every 0.1 s from 0 to `end`.
    fn slow_counter(gpu: u32, every: f64, end: f64) -> Vec<GpuSample> {
        (0..=(end * 10.0) as u32)
            .map(|i| {
                let t = f64::from(i) / 10.0;
                let refreshed = (t / every).floor() * every;
                GpuSample {
                    gpu_index: gpu,
                    t_s: t,
                    energy_j: Some(5_000.0 + 400.0 * refreshed),
                    power_w: Some(390.0),
                    ..GpuSample::default()
                }
            })
            .collect()
    }

    fn mean_390(_: u32) -> Option<f64> {
        Some(390.0)
    }

    #[test]
    fn a_slow_counter_gives_its_rate_between_the_changes() {
        // Refreshed every 30 s; a 75 s window sees changes at 30 and 60 s: 400 W, not the
        // 0 W or the jump a first-to-last difference would read.
        let g = slow_counter(0, 30.0, 100.0);
        let p = power_by_gpu(&g, &[w(10.0, 85.0)], mean_390);
        assert_eq!(p[0].source, PowerSource::EnergyCounter);
        assert!((p[0].watts.unwrap() - 400.0).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn a_counter_that_changed_once_falls_back_to_mean_power() {
        // A 20 s window holds at most one refresh: not a rate.
        let g = slow_counter(0, 30.0, 100.0);
        let p = power_by_gpu(&g, &[w(20.0, 40.0)], mean_390);
        assert_eq!(
            (p[0].watts, p[0].source),
            (Some(390.0), PowerSource::MeanPower)
        );
    }

    #[test]
    fn a_gpu_without_energy_or_power_is_missing_not_dropped() {
        let mut g = slow_counter(0, 1.0, 10.0);
        g.extend((0..100).map(|i| GpuSample {
            gpu_index: 1,
            t_s: f64::from(i) / 10.0,
            util_gpu_pct: Some(90.0),
            ..GpuSample::default()
        }));
        let p = power_by_gpu(&g, &[w(2.0, 8.0)], |i| (i == 0).then_some(390.0));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].source, PowerSource::EnergyCounter);
        assert!((p[0].watts.unwrap() - 400.0).abs() < 1e-6);
        assert_eq!(
            (p[1].gpu, p[1].watts, p[1].source),
            (1, None, PowerSource::Missing)
        );
    }

    #[test]
    fn a_counter_that_went_down_is_no_rate() {
        let g: Vec<GpuSample> = (0..50)
            .map(|i| GpuSample {
                t_s: f64::from(i) / 10.0,
                energy_j: Some(1_000.0 - f64::from(i)),
                ..GpuSample::default()
            })
            .collect();
        let p = power_by_gpu(&g, &[w(1.0, 4.0)], |_| None);
        assert_eq!(p[0].source, PowerSource::Missing);
    }
}
