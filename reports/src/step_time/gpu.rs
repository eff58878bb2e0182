//! The GPUs over a step's measurement windows: utilisation, memory, power, clocks, the NVML
//! clock-event reasons that slow the GPU, the DCGM profiling ratios that say what the step is
//! bound by, and the node's energy per output token.
//!
//! Averages are not instants: NVML's power is a 1 s average on recent GPUs and its utilisation
//! covers the last 1/6–1 s, so a window's first second still carries the idle or prefill time
//! before it. Means (utilisation, power, clocks, profiling ratios) leave each window's first
//! [`MEAN_SKIP_S`] out, and a window shorter than [`MIN_WINDOW_S`] gives no mean at all; a step
//! whose every window is that short is flagged [`GpuWindow::too_short`]. Maxima, the memory
//! high-water mark and the clock-event reasons read every sample inside the windows. The
//! energy counter (an integral, not an average) reads every window: see [`power`].

mod power;

use serde::Serialize;

use ceiling_collectors::GpuSample;

pub use power::{GpuPower, PowerSource};

use super::mean;
use crate::window::{self, Window};

/// Seconds at a window's start left out of means (NVML's 1 s power average).
pub const MEAN_SKIP_S: f64 = 1.0;
/// Windows shorter than this give no GPU means.
pub const MIN_WINDOW_S: f64 = 2.0;

/// The GPUs over a step's windows (all counted GPUs together).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuWindow {
    pub samples: usize,
    pub gpus: usize,
    /// Every window is shorter than [`MIN_WINDOW_S`]: the means are missing, not wrong.
    pub too_short: bool,
    pub util_mean_pct: Option<f64>,
    pub util_max_pct: Option<f64>,
    pub mem_used_max_bytes: Option<u64>,
    /// Highest `mem_used / mem_total` of any GPU (or MIG instance).
    pub mem_used_max_frac: Option<f64>,
    /// Mean power per GPU.
    pub power_mean_w: Option<f64>,
    pub power_max_w: Option<f64>,
    pub sm_clock_mean_mhz: Option<f64>,
    pub sm_clock_min_mhz: Option<u32>,
    #[serde(default)]
    pub mem_clock_mean_mhz: Option<f64>,
    /// Mean GPU temperature, °C.
    #[serde(default)]
    pub temp_mean_c: Option<f64>,
    /// OR of every sample's NVML clock-event reasons; `None` when no sample carried a mask
    /// (the reasons are unknown, which is not "no throttling").
    pub throttle_reasons_mask: Option<u64>,
    /// The reasons in the mask that slow the GPU down (power cap, thermal, hardware slowdown).
    pub throttle_reasons: Vec<String>,
    /// Mean DCGM profiling ratios (0–1) over the GPUs and MIG instances that report them.
    pub gr_engine_active: Option<f64>,
    pub sm_active: Option<f64>,
    pub sm_occupancy: Option<f64>,
    pub dram_active: Option<f64>,
    pub tensor_active: Option<f64>,
    /// Each counted GPU's power and where it came from.
    pub power_by_gpu: Vec<GpuPower>,
    /// Power drawn by all counted GPUs together; `None` when a GPU's power is missing.
    pub node_power_w: Option<f64>,
    /// The GPUs whose power is missing: `node_power_w` and the energy per token are then
    /// partial, and missing.
    pub power_missing_gpus: Vec<u32>,
    /// Node energy per output token: node power / output tokens per second in the windows.
    pub energy_per_output_token_j: Option<f64>,
}

/// NVML clock-event reasons that slow the GPU (names as NVML documents them).
const SLOWDOWN_REASONS: [(u64, &str); 5] = [
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
];

/// Whether a sample counts towards means: inside a window at least [`MIN_WINDOW_S`] long and
/// past its first [`MEAN_SKIP_S`].
fn in_mean(windows: &[Window], t: f64) -> bool {
    window::index_of(windows, t).is_some_and(|i| {
        let w = &windows[i];
        w.duration_s() >= MIN_WINDOW_S && t >= w.start_t_s + MEAN_SKIP_S
    })
}

