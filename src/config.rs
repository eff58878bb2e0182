//! Validated run configuration. [`ProbeConfig::from_cli`] checks and resolves the probe's flags;
//! nothing after it sees clap. The API key is read here from the environment and kept out of
//! everything that is serialized: a run stores its config as [`ProbeSettings`] ([`settings`]).

pub mod rate;
pub mod settings;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use ceiling_reports::recording::Pattern;

use crate::cli::{BatchSizeArg, EndpointArg, PatternArg, PrefixCacheArg, ProbeArgs};
use crate::exit::Failure;
use crate::search::SearchSettings;

pub use rate::{LengthMix, Rate, RateSettings, SweepSettings};
pub use settings::ProbeSettings;

/// Which OpenAI endpoint the probe drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/completions` with token-id prompts: exact input lengths.
    Completions,
    /// `/v1/chat/completions` with text calibrated against the engine's `usage`.
    Chat,
}

/// How the warm-up before the measured part of a step is given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warmup {
    Waves(u32),
    Duration(#[serde(with = "secs")] Duration),
}

/// One step of the run: a batch size and the lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    pub batch_size: u32,
    pub input_len: u32,
    pub output_len: u32,
}

/// Everything a probe run needs, checked. Serializes as the [`ProbeSettings`] a run stores
/// (without the key and the output switches), whose hash the nightly history keys on.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "ProbeSettings")]
pub struct ProbeConfig {
    pub url: String,
    pub model: Option<String>,
    /// `--model-revision`: recorded with the run, not in the settings the history keys on (a
    /// new revision is a cause `regress` names, not another history).
    pub model_revision: Option<String>,
    pub api_key: Option<String>,
    pub endpoint: Endpoint,
    pub dp: u32,
    pub request_timeout: Duration,
    /// The listed steps; empty when searching.
    pub steps: Vec<StepSpec>,
    /// `--batch-sizes auto`: the steps are chosen as the run goes.
    pub search: Option<SearchSettings>,
    /// `--pattern rate | sweep`: the open loop (no listed steps).
    pub rate: Option<RateSettings>,
    /// Where each request's lengths come from.
    pub mix: LengthMix,
    pub pattern: Pattern,
    pub waves: u32,
    pub duration: Duration,
    pub warmup: Warmup,
    /// Closed-loop workers started per second; `None` starts them all at once.
    pub ramp_per_s: Option<f64>,
    pub vocab_size: Option<u32>,
    /// `--tokenizer`: the model's tokenizer.json.
    pub tokenizer: Option<std::path::PathBuf>,
    pub prefix_cache_warm: bool,
    pub seed: u64,
    pub grace: Duration,
    /// `None`: scraping off, or a disaggregated deployment given only its role endpoints.
    pub metrics_url: Option<String>,
    /// The prefill and decode servers' metrics (`--metrics-url ROLE=URL`), in the order given.
    pub metrics_roles: Vec<RoleEndpoint>,
    pub scrape_interval: Duration,
    pub require_metrics: bool,
    /// `None`: GPU sampling off.
    pub gpu_source: Option<String>,
    pub gpu_interval: Duration,
    pub require_gpu: bool,
    /// `--gpus`; `None`: the GPUs running the engine's processes, else all.
    pub gpus: Option<ceiling_collectors::gpu::GpuSelection>,
    pub json: bool,
}

fn usage(msg: String) -> anyhow::Error {
    Failure::Usage(msg).into()
}

