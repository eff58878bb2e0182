//! The probe: the client half of `ceiling`. [`preflight`] finds out what the engine is (model,
//! flavor from its `/metrics`, version, context length, vocabulary) before anything is sent;
//! `workload` makes exact-length prompts, `client` streams one request, `worker` runs a step's
//! `bs` workers; `arrivals`, `open_loop`, `mix` and `dataset` the open loop's schedule,
//! runner and length mixes. `run.rs` owns the tasks of a whole run.

pub mod arrivals;
pub mod boundary;
pub mod client;
pub mod dataset;
pub mod mix;
pub mod open_loop;
pub mod tokenizer;
pub mod worker;
pub mod workload;

use std::time::Duration;

use ceiling_collectors::engines::{SlotCapacity, props_capacity};
use serde::Deserialize;

use crate::config::ProbeConfig;
use crate::exit::Failure;

/// What the probe learned about the engine before the run.
#[derive(Debug, Clone, Default)]
pub struct EngineInfo {
    pub model: String,
    /// `--model-revision`, else what the engine says of its weights (the model list's `root`
    /// beyond the served name, llama.cpp's `n_params` and `size`).
    pub model_revision: Option<String>,
    /// `vllm`, `sglang`, `llamacpp`, from the metric names `/metrics` exposes.
    pub flavor: Option<&'static str>,
    pub version: Option<String>,
    pub max_model_len: Option<u32>,
    pub vocab_size: Option<u32>,
    /// llama.cpp's slots and per-slot context from `/props`.
    pub slots: Option<SlotCapacity>,
    /// The KV cache of the whole node in tokens, where `/metrics` says (vLLM
    /// `cache_config_info`, SGLang `max_total_num_tokens`), and the metric it came from.
    pub kv_capacity: Option<(f64, String)>,
    /// Why the metrics could not be read, when they could not.
    pub metrics_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
struct ModelEntry {
    id: String,
    /// vLLM and SGLang: the path or hub id the weights were loaded from.
    root: Option<String>,
    max_model_len: Option<u32>,
    meta: Option<ModelMeta>,
}

/// llama.cpp's extra model facts.
#[derive(Debug, Deserialize)]
struct ModelMeta {
    n_vocab: Option<u32>,
    n_ctx_train: Option<u32>,
    n_params: Option<u64>,
    size: Option<u64>,
}

impl ModelEntry {
    /// What the engine says of the weights it loaded, as far as it says: the `root` they came
    /// from where it is not the served name (a snapshot path holds the hub commit), and
    /// llama.cpp's parameter count and file size. `None` where it says nothing more than the
    /// name.
    fn revision(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(root) = self.root.as_deref().filter(|r| *r != self.id) {
            parts.push(format!("root={root}"));
        }
        if let Some(m) = &self.meta {
            parts.extend(m.n_params.map(|n| format!("n_params={n}")));
            parts.extend(m.size.map(|n| format!("size={n}")));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks the engine what it serves. An engine that cannot be reached is a
/// [`Failure::Unreachable`]; a model it does not serve, a usage error.
pub async fn preflight(http: &reqwest::Client, cfg: &ProbeConfig) -> anyhow::Result<EngineInfo> {
    let url = format!("{}/v1/models", cfg.url);
    let mut req = http.get(&url).timeout(PREFLIGHT_TIMEOUT);
    if let Some(k) = &cfg.api_key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.map_err(|e| {
        Failure::Unreachable(format!(
            "cannot reach the engine at {url}: {e}; is it running, and is --url right?"
        ))
    })?;
    if !resp.status().is_success() {
        return Err(Failure::Unreachable(format!(
            "{url} answered HTTP {}; check --url and --api-key-env",
            resp.status()
        ))
        .into());
    }
    let body = client::read_capped(resp, client::MAX_PREFLIGHT_BODY_BYTES)
        .await
        .map_err(Failure::Unreachable)?;
    let list: ModelList = serde_json::from_slice(&body).map_err(|e| {
        Failure::Unreachable(format!(
            "{url} did not return an OpenAI model list ({e}); is --url an OpenAI-compatible server?"
        ))
    })?;
    let entry = match &cfg.model {
        Some(m) => list.data.iter().find(|e| &e.id == m).ok_or_else(|| {
            let ids: Vec<_> = list.data.iter().map(|e| e.id.as_str()).collect();
            Failure::Usage(format!(
                "--model {m:?} is not served here; the engine lists {ids:?}"
            ))
        })?,
        None => list.data.first().ok_or_else(|| {
            Failure::Unreachable(format!(
                "{url} lists no models; is the engine still loading?"
            ))
        })?,
    };
    let mut info = EngineInfo {
        model: entry.id.clone(),
        model_revision: cfg.model_revision.clone().or_else(|| entry.revision()),
        max_model_len: entry
            .max_model_len
            .or(entry.meta.as_ref().and_then(|m| m.n_ctx_train)),
        vocab_size: entry.meta.as_ref().and_then(|m| m.n_vocab),
        ..EngineInfo::default()
    };
    if let Some(murl) = &cfg.metrics_url {
        match fetch_text(http, murl).await {
            Ok(text) => {
                info.flavor = flavor_of(&text);
                info.kv_capacity = kv_capacity(&text);
            }
            Err(e) => info.metrics_error = Some(e),
        }
    }
    // llama.cpp: from /metrics, or from the `meta` only its model list carries.
    if info.flavor == Some("llamacpp") || entry.meta.is_some() {
        info.slots = llamacpp_slots(http, &cfg.url).await;
    }
    if let Some(slots) = &info.slots {
        check_slots(cfg, slots)?;
        info.version = slots.build_info.clone();
    }
    if info.version.is_none() {
        info.version = engine_version(http, &cfg.url, info.flavor).await;
    }
    Ok(info)
}

/// The KV capacity an exposition declares, through the engine adapters.
fn kv_capacity(exposition: &str) -> Option<(f64, String)> {
    let samples = ceiling_collectors::prometheus::parse(exposition).samples;
    let signals = ceiling_collectors::engines::signals(&samples, None);
    let source = signals
        .sources
        .get("kv_capacity_tokens")
        .cloned()
        .unwrap_or_else(|| "/metrics".into());
    signals.kv_capacity_tokens.map(|k| (k, source))
}

impl EngineInfo {
    /// What the engine declared it can hold, for the search.
    pub fn declared(&self) -> crate::search::Declared {
        let slots = self.slots.as_ref();
        let llama_kv = slots
            .and_then(SlotCapacity::kv_capacity_tokens)
            .map(|k| (k as f64, "llama.cpp /props total_slots × n_ctx".to_string()));
        let (kv, source) = self.kv_capacity.clone().or(llama_kv).unzip();
        crate::search::Declared {
            slots: slots.and_then(|s| s.total_slots),
            kv_capacity_tokens: kv,
            kv_source: source,
        }
    }
}

async fn llamacpp_slots(http: &reqwest::Client, base: &str) -> Option<SlotCapacity> {
    let text = fetch_text(http, &format!("{base}/props")).await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(props_capacity(&v))
}

/// Refuses lengths a llama.cpp slot cannot hold (the server would cut the output short, or
/// answer 400), and warns when a batch exceeds the slots (the rest wait, deferred).
fn check_slots(cfg: &ProbeConfig, slots: &SlotCapacity) -> Result<(), Failure> {
    if let Some(n_ctx) = slots.n_ctx_per_slot {
        for (input_len, output_len) in cfg.length_pairs() {
            if input_len + output_len > n_ctx {
                return Err(Failure::Usage(format!(
                    "--input-len {input_len} + --output-len {output_len} exceeds llama-server's per-slot context of {n_ctx} tokens (-c divided by -np); start it with -c of at least {} × slots, or shorten the lengths",
                    input_len + output_len
                )));
            }
        }
    }
    if let Some(total) = slots.total_slots {
        let over: Vec<u32> = cfg
            .steps
            .iter()
            .map(|s| s.batch_size)
            .filter(|bs| *bs > total)
            .collect();
        if !over.is_empty() {
            eprintln!(
                "warning: batch sizes {over:?} exceed llama-server's {total} slots: the extra requests wait (requests_deferred), so those steps do not run at their batch size; start llama-server with -np {} or lower --batch-sizes",
                over.iter().max().copied().unwrap_or(total)
            );
        }
    }
    Ok(())
}

/// The engine family from the metric names in an exposition.
pub fn flavor_of(exposition: &str) -> Option<&'static str> {
    ["vllm:", "sglang:", "llamacpp:"]
        .into_iter()
        .find(|p| exposition.contains(p))
        .map(|p| p.trim_end_matches(':'))
}

pub(crate) async fn fetch_text(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let resp = http
        .get(url)
        .timeout(PREFLIGHT_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url} answered HTTP {}", resp.status()));
    }
    let body = client::read_capped(resp, client::MAX_PREFLIGHT_BODY_BYTES).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The engine's version where it tells: vLLM `/version`, SGLang `/get_server_info`,
/// llama.cpp `/props` (`build_info`).
async fn engine_version(
    http: &reqwest::Client,
    base: &str,
    flavor: Option<&str>,
) -> Option<String> {
    let (path, field) = match flavor? {
        "vllm" => ("/version", "version"),
        "sglang" => ("/get_server_info", "version"),
        "llamacpp" => ("/props", "build_info"),
        _ => return None,
    };
    let text = fetch_text(http, &format!("{base}{path}")).await.ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_comes_from_the_metric_prefix() {
        assert_eq!(
            flavor_of("# TYPE vllm:num_requests_running gauge"),
            Some("vllm")
        );
        assert_eq!(flavor_of("sglang:num_running_reqs 3"), Some("sglang"));
        assert_eq!(flavor_of("llamacpp:n_decode_total 9"), Some("llamacpp"));
        assert_eq!(flavor_of("process_cpu_seconds_total 1"), None);
    }

    #[test]
    fn the_model_revision_is_what_the_model_list_says_beyond_the_name() {
        let entry = |json: &str| serde_json::from_str::<ModelEntry>(json).unwrap();
        // vLLM serving a hub snapshot under a short name: the path holds the commit.
        let e = entry(
            r#"{"id":"llama","root":"/hub/models--m/snapshots/abc123","max_model_len":8192}"#,
        );
        assert_eq!(
            e.revision().as_deref(),
            Some("root=/hub/models--m/snapshots/abc123")
        );
        // Served under the name it was loaded by: nothing beyond the name.
        assert_eq!(
            entry(r#"{"id":"meta/llama","root":"meta/llama"}"#).revision(),
            None
        );
        // llama.cpp: the parameters and the file's size.
        let e = entry(r#"{"id":"m.gguf","meta":{"n_params":44000000,"size":88000000}}"#);
        assert_eq!(
            e.revision().as_deref(),
            Some("n_params=44000000 size=88000000")
        );
    }

    fn config(batch_sizes: &str) -> ProbeConfig {
        use clap::Parser;
        let cli = crate::Cli::try_parse_from([
            "ceiling",
            "probe",
            "--url",
            "http://127.0.0.1:1",
            "--batch-sizes",
            batch_sizes,
            "--input-len",
            "128",
            "--output-len",
            "256",
        ])
        .unwrap();
        let crate::cli::Command::Probe(args) = cli.command else {
            panic!("not a probe command")
        };
        ProbeConfig::from_cli(&args).unwrap()
    }

    #[test]
    fn lengths_over_a_llamacpp_slot_are_a_usage_error() {
        let slots = |n_ctx| SlotCapacity {
            total_slots: Some(8),
            n_ctx_per_slot: Some(n_ctx),
            ..SlotCapacity::default()
        };
        assert!(
            check_slots(&config("1,8"), &slots(384)).is_ok(),
            "fits exactly"
        );
        let Err(Failure::Usage(msg)) = check_slots(&config("1,8"), &slots(383)) else {
            panic!("384 tokens in a 383-token slot must be refused")
        };
        assert!(msg.contains("per-slot context of 383"), "{msg}");
        // More requests than slots only warns: the run can still show the queueing.
        assert!(check_slots(&config("16"), &slots(1024)).is_ok());
        assert!(check_slots(&config("16"), &SlotCapacity::default()).is_ok());
    }
}
