//! Engine profiles: the parameters of the simulated engine's cost model and capacity, read from
//! TOML or taken from the built-ins. Owns validation of those parameters; it does not run
//! anything.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Speculative decoding: `num_speculative_tokens` drafts per sequence per step, each accepted
/// in turn with probability `acceptance_rate` until the first rejection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecConfig {
    pub num_speculative_tokens: u32,
    pub acceptance_rate: f64,
}

/// The simulated engine's parameters. Step time (nominal, before `--time-scale`) is
/// `t0_s + k_seq_s × running + k_ctx_s × Σ context tokens + k_prefill_s × prefill tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// The served model name (`/v1/models` id, `model_name` label).
    pub model: String,
    pub max_model_len: u32,
    pub vocab_size: u32,
    /// Fixed cost of one engine step, seconds.
    pub t0_s: f64,
    /// Cost per running sequence, seconds.
    pub k_seq_s: f64,
    /// Cost per context token summed over the running sequences, seconds.
    pub k_ctx_s: f64,
    /// Cost per prefill token computed in the step, seconds.
    pub k_prefill_s: f64,
    /// Prefill token budget of one step: prompts are computed in chunks of at most this many
    /// tokens per step, shared by the prefilling sequences (decode tokens do not count).
    pub prefill_chunk_tokens: u32,
    pub max_num_seqs: u32,
    /// KV capacity per DP rank, in blocks of `block_size` tokens.
    pub kv_blocks: u32,
    pub block_size: u32,
    #[serde(default)]
    pub spec: Option<SpecConfig>,
    /// Tokens streamed as `reasoning_content` before the answer on chat requests (0 = none).
    #[serde(default)]
    pub reasoning_tokens: u32,
    #[serde(default)]
    pub prefix_cache: bool,
    /// SGLang's `--decode-log-interval`: scheduler gauges refresh every this many decode steps.
    #[serde(default = "default_sglang_interval")]
    pub sglang_gauge_interval_steps: u32,
    /// Probability that each token after `min_tokens` is EOS when `ignore_eos` is off.
    #[serde(default = "default_eos_probability")]
    pub eos_probability: f64,
    /// llama.cpp's `-b/--batch-size` (logical batch, default 2048): a step's tokens go to
    /// `llama_decode()` in calls of at most this many, each counted by `n_decode_total`.
    #[serde(default = "default_n_batch")]
    pub n_batch: u32,
    /// Seed of the scheduler's random choices (EOS, spec acceptance); rank r uses seed + r.
    #[serde(default)]
    pub seed: u64,
    /// Multiplies every step's time: a slower night for the nightly history (`1.08` is +8 %).
    #[serde(default = "default_step_scale")]
    pub step_scale: f64,
    /// What the simulated GPUs report on `/dcgm`.
    #[serde(default)]
    pub gpu: GpuCondition,
    /// The hub commit the weights are served from: `/v1/models` then names a snapshot path as
    /// the model's `root` (`/models/hub/models--org--name/snapshots/REV`), as vLLM does for a
    /// model loaded from the hub cache; `None` serves the bare name.
    #[serde(default)]
    pub model_revision: Option<String>,
}

/// The simulated GPUs' condition as `/dcgm` shows it: clocks, power limit, throttling, driver
/// and boards. Stand-in readings (they do not change the step time; `step_scale` does), so a
/// test can plant a slower night together with its cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuCondition {
    pub sm_clock_mhz: u32,
    pub mem_clock_mhz: u32,
    /// `DCGM_FI_DEV_POWER_MGMT_LIMIT`; the power drawn is clamped at it, and while clamped
    /// the clock-event reasons carry `sw_power_cap`.
    pub power_limit_w: f64,
    /// Adds 25 °C and the `sw_thermal_slowdown` reason while busy.
    pub thermal_throttle: bool,
    pub driver_version: String,
    /// Changes the boards' UUIDs (a swapped board).
    pub board_serial: u32,
}

impl Default for GpuCondition {
    fn default() -> Self {
        GpuCondition {
            sm_clock_mhz: 1980,
            mem_clock_mhz: 2619,
            power_limit_w: 700.0,
            thermal_throttle: false,
            driver_version: "535.183.01".into(),
            board_serial: 0,
        }
    }
}

fn default_step_scale() -> f64 {
    1.0
}

fn default_sglang_interval() -> u32 {
    40
}

fn default_n_batch() -> u32 {
    2048
}

fn default_eos_probability() -> f64 {
    0.01
}

const BUILTIN_NAMES: &[&str] = &["tiny", "llama-8b-h100", "llama-70b-tp4-h100", "nightly"];

