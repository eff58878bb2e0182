//! The decode roofline: the least time one engine step can take on the given GPUs, and which
//! resource sets it.
//!
//! For one decode step of `bs` sequences, each with `context` tokens in its KV cache, on one of
//! `tp` tensor-parallel GPUs:
//!
//! ```text
//! t_min = max(bytes_moved / HBM_bandwidth, flops / peak_flops)
//! bytes_moved = weight_bytes_read(bs) / tp + bs × kv_bytes(context) × kv_share(tp)
//! flops       = bs × (2 × active_matmul_params + attention_flops(context)) / tp
//! ```
//!
//! - `weight_bytes_read(bs)`: every weight but the routed experts and the input embedding (a
//!   gather of `bs` rows), plus for MoE the experts the batch actually touches. With routing
//!   taken as uniform and independent per token, an expert is missed by one token with
//!   probability `1 − k/E`, so each MoE layer reads on average `E × (1 − (1 − k/E)^bs)`
//!   distinct experts: `k` at `bs = 1`, approaching all `E` as the batch grows.
//! - `kv_bytes(context)`: [`ModelShape::kv_bytes_for_context`] (sliding-window layers read at
//!   most their window). `kv_share(tp)` is the part of a sequence's cache one GPU holds:
//!   `⌈kv_heads / tp⌉ / kv_heads` for GQA (so `1/tp` when the KV heads divide, and no further
//!   saving once heads are replicated), and `1` for MLA, whose latent is not split by heads:
//!   every rank caches it whole.
//! - `active_matmul_params`: [`ParamCounts::active_matmul`] (MoE: `k` routed experts per
//!   token). `attention_flops(context)`: [`ModelShape::attention_flops_per_token`].
//! - `peak_flops`: the GPU's dense fp8 figure when the block weights are fp8 and the GPU has
//!   fp8 tensor cores (engines then run fp8 GEMMs); else its dense bf16 figure, weight-only
//!   int4/mxfp4 kernels included, which dequantize to bf16.
//!
//! Efficiency of a measured step is `t_min / t_fwd` (≤ 1 unless the measurement or the figures
//! are wrong). Left out: communication between TP ranks, kernel launch gaps, activations, the
//! sampler; they are why real steps take longer, which is what efficiency shows.

use serde::Serialize;

use crate::gpu_specs::GpuSpec;
use crate::model::{Attention, KvDtype, ModelShape, ParamCounts, WeightBytes, WeightDtype};

/// What sets `t_min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    Memory,
    Compute,
}

impl Bound {
    pub fn as_str(self) -> &'static str {
        match self {
            Bound::Memory => "memory",
            Bound::Compute => "compute",
        }
    }
}

/// Which peak the FLOPs are divided by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComputeDtype {
    Bf16,
    Fp8,
}

impl ComputeDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            ComputeDtype::Bf16 => "bf16",
            ComputeDtype::Fp8 => "fp8",
        }
    }
}

/// The roofline of one decode step, per GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RooflinePoint {
    pub bs: u32,
    pub context: u32,
    pub tp: u32,
    pub weight_bytes_per_gpu: f64,
    pub kv_bytes_per_gpu: f64,
    pub bytes_moved_per_gpu: f64,
    pub flops_per_gpu: f64,
    pub t_memory_s: f64,
    pub t_compute_s: f64,
    pub t_min_s: f64,
    pub bound: Bound,
    /// `bs / t_min`: output tokens per second of one replica (one MTP token per step).
    pub max_output_tokens_per_s: f64,
    /// MoE: distinct routed experts read per MoE layer, `E × (1 − (1 − k/E)^bs)`.
    pub experts_touched_per_layer: Option<f64>,
}

/// A measured step set against the roofline: what the analysis stores in each step's timing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepRoofline {
    pub t_min_s: f64,
    /// `t_min / t_fwd`; None without a measured step time.
    pub efficiency: Option<f64>,
}

