//! The simulator imitates how each engine *observes* its own work (docs/ENGINE-METRICS.md §8),
//! one test per rule: llama.cpp's spec counters at slot release and `n_decode_total` per
//! `n_batch` call, vLLM's one front-end per rank counting `iteration_tokens_total` and skipping
//! output-less (pure prefill) steps, SGLang's prefill batches that are not decode passes, its
//! DP-attention labels and its retractions; llama.cpp's error to every slot where vLLM preempts.

use std::time::Duration;

use ceiling_collectors::engines;
use ceiling_collectors::prometheus::parse;
use ceiling_sim::{Profile, SimFlavor, SpecConfig};
use serde_json::json;

use super::{client, completion, get_text, samples, serial, series, start, stream, tiny};

fn no_eos(p: Profile) -> Profile {
    Profile {
        eos_probability: 0.0,
        ..p
    }
}

/// Eight streamed requests with distinct prompts at once; the `/metrics` text once all are done.
async fn eight_at_once(c: &reqwest::Client, base: &str, prompt: usize, max_tokens: u32) -> String {
    let url = format!("{base}/v1/completions");
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            let mut body = completion(prompt, max_tokens);
            body["prompt"][0] = json!(10 + i);
            tokio::spawn(async move { stream(&c, &url, body).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().done);
    }
    get_text(c, &format!("{base}/metrics")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_spec_counters_move_only_when_a_slot_is_released() {
    let _serial = serial().await;
    let profile = Profile {
        spec: Some(SpecConfig {
            num_speculative_tokens: 3,
            acceptance_rate: 0.7,
        }),
        ..no_eos(tiny())
    };
    let h = start(SimFlavor::Llamacpp, profile, 1, 1.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let running = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move { stream(&c, &url, completion(16, 400)).await }
    });
    // Mid-request: the engine has verified drafts for a while, yet llama.cpp shows none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mid = samples(&get_text(&c, &format!("{}/metrics", h.base_url())).await);
    assert!(mid["llamacpp:n_decode_total"] > 20.0, "{mid:?}");
    assert_eq!(mid["llamacpp:spec_decode_num_drafts_total"], 0.0);
    assert!(h.truth().totals.spec_verify_steps > 20);
    assert!(running.await.unwrap().done);
    let end = samples(&get_text(&c, &format!("{}/metrics", h.base_url())).await);
    let truth = h.truth();
    assert_eq!(
        end["llamacpp:spec_decode_num_drafts_total"],
        truth.totals.spec_verify_steps as f64
    );
    assert_eq!(
        end["llamacpp:spec_decode_num_accepted_tokens_total"],
        truth.totals.spec_accepted as f64
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_counts_one_decode_call_per_n_batch_tokens() {
    let _serial = serial().await;
    let profile = Profile {
        n_batch: 64,
        ..no_eos(tiny())
    };
    let h = start(SimFlavor::Llamacpp, profile, 1, 1.0).await;
    let c = client();
    // 300 prompt tokens in one step: ⌈300 / 64⌉ = 5 calls, each with the one busy slot.
    let s = stream(
        &c,
        &format!("{}/v1/completions", h.base_url()),
        completion(300, 1),
    )
    .await;
    assert!(s.done);
    let m = samples(&get_text(&c, &format!("{}/metrics", h.base_url())).await);
    assert_eq!(h.truth().totals.steps, 1);
    assert_eq!(m["llamacpp:n_decode_total"], 5.0);
    assert_eq!(m["llamacpp:n_busy_slots_per_decode"], 1.0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_counts_a_step_once_per_front_end_with_output_and_never_a_pure_prefill_step() {
    let _serial = serial().await;
    // Prefill in chunks of 64: a 300-token prompt takes 5 steps, only the last with a token.
    let profile = Profile {
        prefill_chunk_tokens: 64,
        ..no_eos(tiny())
    };
    let h = start(SimFlavor::Vllm, profile.clone(), 1, 1.0).await;
    let c = client();
    let s = stream(
        &c,
        &format!("{}/v1/completions", h.base_url()),
        completion(300, 2),
    )
    .await;
    assert!(s.done);
    let m = samples(&get_text(&c, &format!("{}/metrics", h.base_url())).await);
    assert_eq!(
        h.truth().totals.steps,
        6,
        "5 prefill chunks and one decode step"
    );
    assert_eq!(m["vllm:iteration_tokens_total_count"], 2.0);
    h.shutdown().await;

    // DP 2, one API server per rank: each rank serves requests of both front-ends, so a step
    // with both counts twice, while the inter-token histogram counts each sequence once.
    let h = start(SimFlavor::Vllm, no_eos(tiny()), 2, 1.0).await;
    let text = eight_at_once(&c, &h.base_url(), 16, 40).await;
    let truth = h.truth();
    for rank in truth.ranks {
        let label = format!("engine=\"{}\"", rank.rank);
        let iterations = series(&text, "vllm:iteration_tokens_total_count", &label);
        let itl = series(&text, "vllm:inter_token_latency_seconds_count", &label);
        assert!(
            iterations > rank.steps as f64 * 1.5,
            "rank {}: {iterations} vs {} steps",
            rank.rank,
            rank.steps
        );
        assert!(iterations <= 2.0 * rank.steps as f64);
        // 4 requests × 39 gaps each, whatever the front-ends.
        assert_eq!(itl, 4.0 * 39.0, "rank {}", rank.rank);
        // Each rank ran its 4 (a prefill step may have held fewer).
        let mean = rank.batch_mean.unwrap();
        assert!((3.5..=4.0).contains(&mean), "rank {}: {mean}", rank.rank);
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_prefill_batches_are_not_decode_passes_and_decoding_waits_for_them() {
    let _serial = serial().await;
    let h = start(SimFlavor::Sglang, no_eos(tiny()), 1, 1.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let first = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move { stream(&c, &url, completion(16, 60)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut body = completion(400, 20);
    body["prompt"][0] = json!(7);
    let second = stream(&c, &url, body).await;
    assert!(second.done && first.await.unwrap().done);
    let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
    let m = samples(&text);
    let truth = h.truth();
    let decode_steps: u64 = truth.decode_steps.iter().map(|s| s.count).sum();
    let prefill_steps: u64 = truth.mixed_steps.iter().map(|s| s.count).sum();
    // Two prefill batches, each alone: no step both prefilled and decoded.
    assert_eq!(prefill_steps, 2);
    assert!(
        truth.mixed_steps.iter().all(|s| s.batch_size == 1),
        "{:?}",
        truth.mixed_steps
    );
    assert_eq!(m["sglang:cuda_graph_passes_total"], decode_steps as f64);
    // Decode tokens are every output token but the two first ones (the prefill batches').
    let decode = series(&text, "sglang:realtime_tokens_total", "mode=\"decode\"");
    assert_eq!(decode, (60 + 20 - 2) as f64);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_dp_attention_labels_each_rank_and_counts_retractions() {
    let _serial = serial().await;
    // KV for 12 blocks of 16 per rank: 4 requests of 32 + 64 tokens cannot all grow, so the
    // scheduler retracts.
    let profile = Profile {
        kv_blocks: 12,
        ..no_eos(tiny())
    };
    let h = start(SimFlavor::Sglang, profile, 2, 1.0).await;
    let text = eight_at_once(&client(), &h.base_url(), 32, 64).await;
    let truth = h.truth();
    assert!(truth.totals.preemptions > 0, "{:?}", truth.totals);
    // Each rank's scheduler: dp_rank r with the global tp_rank r; the gauge carries a pid.
    for r in 0..2 {
        let labels = format!("dp_rank=\"{r}\",engine_type=\"unified\"");
        assert!(text.contains(&labels), "{text}");
        assert!(
            text.contains(&format!("pp_rank=\"0\",tp_rank=\"{r}\"")),
            "{text}"
        );
    }
    assert!(text.contains("sglang:num_retracted_reqs{dp_rank=\"0\""));
    assert!(
        text.lines()
            .any(|l| l.starts_with("sglang:num_retracted_reqs") && l.contains("pid=\""))
    );
    let s = engines::signals(&parse(&text).samples, None);
    assert_eq!(s.dp_ranks, 2);
    assert_eq!(s.ranks.len(), 2);
    assert_eq!(s.preemptions_total, Some(truth.totals.preemptions as f64));
    assert!(s.preemptions_recent.is_some());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_fails_every_slot_with_context_exceeded_where_vllm_preempts() {
    let _serial = serial().await;
    // 12 blocks of 16 tokens: eight requests of 32 + 64 tokens cannot all grow. vLLM preempts
    // and finishes all eight; llama.cpp has no preemption: the batch that finds no room fails
    // every processing slot with its error event and no [DONE].
    let profile = Profile {
        kv_blocks: 12,
        max_num_seqs: 8,
        ..no_eos(tiny())
    };
    let c = client();
    let h = start(SimFlavor::Vllm, profile.clone(), 1, 1.0).await;
    eight_at_once(&c, &h.base_url(), 32, 64).await;
    let truth = h.truth();
    assert!(truth.totals.preemptions > 0, "{:?}", truth.totals);
    assert_eq!(truth.totals.requests_aborted, 0);
    h.shutdown().await;

    let h = start(SimFlavor::Llamacpp, profile, 1, 1.0).await;
    let url = format!("{}/v1/completions", h.base_url());
    let tasks: Vec<_> = (0..8u32)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            let mut body = completion(32, 64);
            body["prompt"][0] = json!(10 + i);
            tokio::spawn(async move { stream(&c, &url, body).await })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        let s = t.await.unwrap();
        assert_eq!(s.status, 200);
        if let Some((_, last)) = s.chunks.last()
            && last.get("error").is_some()
        {
            assert_eq!(last["error"]["message"], "Context size has been exceeded.");
            assert_eq!(last["error"]["code"], 500);
            assert!(!s.done, "no [DONE] after the error event");
            failed += 1;
        } else {
            assert!(s.done);
        }
    }
    let truth = h.truth();
    assert!(failed >= 4, "{failed} of 8 failed");
    assert_eq!(truth.totals.context_exceeded, failed);
    assert_eq!(truth.totals.requests_aborted, failed);
    assert_eq!(truth.totals.preemptions, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_truth_counts_steps_that_left_a_request_waiting_for_kv_blocks() {
    let _serial = serial().await;
    // Eight requests of 64 + 16 tokens need 6 blocks of 16 each: 24 blocks admit four at a
    // time (the sequence cap, 8, is not what holds the rest back); 1,000 admit all eight.
    let c = client();
    for (kv_blocks, deferred) in [(24, true), (1_000, false)] {
        let profile = Profile {
            kv_blocks,
            max_num_seqs: 8,
            ..no_eos(tiny())
        };
        let h = start(SimFlavor::Vllm, profile, 1, 1.0).await;
        eight_at_once(&c, &h.base_url(), 64, 16).await;
        let t = h.truth().totals;
        assert_eq!(
            t.kv_deferred_steps > 0,
            deferred,
            "{kv_blocks} blocks: {t:?}"
        );
        assert_eq!(t.requests_finished, 8);
        h.shutdown().await;
    }
}
