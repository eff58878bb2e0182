//! What changed beside a regression, each cause with its evidence (docs/NIGHTLY.md,
//! "Attribution"): the run's key against the last baseline run's (driver, engine version, GPU
//! boards, KV capacity, sequence cap), and the GPU's window figures against their baseline
//! (SM and memory clocks, power against its limit, throttle reasons, temperature). Typed rules
//! over the judged frame's few rows; the arithmetic was the polars query's.

use serde::Serialize;

use super::regress::MetricVerdict;
use super::{HistoryStep, RunKey};

/// A clock this much below its baseline median is named.
pub const CLOCK_DROP_REL: f64 = 0.02;
/// Power within this fraction of its limit is "at the cap".
pub const POWER_AT_CAP_FRAC: f64 = 0.95;
/// A temperature this many °C above its baseline median is named.
pub const TEMP_RISE_C: f64 = 5.0;

/// One cause beside a regression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    /// Stable code: `driver_changed`, `engine_version_changed`, `gpu_swapped`,
    /// `sm_clock_lower`, `mem_clock_lower`, `power_at_cap`, `throttled`, `temperature_higher`,
    /// `kv_capacity_changed`, `max_num_seqs_changed`, `model_revision_changed`,
    /// `other_gpu_processes`.
    pub code: String,
    /// One line, e.g. `driver 550.54 → 560.28`.
    pub message: String,
    pub evidence: serde_json::Value,
}

fn cause(code: &str, message: String, evidence: serde_json::Value) -> Cause {
    Cause {
        code: code.into(),
        message,
        evidence,
    }
}

/// The causes beside run `this` against the last baseline run `last` (both rows of their
/// first step), with the evidence metrics' verdict rows of `this`.
pub fn attribute(
    this: &HistoryStep,
    this_steps: &[&HistoryStep],
    last: Option<&HistoryStep>,
    evidence: &[MetricVerdict],
) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(last) = last {
        key_changes(this, last, &mut out);
    }
    out.extend(other_processes(&this.key, last.map(|l| &l.key)));
    gpu_evidence(this, this_steps, evidence, &mut out);
    out
}

fn key_changes(this: &HistoryStep, last: &HistoryStep, out: &mut Vec<Cause>) {
    let (a, b) = (&last.key, &this.key);
    let changed = |code: &str, what: &str, x: &Option<String>, y: &Option<String>| {
        (x != y).then(|| {
            let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
            cause(
                code,
                format!("{what} {} → {}", s(x), s(y)),
                serde_json::json!({"before": x, "after": y, "baseline_run": a.run_id}),
            )
        })
    };
    out.extend(changed(
        "driver_changed",
        "driver",
        &a.driver_version,
        &b.driver_version,
    ));
    out.extend(changed(
        "engine_version_changed",
        "engine version",
        &a.engine_version,
        &b.engine_version,
    ));
    out.extend(changed(
        "gpu_swapped",
        "GPU boards (UUIDs)",
        &a.gpu_uuids,
        &b.gpu_uuids,
    ));
    // Named only where both runs say: a run recorded before the revision was, or an engine
    // that tells nothing of its weights, is not a change.
    if a.model_revision.is_some() && b.model_revision.is_some() {
        out.extend(changed(
            "model_revision_changed",
            "model revision",
            &a.model_revision,
            &b.model_revision,
        ));
    }
    let (ka, kb) = (last.run.kv_capacity_tokens, this.run.kv_capacity_tokens);
    if ka != kb {
        out.push(cause(
            "kv_capacity_changed",
            format!("KV capacity {} → {} tokens", opt(ka), opt(kb)),
            serde_json::json!({"before": ka, "after": kb}),
        ));
    }
    let (sa, sb) = (last.run.max_num_seqs, this.run.max_num_seqs);
    if sa != sb {
        out.push(cause(
            "max_num_seqs_changed",
            format!(
                "max sequences {} → {}",
                opt(sa.map(f64::from)),
                opt(sb.map(f64::from))
            ),
            serde_json::json!({"before": sa, "after": sb}),
        ));
    }
}

