//! The roofline on the fixture configs, with the numbers worked by hand.

use super::*;
use crate::gpu_specs::lookup;
use crate::model::fixtures::{self, *};

fn h100() -> GpuSpec {
    lookup("NVIDIA H100 80GB HBM3").unwrap()
}

fn close(a: f64, b: f64) -> bool {
    ((a - b) / b).abs() < 1e-9
}

#[test]
fn llama_8b_on_h100_at_bs1_is_memory_bound_by_its_weights() {
    let s = fixtures::shape(LLAMA_8B);
    let p = t_min(&s, &h100(), 1, 1, 1024, None, KvDtype::Bf16);
    // (8,030,261,248 − 128,256·4096 embedding) × 2 bytes.
    assert_eq!(p.weight_bytes_per_gpu, 15_009_849_344.0);
    // 131,072 bytes per token × 1024 tokens.
    assert_eq!(p.kv_bytes_per_gpu, 134_217_728.0);
    assert!(close(p.t_memory_s, 15_144_067_072.0 / 3.35e12));
    // 2 × 7,504,924,672 + 4 × 32 heads × 128 × 1024 × 32 layers.
    assert_eq!(p.flops_per_gpu, 15_546_720_256.0);
    assert_eq!(p.bound, Bound::Memory);
    assert_eq!(p.t_min_s, p.t_memory_s);
    assert!(close(p.max_output_tokens_per_s, 1.0 / p.t_min_s));
    assert_eq!(p.experts_touched_per_layer, None);
}

#[test]
fn large_batches_with_short_context_turn_compute_bound() {
    let s = fixtures::shape(LLAMA_8B);
    let r = Roofline::new(&s, &h100(), 1, None, KvDtype::Bf16);
    assert_eq!(r.at(1024, 16).bound, Bound::Compute);
    assert_eq!(r.at(1024, 16).t_min_s, r.at(1024, 16).t_compute_s);
    // KV traffic keeps long-context batches memory-bound.
    assert_eq!(r.at(1024, 4096).bound, Bound::Memory);
}

#[test]
fn tp_splits_weights_and_kv_until_kv_heads_are_replicated() {
    let s = fixtures::shape(LLAMA_70B);
    let gpu = h100();
    let one = t_min(&s, &gpu, 1, 8, 2048, None, KvDtype::Bf16);
    let eight = t_min(&s, &gpu, 8, 8, 2048, None, KvDtype::Bf16);
    let sixteen = t_min(&s, &gpu, 16, 8, 2048, None, KvDtype::Bf16);
    assert!(close(
        eight.weight_bytes_per_gpu,
        one.weight_bytes_per_gpu / 8.0
    ));
    assert!(close(eight.kv_bytes_per_gpu, one.kv_bytes_per_gpu / 8.0));
    assert!(close(
        sixteen.weight_bytes_per_gpu,
        one.weight_bytes_per_gpu / 16.0
    ));
    // 8 KV heads over 16 ranks: each rank still holds one whole head.
    assert_eq!(sixteen.kv_bytes_per_gpu, eight.kv_bytes_per_gpu);
}

#[test]
fn mla_kv_is_not_split_by_tp() {
    let s = fixtures::shape(DEEPSEEK_V3);
    let gpu = lookup("NVIDIA H200").unwrap();
    let tp8 = t_min(&s, &gpu, 8, 4, 4096, None, KvDtype::Bf16);
    // 61 layers × 576 × 2 bytes × 4096 tokens × 4 sequences, on every rank.
    assert_eq!(tp8.kv_bytes_per_gpu, 70_272.0 * 4096.0 * 4.0);
    let r = Roofline::new(&s, &gpu, 8, None, KvDtype::Bf16);
    assert_eq!(
        r.compute_dtype,
        ComputeDtype::Fp8,
        "fp8 checkpoint on an fp8 GPU"
    );
    assert_eq!(r.peak_flops, 1979e12);
    let a100 = lookup("NVIDIA A100-SXM4-80GB").unwrap();
    let r = Roofline::new(&s, &a100, 8, None, KvDtype::Bf16);
    assert_eq!(r.compute_dtype, ComputeDtype::Bf16, "no fp8 tensor cores");
}

