//! A probe over several length pairs against the simulated engine, whose step time has a known
//! context term (`t0 + k_seq × running + k_ctx × Σ context`, `sim/src/profile.rs` `step_s`):
//! the fit recovers `k_ctx` as `c`, each length pair's ceiling matches the one `/sim/truth`'s
//! profile implies, and `ceiling report` writes the table by length and a `result.json` that
//! validates against the schema.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use ceiling::sim::{Profile, SimConfig, SimFlavor, StepTruth, Truth};
use serde_json::Value;

use crate::cli::ceiling;

/// The tiny profile with a context cost that dominates at long lengths: per sequence 0.15 ms,
/// plus 0.2 µs per context token (0.8 ms at 4k), so at bs 32 and 4k of context the context
/// term is 75 % of the 35 ms step. Prefill chunks of 32k tokens put a wave's first tokens
/// within 4 steps of each other even at bs 32 × 4,096 input tokens, so the shortest output
/// (32) still leaves a decode window of 28 steps where every sequence decodes (with 4k chunks
/// the 32 prefill steps would leave none).
fn profile() -> Profile {
    Profile {
        max_model_len: 8192,
        prefill_chunk_tokens: 32_768,
        k_prefill_s: 0.000_000_5,
        eos_probability: 0.0,
        ..crate::sim::tiny()
    }
}

/// How much longer the simulator's decode steps ran than its cost model asked, over the run:
/// on a loaded host its steps overrun by a per cent or two, and the probe measures the steps
/// that ran, not the model.
fn overrun(t: &Truth) -> f64 {
    let sum = |f: fn(&StepTruth) -> f64| -> f64 {
        t.decode_steps.iter().map(|s| s.count as f64 * f(s)).sum()
    };
    sum(|s| s.mean_s) / sum(|s| s.nominal_mean_s)
}

