use super::*;
use crate::history::{
    HistoryStep, RegressReport, RunKey, RunResult, StepResult, regress as regress_run,
};

/// Night `n` at batch sizes 4 and 16: step time `base × scale × (1 + noise)`, the noise a
/// fixed ±0.8 % pattern; SM clock `clock`.
fn night(n: i64, scale: f64, clock: f64) -> Vec<HistoryStep> {
    let noise = [
        0.0, 0.006, -0.004, 0.008, -0.007, 0.002, -0.001, 0.005, -0.006, 0.003,
    ][n as usize % 10];
    [4u32, 16]
        .iter()
        .enumerate()
        .map(|(i, &bs)| {
            let t = (0.004 + 0.00015 * f64::from(bs)) * scale * (1.0 + noise);
            HistoryStep {
                key: RunKey {
                    run_id: n,
                    started_at: format!("2026-11-{:02}T02:00:00.000Z", n + 1),
                    host: Some("gpu-node-17".into()),
                    driver_version: Some("550.54".into()),
                    status: "complete".into(),
                    probe_config_hash: "h".into(),
                    ..RunKey::default()
                },
                run: RunResult::default(),
                step: StepResult {
                    step_idx: i as u32,
                    batch_size: bs,
                    input_len: 64,
                    output_len: 32,
                    t_fwd_s: Some(t),
                    tpot_p50_s: Some(t),
                    throughput_tok_s: Some(f64::from(bs) / t),
                    own_rel_sigma: Some(0.002),
                    sm_clock_mean_mhz: Some(clock),
                    ..StepResult::default()
                },
            }
        })
        .collect()
}

fn history(last_scale: f64, last_clock: f64) -> Vec<HistoryStep> {
    let mut rows: Vec<HistoryStep> = (0..10).flat_map(|n| night(n, 1.0, 1980.0)).collect();
    rows.extend(night(10, last_scale, last_clock));
    rows
}

fn verdict(r: &RegressReport, metric: &str, bs: u32) -> Verdict {
    r.verdicts
        .iter()
        .find(|v| v.metric == metric && v.batch_size == bs)
        .unwrap()
        .verdict
}

#[test]
fn a_step_time_rise_of_8_percent_is_a_regression_at_every_batch_size_and_noise_is_not() {
    let rows = history(1.08, 1980.0);
    let o = RegressOptions::default();
    let r = regress_run(&rows, 10, &o).unwrap().unwrap();
    for bs in [4, 16] {
        assert_eq!(verdict(&r, "t_fwd_s", bs), Verdict::Regression);
        assert_eq!(verdict(&r, "tpot_p50_s", bs), Verdict::Regression);
        assert_eq!(verdict(&r, "throughput_tok_s", bs), Verdict::Regression);
    }
    let v = r.verdicts.iter().find(|v| v.metric == "t_fwd_s").unwrap();
    assert_eq!(v.baseline_runs, 7);
    assert!((v.change_rel.unwrap() - 0.08).abs() < 0.012, "{v:?}");
    assert_eq!(r.baseline_run_ids, vec![3, 4, 5, 6, 7, 8, 9]);
    // Every noise-only night (3 and more baseline runs) is within noise.
    let judged = judge_history(&rows, &o).unwrap();
    for n in 3..10 {
        for v in verdicts_of(&judged, n).unwrap() {
            assert_eq!(v.verdict, Verdict::WithinNoise, "night {n}: {v:?}");
        }
    }
    for n in 0..3 {
        for v in verdicts_of(&judged, n).unwrap() {
            assert_eq!(v.verdict, Verdict::InsufficientHistory, "night {n}");
        }
    }
    assert!(
        r.attribution.is_empty(),
        "nothing changed: {:?}",
        r.attribution
    );
    assert!(r.headline().contains("beyond noise"), "{}", r.headline());
}

