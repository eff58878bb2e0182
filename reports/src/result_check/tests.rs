//! Each check on a real result (clean: silent) and on a copy changed in one field (it fires).

use super::{CheckContext, DEFAULT_SLA_OTPS, Verdict, check_result};
use crate::gpu_specs;
use crate::model::KvDtype;
use crate::model::fixtures::{QWEN25_7B, shape};
use crate::peer::PeerPoint;
use crate::peer::tests::read;
use crate::roofline::Roofline;

fn point(rel: &str) -> PeerPoint {
    read(rel, None).expect("fixture parses").remove(0)
}

fn sglang() -> PeerPoint {
    point("peer-results/sglang_py/result.jsonl")
}

fn guidellm() -> PeerPoint {
    point("peer-results/guidellm/benchmarks.json")
}

fn ctx() -> CheckContext {
    CheckContext {
        roofline: None,
        dp: 1,
        sla_otps: DEFAULT_SLA_OTPS,
        against: None,
    }
}

fn verdict_with(p: &PeerPoint, ctx: &CheckContext, code: &str) -> Verdict {
    check_result(p, ctx)
        .into_iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no check {code}"))
        .verdict
}

fn verdict(p: &PeerPoint, code: &str) -> Verdict {
    verdict_with(p, &ctx(), code)
}

#[test]
fn the_clean_results_pass_the_identities_and_the_workload() {
    for p in [sglang(), guidellm()] {
        for code in [
            "output_throughput_identity",
            "littles_law",
            "throughput_identity",
            "e2e_identity",
            "output_length",
            "error_rate",
            "otps_sla",
        ] {
            assert_eq!(verdict(&p, code), Verdict::Pass, "{code} on {:?}", p.tool);
        }
    }
    assert_eq!(verdict(&sglang(), "tpot_vs_itl"), Verdict::Pass);
    assert_eq!(verdict(&sglang(), "input_length"), Verdict::Pass);
    assert_eq!(verdict(&guidellm(), "warmup"), Verdict::Pass);
}

#[test]
fn output_identity_fires_on_a_duration_that_is_not_the_run() {
    let mut p = sglang();
    p.duration_s = p.duration_s.map(|d| d * 0.5);
    assert_eq!(verdict(&p, "output_throughput_identity"), Verdict::Fail);
}

#[test]
fn littles_law_fires_when_fewer_streams_were_busy_than_configured() {
    let mut p = sglang();
    p.concurrency = Some(32.0);
    assert_eq!(verdict(&p, "littles_law"), Verdict::Fail);
    let mut more = sglang();
    more.concurrency = Some(4.0);
    assert_eq!(
        verdict(&more, "littles_law"),
        Verdict::Fail,
        "8 in flight of 4"
    );
}

#[test]
fn throughput_and_e2e_identities_fire_on_a_tpot_that_folds_ttft_in() {
    let mut p = sglang();
    p.tpot.mean_s = Some(0.012);
    assert_eq!(verdict(&p, "throughput_identity"), Verdict::Fail);
    assert_eq!(verdict(&p, "e2e_identity"), Verdict::Fail);
}

#[test]
fn tpot_vs_itl_fires_when_chunks_carry_two_tokens() {
    let mut p = sglang();
    p.itl.mean_s = p.itl.mean_s.map(|i| i * 2.0);
    assert_eq!(
        verdict(&p, "tpot_vs_itl"),
        Verdict::Fail,
        "the requests say one token per chunk"
    );
    p.requests.clear();
    assert_eq!(
        verdict(&p, "tpot_vs_itl"),
        Verdict::Warn,
        "no requests: MTP or batching suspected"
    );
}

#[test]
fn length_checks_fire_on_lengths_other_than_asked() {
    let mut p = sglang();
    p.output_len_requested = Some(128.0);
    assert_eq!(verdict(&p, "output_length"), Verdict::Fail);
    let mut q = sglang();
    q.input_len_requested = Some(512.0);
    assert_eq!(verdict(&q, "input_length"), Verdict::Warn);
}

#[test]
fn error_rate_fires_on_failures_and_on_an_all_failed_run() {
    let mut p = sglang();
    p.failed = Some(5);
    assert_eq!(verdict(&p, "error_rate"), Verdict::Fail);
    p.failed = Some(0);
    assert_eq!(verdict(&p, "error_rate"), Verdict::Pass);
    let dead =
        point("peer-formats/vllm/er0080_vllm-0.25.1_2xRTX3090_opt-125m_all_requests_failed.json");
    assert_eq!(verdict(&dead, "error_rate"), Verdict::Fail);
}

#[test]
fn requests_per_stream_fires_below_ten() {
    // 96 requests over 8 streams.
    let ok = point(
        "peer-formats/aiperf/anud18_aiperf-0.10.0_RTX5090_Qwen3.6-35B-A3B-NVFP4_sharegpt_c8_profile_export_aiperf.json",
    );
    assert_eq!(verdict(&ok, "requests_per_stream"), Verdict::Pass);
    // The peer workload: 64 requests over 8 streams.
    assert_eq!(verdict(&sglang(), "requests_per_stream"), Verdict::Warn);
}

