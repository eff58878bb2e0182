//! Reading a Hugging Face `config.json` into a [`ModelShape`].
//!
//! The file is read as loose JSON and only the fields the shape needs are looked at, so extra
//! or oddly typed fields elsewhere never fail the parse. Multimodal checkpoints nest the language
//! model under `text_config`; its fields win, and the top level fills what it lacks (dtype,
//! quantization).

use serde_json::{Map, Value};

use super::{
    Attention, Family, MlaShape, ModelConfigError, ModelShape, MoeShape, Quantization,
    SlidingWindow, WeightDtype,
};

type Obj = Map<String, Value>;

/// A view of the config: `text_config` first, then the top level.
struct Fields<'a> {
    layers: Vec<&'a Obj>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.layers
            .iter()
            .find_map(|o| o.get(name).filter(|v| !v.is_null()))
    }

    fn u64(&self, name: &'static str) -> Result<Option<u64>, ModelConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let n = v.as_u64().ok_or(ModelConfigError::Invalid {
            field: name,
            problem: format!("{v}, not a non-negative integer"),
        })?;
        match limit(name) {
            Some(max) if n > max => Err(ModelConfigError::Invalid {
                field: name,
                problem: format!("{n}, more than any model has (at most {max} is read)"),
            }),
            _ => Ok(Some(n)),
        }
    }

    fn u32(&self, name: &'static str) -> Result<Option<u32>, ModelConfigError> {
        match self.u64(name)? {
            None => Ok(None),
            Some(v) => u32::try_from(v)
                .map(Some)
                .map_err(|_| ModelConfigError::Invalid {
                    field: name,
                    problem: format!("{v}, too large"),
                }),
        }
    }

    fn positive(&self, name: &'static str) -> Result<Option<u64>, ModelConfigError> {
        match self.u64(name)? {
            Some(0) => Err(ModelConfigError::Invalid {
                field: name,
                problem: "0".into(),
            }),
            v => Ok(v),
        }
    }

    fn require(&self, name: &'static str) -> Result<u64, ModelConfigError> {
        self.positive(name)?.ok_or(ModelConfigError::Missing(name))
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }

    fn str(&self, name: &str) -> Option<&'a str> {
        self.get(name).and_then(Value::as_str)
    }
}

/// The largest value read for a field that the parameter counts multiply: far above every
/// published model (hidden 16,384, intermediate 73,728, 384 experts, 160 layers, vocabulary
/// 262,144), low enough that no count of [`super::ParamCounts`] overflows `u64` (the worst,
/// `layers × experts × 3 × hidden × expert_intermediate`, stays under 2^60). `None`: not
/// multiplied (windows, layer strides), any `u64` is read.
fn limit(name: &str) -> Option<u64> {
    match name {
        "num_hidden_layers" | "num_nextn_predict_layers" => Some(1 << 10),
        "num_attention_heads"
        | "num_key_value_heads"
        | "n_routed_experts"
        | "num_experts"
        | "num_local_experts"
        | "num_experts_per_tok"
        | "n_shared_experts" => Some(1 << 12),
        "hidden_size"
        | "intermediate_size"
        | "moe_intermediate_size"
        | "shared_expert_intermediate_size"
        | "head_dim"
        | "kv_lora_rank"
        | "q_lora_rank"
        | "qk_nope_head_dim"
        | "qk_rope_head_dim"
        | "v_head_dim" => Some(1 << 18),
        "vocab_size" => Some(1 << 24),
        _ => None,
    }
}

fn family_of(model_type: &str) -> Family {
    match model_type {
        "llama" => Family::Llama,
        "mistral" => Family::Mistral,
        "mixtral" => Family::Mixtral,
        "qwen2" => Family::Qwen2,
        "qwen2_moe" => Family::Qwen2Moe,
        "qwen3" => Family::Qwen3,
        "qwen3_moe" => Family::Qwen3Moe,
        "gemma" => Family::Gemma,
        "gemma2" => Family::Gemma2,
        "gemma3" | "gemma3_text" => Family::Gemma3,
        "deepseek_v2" => Family::DeepseekV2,
        "deepseek_v3" => Family::DeepseekV3,
        "gpt_oss" => Family::GptOss,
        _ => Family::Other,
    }
}

