//! The disaggregated view on hand-made role samples: the limiting side, the TTFT split, and the
//! verdict's step.

use ceiling_collectors::engines::{Signals, SumCount};

use super::*;
use crate::metrics::Distribution;
use crate::recording::Pattern;

/// A sample at `t` whose queue-time histogram has `n` requests totalling `queue` seconds, with
/// `running` and `waiting` gauges; the prefill-time and ITL histograms grow alongside.
fn sample(t: f64, n: f64, queue: f64, running: f64, waiting: f64) -> EngineSample {
    EngineSample {
        t_s: t,
        signals: Signals {
            running: Some(running),
            waiting: Some(waiting),
            queue_s: Some(SumCount {
                sum: queue,
                count: n,
            }),
            prefill_s: Some(SumCount {
                sum: 0.05 * n,
                count: n,
            }),
            itl_s: Some(SumCount {
                sum: 0.02 * n * 100.0,
                count: n * 100.0,
            }),
            // Each request is served in 100 ms after its queue.
            e2e_s: Some(SumCount {
                sum: queue + 0.1 * n,
                count: n,
            }),
            ..Signals::default()
        },
        boundary: false,
    }
}

/// An endpoint over a step from 0 to 10 s: 20 requests, each queued `queue_each` seconds.
fn side(role: Role, queue_each: f64, running: f64, waiting: f64) -> RoleEngine {
    RoleEngine {
        source: role as u32,
        role,
        url: format!("http://127.0.0.1/{}", role.as_str()),
        samples: vec![
            sample(-0.1, 0.0, 0.0, 0.0, 0.0),
            sample(5.0, 10.0, 10.0 * queue_each, running, waiting),
            sample(10.1, 20.0, 20.0 * queue_each, 0.0, 0.0),
        ],
        scrapes: 3,
    }
}

fn step(idx: u32, start: f64, end: f64) -> StepRecord {
    StepRecord {
        idx,
        batch_size: 0,
        input_len: 512,
        output_len: 128,
        pattern: Pattern::Rate,
        start_t_s: start,
        end_t_s: Some(end),
        rate_rps: Some(2.0),
        burstiness: Some(1.0),
    }
}

fn dist(mean: f64) -> Distribution {
    Distribution {
        n: 20,
        mean,
        p50: mean,
        p90: mean,
        p95: mean,
        p99: mean,
        max: mean,
        std: 0.0,
    }
}

fn summary(idx: u32, ttft: f64) -> StepSummary {
    StepSummary {
        step_idx: idx,
        ttft_s: Some(dist(ttft)),
        tpot_s: Some(dist(0.021)),
        ..crate::findings::fixture::summary()
    }
}

fn view(roles: &[RoleEngine], ttft: f64) -> PdView {
    pd_view(
        roles,
        &[step(0, 0.0, 10.0)],
        &[summary(0, ttft)],
        &[],
        None,
        &BTreeMap::new(),
    )
    .expect("a view")
}

#[test]
fn a_prefill_side_whose_queue_holds_requests_limits() {
    let v = view(
        &[
            side(Role::Prefill, 0.8, 4.0, 12.0),
            side(Role::Decode, 0.001, 3.0, 0.0),
        ],
        1.0,
    );
    let s = &v.steps[0];
    assert_eq!(s.limiting, Limiting::Prefill, "{}", s.why);
    assert!((s.prefill.queue_s_mean.unwrap() - 0.8).abs() < 1e-9);
    assert!((s.prefill.prefill_s_mean.unwrap() - 0.05).abs() < 1e-9);
    assert_eq!(s.prefill.running_mean, Some(4.0));
    assert_eq!(s.prefill.requests, Some(20.0));
    // TTFT 1.0 s = 0.8 queue + 0.05 prefill + 0.001 decode queue + 0.149 hand-off.
    assert!((s.ttft.handoff_s.unwrap() - 0.149).abs() < 1e-9);
    // The decode side's step time: Δsum / Δcount of its inter-token histogram.
    assert!((s.decode.itl_s_mean.unwrap() - 0.02).abs() < 1e-9);
    assert!((s.prefill.service_s_mean.unwrap() - 0.1).abs() < 1e-9);
    let verdict = v.verdict.expect("a verdict");
    assert_eq!(verdict.limiting, Limiting::Prefill);
    assert!(
        verdict.line.contains("prefill side limits"),
        "{}",
        verdict.line
    );
    assert!(verdict.line.contains("800 ms"), "{}", verdict.line);
}

