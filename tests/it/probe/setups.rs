//! Probe runs set up to be wrong (KV too small, a pinned seed against a prefix cache,
//! speculative decoding) raising the right findings, and chat prompts built with a tokenizer.

use std::path::Path;

use ceiling::sim::{Faults, Profile, SimFlavor, SpecConfig};
use ceiling::store::Store;

use super::{analyze_json, codes, db_in, linear, probe, requests, sim};

/// One wave of bs 16 × (64 + 64) tokens, for a KV cache of 768.
const SMALL_KV_ARGS: [&str; 8] = [
    "--batch-sizes",
    "16",
    "--input-len",
    "64",
    "--output-len",
    "64",
    "--waves",
    "1",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_set_up_wrong_raise_the_right_findings() {
    let _serial = crate::sim::serial().await;
    let dir = tempfile::tempdir().unwrap();

    // KV for 768 tokens: bs 16 × (64 + 64) cannot fit, so requests queue and decode preempts.
    let h = sim(
        Profile {
            kv_blocks: 48,
            ..linear()
        },
        Faults::default(),
    )
    .await;
    let db = dir.path().join("kv.db");
    let out = probe(&db, &h.base_url(), &SMALL_KV_ARGS).await;
    assert!(out.status.success(), "{out:?}");
    let v = analyze_json(&db, &[]).await;
    let found = codes(&v, &["warn", "error"]);
    assert!(found.contains(&"engine_queueing".into()), "{found:?}");
    assert!(found.contains(&"preemptions".into()), "{found:?}");
    h.shutdown().await;

    // A pinned seed sends the same prompts twice: the second run hits the prefix cache.
    let h = sim(linear(), Faults::default()).await;
    let db = dir.path().join("cache.db");
    let args = [
        "--batch-sizes",
        "8",
        "--input-len",
        "256",
        "--output-len",
        "16",
        "--waves",
        "1",
        "--seed",
        "7",
    ];
    for _ in 0..2 {
        let out = probe(&db, &h.base_url(), &args).await;
        assert!(out.status.success(), "{out:?}");
    }
    let v = analyze_json(&db, &[]).await;
    assert!(
        codes(&v, &["warn"]).contains(&"prefix_cache_warm".into()),
        "{}",
        v["findings"]
    );
    // Without the pinned seed each run sends new prompts: no cache hits, no finding.
    let args = [
        "--batch-sizes",
        "8",
        "--input-len",
        "256",
        "--output-len",
        "16",
        "--waves",
        "1",
    ];
    for _ in 0..2 {
        assert!(probe(&db, &h.base_url(), &args).await.status.success());
    }
    let v = analyze_json(&db, &[]).await;
    assert!(
        !codes(&v, &["warn"]).contains(&"prefix_cache_warm".into()),
        "{}",
        v["findings"]
    );
    h.shutdown().await;

    // Speculative decoding: several tokens per step. The analysis reads MTP from the engine's
    // spec-decode counters, so the throughput identity holds and nothing is flagged as broken.
    let spec = Profile {
        spec: Some(SpecConfig {
            num_speculative_tokens: 3,
            acceptance_rate: 0.6,
        }),
        ..linear()
    };
    let h = sim(spec, Faults::default()).await;
    let db = dir.path().join("spec.db");
    let args = [
        "--batch-sizes",
        "4,16",
        "--input-len",
        "32",
        "--output-len",
        "96",
        "--waves",
        "2",
    ];
    assert!(probe(&db, &h.base_url(), &args).await.status.success());
    let v = analyze_json(&db, &[]).await;
    for t in v["timings"].as_array().unwrap() {
        let mtp = t["mtp"].as_f64().unwrap();
        assert!(mtp > 1.5, "MTP {mtp} from {}", t["mtp_source"]);
    }
    assert!(
        !codes(&v, &["warn", "error"]).contains(&"identity_broken".into()),
        "{}",
        v["findings"]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_prompts_built_with_a_tokenizer_have_the_exact_length_and_a_bad_one_is_refused() {
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/tokenizers/word-level-tokenizer.json")
        .display()
        .to_string();
    let args = [
        "--endpoint",
        "chat",
        "--tokenizer",
        &tokenizer,
        "--batch-sizes",
        "4",
        "--input-len",
        "40",
        "--output-len",
        "16",
        "--waves",
        "1",
        "--warmup",
        "0",
    ];
    let out = probe(&db, &h.base_url(), &args).await;
    assert!(out.status.success(), "{out:?}");
    let reqs = requests(&db);
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert_eq!(r.prompt_tokens_reported, Some(40), "{r:?}");
        assert_eq!(r.completion_tokens_reported, Some(16));
    }
    let store = Store::open(&db).unwrap();
    let config = store.run_detail(1).unwrap().manifest.probe_config;
    assert!(
        config["tokenizer"]
            .as_str()
            .unwrap()
            .ends_with("word-level-tokenizer.json")
    );

    // Not a tokenizer: exit 2, one line naming the flag, nothing recorded.
    let bad = dir.path().join("tokenizer.json");
    std::fs::write(&bad, "{}").unwrap();
    let bad = bad.display().to_string();
    let out = probe(
        &db,
        &h.base_url(),
        &["--tokenizer", &bad, "--batch-sizes", "1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--tokenizer"), "{stderr}");
    assert_eq!(
        store.list_runs().unwrap().len(),
        1,
        "the refused run left no row"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_llamacpp_cache_too_small_for_the_batch_fails_its_slots_and_the_finding_says_raise_c() {
    let _serial = crate::sim::serial().await;
    let dir = tempfile::tempdir().unwrap();
    // The KV of the first case above (768 tokens for bs 16 × (64 + 64)) behind llama.cpp: no
    // preemption, so the batch that finds no room fails every processing slot.
    let mut cfg = ceiling::sim::SimConfig::new(Profile {
        kv_blocks: 48,
        ..linear()
    });
    cfg.flavor = SimFlavor::Llamacpp;
    let h = ceiling::sim::start(cfg).await.unwrap();
    let db = dir.path().join("kv.db");
    let out = probe(&db, &h.base_url(), &SMALL_KV_ARGS).await;
    // Exit 3 where no request of the run succeeded; the run is recorded either way.
    assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
    let v = analyze_json(&db, &[]).await;
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "request_failures")
        .unwrap_or_else(|| panic!("{}", v["findings"]));
    assert_eq!(f["severity"], "error", "{f}");
    assert_eq!(
        f["evidence"]["most_common_error"],
        "Context size has been exceeded."
    );
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("raise -c or lower the batch size"),
        "{message}"
    );
    assert_eq!(h.truth().totals.preemptions, 0);
    h.shutdown().await;
}
