"""Writes the tiny random-weight llama GGUF that ceiling's real-engine test serves with llama.cpp.

Usage: llamacpp_model.py --vocab ggml-vocab-llama-spm.gguf --out model.gguf

The architecture is llama: 8 layers, embedding 512, 8 heads (head dim 64), 8 KV heads, FFN 1536,
F16 matrices, F32 norms, output head tied to token_embd (~44 M parameters, 88 MB), so a decode
step takes a few milliseconds on one CPU thread: slow enough to measure, fast enough for CI. The
vocabulary (32,000 SentencePiece tokens, BOS=1, EOS=2) is copied from llama.cpp's vocab-only
GGUF; a ChatML template lets /v1/chat/completions work. Weights come from a fixed seed and the
writer adds nothing time-dependent, so the file is byte-for-byte reproducible. The output is
gibberish by design. Needs gguf==0.19.0 and numpy.
"""

import argparse

import gguf
import numpy as np

SEED = 20250611
N_LAYER = 8
N_EMBD = 512
N_HEAD = 8
N_HEAD_KV = 8
N_FF = 1536
N_CTX_TRAIN = 4096
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def field(reader, key):
    """The scalar value of one metadata key of the vocab GGUF."""
    f = reader.fields[key]
    return f.contents()


def copy_vocab(reader, writer):
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    scores = reader.fields["tokenizer.ggml.scores"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    writer.add_tokenizer_model(field(reader, "tokenizer.ggml.model"))
    writer.add_tokenizer_pre(field(reader, "tokenizer.ggml.pre"))
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(field(reader, "tokenizer.ggml.bos_token_id"))
    writer.add_eos_token_id(field(reader, "tokenizer.ggml.eos_token_id"))
    writer.add_unk_token_id(field(reader, "tokenizer.ggml.unknown_token_id"))
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    return len(tokens)


def matrix(rng, rows, cols):
    return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", required=True, help="llama.cpp/models/ggml-vocab-llama-spm.gguf")
    ap.add_argument("--out", required=True, help="where to write the model")
    args = ap.parse_args()

    vocab = gguf.GGUFReader(args.vocab)
    writer = gguf.GGUFWriter(args.out, "llama")
    writer.add_name("ceiling-tiny-llama")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    n_vocab = copy_vocab(vocab, writer)
    writer.add_vocab_size(n_vocab)

    rng = np.random.default_rng(SEED)
    head_dim = N_EMBD // N_HEAD
    ones = np.ones(N_EMBD, dtype=np.float32)
    writer.add_tensor("token_embd.weight", matrix(rng, n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", ones)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", ones)
        writer.add_tensor(p + "attn_q.weight", matrix(rng, N_EMBD, N_EMBD))
        writer.add_tensor(p + "attn_k.weight", matrix(rng, N_HEAD_KV * head_dim, N_EMBD))
        writer.add_tensor(p + "attn_v.weight", matrix(rng, N_HEAD_KV * head_dim, N_EMBD))
        writer.add_tensor(p + "attn_output.weight", matrix(rng, N_EMBD, N_EMBD))
        writer.add_tensor(p + "ffn_norm.weight", ones)
        writer.add_tensor(p + "ffn_gate.weight", matrix(rng, N_FF, N_EMBD))
        writer.add_tensor(p + "ffn_up.weight", matrix(rng, N_FF, N_EMBD))
        writer.add_tensor(p + "ffn_down.weight", matrix(rng, N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