impl ProbeConfig {
    pub fn from_cli(a: &ProbeArgs) -> anyhow::Result<ProbeConfig> {
        let url = a.engine.url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(usage(format!(
                "--url {url:?} is not an http(s) URL; give the engine's base, e.g. http://127.0.0.1:8000"
            )));
        }
        let url = url.strip_suffix("/v1").unwrap_or(&url).to_string();
        if a.search
            .sla_otps
            .is_some_and(|v| !(v.is_finite() && v > 0.0))
        {
            return Err(usage("--sla-otps must be a positive number".into()));
        }
        if a.search.sla_tpot.is_some_and(|d| d.is_zero()) {
            return Err(usage("--sla-tpot must be longer than 0".into()));
        }
        let lengths = length_pairs(&a.load.input_len, &a.load.output_len)?;
        let rate = rate::rate_settings(a, lengths.first().copied().unwrap_or((512, 256)))?;
        let mix = rate::length_mix(&a.mix)?;
        rate::check_open_loop(rate.as_ref(), &mix, lengths.len())?;
        let search = search_settings(a, &lengths)?;
        if search.is_some() && rate.is_some() {
            return Err(usage(
                "--batch-sizes auto searches with fixed batches; drop it for --pattern rate or sweep".into(),
            ));
        }
        // The open loop has no fixed batch: its steps are rates, and --batch-sizes is unused.
        let sizes = if rate.is_some() {
            Vec::new()
        } else {
            batch_sizes(&a.load.batch_sizes, search.is_some())?
        };
        if a.engine.dp == 0 {
            return Err(usage("--dp must be at least 1".into()));
        }
        let pattern = match a.load.pattern {
            PatternArg::Wave => Pattern::Wave,
            PatternArg::ClosedLoop => Pattern::ClosedLoop,
            PatternArg::Rate | PatternArg::Sweep => Pattern::Rate,
        };
        if pattern == Pattern::Wave && a.load.waves == 0 {
            return Err(usage("--waves must be at least 1".into()));
        }
        let warmup = parse_warmup(&a.load.warmup, pattern)?;
        let ramp_per_s = a.load.ramp.as_deref().map(parse_ramp).transpose()?;
        let api_key = read_api_key(a.engine.api_key_env.as_deref())?;
        let steps = step_specs(&sizes, &lengths);
        let t = &a.telemetry;
        let (metrics_url, metrics_roles) = if t.scrape_interval.is_zero() {
            (None, Vec::new())
        } else {
            metrics_endpoints(&t.metrics_url, &url)?
        };
        let gpu_source = (!t.gpu_interval.is_zero()).then(|| t.gpu_source.clone());
        let gpus = t
            .gpu_select
            .gpus
            .as_deref()
            .map(ceiling_collectors::gpu::GpuSelection::parse)
            .transpose()
            .map_err(usage)?;
        Ok(ProbeConfig {
            url,
            model: a.engine.model.clone(),
            model_revision: a.engine.model_revision.clone(),
            api_key,
            endpoint: match a.engine.endpoint {
                EndpointArg::Completions => Endpoint::Completions,
                EndpointArg::Chat => Endpoint::Chat,
            },
            dp: a.engine.dp,
            request_timeout: a.engine.request_timeout,
            steps,
            search,
            rate,
            mix,
            pattern,
            waves: a.load.waves,
            duration: a.load.duration,
            warmup,
            ramp_per_s,
            vocab_size: a.load.vocab_size,
            tokenizer: a.load.tokenizer.clone(),
            prefix_cache_warm: a.load.prefix_cache == PrefixCacheArg::Warm,
            seed: a.load.seed.unwrap_or_else(rand::random),
            grace: a.load.grace,
            metrics_url,
            metrics_roles,
            scrape_interval: t.scrape_interval,
            require_metrics: t.require_metrics,
            gpu_source,
            gpu_interval: t.gpu_interval,
            require_gpu: t.require_gpu,
            gpus,
            json: a.output.json,
        })
    }
}

/// A prefill or decode server's metrics endpoint (`--metrics-url ROLE=URL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleEndpoint {
    pub role: ceiling_reports::pd::Role,
    pub url: String,
}

/// The engine's metrics URL and the role endpoints from the `--metrics-url` values: `URL`
/// (at most one) is the engine's, `prefill=URL` / `decode=URL` a side's. With no value the
/// engine's is `BASE/metrics`; with role endpoints only, the router in front is not scraped.
fn metrics_endpoints(
    values: &[String],
    base: &str,
) -> anyhow::Result<(Option<String>, Vec<RoleEndpoint>)> {
    let mut plain = Vec::new();
    let mut roles = Vec::new();
    for v in values {
        let check = |u: &str| {
            if u.starts_with("http://") || u.starts_with("https://") {
                Ok(u.to_string())
            } else {
                Err(usage(format!(
                    "--metrics-url {v:?}: {u:?} is not an http(s) URL; give URL or ROLE=URL with \
                     ROLE prefill or decode"
                )))
            }
        };
        match v.split_once('=') {
            // `=` inside a URL's query is not a role.
            Some((role, url)) if !role.contains("://") => {
                let role = ceiling_reports::pd::Role::parse(role).ok_or_else(|| {
                    usage(format!(
                        "--metrics-url {v:?}: unknown role {role:?}; use prefill=URL or decode=URL"
                    ))
                })?;
                roles.push(RoleEndpoint {
                    role,
                    url: check(url)?,
                });
            }
            _ => plain.push(check(v)?),
        }
    }
    if plain.len() > 1 {
        return Err(usage(format!(
            "--metrics-url is given {} URLs without a role; give the engine's once, and each \
             disaggregated server as prefill=URL or decode=URL",
            plain.len()
        )));
    }
    let engine = match plain.pop() {
        Some(u) => Some(u),
        None if roles.is_empty() => Some(format!("{base}/metrics")),
        None => None,
    };
    Ok((engine, roles))
}

/// The `(input_len, output_len)` pairs of the run: every input length with every output
/// length, in the order given (input major), each checked.
fn length_pairs(inputs: &[u32], outputs: &[u32]) -> anyhow::Result<Vec<(u32, u32)>> {
    if inputs.is_empty() || outputs.is_empty() || inputs.contains(&0) || outputs.contains(&0) {
        return Err(usage(
            "--input-len and --output-len must be at least 1, e.g. --input-len 128,1024".into(),
        ));
    }
    if outputs.iter().any(|&o| o < 2) {
        return Err(usage(
            "--output-len must be at least 2: TPOT needs two output tokens".into(),
        ));
    }
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for &i in inputs {
        for &o in outputs {
            if !pairs.contains(&(i, o)) {
                pairs.push((i, o));
            }
        }
    }
    Ok(pairs)
}

