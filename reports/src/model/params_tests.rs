//! Parameter counts of the fixture configs against the published figures, each recomputed by
//! hand from the formulas in the module docs before being asserted.

use super::*;
use crate::model::fixtures::{self, *};
use crate::model::{Family, KvDtype};

fn counts(name: &str) -> ParamCounts {
    ParamCounts::of(&fixtures::shape(name))
}

fn within(actual: f64, expected: f64, rel: f64) -> bool {
    ((actual - expected) / expected).abs() <= rel
}

#[test]
fn qwen25_72b_has_exactly_the_checkpoint_parameter_count() {
    // 152064·8192·2 + 80·(8192·8192·2 + 2·8192·1024 + 8192 + 2·1024 + 3·8192·29568 + 2·8192) + 8192
    assert_eq!(counts(QWEN25_72B).total(), 72_706_203_648);
}

#[test]
fn qwen25_7b_with_its_28_heads_and_qkv_bias() {
    let s = fixtures::shape(QWEN25_7B);
    assert_eq!((s.heads, s.kv_heads, s.head_dim), (28, 4, 128));
    assert_eq!(s.family, Family::Qwen2);
    assert_eq!(counts(QWEN25_7B).total(), 7_615_616_512);
}

#[test]
fn llama_31_dense_counts() {
    for name in [LLAMA_8B, LLAMA_8B_BASE] {
        let c = counts(name);
        assert_eq!(c.total(), 8_030_261_248, "{name}");
        assert_eq!(c.active(), c.total(), "{name}");
    }
    for name in [LLAMA_70B, LLAMA_70B_BASE] {
        assert_eq!(counts(name).total(), 70_553_706_496, "{name}");
    }
}

#[test]
fn mixtral_total_and_two_of_eight_experts_active() {
    let c = counts(MIXTRAL);
    assert_eq!(c.total(), 46_702_792_704);
    // 32 layers × 6 idle experts × 3·4096·14336 fewer.
    assert_eq!(c.active(), 12_879_925_248);
}

#[test]
fn qwen3_30b_a3b_total_and_active() {
    let s = fixtures::shape(QWEN3_30B_A3B);
    assert_eq!(s.head_dim, 128, "explicit head_dim wins over 2048 / 32");
    let m = s.moe.as_ref().unwrap();
    assert_eq!((m.experts, m.experts_per_token, m.moe_layers), (128, 8, 48));
    let c = counts(QWEN3_30B_A3B);
    assert_eq!(c.total(), 30_532_122_624); // ≈ 30.5 B
    assert_eq!(c.active(), 3_353_032_704); // ≈ 3.3 B, embedding included as Qwen counts
}

#[test]
fn deepseek_v3_counts_the_main_model_and_the_mtp_module_apart() {
    let s = fixtures::shape(DEEPSEEK_V3);
    assert!(s.is_mla());
    assert_eq!(s.dense_layers(), 3);
    assert_eq!(s.mtp_layers, 1);
    let c = counts(DEEPSEEK_V3);
    assert_eq!(c.total(), 671_026_419_200); // the published 671 B
    assert_eq!(c.active(), 37_552_297_472); // the published 37 B
    // The published 685 B is the checkpoint with its MTP module (and that module's own copies
    // of the embedding and head).
    assert_eq!(c.total() + c.mtp, 684_489_845_504);
}

#[test]
fn gpt_oss_20b_counts_and_openai_active_convention() {
    let s = fixtures::shape(GPT_OSS_20B);
    assert_eq!(s.head_dim, 64);
    assert_eq!(
        s.sliding.as_ref().map(|w| (w.window, w.layers)),
        Some((128, 12))
    );
    let c = counts(GPT_OSS_20B);
    assert_eq!(c.total(), 20_914_757_184); // 20.91 B
    assert_eq!(c.active(), 4_187_440_704);
    // OpenAI's 3.6 B leaves out the embedding lookup.
    assert_eq!(c.active_matmul(), 3_608_307_264);
}

