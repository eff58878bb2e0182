//! The decode-window figures: the window's TPOT (waves, closed loops, bursts), the prefill
//! steps, and each chunk's tokens.

use super::*;

fn figures() -> DataFrame {
    // Wave 0 of step 0: request 0 decodes from 1.0, request 1 from 1.5 (a second prefill
    // step); the window is [1.5, 3.0]. Request 2 is a closed-loop one of step 1.
    df!(
        "request" => [0u32, 1, 2],
        "step_idx" => [0u32, 0, 1],
        "wave" => [Some(0u32), Some(0), None],
        "sent_t_s" => [0.0, 0.0, 5.0],
        "done_t_s" => [Some(3.0), Some(3.5), Some(6.0)],
        "last_chunk_t_s" => [Some(3.0), Some(3.5), Some(6.0)],
        "first_token_t_s" => [Some(1.0), Some(1.5), Some(5.5)],
        "completion_tokens_reported" => [Some(17u32), Some(21), None],
        "outcome" => ["ok", "ok", "ok"],
    )
    .unwrap()
}

#[test]
fn the_window_tpot_counts_only_the_window_and_prefill_steps_come_from_the_earliest() {
    // Request 0: chunks every 0.5 s from 1.0 (1.0 and 1.5 are prefill steps 1 and 2), then
    // every 0.1 s in the window. Request 1: first token at 1.5, then every 0.1 s.
    let mut req = vec![];
    let mut t = vec![];
    for x in [1.0, 1.5] {
        req.push(0u32);
        t.push(x);
    }
    for k in 1..=15 {
        req.push(0);
        t.push(1.5 + f64::from(k) * 0.1);
    }
    for k in 0..=20 {
        req.push(1);
        t.push(1.5 + f64::from(k) * 0.1);
    }
    // Step 1, closed loop: sent at 5.0, first token 5.5, 5 tokens to 6.0; window [5.0, 6.0].
    for k in 0..5 {
        req.push(2);
        t.push(5.5 + f64::from(k) * 0.125);
    }
    let n = req.len();
    let step: Vec<u32> = req.iter().map(|r| u32::from(*r == 2)).collect();
    let chunks = df!(
        "request" => req,
        "step_idx" => step,
        "t_s" => t,
        "warmup" => vec![false; n],
        "gap_s" => vec![None::<f64>; n],
        "tokens" => vec![Some(1u32); n],
    )
    .unwrap();
    let w = |start_t_s, end_t_s, wave| Window {
        start_t_s,
        end_t_s,
        wave,
    };
    let windows = BTreeMap::from([
        (0u32, vec![w(1.5, 3.0, Some(0))]),
        (1u32, vec![w(5.0, 6.0, None)]),
    ]);
    let reqs = window_requests(&figures()).unwrap();
    let (_, d) =
        super::super::cadence::chunk_pass(&chunks, &windows, &BTreeMap::new(), &reqs).unwrap();
    let wave = &d[&0];
    // 15 tokens in 1.5 s for both requests: 0.1 s, not the 3 s / 16 of request 0's life.
    assert!((wave.tpot_s.unwrap() - 0.1).abs() < 1e-9, "{wave:?}");
    assert!(wave.tokens_known);
    assert_eq!(wave.prefill_steps, BTreeMap::from([(0, 2)]));
    // Whole wave: request 0 spans 2.0 s in 16 gaps, request 1 2.0 s in 20; the window
    // 0.1 s a gap.
    let ratio = wave.whole_over_window[&0];
    assert!((ratio - (4.0 / 36.0) / 0.1).abs() < 1e-9, "{ratio}");
    // The closed-loop request spent 1 s in its window for 5 tokens, its TTFT included.
    assert!((d[&1].tpot_s.unwrap() - 0.2).abs() < 1e-9, "{:?}", d[&1]);
    assert!(d[&1].prefill_steps.is_empty());
}