#[test]
fn a_smaller_change_than_the_minimum_effect_stays_within_noise() {
    let rows = history(1.02, 1980.0);
    let r = regress_run(&rows, 10, &RegressOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(r.regressions().count(), 0, "{:?}", r.verdicts);
    let o = RegressOptions {
        min_effect: 0.01,
        ..RegressOptions::default()
    };
    let r = regress_run(&rows, 10, &o).unwrap().unwrap();
    assert_eq!(verdict(&r, "t_fwd_s", 16), Verdict::Regression);
}

#[test]
fn a_faster_night_is_an_improvement() {
    let rows = history(0.9, 1980.0);
    let r = regress_run(&rows, 10, &RegressOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(verdict(&r, "t_fwd_s", 4), Verdict::Improvement);
    assert_eq!(verdict(&r, "throughput_tok_s", 4), Verdict::Improvement);
    assert_eq!(r.regressions().count(), 0);
}

#[test]
fn the_sm_clock_drop_and_the_driver_are_named() {
    let mut rows = history(1.08, 1820.0);
    for r in rows.iter_mut().filter(|r| r.key.run_id == 10) {
        r.key.driver_version = Some("560.28".into());
        r.step.throttle_reasons = Some("sw_power_cap".into());
    }
    let r = regress_run(&rows, 10, &RegressOptions::default())
        .unwrap()
        .unwrap();
    let codes: Vec<&str> = r.attribution.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(
        codes,
        ["driver_changed", "sm_clock_lower", "throttled"],
        "{:?}",
        r.attribution
    );
    assert_eq!(r.attribution[0].message, "driver 550.54 → 560.28");
    assert!(
        r.attribution[1].message.starts_with("SM clock -8 %"),
        "{}",
        r.attribution[1].message
    );
    let junit = crate::history::render::junit(&r);
    assert_eq!(junit.matches("<testcase ").count(), r.verdicts.len());
    assert_eq!(junit.matches("<failure ").count(), 6, "{junit}");
}

#[test]
fn runs_with_error_findings_are_left_out_of_the_baseline() {
    let mut rows = history(1.0, 1980.0);
    for r in rows.iter_mut().filter(|r| r.key.run_id == 9) {
        r.run.findings_error = 1;
        r.step.t_fwd_s = r.step.t_fwd_s.map(|t| t * 2.0);
    }
    let r = regress_run(&rows, 10, &RegressOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(r.baseline_run_ids, vec![2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(r.regressions().count(), 0, "{:?}", r.verdicts);
}

#[test]
fn with_two_runs_of_history_it_says_insufficient_and_compares_with_the_last() {
    let mut rows: Vec<HistoryStep> = (0..2).flat_map(|n| night(n, 1.0, 1980.0)).collect();
    rows.extend(night(2, 1.08, 1980.0));
    let r = regress_run(&rows, 2, &RegressOptions::default())
        .unwrap()
        .unwrap();
    let v = r.verdicts.iter().find(|v| v.metric == "t_fwd_s").unwrap();
    assert_eq!(v.verdict, Verdict::InsufficientHistory);
    assert!(v.worse_than_last, "{v:?}");
    assert!(
        r.headline().contains("insufficient history"),
        "{}",
        r.headline()
    );
}

#[test]
fn throughput_counted_in_short_windows_holds_its_edge_scatter() {
    // 16 output tokens: a one-wave window of 15 steps, whose edges move its count by ±2.7 %.
    let judge = |drop: f64| {
        let mut rows = history(1.0, 1980.0);
        for r in &mut rows {
            r.step.output_len = 16;
            if r.key.run_id == 10 {
                r.step.throughput_tok_s = r.step.throughput_tok_s.map(|t| t * (1.0 - drop));
            }
        }
        let r = regress_run(&rows, 10, &RegressOptions::default())
            .unwrap()
            .unwrap();
        (
            verdict(&r, "throughput_tok_s", 4),
            verdict(&r, "throughput_tok_s", 16),
        )
    };
    // A quiet night in CI counted 3.2 % less: the window's edges, not the node.
    assert_eq!(judge(0.032), (Verdict::WithinNoise, Verdict::WithinNoise));
    assert_eq!(judge(0.12), (Verdict::Regression, Verdict::Regression));
}

/// The regressed night's attribution codes, with `edit` applied to every night and `last` to
/// the regressed one.
fn causes(edit: impl Fn(&mut RunKey), last: impl Fn(&mut RunKey)) -> Vec<(String, String)> {
    let mut rows = history(1.08, 1980.0);
    for r in &mut rows {
        edit(&mut r.key);
        if r.key.run_id == 10 {
            last(&mut r.key);
        }
    }
    let r = regress_run(&rows, 10, &RegressOptions::default())
        .unwrap()
        .unwrap();
    r.attribution
        .iter()
        .map(|c| (c.code.clone(), c.message.clone()))
        .collect()
}

#[test]
fn a_new_model_revision_is_named_and_an_unknown_one_is_not() {
    let known = |k: &mut RunKey| k.model_revision = Some("root=/hub/snapshots/abc".into());
    let got = causes(known, |k| {
        k.model_revision = Some("root=/hub/snapshots/def".into());
    });
    assert_eq!(
        got,
        [(
            "model_revision_changed".to_string(),
            "model revision root=/hub/snapshots/abc → root=/hub/snapshots/def".to_string()
        )]
    );
    // The same revision, or a night that recorded none: nothing to name.
    assert!(causes(known, |_| {}).is_empty());
    assert!(causes(known, |k| k.model_revision = None).is_empty());
}

#[test]
fn other_processes_on_the_gpus_are_named_when_more_than_the_baseline_had() {
    let none = |k: &mut RunKey| k.other_gpu_processes = Some(String::new());
    let got = causes(none, |k| {
        k.other_gpu_processes = Some("555 on GPU 1".into());
    });
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "other_gpu_processes");
    assert!(
        got[0].1.contains("1 (pid 555 on GPU 1)") && got[0].1.contains("0 in the last baseline"),
        "{}",
        got[0].1
    );
    // The same other job every night is not what changed.
    let always = |k: &mut RunKey| k.other_gpu_processes = Some("42 on GPU 0".into());
    assert!(
        causes(always, |k| k.other_gpu_processes =
            Some("43 on GPU 0".into()))
        .is_empty()
    );
    // The engine's processes not told apart: more compute processes in all.
    let two = |k: &mut RunKey| k.gpu_compute_processes = Some(2);
    let got = causes(two, |k| k.gpu_compute_processes = Some(3));
    assert_eq!(got[0].0, "other_gpu_processes");
    assert!(got[0].1.contains("2 → 3"), "{}", got[0].1);
    assert!(causes(two, |_| {}).is_empty());
}
