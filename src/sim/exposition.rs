//! `/metrics` text for each flavor: the real engines' metric names, types, HELP lines, labels
//! (sorted as prometheus_client sorts them), number formats and histogram buckets. Pure
//! rendering from snapshots of [`RankStats`]; it decides no values.
//!
//! Versions imitated: vLLM V1 as of 0.11 (`engine` label, `kv_cache_usage_perc`,
//! `inter_token_latency_seconds`, `request_time_per_output_token_seconds`; multiprocess-style
//! output without `_created` series), SGLang 0.5.8+ (scheduler labels with `moe_ep_rank`,
//! `realtime_tokens_total`, `cuda_graph_passes_total`), llama.cpp b11434.

use super::SimFlavor;
use super::profile::Profile;
use super::stats::{FINISH_REASONS, Histogram, RankStats};

mod llamacpp;
mod sglang;

type Labels = Vec<(&'static str, String)>;

/// Formats a float as prometheus_client does (Python `repr`, Go-style exponent above 1e6).
pub(crate) fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:?}");
    if let Some(pos) = s.find('e') {
        let (mantissa, exp) = s.split_at(pos);
        let exp = &exp[1..];
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("+", exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    match s.find('.') {
        Some(dot) if v > 0.0 && dot > 6 => {
            let digits: String = s.chars().filter(|c| *c != '.').collect();
            let mut mantissa = format!("{}.{}", &digits[..1], &digits[1..]);
            while mantissa.ends_with('0') || mantissa.ends_with('.') {
                mantissa.pop();
            }
            format!("{mantissa}e+0{}", dot - 1)
        }
        _ => s,
    }
}

/// Formats a number as a C++ `ostream` does by default (6 significant digits, `%g`-like).
pub(crate) fn cpp_g6(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_nan() { "nan".into() } else { "0".into() };
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-5..6).contains(&exp) {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_fraction(&format!("{v:.decimals$}"))
}

fn trim_fraction(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A text exposition being written.
pub(crate) struct Expo {
    out: String,
    fmt: fn(f64) -> String,
}

impl Expo {
    pub fn new(fmt: fn(f64) -> String) -> Self {
        Expo {
            out: String::with_capacity(16 * 1024),
            fmt,
        }
    }

    pub fn header(&mut self, name: &str, help: &str, kind: &str) {
        self.out
            .push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    }

    pub fn sample(&mut self, name: &str, labels: &Labels, v: f64) {
        let mut sorted = labels.clone();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        self.out.push_str(name);
        if !sorted.is_empty() {
            let inner: Vec<String> = sorted
                .iter()
                .map(|(k, val)| format!("{k}=\"{}\"", escape(val)))
                .collect();
            self.out.push('{');
            self.out.push_str(&inner.join(","));
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&(self.fmt)(v));
        self.out.push('\n');
    }

    /// `_bucket` series (with `le` among the labels), then `_count` and `_sum`.
    pub fn histogram(&mut self, name: &str, labels: &Labels, h: &Histogram) {
        let cumulative = h.cumulative();
        for (i, c) in cumulative.iter().enumerate() {
            let le = h.bounds.get(i).map_or("+Inf".to_string(), |b| py_float(*b));
            let mut l = labels.clone();
            l.push(("le", le));
            self.sample(&format!("{name}_bucket"), &l, *c as f64);
        }
        self.sample(&format!("{name}_count"), labels, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Sums histograms of the same buckets (per-rank → one series).
pub(crate) fn merged(hs: impl Iterator<Item = Histogram>) -> Option<Histogram> {
    hs.reduce(|mut acc, h| {
        for (a, b) in acc.counts.iter_mut().zip(&h.counts) {
            *a += b;
        }
        acc.sum += h.sum;
        acc.count += h.count;
        acc
    })
}

/// The exposition for `flavor` from per-rank snapshots.
pub(crate) fn render(flavor: SimFlavor, profile: &Profile, ranks: &[RankStats]) -> String {
    match flavor {
        SimFlavor::Vllm => render_vllm(profile, ranks),
        SimFlavor::Sglang => sglang::render(profile, ranks),
        SimFlavor::Llamacpp => llamacpp::render(ranks),
    }
}

type Getter = fn(&RankStats) -> f64;

fn render_vllm(profile: &Profile, ranks: &[RankStats]) -> String {
    let mut e = Expo::new(py_float);
    let base = |r: usize| -> Labels {
        vec![
            ("engine", r.to_string()),
            ("model_name", profile.model.clone()),
        ]
    };
    let kv = f64::from(profile.kv_blocks);
    let scalars: &[(&str, &str, &str, Getter)] = &[
        (
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            "gauge",
            |s| f64::from(s.running),
        ),
        (
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            "gauge",
            |s| f64::from(s.waiting),
        ),
        (
            "vllm:num_preemptions_total",
            "Cumulative number of preemption from the engine.",
            "counter",
            |s| s.preemptions as f64,
        ),
        (
            "vllm:prompt_tokens_total",
            "Number of prefill tokens processed.",
            "counter",
            |s| s.prompt_tokens as f64,
        ),
        (
            "vllm:generation_tokens_total",
            "Number of generation tokens processed.",
            "counter",
            |s| s.generation_tokens as f64,
        ),
        (
            "vllm:prefix_cache_queries_total",
            "Prefix cache queries, in terms of number of queried tokens.",
            "counter",
            |s| s.prefix_queries as f64,
        ),
        (
            "vllm:prefix_cache_hits_total",
            "Prefix cache hits, in terms of number of cached tokens.",
            "counter",
            |s| s.prefix_hits as f64,
        ),
    ];
    for (name, help, kind, get) in scalars {
        e.header(name, help, kind);
        for (r, s) in ranks.iter().enumerate() {
            e.sample(name, &base(r), get(s));
        }
        if *name == "vllm:num_requests_waiting" {
            e.header(
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                "gauge",
            );
            for (r, s) in ranks.iter().enumerate() {
                // vLLM: 1 − free/(num_gpu_blocks − 1); the null block is never handed out.
                let usage = if kv > 1.0 {
                    f64::from(s.kv_used_blocks) / (kv - 1.0)
                } else {
                    0.0
                };
                e.sample("vllm:kv_cache_usage_perc", &base(r), usage.min(1.0));
            }
        }
    }
    e.header(
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        "counter",
    );
    for (r, s) in ranks.iter().enumerate() {
        for (i, reason) in FINISH_REASONS.iter().enumerate() {
            let mut l = base(r);
            l.push(("finished_reason", (*reason).to_string()));
            e.sample("vllm:request_success_total", &l, s.finished[i] as f64);
        }
    }
    vllm_spec(&mut e, profile, ranks, &base);
    vllm_histograms(&mut e, ranks, &base);
    vllm_cache_config(&mut e, profile, ranks.len());
    e.finish()
}

fn vllm_spec(e: &mut Expo, profile: &Profile, ranks: &[RankStats], base: &dyn Fn(usize) -> Labels) {
    if profile.spec.is_none() {
        return;
    }
    let counters: &[(&str, &str, Getter)] = &[
        (
            "vllm:spec_decode_num_drafts_total",
            "Number of spec decoding drafts.",
            |s| s.spec_drafts as f64,
        ),
        (
            "vllm:spec_decode_num_draft_tokens_total",
            "Number of draft tokens.",
            |s| s.spec_draft_tokens as f64,
        ),
        (
            "vllm:spec_decode_num_accepted_tokens_total",
            "Number of accepted tokens.",
            |s| s.spec_accepted as f64,
        ),
    ];
    for (name, help, get) in counters {
        e.header(name, help, "counter");
        for (r, s) in ranks.iter().enumerate() {
            e.sample(name, &base(r), get(s));
        }
    }
    let name = "vllm:spec_decode_num_accepted_tokens_per_pos_total";
    e.header(name, "Accepted tokens per draft position.", "counter");
    for (r, s) in ranks.iter().enumerate() {
        for (pos, v) in s.spec_accepted_per_pos.iter().enumerate() {
            let mut l = base(r);
            l.push(("position", pos.to_string()));
            e.sample(name, &l, *v as f64);
        }
    }
}

fn vllm_histograms(e: &mut Expo, ranks: &[RankStats], base: &dyn Fn(usize) -> Labels) {
    type HGet = fn(&RankStats) -> &Histogram;
    let hists: &[(&str, &str, HGet)] = &[
        (
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            |s| &s.iteration_tokens,
        ),
        (
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            |s| &s.ttft,
        ),
        (
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            |s| &s.itl,
        ),
        (
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            |s| &s.tpot_request,
        ),
        (
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            |s| &s.e2e,
        ),
        (
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            |s| &s.queue,
        ),
        (
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            |s| &s.inference,
        ),
        (
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            |s| &s.prefill,
        ),
        (
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            |s| &s.decode,
        ),
        (
            "vllm:request_prompt_tokens",
            "Number of prefill tokens processed.",
            |s| &s.request_prompt_tokens,
        ),
        (
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            |s| &s.request_generation_tokens,
        ),
        (
            "vllm:request_params_n",
            "Histogram of the n request parameter.",
            |s| &s.request_params_n,
        ),
        (
            "vllm:request_params_max_tokens",
            "Histogram of the max_tokens request parameter.",
            |s| &s.request_params_max_tokens,
        ),
        (
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            |s| &s.request_max_num_generation_tokens,
        ),
    ];
    for (name, help, get) in hists {
        e.header(name, help, "histogram");
        for (r, s) in ranks.iter().enumerate() {
            e.histogram(name, &base(r), get(s));
        }
    }
}

/// `cache_config_info`: every CacheConfig field stringified, no `model_name`; with DP,
/// `num_gpu_blocks` is the sum over engines yet repeated on each `engine` series (as in vLLM).
fn vllm_cache_config(e: &mut Expo, profile: &Profile, dp: usize) {
    let name = "vllm:cache_config_info";
    e.header(name, "Information of the LLMEngine CacheConfig", "gauge");
    let total_blocks = u64::from(profile.kv_blocks) * dp as u64;
    let py_bool = |b: bool| if b { "True" } else { "False" }.to_string();
    for r in 0..dp {
        let labels: Labels = vec![
            ("block_size", profile.block_size.to_string()),
            ("cache_dtype", "auto".into()),
            ("calculate_kv_scales", "False".into()),
            ("cpu_offload_gb", "0".into()),
            ("enable_prefix_caching", py_bool(profile.prefix_cache)),
            ("engine", r.to_string()),
            ("gpu_memory_utilization", "0.9".into()),
            ("is_attention_free", "False".into()),
            ("num_cpu_blocks", "None".into()),
            ("num_gpu_blocks", total_blocks.to_string()),
            ("num_gpu_blocks_override", "None".into()),
            ("prefix_caching_hash_algo", "sha256".into()),
            ("sliding_window", "None".into()),
            ("swap_space", "4".into()),
            ("swap_space_bytes", "4294967296".into()),
        ];
        e.sample(name, &labels, 1.0);
    }
}