/// The decode-window figures of step `step`, a closed loop with one window [10, 12], from the
/// requests' figures and their chunks (`req[i]`'s arrival `t[i]`, one token each).
fn closed_loop_pass(figures: &DataFrame, step: u32, req: Vec<u32>, t: Vec<f64>) -> DecodeWindow {
    let n = req.len();
    let chunks = df!(
        "request" => req,
        "step_idx" => vec![step; n],
        "t_s" => t,
        "gap_s" => vec![None::<f64>; n],
        "tokens" => vec![Some(1u32); n],
    )
    .unwrap();
    let windows = BTreeMap::from([(
        step,
        vec![Window {
            start_t_s: 10.0,
            end_t_s: 12.0,
            wave: None,
        }],
    )]);
    let reqs = window_requests(figures).unwrap();
    let (_, mut d) =
        super::super::cadence::chunk_pass(&chunks, &windows, &BTreeMap::new(), &reqs).unwrap();
    d.remove(&step).unwrap()
}

#[test]
fn a_closed_loop_window_counts_warm_up_load_queued_requests_and_requests_without_a_token() {
    // Window [10, 12] of a closed loop. Request 0 is a warm-up one decoding through its
    // start (chunks 9.52 … 10.92, every 0.1 s): from the window's start, 0.92 s for the 9
    // tokens after its arrival nearest it (10.02). Request 1 was sent at 9.8 and queued: first token 10.5, then to 11.5;
    // from the window's start, 1.5 s for 11 tokens. Request 2, sent at 11.0, had no token
    // by the window's end: 1.0 s in prefill, no token.
    let figures = df!(
        "request" => [0u32, 1, 2],
        "step_idx" => [2u32, 2, 2],
        "wave" => [None::<u32>, None, None],
        "sent_t_s" => [9.0, 9.8, 11.0],
        "done_t_s" => [Some(11.0), Some(11.6), Some(13.0)],
        "last_chunk_t_s" => [Some(10.92), Some(11.5), Some(13.0)],
        "first_token_t_s" => [Some(9.52), Some(10.5), Some(13.0)],
        "completion_tokens_reported" => [Some(15u32), Some(11), Some(1)],
        "outcome" => ["ok", "ok", "ok"],
    )
    .unwrap();
    let mut req = vec![];
    let mut t = vec![];
    for k in 0..15 {
        req.push(0u32);
        t.push(9.52 + f64::from(k) * 0.1);
    }
    for k in 0..=10 {
        req.push(1);
        t.push(10.5 + f64::from(k) * 0.1);
    }
    req.push(2);
    t.push(13.0);
    let d = &closed_loop_pass(&figures, 2, req, t);
    // (0.92 + 1.5 + 1.0) s over 9 + 11 tokens.
    assert!((d.tpot_s.unwrap() - 3.42 / 20.0).abs() < 1e-9, "{d:?}");
    // Request 0's 10 chunks after the start and request 1's 11.
    assert!((d.window_tokens - 21.0).abs() < 1e-9, "{d:?}");
}

/// One closed-loop request decoding through window [10, 12], a chunk every 0.1 s from
/// 9.03, done at 12.5; with `burst`, the chunks of 10.03 … 10.53 read together at 10.53.
fn one_decoding(burst: bool) -> DecodeWindow {
    let t: Vec<f64> = (0..30)
        .map(|k| {
            let x = 9.03 + f64::from(k) * 0.1;
            if burst && (10..=15).contains(&k) {
                10.53
            } else {
                x
            }
        })
        .collect();
    let figures = df!(
        "request" => [0u32],
        "step_idx" => [3u32],
        "wave" => [None::<u32>],
        "sent_t_s" => [8.0],
        "done_t_s" => [Some(12.5)],
        "last_chunk_t_s" => [Some(11.93)],
        "first_token_t_s" => [Some(9.03)],
        "completion_tokens_reported" => [Some(30u32)],
        "outcome" => ["ok"],
    )
    .unwrap();
    let n = t.len();
    closed_loop_pass(&figures, 3, vec![0u32; n], t)
}

