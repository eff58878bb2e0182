//! The search driven against synthetic engines: each limit closes the bracket where the engine's
//! limit is, in the number of steps the targets allow.

use super::*;
use crate::search::judge::judge;
use crate::search::{EngineHold, HoldLimit};

/// A synthetic engine: `t_fwd = t0 + k × running`, at most `cap` sequences running, preempting
/// above `kv_bs`, failing requests from `error_from` on; a step takes `0.5 + 0.02 × bs` s.
#[derive(Clone, Copy)]
struct Engine {
    cap: u32,
    kv_bs: u32,
    t0_s: f64,
    k_s: f64,
    error_from: Option<u32>,
}

/// Llama-3.1-8B on an H100 as the simulator's profile has it, cap 256, KV for 1,166 sequences.
const LLAMA: Engine = Engine {
    cap: 256,
    kv_bs: 1166,
    t0_s: 0.0065,
    k_s: 0.000_049_2,
    error_from: None,
};

impl Engine {
    fn measure(&self, idx: u32, bs: u32) -> StepMeasure {
        let running = bs.min(self.cap);
        let held = bs <= self.cap;
        StepMeasure {
            step_idx: idx,
            batch_size: bs,
            requests: bs,
            requests_failed: u32::from(self.error_from.is_some_and(|e| bs >= e)),
            window_s: if held { 1.0 } else { 0.0 },
            wave: true,
            running_max: Some(f64::from(running)),
            waiting_max: held.then_some(0.0),
            kv_usage_max_frac: Some((0.9 * f64::from(running) / f64::from(self.kv_bs)).min(1.0)),
            preemptions: Some(if bs > self.kv_bs { 4.0 } else { 0.0 }),
            t_fwd_s: Some(self.t0_s + self.k_s * f64::from(running)),
            mtp: 1.0,
            duration_s: Some(0.5 + 0.02 * f64::from(bs)),
        }
    }

    /// Runs the search to its end: the steps in order and the outcome.
    fn search(&self, s: &SearchSettings) -> (Vec<u32>, Outcome) {
        let mut steps: Vec<Judged> = Vec::new();
        let mut elapsed = 0.0;
        loop {
            match decide(s, &steps, elapsed) {
                Decision::Next(bs) => {
                    assert!(
                        steps.iter().all(|j| j.bs() != bs),
                        "bs {bs} measured twice: {:?}",
                        bss(&steps)
                    );
                    let measure = self.measure(steps.len() as u32, bs);
                    elapsed += measure.duration_s.unwrap();
                    let verdict = judge(&measure, s);
                    steps.push(Judged { measure, verdict });
                }
                Decision::Done(o) => return (bss(&steps), o),
            }
            assert!(steps.len() <= MAX_STEPS, "runaway: {:?}", bss(&steps));
        }
    }
}

fn bss(steps: &[Judged]) -> Vec<u32> {
    steps.iter().map(Judged::bs).collect()
}

fn settings() -> SearchSettings {
    SearchSettings::new(128, 128)
}

fn ceiling_bs(path: &[u32], o: &Outcome) -> u32 {
    path[o.ceiling_step.unwrap() as usize]
}

#[test]
fn a_sequence_cap_is_found_by_its_plateau_in_ten_steps() {
    let (path, o) = LLAMA.search(&settings());
    assert_eq!(path, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]);
    assert_eq!(
        o.stop,
        Stop::Limit {
            limit: Limit::SequenceCap { cap: 256 }
        }
    );
    assert_eq!(ceiling_bs(&path, &o), 256);
    assert_eq!((o.last_good_bs, o.first_bad_bs), (Some(256), Some(512)));
}

#[test]
fn a_cap_between_powers_of_two_is_measured_at_the_plateau() {
    let e = Engine { cap: 300, ..LLAMA };
    let (path, o) = e.search(&settings());
    assert_eq!(path, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 300]);
    assert_eq!(ceiling_bs(&path, &o), 300);
    assert_eq!(o.stop.name(), "sequence_cap");
}

#[test]
fn a_declared_slot_count_bounds_the_doubling_and_one_step_above_confirms_it() {
    let e = Engine { cap: 8, ..LLAMA };
    let mut s = settings();
    s.engine_hold = Some(EngineHold {
        max_batch: 8,
        limit: HoldLimit::SequenceCap,
        source: "llama.cpp /props total_slots".into(),
    });
    let (path, o) = e.search(&s);
    assert_eq!(path, [1, 2, 4, 8, 9]);
    assert_eq!(
        o.stop,
        Stop::Limit {
            limit: Limit::SequenceCap { cap: 8 }
        }
    );
    // The engine holds more than it said: the search goes on doubling past the declaration.
    let e = Engine { cap: 40, ..LLAMA };
    let (path, o) = e.search(&s);
    assert_eq!(&path[..6], [1, 2, 4, 8, 9, 18]);
    assert_eq!(ceiling_bs(&path, &o), 40);
}

