//! The grid's cells: one batch size of one workload against one simulated engine, and the fault
//! injected there, if any. The CI grid (a few cells along every axis) and the full grid (every
//! combination, or a seeded draw of them). No cell is left out of the false-alarm rate: the
//! speculative-decoding cells on SGLang and llama.cpp once were (docs/PERFORMANCE.md).

use std::fmt;

use ceiling::sim::{Faults, Profile, SimFlavor};

use super::{FLAVORS, base_profile, no_faults, spec};

/// The probe's pattern in a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Wave,
    ClosedLoop,
}

/// What is wrong in a cell, and so which findings must come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// 30 % of requests answered with HTTP 500.
    Http500,
    /// The sequence cap is half the batch per rank.
    SeqCap,
    /// The KV cache holds two thirds of what the batch needs.
    SmallKv,
    /// The probe runs twice with one seed: the second run's prompts hit the prefix cache.
    WarmPrefix,
    /// Chat whose reasoning is longer than the output.
    ReasoningExhausted,
}

/// One cell of the grid.
#[derive(Debug, Clone)]
pub struct Cell {
    pub flavor: SimFlavor,
    pub profile: &'static str,
    pub pattern: Pattern,
    pub bs: u32,
    pub input: u32,
    pub output: u32,
    pub dp: u32,
    pub spec: bool,
    /// Chat with reasoning tokens (a quarter of the output) instead of completions.
    pub chat: bool,
    pub chunked_prefill: bool,
    pub prefix_cache: bool,
    pub time_scale: f64,
    pub fault: Fault,
}

impl Cell {
    /// A healthy wave cell on the vLLM flavor; the grids vary it.
    pub fn new(profile: &'static str, bs: u32, input: u32, output: u32) -> Cell {
        Cell {
            flavor: SimFlavor::Vllm,
            profile,
            pattern: Pattern::Wave,
            bs,
            input,
            output,
            dp: 1,
            spec: false,
            chat: false,
            chunked_prefill: true,
            prefix_cache: true,
            time_scale: 1.0,
            fault: Fault::None,
        }
    }

    /// Sequences per DP rank (the busiest rank's).
    pub fn bs_per_rank(&self) -> u32 {
        self.bs.div_ceil(self.dp)
    }

    /// KV blocks one rank needs to hold its batch whole (the look-ahead of spec drafts
    /// included).
    pub fn kv_blocks_needed(&self, block_size: u32) -> u32 {
        let look = if self.spec { 4 } else { 1 };
        self.bs_per_rank() * (self.input + self.output + look).div_ceil(block_size)
    }

    /// How long one request of the cell takes on its profile, nominal seconds: the whole
    /// batch's prefill, then the output at the batch's step time.
    pub fn request_s(&self) -> f64 {
        let p = base_profile(self.profile);
        let bs = self.bs_per_rank();
        let prompt = u64::from(bs) * u64::from(self.input);
        let budget = if self.chunked_prefill {
            u64::from(p.prefill_chunk_tokens)
        } else {
            prompt.max(1)
        };
        let prefill = p.k_prefill_s * prompt as f64 + p.t0_s * prompt.div_ceil(budget) as f64;
        let context = u64::from(bs) * u64::from(self.input + self.output / 2);
        prefill + f64::from(self.output) * p.step_s(bs, context, 0)
    }

    /// Runs the cell faster than real time where it would take more than a few seconds (three
    /// waves, or a request a third of the closed loop's 1.5 s); `None` where even 20× is too
    /// slow for a grid (over 20 s).
    fn scaled(mut self) -> Option<Cell> {
        let wall = match self.pattern {
            Pattern::Wave => 3.0 * self.request_s(),
            Pattern::ClosedLoop => 4.0 * self.request_s(),
        };
        self.time_scale = (wall / 4.0).clamp(1.0, 20.0);
        (wall / self.time_scale <= 20.0).then_some(self)
    }

