//! Our convention recomputed from an imported file's requests, with polars: TTFT, E2E and
//! `TPOT = (E2E − TTFT) / (n − 1)` per successful request with `n > 1`, request-weighted; ITL
//! pooled over every chunk gap. Percentiles are linear (numpy's default, which vLLM, SGLang and
//! AIPerf use), the standard deviation is the population one (`np.std`).

use polars::prelude::*;

use super::{PeerRequest, Stats};

/// What the requests give.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestAggregates {
    pub ttft: Stats,
    pub tpot: Stats,
    pub itl: Stats,
    pub e2e: Stats,
    pub input_len_mean: Option<f64>,
    pub output_len_mean: Option<f64>,
    /// Successful requests.
    pub completed: u64,
}

const FIGURES: [&str; 6] = ["mean", "p50", "p90", "p95", "p99", "std"];

/// Mean, p50, p90, p95, p99 and population std of the finite values of `name`, as columns
/// `{name}_{figure}`.
fn stats_aggs(name: &str) -> Vec<Expr> {
    let v = col(name).filter(col(name).is_not_null().and(col(name).is_finite()));
    let q = |p: f64| v.clone().quantile(lit(p), QuantileMethod::Linear);
    vec![
        v.clone().mean().alias(format!("{name}_mean")),
        q(0.5).alias(format!("{name}_p50")),
        q(0.9).alias(format!("{name}_p90")),
        q(0.95).alias(format!("{name}_p95")),
        q(0.99).alias(format!("{name}_p99")),
        v.std(0).alias(format!("{name}_std")),
    ]
}

fn scalar(df: &DataFrame, name: &str) -> PolarsResult<Option<f64>> {
    let s = df.column(name)?.cast(&DataType::Float64)?;
    Ok(s.f64()?.get(0).filter(|x| x.is_finite()))
}

fn read_stats(df: &DataFrame, name: &str) -> PolarsResult<Stats> {
    let [mean, p50, p90, p95, p99, std] = FIGURES.map(|f| format!("{name}_{f}"));
    Ok(Stats {
        mean_s: scalar(df, &mean)?,
        p50_s: scalar(df, &p50)?,
        p90_s: scalar(df, &p90)?,
        p95_s: scalar(df, &p95)?,
        p99_s: scalar(df, &p99)?,
        std_s: scalar(df, &std)?,
    })
}

/// The requests as a frame: `ok`, `ttft_s`, `e2e_s`, `input_tokens`, `output_tokens`,
/// `start_s` (nulls where the file has no value).
pub fn requests_frame(reqs: &[PeerRequest]) -> PolarsResult<DataFrame> {
    let f = |g: fn(&PeerRequest) -> Option<f64>| reqs.iter().map(g).collect::<Vec<_>>();
    df!(
        "ok" => reqs.iter().map(|r| r.ok).collect::<Vec<_>>(),
        "start_s" => f(|r| r.start_s),
        "ttft_s" => f(|r| r.ttft_s),
        "e2e_s" => f(|r| r.e2e_s),
        "input_tokens" => f(|r| r.input_tokens),
        "output_tokens" => f(|r| r.output_tokens),
    )
}

/// `(E2E − TTFT) / (n − 1)` for a request with more than one output token, else null.
pub fn tpot_expr() -> Expr {
    when(col("output_tokens").gt(lit(1.0)))
        .then((col("e2e_s") - col("ttft_s")) / (col("output_tokens") - lit(1.0)))
        .otherwise(lit(NULL).cast(DataType::Float64))
        .alias("tpot_s")
}

/// The aggregates of the successful requests; `None` when there are none.
pub fn from_requests(reqs: &[PeerRequest]) -> PolarsResult<Option<RequestAggregates>> {
    let ok = requests_frame(reqs)?
        .lazy()
        .filter(col("ok"))
        .with_column(tpot_expr());
    let mut aggs = vec![len().cast(DataType::Float64).alias("n")];
    for name in ["ttft_s", "e2e_s", "tpot_s"] {
        aggs.extend(stats_aggs(name));
    }
    aggs.push(col("input_tokens").mean().alias("input_mean"));
    aggs.push(col("output_tokens").mean().alias("output_mean"));
    let df = ok.select(aggs).collect()?;
    let completed = scalar(&df, "n")?.unwrap_or(0.0) as u64;
    if completed == 0 {
        return Ok(None);
    }
    let gaps: Vec<f64> = reqs
        .iter()
        .filter(|r| r.ok)
        .flat_map(|r| r.itl_s.iter().copied())
        .collect();
    let itl = if gaps.is_empty() {
        Stats::default()
    } else {
        let g = df!("itl_s" => gaps)?
            .lazy()
            .select(stats_aggs("itl_s"))
            .collect()?;
        read_stats(&g, "itl_s")?
    };
    Ok(Some(RequestAggregates {
        ttft: read_stats(&df, "ttft_s")?,
        tpot: read_stats(&df, "tpot_s")?,
        itl,
        e2e: read_stats(&df, "e2e_s")?,
        input_len_mean: scalar(&df, "input_mean")?,
        output_len_mean: scalar(&df, "output_mean")?,
        completed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ttft: f64, e2e: f64, n: f64, gaps: &[f64]) -> PeerRequest {
        PeerRequest {
            ttft_s: Some(ttft),
            e2e_s: Some(e2e),
            output_tokens: Some(n),
            ok: true,
            itl_s: gaps.to_vec(),
            ..PeerRequest::default()
        }
    }

    #[test]
    fn tpot_is_request_weighted_and_itl_chunk_weighted() {
        // One request of 3 tokens at 10 ms gaps, one of 2 tokens with a 40 ms gap.
        let reqs = [
            req(0.05, 0.07, 3.0, &[0.01, 0.01]),
            req(0.05, 0.09, 2.0, &[0.04]),
            PeerRequest::default(),
        ];
        let a = from_requests(&reqs)
            .expect("polars")
            .expect("two successes");
        assert_eq!(a.completed, 2);
        let tpot = a.tpot.mean_s.expect("tpot");
        assert!((tpot - 0.025).abs() < 1e-12, "{tpot}");
        let itl = a.itl.mean_s.expect("itl");
        assert!((itl - 0.02).abs() < 1e-12, "{itl}");
        // Population std of [0.01, 0.04] is 0.015.
        assert!((a.tpot.std_s.expect("std") - 0.015).abs() < 1e-12);
    }

    #[test]
    fn no_success_gives_none() {
        assert_eq!(
            from_requests(&[PeerRequest::default()]).expect("polars"),
            None
        );
    }
}