/// One step per length pair × batch size: each pair's batch sizes run one after the other, in
/// the order given, so a single length pair gives the steps it always gave.
fn step_specs(batch_sizes: &[u32], lengths: &[(u32, u32)]) -> Vec<StepSpec> {
    lengths
        .iter()
        .flat_map(|&(input_len, output_len)| {
            batch_sizes.iter().map(move |&batch_size| StepSpec {
                batch_size,
                input_len,
                output_len,
            })
        })
        .collect()
}

/// The listed batch sizes (none when searching): positive, and `auto` alone.
fn batch_sizes(list: &[BatchSizeArg], search: bool) -> anyhow::Result<Vec<u32>> {
    if search {
        if list.len() > 1 {
            return Err(usage(
                "--batch-sizes auto searches on its own; give `auto` alone or a list of sizes"
                    .into(),
            ));
        }
        return Ok(Vec::new());
    }
    let sizes: Vec<u32> = list
        .iter()
        .filter_map(|b| match b {
            BatchSizeArg::Size(n) => Some(*n),
            BatchSizeArg::Auto => None,
        })
        .collect();
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(usage(
            "--batch-sizes needs positive sizes, e.g. --batch-sizes 1,8,32".into(),
        ));
    }
    Ok(sizes)
}

/// The search's settings when `--batch-sizes` has `auto`; `lengths` the (input, output) pairs
/// asked for: the search runs at one pair.
fn search_settings(
    a: &ProbeArgs,
    lengths: &[(u32, u32)],
) -> anyhow::Result<Option<SearchSettings>> {
    if !a.load.batch_sizes.contains(&BatchSizeArg::Auto) {
        return Ok(None);
    }
    let &[(input_len, output_len)] = lengths else {
        return Err(usage(format!(
            "--batch-sizes auto searches at one length pair, and {} were given; run one search \
             per --input-len/--output-len pair",
            lengths.len()
        )));
    };
    let s = &a.search;
    if s.budget.is_zero() {
        return Err(usage(
            "--budget must be longer than 0, e.g. --budget 5m".into(),
        ));
    }
    Ok(Some(SearchSettings {
        budget_s: s.budget.as_secs_f64(),
        sla_otps: s.sla_otps,
        sla_tpot_s: s.sla_tpot.map(|d| d.as_secs_f64()),
        ..SearchSettings::new(input_len, output_len)
    }))
}

impl ProbeConfig {
    /// The (input, output) length pairs the run asks for: the listed steps', the search's and
    /// the open loop's longest (a `--input-range` widens it; a dataset's entries are checked
    /// when it is read).
    pub fn length_pairs(&self) -> Vec<(u32, u32)> {
        let mut pairs: Vec<(u32, u32)> = self
            .steps
            .iter()
            .map(|s| (s.input_len, s.output_len))
            .chain(self.search.iter().map(|s| (s.input_len, s.output_len)))
            .collect();
        if let Some(r) = &self.rate {
            pairs.push(self.mix.longest(r.input_len, r.output_len));
        }
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }
}

fn parse_warmup(s: &str, pattern: Pattern) -> anyhow::Result<Warmup> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(match pattern {
            Pattern::Wave => Warmup::Waves(n),
            // A bare number for a closed or open loop means seconds.
            Pattern::ClosedLoop | Pattern::Rate => {
                Warmup::Duration(Duration::from_secs(u64::from(n)))
            }
        });
    }
    match humantime::parse_duration(s) {
        Ok(d) if pattern != Pattern::Wave => Ok(Warmup::Duration(d)),
        Ok(_) => Err(usage(format!(
            "--warmup {s:?}: the wave pattern warms up by whole waves; give a number, e.g. --warmup 1"
        ))),
        Err(_) => Err(usage(format!(
            "--warmup {s:?} is neither a number of waves nor a duration such as 10s"
        ))),
    }
}

fn parse_ramp(s: &str) -> anyhow::Result<f64> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(usage(format!(
            "--ramp {s:?}: give workers per second, e.g. --ramp 2/s"
        ))),
    }
}

fn read_api_key(var: Option<&str>) -> anyhow::Result<Option<String>> {
    match var {
        Some(v) => match std::env::var(v) {
            Ok(k) if !k.is_empty() => Ok(Some(k)),
            _ => Err(usage(format!(
                "--api-key-env {v}: that environment variable is not set; export it or drop the flag"
            ))),
        },
        None => Ok(std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())),
    }
}

/// Durations serialize as seconds (f64) so the probe config reads plainly in JSON.
mod secs {
    use std::time::Duration;

    use serde::Deserialize;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
