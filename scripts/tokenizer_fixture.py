#!/usr/bin/env python3
"""Writes fixtures/tokenizers/word-level-tokenizer.json: a Hugging Face tokenizer.json with a
WordLevel model over 400 made-up three-letter words, a whitespace pre-tokenizer and three special
tokens. One word is one token, as `ceiling sim` counts text prompts. Deterministic."""
import itertools
import json
import pathlib

cons, vow = "bdfgklmnprstvz", "aeiou"
words = ["".join(t) for t in itertools.product(cons, vow, cons)][:400]
special = ["<s>", "</s>", "<unk>"]
vocab = {w: i for i, w in enumerate(special + words)}
tok = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [
        {"id": i, "content": w, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, w in enumerate(special)
    ],
    "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
    "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
}
out = pathlib.Path(__file__).resolve().parent.parent / "fixtures/tokenizers/word-level-tokenizer.json"
out.write_text(json.dumps(tok, indent=1))
