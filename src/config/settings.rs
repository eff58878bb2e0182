//! [`ProbeSettings`]: the probe configuration as a run stores it (`runs.probe_config`) and as
//! the analysis reads it back. Versioned; every field an older run may lack has an explicit
//! default, and keys this version does not know are ignored, so a renamed or added field is a
//! compile error or a documented default, never a silent fallback. The stored keys are the
//! ones ceiling has always written (durations in seconds), so a config's hash stays the same.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use ceiling_reports::recording::Pattern;

use super::{Endpoint, LengthMix, ProbeConfig, RateSettings, StepSpec, Warmup};
use crate::search::SearchSettings;

/// The layout version [`ProbeSettings`] writes. Runs from before versioning read as 0.
pub const PROBE_SETTINGS_VERSION: u32 = 1;

/// The stored probe configuration. Written from a validated [`ProbeConfig`] (the API key and
/// output switches left out); read with [`ProbeSettings::from_stored`].
/// A key missing from a stored run takes its value from [`ProbeSettings::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProbeSettings {
    /// Missing in runs recorded before the layout was versioned: 0.
    pub version: u32,
    pub url: Option<String>,
    pub model: Option<String>,
    pub endpoint: Option<Endpoint>,
    /// Missing: 1, the flag's default.
    pub dp: u32,
    #[serde(rename = "request_timeout")]
    pub request_timeout_s: Option<f64>,
    pub steps: Vec<StepSpec>,
    /// `--batch-sizes auto`: the search's settings. Missing (runs from before the search, and
    /// runs with listed sizes, which do not write the key): None.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchSettings>,
    /// `--pattern rate | sweep`: the open loop's settings. Missing (runs from before the open
    /// loop, and fixed-batch runs, which do not write the key): None.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateSettings>,
    /// Where each request's lengths came from. Missing (runs from before mixes, and runs at
    /// fixed lengths, which do not write the key): fixed.
    #[serde(skip_serializing_if = "LengthMix::is_fixed")]
    pub mix: LengthMix,
    pub pattern: Option<Pattern>,
    pub waves: Option<u32>,
    #[serde(rename = "duration")]
    pub duration_s: Option<f64>,
    pub warmup: Option<Warmup>,
    pub ramp_per_s: Option<f64>,
    pub vocab_size: Option<u32>,
    /// `--tokenizer`; missing in runs from before the flag: None.
    pub tokenizer: Option<PathBuf>,
    /// Missing: false (a cold cache, the flag's default).
    pub prefix_cache_warm: bool,
    pub seed: Option<u64>,
    #[serde(rename = "grace")]
    pub grace_s: Option<f64>,
    pub metrics_url: Option<String>,
    /// `--metrics-url ROLE=URL`, without credentials; absent when none was given, so runs
    /// without them keep their configuration hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_roles: Vec<super::RoleEndpoint>,
    #[serde(rename = "scrape_interval")]
    pub scrape_interval_s: Option<f64>,
    pub require_metrics: bool,
    pub gpu_source: Option<String>,
    #[serde(rename = "gpu_interval")]
    pub gpu_interval_s: Option<f64>,
    pub require_gpu: bool,
    /// `--gpus` as given; absent when not given (the GPUs running the engine count), so runs
    /// without it keep their configuration hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<String>,
}

/// What a run recorded before a field existed reads as: layout version 0, DP 1 and a cold
/// prefix cache (the flags' defaults), nothing else known.
impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            version: 0,
            url: None,
            model: None,
            endpoint: None,
            dp: 1,
            request_timeout_s: None,
            steps: Vec::new(),
            search: None,
            rate: None,
            mix: LengthMix::Fixed,
            pattern: None,
            waves: None,
            duration_s: None,
            warmup: None,
            ramp_per_s: None,
            vocab_size: None,
            tokenizer: None,
            prefix_cache_warm: false,
            seed: None,
            grace_s: None,
            metrics_url: None,
            metrics_roles: Vec::new(),
            scrape_interval_s: None,
            require_metrics: false,
            gpu_source: None,
            gpu_interval_s: None,
            require_gpu: false,
            gpus: None,
        }
    }
}

