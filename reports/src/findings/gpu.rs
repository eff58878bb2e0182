//! Rules on the GPUs over the step's windows: clocks slowed by a power cap, heat or a hardware
//! slowdown, and memory near full.

use serde_json::json;

use super::{Check, Rule, StepView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

pub(super) const GPU_THROTTLING: Rule = Rule {
    code: "gpu_throttling",
    severities: &[Severity::Warn],
    what: "an NVML clock-event reason that slows the GPU was set during the window",
    check: Check::Step(gpu_throttling),
};

fn gpu_throttling(v: &StepView<'_>, _tol: &Tolerances) -> Option<Finding> {
    let g = &v.timing.gpu;
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