#[test]
fn weight_bytes_follow_the_checkpoint_quantization() {
    let s = fixtures::shape(GPT_OSS_20B);
    let q = s.quantization.as_ref().unwrap();
    assert_eq!((q.dtype, q.experts_only), (WeightDtype::Mxfp4, true));
    let c = ParamCounts::of(&s);
    let w = WeightBytes::of(&s, &c, None);
    assert_eq!(w.linear_dtype, WeightDtype::Bf16);
    // The published checkpoint is 12.8 GiB.
    assert!(
        within(w.total(), 12.8 * (1u64 << 30) as f64, 0.01),
        "{}",
        w.total()
    );

    let s = fixtures::shape(DEEPSEEK_V3);
    let q = s.quantization.as_ref().unwrap();
    assert_eq!(
        (q.dtype, q.block_size),
        (WeightDtype::Fp8, Some([128, 128]))
    );
    let w = WeightBytes::of(&s, &ParamCounts::of(&s), None);
    // fp8 blocks, bf16 embedding / head / norms / routers.
    assert_eq!(w.total(), 672_987_104_256.0);

    let s = fixtures::shape(LLAMA_70B);
    let c = ParamCounts::of(&s);
    assert_eq!(
        WeightBytes::of(&s, &c, None).total(),
        2.0 * c.total() as f64
    );
    let fp8 = WeightBytes::of(&s, &c, Some(WeightDtype::Fp8));
    let wide = 2.0 * (c.embedding + c.lm_head + c.norms) as f64;
    assert_eq!(
        fp8.total(),
        wide + (c.total() - c.embedding - c.lm_head - c.norms) as f64
    );
}

#[test]
fn kv_bytes_per_token_gqa_mla_and_sliding() {
    let bf16 = KvDtype::Bf16;
    // 32 layers × 2 × 8 kv heads × 128 × 2 bytes.
    assert_eq!(
        fixtures::shape(LLAMA_8B).kv_bytes_per_token(bf16),
        131_072.0
    );
    assert_eq!(
        fixtures::shape(LLAMA_70B).kv_bytes_per_token(bf16),
        327_680.0
    );
    assert_eq!(
        fixtures::shape(QWEN25_7B).kv_bytes_per_token(bf16),
        57_344.0
    );
    assert_eq!(
        fixtures::shape(QWEN3_30B_A3B).kv_bytes_per_token(KvDtype::Fp8),
        49_152.0
    );
    // MLA: 61 layers × (512 + 64) × 2 bytes, whatever the 128 "kv heads".
    let ds = fixtures::shape(DEEPSEEK_V3);
    assert_eq!(ds.kv_bytes_per_token(bf16), 70_272.0);
    // gpt-oss: 12 full layers see the whole context, 12 sliding ones at most 128 tokens.
    let oss = fixtures::shape(GPT_OSS_20B);
    let per_layer = 2.0 * 8.0 * 64.0 * 2.0;
    assert_eq!(
        oss.kv_bytes_for_context(1000, bf16),
        per_layer * (12.0 * 1000.0 + 12.0 * 128.0)
    );
    assert_eq!(
        oss.kv_bytes_for_context(100, bf16),
        per_layer * 24.0 * 100.0
    );
}

#[test]
fn text_config_nesting_and_explicit_head_dim() {
    let cfg = r#"{
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "torch_dtype": "bfloat16",
        "text_config": {
            "model_type": "gemma3_text", "hidden_size": 2560, "num_hidden_layers": 34,
            "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
            "intermediate_size": 10240, "vocab_size": 262208, "sliding_window": 1024,
            "sliding_window_pattern": 6
        },
        "vision_config": {"hidden_size": 1152}
    }"#;
    let s = crate::model::ModelShape::from_config_json(cfg).unwrap();
    assert_eq!(s.family, Family::Gemma3);
    assert_eq!((s.hidden, s.head_dim, s.layers), (2560, 256, 34));
    assert!(s.tied_embeddings, "gemma ties its head by default");
    assert_eq!(s.norms_per_layer, 4);
    assert_eq!(s.sliding.as_ref().map(|w| w.layers), Some(34 - 5));
    assert_eq!(s.dtype, WeightDtype::Bf16);
}