#[test]
fn a_decode_side_that_makes_requests_wait_limits() {
    let v = view(
        &[
            side(Role::Prefill, 0.002, 1.0, 0.0),
            side(Role::Decode, 0.6, 64.0, 9.0),
        ],
        0.7,
    );
    // 2 requests a second, each 0.6 s in the decode queue: 1.2 waiting on average.
    assert_eq!(v.steps[0].limiting, Limiting::Decode, "{}", v.steps[0].why);
    assert!((v.steps[0].decode.queue_len.unwrap() - 1.2).abs() < 1e-9);
    assert_eq!(v.verdict.map(|x| x.limiting), Some(Limiting::Decode));
}

#[test]
fn neither_side_limits_when_neither_queues() {
    let v = view(
        &[
            side(Role::Prefill, 0.001, 1.0, 0.0),
            side(Role::Decode, 0.002, 8.0, 0.0),
        ],
        0.1,
    );
    assert_eq!(v.steps[0].limiting, Limiting::Neither);
    assert_eq!(v.verdict, None);
}

#[test]
fn a_queue_of_less_than_one_request_is_random_arrivals_not_a_limit() {
    // 2 requests a second queued 50 ms each: 0.1 waiting on average.
    let v = view(
        &[
            side(Role::Prefill, 0.05, 1.0, 0.4),
            side(Role::Decode, 0.001, 8.0, 0.0),
        ],
        0.2,
    );
    assert_eq!(v.steps[0].limiting, Limiting::Neither, "{}", v.steps[0].why);
    assert!(
        v.steps[0]
            .why
            .contains("prefill: 0.1 requests waiting for 50 ms"),
        "{}",
        v.steps[0].why
    );
}

#[test]
fn waiting_for_the_step_in_progress_is_not_a_queue() {
    // 200 requests a second, each waiting 15 ms for the decode step in progress (30 ms) to
    // end: 3 waiting by Little's law, but none waits two steps.
    let mut d = side(Role::Decode, 0.015, 40.0, 0.0);
    for s in &mut d.samples {
        let n = s.signals.queue_s.map_or(0.0, |h| h.count);
        s.signals.queue_s = Some(SumCount {
            sum: 0.015 * n * 100.0,
            count: n * 100.0,
        });
        s.signals.itl_s = Some(SumCount {
            sum: 0.03 * n,
            count: n,
        });
    }
    let v = view(&[side(Role::Prefill, 0.0, 1.0, 0.0), d], 0.1);
    let s = &v.steps[0];
    assert!(
        (s.decode.queue_len.unwrap() - 3.0).abs() < 1e-9,
        "{:?}",
        s.decode.queue_len
    );
    assert_eq!(s.limiting, Limiting::Neither, "{}", s.why);
}

#[test]
fn both_sides_queueing_alike_is_balanced() {
    let v = view(
        &[
            side(Role::Prefill, 0.9, 4.0, 5.0),
            side(Role::Decode, 0.7, 64.0, 5.0),
        ],
        1.0,
    );
    assert_eq!(v.steps[0].limiting, Limiting::Both);
}

#[test]
fn without_queue_histograms_the_waiting_gauges_decide() {
    // SGLang before 0.5.4: no queue-time histogram, only the queue gauges.
    let mut p = side(Role::Prefill, 0.0, 2.0, 0.0);
    let mut d = side(Role::Decode, 0.0, 30.0, 6.0);
    for s in p.samples.iter_mut().chain(d.samples.iter_mut()) {
        s.signals.queue_s = None;
    }
    // The decode side's prealloc queue adds to its waiting requests.
    d.samples[1].signals.pd_prealloc_queue = Some(2.0);
    let v = view(&[p, d], 0.5);
    let s = &v.steps[0];
    assert_eq!(s.limiting, Limiting::Decode, "{}", s.why);
    assert_eq!(s.decode.pd_queue_mean, Some(2.0));
    assert!(s.why.contains("decode: 8.0 requests waiting"), "{}", s.why);
    // No prefill queue time: no hand-off either.
    assert_eq!(s.ttft.handoff_s, None);
}

#[test]
fn one_side_missing_is_unknown_not_a_verdict() {
    let v = view(&[side(Role::Decode, 0.5, 64.0, 9.0)], 0.6);
    assert_eq!(v.steps[0].limiting, Limiting::Unknown);
    assert_eq!(v.verdict, None);
}

#[test]
fn no_role_endpoints_no_view() {
    assert_eq!(
        pd_view(
            &[],
            &[step(0, 0.0, 1.0)],
            &[summary(0, 0.1)],
            &[],
            None,
            &BTreeMap::new()
        ),
        None
    );
}