pub(super) fn parse(text: &str) -> Result<ModelShape, ModelConfigError> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| ModelConfigError::Json(e.to_string()))?;
    let top = root.as_object().ok_or(ModelConfigError::NotAnObject)?;
    let mut layers = Vec::with_capacity(2);
    if let Some(inner) = top.get("text_config").and_then(Value::as_object) {
        layers.push(inner);
    }
    layers.push(top);
    let f = Fields { layers };
    let mut notes = Vec::new();

    let model_type = f.str("model_type").unwrap_or("").to_string();
    let family = family_of(&model_type);
    if family == Family::Other {
        notes.push(format!(
            "model_type {model_type:?} is not one ceiling knows; read as a llama-like dense model"
        ));
    }
    let architecture = f
        .get("architectures")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .map(str::to_string);

    let hidden = f.require("hidden_size")?;
    let layer_count = f.require("num_hidden_layers")?;
    let layer_count = u32::try_from(layer_count).map_err(|_| ModelConfigError::Invalid {
        field: "num_hidden_layers",
        problem: format!("{layer_count}, too large"),
    })?;
    let (heads, kv_heads, head_dim) = parse_heads(&f, hidden)?;
    let vocab = f.require("vocab_size")?;
    let tied_default = matches!(family, Family::Gemma | Family::Gemma2 | Family::Gemma3);
    let tied_embeddings = f.bool("tie_word_embeddings").unwrap_or(tied_default);
    let attention_bias = f.bool("attention_bias").unwrap_or(false);

    let attention = parse_attention(&f, family, attention_bias)?;

    let moe = parse_moe(&f, family, layer_count)?;
    let intermediate = match f.positive("intermediate_size")? {
        Some(i) => i,
        None if moe.as_ref().is_some_and(|m| m.moe_layers == layer_count) => 0,
        None => return Err(ModelConfigError::Missing("intermediate_size")),
    };

    let (dtype, quantization) = parse_dtype(&f, &mut notes)?;

    Ok(ModelShape {
        model_type,
        architecture,
        family,
        layers: layer_count,
        hidden,
        heads,
        kv_heads,
        head_dim,
        intermediate,
        vocab,
        tied_embeddings,
        mlp_bias: f.bool("mlp_bias").unwrap_or(false),
        norms_per_layer: if matches!(family, Family::Gemma2 | Family::Gemma3) {
            4
        } else {
            2
        },
        attention,
        moe,
        sliding: parse_sliding(&f, family, layer_count)?,
        mtp_layers: f.u32("num_nextn_predict_layers")?.unwrap_or(0),
        dtype,
        quantization,
        notes,
    })
}

/// The query heads, the KV heads (the query heads when absent or zero) and the head dimension
/// (`hidden / heads` when `head_dim` is absent).
fn parse_heads(f: &Fields<'_>, hidden: u64) -> Result<(u32, u32, u64), ModelConfigError> {
    let heads = f
        .u32("num_attention_heads")?
        .filter(|&h| h > 0)
        .ok_or(ModelConfigError::Missing("num_attention_heads"))?;
    let kv_heads = f
        .u32("num_key_value_heads")?
        .filter(|&k| k > 0)
        .unwrap_or(heads);
    let head_dim = match f.positive("head_dim")? {
        Some(d) => d,
        None => {
            if !hidden.is_multiple_of(u64::from(heads)) {
                return Err(ModelConfigError::Invalid {
                    field: "hidden_size",
                    problem: format!(
                        "{hidden}, not divisible by {heads} heads and no `head_dim` is given"
                    ),
                });
            }
            hidden / u64::from(heads)
        }
    };
    Ok((heads, kv_heads, head_dim))
}

/// MLA for the DeepSeek families, GQA (with the family's biases, norms and sinks) for the rest.
fn parse_attention(
    f: &Fields<'_>,
    family: Family,
    attention_bias: bool,
) -> Result<Attention, ModelConfigError> {
    Ok(match family {
        Family::DeepseekV2 | Family::DeepseekV3 => Attention::Mla(MlaShape {
            q_lora_rank: f.positive("q_lora_rank")?,
            kv_lora_rank: f.require("kv_lora_rank")?,
            qk_rope_head_dim: f.require("qk_rope_head_dim")?,
            qk_nope_head_dim: f.require("qk_nope_head_dim")?,
            v_head_dim: f.require("v_head_dim")?,
        }),
        _ => Attention::Gqa {
            qkv_bias: attention_bias || matches!(family, Family::Qwen2 | Family::Qwen2Moe),
            o_bias: attention_bias && !matches!(family, Family::Qwen2 | Family::Qwen2Moe),
            qk_norm: matches!(family, Family::Qwen3 | Family::Qwen3Moe | Family::Gemma3),
            sinks: family == Family::GptOss,
        },
    })
}

