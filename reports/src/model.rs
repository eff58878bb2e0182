//! Model shapes: what a decode step of a transformer must read and compute, from the model's
//! Hugging Face `config.json`.
//!
//! [`ModelShape::from_config_json`] parses the file (tolerant of extra fields, and of the
//! `text_config` nesting of multimodal checkpoints); [`params`] counts parameters and bytes.
//! This module owns the shape arithmetic only: it reads no files (the caller passes the text),
//! and it knows nothing of GPUs or engines (see `roofline` and `tp`).
//!
//! Families handled: llama, mistral, mixtral, qwen2 / qwen2-moe, qwen3 / qwen3-moe, gemma /
//! gemma2 / gemma3 (explicit `head_dim`), deepseek-v2 / v3 (MLA), gpt-oss. An unknown
//! `model_type` is read as a llama-like dense model, and [`ModelShape::notes`] says so.

mod config;
pub mod params;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use params::{ParamCounts, WeightBytes};

/// A model `config.json` that cannot be read as a transformer shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelConfigError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` is {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

/// The architecture family, from `model_type`. It decides the small per-layer details the
/// config does not spell out (QKV bias in Qwen2, q/k norms in Qwen3 and Gemma3, attention sinks
/// in gpt-oss, four norms per layer in Gemma2/3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Llama,
    Mistral,
    Mixtral,
    Qwen2,
    Qwen2Moe,
    Qwen3,
    Qwen3Moe,
    Gemma,
    Gemma2,
    Gemma3,
    DeepseekV2,
    DeepseekV3,
    GptOss,
    /// An unknown `model_type`, read as llama-like.
    Other,
}

/// Weight storage formats, with the bytes per parameter they cost including their scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    Fp32,
    Bf16,
    Fp16,
    /// 8-bit float (e4m3); block or channel scales are < 0.1 % and not counted.
    Fp8,
    /// 8-bit integer (W8A8 or weight-only); per-channel scales not counted.
    Int8,
    /// 4-bit integer, group size 128 with an fp16 scale per group (AWQ/GPTQ): 4.125 bits.
    Int4,
    /// OCP microscaling fp4: blocks of 32 with an 8-bit scale: 4.25 bits.
    Mxfp4,
    /// NVIDIA fp4: blocks of 16 with an fp8 scale: 4.5 bits.
    Nvfp4,
}

impl WeightDtype {
    pub const ALL: [WeightDtype; 8] = [
        Self::Fp32,
        Self::Bf16,
        Self::Fp16,
        Self::Fp8,
        Self::Int8,
        Self::Int4,
        Self::Mxfp4,
        Self::Nvfp4,
    ];

    /// Bytes per parameter, scales included (see each variant).
    pub fn bytes_per_param(self) -> f64 {
        match self {
            Self::Fp32 => 4.0,
            Self::Bf16 | Self::Fp16 => 2.0,
            Self::Fp8 | Self::Int8 => 1.0,
            Self::Int4 => (4.0 + 16.0 / 128.0) / 8.0,
            Self::Mxfp4 => (4.0 + 8.0 / 32.0) / 8.0,
            Self::Nvfp4 => (4.0 + 8.0 / 16.0) / 8.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
            Self::Fp8 => "fp8",
            Self::Int8 => "int8",
            Self::Int4 => "int4",
            Self::Mxfp4 => "mxfp4",
            Self::Nvfp4 => "nvfp4",
        }
    }
}

impl fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WeightDtype {
    type Err = String;
    /// Accepts our names and the spellings found in `config.json` (`bfloat16`, `float16`,
    /// `e4m3`, `awq`, `gptq`, ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "fp32" | "float32" | "float" => Self::Fp32,
            "bf16" | "bfloat16" => Self::Bf16,
            "fp16" | "float16" | "half" => Self::Fp16,
            "fp8" | "e4m3" | "float8_e4m3fn" | "fbgemm_fp8" | "compressed-tensors-fp8" => Self::Fp8,
            "int8" | "w8a8" | "bitsandbytes_8bit" => Self::Int8,
            "int4" | "awq" | "gptq" | "w4a16" => Self::Int4,
            "mxfp4" => Self::Mxfp4,
            "nvfp4" | "modelopt_fp4" => Self::Nvfp4,
            other => return Err(format!("unknown weight dtype {other:?}")),
        })
    }
}

/// KV-cache element formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KvDtype {
    Fp32,
    #[default]
    Bf16,
    Fp16,
    Fp8,
}