#[test]
fn a_burst_read_late_at_the_windows_start_does_not_shorten_the_tpot() {
    // Even: from 10.0, 19 tokens after 10.03 (the arrival nearest) to 11.93.
    let even = one_decoding(false).tpot_s.unwrap();
    assert!((even - 1.93 / 19.0).abs() < 1e-9, "{even}");
    // Burst: the nearest arrival is 9.93, so the burst's six count and 10.03's with them:
    // 1.93 s for 20 tokens, 3.5 % under the 0.1 s step. Timed from the first arrival in
    // the window (10.53) it read 1.40 s for 19 tokens, 26 % under.
    let burst = one_decoding(true).tpot_s.unwrap();
    assert!((burst - 1.93 / 20.0).abs() < 1e-9, "{burst}");
    assert!((burst - 0.1).abs() / 0.1 < 0.05, "{burst}");
}

#[test]
fn a_chunk_of_unknown_size_shares_the_output_after_the_first_token() {
    // Speculative decoding, 16 tokens in 7 chunks of unknown size: the prompt's pass gave
    // the first, the 6 decode chunks 2.5 each (a flat scale would give each 16 / 7).
    let v = chunk_tokens(&[None; 7], Some(16));
    assert_eq!(v[0], 1.0);
    assert!(v[1..].iter().all(|x| (x - 2.5).abs() < 1e-12), "{v:?}");
    // Known sizes that agree with `usage` stay as they are; without `usage`, 1 each.
    assert_eq!(
        chunk_tokens(&[Some(1), Some(3), Some(2)], Some(6)),
        [1.0, 3.0, 2.0]
    );
    assert_eq!(chunk_tokens(&[None, None], None), [1.0, 1.0]);
    assert!(chunk_tokens(&[], Some(3)).is_empty());
}

#[test]
fn nearest_picks_the_closest_arrival() {
    assert_eq!(nearest(&[1.0, 2.0, 3.0], 2.4), Some(1));
    assert_eq!(nearest(&[1.0, 2.0, 3.0], 2.6), Some(2));
    assert_eq!(nearest(&[1.0], 0.0), Some(0));
    assert_eq!(nearest(&[], 0.0), None);
}

#[test]
fn only_the_windows_a_request_meets_count_and_those_at_its_edges_do() {
    // Sent at 1.0, a token every 0.1 s from 1.1 to 2.0, done at 2.0; among 2,000 windows far
    // before and after it, five near it.
    let req = Req {
        step: 0,
        wave: None,
        sent: 1.0,
        end: 2.0,
        first: Some(1.1),
        output_tokens: Some(10),
    };
    let times: Vec<f64> = (1..=10).map(|k| 1.0 + f64::from(k) * 0.1).collect();
    let toks = vec![Some(1u32); times.len()];
    let w = |a: f64, b: f64| Window {
        start_t_s: a,
        end_t_s: b,
        wave: None,
    };
    let mut windows: Vec<Window> = (0..1000)
        .map(|k| w(f64::from(k) * 1e-4, f64::from(k) * 1e-4 + 5e-5))
        .collect();
    windows.extend([
        w(0.2, 0.9),   // wholly before the send
        w(0.95, 1.1),  // ends on the first chunk: it holds it
        w(1.26, 1.55), // inside
        w(1.6, 2.0),   // ends on the last chunk and the end
        w(2.0, 2.5),   // starts on the end: nothing after it
    ]);
    windows.extend((0..1000).map(|k| w(3.0 + f64::from(k), 3.5 + f64::from(k))));
    let mut pass = DecodePass::default();
    pass.add(&req, &windows, &times, &toks);
    let d = &pass.finish(&BTreeMap::new())[&0];
    // Tokens after each window's start: 1.1; 1.3, 1.4, 1.5; 1.7 … 2.0.
    assert!((d.window_tokens - 8.0).abs() < 1e-9, "{d:?}");
    // Time: [1.0, 1.1] prefilling (0.1 s, 1 token); [1.26, 1.5] after the chunk nearest 1.26
    // (1.3), 0.24 s and 2 tokens; [1.6, 2.0] after 1.6's chunk, 0.4 s and 4 tokens.
    let expected = (0.1 + 0.24 + 0.4) / 7.0;
    assert!(
        (d.tpot_s.unwrap() - expected).abs() < 1e-9,
        "{d:?} vs {expected}"
    );
}
