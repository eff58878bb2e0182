//! Which tensor-parallel (and expert-parallel) sizes the serving engines accept for a model.
//!
//! Tensor parallelism splits attention by heads and MLPs by their intermediate dimension, so
//! vLLM and SGLang refuse a size that does not divide them. The rules checked, per size:
//!
//! - `num_attention_heads % tp == 0`;
//! - GQA KV heads: `kv_heads % tp == 0` (each rank holds `kv_heads / tp`), or
//!   `tp % kv_heads == 0` (each KV head replicated on `tp / kv_heads` ranks: that many copies of
//!   the KV cache, so KV memory per GPU stops shrinking); MLA has no KV heads to split: every
//!   rank caches the whole latent;
//! - the dense MLP's `intermediate_size % tp == 0` (where the model has dense layers), the MoE
//!   expert and shared-expert intermediate sizes likewise unless experts are spread by EP, in
//!   which case `experts % ep == 0` and each expert stays whole on its rank;
//! - with block-quantized weights (DeepSeek-V3's fp8 128 × 128), each shard must hold whole
//!   blocks: `(intermediate / tp) % block == 0`;
//! - the GPUs: `max(tp, ep) ≤ gpus` (EP ranks are the TP × DP ranks);
//! - the vocabulary is padded, never rejected: engines pad the embedding and head to a multiple
//!   of `64 × tp` rows; the verdict says how many rows that adds.
//!
//! Pure arithmetic on a [`ModelShape`]; it knows no engine version's quirks beyond these.

use serde::Serialize;

use crate::model::{Attention, ModelShape};

/// Rows the engines pad the vocabulary to per TP rank (vLLM's `DEFAULT_VOCAB_PADDING_SIZE`).
pub const VOCAB_PADDING_PER_RANK: u64 = 64;

/// The verdict for one TP size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TpVerdict {
    pub tp: u32,
    pub ep: Option<u32>,
    pub ok: bool,
    /// Why an engine would refuse this size; empty when `ok`.
    pub problems: Vec<String>,
    /// What the size implies: heads per rank, KV replication, MLA, vocabulary padding.
    pub notes: Vec<String>,
    /// Attention heads per rank, when they divide.
    pub heads_per_rank: Option<u32>,
    /// KV heads per rank (GQA, when accepted); None for MLA.
    pub kv_heads_per_rank: Option<u32>,
    /// Copies of each KV head across the ranks (1 when split, `tp / kv_heads` when replicated,
    /// `tp` for MLA's latent).
    pub kv_copies: u32,
    pub gpus_needed: u32,
    pub vocab_padded: u64,
}

/// One verdict per size in `tp_sizes`, in order.
pub fn check_tp(
    shape: &ModelShape,
    tp_sizes: &[u32],
    ep: Option<u32>,
    gpus: Option<u32>,
) -> Vec<TpVerdict> {
    tp_sizes
        .iter()
        .map(|&tp| check_one(shape, tp, ep, gpus))
        .collect()
}

/// What the checks for one size found, in the order they ran.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    notes: Vec<String>,
}

/// Runs the checks in the order of the module docs; the verdict's problems and notes follow it.
fn check_one(shape: &ModelShape, tp: u32, ep: Option<u32>, gpus: Option<u32>) -> TpVerdict {
    let gpus_needed = tp.max(ep.unwrap_or(1));
    if tp == 0 || ep == Some(0) {
        return zero_size(shape, tp, ep, gpus_needed);
    }
    let mut found = Findings::default();
    let heads_per_rank = check_heads(shape.heads, tp, &mut found);
    let (kv_heads_per_rank, kv_copies) = check_kv_heads(shape, tp, &mut found);
    if let (Some(h), Some(kv)) = (heads_per_rank, kv_heads_per_rank) {
        found.notes.push(format!(
            "{h} attention head{} and {kv} KV head{} per rank",
            plural(h),
            plural(kv)
        ));
    }
    check_mlp(shape, tp, ep, &mut found);
    check_gpus(gpus_needed, gpus, &mut found);
    let vocab_padded = pad_vocab(shape.vocab, tp, &mut found);

    TpVerdict {
        tp,
        ep,
        ok: found.problems.is_empty(),
        problems: found.problems,
        notes: found.notes,
        heads_per_rank,
        kv_heads_per_rank,
        kv_copies,
        gpus_needed,
        vocab_padded,
    }
}

/// The verdict for a TP or EP size of 0: refused, and nothing else checked.
fn zero_size(shape: &ModelShape, tp: u32, ep: Option<u32>, gpus_needed: u32) -> TpVerdict {
    TpVerdict {
        tp,
        ep,
        ok: false,
        problems: vec!["tp and ep must be at least 1".to_string()],
        notes: Vec::new(),
        heads_per_rank: None,
        kv_heads_per_rank: None,
        kv_copies: 0,
        gpus_needed,
        vocab_padded: shape.vocab,
    }
}

