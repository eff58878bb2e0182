//! The fit's tests: exact recoveries, intervals, the context term's cases.

use super::*;

fn pts(f: impl Fn(f64) -> f64, bss: &[f64]) -> Vec<FitPoint> {
    bss.iter()
        .enumerate()
        .map(|(i, &bs)| FitPoint {
            step_idx: i as u32,
            bs,
            context_tokens: 1000.0,
            t_fwd_s: f(bs),
        })
        .collect()
}

#[test]
fn the_fit_recovers_a_and_b_from_exact_points() {
    let p = pts(
        |bs| 0.008 + 0.0001 * bs,
        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
    );
    let f = fit_step_time(&p).unwrap();
    assert!((f.a_s - 0.008).abs() < 1e-12);
    assert!((f.b_s_per_seq - 0.0001).abs() < 1e-12);
    assert_eq!(f.c_s_per_seq_token, None, "one length: no context term");
    assert!(f.residual_std_s.unwrap() < 1e-12);
    assert!((f.r_squared.unwrap() - 1.0).abs() < 1e-9);
    assert!((f.predict(128.0, 0.0) - 0.0208).abs() < 1e-12);
}

#[test]
fn noise_gives_a_confidence_interval_that_covers_the_truth() {
    // Deterministic ±1 % alternating noise.
    let bss = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
    let mut p = pts(|bs| 0.008 + 0.0001 * bs, &bss);
    for (i, q) in p.iter_mut().enumerate() {
        q.t_fwd_s *= if i % 2 == 0 { 1.01 } else { 0.99 };
    }
    let f = fit_step_time(&p).unwrap();
    let [lo, hi] = f.a_ci95_s.unwrap();
    assert!(lo < 0.008 && 0.008 < hi, "{lo} {hi}");
    let [lo, hi] = f.b_ci95_s_per_seq.unwrap();
    assert!(lo < 0.0001 && 0.0001 < hi, "{lo} {hi}");
    assert!(hi - lo < 0.0001, "the interval is informative");
    let [plo, phi] = f.predict_ci95(64.0, 0.0).unwrap();
    assert!(plo < f.predict(64.0, 0.0) && f.predict(64.0, 0.0) < phi);
    assert_eq!(f.dof, 6);
}

#[test]
fn a_context_term_joins_when_lengths_vary() {
    let mut p = Vec::new();
    for (i, (bs, ctx)) in [
        (1.0, 500.0),
        (8.0, 500.0),
        (32.0, 500.0),
        (8.0, 2000.0),
        (32.0, 2000.0),
    ]
    .into_iter()
    .enumerate()
    {
        p.push(FitPoint {
            step_idx: i as u32,
            bs,
            context_tokens: ctx,
            t_fwd_s: 0.008 + 0.0001 * bs + 2e-8 * bs * ctx,
        });
    }
    let f = fit_step_time(&p).unwrap();
    assert_eq!(f.context_term, ContextTerm::Fitted);
    assert!((f.c_s_per_seq_token.unwrap() - 2e-8).abs() < 1e-14);
    assert!((f.a_s - 0.008).abs() < 1e-10);
    assert!((f.b_s_per_seq - 0.0001).abs() < 1e-12);
    assert_eq!(f.dof, 2);
    assert!((f.predict(16.0, 1000.0) - (0.008 + 0.0016 + 3.2e-4)).abs() < 1e-12);
}

/// `a + b·bs + c·bs·ctx` at three contexts × three batch sizes, with `noise` seconds added
/// and taken away in turn.
fn grid(noise: f64) -> Vec<FitPoint> {
    let mut p = Vec::new();
    for ctx in [192.0, 1536.0, 8704.0] {
        for bs in [1.0, 8.0, 64.0] {
            let sign = if p.len() % 2 == 0 { 1.0 } else { -1.0 };
            p.push(FitPoint {
                step_idx: p.len() as u32,
                bs,
                context_tokens: ctx,
                t_fwd_s: 0.0065 + 3e-5 * bs + 6e-8 * bs * ctx + sign * noise,
            });
        }
    }
    p
}

#[test]
fn the_context_term_has_an_interval_that_covers_the_truth() {
    let f = fit_step_time(&grid(0.000_3)).unwrap();
    assert_eq!(
        (f.context_term, f.points, f.dof),
        (ContextTerm::Fitted, 9, 6)
    );
    let c = f.c_s_per_seq_token.unwrap();
    assert!((c / 6e-8 - 1.0).abs() < 0.03, "c = {c}");
    let [lo, hi] = f.c_ci95_s_per_seq_token.unwrap();
    assert!(lo < 6e-8 && 6e-8 < hi, "{lo} {hi}");
    let se = f.c_se_s_per_seq_token.unwrap();
    assert!(se > 0.0 && (hi - lo - 2.0 * 2.447 * se).abs() < 1e-18);
    // The prediction interval at the largest point holds the true step time.
    let [plo, phi] = f.predict_ci95(64.0, 8704.0).unwrap();
    let truth = 0.0065 + 3e-5 * 64.0 + 6e-8 * 64.0 * 8704.0;
    assert!(plo < truth && truth < phi, "{plo} {truth} {phi}");
    // Exact points: exact coefficients, whatever the scale of bs × ctx.
    let f = fit_step_time(&grid(0.0)).unwrap();
    assert!((f.c_s_per_seq_token.unwrap() / 6e-8 - 1.0).abs() < 1e-9);
    assert!((f.b_s_per_seq / 3e-5 - 1.0).abs() < 1e-9);
}

#[test]
fn one_context_leaves_c_out_and_says_so() {
    let p = pts(|bs| 0.008 + 0.0001 * bs, &[1.0, 8.0, 64.0, 128.0]);
    let f = fit_step_time(&p).unwrap();
    assert_eq!(f.context_term, ContextTerm::OneContext);
    assert_eq!(
        (
            f.c_s_per_seq_token,
            f.c_se_s_per_seq_token,
            f.c_ci95_s_per_seq_token
        ),
        (None, None, None)
    );
    assert_eq!(f.dof, 2);
}

#[test]
fn c_is_left_out_when_the_points_cannot_carry_it() {
    let three: Vec<FitPoint> = grid(0.0).into_iter().step_by(4).take(3).collect();
    let f = fit_step_time(&three).unwrap();
    assert_eq!(
        (f.context_term, f.c_s_per_seq_token),
        (ContextTerm::TooFewPoints, None)
    );
    // Two contexts, but each at one batch size shared by nobody else's context: bs × ctx is
    // then a combination of 1 and bs.
    let mut p = pts(|bs| 0.008 + 0.0001 * bs, &[1.0, 1.0, 4.0, 4.0]);
    p[1].context_tokens = 1000.0;
    p[2].context_tokens = 2000.0;
    p[3].context_tokens = 2000.0;
    p[0].context_tokens = 1000.0;
    let f = fit_step_time(&p).unwrap();
    assert_eq!(f.context_term, ContextTerm::NotIdentifiable);
    assert!(
        (f.b_s_per_seq - 0.0001).abs() < 1e-12,
        "the linear fit stands"
    );
}

#[test]
fn one_batch_size_is_not_enough_to_fit() {
    assert_eq!(fit_step_time(&pts(|_| 0.01, &[8.0, 8.0])), None);
    let two = fit_step_time(&pts(|bs| 0.01 + bs, &[1.0, 2.0])).unwrap();
    assert_eq!(
        (two.dof, two.a_ci95_s),
        (0, None),
        "exact fit has no interval"
    );
}