/// Compute processes beside the engine's on its GPUs at the run's start, more of them than in
/// the last baseline run (or none known there): another job sharing the GPU. Where the
/// engine's processes could not be told apart, more compute processes in all than in the
/// last baseline run.
fn other_processes(this: &RunKey, last: Option<&RunKey>) -> Option<Cause> {
    let n = |s: &str| s.split(", ").filter(|x| !x.is_empty()).count();
    if let Some(others) = this.other_gpu_processes.as_deref().filter(|o| n(o) > 0) {
        let before = last.and_then(|l| l.other_gpu_processes.as_deref()).map(n);
        if before.is_none_or(|b| n(others) > b) {
            return Some(cause(
                "other_gpu_processes",
                format!(
                    "other processes on the GPUs: {} (pid {others}) beside the engine's{}",
                    n(others),
                    before.map_or(String::new(), |b| format!(", {b} in the last baseline run"))
                ),
                serde_json::json!({"processes": others, "baseline": before, "baseline_run": last.map(|l| l.run_id)}),
            ));
        }
        return None;
    }
    let (now, before) = (this.gpu_compute_processes?, last?.gpu_compute_processes?);
    (this.other_gpu_processes.is_none() && now > before).then(|| {
        cause(
            "other_gpu_processes",
            format!("compute processes on the GPUs {before} → {now} (the engine's not told apart)"),
            serde_json::json!({"before": before, "after": now, "baseline_run": last.map(|l| l.run_id)}),
        )
    })
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "unknown".into(), |v| format!("{v:.0}"))
}

/// The largest relative drop of an evidence metric over the batch sizes, with its row.
fn worst<'a>(evidence: &'a [MetricVerdict], metric: &str) -> Option<&'a MetricVerdict> {
    evidence
        .iter()
        .filter(|v| v.metric == metric && v.change_rel.is_some())
        .min_by(|a, b| {
            a.change_rel
                .partial_cmp(&b.change_rel)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
}

fn gpu_evidence(
    this: &HistoryStep,
    steps: &[&HistoryStep],
    evidence: &[MetricVerdict],
    out: &mut Vec<Cause>,
) {
    for (metric, code, what) in [
        ("sm_clock_mean_mhz", "sm_clock_lower", "SM clock"),
        ("mem_clock_mean_mhz", "mem_clock_lower", "memory clock"),
    ] {
        if let Some(v) = worst(evidence, metric).filter(|v| {
            v.change_rel.is_some_and(|r| r <= -CLOCK_DROP_REL) && v.z.is_none_or(|z| z.abs() > 3.0)
        }) {
            out.push(cause(
                code,
                format!(
                    "{what} {:+.0} % ({:.0} → {:.0} MHz at bs {})",
                    v.change_rel.unwrap_or(0.0) * 100.0,
                    v.baseline_median.unwrap_or(f64::NAN),
                    v.value,
                    v.batch_size
                ),
                serde_json::to_value(v).unwrap_or_default(),
            ));
        }
    }
    let power = steps
        .iter()
        .filter_map(|s| s.step.power_mean_w)
        .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))));
    if let (Some(p), Some(limit)) = (power, this.key.power_limit_w)
        && limit > 0.0
        && p >= POWER_AT_CAP_FRAC * limit
    {
        out.push(cause(
            "power_at_cap",
            format!("power {p:.0} W at its {limit:.0} W limit"),
            serde_json::json!({"power_mean_w": p, "power_limit_w": limit}),
        ));
    }
    let mut reasons: Vec<&str> = steps
        .iter()
        .filter_map(|s| s.step.throttle_reasons.as_deref())
        .flat_map(|r| r.split(',').filter(|x| !x.is_empty()))
        .collect();
    reasons.sort_unstable();
    reasons.dedup();
    if !reasons.is_empty() {
        out.push(cause(
            "throttled",
            format!("clock-event reasons: {}", reasons.join(", ")),
            serde_json::json!({"reasons": reasons}),
        ));
    }
    let hottest = evidence
        .iter()
        .filter(|v| v.metric == "temp_mean_c")
        .filter_map(|v| Some((v, v.value - v.baseline_median?)))
        .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    if let Some((v, rise)) = hottest.filter(|(_, r)| *r >= TEMP_RISE_C) {
        out.push(cause(
            "temperature_higher",
            format!(
                "temperature +{rise:.0} °C ({:.0} → {:.0} °C)",
                v.baseline_median.unwrap_or(f64::NAN),
                v.value
            ),
            serde_json::to_value(v).unwrap_or_default(),
        ));
    }
}
