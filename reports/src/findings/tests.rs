//! The runner and the table as a whole: the exact findings (codes, severities, messages,
//! evidence and their order) of a run where every rule fires, pinned by a snapshot taken before
//! the checks became rules; the table against docs/FINDINGS.md. Each rule's own tests, one where
//! it fires and one where it stays silent, are in the submodules named after the rule files.

mod engine;
mod gpu;
mod rate;
mod requests;
mod run;
mod timing;

use std::collections::BTreeMap;

use super::fixture::{BS, Step, ceiling};
use super::*;
use crate::step_time::LittlesLaw;

/// Step 0: every step rule fires, each on its first (most severe) branch. Step 1: the warn
/// branches, with both `engine_batch_mismatch` findings (gauge and busy slots) for one step.
/// Step 2: the busy-slot error branch without a gauge, a late client faster than the engine,
/// requests that waited only for their prefill chunk (`info`) and readings left out. Step 3: an engine slower than the client. Step 4: clean.
fn everything() -> Vec<Step> {
    let bs = f64::from(BS);
    let mut s0 = Step::clean_at(0);
    let s = &mut s0.summary;
    s.requests_ok = 13;
    s.requests_failed = 3;
    s.failures_by_outcome = BTreeMap::from([("timeout".into(), 2), ("http_error".into(), 1)]);
    s.requests_length_mismatch = 2;
    s.output_tokens_reported = Some(s.output_tokens_requested - 19);
    s.client_lateness_p99_s = Some(0.0123);
    s.client_lateness_max_s = Some(0.0457);
    s.requests_reasoning_exhausted = 2;
    s.requests_empty_answer = 1;
    let t = &mut s0.timing;
    t.windows.clear();
    t.engine.running_min = Some(3.0);
    t.engine.running_max = Some(5.0);
    t.engine.running_mean = Some(4.2);
    t.engine.busy_slots_per_step = Some(4.5);
    t.engine.waiting_max = Some(2.0);
    t.engine.waiting_max_step = Some(3.0);
    t.engine.preemptions = Some(4.0);
    t.engine.kv_usage_max_frac = Some(0.97);
    t.engine.prefix_cache_hits = Some(512.0);
    t.engine.generation_tokens = Some(4000.0);
    t.t_fwd_client_s = Some(0.0231);
    t.t_fwd_client_mean_s = Some(0.0231);
    t.t_fwd_engine_s = Some(0.02);
    t.client_engine_rel_diff = Some(0.155);
    t.identity_rel_err = Some(0.12);
    t.throughput_window_tok_s = Some(352.0);
    t.littles_law = Some(LittlesLaw {
        engine_in_flight_mean: 5.0,
        client_in_flight_mean: 7.8,
        client_seen_mean: 7.8,
        samples: 12,
        step_allowance: 0.0,
        qps: 1.5,
        e2e_mean_s: 5.2,
        rel_err: 0.359,
    });
    t.roofline_t_min_s = Some(0.025);
    t.t_fwd_s = Some(0.0231);
    t.gpu.throttle_reasons = vec!["sw_power_cap".into(), "sw_thermal_slowdown".into()];
    t.gpu.throttle_reasons_mask = Some(0x24);
    t.gpu.sm_clock_min_mhz = Some(1410);
    t.gpu.mem_used_max_frac = Some(0.985);

    let mut s1 = Step::clean_at(1);
    s1.summary.requests = 40;
    s1.summary.requests_ok = 39;
    s1.summary.requests_failed = 1;
    s1.summary.failures_by_outcome = BTreeMap::from([("stream_error".into(), 1)]);
    let t = &mut s1.timing;
    t.engine.running_min = Some(bs + 2.0);
    t.engine.running_max = Some(bs + 4.0);
    t.engine.busy_slots_per_step = Some(bs + 2.5);
    t.ranks = ["0", "1"]
        .into_iter()
        .zip([(4.0, 6.0), (1.0, 2.0)])
        .map(|(rank, (min, max))| crate::step_time::RankWindow {
            rank: rank.into(),
            running_mean: Some((min + max) / 2.0),
            running_min: Some(min),
            running_max: Some(max),
            steps_per_s: Some(50.0),
        })
        .collect();
    t.t_fwd_client_s = Some(0.0224);
    t.t_fwd_client_mean_s = Some(0.0224);
    t.client_engine_rel_diff = Some(0.12);

    let mut s2 = Step::clean_at(2);
    let t = &mut s2.timing;
    t.engine.running_min = None;
    t.engine.running_max = None;
    t.engine.busy_slots_per_step = Some(6.4);
    t.engine.waiting_max = None;
    t.engine.waiting_max_step = Some(1.0);
    t.engine.prefix_cache_hits = None;
    t.gpu.sm_clock_min_mhz = None;
    t.gpu.throttle_reasons = vec!["hw_slowdown".into()];
    t.t_fwd_client_s = Some(0.017);
    t.t_fwd_client_mean_s = Some(0.017);
    t.client_engine_rel_diff = Some(0.15);
    t.identity_rel_err = Some(0.2);
    t.throughput_window_tok_s = None;
    s2.summary.client_lateness_max_s = None;
    s2.summary.client_lateness_p99_s = Some(0.008);

    let mut s3 = Step::clean_at(3);
    s3.timing.t_fwd_client_s = Some(0.0188);
    s3.timing.t_fwd_client_mean_s = Some(0.0188);
    s3.timing.client_engine_rel_diff = Some(0.06);
    // DCGM without the reason mask, every window under 2 s, and compute-bound counters.
    s3.timing.gpu.throttle_reasons_mask = None;
    s3.timing.gpu.too_short = true;
    s3.timing.gpu.dram_active = Some(0.35);
    s3.timing.gpu.tensor_active = Some(0.62);

    // Step 5: an open-loop step whose client fell behind its schedule; the fixed-batch rules
    // (its engine batch and queue, which the wave's figures would trip) stay silent on it.
    let mut s5 = Step::rate_at(5);
    s5.timing.engine.running_max = Some(50.0);
    s5.timing.engine.waiting_max = Some(12.0);
    if let Some(r) = &mut s5.rate {
        r.rate_achieved_rps = Some(8.7);
        if let Some(l) = &mut r.send_lateness_s {
            l.p99 = 0.180;
        }
    }

    // Step 6: a late client that read its streams behind an engine idle through the window.
    let mut s6 = Step::clean_at(6);
    let e = &mut s6.timing.engine;
    (e.running_min, e.running_max, e.waiting_min, e.waiting_max) =
        (Some(0.0), Some(0.0), Some(0.0), Some(0.0));
    e.samples = 9;
    s6.summary.client_lateness_p99_s = Some(0.633);

    vec![s0, s1, s2, s3, Step::clean_at(4), s5, s6]
}