impl Profile {
    /// A built-in profile by name; [`Profile::builtin_names`] lists them.
    pub fn builtin(name: &str) -> Option<Profile> {
        let base = Profile {
            name: name.to_string(),
            model: String::new(),
            max_model_len: 8192,
            vocab_size: 128_256,
            t0_s: 0.0,
            k_seq_s: 0.0,
            k_ctx_s: 0.0,
            k_prefill_s: 0.0,
            prefill_chunk_tokens: 8192,
            max_num_seqs: 256,
            kv_blocks: 0,
            block_size: 16,
            spec: None,
            reasoning_tokens: 0,
            prefix_cache: true,
            sglang_gauge_interval_steps: default_sglang_interval(),
            eos_probability: default_eos_probability(),
            n_batch: default_n_batch(),
            seed: 0,
            step_scale: default_step_scale(),
            gpu: GpuCondition::default(),
            model_revision: None,
        };
        match name {
            // Fast and CPU-like: bs 64 × (64 in + 32 out) finishes in well under a second.
            "tiny" => Some(Profile {
                model: "sim-tiny".into(),
                max_model_len: 4096,
                vocab_size: 32_000,
                t0_s: 0.004,
                k_seq_s: 0.000_15,
                k_ctx_s: 0.000_000_2,
                k_prefill_s: 0.000_002,
                prefill_chunk_tokens: 4096,
                max_num_seqs: 4096,
                kv_blocks: 65_536,
                ..base
            }),
            // Llama-3.1-8B bf16 on one H100 80GB: ~6.5 ms weight read per step, ~28k KV blocks.
            "llama-8b-h100" => Some(Profile {
                model: "meta-llama/Llama-3.1-8B-Instruct".into(),
                max_model_len: 131_072,
                t0_s: 0.0065,
                k_seq_s: 0.000_03,
                k_ctx_s: 0.000_000_06,
                k_prefill_s: 0.000_08,
                prefill_chunk_tokens: 8192,
                max_num_seqs: 256,
                kv_blocks: 28_000,
                ..base
            }),
            // Llama-3.1-70B bf16 at TP=4 on H100s: ~13 ms per step plus all-reduce overhead.
            "llama-70b-tp4-h100" => Some(Profile {
                model: "meta-llama/Llama-3.1-70B-Instruct".into(),
                max_model_len: 131_072,
                t0_s: 0.016,
                k_seq_s: 0.000_05,
                k_ctx_s: 0.000_000_04,
                k_prefill_s: 0.000_15,
                prefill_chunk_tokens: 8192,
                max_num_seqs: 256,
                kv_blocks: 30_000,
                ..base
            }),
            // A node's nights (`ceiling demo --nightly`, tests/it/nightly.rs): the tiny model
            // with only a per-step and a per-sequence cost, t_fwd = 60 ms + 2 ms × bs, steps long
            // enough that a loaded host's sleep overruns stay under the 3 % minimum effect of a
            // regression (overruns of 0.8 ms on a 22 ms step were seen on a busy 2-core host).
            "nightly" => Some(Profile {
                name: base.name,
                eos_probability: 0.0,
                t0_s: 0.060,
                k_seq_s: 0.002,
                k_ctx_s: 0.0,
                k_prefill_s: 0.000_000_5,
                ..Profile::builtin("tiny")?
            }),
            _ => None,
        }
    }

    /// Names accepted by [`Profile::builtin`].
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// Reads and validates a profile from a TOML file.
    pub fn from_toml_file(p: &Path) -> Result<Profile, SimError> {
        let text = std::fs::read_to_string(p).map_err(|source| SimError::ReadProfile {
            path: p.to_path_buf(),
            source,
        })?;
        let profile: Profile = toml::from_str(&text).map_err(|source| SimError::ParseProfile {
            path: p.to_path_buf(),
            source,
        })?;
        profile.validate().map_err(|e| SimError::ProfileFile {
            path: p.to_path_buf(),
            source: Box::new(e),
        })?;
        Ok(profile)
    }

    /// KV capacity of one DP rank, in tokens.
    pub fn kv_capacity_tokens(&self) -> u64 {
        u64::from(self.kv_blocks) * u64::from(self.block_size)
    }

    /// Nominal step duration in seconds (before time scaling), `step_scale` applied.
    pub fn step_s(&self, running: u32, context_tokens: u64, prefill_tokens: u64) -> f64 {
        self.step_scale
            * (self.t0_s
                + self.k_seq_s * f64::from(running)
                + self.k_ctx_s * context_tokens as f64
                + self.k_prefill_s * prefill_tokens as f64)
    }

    /// Checks the parameters make a runnable engine.
    pub fn validate(&self) -> Result<(), SimError> {
        let times = [self.t0_s, self.k_seq_s, self.k_ctx_s, self.k_prefill_s];
        ensure(
            times.iter().all(|t| t.is_finite() && *t >= 0.0),
            "step-time coefficients must be finite and non-negative",
        )?;
        ensure(self.t0_s > 0.0, "t0_s must be positive")?;
        ensure(
            self.step_scale.is_finite() && self.step_scale > 0.0,
            "step_scale must be a positive number",
        )?;
        ensure(
            self.gpu.sm_clock_mhz > 0 && self.gpu.mem_clock_mhz > 0,
            "gpu clocks must be positive",
        )?;
        ensure(
            self.gpu.power_limit_w.is_finite() && self.gpu.power_limit_w > 0.0,
            "gpu.power_limit_w must be a positive number",
        )?;
        ensure(self.max_num_seqs > 0, "max_num_seqs must be positive")?;
        ensure(self.kv_blocks > 0, "kv_blocks must be positive")?;
        ensure(self.block_size > 0, "block_size must be positive")?;
        ensure(self.max_model_len > 0, "max_model_len must be positive")?;
        ensure(self.vocab_size > 2, "vocab_size must exceed 2")?;
        ensure(
            self.prefill_chunk_tokens > 0,
            "prefill_chunk_tokens must be positive",
        )?;
        ensure(self.n_batch > 0, "n_batch must be positive")?;
        ensure(
            self.sglang_gauge_interval_steps > 0,
            "sglang_gauge_interval_steps must be positive",
        )?;
        ensure(
            (0.0..=1.0).contains(&self.eos_probability),
            "eos_probability must be in [0, 1]",
        )?;
        if let Some(spec) = &self.spec {
            ensure(
                spec.num_speculative_tokens > 0,
                "spec.num_speculative_tokens must be positive",
            )?;
            ensure(
                (0.0..=1.0).contains(&spec.acceptance_rate),
                "spec.acceptance_rate must be in [0, 1]",
            )?;
        }
        Ok(())
    }
}

/// `Err(SimError::Profile(message))` unless `ok`.
fn ensure(ok: bool, message: &str) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(SimError::Profile(message.to_string()))
    }
}