impl KvDtype {
    pub fn bytes(self) -> f64 {
        match self {
            Self::Fp32 => 4.0,
            Self::Bf16 | Self::Fp16 => 2.0,
            Self::Fp8 => 1.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
            Self::Fp16 => "fp16",
            Self::Fp8 => "fp8",
        }
    }
}

impl fmt::Display for KvDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How attention is laid out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Attention {
    /// Multi-head / grouped-query attention: K and V of `kv_heads × head_dim` each.
    Gqa {
        /// Bias on the q, k and v projections (Qwen2: always; others: `attention_bias`).
        qkv_bias: bool,
        /// Bias on the output projection (`attention_bias`, except Qwen2).
        o_bias: bool,
        /// RMS norms of `head_dim` on q and k (Qwen3, Gemma3).
        qk_norm: bool,
        /// One learned sink logit per head (gpt-oss).
        sinks: bool,
    },
    /// Multi-head latent attention (DeepSeek-V2/V3): the cache holds one compressed latent of
    /// `kv_lora_rank` plus the shared rotary key of `qk_rope_head_dim` per token and layer.
    Mla(MlaShape),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlaShape {
    /// None when queries are projected directly (DeepSeek-V2-Lite).
    pub q_lora_rank: Option<u64>,
    pub kv_lora_rank: u64,
    pub qk_rope_head_dim: u64,
    pub qk_nope_head_dim: u64,
    pub v_head_dim: u64,
}

/// Mixture-of-experts feed-forward layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MoeShape {
    /// Routed experts per MoE layer (`num_experts`, `num_local_experts`, `n_routed_experts`).
    pub experts: u32,
    /// Routed experts each token uses (`num_experts_per_tok`).
    pub experts_per_token: u32,
    /// Intermediate size of one routed expert (`moe_intermediate_size`, else `intermediate_size`).
    pub expert_intermediate: u64,
    /// How many of the layers are MoE; the others have a dense MLP of `intermediate_size`
    /// (DeepSeek `first_k_dense_replace` / `moe_layer_freq`, Qwen `mlp_only_layers` /
    /// `decoder_sparse_step`).
    pub moe_layers: u32,
    /// Intermediate size of the always-on shared expert(s), summed; 0 when none
    /// (DeepSeek: `n_shared_experts × moe_intermediate_size`; Qwen2-MoE:
    /// `shared_expert_intermediate_size`).
    pub shared_intermediate: u64,
    /// A sigmoid gate of `hidden` on the shared expert (Qwen2-MoE).
    pub shared_expert_gate: bool,
    /// Biases on the expert projections (gpt-oss).
    pub expert_bias: bool,
    /// Per-expert bias on the router (gpt-oss's router bias, DeepSeek-V3's
    /// `e_score_correction_bias`).
    pub router_bias: bool,
}

/// Layers whose attention sees only the last `window` tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlidingWindow {
    pub window: u64,
    pub layers: u32,
}

/// How the checkpoint's weights are stored, from `quantization_config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantization {
    /// `quant_method` as written.
    pub method: String,
    pub dtype: WeightDtype,
    /// Only the routed experts are quantized (gpt-oss keeps attention, router, embedding and
    /// head in bf16); otherwise every linear layer in the blocks is.
    pub experts_only: bool,
    /// `weight_block_size` where given (DeepSeek-V3 fp8: 128 × 128): engines require each
    /// TP shard of a quantized matrix to hold whole blocks.
    pub block_size: Option<[u64; 2]>,
}

/// The shape of a decoder-only transformer, as far as the roofline and TP checks need it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelShape {
    pub model_type: String,
    pub architecture: Option<String>,
    pub family: Family,
    pub layers: u32,
    pub hidden: u64,
    pub heads: u32,
    pub kv_heads: u32,
    /// `head_dim` when the config gives it (Gemma, Qwen3, gpt-oss), else `hidden / heads`.
    pub head_dim: u64,
    /// Dense MLP intermediate size (0 when every layer is MoE and the config omits it).
    pub intermediate: u64,
    pub vocab: u64,
    pub tied_embeddings: bool,
    /// Bias on the dense MLP projections (`mlp_bias`).
    pub mlp_bias: bool,
    /// RMS/layer norms of `hidden` per layer: 2, or 4 in Gemma2/3.
    pub norms_per_layer: u32,
    pub attention: Attention,
    pub moe: Option<MoeShape>,
    pub sliding: Option<SlidingWindow>,
    /// Multi-token-prediction modules shipped with the checkpoint (DeepSeek-V3
    /// `num_nextn_predict_layers`); not in [`ParamCounts::total`].
    pub mtp_layers: u32,
    /// `torch_dtype` (or `dtype`): the dtype of everything not quantized.
    pub dtype: WeightDtype,
    pub quantization: Option<Quantization>,
    /// What was assumed while reading the config.
    pub notes: Vec<String>,
}