/// The GPU figures of a step. `gpu` is the run's counted samples sorted by time; `tok_s` the
/// output tokens per second in the windows.
pub(super) fn gpu_window(gpu: &[GpuSample], windows: &[Window], tok_s: Option<f64>) -> GpuWindow {
    let inside: Vec<&GpuSample> = gpu
        .iter()
        .filter(|g| window::index_of(windows, g.t_s).is_some())
        .collect();
    let settled: Vec<&GpuSample> = inside
        .iter()
        .copied()
        .filter(|g| in_mean(windows, g.t_s))
        .collect();
    let mut gpus: Vec<u32> = inside.iter().map(|g| g.gpu_index).collect();
    gpus.sort_unstable();
    gpus.dedup();
    let all = |get: &dyn Fn(&GpuSample) -> Option<f64>| -> Vec<f64> {
        inside.iter().filter_map(|g| get(g)).collect()
    };
    let mean_of = |get: &dyn Fn(&GpuSample) -> Option<f64>| -> Option<f64> {
        mean(&settled.iter().filter_map(|g| get(g)).collect::<Vec<_>>())
    };
    let power = all(&|g| g.power_w);
    let util = all(&|g| g.util_gpu_pct);
    let mask = inside
        .iter()
        .filter_map(|g| g.throttle_reasons)
        .reduce(|a, b| a | b);
    let power_by_gpu = power::power_by_gpu(gpu, windows, |idx| {
        mean_of(&|g| g.power_w.filter(|_| g.gpu_index == idx))
    });
    let power_missing_gpus: Vec<u32> = power_by_gpu
        .iter()
        .filter(|p| p.watts.is_none())
        .map(|p| p.gpu)
        .collect();
    let node_power_w = (!power_by_gpu.is_empty() && power_missing_gpus.is_empty())
        .then(|| power_by_gpu.iter().filter_map(|p| p.watts).sum::<f64>());
    GpuWindow {
        samples: inside.len(),
        gpus: gpus.len(),
        too_short: !windows.is_empty() && windows.iter().all(|w| w.duration_s() < MIN_WINDOW_S),
        util_mean_pct: mean_of(&|g| g.util_gpu_pct),
        util_max_pct: util.iter().copied().reduce(f64::max),
        mem_used_max_bytes: inside.iter().filter_map(|g| g.mem_used_bytes).max(),
        mem_used_max_frac: inside
            .iter()
            .filter_map(|g| match (g.mem_used_bytes, g.mem_total_bytes) {
                (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64),
                _ => None,
            })
            .reduce(f64::max),
        power_mean_w: mean_of(&|g| g.power_w),
        power_max_w: power.iter().copied().reduce(f64::max),
        // Clocks and temperature are read as instants, not averages: every sample in the
        // windows counts, short windows included (the first-second rule is for power and
        // utilisation, which NVML averages).
        sm_clock_mean_mhz: mean(&all(&|g| g.sm_clock_mhz.map(f64::from))),
        sm_clock_min_mhz: inside.iter().filter_map(|g| g.sm_clock_mhz).min(),
        mem_clock_mean_mhz: mean(&all(&|g| g.mem_clock_mhz.map(f64::from))),
        temp_mean_c: mean(&all(&|g| g.temp_c)),
        throttle_reasons_mask: mask,
        throttle_reasons: SLOWDOWN_REASONS
            .iter()
            .filter(|(bit, _)| mask.is_some_and(|m| m & bit != 0))
            .map(|(_, name)| (*name).to_string())
            .collect(),
        gr_engine_active: mean_of(&|g| g.gr_engine_active),
        sm_active: mean_of(&|g| g.sm_active),
        sm_occupancy: mean_of(&|g| g.sm_occupancy),
        dram_active: mean_of(&|g| g.dram_active),
        tensor_active: mean_of(&|g| g.tensor_active),
        power_by_gpu,
        node_power_w,
        power_missing_gpus,
        energy_per_output_token_j: node_power_w
            .zip(tok_s)
            .filter(|(_, t)| *t > 0.0)
            .map(|(p, t)| p / t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window from `a` to `b` s.
    pub(super) fn w(a: f64, b: f64) -> Window {
        Window {
            start_t_s: a,
            end_t_s: b,
            wave: None,
        }
    }

    /// Two GPUs sampled every 0.1 s over 0–20 s: GPU 0 with an energy counter at 400 W,
    /// GPU 1 with power readings only (or none when `gpu1_power` is false). Both idle (10 %,
    /// 100 W) before 5 s.
    fn two_gpus(gpu1_power: bool) -> Vec<GpuSample> {
        let mut out = Vec::new();
        for i in 0..=200 {
            let t = f64::from(i) / 10.0;
            let busy = t >= 5.0;
            for gpu in 0..2 {
                out.push(GpuSample {
                    gpu_index: gpu,
                    t_s: t,
                    util_gpu_pct: Some(if busy { 90.0 } else { 10.0 }),
                    power_w: (gpu == 0 || gpu1_power).then_some(if busy { 350.0 } else { 100.0 }),
                    energy_j: (gpu == 0).then_some(1_000.0 + 400.0 * t),
                    throttle_reasons: None,
                    ..GpuSample::default()
                });
            }
        }
        out
    }

    #[test]
    fn a_gpu_without_energy_is_charged_its_own_mean_power() {
        let g = two_gpus(true);
        let gw = gpu_window(&g, &[w(5.0, 15.0)], Some(1_000.0));
        assert_eq!(gw.gpus, 2);
        assert_eq!(gw.power_by_gpu[0].source, PowerSource::EnergyCounter);
        assert_eq!(gw.power_by_gpu[1].source, PowerSource::MeanPower);
        assert!((gw.node_power_w.unwrap() - 750.0).abs() < 1e-6, "{gw:?}");
        assert!((gw.energy_per_output_token_j.unwrap() - 0.75).abs() < 1e-9);
        assert!(gw.power_missing_gpus.is_empty());
    }

    #[test]
    fn a_counter_refreshed_every_30_s_gives_the_right_energy_per_token() {
        // 400 W, counter refreshed every 30 s (a DCGM exporter's default), power reading 390 W.
        let g: Vec<GpuSample> = (0..=1000)
            .map(|i| {
                let t = f64::from(i) / 10.0;
                GpuSample {
                    t_s: t,
                    power_w: Some(390.0),
                    energy_j: Some(7_000.0 + 400.0 * (t / 30.0).floor() * 30.0),
                    ..GpuSample::default()
                }
            })
            .collect();
        // 70 s window: changes at 30 and 60 s, 400 W: 0.4 J per token at 1000 tok/s.
        let gw = gpu_window(&g, &[w(5.0, 75.0)], Some(1_000.0));
        assert_eq!(gw.power_by_gpu[0].source, PowerSource::EnergyCounter);
        assert!(
            (gw.energy_per_output_token_j.unwrap() - 0.4).abs() < 1e-9,
            "{gw:?}"
        );
        // 20 s window, one change: the mean power reading, never 0 J.
        let gw = gpu_window(&g, &[w(20.0, 40.0)], Some(1_000.0));
        assert_eq!(gw.power_by_gpu[0].source, PowerSource::MeanPower);
        assert!((gw.energy_per_output_token_j.unwrap() - 0.39).abs() < 1e-9);
    }

    #[test]
    fn a_gpu_without_any_power_makes_the_figure_partial_not_wrong() {
        let g = two_gpus(false);
        let gw = gpu_window(&g, &[w(5.0, 15.0)], Some(1_000.0));
        assert_eq!(gw.power_missing_gpus, [1]);
        assert_eq!(gw.node_power_w, None);
        assert_eq!(gw.energy_per_output_token_j, None);
        assert!((gw.power_by_gpu[0].watts.unwrap() - 400.0).abs() < 1e-6);
    }

    #[test]
    fn the_first_second_of_a_window_is_left_out_of_means() {
        // The window opens at 4.5 s: its first second holds the idle samples before 5 s.
        let g = two_gpus(true);
        let gw = gpu_window(&g, &[w(4.5, 15.0)], None);
        assert_eq!(gw.util_mean_pct, Some(90.0));
        assert_eq!(gw.power_mean_w, Some(350.0));
        assert_eq!(gw.util_max_pct, Some(90.0));
        assert!(!gw.too_short);
        // Without the skip the idle samples would pull the mean down.
        assert!(gpu_window(&g, &[w(3.0, 15.0)], None).util_mean_pct < Some(90.0));
    }

    #[test]
    fn windows_under_two_seconds_are_too_short_for_means() {
        let g = two_gpus(true);
        let gw = gpu_window(&g, &[w(6.0, 7.5), w(9.0, 10.9)], None);
        assert!(gw.too_short);
        assert_eq!((gw.util_mean_pct, gw.power_mean_w), (None, None));
        // The maxima still read the samples.
        assert_eq!(gw.util_max_pct, Some(90.0));
        // One long window among short ones: not flagged, means from the long one.
        let gw = gpu_window(&g, &[w(6.0, 7.5), w(9.0, 12.0)], None);
        assert!(!gw.too_short);
        assert_eq!(gw.util_mean_pct, Some(90.0));
    }

    #[test]
    fn throttle_reasons_missing_everywhere_are_unknown() {
        let g = two_gpus(true);
        let gw = gpu_window(&g, &[w(5.0, 15.0)], None);
        assert_eq!(gw.throttle_reasons_mask, None);
        assert!(gw.throttle_reasons.is_empty());
    }

    #[test]
    fn profiling_ratios_are_window_means() {
        let g: Vec<GpuSample> = (0..100)
            .map(|i| GpuSample {
                t_s: f64::from(i) / 10.0,
                mig_instance: Some(i % 2),
                dram_active: Some(if i % 2 == 0 { 0.8 } else { 0.6 }),
                tensor_active: Some(0.1),
                ..GpuSample::default()
            })
            .collect();
        // 3.0–7.9 s after the skipped second: 25 readings of each instance.
        let gw = gpu_window(&g, &[w(2.0, 7.95)], None);
        assert!((gw.dram_active.unwrap() - 0.7).abs() < 1e-9);
        assert!((gw.tensor_active.unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(gw.sm_active, None);
    }
}
