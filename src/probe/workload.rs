//! Prompts of exact length. On the completions endpoint a prompt is an array of random token
//! ids, so its length in tokens is exact; on chat it is text of common one-token words whose
//! count is calibrated against the engine's `usage.prompt_tokens`. Prompts are seeded: the same
//! seed, step, worker and request number give the same prompt.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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
        }
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
}
