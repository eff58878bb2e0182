//! `gpu_throttling`, `gpu_window_too_short` and `gpu_memory_near_full`: each fires and stays
//! silent.

use super::super::fixture::{Step, num};
use super::super::gpu::{
    DECODE_NOT_MEMORY_BOUND, GPU_MEMORY_NEAR_FULL, GPU_THROTTLING, GPU_WINDOW_TOO_SHORT,
};
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

#[test]
fn gpu_throttling_says_unknown_when_no_sample_carried_the_reasons() {
    // A DCGM exporter with its default counters: samples, but no reason mask.
    let mut step = Step::clean();
    step.timing.gpu.throttle_reasons_mask = None;
    let f = step.one(&GPU_THROTTLING);
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.message.starts_with("throttle reasons unknown"),
        "{}",
        f.message
    );
    assert!(f.message.contains("DCGM_FI_DEV_CLOCKS_EVENT_REASONS"));
    assert_eq!(num(&f, "samples"), 50.0);
}

#[test]
fn gpu_throttling_stays_silent_without_gpu_samples() {
    let mut step = Step::clean();
    step.timing.gpu.throttle_reasons_mask = None;
    step.timing.gpu.samples = 0;
    step.silent(&GPU_THROTTLING);
}

#[test]
fn gpu_window_too_short_fires_when_every_window_is_short() {
    let mut step = Step::clean();
    step.timing.gpu.too_short = true;
    let f = step.one(&GPU_WINDOW_TOO_SHORT);
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(num(&f, "window_s"), step.timing.window_s);
    assert!(f.message.contains("each shorter than 2 s"), "{}", f.message);
}

#[test]
fn gpu_window_too_short_stays_silent_on_long_windows_or_without_samples() {
    let mut step = Step::clean();
    step.silent(&GPU_WINDOW_TOO_SHORT);
    step.timing.gpu.too_short = true;
    step.timing.gpu.samples = 0;
    step.silent(&GPU_WINDOW_TOO_SHORT);
}

#[test]
fn decode_not_memory_bound_fires_when_tensor_pipes_outrun_memory() {
    let mut step = Step::clean();
    step.timing.gpu.dram_active = Some(0.35);
    step.timing.gpu.tensor_active = Some(0.62);
    step.timing.roofline_efficiency = Some(0.4);
    let f = step.one(&DECODE_NOT_MEMORY_BOUND);
    assert_eq!(f.severity, Severity::Info);
    assert_eq!(
        (num(&f, "dram_active"), num(&f, "tensor_active")),
        (0.35, 0.62)
    );
    assert!(
        f.message
            .contains("tensor pipes active 62 % of cycles, device memory 35 %"),
        "{}",
        f.message
    );
}

#[test]
fn decode_not_memory_bound_stays_silent_when_memory_bound_or_unread() {
    let mut step = Step::clean();
    step.silent(&DECODE_NOT_MEMORY_BOUND);
    step.timing.gpu.dram_active = Some(0.85);
    step.timing.gpu.tensor_active = Some(0.1);
    step.silent(&DECODE_NOT_MEMORY_BOUND);
    step.timing.gpu.dram_active = None;
    step.timing.gpu.tensor_active = Some(0.9);
    step.silent(&DECODE_NOT_MEMORY_BOUND);
}