impl ModelShape {
    /// Parses a `config.json`'s text.
    pub fn from_config_json(text: &str) -> Result<Self, ModelConfigError> {
        config::parse(text)
    }

    pub fn is_mla(&self) -> bool {
        matches!(self.attention, Attention::Mla(_))
    }

    /// Layers with a dense MLP (not MoE).
    pub fn dense_layers(&self) -> u32 {
        self.layers - self.moe.as_ref().map_or(0, |m| m.moe_layers)
    }

    /// Elements cached per token in one layer: `2 × kv_heads × head_dim` (K and V), or for MLA
    /// `kv_lora_rank + qk_rope_head_dim` (the latent and the shared rotary key).
    pub fn kv_elems_per_token_per_layer(&self) -> u64 {
        match &self.attention {
            Attention::Mla(m) => m.kv_lora_rank + m.qk_rope_head_dim,
            Attention::Gqa { .. } => 2 * u64::from(self.kv_heads) * self.head_dim,
        }
    }

    /// KV bytes one token adds to the cache across all layers, when the context is within every
    /// sliding window: `layers × kv_elems_per_token_per_layer × kv_dtype bytes`.
    pub fn kv_bytes_per_token(&self, kv: KvDtype) -> f64 {
        f64::from(self.layers) * self.kv_elems_per_token_per_layer() as f64 * kv.bytes()
    }

    /// KV bytes one sequence of `context` tokens holds (and a decode step reads):
    /// `kv_elems_per_token_per_layer × kv bytes × Σ_layers min(context, window_l)`, where
    /// full-attention layers have no window.
    pub fn kv_bytes_for_context(&self, context: u64, kv: KvDtype) -> f64 {
        self.attended_tokens(context) * self.kv_elems_per_token_per_layer() as f64 * kv.bytes()
    }

    /// `Σ_layers min(context, window_l)`: the token-layers one decode step attends to.
    pub fn attended_tokens(&self, context: u64) -> f64 {
        let (sliding_layers, window) = self
            .sliding
            .as_ref()
            .map_or((0, u64::MAX), |s| (s.layers, s.window));
        let full = self.layers - sliding_layers;
        f64::from(full) * context as f64 + f64::from(sliding_layers) * context.min(window) as f64
    }

    /// Attention FLOPs of one decoded token against a `context`-token cache, summed over layers
    /// (the projections are in the parameter count, this is the part that grows with context):
    /// GQA `4 × heads × head_dim × attended` (QKᵀ and PV, 2 FLOPs per multiply-add);
    /// MLA with absorbed projections, as engines decode it,
    /// `2 × heads × (kv_lora_rank + qk_rope_head_dim) × attended + 2 × heads × kv_lora_rank × attended`.
    pub fn attention_flops_per_token(&self, context: u64) -> f64 {
        let attended = self.attended_tokens(context);
        let heads = f64::from(self.heads);
        match &self.attention {
            Attention::Gqa { .. } => 4.0 * heads * self.head_dim as f64 * attended,
            Attention::Mla(m) => {
                let qk = (m.kv_lora_rank + m.qk_rope_head_dim) as f64;
                2.0 * heads * (qk + m.kv_lora_rank as f64) * attended
            }
        }
    }
}

/// The model configs in `fixtures/model-configs/`, for tests across the crate.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::ModelShape;

    pub fn text(name: &str) -> String {
        let path = format!(
            "{}/../fixtures/model-configs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn shape(name: &str) -> ModelShape {
        ModelShape::from_config_json(&text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub const LLAMA_8B: &str = "meta-llama__Llama-3.1-8B-Instruct";
    pub const LLAMA_8B_BASE: &str = "meta-llama__Llama-3.1-8B";
    pub const LLAMA_70B: &str = "meta-llama__Llama-3.1-70B-Instruct";
    pub const LLAMA_70B_BASE: &str = "meta-llama__Llama-3.1-70B";
    pub const QWEN25_7B: &str = "Qwen__Qwen2.5-7B-Instruct";
    pub const QWEN25_72B: &str = "Qwen__Qwen2.5-72B-Instruct";
    pub const QWEN3_30B_A3B: &str = "Qwen__Qwen3-30B-A3B";
    pub const MIXTRAL: &str = "mistralai__Mixtral-8x7B-v0.1";
    pub const DEEPSEEK_V3: &str = "deepseek-ai__DeepSeek-V3";
    pub const GPT_OSS_20B: &str = "openai__gpt-oss-20b";
}
