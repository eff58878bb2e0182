//! The step-time model, fitted by ordinary least squares over the steps' measured step times:
//!
//! `t_fwd(bs) = a + b × bs`, and when the steps vary the sequence length
//! `t_fwd(bs, ctx) = a + b × bs + c × bs × ctx`. `bs` is per DP rank. `a` is the fixed cost of a
//! step (weights read once), `b` the per-sequence cost, `c` the per-context-token cost (the KV
//! bytes a step reads grow with `bs × ctx`).
//!
//! **The context.** `ctx` is the mean context a sequence holds during the step's decode window,
//! `input_len + output_len / 2` ([`decode_context`]). A decoding sequence that has produced `k`
//! tokens attends over `input_len + k`; over its decode steps `k` runs from 1 to
//! `output_len − 1`, so its mean is `input_len + output_len / 2`. The window of a wave (from the
//! last first token to the first finish) keeps that mean even when chunked prefill staggers the
//! first tokens over several steps: at the window's midpoint the sequences are on average
//! `output_len / 2` tokens in, because the stagger shifts both ends of the window equally; a
//! closed loop's sequences are spread uniformly over their lives, with the same mean. The
//! lengths are the requested ones: the probe checks every request's `usage` against them and a
//! mismatch is a finding (`length_mismatch`), so in a run worth fitting the recording's lengths
//! are these.
//!
//! **When `c` is fitted** ([`ContextTerm`]): only when the steps hold at least two distinct
//! contexts, at least four points (one degree of freedom left for its uncertainty) and the three
//! columns are independent. With one length pair `bs × ctx` is `bs` times a constant, so `c`
//! would only trade off against `b`: it is not fitted, the model is `a + b × bs` exactly as
//! before, and the fit says why (`context_term`). Internally the `bs × ctx` column is scaled by
//! the mean context so the normal equations stay well conditioned; the coefficients and their
//! uncertainties are reported in the units above.
//!
//! Standard errors come from `σ² (XᵀX)⁻¹` with `σ² = RSS / (n − k)`; 95 % intervals use
//! Student's t with `n − k` degrees of freedom. With no degrees of freedom left (`n = k`) the fit
//! is exact and has no interval. Pure arithmetic; no I/O.

use serde::Serialize;

/// One measured step time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FitPoint {
    pub step_idx: u32,
    pub bs: f64,
    pub context_tokens: f64,
    pub t_fwd_s: f64,
}

/// A point's residual under the fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FitResidual {
    pub step_idx: u32,
    pub bs: f64,
    pub context_tokens: f64,
    pub measured_s: f64,
    pub fitted_s: f64,
    pub residual_s: f64,
}

/// Whether the context term `c × bs × ctx` is in the model, and why not when it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextTerm {
    /// Fitted: the steps hold two or more contexts.
    Fitted,
    /// Every step has the same decode context (one length pair): nothing to fit `c` from.
    OneContext,
    /// Several contexts but fewer than four points: `c` would leave no degree of freedom.
    TooFewPoints,
    /// Several contexts, but `bs × ctx` is a combination of the other columns (e.g. each
    /// context measured at one batch size that another context shares): `c` cannot be told
    /// apart from `a` and `b`.
    NotIdentifiable,
}

impl ContextTerm {
    /// How the report says it.
    pub fn describe(self) -> &'static str {
        match self {
            ContextTerm::Fitted => "fitted over the steps' lengths",
            ContextTerm::OneContext => "not fitted: one length pair, so bs × context adds nothing",
            ContextTerm::TooFewPoints => "not fitted: fewer than four steps with a step time",
            ContextTerm::NotIdentifiable => {
                "not fitted: the lengths and batch sizes cannot separate it from a and b; \
                 measure two batch sizes at two lengths"
            }
        }
    }
}

/// The fitted step-time model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepTimeFit {
    pub a_s: f64,
    pub b_s_per_seq: f64,
    /// Present when the steps vary the length ([`ContextTerm::Fitted`]).
    pub c_s_per_seq_token: Option<f64>,
    /// Whether `c` was fitted, and why not.
    pub context_term: ContextTerm,
    pub a_se_s: Option<f64>,
    pub b_se_s_per_seq: Option<f64>,
    pub c_se_s_per_seq_token: Option<f64>,
    pub a_ci95_s: Option<[f64; 2]>,
    pub b_ci95_s_per_seq: Option<[f64; 2]>,
    pub c_ci95_s_per_seq_token: Option<[f64; 2]>,
    pub points: usize,
    pub dof: usize,
    /// `sqrt(RSS / (n − k))`.
    pub residual_std_s: Option<f64>,
    pub r_squared: Option<f64>,
    pub residuals: Vec<FitResidual>,
    /// `σ² (XᵀX)⁻¹`, row-major, for prediction intervals.
    #[serde(skip)]
    covariance: Option<Vec<Vec<f64>>>,
    #[serde(skip)]
    t_crit: Option<f64>,
}