impl ProbeSettings {
    /// Reads a run's stored configuration; an error means the stored JSON has a known key with
    /// a value of the wrong type (a corrupt or foreign database).
    pub fn from_stored(config: &serde_json::Value) -> Result<Self, serde_json::Error> {
        ProbeSettings::deserialize(config)
    }
}

impl From<ProbeConfig> for ProbeSettings {
    fn from(c: ProbeConfig) -> Self {
        ProbeSettings {
            version: PROBE_SETTINGS_VERSION,
            url: Some(c.url),
            model: c.model,
            endpoint: Some(c.endpoint),
            dp: c.dp,
            request_timeout_s: Some(c.request_timeout.as_secs_f64()),
            steps: c.steps,
            search: c.search,
            rate: c.rate,
            mix: c.mix,
            pattern: Some(c.pattern),
            waves: Some(c.waves),
            duration_s: Some(c.duration.as_secs_f64()),
            warmup: Some(c.warmup),
            ramp_per_s: c.ramp_per_s,
            vocab_size: c.vocab_size,
            tokenizer: c.tokenizer,
            prefix_cache_warm: c.prefix_cache_warm,
            seed: Some(c.seed),
            grace_s: Some(c.grace.as_secs_f64()),
            metrics_url: c.metrics_url,
            metrics_roles: c
                .metrics_roles
                .into_iter()
                .map(|r| super::RoleEndpoint {
                    role: r.role,
                    url: crate::store::roles::public_url(&r.url),
                })
                .collect(),
            scrape_interval_s: Some(c.scrape_interval.as_secs_f64()),
            require_metrics: c.require_metrics,
            gpu_source: c.gpu_source,
            gpu_interval_s: Some(c.gpu_interval.as_secs_f64()),
            require_gpu: c.require_gpu,
            gpus: c.gpus.map(|g| g.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::store::RunManifest;

    fn probe_config() -> ProbeConfig {
        use clap::Parser;
        let cli = crate::Cli::try_parse_from([
            "ceiling",
            "probe",
            "--url",
            "http://127.0.0.1:8000/v1",
            "--batch-sizes",
            "1,8",
            "--input-len",
            "128",
            "--output-len",
            "64",
            "--seed",
            "7",
            "--prefix-cache",
            "warm",
            "--dp",
            "2",
        ])
        .unwrap();
        let crate::cli::Command::Probe(args) = cli.command else {
            panic!("not a probe command")
        };
        ProbeConfig::from_cli(&args).unwrap()
    }

    /// What ceiling stored before the layout was versioned (and before `--tokenizer`), for
    /// the same flags: the keys and values the analysis and the history hash have always seen.
    fn unversioned(c: &ProbeConfig) -> serde_json::Value {
        json!({
            "url": "http://127.0.0.1:8000",
            "model": null,
            "endpoint": "completions",
            "dp": 2,
            "request_timeout": c.request_timeout.as_secs_f64(),
            "steps": [
                {"batch_size": 1, "input_len": 128, "output_len": 64},
                {"batch_size": 8, "input_len": 128, "output_len": 64},
            ],
            "pattern": "wave",
            "waves": c.waves,
            "duration": c.duration.as_secs_f64(),
            "warmup": {"waves": 1},
            "ramp_per_s": null,
            "vocab_size": null,
            "prefix_cache_warm": true,
            "seed": 7,
            "grace": c.grace.as_secs_f64(),
            "metrics_url": "http://127.0.0.1:8000/metrics",
            "scrape_interval": c.scrape_interval.as_secs_f64(),
            "require_metrics": false,
            "gpu_source": c.gpu_source,
            "gpu_interval": c.gpu_interval.as_secs_f64(),
            "require_gpu": false,
        })
    }

    #[test]
    fn the_probe_writes_the_old_keys_plus_version_and_the_hash_is_unchanged() {
        let c = probe_config();
        let written = serde_json::to_value(&c).unwrap();
        let mut old = unversioned(&c);
        assert_eq!(written["version"], PROBE_SETTINGS_VERSION);
        let mut without_version = written.clone();
        without_version.as_object_mut().unwrap().remove("version");
        old["tokenizer"] = serde_json::Value::Null;
        assert_eq!(without_version, old);
        let hash = |v: serde_json::Value| RunManifest::new("c".into(), v).probe_config_hash();
        assert_eq!(hash(written.clone()), hash(old));
        // And the stored JSON reads back to what was written.
        let read = ProbeSettings::from_stored(&written).unwrap();
        assert_eq!(read, ProbeSettings::from(c));
    }

    #[test]
    fn gpus_is_stored_only_when_given() {
        use clap::Parser;
        let cli = crate::Cli::try_parse_from([
            "ceiling",
            "probe",
            "--url",
            "http://127.0.0.1:8000",
            "--batch-sizes",
            "1",
            "--gpus",
            "GPU-a, GPU-b",
        ])
        .unwrap();
        let crate::cli::Command::Probe(args) = cli.command else {
            panic!("not a probe")
        };
        let c = ProbeConfig::from_cli(&args).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap()["gpus"], "GPU-a,GPU-b");
        assert!(
            serde_json::to_value(probe_config())
                .unwrap()
                .get("gpus")
                .is_none()
        );
    }

    #[test]
    fn an_unversioned_run_reads_with_the_documented_defaults() {
        let c = probe_config();
        let read = ProbeSettings::from_stored(&unversioned(&c)).unwrap();
        assert_eq!(read.version, 0);
        assert_eq!(read.tokenizer, None);
        assert_eq!(read.dp, 2);
        assert!(read.prefix_cache_warm);
        assert_eq!(read.warmup, Some(Warmup::Waves(1)));
        assert_eq!(read.steps.len(), 2);
        assert_eq!(
            read.request_timeout_s,
            Some(c.request_timeout.as_secs_f64())
        );

        // A synthetic run's config: nothing the probe writes, one key it does not know.
        let bare = ProbeSettings::from_stored(&json!({"write_load": true})).unwrap();
        assert_eq!(bare.version, 0);
        assert_eq!(bare.dp, 1);
        assert!(!bare.prefix_cache_warm);
        assert!(!bare.require_gpu);
        assert_eq!(bare.url, None);
        assert!(bare.steps.is_empty());
    }

    #[test]
    fn a_search_run_stores_its_settings_and_an_older_run_reads_without_them() {
        use clap::Parser;
        let cli = crate::Cli::try_parse_from([
            "ceiling",
            "probe",
            "--url",
            "http://127.0.0.1:8000",
            "--batch-sizes",
            "auto",
            "--budget",
            "2m",
            "--sla-otps",
            "30",
            "--input-len",
            "256",
            "--output-len",
            "128",
        ])
        .unwrap();
        let crate::cli::Command::Probe(args) = cli.command else {
            panic!("not a probe command")
        };
        let c = ProbeConfig::from_cli(&args).unwrap();
        let written = serde_json::to_value(&c).unwrap();
        assert_eq!(written["steps"], json!([]));
        assert_eq!(
            written["search"],
            json!({
                "input_len": 256,
                "output_len": 128,
                "budget_s": 120.0,
                "sla_otps": 30.0,
                "sla_tpot_s": null,
                "precision": 0.05,
                "engine_hold": null,
            })
        );
        let read = ProbeSettings::from_stored(&written).unwrap();
        assert_eq!(read.search, c.search);
        // A run with listed sizes writes no `search` key (its hash is unchanged), and a run
        // stored before the search existed reads as no search.
        let listed = serde_json::to_value(probe_config()).unwrap();
        assert!(listed.get("search").is_none(), "{listed}");
        let old = ProbeSettings::from_stored(&unversioned(&probe_config())).unwrap();
        assert_eq!(old.search, None);
        assert!(ProbeSettings::from_stored(&json!({"search": {"input_len": 1}})).is_err());
    }

    #[test]
    fn a_closed_loop_warmup_round_trips_in_seconds() {
        let v = json!({"warmup": {"duration": 2.5}, "pattern": "closed-loop"});
        let read = ProbeSettings::from_stored(&v).unwrap();
        assert_eq!(
            read.warmup,
            Some(Warmup::Duration(Duration::from_millis(2500)))
        );
        assert_eq!(read.pattern, Some(Pattern::ClosedLoop));
    }

    #[test]
    fn a_known_key_with_a_wrong_type_is_an_error_not_a_default() {
        assert!(ProbeSettings::from_stored(&json!({"dp": "two"})).is_err());
        assert!(ProbeSettings::from_stored(&json!({"prefix_cache_warm": 1})).is_err());
    }
}
