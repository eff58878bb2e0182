//! `gpu_throttling` and `gpu_memory_near_full`: each fires and stays silent.

use super::super::fixture::{Step, num};
use super::super::gpu::{GPU_MEMORY_NEAR_FULL, GPU_THROTTLING};
use crate::finding::Severity;

#[test]
fn gpu_throttling_warns_with_the_reasons_and_the_lowest_clock() {
    let mut step = Step::clean();
    step.timing.gpu.throttle_reasons = vec!["sw_power_cap".into()];
    step.timing.gpu.throttle_reasons_mask = Some(0x4 | 0x1);
    step.timing.gpu.sm_clock_min_mhz = Some(1410);
    let f = step.one(&GPU_THROTTLING);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (num(&f, "mask"), num(&f, "sm_clock_min_mhz")),
        (5.0, 1410.0)
    );
    assert_eq!(f.evidence["reasons"][0], "sw_power_cap");
    assert!(
        f.message
            .contains("(sw_power_cap; SM clock down to 1410 MHz)"),
        "{}",
        f.message
    );
}

#[test]
fn gpu_throttling_stays_silent_when_no_reason_slows_the_gpu() {
    // An idle-clock reason is in the mask but is no slowdown.
    let mut step = Step::clean();
    step.timing.gpu.throttle_reasons_mask = Some(0x1);
    step.silent(&GPU_THROTTLING);
}

#[test]
fn gpu_memory_near_full_warns_at_the_share() {
    let mut step = Step::clean();
    step.timing.gpu.mem_used_max_frac = Some(0.98);
    let f = step.one(&GPU_MEMORY_NEAR_FULL);
    assert_eq!(f.severity, Severity::Warn);
    assert_eq!(
        (num(&f, "mem_used_max_frac"), num(&f, "mem_used_max_bytes")),
        (0.98, 72e9)
    );
}

#[test]
fn gpu_memory_near_full_stays_silent_below_the_share_or_unread() {
    let mut step = Step::clean();
    step.timing.gpu.mem_used_max_frac = Some(0.979);
    step.silent(&GPU_MEMORY_NEAR_FULL);
    step.timing.gpu.mem_used_max_frac = None;
    step.silent(&GPU_MEMORY_NEAR_FULL);
}
