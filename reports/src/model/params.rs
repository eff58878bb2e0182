//! Parameter counts and weight bytes of a [`ModelShape`], by the standard formulas.
//!
//! Notation: `H` hidden, `L` layers, `nh` heads, `nkv` KV heads, `hd` head_dim, `I` dense
//! intermediate, `V` vocab, `E` routed experts, `k` experts per token, `Iₑ` expert
//! intermediate, `Iₛ` shared-expert intermediate.
//!
//! Per layer:
//! - GQA attention: `H·nh·hd` (q) + `2·H·nkv·hd` (k, v) + `nh·hd·H` (o), plus `nh·hd + 2·nkv·hd`
//!   with a QKV bias, `H` with an output bias, `2·hd` with q/k norms, `nh` with sinks.
//! - MLA attention: `H·q_lora + q_lora + q_lora·nh·(nope+rope)` (or `H·nh·(nope+rope)` without
//!   `q_lora_rank`) + `H·(kv_lora+rope) + kv_lora` + `kv_lora·nh·(nope+v)` + `nh·v·H`.
//! - Dense MLP (gated: gate, up, down): `3·H·I` (+ `2·I + H` with `mlp_bias`).
//! - MoE: `E` experts of `3·H·Iₑ` (+ `2·Iₑ + H` with expert biases), a router of `E·H` (+ `E`
//!   with a router bias), shared experts of `3·H·Iₛ` (+ `H` for a shared-expert gate).
//! - Norms: `norms_per_layer·H`.
//!
//! Once: embedding `V·H`, output head `V·H` unless tied, final norm `H`.
//!
//! `total` is every parameter of the model that decodes (DeepSeek-V3's multi-token-prediction
//! module is counted apart, in `mtp`). `active` is what one token touches: the total with each
//! MoE layer's `E` routed experts replaced by its `k`.

use serde::Serialize;

use super::{Attention, ModelShape, WeightDtype};

/// Parameter counts by part, summed over layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    pub embedding: u64,
    /// 0 when the head is tied to the embedding.
    pub lm_head: u64,
    pub attention: u64,
    pub norms: u64,
    pub dense_mlp: u64,
    /// All routed experts of all MoE layers.
    pub routed_experts: u64,
    /// One routed expert of one layer.
    pub one_expert: u64,
    pub shared_experts: u64,
    pub routers: u64,
    /// The multi-token-prediction module(s) as the checkpoint stores them (a full MoE decoder
    /// layer, three norms, a `2H × H` projection, and its own copies of the head and the
    /// embedding); not part of `total`.
    pub mtp: u64,
    /// Routed experts each token uses, over all MoE layers: `moe_layers × k`.
    pub active_expert_slots: u64,
}

impl ParamCounts {
    pub fn of(s: &ModelShape) -> Self {
        let h = s.hidden;
        let layers = u64::from(s.layers);
        let attention_layer = attention_per_layer(s);
        let dense_layer = 3 * h * s.intermediate
            + if s.mlp_bias {
                2 * s.intermediate + h
            } else {
                0
            };
        let norms_layer = u64::from(s.norms_per_layer) * h;
        let mut one_expert = 0;
        let mut router_layer = 0;
        let mut shared_layer = 0;
        let mut moe_layers = 0;
        let mut experts = 0;
        let mut k = 0;
        if let Some(m) = &s.moe {
            experts = u64::from(m.experts);
            k = u64::from(m.experts_per_token);
            moe_layers = u64::from(m.moe_layers);
            one_expert = 3 * h * m.expert_intermediate;
            if m.expert_bias {
                one_expert += 2 * m.expert_intermediate + h;
            }
            router_layer = experts * h + if m.router_bias { experts } else { 0 };
            shared_layer = 3 * h * m.shared_intermediate;
            if m.shared_expert_gate {
                shared_layer += h;
            }
        }
        let dense_layers = u64::from(s.dense_layers());
        let embedding = s.vocab * h;
        let mtp_layer = attention_layer
            + norms_layer
            + experts * one_expert
            + router_layer
            + shared_layer
            + 3 * h
            + 2 * h * h
            + 2 * embedding;
        ParamCounts {
            embedding,
            lm_head: if s.tied_embeddings { 0 } else { embedding },
            attention: layers * attention_layer,
            norms: layers * norms_layer + h,
            dense_mlp: dense_layers * dense_layer,
            routed_experts: moe_layers * experts * one_expert,
            one_expert,
            shared_experts: moe_layers * shared_layer,
            routers: moe_layers * router_layer,
            mtp: u64::from(s.mtp_layers) * mtp_layer,
            active_expert_slots: moe_layers * k,
        }
    }

    /// Every parameter of the decoding model (without the MTP module).
    pub fn total(&self) -> u64 {
        self.embedding
            + self.lm_head
            + self.attention
            + self.norms
            + self.dense_mlp
            + self.routed_experts
            + self.shared_experts
            + self.routers
    }

