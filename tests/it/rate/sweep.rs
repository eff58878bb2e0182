//! `--pattern sweep` against the simulated engine with a known cost model: the macro ceiling
//! lands within 10 % of the rate the cost model implies, and beside the micro ceiling (from a
//! wave run of the same profile, `--against`) the gap is explained by the identity.

use ceiling_sim::{SimFlavor, Truth};

use super::{f, probe, profile};
use crate::cli::ceiling;

/// The rate at which the cost model's steady-state step time meets `tpot_s`. Under an open
/// loop at λ req/s of `input` + `output` tokens, each step of `t` seconds holds
/// `B = λ × output × t` decoding sequences (Little's law over the `output` steps a request
/// decodes) and prefills `λ × t × input` tokens, so
/// `t = t0 + B × (k_seq + k_ctx × (input + output / 2)) + k_prefill × λ × t × input`, i.e.
/// `t = t0 / (1 − λ × (k_prefill × input + output × (k_seq + k_ctx × (input + output / 2))))`;
/// solving `t = tpot` gives λ. In the simulator's time (divided by its time scale), and with
/// the cost the steps really took: a loaded host makes the simulator's steps overrun their
/// nominal time (by `overrun`, measured over its decode steps), and every term with them.
fn implied_rate(t: &Truth, input: f64, output: f64, tpot_s: f64) -> f64 {
    let p = &t.profile;
    let (took, nominal) = t.decode_steps.iter().fold((0.0, 0.0), |(a, b), s| {
        (
            a + s.mean_s * s.count as f64,
            b + s.nominal_mean_s * s.count as f64,
        )
    });
    let overrun = if nominal > 0.0 { took / nominal } else { 1.0 };
    let per_req = p.k_prefill_s * input + output * (p.k_seq_s + p.k_ctx_s * (input + output / 2.0));
    let tpot_nominal = tpot_s * t.time_scale;
    (1.0 - overrun * p.t0_s / tpot_nominal) / (overrun * per_req) * t.time_scale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_finds_the_macro_ceiling_the_cost_model_implies_beside_the_micro_one() {
    let _serial = crate::sim::serial().await;
    let time_scale = 0.25;
    let sim = crate::sim::start(SimFlavor::Vllm, profile(), 1, time_scale).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sweep.db");
    // The micro ceiling of the same profile: waves at three batch sizes.
    let (out, _) = probe(
        &db,
        &sim.base_url(),
        &[
            "--batch-sizes",
            "8,32,64",
            "--input-len",
            "32",
            "--output-len",
            "32",
            "--waves",
            "2",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, json) = probe(
        &db,
        &sim.base_url(),
        &[
            "--pattern",
            "sweep",
            "--saturation-concurrency",
            "128",
            "--sweep-points",
            "16",
            "--duration",
            "4s",
            "--warmup",
            "0",
            "--input-len",
            "32",
            "--output-len",
            "32",
            "--sla-tpot",
            "40ms",
            "--sla-ttft",
            "1s",
        ],
    )
    .await;
    let truth = sim.truth();
    sim.shutdown().await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = &json["analysis"]["macro_ceiling"];
    // The sweep's points lie ~15 % apart near the ceiling: the step that met the SLA and the
    // first that missed bracket it, and the binding p99 interpolated between them places it.
    let kept = f(&m["rate_achieved_rps"]);
    let missed = f(&m["first_miss_rate_rps"]);
    let got = f(&m["rate_interpolated_rps"]);
    let want = implied_rate(&truth, 32.0, 32.0, 0.040);
    eprintln!(
        "macro ceiling {got:.2} req/s (between {kept:.2} and {missed:.2}); cost model {want:.2} req/s\n{m:#}"
    );
    assert!(kept <= got && got <= missed, "{kept} ≤ {got} ≤ {missed}");
    assert!((got - want).abs() / want <= 0.10, "{got} vs {want}");

    // Beside the micro ceiling of the wave run.
    let analyze = ceiling()
        .arg("--db")
        .arg(&db)
        .args([
            "analyze",
            "latest",
            "--against",
            "1",
            "--sla-tpot",
            "40ms",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        analyze.status.success(),
        "{}",
        String::from_utf8_lossy(&analyze.stderr)
    );
    let a: serde_json::Value = serde_json::from_slice(&analyze.stdout).unwrap();
    let g = &a["macro_ceiling"]["gap"];
    eprintln!("{g:#}");
    // The identity holds at the macro ceiling: running × OTPS within 10 % of QPS × output_len.
    let (identity, macro_tok_s) = (f(&g["identity_tok_s"]), f(&g["macro_tok_s"]));
    assert!(
        (identity - macro_tok_s).abs() / macro_tok_s < 0.10,
        "{identity} vs {macro_tok_s}"
    );
    // The macro ceiling is below the micro one, and the batch the engine held explains it.
    assert!(f(&g["ratio"]) < 1.0);
    assert!(f(&g["batch_share"]) < 1.0);
    assert!(!g["explanation"].as_array().unwrap().is_empty());
}
