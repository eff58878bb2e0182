//! Speculative decoding on every flavor, end to end: the engine view's step time within 2 % of
//! the simulator's true decode step and its MTP within 2 % of the true accept length, each engine
//! read by its own counting rule (docs/ENGINE-METRICS.md §8): SGLang's per-token inter-token
//! histogram and decode passes, llama.cpp's spec counters that move only when a slot is released,
//! vLLM with DP 2 and one API server per rank (steps counted once per front-end).

use ceiling::sim::{Faults, Profile, SimConfig, SimFlavor, SimHandle, SpecConfig, Truth};
use serde_json::Value;

use super::{analyze_json, codes, db_in, linear, probe};

/// 3 draft tokens accepted with probability 0.7 each: a true accept length near 2.53. Steps of
/// 12–17 ms, so that a late wake-up of the simulator's thread on a loaded 2-core host moves the
/// true mean (over every step) less than the 2 % the engine view is held to.
fn spec_profile() -> Profile {
    Profile {
        t0_s: 0.012,
        k_seq_s: 0.000_3,
        spec: Some(SpecConfig {
            num_speculative_tokens: 3,
            acceptance_rate: 0.7,
        }),
        ..linear()
    }
}

async fn start(flavor: SimFlavor, dp: u32) -> SimHandle {
    let mut cfg = SimConfig::new(spec_profile());
    cfg.flavor = flavor;
    cfg.dp = dp;
    cfg.faults = Faults::default();
    ceiling::sim::start(cfg).await.unwrap()
}

/// Steps at `bs` (per rank) and their summed duration, so two truths can be subtracted.
fn decode_sum(t: &Truth, bs: u32) -> (u64, f64) {
    t.decode_at(bs)
        .map_or((0, 0.0), |s| (s.count, s.mean_s * s.count as f64))
}

/// The true mean decode step at `bs` and the true accept length between two truths.
fn truth_between(before: &Truth, after: &Truth, bs: u32) -> (f64, f64) {
    let ((n0, s0), (n1, s1)) = (decode_sum(before, bs), decode_sum(after, bs));
    let (b, a) = (&before.totals, &after.totals);
    let verify = (a.spec_verify_steps - b.spec_verify_steps) as f64;
    let accept = 1.0 + (a.spec_accepted - b.spec_accepted) as f64 / verify;
    ((s1 - s0) / (n1 - n0) as f64, accept)
}

/// Probes each batch size in a run of its own (no warm-up wave: a first run warmed the engine),
/// so the truth before and after it holds that step's engine steps and drafts only; checks the
/// engine view against them and returns each run's analysis.
async fn engine_view_is_true(flavor: SimFlavor, dp: u32, endpoint: &str) -> Vec<Value> {
    let h = start(flavor, dp).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let dp_arg = dp.to_string();
    let run = |bs: &'static str, output: &'static str, warmup: &'static str| {
        let args = vec![
            "--endpoint",
            endpoint,
            "--batch-sizes",
            bs,
            "--input-len",
            "32",
            "--output-len",
            output,
            "--waves",
            "2",
            "--warmup",
            warmup,
            "--dp",
            &dp_arg,
            "--scrape-interval",
            "40ms",
        ];
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let warm = run("8", "16", "1");
    let warm: Vec<&str> = warm.iter().map(String::as_str).collect();
    assert!(probe(&db, &h.base_url(), &warm).await.status.success());
    let mut out = Vec::new();
    for bs in ["8", "32"] {
        let args = run(bs, "200", "0");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = h.truth();
        let status = probe(&db, &h.base_url(), &args).await;
        assert!(status.status.success(), "{status:?}");
        let after = h.truth();
        let v = analyze_json(&db, &[]).await;
        let t = &v["timings"][0];
        let per_rank = bs.parse::<u32>().unwrap() / dp;
        let (step, accept) = truth_between(&before, &after, per_rank);
        let what = format!("{flavor:?} DP {dp} bs {bs}");
        let mtp = t["mtp"].as_f64().unwrap();
        assert!(
            (mtp / accept - 1.0).abs() < 0.02,
            "{what}: MTP {mtp} ({}) vs true accept length {accept}",
            t["mtp_source"]
        );
        let engine = t["t_fwd_engine_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("{what}: no engine step time: {t}"));
        assert!(
            (engine / step - 1.0).abs() < 0.02,
            "{what}: engine step {engine} vs true {step} (itl {}, steps {})",
            t["t_fwd_engine_itl_s"],
            t["t_fwd_engine_steps_s"]
        );
        out.push(v);
    }
    h.shutdown().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_spec_decoding_on_chat_reads_mtp_and_step_time_from_its_own_counters() {
    let _serial = crate::sim::serial().await;
    // The case: on chat the client cannot count tokens per chunk, so before this MTP
    // fell back to "assumed 1.0" and the per-token inter-token mean was read as a step time.
    for v in engine_view_is_true(SimFlavor::Sglang, 1, "chat").await {
        let t = &v["timings"][0];
        assert_eq!(t["mtp_source"], "engine_tokens_per_step", "{t}");
        let found = codes(&v, &["warn", "error"]);
        assert!(!found.contains(&"identity_broken".into()), "{found:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_spec_decoding_reads_mtp_from_counters_that_move_at_request_end() {
    let _serial = crate::sim::serial().await;
    for v in engine_view_is_true(SimFlavor::Llamacpp, 1, "completions").await {
        assert_eq!(v["timings"][0]["mtp_source"], "spec_decode_counters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_dp2_with_a_front_end_per_rank_counts_each_ranks_steps() {
    let _serial = crate::sim::serial().await;
    for v in engine_view_is_true(SimFlavor::Vllm, 2, "completions").await {
        // Both ranks' running batches, side by side, and balanced: no imbalance finding.
        let t = &v["timings"][0];
        let ranks = t["ranks"].as_array().unwrap();
        assert_eq!(ranks.len(), 2, "{t}");
        let steps = t["t_fwd_engine_steps_s"].as_f64().unwrap();
        let itl = t["t_fwd_engine_itl_s"].as_f64().unwrap();
        assert!(
            (steps / itl - 1.0).abs() < 0.02,
            "steps {steps} vs itl {itl}"
        );
        assert!(!codes(&v, &["warn"]).contains(&"dp_rank_imbalance".into()));
    }
}