/// `t_min / t_fwd`; None when `t_fwd_s` is not a positive number.
pub fn efficiency(t_min_s: f64, t_fwd_s: f64) -> Option<f64> {
    (t_fwd_s.is_finite() && t_fwd_s > 0.0).then(|| t_min_s / t_fwd_s)
}

/// Expected distinct experts `bs` tokens route to in one layer of `experts` experts with
/// `k` per token, routing uniform and independent: `E × (1 − (1 − k/E)^bs)`.
pub fn expected_distinct_experts(experts: u32, k: u32, bs: u32) -> f64 {
    if experts == 0 {
        return 0.0;
    }
    let e = f64::from(experts);
    let miss = 1.0 - f64::from(k.min(experts)) / e;
    e * (1.0 - miss.powf(f64::from(bs)))
}

/// Everything about a (model, GPU, TP, dtypes) deployment that does not depend on the batch;
/// [`Roofline::at`] gives the point for a batch and context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Roofline {
    pub tp: u32,
    pub gpu: GpuSpec,
    pub kv_dtype: KvDtype,
    pub compute_dtype: ComputeDtype,
    pub peak_flops: f64,
    pub params: ParamCounts,
    pub weights: WeightBytes,
    /// The part of one sequence's KV cache one GPU holds.
    pub kv_share: f64,
    #[serde(skip)]
    shape: ModelShape,
}

impl Roofline {
    /// `weight_dtype`: None for the checkpoint's own storage, or an override of the block
    /// linear layers (see [`WeightBytes::of`]). `tp` 0 is taken as 1.
    pub fn new(
        shape: &ModelShape,
        gpu: &GpuSpec,
        tp: u32,
        weight_dtype: Option<WeightDtype>,
        kv_dtype: KvDtype,
    ) -> Self {
        let tp = tp.max(1);
        let params = ParamCounts::of(shape);
        let weights = WeightBytes::of(shape, &params, weight_dtype);
        let fp8_weights =
            weights.linear_dtype == WeightDtype::Fp8 || weights.expert_dtype == WeightDtype::Fp8;
        let (compute_dtype, peak_flops) = match (fp8_weights, gpu.fp8_dense_flops) {
            (true, Some(f)) => (ComputeDtype::Fp8, f),
            _ => (ComputeDtype::Bf16, gpu.bf16_dense_flops),
        };
        let kv_share = match shape.attention {
            Attention::Mla(_) => 1.0,
            Attention::Gqa { .. } => {
                let kv = shape.kv_heads.max(1);
                f64::from(kv.div_ceil(tp)) / f64::from(kv)
            }
        };
        Roofline {
            tp,
            gpu: gpu.clone(),
            kv_dtype,
            compute_dtype,
            peak_flops,
            params,
            weights,
            kv_share,
            shape: shape.clone(),
        }
    }

    /// The roofline of a measured step: `t_min` at its batch per rank and decode context (each
    /// rounded to a whole number, at least 1) and the efficiency `t_min / t_fwd`. None when
    /// `t_min` is not a positive number (a GPU given without figures).
    pub fn for_step(
        &self,
        bs_per_rank: f64,
        context_tokens: f64,
        t_fwd_s: Option<f64>,
    ) -> Option<StepRoofline> {
        let whole = |x: f64| x.round().max(1.0) as u32;
        let t_min_s = self.at(whole(bs_per_rank), whole(context_tokens)).t_min_s;
        (t_min_s.is_finite() && t_min_s > 0.0).then(|| StepRoofline {
            t_min_s,
            efficiency: t_fwd_s.and_then(|t| efficiency(t_min_s, t)),
        })
    }