/// `heads % tp == 0`; the attention heads per rank when they divide.
fn check_heads(heads: u32, tp: u32, found: &mut Findings) -> Option<u32> {
    let heads_per_rank = heads.is_multiple_of(tp).then(|| heads / tp);
    if heads_per_rank.is_none() {
        found.problems.push(format!(
            "{heads} attention heads are not divisible by tp {tp} ({heads} % {tp} = {})",
            heads % tp
        ));
    }
    heads_per_rank
}

/// GQA KV heads split or replicated, or MLA's latent cached whole on every rank; returns the KV
/// heads per rank (None for MLA or when refused) and the copies of each.
fn check_kv_heads(shape: &ModelShape, tp: u32, found: &mut Findings) -> (Option<u32>, u32) {
    match &shape.attention {
        Attention::Mla(m) => {
            let mut note = format!(
                "MLA: the KV cache is one latent of {} per token and layer, not split by heads",
                m.kv_lora_rank + m.qk_rope_head_dim
            );
            if tp > 1 {
                note.push_str(&format!("; each of the {tp} ranks caches it whole"));
            }
            found.notes.push(note);
            (None, tp)
        }
        Attention::Gqa { .. } => {
            let kv = shape.kv_heads;
            if kv.is_multiple_of(tp) {
                (Some(kv / tp), 1)
            } else if tp.is_multiple_of(kv) {
                let copies = tp / kv;
                found.notes.push(format!(
                    "{kv} KV heads replicated: each is held by {copies} ranks ({copies} copies of \
                     the KV cache), so KV memory per GPU stops shrinking past tp {kv}"
                ));
                (Some(1), copies)
            } else {
                found.problems.push(format!(
                    "{kv} KV heads are neither divisible by tp {tp} nor divide it"
                ));
                (None, 0)
            }
        }
    }
}

/// The MLP intermediate sizes split by TP: the dense layers', the shared expert's, and the
/// routed experts' unless EP spreads the experts whole over the ranks instead.
fn check_mlp(shape: &ModelShape, tp: u32, ep: Option<u32>, found: &mut Findings) {
    let block = shape.quantization.as_ref().and_then(|q| {
        q.block_size
            .filter(|_| !q.experts_only)
            .map(|b| (q.method.as_str(), b))
    });
    if shape.dense_layers() > 0 {
        check_split("intermediate_size", shape.intermediate, tp, block, found);
    }
    if let Some(m) = &shape.moe {
        if m.shared_intermediate > 0 {
            let what = "shared-expert intermediate size";
            check_split(what, m.shared_intermediate, tp, block, found);
        }
        match ep {
            Some(ep) => check_experts(m.experts, ep, found),
            None => check_split(
                "moe_intermediate_size",
                m.expert_intermediate,
                tp,
                block,
                found,
            ),
        }
    }
}

/// `size % tp == 0`, and with block-quantized weights (`block`: method and block size) each
/// shard a whole number of blocks.
fn check_split(
    what: &str,
    size: u64,
    tp: u32,
    block: Option<(&str, [u64; 2])>,
    found: &mut Findings,
) {
    let t = u64::from(tp);
    if !size.is_multiple_of(t) {
        found.problems.push(format!(
            "{what} {size} is not divisible by tp {tp} ({size} % {tp} = {})",
            size % t
        ));
    } else if let Some((method, [n, k])) = block {
        let shard = size / t;
        for b in [n, k] {
            if !shard.is_multiple_of(b) {
                found.problems.push(format!(
                    "{what} {size} / tp {tp} = {shard} is not a multiple of the {method} \
                     weight block {b}"
                ));
                break;
            }
        }
    }
}

/// `experts % ep == 0`: each EP rank holds whole experts.
fn check_experts(experts: u32, ep: u32, found: &mut Findings) {
    if !experts.is_multiple_of(ep) {
        found.problems.push(format!(
            "{experts} experts are not divisible by ep {ep} ({experts} % {ep} = {})",
            experts % ep
        ));
    } else {
        found
            .notes
            .push(format!("{} experts per EP rank, each whole", experts / ep));
    }
}

/// `max(tp, ep) ≤ gpus`, when the node's GPU count is known.
fn check_gpus(gpus_needed: u32, gpus: Option<u32>, found: &mut Findings) {
    if let Some(g) = gpus
        && gpus_needed > g
    {
        found
            .problems
            .push(format!("needs {gpus_needed} GPUs, the node has {g}"));
    }
}

/// The vocabulary padded to a multiple of `64 × tp` rows, with a note saying what that adds.
fn pad_vocab(vocab: u64, tp: u32, found: &mut Findings) -> u64 {
    let multiple = VOCAB_PADDING_PER_RANK * u64::from(tp);
    let vocab_padded = vocab.div_ceil(multiple) * multiple;
    if vocab_padded == vocab {
        found.notes.push(format!(
            "vocab {vocab} needs no padding (a multiple of {multiple})"
        ));
    } else {
        found.notes.push(format!(
            "vocab {vocab} padded to {vocab_padded} (+{} rows, a multiple of 64 × tp)",
            vocab_padded - vocab
        ));
    }
    vocab_padded
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
#[path = "tp_tests.rs"]
mod tests;
