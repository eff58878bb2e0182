//! Test fixtures for the findings: one clean step (a wave at bs 8 whose client, engine and GPU
//! views agree, so no rule fires) that each test bends until one rule should fire, and ceilings.

use std::collections::BTreeMap;

use super::{Rule, RunView, StepView, Tolerances};
use crate::ceiling::Ceiling;
use crate::finding::Finding;
use crate::recording::Pattern;
use crate::step_time::{EngineWindow, GpuWindow, LittlesLaw, MtpSource, StepTiming};
use crate::summary::StepSummary;
use crate::window::Window;

/// Requests in the clean step: two waves of 8.
pub(super) const REQUESTS: u32 = 16;
pub(super) const BS: u32 = 8;
pub(super) const INPUT_LEN: u32 = 128;
pub(super) const OUTPUT_LEN: u32 = 256;
/// The step time every view agrees on.
pub(super) const T_FWD_S: f64 = 0.02;

/// One step's figures, as the analysis hands them to the findings.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub summary: StepSummary,
    pub timing: StepTiming,
    /// The run asked for a warm prefix cache.
    pub warm_expected: bool,
    /// An open-loop step's rate figures.
    pub rate: Option<crate::rate::RateStep>,
}

impl Step {
    /// A step where the three views agree and nothing is near a limit.
    pub fn clean() -> Step {
        Step {
            summary: summary(),
            timing: timing(),
            warm_expected: false,
            rate: None,
        }
    }

    /// A clean open-loop step at 10 req/s under another index: its client kept the schedule.
    pub fn rate_at(step_idx: u32) -> Step {
        let mut s = Step::clean_at(step_idx);
        s.summary.pattern = Pattern::Rate;
        s.rate = Some(rate_step(step_idx));
        s
    }

    /// The same clean step under another index.
    pub fn clean_at(step_idx: u32) -> Step {
        let mut s = Step::clean();
        s.summary.step_idx = step_idx;
        s.timing.step_idx = step_idx;
        s
    }

    pub fn view(&self) -> StepView<'_> {
        StepView {
            summary: &self.summary,
            timing: &self.timing,
            prefix_cache_warm_expected: self.warm_expected,
            rate: self.rate.as_ref(),
        }
    }

    /// What `rule` raises for this step under the default tolerances.
    pub fn raised(&self, rule: &Rule) -> Vec<Finding> {
        rule.on_step(&self.view(), &Tolerances::default())
    }

    /// The one finding `rule` raises for this step, checked to carry the rule's code, this
    /// step's index and one of the rule's severities.
    pub fn one(&self, rule: &Rule) -> Finding {
        let mut got = self.raised(rule);
        assert_eq!(got.len(), 1, "{}: {got:#?}", rule.code);
        let f = got.remove(0);
        assert_checked(rule, &f, Some(self.summary.step_idx));
        f
    }

    /// Asserts `rule` raises nothing for this step.
    pub fn silent(&self, rule: &Rule) {
        let got = self.raised(rule);
        assert!(got.is_empty(), "{} fired: {got:#?}", rule.code);
    }
}

/// What a run rule raises for `ceilings` under the default tolerances, each finding checked to
/// carry the rule's code, no step and one of the rule's severities.
pub(super) fn raised_on_run(rule: &Rule, ceilings: &[Ceiling]) -> Vec<Finding> {
    let got = rule.on_run(&RunView { ceilings }, &Tolerances::default());
    for f in &got {
        assert_checked(rule, f, None);
    }
    got
}

fn assert_checked(rule: &Rule, f: &Finding, step_idx: Option<u32>) {
    assert_eq!(
        (f.code.as_str(), f.step_idx),
        (rule.code, step_idx),
        "{f:#?}"
    );
    assert!(rule.severities.contains(&f.severity), "{f:#?}");
}

/// The number at `key` of a finding's evidence.
pub(super) fn num(f: &Finding, key: &str) -> f64 {
    f.evidence[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key:?} in {}", f.evidence))
}

