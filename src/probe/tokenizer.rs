//! The model's own tokenizer (`--tokenizer tokenizer.json`, the Hugging Face format, read with
//! the `tokenizers` crate): which token ids are ordinary (no special or added tokens) for
//! token-id prompts, and which words are one token each, to build chat text whose length the
//! tokenizer confirms exactly.

use std::path::Path;

use tokenizers::Tokenizer;

use crate::exit::Failure;

/// A loaded tokenizer and what the prompt maker draws from it.
pub struct TokenVocab {
    tokenizer: Tokenizer,
    /// Ids of ordinary tokens, sorted.
    pub ids: Vec<u32>,
    /// Words (with their leading space where the vocabulary marks one) that encode to exactly
    /// one token, sorted.
    pub words: Vec<String>,
}

impl std::fmt::Debug for TokenVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVocab")
            .field("ids", &self.ids.len())
            .field("words", &self.words.len())
            .finish()
    }
}

/// Most words one token: enough variety without encoding the whole vocabulary.
const MAX_WORDS: usize = 4096;

impl TokenVocab {
    /// Reads `tokenizer.json`; a file that cannot be used is a usage error naming it.
    pub fn load(path: &Path) -> anyhow::Result<TokenVocab> {
        let not_usable = |e: &dyn std::fmt::Display| {
            Failure::Usage(format!(
                "--tokenizer {}: not a usable tokenizer.json ({e}); give the model's \
                 tokenizer.json or leave --tokenizer out",
                path.display()
            ))
        };
        let tokenizer = without_panics(|| Tokenizer::from_file(path))
            .map_err(|p| not_usable(&p))?
            .map_err(|e| not_usable(&e))?;
        let vocab = Self::from_tokenizer(tokenizer);
        if vocab.ids.len() < 100 || vocab.words.is_empty() {
            return Err(Failure::Usage(format!(
                "--tokenizer {}: only {} ordinary tokens and {} one-token words; give the \
                 model's full tokenizer.json",
                path.display(),
                vocab.ids.len(),
                vocab.words.len()
            ))
            .into());
        }
        Ok(vocab)
    }

    /// What a tokenizer offers the prompt maker.
    pub fn from_tokenizer(tokenizer: Tokenizer) -> TokenVocab {
        let added: std::collections::HashSet<u32> = tokenizer
            .get_added_tokens_decoder()
            .keys()
            .copied()
            .collect();
        let mut entries: Vec<(String, u32)> = tokenizer
            .get_vocab(false)
            .into_iter()
            .filter(|(_, id)| !added.contains(id))
            .collect();
        entries.sort_by_key(|(_, id)| *id);
        let ids: Vec<u32> = entries.iter().map(|(_, id)| *id).collect();
        let mut words = Vec::new();
        for (_, id) in &entries {
            if words.len() >= MAX_WORDS {
                break;
            }
            let Ok(text) = tokenizer.decode(&[*id], false) else {
                continue;
            };
            let bare = text.trim_start_matches(' ');
            if bare.len() < 2 || !bare.chars().all(|c| c.is_ascii_lowercase()) {
                continue;
            }
            // As text it must come back as the same single token, alone and after a word.
            let word = if text.starts_with(' ') {
                text.clone()
            } else {
                format!(" {bare}")
            };
            if count_of(&tokenizer, &format!("a{word}")) == Some(2) {
                words.push(word);
            }
        }
        words.sort();
        words.dedup();
        TokenVocab {
            tokenizer,
            ids,
            words,
        }
    }

    /// Tokens in `text` by this tokenizer, without special tokens; `None` if it fails.
    pub fn count(&self, text: &str) -> Option<usize> {
        count_of(&self.tokenizer, text)
    }
}

fn count_of(t: &Tokenizer, text: &str) -> Option<usize> {
    t.encode(text, false).ok().map(|e| e.get_ids().len())
}

/// Runs `f`, turning a panic into an error: the tokenizers library panics on some malformed
/// files (0.22: a syntax error inside `decoder` hits an `expect("Helper")`; found by the
/// `tokenizer` fuzz target). The panic hook is silenced meanwhile, so the user sees one line.
fn without_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    out.map_err(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("the tokenizers library failed on it: {what}")
    })
}

/// A small tokenizer for tests.
#[cfg(test)]
pub(crate) mod tests_support {
    /// A word-level tokenizer with a whitespace pre-tokenizer and two special tokens, as
    /// `tokenizer.json` text.
    pub fn word_level_json() -> String {
        let mut vocab = serde_json::Map::new();
        for (i, w) in ["<s>", "</s>", "[UNK]", "a"]
            .into_iter()
            .chain(["the", "of", "river", "market", "Cap", "x1"])
            .enumerate()
        {
            vocab.insert(w.to_string(), serde_json::json!(i));
        }
        for i in 0..200 {
            vocab.insert(format!("w{i:03}"), serde_json::json!(10 + i));
        }
        serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [
                {"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
            ],
            "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::word_level_json;
    use super::*;

    #[test]
    fn ordinary_ids_leave_out_added_tokens_and_words_are_one_token() {
        let t = Tokenizer::from_bytes(word_level_json().as_bytes()).unwrap();
        let v = TokenVocab::from_tokenizer(t);
        assert_eq!(v.ids.len(), 208, "210 entries less <s> and </s>");
        assert!(!v.ids.contains(&0) && !v.ids.contains(&1));
        // Lower-case ASCII words of two letters or more: not "a", "Cap", "x1", "[UNK]", "w000".
        assert_eq!(v.words, [" market", " of", " river", " the"]);
        assert_eq!(v.count("the river of the market"), Some(5));
    }

    #[test]
    fn a_file_that_is_not_a_tokenizer_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        std::fs::write(&p, "{\"not\": 1}").unwrap();
        let e = TokenVocab::load(&p).unwrap_err();
        assert!(e.to_string().starts_with("--tokenizer "), "{e}");
        assert!(matches!(
            e.downcast_ref::<Failure>(),
            Some(Failure::Usage(_))
        ));
    }

    /// The `tokenizer` fuzz target's crash: a syntax error inside `decoder` made the tokenizers
    /// library panic (`expect("Helper")`) where it should have returned an error.
    #[test]
    fn a_decoder_the_tokenizers_library_panics_on_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/tokenizers/word-level-tokenizer.json");
        let text = std::fs::read_to_string(fixture).unwrap();
        let broken = text.replacen("\"prefix\": \"##\"", "\"prefix\" \":##\"", 1);
        assert_ne!(broken, text);
        std::fs::write(&p, broken).unwrap();
        let e = TokenVocab::load(&p).unwrap_err();
        assert!(
            e.to_string()
                .contains("the tokenizers library failed on it"),
            "{e}"
        );
        assert!(matches!(
            e.downcast_ref::<Failure>(),
            Some(Failure::Usage(_))
        ));
    }
}