#[test]
fn warmup_fires_when_the_first_wave_is_slow() {
    let mut p = guidellm();
    let mut order: Vec<usize> = (0..p.requests.len()).collect();
    order.sort_by(|&a, &b| {
        p.requests[a]
            .start_s
            .partial_cmp(&p.requests[b].start_s)
            .expect("times")
    });
    for &i in order.iter().take(8) {
        p.requests[i].ttft_s = p.requests[i].ttft_s.map(|t| t * 5.0);
    }
    assert_eq!(verdict(&p, "warmup"), Verdict::Warn);
}

#[test]
fn otps_fires_below_the_sla() {
    let strict = CheckContext {
        sla_otps: 150.0,
        ..ctx()
    };
    assert_eq!(verdict_with(&sglang(), &strict, "otps_sla"), Verdict::Warn);
}

#[test]
fn hardware_checks_cannot_tell_without_a_model_and_fire_against_the_roofline() {
    assert_eq!(verdict(&sglang(), "tpot_roofline"), Verdict::CannotTell);
    let h100 = gpu_specs::lookup("H100").expect("H100");
    let hw = CheckContext {
        roofline: Some(Roofline::new(
            &shape(QWEN25_7B),
            &h100,
            1,
            None,
            KvDtype::Bf16,
        )),
        ..ctx()
    };
    let p = sglang();
    for code in ["tpot_roofline", "throughput_roofline", "ttft_prefill_bound"] {
        assert_eq!(verdict_with(&p, &hw, code), Verdict::Pass, "{code}");
    }
    // 8192-token prompts take the 7B over 100 ms of H100 compute; 53 ms is a cache hit.
    let mut cached = sglang();
    cached.input_len_mean = Some(8192.0);
    assert_eq!(
        verdict_with(&cached, &hw, "ttft_prefill_bound"),
        Verdict::Fail
    );
    // At TP 1 and bs 8 the 7B's step reads ~15 GB: about 5 ms; 2 ms per token is impossible.
    let mut fast = sglang();
    fast.tpot.mean_s = Some(0.002);
    assert_eq!(verdict_with(&fast, &hw, "tpot_roofline"), Verdict::Fail);
    let mut many = sglang();
    many.output_tok_per_s = Some(50_000.0);
    assert_eq!(
        verdict_with(&many, &hw, "throughput_roofline"),
        Verdict::Fail
    );
}

#[test]
fn against_a_run_fires_when_the_result_is_faster_or_slower_than_its_fit() {
    use crate::fit::{FitPoint, fit_step_time};
    // A run whose step takes 5 ms + 0.625 ms per sequence: 10 ms at bs 8.
    let points: Vec<FitPoint> = [1.0, 2.0, 4.0, 8.0, 16.0]
        .iter()
        .enumerate()
        .map(|(i, &bs)| FitPoint {
            step_idx: i as u32,
            bs,
            context_tokens: 160.0,
            t_fwd_s: 0.005 + 0.000625 * bs + if i % 2 == 0 { 1e-5 } else { -1e-5 },
        })
        .collect();
    let run = super::against::AgainstRun {
        run_id: 7,
        fit: fit_step_time(&points).expect("a fit"),
    };
    let with_run = CheckContext {
        against: Some(run),
        ..ctx()
    };
    let p = sglang();
    assert_eq!(
        verdict_with(&p, &with_run, "against_run_tpot"),
        Verdict::Pass
    );
    assert_eq!(
        verdict_with(&p, &with_run, "against_run_throughput"),
        Verdict::Pass
    );
    let mut fast = sglang();
    fast.tpot.mean_s = Some(0.005);
    assert_eq!(
        verdict_with(&fast, &with_run, "against_run_tpot"),
        Verdict::Fail
    );
    let mut slow = sglang();
    slow.output_tok_per_s = Some(300.0);
    assert_eq!(
        verdict_with(&slow, &with_run, "against_run_throughput"),
        Verdict::Warn
    );
}

#[test]
fn compare_rules_pd_must_not_worsen_tpot_and_kv_cache_must_not_move_it() {
    use super::compare::{Change, deltas, rules};
    let a = sglang();
    let mut b = sglang();
    b.tpot.mean_s = b.tpot.mean_s.map(|t| t * 1.2);
    let d = deltas(&a, &b);
    assert_eq!(rules(Change::Pd, &d)[0].verdict, Verdict::Fail);
    assert_eq!(rules(Change::KvCache, &d)[0].verdict, Verdict::Fail);
    assert_eq!(
        rules(Change::Mtp, &d)[0].verdict,
        Verdict::Pass,
        "TTFT did not move"
    );
    let same = deltas(&a, &a);
    assert_eq!(rules(Change::Pd, &same)[0].verdict, Verdict::Pass);
    assert!(rules(Change::Hardware, &same).is_empty());
}