pub(crate) fn summary() -> StepSummary {
    let input = u64::from(REQUESTS * INPUT_LEN);
    let output = u64::from(REQUESTS * OUTPUT_LEN);
    StepSummary {
        step_idx: 0,
        batch_size: BS,
        input_len: INPUT_LEN,
        output_len: OUTPUT_LEN,
        pattern: Pattern::Wave,
        requests: REQUESTS,
        requests_ok: REQUESTS,
        requests_failed: 0,
        requests_warmup: 0,
        failures_by_outcome: BTreeMap::new(),
        failure_most_common: None,
        ttft_s: None,
        ttft_answer_s: None,
        tpot_s: None,
        itl_s: None,
        e2e_s: None,
        span_s: Some(10.5),
        output_tokens_per_s: Some(output as f64 / 10.5),
        requests_per_s: Some(f64::from(REQUESTS) / 10.5),
        requests_per_min: Some(f64::from(REQUESTS) / 10.5 * 60.0),
        input_tokens_requested: input,
        input_tokens_reported: Some(input),
        output_tokens_requested: output,
        output_tokens_reported: Some(output),
        requests_length_mismatch: 0,
        client_lateness_p50_s: Some(0.0002),
        client_lateness_p99_s: Some(0.001),
        client_lateness_max_s: Some(0.002),
        requests_reasoning_exhausted: 0,
        requests_empty_answer: 0,
    }
}

pub(crate) fn timing() -> StepTiming {
    let bs = f64::from(BS);
    StepTiming {
        step_idx: 0,
        batch_size: BS,
        bs_per_rank: bs,
        input_len: INPUT_LEN,
        output_len: OUTPUT_LEN,
        windows: vec![Window {
            start_t_s: 0.3,
            end_t_s: 5.2,
            wave: Some(0),
        }],
        window_s: 4.9,
        mtp: 1.0,
        mtp_source: MtpSource::Assumed,
        tokens_per_chunk: Some(1.0),
        chunk_gap_median_s: Some(T_FWD_S),
        chunk_gap_span_s: Some(T_FWD_S),
        chunk_gaps: 4000,
        chunk_gap_at_edge_s: None,
        tpot_median_s: Some(T_FWD_S),
        tpot_window_s: Some(T_FWD_S),
        prefill_steps_max: Some(1),
        engine_view_gap: None,
        t_fwd_client_s: Some(T_FWD_S),
        t_fwd_client_mean_s: Some(T_FWD_S),
        t_fwd_identity_s: Some(T_FWD_S),
        t_fwd_engine_itl_s: Some(T_FWD_S),
        t_fwd_engine_steps_s: Some(T_FWD_S),
        t_fwd_engine_over_waves: false,
        t_fwd_engine_steps_coarse: false,
        t_fwd_engine_s: Some(T_FWD_S),
        t_fwd_s: Some(T_FWD_S),
        client_engine_rel_diff: Some(0.0),
        acceptance_noise_rel: None,
        prefill_rate_tok_s: Some(20_000.0),
        throughput_window_tok_s: Some(bs / T_FWD_S),
        throughput_identity_tok_s: Some(bs / T_FWD_S),
        identity_rel_err: Some(0.0),
        littles_law: Some(LittlesLaw {
            engine_in_flight_mean: 7.6,
            client_in_flight_mean: 7.8,
            client_seen_mean: 7.4,
            samples: 12,
            step_allowance: 0.0,
            qps: 1.5,
            e2e_mean_s: 5.2,
            rel_err: 0.0,
        }),
        roofline_t_min_s: Some(0.01),
        roofline_efficiency: Some(0.5),
        engine: engine(),
        ranks: Vec::new(),
        gpu: gpu(),
    }
}