fn parse_moe(
    f: &Fields<'_>,
    family: Family,
    layers: u32,
) -> Result<Option<MoeShape>, ModelConfigError> {
    let experts = match f.u32("n_routed_experts")? {
        Some(e) => Some(e),
        None => match f.u32("num_local_experts")? {
            Some(e) => Some(e),
            None => f.u32("num_experts")?,
        },
    };
    let Some(experts) = experts.filter(|&e| e > 0) else {
        return Ok(None);
    };
    let experts_per_token = match f.u32("num_experts_per_tok")? {
        Some(k) => k,
        None => f
            .u32("experts_per_token")?
            .ok_or(ModelConfigError::Missing("num_experts_per_tok"))?,
    };
    if experts_per_token == 0 || experts_per_token > experts {
        return Err(ModelConfigError::Invalid {
            field: "num_experts_per_tok",
            problem: format!("{experts_per_token}, not between 1 and {experts} experts"),
        });
    }
    let expert_intermediate = match f.positive("moe_intermediate_size")? {
        Some(i) => i,
        None => f.require("intermediate_size")?,
    };

    // Which layers are MoE, by each family's rule in transformers.
    let is_moe: Box<dyn Fn(u32) -> bool> = match family {
        Family::DeepseekV2 | Family::DeepseekV3 => {
            let first_dense = f.u32("first_k_dense_replace")?.unwrap_or(0);
            let freq = f.u32("moe_layer_freq")?.unwrap_or(1).max(1);
            Box::new(move |i| i >= first_dense && i % freq == 0)
        }
        Family::Qwen2Moe | Family::Qwen3Moe => {
            let step = f.u32("decoder_sparse_step")?.unwrap_or(1).max(1);
            let dense: Vec<u64> = f
                .get("mlp_only_layers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            Box::new(move |i| !dense.contains(&u64::from(i)) && (i + 1) % step == 0)
        }
        _ => Box::new(|_| true),
    };
    let moe_layers = (0..layers).filter(|&i| is_moe(i)).count() as u32;

    let (shared_intermediate, shared_expert_gate) = match family {
        Family::Qwen2Moe => (
            f.u64("shared_expert_intermediate_size")?.unwrap_or(0),
            f.u64("shared_expert_intermediate_size")?.is_some(),
        ),
        _ => (
            u64::from(f.u32("n_shared_experts")?.unwrap_or(0)) * expert_intermediate,
            false,
        ),
    };

    Ok(Some(MoeShape {
        experts,
        experts_per_token,
        expert_intermediate,
        moe_layers,
        shared_intermediate,
        shared_expert_gate,
        expert_bias: family == Family::GptOss,
        router_bias: family == Family::GptOss || f.str("topk_method") == Some("noaux_tc"),
    }))
}

fn parse_sliding(
    f: &Fields<'_>,
    family: Family,
    layers: u32,
) -> Result<Option<SlidingWindow>, ModelConfigError> {
    let Some(window) = f.positive("sliding_window")? else {
        return Ok(None);
    };
    if f.bool("use_sliding_window") == Some(false) {
        return Ok(None);
    }
    let sliding_layers = if let Some(types) = f.get("layer_types").and_then(Value::as_array) {
        types
            .iter()
            .filter(|t| t.as_str() == Some("sliding_attention"))
            .count() as u32
    } else {
        match family {
            // Gemma2 alternates sliding and global layers, starting with sliding.
            Family::Gemma2 => layers.div_ceil(2),
            // Gemma3: every `sliding_window_pattern`-th layer is global.
            Family::Gemma3 => {
                let pattern = f.u32("sliding_window_pattern")?.unwrap_or(6).max(1);
                layers - layers / pattern
            }
            // Qwen2 with `use_sliding_window` slides from `max_window_layers` on.
            Family::Qwen2 | Family::Qwen2Moe | Family::Qwen3 | Family::Qwen3Moe => {
                if f.bool("use_sliding_window") != Some(true) {
                    return Ok(None);
                }
                layers - f.u32("max_window_layers")?.unwrap_or(0).min(layers)
            }
            _ => layers,
        }
    };
    Ok((sliding_layers > 0).then_some(SlidingWindow {
        window,
        layers: sliding_layers.min(layers),
    }))
}

fn parse_dtype(
    f: &Fields<'_>,
    notes: &mut Vec<String>,
) -> Result<(WeightDtype, Option<Quantization>), ModelConfigError> {
    let dtype = match f.str("torch_dtype").or_else(|| f.str("dtype")) {
        Some(s) => s.parse().map_err(|e: String| ModelConfigError::Invalid {
            field: "torch_dtype",
            problem: e,
        })?,
        None => {
            notes.push("no torch_dtype; weights assumed bf16".into());
            WeightDtype::Bf16
        }
    };
    let Some(q) = f.get("quantization_config").and_then(Value::as_object) else {
        return Ok((dtype, None));
    };
    let method = q
        .get("quant_method")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let bits = q.get("bits").and_then(Value::as_u64);
    let qdtype = match (method.as_str(), bits) {
        ("awq" | "gptq" | "marlin", Some(8)) => Some(WeightDtype::Int8),
        (m, _) => m.parse().ok(),
    };
    let Some(qdtype) = qdtype else {
        notes.push(format!(
            "quantization method {method:?} not known; weights counted as {dtype}; \
             give the weight dtype to override"
        ));
        return Ok((dtype, None));
    };
    let not_converted: Vec<&str> = q
        .get("modules_to_not_convert")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let experts_only = not_converted.iter().any(|m| m.contains("self_attn"));
    let block_size = q
        .get("weight_block_size")
        .and_then(Value::as_array)
        .and_then(|a| match a.as_slice() {
            [n, k] => Some([n.as_u64()?, k.as_u64()?]),
            _ => None,
        });
    Ok((
        dtype,
        Some(Quantization {
            method,
            dtype: qdtype,
            experts_only,
            block_size,
        }),
    ))
}
