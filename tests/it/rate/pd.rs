//! A 1P+1D simulated pair behind the router, probed at a rate one side cannot keep: the prefill
//! and decode servers' metrics are scraped apart (`--metrics-url prefill=URL --metrics-url
//! decode=URL`), and the report names the slower side as the one that limits, with the TTFT
//! split into that side's queue and the rest.

use std::net::{IpAddr, Ipv4Addr};

use ceiling_sim::{Profile, RouterConfig, SimConfig, SimFlavor, SimRole};
use serde_json::Value;

use super::{f, probe, profile};
use crate::cli::ceiling;

/// A prefill server with `pre`, a decode server with `dec`, the router in front; probes an
/// open loop at 16 req/s for 3 s of 512-token prompts and 32-token answers. Returns the
/// analysis, the terminal report and the recorded endpoints (role, engine kind).
async fn run_pair(pre: Profile, dec: Profile) -> (Value, String, Vec<(String, Option<String>)>) {
    let start = |profile, role| async move {
        let mut cfg = SimConfig::new(profile);
        cfg.flavor = SimFlavor::Vllm;
        cfg.role = role;
        ceiling_sim::start(cfg).await.unwrap()
    };
    let p = start(pre, SimRole::Prefill).await;
    let d = start(dec, SimRole::Decode).await;
    let router = ceiling_sim::start_router(RouterConfig {
        prefill: vec![p.base_url()],
        decode: vec![d.base_url()],
        handoff_s: 0.002,
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pd.db");
    let (pm, dm) = (
        format!("prefill={}/metrics", p.base_url()),
        format!("decode={}/metrics", d.base_url()),
    );
    let (out, json) = probe(
        &db,
        &router.base_url(),
        &[
            "--pattern",
            "rate",
            "--rates",
            "16",
            "--duration",
            "3s",
            "--warmup",
            "0",
            "--input-len",
            "512",
            "--output-len",
            "32",
            "--metrics-url",
            &pm,
            "--metrics-url",
            &dm,
        ],
    )
    .await;
    router.shutdown().await;
    p.shutdown().await;
    d.shutdown().await;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    // No warning about the router's own (absent) metrics: it is not scraped.
    assert!(!stderr.contains("metrics cannot be read"), "{stderr}");
    // The terminal report, then the HTML one.
    let terminal = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["analyze", "latest"])
        .output()
        .unwrap();
    let out_dir = dir.path().join("report");
    let html = ceiling()
        .arg("--db")
        .arg(&db)
        .args(["report", "latest", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        html.status.success(),
        "{}",
        String::from_utf8_lossy(&html.stderr)
    );
    let page = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        page.contains("Prefill/decode disaggregation"),
        "no PD section"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare("SELECT role, engine_kind FROM metric_sources ORDER BY source")
        .unwrap();
    let sources = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (
        json["analysis"].clone(),
        format!("{}\n{page}", String::from_utf8_lossy(&terminal.stdout)),
        sources,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_prefill_side_is_named_the_limit_and_its_queue_holds_the_ttft() {
    let _serial = crate::sim::serial().await;
    // Prefill: one 512-token prompt per step of 4 + 102 ms, about 9.4 req/s against 16 asked.
    let pre = Profile {
        k_prefill_s: 0.000_2,
        prefill_chunk_tokens: 512,
        ..profile()
    };
    let (a, report, sources) = run_pair(pre, profile()).await;
    let vllm = Some("vllm".to_string());
    assert_eq!(
        sources,
        vec![("prefill".into(), vllm.clone()), ("decode".into(), vllm)]
    );
    let pd = &a["pd"];
    assert_eq!(pd["verdict"]["limiting"], "prefill", "{pd:#}");
    let s = &pd["steps"][0];
    // The prefill side's queue holds most of the TTFT; the decode side barely queues.
    let (ttft, queue) = (
        f(&s["ttft"]["client_ttft_s"]),
        f(&s["ttft"]["prefill_queue_s"]),
    );
    assert!(queue > 0.5 * ttft, "prefill queue {queue} of TTFT {ttft}");
    assert!(f(&s["decode"]["queue_s_mean"]) < 0.01, "{s:#}");
    // Its compute is the cost model's: 4 ms + 512 × 0.2 ms.
    let compute = f(&s["prefill"]["prefill_s_mean"]);
    assert!((compute - 0.1064).abs() < 0.02, "prefill compute {compute}");
    // TPOT's step time from the decode side: the tiny profile's few-sequence step (4.x ms).
    let step = f(&s["decode"]["itl_s_mean"]);
    assert!((0.004..0.008).contains(&step), "decode step {step}");
    assert!(report.contains("the prefill side limits"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_decode_side_is_named_the_limit() {
    let _serial = crate::sim::serial().await;
    // Decode: 4 sequences of 32 tokens at about 21 ms a step, about 6 req/s against 16 asked.
    let dec = Profile {
        t0_s: 0.02,
        max_num_seqs: 4,
        ..profile()
    };
    let (a, report, _) = run_pair(profile(), dec).await;
    let pd = &a["pd"];
    assert_eq!(pd["verdict"]["limiting"], "decode", "{pd:#}");
    let s = &pd["steps"][0];
    assert!(f(&s["decode"]["queue_s_mean"]) > 0.1, "{s:#}");
    assert!(f(&s["prefill"]["queue_s_mean"]) < 0.01, "{s:#}");
    assert!(report.contains("the decode side limits"), "{report}");
}