impl StepTimeFit {
    fn row(&self, bs: f64, ctx: f64) -> Vec<f64> {
        let mut x = vec![1.0, bs];
        if self.c_s_per_seq_token.is_some() {
            x.push(bs * ctx);
        }
        x
    }

    /// The fitted step time at `bs` sequences per rank of mean context `ctx` tokens.
    pub fn predict(&self, bs: f64, ctx: f64) -> f64 {
        self.a_s + self.b_s_per_seq * bs + self.c_s_per_seq_token.map_or(0.0, |c| c * bs * ctx)
    }

    /// The 95 % confidence interval of the fitted mean step time at (`bs`, `ctx`).
    pub fn predict_ci95(&self, bs: f64, ctx: f64) -> Option<[f64; 2]> {
        let cov = self.covariance.as_ref()?;
        let x = self.row(bs, ctx);
        let mut var = 0.0;
        for (i, xi) in x.iter().enumerate() {
            for (j, xj) in x.iter().enumerate() {
                var += xi * cov[i][j] * xj;
            }
        }
        let half = self.t_crit? * var.max(0.0).sqrt();
        let y = self.predict(bs, ctx);
        Some([y - half, y + half])
    }
}

/// Student's t, two-sided 95 % (0.975 quantile), for `dof` degrees of freedom.
pub fn t_crit_95(dof: usize) -> Option<f64> {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => None,
        d if d <= 30 => Some(T[d - 1]),
        // Beyond the table the quantile approaches 1.96 as 1.96 + 2.4 / dof (within 0.002).
        d => Some(1.96 + 2.4 / d as f64),
    }
}

