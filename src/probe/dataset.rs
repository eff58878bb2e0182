//! Request lengths from a dataset file, read in full and checked before anything is sent: a
//! malformed file is a usage error that names its line. Two shapes:
//!
//! - ShareGPT JSON: a list of `{"conversations": [{"from": "human", "value": ...}, {"from":
//!   "gpt", "value": ...}, ...]}`; as vLLM's bench reads it, each conversation gives one
//!   request: its first turn is the prompt, its second the completion whose length is the
//!   output length. Conversations of fewer than two turns are skipped (and counted).
//! - JSONL, one object a line: `{"prompt": "..."}` (the output length is `--output-len`) or
//!   `{"prompt_len": N, "output_len": M}`.
//!
//! By default only the lengths are kept: each request then sends a prompt of exactly that many
//! tokens ([`super::workload`]), so the mix of lengths is the dataset's and the input length is
//! exact on the completions endpoint. With `--dataset-prompts text` the prompts' text is kept
//! too and sent as it is (a `{"prompt_len"}` line still gets a prompt made to length). Text is
//! counted with `--tokenizer` where given, else estimated at four characters a token (the load
//! says so).

use std::path::Path;

use serde::Deserialize;

use super::tokenizer::TokenVocab;
use crate::exit::Failure;

/// Characters per token when no tokenizer counts them (English text under BPE vocabularies).
const CHARS_PER_TOKEN: f64 = 4.0;

/// A dataset's request lengths, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `(input_len, output_len)` per entry.
    pub lengths: Vec<(u32, u32)>,
    /// Each entry's prompt text, where it has one and the load kept it; empty otherwise.
    pub texts: Vec<Option<String>>,
    /// Conversations skipped for having fewer than two turns.
    pub skipped: u32,
    /// Lengths estimated from characters (no `--tokenizer`).
    pub estimated: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    #[expect(
        dead_code,
        reason = "read to check the shape; the order says who speaks"
    )]
    from: String,
    value: String,
}

#[derive(Deserialize)]
struct Conversation {
    conversations: Vec<Turn>,
}

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Line {
    Lengths { prompt_len: u32, output_len: u32 },
    Prompt { prompt: String },
}

fn refuse(path: &Path, what: String) -> anyhow::Error {
    Failure::Usage(format!(
        "--dataset {}: {what}; give ShareGPT JSON or JSONL of {{\"prompt\": ...}} or {{\"prompt_len\": N, \"output_len\": M}}",
        path.display()
    ))
    .into()
}

impl Dataset {
    /// Reads `path`; `output_len` is the output of a `{"prompt"}` line; `keep_text` keeps each
    /// prompt's text to send. Refused (a usage error naming the line) when the file cannot be
    /// read, is malformed, or has no usable entry.
    pub fn load(
        path: &Path,
        vocab: Option<&TokenVocab>,
        output_len: u32,
        keep_text: bool,
    ) -> anyhow::Result<Dataset> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| refuse(path, format!("cannot be read ({e})")))?;
        let count = |s: &str| -> u32 {
            let n = vocab.and_then(|v| v.count(s)).map_or_else(
                || (s.chars().count() as f64 / CHARS_PER_TOKEN).ceil(),
                |n| n as f64,
            );
            n.max(1.0) as u32
        };
        let mut set = if text.trim_start().starts_with('[') {
            Self::sharegpt(path, &text, &count)?
        } else {
            Self::jsonl(path, &text, &count, output_len)?
        };
        set.estimated = vocab.is_none();
        if !keep_text {
            set.texts = Vec::new();
        }
        if let Some(i) = set.lengths.iter().position(|&(_, o)| o < 2) {
            return Err(refuse(
                path,
                format!(
                    "entry {} asks for {} output tokens; TPOT needs at least 2",
                    i + 1,
                    set.lengths[i].1
                ),
            ));
        }
        if set.lengths.is_empty() {
            return Err(refuse(path, "holds no request".into()));
        }
        Ok(set)
    }

    fn sharegpt(path: &Path, text: &str, count: &dyn Fn(&str) -> u32) -> anyhow::Result<Dataset> {
        let convs: Vec<Conversation> = serde_json::from_str(text).map_err(|e| {
            refuse(
                path,
                format!("line {}: not a ShareGPT conversation ({e})", e.line()),
            )
        })?;
        let mut lengths = Vec::with_capacity(convs.len());
        let mut texts = Vec::with_capacity(convs.len());
        let mut skipped = 0;
        for c in convs {
            match c.conversations.as_slice() {
                [prompt, answer, ..] => {
                    lengths.push((count(&prompt.value), count(&answer.value)));
                    texts.push(c.conversations.into_iter().next().map(|t| t.value));
                }
                _ => skipped += 1,
            }
        }
        Ok(Dataset {
            lengths,
            texts,
            skipped,
            estimated: false,
        })
    }

    fn jsonl(
        path: &Path,
        text: &str,
        count: &dyn Fn(&str) -> u32,
        output_len: u32,
    ) -> anyhow::Result<Dataset> {
        let mut lengths = Vec::new();
        let mut texts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Line = serde_json::from_str(line).map_err(|_| {
                refuse(
                    path,
                    format!("line {} is neither {{\"prompt\": TEXT}} nor {{\"prompt_len\": N, \"output_len\": M}}: {}", i + 1, clip(line)),
                )
            })?;
            lengths.push(match entry {
                Line::Lengths {
                    prompt_len,
                    output_len,
                } => {
                    if prompt_len == 0 {
                        return Err(refuse(
                            path,
                            format!("line {}: prompt_len must be at least 1", i + 1),
                        ));
                    }
                    texts.push(None);
                    (prompt_len, output_len)
                }
                Line::Prompt { prompt } => {
                    let n = count(&prompt);
                    texts.push(Some(prompt));
                    (n, output_len)
                }
            });
        }
        Ok(Dataset {
            lengths,
            texts,
            skipped: 0,
            estimated: false,
        })
    }

    /// The longest input and output of the set.
    pub fn longest(&self) -> (u32, u32) {
        let i = self.lengths.iter().map(|l| l.0).max().unwrap_or(0);
        let o = self.lengths.iter().map(|l| l.1).max().unwrap_or(0);
        (i, o)
    }
}

fn clip(line: &str) -> String {
    crate::printable::clip(line, 80)
}

#[cfg(test)]
mod tests;
