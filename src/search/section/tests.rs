//! The replay over a synthetic recording analysed end to end: verdicts per step, the next batch
//! size, the ceiling at a measured step, and the text.

use ceiling_reports::synthetic::{WaveSpec, wave_recording};
use ceiling_reports::{AnalysisOptions, analyze};

use super::*;

/// Steps at bs 1, 2 and 4 of an engine whose step takes 10, 12 and 20 ms.
fn analysed() -> (Vec<StepRecord>, ceiling_reports::Analysis) {
    let spec = |batch_size, step_time_s| WaveSpec {
        batch_size,
        step_time_s,
        waves: 2,
        ..WaveSpec::default()
    };
    let run = wave_recording(&[spec(1, 0.010), spec(2, 0.012), spec(4, 0.020)]);
    let rec = run.recording();
    let a = analyze(&rec, &AnalysisOptions::default()).unwrap();
    (run.steps, a)
}

#[test]
fn an_sla_between_two_steps_is_bracketed_next() {
    let (steps, a) = analysed();
    let mut s = SearchSettings::new(128, 64);
    // 60 tok/s per sequence: 10 and 12 ms steps meet it, 20 ms (50 tok/s) does not.
    s.sla_otps = Some(60.0);
    let r = replay(&s, &steps, &a.steps, &a.timings);
    let verdicts: Vec<&str> = r
        .steps
        .iter()
        .map(|s| s.verdict.limit().map_or("follows", Limit::name))
        .collect();
    assert_eq!(verdicts, ["follows", "follows", "sla"]);
    // The bracket (2, 4) is open: the SLA's crossing (16.7 ms, bs 3.7) lies inside it.
    assert_eq!(r.next_bs, Some(3));
    assert_eq!(r.limit, "interrupted");
    let c = r.ceiling.as_ref().unwrap();
    assert_eq!((c.step_idx, c.batch_size), (1, 2));
    assert!((c.t_fwd_s - 0.012).abs() < 0.012 * 0.02, "{c:?}");
    assert!((c.throughput_tok_s - 2.0 / 0.012).abs() < 2.0 / 0.012 * 0.02);
    assert_eq!((r.last_good_bs, r.first_bad_bs), (Some(2), Some(4)));
    let elapsed = steps[2].end_t_s.unwrap() - steps[0].start_t_s;
    assert!((r.elapsed_s - elapsed).abs() < 1e-9);
    let text = r.lines().join("\n");
    assert!(text.contains("interrupted before bs 3"), "{text}");
    assert!(text.contains("SLA: 50.0 tok/s"), "{text}");
    assert!(text.contains("≥ 60.0 tok/s per sequence"), "{text}");
}

#[test]
fn a_search_that_ran_out_of_budget_says_so_and_keeps_its_ceiling() {
    let (steps, a) = analysed();
    let mut s = SearchSettings::new(128, 64);
    s.budget_s = 0.5;
    let r = replay(&s, &steps, &a.steps, &a.timings);
    assert_eq!(r.limit, "budget");
    assert_eq!(r.next_bs, None);
    assert_eq!(r.ceiling.as_ref().unwrap().batch_size, 4);
    assert!(
        r.verdict().starts_with("200 output tok/s at bs 4"),
        "{}",
        r.verdict()
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["stop"]["kind"], "budget");
    assert_eq!(json["stop"]["next_bs"], 8);
    assert_eq!(json["steps"][0]["verdict"]["verdict"], "follows");
}