/// Inverts a small symmetric positive-definite matrix by Gauss–Jordan elimination.
fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        let scale = a.iter().map(|r| r[col].abs()).fold(0.0, f64::max);
        if a[pivot][col].abs() <= 1e-12 * scale.max(1e-300) {
            return None;
        }
        a.swap(col, pivot);
        let p = a[col][col];
        for v in &mut a[col] {
            *v /= p;
        }
        for r in 0..n {
            if r != col {
                let f = a[r][col];
                let pivot_row = a[col].clone();
                for (v, pv) in a[r].iter_mut().zip(&pivot_row) {
                    *v -= f * pv;
                }
            }
        }
    }
    Some(a.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// The least-squares solution of `y ≈ X β`, with what its uncertainty needs.
struct Ols {
    beta: Vec<f64>,
    /// `(XᵀX)⁻¹`.
    inv: Vec<Vec<f64>>,
}

fn ols(rows: &[Vec<f64>], y: &[f64]) -> Option<Ols> {
    let k = rows.first()?.len();
    let mut xtx = vec![vec![0.0; k]; k];
    let mut xty = vec![0.0; k];
    for (x, yi) in rows.iter().zip(y) {
        for i in 0..k {
            xty[i] += x[i] * yi;
            for j in 0..k {
                xtx[i][j] += x[i] * x[j];
            }
        }
    }
    let inv = invert(&xtx)?;
    let beta = (0..k)
        .map(|i| (0..k).map(|j| inv[i][j] * xty[j]).sum())
        .collect();
    Some(Ols { beta, inv })
}

/// The design the points allow: the context column (in units of the mean context, `ctx_unit`)
/// where at least four points at two contexts or more identify it, else `a + b·bs`; its rows,
/// the least-squares solution and `ctx_unit`. `contexts` is the number of distinct contexts.
fn design(
    pts: &[&FitPoint],
    y: &[f64],
    contexts: usize,
) -> Option<(ContextTerm, Vec<Vec<f64>>, Ols, f64)> {
    let linear: Vec<Vec<f64>> = pts.iter().map(|p| vec![1.0, p.bs]).collect();
    let n = pts.len();
    // The bs × ctx column in units of the mean context, so its entries are of the order of bs.
    let ctx_unit = pts.iter().map(|p| p.context_tokens).sum::<f64>() / n as f64;
    let with_ctx =
        |x: &Vec<f64>, p: &&FitPoint| vec![x[0], x[1], p.bs * p.context_tokens / ctx_unit];
    let (term, rows, sol) = if contexts < 2 {
        (ContextTerm::OneContext, linear, None)
    } else if n < 4 {
        (ContextTerm::TooFewPoints, linear, None)
    } else {
        let rows: Vec<Vec<f64>> = linear
            .iter()
            .zip(pts)
            .map(|(x, p)| with_ctx(x, p))
            .collect();
        match ols(&rows, y) {
            Some(sol) => (ContextTerm::Fitted, rows, Some(sol)),
            None => (ContextTerm::NotIdentifiable, linear, None),
        }
    };
    let sol = match sol {
        Some(s) => s,
        None => ols(&rows, y)?,
    };
    Some((term, rows, sol, ctx_unit))
}

/// Fits the model to the points; the context term joins when the points allow it (see
/// [`ContextTerm`]). `None` with fewer than two distinct batch sizes.
pub fn fit_step_time(points: &[FitPoint]) -> Option<StepTimeFit> {
    let pts: Vec<&FitPoint> = points
        .iter()
        .filter(|p| p.t_fwd_s.is_finite() && p.bs > 0.0)
        .collect();
    let distinct = |f: fn(&FitPoint) -> f64| {
        let mut v: Vec<f64> = pts.iter().map(|p| f(p)).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v.len()
    };
    if distinct(|p| p.bs) < 2 {
        return None;
    }
    let y: Vec<f64> = pts.iter().map(|p| p.t_fwd_s).collect();
    let n = pts.len();
    let (term, rows, sol, ctx_unit) = design(&pts, &y, distinct(|p| p.context_tokens))?;
    // Back to per-token units: β_c and the c row and column of (XᵀX)⁻¹ carry 1 / ctx_unit.
    let k = sol.beta.len();
    let unit = |i: usize| if i == 2 { ctx_unit } else { 1.0 };
    let beta: Vec<f64> = (0..k).map(|i| sol.beta[i] / unit(i)).collect();
    let inv: Vec<Vec<f64>> = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| sol.inv[i][j] / (unit(i) * unit(j)))
                .collect()
        })
        .collect();
    let dof = n.saturating_sub(k);
    let residuals: Vec<FitResidual> = pts
        .iter()
        .zip(&rows)
        .map(|(p, x)| {
            let fitted: f64 = x.iter().zip(&sol.beta).map(|(a, b)| a * b).sum();
            FitResidual {
                step_idx: p.step_idx,
                bs: p.bs,
                context_tokens: p.context_tokens,
                measured_s: p.t_fwd_s,
                fitted_s: fitted,
                residual_s: p.t_fwd_s - fitted,
            }
        })
        .collect();
    let rss: f64 = residuals.iter().map(|r| r.residual_s.powi(2)).sum();
    let y_mean = y.iter().sum::<f64>() / n as f64;
    let tss: f64 = y.iter().map(|v| (v - y_mean).powi(2)).sum();
    let sigma2 = (dof > 0).then(|| rss / dof as f64);
    let covariance = sigma2.map(|s2| {
        inv.iter()
            .map(|r| r.iter().map(|v| v * s2).collect())
            .collect()
    });
    let t_crit = t_crit_95(dof);
    let se = |i: usize| -> Option<f64> {
        covariance
            .as_ref()
            .filter(|_| i < k)
            .map(|c: &Vec<Vec<f64>>| c[i][i].max(0.0).sqrt())
    };
    let ci = |i: usize| -> Option<[f64; 2]> {
        let h = t_crit? * se(i)?;
        Some([beta[i] - h, beta[i] + h])
    };
    Some(StepTimeFit {
        a_s: beta[0],
        b_s_per_seq: beta[1],
        c_s_per_seq_token: beta.get(2).copied(),
        context_term: term,
        a_se_s: se(0),
        b_se_s_per_seq: se(1),
        c_se_s_per_seq_token: se(2),
        a_ci95_s: ci(0),
        b_ci95_s_per_seq: ci(1),
        c_ci95_s_per_seq_token: ci(2),
        points: n,
        dof,
        residual_std_s: sigma2.map(f64::sqrt),
        r_squared: (tss > 0.0).then(|| 1.0 - rss / tss),
        residuals,
        covariance,
        t_crit,
    })
}

/// Mean context a sequence holds while decoding: `input_len + output_len / 2`.
pub fn decode_context(input_len: u32, output_len: u32) -> f64 {
    f64::from(input_len) + f64::from(output_len) / 2.0
}

#[cfg(test)]
mod tests;