fn run_all(steps: &[Step], warm_expected: bool) -> Vec<Finding> {
    let summaries: Vec<StepSummary> = steps.iter().map(|s| s.summary.clone()).collect();
    let timings: Vec<StepTiming> = steps.iter().map(|s| s.timing.clone()).collect();
    let rates: Vec<crate::rate::RateStep> = steps.iter().filter_map(|s| s.rate.clone()).collect();
    let ceilings = [ceiling(16, 16.0), ceiling(48, 32.0), ceiling(96, 64.0)];
    findings(
        &summaries,
        &timings,
        &rates,
        &ceilings,
        &Tolerances::default(),
        warm_expected,
    )
}

#[test]
fn every_finding_of_a_run_keeps_its_code_severity_message_evidence_and_order() {
    insta::assert_json_snapshot!(run_all(&everything(), false));
}

#[test]
fn a_clean_run_raises_only_what_its_ceilings_say() {
    let f = run_all(&[Step::clean_at(0), Step::clean_at(1)], false);
    let got: Vec<(&str, Option<u32>)> = f.iter().map(|f| (f.code.as_str(), f.step_idx)).collect();
    assert_eq!(
        got,
        [
            ("ceiling_extrapolated", None),
            ("ceiling_extrapolated", None)
        ]
    );
}

#[test]
fn a_warm_prefix_cache_that_was_asked_for_is_no_finding() {
    let cold = run_all(&everything(), false);
    let warm = run_all(&everything(), true);
    let code = |f: &Finding| f.code == "prefix_cache_warm";
    assert_eq!(cold.iter().filter(|f| code(f)).count(), 1);
    assert_eq!(warm.iter().filter(|f| code(f)).count(), 0);
    assert_eq!(warm.len(), cold.len() - 1);
}