#[test]
fn moe_reads_the_experts_the_batch_touches() {
    assert_eq!(expected_distinct_experts(8, 2, 1), 2.0);
    assert!(close(
        expected_distinct_experts(8, 2, 2),
        8.0 * (1.0 - 0.75f64.powi(2))
    ));
    assert!(expected_distinct_experts(128, 8, 1024) > 127.99);

    let s = fixtures::shape(MIXTRAL);
    let gpu = h100();
    let r = Roofline::new(&s, &gpu, 2, None, KvDtype::Bf16);
    let one = r.at(1, 1);
    let w = &r.weights;
    assert!(close(
        one.weight_bytes_per_gpu,
        (w.always_read() + 32.0 * 2.0 * w.one_expert) / 2.0
    ));
    let many = r.at(256, 1);
    assert!(close(
        many.weight_bytes_per_gpu,
        (w.always_read() + w.routed_experts) / 2.0
    ));
    // FLOPs per token use k experts whatever the batch.
    assert!(close(many.flops_per_gpu, 256.0 * one.flops_per_gpu));
}

#[test]
fn weight_and_kv_dtype_overrides_change_the_bytes() {
    let s = fixtures::shape(QWEN25_72B);
    let gpu = h100();
    let bf16 = t_min(&s, &gpu, 4, 32, 1024, None, KvDtype::Bf16);
    let fp8 = t_min(&s, &gpu, 4, 32, 1024, Some(WeightDtype::Fp8), KvDtype::Fp8);
    assert!(close(fp8.kv_bytes_per_gpu, bf16.kv_bytes_per_gpu / 2.0));
    assert!(fp8.weight_bytes_per_gpu < 0.52 * bf16.weight_bytes_per_gpu);
    let int4 = t_min(
        &s,
        &gpu,
        4,
        32,
        1024,
        Some(WeightDtype::Int4),
        KvDtype::Bf16,
    );
    assert!(int4.weight_bytes_per_gpu < fp8.weight_bytes_per_gpu);
}

#[test]
fn a_measured_step_gets_t_min_at_its_rounded_batch_and_efficiency_t_min_over_t_fwd() {
    let s = fixtures::shape(QWEN3_30B_A3B);
    let r = Roofline::new(&s, &h100(), 1, None, KvDtype::Bf16);
    let p = t_min(&s, &h100(), 1, 16, 2048, None, KvDtype::Bf16);
    assert_eq!(r.at(16, 2048), p);
    // 15.6 sequences per rank (DP-averaged) and a mean context of 2048.4 tokens.
    let step = r.for_step(15.6, 2048.4, Some(2.0 * p.t_min_s)).unwrap();
    assert_eq!(step.t_min_s, p.t_min_s);
    assert!(close(step.efficiency.unwrap(), 0.5));
    assert_eq!(r.for_step(16.0, 2048.0, None).unwrap().efficiency, None);
    assert_eq!(
        r.for_step(16.0, 2048.0, Some(0.0)).unwrap().efficiency,
        None
    );
    assert_eq!(
        r.for_step(0.2, 0.0, None).unwrap().t_min_s,
        r.at(1, 1).t_min_s
    );
    assert_eq!(efficiency(1.0, f64::NAN), None);
    // A GPU without figures has no roofline to compare with.
    let blank = GpuSpec {
        hbm_bandwidth_bytes_per_s: 0.0,
        ..h100()
    };
    assert_eq!(
        Roofline::new(&s, &blank, 1, None, KvDtype::Bf16).for_step(16.0, 2048.0, Some(0.01)),
        None
    );
}

#[test]
fn the_test_roofline_lands_where_asked() {
    let r = llama_8b_with_t_min(0.004, 4, 150);
    assert!(close(r.at(4, 150).t_min_s, 0.004));
    assert_eq!(r.at(4, 150).bound, Bound::Memory);
    assert!(r.at(16, 150).t_min_s > 0.004, "more sequences read more KV");
}