    /// The simulator's profile for this cell.
    pub fn profile(&self) -> Profile {
        let mut p = base_profile(self.profile);
        p.prefix_cache = self.prefix_cache;
        if !self.chunked_prefill {
            p.prefill_chunk_tokens = 1 << 24;
        }
        if self.spec {
            p.spec = Some(spec());
        }
        if self.chat {
            p.reasoning_tokens = self.output / 4;
        }
        match self.fault {
            Fault::SeqCap => p.max_num_seqs = (self.bs_per_rank() / 2).max(1),
            Fault::SmallKv => p.kv_blocks = (self.kv_blocks_needed(p.block_size) * 2 / 3).max(1),
            Fault::ReasoningExhausted => p.reasoning_tokens = self.output + 8,
            _ => {}
        }
        let needed = self.kv_blocks_needed(p.block_size);
        if self.fault != Fault::SmallKv && needed * 10 > p.kv_blocks * 9 {
            // Healthy cells get the memory their batch needs, as a real node sized for it.
            p.kv_blocks = needed * 2;
        }
        if self.fault != Fault::SeqCap {
            p.max_num_seqs = p.max_num_seqs.max(self.bs_per_rank());
        }
        p.max_model_len = p.max_model_len.max(self.input + self.output + 16);
        p
    }

    pub fn faults(&self) -> Faults {
        match self.fault {
            Fault::Http500 => Faults {
                http_500: 0.3,
                ..no_faults()
            },
            _ => no_faults(),
        }
    }

    /// The probe's arguments (after `--url`).
    pub fn probe_args(&self, tokenizer: &str) -> Vec<String> {
        let mut a: Vec<String> = [
            "--batch-sizes",
            &self.bs.to_string(),
            "--input-len",
            &self.input.to_string(),
            "--output-len",
            &self.output.to_string(),
            "--dp",
            &self.dp.to_string(),
            "--gpu-interval",
            "0s",
            "--scrape-interval",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let more: &[&str] = match self.pattern {
            Pattern::Wave => &["--waves", "2", "--warmup", "1"],
            Pattern::ClosedLoop => &[
                "--pattern",
                "closed-loop",
                "--duration",
                "1500ms",
                "--warmup",
                "500ms",
            ],
        };
        a.extend(more.iter().map(|s| s.to_string()));
        if self.chat || self.fault == Fault::ReasoningExhausted {
            a.extend(["--endpoint", "chat", "--tokenizer", tokenizer].map(String::from));
        }
        if self.fault == Fault::WarmPrefix {
            a.extend(["--seed", "7"].map(String::from));
        }
        a
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}/{}/{:?} bs {} {}/{} dp {}{}{}{}{} x{}{}",
            self.flavor,
            self.profile,
            self.pattern,
            self.bs,
            self.input,
            self.output,
            self.dp,
            if self.spec { " spec" } else { "" },
            if self.chat { " chat" } else { "" },
            if self.chunked_prefill {
                ""
            } else {
                " unchunked"
            },
            if self.prefix_cache {
                ""
            } else {
                " no-prefix-cache"
            },
            self.time_scale,
            match self.fault {
                Fault::None => String::new(),
                f => format!(" fault {f:?}"),
            }
        )
    }
}