fn engine() -> EngineWindow {
    let bs = f64::from(BS);
    EngineWindow {
        samples: 20,
        over_requests_span: false,
        running_mean: Some(bs),
        running_min: Some(bs),
        running_max: Some(bs),
        waiting_max: Some(0.0),
        waiting_max_step: Some(0.0),
        slots_full_running: None,
        waiting_min: Some(0.0),
        busy_slots_per_step: None,
        kv_usage_max_frac: Some(0.4),
        kv_capacity_tokens: Some(100_000.0),
        preemptions: Some(0.0),
        prefix_cache_queries: Some(f64::from(REQUESTS * INPUT_LEN)),
        prefix_cache_hits: Some(0.0),
        generation_tokens: Some(f64::from(REQUESTS * OUTPUT_LEN)),
        prompt_tokens: Some(f64::from(REQUESTS * INPUT_LEN)),
        client_output_tokens: u64::from(REQUESTS * OUTPUT_LEN),
        client_prompt_tokens: u64::from(REQUESTS * INPUT_LEN),
    }
}

fn gpu() -> GpuWindow {
    GpuWindow {
        samples: 50,
        gpus: 1,
        util_mean_pct: Some(97.0),
        util_max_pct: Some(100.0),
        mem_used_max_bytes: Some(72_000_000_000),
        mem_used_max_frac: Some(0.9),
        power_mean_w: Some(550.0),
        power_max_w: Some(610.0),
        sm_clock_mean_mhz: Some(1980.0),
        sm_clock_min_mhz: Some(1965),
        mem_clock_mean_mhz: Some(2619.0),
        temp_mean_c: Some(60.0),
        throttle_reasons_mask: Some(0),
        throttle_reasons: Vec::new(),
        node_power_w: Some(550.0),
        energy_per_output_token_j: Some(1.4),
        ..GpuWindow::default()
    }
}

/// An open-loop step's figures at 10 req/s whose client kept its schedule.
pub(super) fn rate_step(step_idx: u32) -> crate::rate::RateStep {
    let late = crate::metrics::Distribution {
        n: 600,
        mean: 0.0004,
        p50: 0.0003,
        p90: 0.0008,
        p95: 0.0015,
        p99: 0.002,
        max: 0.004,
        std: 0.0005,
    };
    crate::rate::RateStep {
        step_idx,
        rate_asked_rps: Some(10.0),
        burstiness: Some(1.0),
        max_concurrency: None,
        requests: 600,
        requests_failed: 0,
        error_rate: Some(0.0),
        rate_scheduled_rps: Some(10.1),
        rate_achieved_rps: Some(10.09),
        completed_rps: Some(10.0),
        output_tokens_per_s: Some(2560.0),
        goodput_rps: None,
        output_len_mean: Some(256.0),
        input_len_mean: Some(128.0),
        send_lateness_s: Some(late),
        ttft_s: None,
        tpot_s: None,
        itl_s: None,
        e2e_s: None,
        engine_running_mean: Some(40.0),
        engine_running_max: Some(52.0),
        engine_waiting_mean: Some(0.0),
        engine_waiting_max: Some(0.0),
        client_lateness_p99_s: Some(0.001),
    }
}

/// A ceiling at `bs_per_rank`, extrapolated when beyond `max_measured`.
pub(crate) fn ceiling(bs_per_rank: u32, max_measured: f64) -> Ceiling {
    let t_fwd_s = 0.008 + 0.0002 * f64::from(bs_per_rank);
    Ceiling {
        input_len: INPUT_LEN,
        output_len: OUTPUT_LEN,
        seq_len_tokens: INPUT_LEN + OUTPUT_LEN,
        length_bucket: crate::ceiling::length_bucket(INPUT_LEN + OUTPUT_LEN),
        dp: 1,
        mtp: 1.0,
        bs_per_rank,
        t_fwd_s,
        t_fwd_ci95_s: None,
        throughput_tok_s: f64::from(bs_per_rank) / t_fwd_s,
        throughput_ci95_tok_s: None,
        otps_per_seq: 1.0 / t_fwd_s,
        tpot_s: t_fwd_s,
        prefill_rate_tok_s: None,
        qps_max: None,
        measured: f64::from(bs_per_rank) <= max_measured,
        extrapolated: f64::from(bs_per_rank) > max_measured,
        max_measured_bs_per_rank: max_measured,
        limited_by: "sla".into(),
        kv_capacity_tokens: None,
        bs_max_kv: None,
        sla_otps: Some(20.0),
        sla_tpot_s: None,
    }
}