#[test]
fn every_rule_fires_in_the_run_where_everything_fires_and_with_its_severities() {
    let all = run_all(&everything(), false);
    for rule in RULES {
        let raised: Vec<&Finding> = all.iter().filter(|f| f.code == rule.code).collect();
        assert!(!raised.is_empty(), "{} never fired", rule.code);
        for f in raised {
            assert!(rule.severities.contains(&f.severity), "{f:#?}");
        }
    }
    assert!(all.iter().all(|f| RULES.iter().any(|r| r.code == f.code)));
}

#[test]
fn every_rule_stays_silent_on_a_clean_step() {
    let step = Step::clean();
    for rule in RULES {
        step.silent(rule);
    }
}

#[test]
fn step_rules_and_run_rules_answer_only_their_own_view() {
    let step = Step::clean_at(0);
    let extrapolated = [ceiling(48, 32.0)];
    let run = RunView {
        ceilings: &extrapolated,
    };
    let tol = Tolerances::default();
    for rule in RULES {
        let on_step = rule.on_step(&step.view(), &tol);
        let on_run = rule.on_run(&run, &tol);
        match rule.check {
            Check::Step(_) | Check::StepMany(_) => assert!(on_run.is_empty(), "{}", rule.code),
            Check::Run(_) => {
                assert!(on_step.is_empty(), "{}", rule.code);
                assert_eq!(on_run.len(), 1, "{}", rule.code);
            }
        }
    }
}

#[test]
fn the_codes_are_unique_snake_case() {
    let mut codes: Vec<&str> = RULES.iter().map(|r| r.code).collect();
    assert!(
        codes
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
    );
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), RULES.len());
}

const CATALOGUE: &str = include_str!("../../../docs/FINDINGS.md");

/// docs/FINDINGS.md's sections: each `## `code`` heading with the text up to the next heading.
fn catalogue_sections() -> Vec<(&'static str, &'static str)> {
    CATALOGUE
        .split("\n## `")
        .skip(1)
        .filter_map(|s| s.split_once('`'))
        .collect()
}

fn doc_line<'a>(section: &'a str, label: &str) -> &'a str {
    let start = section
        .find(&format!("- **{label}**:"))
        .unwrap_or_else(|| panic!("no {label} in {section}"));
    let rest = &section[start..];
    rest[2..].find("\n- ").map_or(rest, |end| &rest[..end + 2])
}

#[test]
fn the_catalogue_lists_exactly_the_rules_in_table_order() {
    let documented: Vec<&str> = catalogue_sections().iter().map(|(c, _)| *c).collect();
    let rules: Vec<&str> = RULES.iter().map(|r| r.code).collect();
    assert_eq!(documented, rules);
}

#[test]
fn the_catalogue_names_each_rules_severities_and_evidence_keys() {
    let sections = catalogue_sections();
    let section = |code: &str| {
        sections
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("{code} is not in docs/FINDINGS.md"))
    };
    for rule in RULES {
        let line = doc_line(section(rule.code), "Severity");
        for sev in rule.severities {
            assert!(
                line.contains(&format!("`{}`", sev.as_str())),
                "{}: {line}",
                rule.code
            );
        }
    }
    for f in run_all(&everything(), false) {
        let line = doc_line(section(&f.code), "Evidence");
        let keys = f.evidence.as_object().map(|o| o.keys().collect::<Vec<_>>());
        for key in keys.unwrap_or_default() {
            assert!(
                line.contains(&format!("`{key}`")),
                "{}: {key} not in {line}",
                f.code
            );
        }
    }
}

#[test]
fn the_catalogue_quotes_the_default_tolerances() {
    let defaults = serde_json::to_value(Tolerances::default()).unwrap();
    let defaults = defaults.as_object().unwrap();
    assert_eq!(defaults.len(), 10);
    for (name, value) in defaults {
        let row = format!("| `{name}` | {value} |");
        assert!(CATALOGUE.contains(&row), "docs/FINDINGS.md lacks {row}");
    }
}
