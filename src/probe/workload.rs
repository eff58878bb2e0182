//! Prompts of exact length. On the completions endpoint a prompt is an array of random token
//! ids, so its length in tokens is exact; on chat it is text of one-token words whose count is
//! calibrated against the engine's `usage.prompt_tokens`. With the model's tokenizer
//! (`--tokenizer`) the ids are drawn from its ordinary tokens and the chat text is built from its
//! one-token words and counted by it, so the length is exact there too. Prompts are seeded: the
//! same seed, step, worker and request number give the same prompt.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::tokenizer::TokenVocab;

/// The lowest token id used: low ids are control and byte tokens in most vocabularies.
const MIN_ID: u32 = 100;
/// Without a known vocabulary, ids stay below this (every common vocabulary is larger).
const DEFAULT_MAX_ID: u32 = 10_000;

/// Common English words that are one token in the Llama, Qwen, Mistral and GPT vocabularies
/// when preceded by a space.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "people", "water",
    "house", "world", "school", "money", "music", "river", "market", "system", "window",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Tokens(Vec<u32>),
    Text(String),
}

/// Makes the prompts of a run.
#[derive(Debug, Clone)]
pub struct PromptMaker {
    seed: u64,
    max_id: u32,
    /// Chat: template tokens the engine adds around the text (from calibration).
    pub chat_overhead_tokens: u32,
    /// Reuse one prompt per worker (`--prefix-cache warm`).
    pub reuse: bool,
    /// The model's tokenizer, when given.
    pub vocab: Option<Arc<TokenVocab>>,
}

impl PromptMaker {
    pub fn new(seed: u64, vocab_size: Option<u32>, reuse: bool) -> Self {
        let max_id = vocab_size
            .map(|v| v.saturating_sub(MIN_ID).max(MIN_ID + 1))
            .unwrap_or(DEFAULT_MAX_ID);
        PromptMaker {
            seed,
            max_id,
            chat_overhead_tokens: 0,
            reuse,
            vocab: None,
        }
    }

    /// Draws ids and words from the model's tokenizer.
    pub fn with_vocab(mut self, vocab: Arc<TokenVocab>) -> Self {
        self.vocab = Some(vocab);
        self
    }

    fn rng(&self, step: u32, worker: u32, n: u64) -> SmallRng {
        let n = if self.reuse { 0 } else { n };
        // A simple, stable mix of the coordinates; SmallRng spreads it.
        let key = self.seed
            ^ (u64::from(step) << 48)
            ^ (u64::from(worker) << 24)
            ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        SmallRng::seed_from_u64(key)
    }

    /// `len` random token ids.
    pub fn tokens(&self, step: u32, worker: u32, n: u64, len: u32) -> Prompt {
        let mut rng = self.rng(step, worker, n);
        if let Some(v) = &self.vocab {
            return Prompt::Tokens(
                (0..len)
                    .map(|_| v.ids[rng.random_range(0..v.ids.len())])
                    .collect(),
            );
        }
        Prompt::Tokens(
            (0..len)
                .map(|_| rng.random_range(MIN_ID..self.max_id))
                .collect(),
        )
    }

    /// Text of about `len` tokens once the chat template is added.
    pub fn text(&self, step: u32, worker: u32, n: u64, len: u32) -> Prompt {
        let mut rng = self.rng(step, worker, n);
        let words = len.saturating_sub(self.chat_overhead_tokens).max(1);
        if let Some(v) = &self.vocab {
            return Prompt::Text(exact_text(v, &mut rng, words as usize));
        }
        let mut s = String::with_capacity(words as usize * 6);
        for i in 0..words {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(WORDS[rng.random_range(0..WORDS.len())]);
        }
        Prompt::Text(s)
    }
}

/// Text of `target` tokens by `v`'s count: one-token words, then a few corrections should the
/// tokenizer merge or split anything.
fn exact_text(v: &TokenVocab, rng: &mut SmallRng, target: usize) -> String {
    let mut words: Vec<&str> = (0..target)
        .map(|_| v.words[rng.random_range(0..v.words.len())].as_str())
        .collect();
    let join = |w: &[&str]| w.concat().trim_start().to_string();
    for _ in 0..32 {
        let text = join(&words);
        match v.count(&text) {
            Some(n) if n == target => return text,
            Some(n) if n > target => {
                words.truncate(words.len().saturating_sub(n - target).max(1));
            }
            Some(n) => {
                words.extend(
                    (n..target).map(|_| v.words[rng.random_range(0..v.words.len())].as_str()),
                );
            }
            None => break,
        }
    }
    join(&words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_prompts_have_exact_length_and_stay_in_range() {
        let m = PromptMaker::new(7, Some(32_000), false);
        let Prompt::Tokens(ids) = m.tokens(0, 3, 5, 512) else {
            panic!("expected tokens")
        };
        assert_eq!(ids.len(), 512);
        assert!(ids.iter().all(|&i| (MIN_ID..31_900).contains(&i)));
    }

    #[test]
    fn cold_prompts_differ_per_request_and_warm_ones_repeat() {
        let cold = PromptMaker::new(1, None, false);
        assert_ne!(cold.tokens(0, 0, 1, 64), cold.tokens(0, 0, 2, 64));
        assert_ne!(cold.tokens(0, 0, 1, 64), cold.tokens(0, 1, 1, 64));
        assert_eq!(cold.tokens(0, 0, 1, 64), cold.tokens(0, 0, 1, 64));
        let warm = PromptMaker::new(1, None, true);
        assert_eq!(warm.tokens(0, 0, 1, 64), warm.tokens(0, 0, 2, 64));
    }

    #[test]
    fn text_prompts_leave_room_for_the_chat_template() {
        let mut m = PromptMaker::new(1, None, false);
        m.chat_overhead_tokens = 10;
        let Prompt::Text(t) = m.text(0, 0, 0, 100) else {
            panic!("expected text")
        };
        assert_eq!(t.split(' ').count(), 90);
    }

    #[test]
    fn with_a_tokenizer_ids_are_ordinary_and_text_counts_exactly() {
        let json = crate::probe::tokenizer::tests_support::word_level_json();
        let t = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
        let vocab = Arc::new(TokenVocab::from_tokenizer(t));
        let mut m = PromptMaker::new(3, None, false).with_vocab(vocab.clone());
        let Prompt::Tokens(ids) = m.tokens(0, 0, 0, 300) else {
            panic!("expected tokens")
        };
        assert_eq!(ids.len(), 300);
        assert!(ids.iter().all(|i| vocab.ids.contains(i)));
        m.chat_overhead_tokens = 7;
        let Prompt::Text(t) = m.text(0, 0, 0, 100) else {
            panic!("expected text")
        };
        assert_eq!(vocab.count(&t), Some(93));
        assert!(!t.starts_with(' '));
    }
}