#[test]
fn the_sla_is_bracketed_to_five_percent_in_at_most_twelve_steps() {
    // 60 tok/s per sequence: t_fwd ≤ 16.67 ms, i.e. bs ≤ 206.6 on this engine.
    let mut s = settings();
    s.sla_otps = Some(60.0);
    let (path, o) = LLAMA.search(&s);
    assert!(path.len() <= 12, "{path:?}");
    assert_eq!(o.stop.name(), "sla");
    let (g, b) = (o.last_good_bs.unwrap(), o.first_bad_bs.unwrap());
    assert!(f64::from(b) <= f64::from(g) * 1.05, "{g}..{b} in {path:?}");
    assert!(g <= 206 && b > 206, "{g}..{b}");
    assert_eq!(ceiling_bs(&path, &o), g);
    // Without the interpolation, plain halving would need 13 steps here.
    assert!(path.len() < 13, "{path:?}");
}

#[test]
fn a_full_kv_cache_stops_at_what_the_engine_says_it_holds() {
    let e = Engine {
        cap: 4096,
        kv_bs: 1000,
        ..LLAMA
    };
    let mut s = settings();
    s.sla_otps = Some(1.0);
    s.engine_hold = Some(EngineHold {
        max_batch: 1000,
        limit: HoldLimit::KvCapacity,
        source: "vllm:cache_config_info".into(),
    });
    let (path, o) = e.search(&s);
    assert_eq!(path, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1050]);
    assert_eq!(o.stop.name(), "preemption");
    assert_eq!(ceiling_bs(&path, &o), 1000);
}

#[test]
fn errors_are_bisected_to_the_middle_until_five_percent() {
    let e = Engine {
        error_from: Some(300),
        ..LLAMA
    };
    let mut s = settings();
    s.engine_hold = None;
    let e = Engine { cap: 4096, ..e };
    s.sla_otps = Some(1.0);
    let (path, o) = e.search(&s);
    assert_eq!(
        path,
        [
            1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 384, 320, 288, 304, 296
        ]
    );
    assert_eq!(o.stop.name(), "errors");
    assert_eq!((o.last_good_bs, o.first_bad_bs), (Some(296), Some(304)));
}

#[test]
fn a_first_step_that_fails_ends_the_search_without_a_ceiling() {
    let e = Engine {
        error_from: Some(1),
        ..LLAMA
    };
    let (path, o) = e.search(&settings());
    assert_eq!(path, [1]);
    assert_eq!(o.ceiling_step, None);
    assert_eq!(o.stop.name(), "errors");
}

#[test]
fn the_budget_stops_before_a_step_that_would_end_past_it() {
    // Steps take 0.5 + 0.02 × bs s: 1..128 take 9.1 s together, bs 256 about 5.6 s more.
    let mut s = settings();
    s.budget_s = 12.0;
    let (path, o) = LLAMA.search(&s);
    assert_eq!(path, [1, 2, 4, 8, 16, 32, 64, 128]);
    let Stop::Budget {
        next_bs,
        elapsed_s,
        estimate_s,
    } = o.stop
    else {
        panic!("{:?}", o.stop)
    };
    assert_eq!(next_bs, 256);
    assert!((elapsed_s - 9.1).abs() < 1e-9, "{elapsed_s}");
    // Extended along 64 → 128 (1.78 s → 3.06 s): 5.62 s, the true 5.62 s.
    assert!((estimate_s.unwrap() - 5.62).abs() < 1e-9, "{estimate_s:?}");
    assert_eq!(ceiling_bs(&path, &o), 128);
    // With a budget that fits, the same engine is searched to its cap.
    s.budget_s = 300.0;
    assert_eq!(LLAMA.search(&s).1.stop.name(), "sequence_cap");
}

#[test]
fn an_engine_without_limits_stops_at_the_search_bound() {
    let e = Engine {
        cap: u32::MAX,
        kv_bs: u32::MAX,
        t0_s: 0.001,
        k_s: 0.0,
        error_from: None,
    };
    let mut s = settings();
    s.budget_s = f64::INFINITY;
    let (path, o) = e.search(&s);
    assert_eq!(*path.last().unwrap(), MAX_BATCH_SIZE);
    assert_eq!(path.len(), 17);
    assert_eq!(o.stop, Stop::SearchBound);
}

#[test]
fn the_duration_estimate_interpolates_and_extends() {
    let judged = |bs: u32, d: f64| Judged {
        measure: StepMeasure {
            duration_s: Some(d),
            ..LLAMA.measure(0, bs)
        },
        verdict: Verdict::Follows,
    };
    let steps = [judged(8, 1.0), judged(16, 2.0), judged(32, 6.0)];
    assert_eq!(estimate_s(&steps, 20), Some(6.0), "between: the longer");
    assert_eq!(estimate_s(&steps, 64), Some(14.0), "extended along 16 → 32");
    assert_eq!(estimate_s(&steps, 4), Some(1.0), "below: the smallest");
    assert_eq!(
        estimate_s(&steps[..1], 16),
        Some(2.0),
        "one point: in proportion"
    );
    assert_eq!(estimate_s(&[], 16), None);
}