#[test]
fn bad_configs_say_which_field() {
    use crate::model::{ModelConfigError, ModelShape};
    assert_eq!(
        ModelShape::from_config_json(r#"{"hidden_size": 8}"#),
        Err(ModelConfigError::Missing("num_hidden_layers"))
    );
    let e = ModelShape::from_config_json(
        r#"{"hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 4, "intermediate_size": 8}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "field `hidden_size` is \"big\", not a non-negative integer"
    );
    assert!(matches!(
        ModelShape::from_config_json("{ nope"),
        Err(ModelConfigError::Json(_))
    ));
    assert_eq!(
        ModelShape::from_config_json("[1]"),
        Err(ModelConfigError::NotAnObject)
    );
}

#[test]
fn mla_without_q_lora_and_a_dense_first_layer() {
    // Shaped like DeepSeek-V2-Lite (typed for this test, not a fixture): `q_lora_rank` null,
    // one dense layer, 64 routed + 2 shared experts, 6 per token.
    let cfg = r#"{
        "model_type": "deepseek_v2", "hidden_size": 2048, "num_hidden_layers": 27,
        "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 10944,
        "vocab_size": 102400, "q_lora_rank": null, "kv_lora_rank": 512,
        "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
        "n_routed_experts": 64, "n_shared_experts": 2, "num_experts_per_tok": 6,
        "moe_intermediate_size": 1408, "first_k_dense_replace": 1, "moe_layer_freq": 1,
        "topk_method": "greedy", "torch_dtype": "bfloat16"
    }"#;
    let s = crate::model::ModelShape::from_config_json(cfg).unwrap();
    assert_eq!(s.dense_layers(), 1);
    let c = ParamCounts::of(&s);
    // 15.7 B total and about 2.4 B active without the embedding, as published for V2-Lite.
    assert_eq!(c.total(), 15_706_484_224);
    assert!(
        within(c.active_matmul() as f64, 2.45e9, 0.01),
        "{}",
        c.active_matmul()
    );
    assert_eq!(
        s.moe.as_ref().map(|m| m.shared_intermediate),
        Some(2 * 1408)
    );
}

/// Every field at the largest value read, MoE with MLA and an MTP module: each count is a
/// number, none overflows. Before the limits a `hidden_size` of 10^13 overflowed the attention
/// count's `hidden × hidden` (a panic in a debug build, a wrong count in release); seen reading
/// the code for the `model_config` fuzz target.
#[test]
fn counts_at_every_field_limit_do_not_overflow() {
    let text = serde_json::json!({
        "model_type": "deepseek_v3",
        "hidden_size": 1 << 18, "intermediate_size": 1 << 18, "moe_intermediate_size": 1 << 18,
        "num_hidden_layers": 1 << 10, "num_nextn_predict_layers": 1 << 10,
        "num_attention_heads": 1 << 12, "num_key_value_heads": 1 << 12,
        "n_routed_experts": 1 << 12, "num_experts_per_tok": 1 << 12, "n_shared_experts": 1 << 12,
        "kv_lora_rank": 1 << 18, "q_lora_rank": 1 << 18, "qk_nope_head_dim": 1 << 18,
        "qk_rope_head_dim": 1 << 18, "v_head_dim": 1 << 18, "vocab_size": 1 << 24,
    })
    .to_string();
    let s = ModelShape::from_config_json(&text).expect("at the limits");
    let c = ParamCounts::of(&s);
    assert!(c.total() > 1 << 59, "{}", c.total());
    assert!(c.active() > 0 && c.active_matmul() > 0);
    let b = WeightBytes::of(&s, &c, None);
    assert!(b.total().is_finite());
}

/// One past the limit is refused, naming the field.
#[test]
fn a_dimension_past_any_model_is_refused_by_name() {
    let text = fixtures::text(LLAMA_8B)
        .replace("\"hidden_size\": 4096", "\"hidden_size\": 10000000000000");
    let err = ModelShape::from_config_json(&text).expect_err("refused");
    assert!(err.to_string().contains("hidden_size"), "{err}");
    assert!(err.to_string().contains("10000000000000"), "{err}");
}