/// The CI grid: every axis moved at least once from a plain cell, small batches and lengths,
/// and two faults the findings must see.
pub fn ci_grid() -> Vec<Cell> {
    let llama = |bs, input, output| Cell::new("llama-8b-h100", bs, input, output);
    let tiny = |bs, input, output| Cell::new("tiny", bs, input, output);
    let with = |mut c: Cell, f: &dyn Fn(&mut Cell)| {
        f(&mut c);
        c
    };
    vec![
        // The case in small: a wave whose prefill takes several chunked steps.
        llama(24, 512, 96),
        llama(1, 64, 48),
        with(llama(8, 256, 48), &|c| c.flavor = SimFlavor::Sglang),
        with(llama(8, 256, 48), &|c| c.flavor = SimFlavor::Llamacpp),
        with(llama(1, 64, 48), &|c| {
            c.flavor = SimFlavor::Sglang;
            c.dp = 2;
        }),
        with(llama(6, 1024, 48), &|c| c.dp = 2),
        with(tiny(8, 64, 64), &|c| c.pattern = Pattern::ClosedLoop),
        with(tiny(4, 32, 48), &|c| c.spec = true),
        with(tiny(4, 64, 48), &|c| c.chat = true),
        with(llama(8, 512, 48), &|c| c.chunked_prefill = false),
        with(tiny(8, 128, 48), &|c| {
            c.prefix_cache = false;
            c.flavor = SimFlavor::Llamacpp;
        }),
        with(tiny(16, 64, 32), &|c| {
            c.pattern = Pattern::ClosedLoop;
            c.flavor = SimFlavor::Sglang;
        }),
        with(tiny(8, 64, 32), &|c| c.fault = Fault::Http500),
        with(tiny(8, 64, 32), &|c| c.fault = Fault::SeqCap),
    ]
}

/// Every combination of the full grid's axes (issue 13), healthy and with each fault, each run
/// faster than real time where it is long ([`Cell::scaled`], those too long even so left out);
/// or `n` of them drawn with `seed` (a fixed permutation, so a draw is reproducible).
pub fn full_grid(n: Option<usize>, seed: u64) -> Vec<Cell> {
    let mut all = Vec::new();
    for flavor in FLAVORS {
        for profile in ["tiny", "llama-8b-h100"] {
            for pattern in [Pattern::Wave, Pattern::ClosedLoop] {
                for bs in [1, 8, 64, 256, 512] {
                    for (input, output) in [(16, 16), (256, 128), (1024, 64), (8192, 32)] {
                        for dp in [1, 2] {
                            for (spec, chat, chunked, prefix) in switches() {
                                all.push(Cell {
                                    flavor,
                                    pattern,
                                    dp,
                                    spec,
                                    chat,
                                    chunked_prefill: chunked,
                                    prefix_cache: prefix,
                                    ..Cell::new(profile, bs, input, output)
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    let faults = [
        Fault::Http500,
        Fault::SeqCap,
        Fault::SmallKv,
        Fault::WarmPrefix,
        Fault::ReasoningExhausted,
    ];
    let healthy = all.len();
    for i in 0..healthy {
        // Each healthy cell once more with one fault, in turn.
        let mut c = all[i].clone();
        c.fault = faults[i % faults.len()];
        if c.fault == Fault::WarmPrefix {
            c.prefix_cache = true;
            c.flavor = if c.flavor == SimFlavor::Llamacpp {
                SimFlavor::Vllm
            } else {
                c.flavor
            };
        }
        if c.fault == Fault::SeqCap && c.bs_per_rank() < 2 {
            c.bs = 4 * c.dp;
        }
        all.push(c);
    }
    let all: Vec<Cell> = all.into_iter().filter_map(Cell::scaled).collect();
    match n {
        Some(n) => draw(all, n, seed),
        None => all,
    }
}

/// The on/off switches: speculative decoding, chat with reasoning, chunked prefill, prefix
/// cache; each off once with the rest at their default, and all at the default.
fn switches() -> [(bool, bool, bool, bool); 5] {
    [
        (false, false, true, true),
        (true, false, true, true),
        (false, true, true, true),
        (false, false, false, true),
        (false, false, true, false),
    ]
}

/// `n` cells of `all`, drawn without replacement by a seeded shuffle (a 64-bit LCG).
pub fn draw(mut all: Vec<Cell>, n: usize, seed: u64) -> Vec<Cell> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    for i in (1..all.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = (state >> 33) as usize % (i + 1);
        all.swap(i, j);
    }
    all.truncate(n);
    all
}
