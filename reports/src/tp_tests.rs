//! The TP verdicts for every fixture config, derived by hand from the rules in the module docs.

use super::*;
use crate::model::fixtures::{self, *};

const SIZES: [u32; 7] = [1, 2, 4, 8, 16, 32, 64];

/// The sizes among [`SIZES`] that pass.
fn accepted(name: &str, ep: Option<u32>) -> Vec<u32> {
    check_tp(&fixtures::shape(name), &SIZES, ep, None)
        .into_iter()
        .filter(|v| v.ok)
        .map(|v| v.tp)
        .collect()
}

fn verdict(name: &str, tp: u32) -> TpVerdict {
    check_tp(&fixtures::shape(name), &[tp], None, None).remove(0)
}

#[test]
fn qwen25_7b_28_heads_reject_tp_8() {
    assert_eq!(accepted(QWEN25_7B, None), [1, 2, 4]);
    let v = verdict(QWEN25_7B, 8);
    assert_eq!(
        v.problems,
        ["28 attention heads are not divisible by tp 8 (28 % 8 = 4)"]
    );
    // 4 KV heads on 8 ranks would be fine on their own.
    assert_eq!((v.kv_heads_per_rank, v.kv_copies), (Some(1), 2));
    let v = verdict(QWEN25_7B, 4);
    assert_eq!(
        (v.heads_per_rank, v.kv_heads_per_rank, v.kv_copies),
        (Some(7), Some(1), 1)
    );
    // tp 7 divides the heads but not the 4 KV heads nor 18944.
    let v = verdict(QWEN25_7B, 7);
    assert!(!v.ok);
    assert!(v.problems.iter().any(|p| p.contains("4 KV heads")), "{v:?}");
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("intermediate_size 18944")),
        "{v:?}"
    );
}

#[test]
fn llama_31_accepts_up_to_its_head_count_with_kv_replication() {
    assert_eq!(accepted(LLAMA_8B, None), [1, 2, 4, 8, 16, 32]);
    assert_eq!(accepted(LLAMA_70B, None), [1, 2, 4, 8, 16, 32, 64]);
    assert_eq!(accepted(LLAMA_70B_BASE, None), [1, 2, 4, 8, 16, 32, 64]);
    let v = verdict(LLAMA_70B, 16);
    assert_eq!(
        (v.heads_per_rank, v.kv_heads_per_rank, v.kv_copies),
        (Some(4), Some(1), 2)
    );
    assert!(
        v.notes
            .iter()
            .any(|n| n.starts_with("8 KV heads replicated: each is held by 2 ranks"))
    );
    let v = verdict(LLAMA_8B, 64);
    assert_eq!(
        v.problems,
        ["32 attention heads are not divisible by tp 64 (32 % 64 = 32)"]
    );
}

#[test]
fn qwen25_72b_accepts_up_to_64_and_pads_the_vocab_from_tp_16() {
    assert_eq!(accepted(QWEN25_72B, None), [1, 2, 4, 8, 16, 32, 64]);
    // 152064 = 64 × 2376: a multiple of 64 × 8, not of 64 × 16.
    assert_eq!(verdict(QWEN25_72B, 8).vocab_padded, 152_064);
    let v = verdict(QWEN25_72B, 16);
    assert_eq!(v.vocab_padded, 152_576);
    assert!(v.ok, "padding never rejects");
    assert!(
        v.notes
            .iter()
            .any(|n| n == "vocab 152064 padded to 152576 (+512 rows, a multiple of 64 × tp)")
    );
}

#[test]
fn moe_models_check_the_expert_intermediate_or_the_expert_count() {
    // Qwen3-30B-A3B: 32 heads, 4 KV heads, experts of 768 (768 / 64 = 12).
    assert_eq!(accepted(QWEN3_30B_A3B, None), [1, 2, 4, 8, 16, 32]);
    // Mixtral: 32 heads, 8 KV heads, experts of 14336.
    assert_eq!(accepted(MIXTRAL, None), [1, 2, 4, 8, 16, 32]);
    // gpt-oss-20b: 64 heads, 8 KV heads, experts of 2880 = 2⁶ × 45.
    assert_eq!(accepted(GPT_OSS_20B, None), [1, 2, 4, 8, 16, 32, 64]);

    let s = fixtures::shape(MIXTRAL);
    let v = check_tp(&s, &[2], Some(8), Some(8)).remove(0);
    assert!(v.ok, "{v:?}");
    assert!(
        v.notes
            .iter()
            .any(|n| n == "1 experts per EP rank, each whole")
    );
    let v = check_tp(&s, &[2], Some(3), None).remove(0);
    assert_eq!(
        v.problems,
        ["8 experts are not divisible by ep 3 (8 % 3 = 2)"]
    );
    let s = fixtures::shape(QWEN3_30B_A3B);
    assert!(check_tp(&s, &[4], Some(128), None)[0].ok);
}

#[test]
fn deepseek_v3_mla_and_fp8_blocks_stop_at_tp_16() {
    // Heads 128 divide every size, but 18432 / 32 = 576 and 2048 / 32 = 64 break the
    // 128 × 128 fp8 blocks.
    assert_eq!(accepted(DEEPSEEK_V3, None), [1, 2, 4, 8, 16]);
    let v = verdict(DEEPSEEK_V3, 32);
    assert_eq!(
        v.problems,
        [
            "intermediate_size 18432 / tp 32 = 576 is not a multiple of the fp8 weight block 128",
            "shared-expert intermediate size 2048 / tp 32 = 64 is not a multiple of the fp8 weight block 128",
            "moe_intermediate_size 2048 / tp 32 = 64 is not a multiple of the fp8 weight block 128",
        ]
    );
    let v = verdict(DEEPSEEK_V3, 8);
    assert_eq!((v.kv_heads_per_rank, v.kv_copies), (None, 8));
    assert!(
        v.notes[0].starts_with("MLA: the KV cache is one latent of 576"),
        "{v:?}"
    );
    // With EP the routed experts stay whole: only the dense and shared parts are split.
    let s = fixtures::shape(DEEPSEEK_V3);
    let v = check_tp(&s, &[8], Some(8), Some(8)).remove(0);
    assert!(v.ok, "{v:?}");
}

#[test]
fn gpu_count_and_zero_sizes_are_rejected() {
    let s = fixtures::shape(LLAMA_70B);
    let v = check_tp(&s, &[8], None, Some(4)).remove(0);
    assert_eq!(v.problems, ["needs 8 GPUs, the node has 4"]);
    let v = check_tp(&s, &[0], None, None).remove(0);
    assert!(!v.ok);
}