    /// The roofline of a decode step of `bs` sequences with `context` cached tokens each.
    pub fn at(&self, bs: u32, context: u32) -> RooflinePoint {
        let tp = f64::from(self.tp);
        let bsf = f64::from(bs);
        let (experts_touched, expert_bytes) = match &self.shape.moe {
            None => (None, 0.0),
            Some(m) => {
                let touched = expected_distinct_experts(m.experts, m.experts_per_token, bs);
                let bytes = f64::from(m.moe_layers) * touched * self.weights.one_expert;
                (Some(touched), bytes)
            }
        };
        let weight_bytes_per_gpu = (self.weights.always_read() + expert_bytes) / tp;
        let kv_bytes_per_gpu = bsf
            * self
                .shape
                .kv_bytes_for_context(u64::from(context), self.kv_dtype)
            * self.kv_share;
        let bytes_moved_per_gpu = weight_bytes_per_gpu + kv_bytes_per_gpu;
        let per_token_flops = 2.0 * self.params.active_matmul() as f64
            + self.shape.attention_flops_per_token(u64::from(context));
        let flops_per_gpu = bsf * per_token_flops / tp;
        let t_memory_s = bytes_moved_per_gpu / self.gpu.hbm_bandwidth_bytes_per_s;
        let t_compute_s = flops_per_gpu / self.peak_flops;
        let (t_min_s, bound) = if t_compute_s > t_memory_s {
            (t_compute_s, Bound::Compute)
        } else {
            (t_memory_s, Bound::Memory)
        };
        RooflinePoint {
            bs,
            context,
            tp: self.tp,
            weight_bytes_per_gpu,
            kv_bytes_per_gpu,
            bytes_moved_per_gpu,
            flops_per_gpu,
            t_memory_s,
            t_compute_s,
            t_min_s,
            bound,
            max_output_tokens_per_s: if t_min_s > 0.0 { bsf / t_min_s } else { 0.0 },
            experts_touched_per_layer: experts_touched,
        }
    }
}

impl Roofline {
    /// The least time the prefill of one `input_len`-token prompt can take on one replica:
    /// `max(L × (2 × active_matmul_params + attention_flops(L / 2)) / tp / peak_flops,
    /// weight_bytes / tp / HBM_bandwidth)`; the KV written and read is left out (a lower bound).
    /// A TTFT below it was not computed: the prompt was served from the prefix cache.
    pub fn prefill_min_s(&self, input_len: u32) -> f64 {
        let len = input_len.max(1);
        let p = self.at(len, (len / 2).max(1));
        p.t_compute_s
            .max(p.weight_bytes_per_gpu / self.gpu.hbm_bandwidth_bytes_per_s)
    }
}

/// The roofline of one decode step; see the module docs for the formulas.
pub fn t_min(
    shape: &ModelShape,
    gpu: &GpuSpec,
    tp: u32,
    bs: u32,
    context: u32,
    weight_dtype: Option<WeightDtype>,
    kv_dtype: KvDtype,
) -> RooflinePoint {
    Roofline::new(shape, gpu, tp, weight_dtype, kv_dtype).at(bs, context)
}

/// Test support: Llama-3.1-8B on a GPU whose bandwidth makes a step of `bs` sequences at
/// `context` tokens take exactly `t_min_s`, memory-bound (the compute peak is far out of the
/// way), so tests can set the roofline where they want it.
#[cfg(test)]
pub(crate) fn llama_8b_with_t_min(t_min_s: f64, bs: u32, context: u32) -> Roofline {
    let shape = crate::model::fixtures::shape(crate::model::fixtures::LLAMA_8B);
    let unit = GpuSpec {
        name: "test GPU".into(),
        hbm_bandwidth_bytes_per_s: 1.0,
        bf16_dense_flops: f64::MAX,
        fp8_dense_flops: None,
        memory_bytes: 80 << 30,
        source: "test".into(),
    };
    let bytes = Roofline::new(&shape, &unit, 1, None, KvDtype::Bf16)
        .at(bs, context)
        .bytes_moved_per_gpu;
    let gpu = GpuSpec {
        hbm_bandwidth_bytes_per_s: bytes / t_min_s,
        ..unit
    };
    Roofline::new(&shape, &gpu, 1, None, KvDtype::Bf16)
}

#[cfg(test)]
#[path = "roofline_tests.rs"]
mod tests;