    /// Parameters one token touches, the convention Qwen and DeepSeek publish (embedding
    /// included): `total − routed_experts + moe_layers × k × one_expert`.
    pub fn active(&self) -> u64 {
        self.total() - self.routed_experts + self.active_expert_slots * self.one_expert
    }

    /// [`Self::active`] without the input embedding, which is a row lookup rather than a matmul
    /// (when tied, the table is the head's matmul and stays). This is the count that costs
    /// `2` FLOPs per parameter per token, and the convention OpenAI publishes for gpt-oss.
    pub fn active_matmul(&self) -> u64 {
        if self.lm_head == 0 {
            self.active()
        } else {
            self.active() - self.embedding
        }
    }
}

fn attention_per_layer(s: &ModelShape) -> u64 {
    let h = s.hidden;
    let nh = u64::from(s.heads);
    match &s.attention {
        Attention::Gqa {
            qkv_bias,
            o_bias,
            qk_norm,
            sinks,
        } => {
            let q = nh * s.head_dim;
            let kv = u64::from(s.kv_heads) * s.head_dim;
            let mut p = h * q + 2 * h * kv + q * h;
            if *qkv_bias {
                p += q + 2 * kv;
            }
            if *o_bias {
                p += h;
            }
            if *qk_norm {
                p += 2 * s.head_dim;
            }
            if *sinks {
                p += nh;
            }
            p
        }
        Attention::Mla(m) => {
            let qk_head = m.qk_nope_head_dim + m.qk_rope_head_dim;
            let q = match m.q_lora_rank {
                Some(r) => h * r + r + r * nh * qk_head,
                None => h * nh * qk_head,
            };
            let kv_a = h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank;
            let kv_b = m.kv_lora_rank * nh * (m.qk_nope_head_dim + m.v_head_dim);
            let o = nh * m.v_head_dim * h;
            q + kv_a + kv_b + o
        }
    }
}

/// Weight bytes by part, for one storage choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WeightBytes {
    pub embedding: f64,
    pub lm_head: f64,
    pub attention: f64,
    pub norms: f64,
    pub dense_mlp: f64,
    pub routed_experts: f64,
    pub one_expert: f64,
    pub shared_experts: f64,
    pub routers: f64,
    /// The dtype of the block linear layers (attention, MLP, shared experts).
    pub linear_dtype: WeightDtype,
    /// The dtype of the routed experts.
    pub expert_dtype: WeightDtype,
    /// The dtype of the rest (embedding, head, norms, routers).
    pub base_dtype: WeightDtype,
}

impl WeightBytes {
    /// Bytes of each part. `weights` overrides how the block linear layers (attention, MLPs,
    /// experts) are stored; a 16/32-bit override applies to everything. Without it the checkpoint
    /// decides: `quantization_config` for the quantized layers (all block linear layers, or only
    /// the routed experts when attention is listed in `modules_to_not_convert`, as in gpt-oss),
    /// `torch_dtype` for the rest. Embedding, head, norms and routers stay in the base dtype,
    /// as the engines keep them.
    pub fn of(s: &ModelShape, p: &ParamCounts, weights: Option<WeightDtype>) -> Self {
        let wide =
            |d: WeightDtype| matches!(d, WeightDtype::Fp32 | WeightDtype::Bf16 | WeightDtype::Fp16);
        let base_dtype = match weights {
            Some(d) if wide(d) => d,
            _ => s.dtype,
        };
        let q = s.quantization.as_ref();
        let expert_dtype = weights.or(q.map(|q| q.dtype)).unwrap_or(base_dtype);
        let linear_dtype = weights
            .or(q.filter(|q| !q.experts_only).map(|q| q.dtype))
            .unwrap_or(base_dtype);
        let b = |n: u64, d: WeightDtype| n as f64 * d.bytes_per_param();
        WeightBytes {
            embedding: b(p.embedding, base_dtype),
            lm_head: b(p.lm_head, base_dtype),
            attention: b(p.attention, linear_dtype),
            norms: b(p.norms, base_dtype),
            dense_mlp: b(p.dense_mlp, linear_dtype),
            routed_experts: b(p.routed_experts, expert_dtype),
            one_expert: b(p.one_expert, expert_dtype),
            shared_experts: b(p.shared_experts, linear_dtype),
            routers: b(p.routers, base_dtype),
            linear_dtype,
            expert_dtype,
            base_dtype,
        }
    }

    /// All weight bytes: what the GPUs hold.
    pub fn total(&self) -> f64 {
        self.embedding
            + self.lm_head
            + self.attention
            + self.norms
            + self.dense_mlp
            + self.routed_experts
            + self.shared_experts
            + self.routers
    }

    /// Bytes every decode step reads whatever the batch: everything but the routed experts and
    /// the input embedding (a gather of `bs` rows, negligible); a tied table is read by the
    /// head's matmul and counts.
    pub fn always_read(&self) -> f64 {
        let table = if self.lm_head == 0.0 {
            self.embedding
        } else {
            self.lm_head
        };
        table + self.attention + self.norms + self.dense_mlp + self.shared_experts + self.routers
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