/// The ceiling `/sim/truth` implies for one length pair: the largest batch that fits the
/// profile's KV blocks and sequence cap and whose true step time (the cost model's, times the
/// run's [`overrun`]) meets `sla_otps`, and the throughput there (DP 1, no speculative decoding).
fn true_ceiling(t: &Truth, input_len: u32, output_len: u32, sla_otps: f64) -> (u32, f64) {
    let p = &t.profile;
    let ctx = f64::from(input_len) + f64::from(output_len) / 2.0;
    let scale = overrun(t) / t.time_scale;
    let step_s = |bs: f64| (p.t0_s + p.k_seq_s * bs + p.k_ctx_s * bs * ctx) * scale;
    let blocks = (input_len + output_len).div_ceil(p.block_size);
    let cap = (p.kv_blocks / blocks).min(p.max_num_seqs);
    let bs = (1..=cap)
        .rev()
        .find(|&bs| 1.0 / step_s(f64::from(bs)) >= sla_otps)
        .unwrap();
    (bs, f64::from(bs) / step_s(f64::from(bs)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_lengths_recover_the_context_term_and_the_ceiling_per_length() {
    let _serial = crate::sim::serial().await;
    let mut cfg = SimConfig::new(profile());
    cfg.flavor = SimFlavor::Vllm;
    let h = ceiling::sim::start(cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let mut cmd = ceiling();
    cmd.arg("--db").arg(&db).args([
        "probe",
        "--url",
        &h.base_url(),
        "--batch-sizes",
        "1,8,32",
        "--input-len",
        "64,1024,4096",
        "--output-len",
        "32,64",
        "--waves",
        "2",
        "--scrape-interval",
        "100ms",
        "--gpu-interval",
        "0s",
        "--json",
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let truth = h.truth();
    h.shutdown().await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &v["analysis"];
    assert_eq!(
        a["steps"].as_array().unwrap().len(),
        18,
        "3 bs × 3 in × 2 out"
    );

    let fit = &a["fit"];
    assert_eq!(fit["context_term"], "fitted", "{fit}");
    let p = &truth.profile;
    eprintln!(
        "fit: a {} (true {}), b {} (true {}), c {} {} (true {})",
        fit["a_s"],
        p.t0_s,
        fit["b_s_per_seq"],
        p.k_seq_s,
        fit["c_s_per_seq_token"],
        fit["c_ci95_s_per_seq_token"],
        p.k_ctx_s
    );
    let rel = |k: &str, truth: f64| (fit[k].as_f64().unwrap() / truth - 1.0).abs();
    // The client's step time is within 2 % of the truth at every step (the probe tests);
    // the context term is 40–78 % of the step at the long steps that carry it, so a 2 % error
    // in a step time moves c by at most 2 % / 0.4 = 5 %.
    assert!(rel("c_s_per_seq_token", p.k_ctx_s) < 0.05, "c: {fit}");
    assert!(rel("a_s", p.t0_s) < 0.05, "a: {fit}");
    // b shares the long steps with c: a 2 % error in the 35 ms step at bs 32 and 4k of
    // context (0.7 ms) that the fit gives to b rather than c moves b by up to
    // 0.7 ms / 32 / 0.15 ms = 15 %; 20 % leaves room for two such steps' errors to add.
    assert!(rel("b_s_per_seq", p.k_seq_s) < 0.20, "b: {fit}");
    let [lo, hi] = [0, 1].map(|i| fit["c_ci95_s_per_seq_token"][i].as_f64().unwrap());
    assert!(
        lo < hi && hi - lo < 0.2 * p.k_ctx_s,
        "c's interval {lo}–{hi}"
    );

    // SLA 100 tok/s: a step of at most 10 ms, so the ceilings fall at bs 6 (4k), 16 (1k) and
    // 36 (64 tokens): inside the measured batch sizes or just beyond, where the fit's error is
    // the measured steps' own (2 %). Throughput within 5 %: that error plus one batch size either
    // side of a limit that falls between two (2.6 % at 1k).
    let mut cmd = ceiling();
    cmd.arg("--db")
        .arg(&db)
        .args(["analyze", "latest", "--json", "--sla-otps", "100"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "the simulator's steps overran their model by {:.2} %",
        (overrun(&truth) - 1.0) * 100.0
    );
    let ceilings = v["ceilings"].as_array().unwrap();
    assert_eq!(ceilings.len(), 6);
    for c in ceilings {
        let (i, o) = (
            c["input_len"].as_u64().unwrap() as u32,
            c["output_len"].as_u64().unwrap() as u32,
        );
        let (bs_true, tput_true) = true_ceiling(&truth, i, o, 100.0);
        let bs = c["bs_per_rank"].as_u64().unwrap() as f64;
        let tput = c["throughput_tok_s"].as_f64().unwrap();
        eprintln!(
            "ceiling {i}/{o}: bs {bs} ({bs_true} true), {tput:.0} tok/s ({tput_true:.0} true)"
        );
        // The batch size is looser than the throughput: near the SLA line the throughput moves
        // under 1 % per batch size, so a measured step (bs 32) whose time is a per cent under
        // the fit's beats the fit's bs 33–35 (the ceiling keeps measured step times), and b's
        // error (15 % of b at 64 tokens is 0.8 ms of the 10 ms step at bs 34) moves where the
        // line is crossed: 15 %, and at least one either side (at 1k the true step at bs 16 is
        // 9.73 ms, at bs 17 10.09 ms).
        let slack = (0.15 * f64::from(bs_true)).max(1.0);
        assert!(
            (bs - f64::from(bs_true)).abs() <= slack,
            "{i}/{o}: bs {bs} vs {bs_true}"
        );
        assert!(
            (tput / tput_true - 1.0).abs() < 0.05,
            "{i}/{o}: {tput} tok/s vs {tput_true}"
        );
        let bucket = if i + o >= 4096 { "4k-16k" } else { "0-4k" };
        assert_eq!(c["length_bucket"], bucket);
    }

    let out_dir = dir.path().join("rep");
    let mut cmd = ceiling();
    cmd.arg("--db")
        .arg(&db)
        .args(["report", "latest", "--format", "md,json", "--out"])
        .arg(&out_dir);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let result = crate::report::validate(&out_dir.join("result.json"));
    assert_eq!(result["schema_version"], 2);
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Ceiling by length"), "{md}");
    assert!(md.contains("| 4k-16k | 4096 | 64 |"), "{md}");
    assert!(md.contains("(charts/ceiling_vs_length.svg)"), "{md}");
}
