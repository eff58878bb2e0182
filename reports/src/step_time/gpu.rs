//! The GPUs over a step's measurement windows: utilisation, memory, power, clocks, the NVML
//! clock-event reasons that slow the GPU, and the node's energy per output token.

use serde::Serialize;

use ceiling_collectors::GpuSample;

use super::mean;
use crate::window::{self, Window};

/// The GPUs over a step's windows (all GPUs together).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuWindow {
    pub samples: usize,
    pub gpus: usize,
    pub util_mean_pct: Option<f64>,
    pub util_max_pct: Option<f64>,
    pub mem_used_max_bytes: Option<u64>,
    /// Highest `mem_used / mem_total` of any GPU.
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
    /// OR of every sample's NVML clock-event reasons.
    pub throttle_reasons_mask: Option<u64>,
    /// The reasons in the mask that slow the GPU down (power cap, thermal, hardware slowdown).
    pub throttle_reasons: Vec<String>,
    /// Power drawn by all GPUs together, from the energy counters (else mean power × GPUs).
    pub node_power_w: Option<f64>,
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

pub(super) fn gpu_window(gpu: &[GpuSample], windows: &[Window], tok_s: Option<f64>) -> GpuWindow {
    let inside: Vec<&GpuSample> = gpu
        .iter()
        .filter(|g| window::index_of(windows, g.t_s).is_some())
        .collect();
    let mut gpus: Vec<u32> = inside.iter().map(|g| g.gpu_index).collect();
    gpus.sort_unstable();
    gpus.dedup();
    let f = |get: &dyn Fn(&GpuSample) -> Option<f64>| -> Vec<f64> {
        inside.iter().filter_map(|g| get(g)).collect()
    };
    let util = f(&|g| g.util_gpu_pct);
    let power = f(&|g| g.power_w);
    let clock = f(&|g| g.sm_clock_mhz.map(f64::from));
    let mem_clock = f(&|g| g.mem_clock_mhz.map(f64::from));
    let temp = f(&|g| g.temp_c);
    let mask = inside
        .iter()
        .filter_map(|g| g.throttle_reasons)
        .reduce(|a, b| a | b);
    // Node power from each GPU's energy counter over each window.
    let mut node_power = 0.0;
    let mut have_energy = false;
    // (gpu, window) → first and last (t, energy) inside it; samples come sorted by time.
    type TimeEnergy = (f64, f64);
    let mut spans: std::collections::BTreeMap<(u32, usize), (TimeEnergy, TimeEnergy)> =
        Default::default();
    for g in &inside {
        let (Some(e), Some(w)) = (g.energy_j, window::index_of(windows, g.t_s)) else {
            continue;
        };
        spans
            .entry((g.gpu_index, w))
            .and_modify(|s| s.1 = (g.t_s, e))
            .or_insert(((g.t_s, e), (g.t_s, e)));
    }
    let mut per_gpu: std::collections::BTreeMap<u32, (f64, f64)> = Default::default();
    for ((idx, _), (a, b)) in spans {
        if b.0 > a.0 && b.1 >= a.1 {
            let acc = per_gpu.entry(idx).or_default();
            acc.0 += b.1 - a.1;
            acc.1 += b.0 - a.0;
        }
    }
    for (de, dt) in per_gpu.values() {
        if *dt > 0.0 {
            have_energy = true;
            node_power += de / dt;
        }
    }
    let power_mean_w = mean(&power);
    let node_power_w = if have_energy {
        Some(node_power)
    } else {
        power_mean_w.map(|p| p * gpus.len() as f64)
    };
    GpuWindow {
        samples: inside.len(),
        gpus: gpus.len(),
        util_mean_pct: mean(&util),
        util_max_pct: util.iter().copied().reduce(f64::max),
        mem_used_max_bytes: inside.iter().filter_map(|g| g.mem_used_bytes).max(),
        mem_used_max_frac: inside
            .iter()
            .filter_map(|g| match (g.mem_used_bytes, g.mem_total_bytes) {
                (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64),
                _ => None,
            })
            .reduce(f64::max),
        power_mean_w,
        power_max_w: power.iter().copied().reduce(f64::max),
        sm_clock_mean_mhz: mean(&clock),
        sm_clock_min_mhz: inside.iter().filter_map(|g| g.sm_clock_mhz).min(),
        mem_clock_mean_mhz: mean(&mem_clock),
        temp_mean_c: mean(&temp),
        throttle_reasons_mask: mask,
        throttle_reasons: SLOWDOWN_REASONS
            .iter()
            .filter(|(bit, _)| mask.is_some_and(|m| m & bit != 0))
            .map(|(_, name)| (*name).to_string())
            .collect(),
        node_power_w,
        energy_per_output_token_j: node_power_w
            .zip(tok_s)
            .filter(|(_, t)| *t > 0.0)
            .map(|(p, t)| p / t),
    }
}