#[test]
fn two_endpoints_of_a_side_add_their_batches_and_pool_their_queue_times() {
    let v = view(
        &[
            side(Role::Prefill, 0.2, 2.0, 1.0),
            side(Role::Prefill, 0.4, 3.0, 2.0),
            side(Role::Decode, 0.0, 10.0, 0.0),
        ],
        1.0,
    );
    let p = &v.steps[0].prefill;
    assert_eq!(p.endpoints, 2);
    assert_eq!(p.running_mean, Some(5.0));
    assert_eq!(p.waiting_mean, Some(3.0));
    assert!((p.queue_s_mean.unwrap() - 0.3).abs() < 1e-9);
    assert_eq!(p.requests, Some(40.0));
}

#[test]
fn the_verdict_is_read_where_the_sweep_broke() {
    // Step 0 under the ceiling (decode queues a little), step 1 over it (prefill queues),
    // step 2 far over (both): the verdict names step 1's side.
    let mk = |dq: f64, pq: f64, shift: f64| {
        let mut p = side(Role::Prefill, pq, 4.0, 3.0);
        let mut d = side(Role::Decode, dq, 40.0, 1.0);
        for s in p.samples.iter_mut().chain(d.samples.iter_mut()) {
            s.t_s += shift;
        }
        (p, d)
    };
    let (p0, d0) = mk(0.05, 0.0, 0.0);
    let (p1, d1) = mk(0.0, 0.9, 20.0);
    let (p2, d2) = mk(1.0, 1.1, 40.0);
    // Counters restart per endpoint here; one endpoint per side and step keeps the deltas apart.
    let roles = [p0, d0, p1, d1, p2, d2];
    let steps = [step(0, 0.0, 10.0), step(1, 20.0, 30.0), step(2, 40.0, 50.0)];
    let summaries = [summary(0, 0.2), summary(1, 1.2), summary(2, 2.5)];
    let miss = MacroCeiling {
        sla: crate::rate::MacroSla::default(),
        step_idx: 0,
        rate_asked_rps: Some(2.0),
        rate_achieved_rps: Some(2.0),
        completed_rps: Some(2.0),
        output_tokens_per_s: Some(256.0),
        ttft_p99_s: Some(0.2),
        tpot_p99_s: Some(0.021),
        error_rate: Some(0.0),
        first_miss_step_idx: Some(1),
        first_miss_rate_rps: Some(4.0),
        first_miss_reason: Some("p99 TTFT".into()),
        rate_interpolated_rps: None,
        binding: None,
        gap: None,
    };
    let v = pd_view(
        &roles,
        &steps,
        &summaries,
        &[],
        Some(&miss),
        &BTreeMap::new(),
    )
    .expect("a view");
    assert_eq!(v.verdict.map(|x| x.step_idx), Some(1));
}

#[test]
fn the_hand_off_needs_the_prefill_side_to_have_counted_the_clients_requests() {
    let roles = [
        side(Role::Prefill, 0.8, 4.0, 12.0),
        side(Role::Decode, 0.001, 3.0, 0.0),
    ];
    // The client measured 30 requests where the prefill side counted 20 (a warm-up the
    // bracket could not leave out): the means are of other sets, so no hand-off.
    let mut s = summary(0, 1.0);
    s.ttft_s = Some(Distribution { n: 30, ..dist(1.0) });
    let v = pd_view(
        &roles,
        &[step(0, 0.0, 10.0)],
        &[s],
        &[],
        None,
        &BTreeMap::new(),
    );
    let step0 = &v.expect("a view").steps[0];
    assert_eq!(step0.ttft.handoff_s, None);
    assert_eq!(step0.limiting, Limiting::Prefill);
}

#[test]
fn the_measured_start_leaves_the_warm_up_out_of_the_sides_counters() {
    // From 5 s on (the warm-up ended there), the prefill side counted 10 requests queued
    // 0.8 s each; over the whole step, 20.
    let roles = [
        side(Role::Prefill, 0.8, 4.0, 12.0),
        side(Role::Decode, 0.001, 3.0, 0.0),
    ];
    let measured = BTreeMap::from([(0, 5.0)]);
    let v = pd_view(
        &roles,
        &[step(0, 0.0, 10.0)],
        &[summary(0, 1.0)],
        &[],
        None,
        &measured,
    );
    assert_eq!(v.expect("a view").steps[0].prefill.requests, Some(10.0));
}
