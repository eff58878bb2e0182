//! The chunk pass' cadence: pairs, spans and tokens per window, the scraped mean, the
//! steps a chunk spans, and the placer.

use super::*;

#[test]
fn pairs_spans_and_tokens_are_per_request_and_window_warm_up_counted() {
    let w = |start_t_s, end_t_s| Window {
        start_t_s,
        end_t_s,
        wave: None,
    };
    let windows = BTreeMap::from([(0u32, vec![w(1.0, 2.0), w(3.0, 4.0)]), (1, Vec::new())]);
    // Request 0: three chunks in window 0, one between windows, two in window 1; request 1
    // is a warm-up one still decoding in window 0 (a closed loop's load, counted); request
    // 2: four chunks in window 1; request 3 is step 1's (no window).
    let t = [
        1.0, 1.5, 2.0, 2.5, 3.0, 3.2, 1.1, 1.2, 1.3, 3.0, 3.1, 3.2, 3.9, 1.0, 1.5,
    ];
    let request = [0u32, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3];
    let gap: Vec<Option<f64>> = (0..t.len())
        .map(|i| (i > 0 && request[i] == request[i - 1]).then(|| t[i] - t[i - 1]))
        .collect();
    let chunks = df!(
        "request" => request,
        "step_idx" => [0u32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1],
        "t_s" => t,
        "gap_s" => gap,
        "tokens" => [Some(2u32), Some(2), Some(2), Some(2), Some(2), Some(2), Some(5),
            Some(5), Some(5), Some(1), Some(1), Some(1), None, Some(9), Some(9)],
    )
    .unwrap();
    let (c, d) = chunk_pass(&chunks, &windows, &BTreeMap::new(), &BTreeMap::new()).unwrap();
    assert!(d.is_empty());
    let c0 = &c[&0];
    // Pairs: request 0's 1.5, 2.0 (window 0) and 3.2 (window 1); request 1's 1.2 and 1.3;
    // request 2's last three.
    assert_eq!(c0.gaps, 8);
    // Gaps 0.5, 0.5, 0.1, 0.1, 0.2, 0.1, 0.1, 0.7: the median between 0.1 and 0.2.
    assert!((c0.gap_median_s.unwrap() - 0.15).abs() < 1e-12, "{c0:?}");
    // Spans: request 0 in window 0 (0.5); request 1 in window 0 (0.1); request 2 in window
    // 1 (0.3); request 0 has only two chunks in window 1.
    assert!(
        (c0.span_gap_median_s.unwrap() - 0.3).abs() < 1e-12,
        "{c0:?}"
    );
    // Pair tokens 2 + 2 + 2 + 5 + 5 + 1 + 1 over the seven that were counted.
    assert_eq!(c0.tokens_per_chunk, Some(18.0 / 7.0));
    // After a window's start: request 0's 1.5, 2.0, 3.2, request 1's three and request 2's
    // last three, the unknown one counted as 1.
    assert_eq!(c0.window_tokens, 24.0);
    assert!(!c0.window_tokens_known);
    let c1 = &c[&1];
    assert_eq!((c1.gaps, c1.gap_median_s, c1.window_tokens), (0, None, 0.0));
    assert_eq!(c1.span_gap_median_s, None);
}

#[test]
fn the_scraped_mean_reads_the_gaps_that_end_between_the_windows_scrapes() {
    let windows = BTreeMap::from([(
        0u32,
        vec![Window {
            start_t_s: 1.0,
            end_t_s: 2.0,
            wave: None,
        }],
    )]);
    // Scrapes at 1.2 and 1.8 inside the window: the gaps ending at 1.5 and 1.6 are the
    // engine's; 0.1 (ending 1.1) and 0.35 (ending 1.95) are outside its delta.
    let spans = BTreeMap::from([(0u32, vec![Some((1.2, 1.8))])]);
    let t = [1.0, 1.1, 1.5, 1.6, 1.95];
    let gap: Vec<Option<f64>> = (0..t.len())
        .map(|i| (i > 0).then(|| t[i] - t[i - 1]))
        .collect();
    let chunks = df!(
        "request" => [0u32; 5],
        "step_idx" => [0u32; 5],
        "t_s" => t,
        "gap_s" => gap,
        "tokens" => [Some(1u32); 5],
    )
    .unwrap();
    let (c, _) = chunk_pass(&chunks, &windows, &spans, &BTreeMap::new()).unwrap();
    let c = &c[&0];
    assert!(
        (c.gap_mean_scraped_s.unwrap() - 0.25).abs() < 1e-12,
        "{c:?}"
    );
    assert!((c.gap_mean_s.unwrap() - 0.95 / 4.0).abs() < 1e-12, "{c:?}");
    assert!((c.t_fwd_mean_s(1.0).unwrap() - 0.25).abs() < 1e-12);
    // (0.4 + 0.1)² / (0.4² + 0.1²): one long gap weighs most.
    assert!(
        (c.scraped_gaps_n_eff.unwrap() - 0.25 / 0.17).abs() < 1e-9,
        "{c:?}"
    );
    // The gap an instant falls in: Σ g² / Σ g = 0.3025 / 0.95, above the mean 0.2375.
    assert!(
        (c.gap_at_edge_s.unwrap() - 0.3025 / 0.95).abs() < 1e-9,
        "{c:?}"
    );
    // No scrape span: the window's mean.
    let (c, _) = chunk_pass(&chunks, &windows, &BTreeMap::new(), &BTreeMap::new()).unwrap();
    assert_eq!(c[&0].gap_mean_scraped_s, None);
    assert!((c[&0].t_fwd_mean_s(1.0).unwrap() - 0.95 / 4.0).abs() < 1e-12);
}

#[test]
fn a_chunk_spans_whole_steps_where_the_ratio_is_near_one() {
    let c = |tpc| Cadence {
        span_gap_median_s: Some(0.00725),
        tokens_per_chunk: Some(tpc),
        ..Cadence::default()
    };
    // One step per chunk: the step-wide MTP 2.357 below the window's 2.47 tokens per chunk.
    assert_eq!(c(2.47).t_fwd_s(2.357), Some(0.00725));
    // Two steps per chunk.
    assert_eq!(c(4.9).t_fwd_s(2.5), Some(0.00725 / 2.0));
    // Every 5 tokens under MTP 2.17: 2.3 steps a chunk, kept.
    let t = c(5.0).t_fwd_s(5.0 / 2.3).unwrap();
    assert!((t - 0.00725 / 2.3).abs() < 1e-12, "{t}");
    // Fewer tokens than MTP: at least one step.
    assert_eq!(c(1.0).t_fwd_s(2.5), Some(0.00725));
}

#[test]
fn the_window_hint_places_as_the_binary_search_does() {
    let w = |start_t_s, end_t_s| Window {
        start_t_s,
        end_t_s,
        wave: None,
    };
    // Touching windows: an instant on the boundary is the later window's.
    let windows = BTreeMap::from([(3u32, vec![w(1.0, 2.0), w(2.0, 3.0), w(4.0, 5.0)])]);
    let mut placer = Placer::new(&windows);
    for t in [1.5, 2.0, 2.5, 3.5, 4.0, 1.0, 5.0, 5.5, 2.0] {
        let got = placer.place(3, t).map(|p| p.window);
        let want = window::index_of(&windows[&3], t).map(|i| i as u32);
        assert_eq!(got, want, "t {t}");
    }
    assert!(placer.place(4, 1.5).is_none());
}
