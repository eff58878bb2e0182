//! Rules on the GPUs over the step's windows: clocks slowed by a power cap, heat or a hardware
//! slowdown (or no way to know), windows too short for GPU means, and memory near full.

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

pub(super) const GPU_THROTTLING: Rule = Rule {
    code: "gpu_throttling",
    severities: &[Severity::Warn, Severity::Info],
    what: "an NVML clock-event reason that slows the GPU was set during the window, or no GPU sample carried the reasons",
    check: Check::Step(gpu_throttling),
};

fn gpu_throttling(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let g = &v.timing.gpu;
    if g.samples > 0 && g.throttle_reasons_mask.is_none() {
        return Some(v.finding(
            &GPU_THROTTLING,
            Severity::Info,
            "throttle reasons unknown: no GPU sample in the window carried the clock-event reasons; with a DCGM exporter add `DCGM_FI_DEV_CLOCKS_EVENT_REASONS, gauge, Clock event reasons.` to its counters file".to_string(),
            json!({"samples": g.samples, "sm_clock_min_mhz": g.sm_clock_min_mhz}),
        ));
    }
    (!g.throttle_reasons.is_empty()).then(|| {
        v.finding(
            &GPU_THROTTLING,
            Severity::Warn,
            format!(
                "the GPU slowed its clocks during the window ({}; SM clock down to {} MHz); check power limits and cooling before trusting the step time",
                g.throttle_reasons.join(", "),
                g.sm_clock_min_mhz.map_or("?".into(), |c| c.to_string())
            ),
            json!({"reasons": g.throttle_reasons, "mask": g.throttle_reasons_mask, "sm_clock_min_mhz": g.sm_clock_min_mhz, "power_max_w": g.power_max_w}),
        )
    })
}

pub(super) const GPU_WINDOW_TOO_SHORT: Rule = Rule {
    code: "gpu_window_too_short",
    severities: &[Severity::Info],
    what: "every measurement window is shorter than the GPU readings' own averaging needs",
    check: Check::Step(gpu_window_too_short),
};

fn gpu_window_too_short(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let g = &v.timing.gpu;
    (g.too_short && g.samples > 0).then(|| {
        v.finding(
            &GPU_WINDOW_TOO_SHORT,
            Severity::Info,
            format!(
                "the step's {} window(s) ({:.2} s in all) are each shorter than {:.0} s, too short for GPU means (NVML power and utilisation are averages over up to 1 s): lengthen the output for GPU figures",
                v.timing.windows.len(),
                v.timing.window_s,
                crate::step_time::MIN_GPU_WINDOW_S
            ),
            json!({"window_s": v.timing.window_s, "windows": v.timing.windows.len()}),
        )
    })
}

pub(super) const DECODE_NOT_MEMORY_BOUND: Rule = Rule {
    code: "decode_not_memory_bound",
    severities: &[Severity::Info],
    what: "the DCGM profiling counters show the tensor pipes at least as busy as device memory during decode",
    check: Check::Step(decode_not_memory_bound),
};

fn decode_not_memory_bound(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let g = &v.timing.gpu;
    let (dram, tensor) = g.dram_active.zip(g.tensor_active)?;
    (tensor >= dram).then(|| {
        v.finding(
            &DECODE_NOT_MEMORY_BOUND,
            Severity::Info,
            format!(
                "decode looks compute-bound: tensor pipes active {:.0} % of cycles, device memory {:.0} %; the roofline assumes memory-bound decode (weights and KV read once per step), so its t_min and efficiency do not describe this step",
                tensor * 100.0,
                dram * 100.0
            ),
            json!({"dram_active": dram, "tensor_active": tensor, "sm_active": g.sm_active, "roofline_efficiency": v.timing.roofline_efficiency}),
        )
    })
}

pub(super) const GPU_MEMORY_NEAR_FULL: Rule = Rule {
    code: "gpu_memory_near_full",
    severities: &[Severity::Warn],
    what: "a GPU's memory came near full during the window",
    check: Check::Step(gpu_memory_near_full),
};

fn gpu_memory_near_full(v: &StepView<'_>, tol: &Tolerances) -> Option<Finding> {
    let g = &v.timing.gpu;
    let f = g.mem_used_max_frac.filter(|f| *f >= tol.gpu_memory_frac)?;
    Some(v.finding(
        &GPU_MEMORY_NEAR_FULL,
        Severity::Warn,
        format!(
            "GPU memory {:.1} % used; the engine is one allocation from an out-of-memory error: lower --gpu-memory-utilization or the batch size",
            f * 100.0
        ),
        json!({"mem_used_max_frac": f, "mem_used_max_bytes": g.mem_used_max_bytes}),
    ))
}
