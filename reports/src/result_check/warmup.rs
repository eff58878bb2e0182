//! The warm-up check: the first wave of requests' TTFT against the rest's, from the per-request
//! data (polars: sort by send time, head against tail).

use polars::prelude::*;
use serde_json::json;

use super::{Check, Verdict, check, missing};
use crate::peer::PeerPoint;
use crate::peer::stats::requests_frame;

/// The first `C` requests' mean TTFT and the median TTFT of the others.
fn first_and_rest(p: &PeerPoint, first: usize) -> PolarsResult<(Option<f64>, Option<f64>)> {
    let sorted = requests_frame(&p.requests)?
        .lazy()
        .filter(
            col("ok")
                .and(col("start_s").is_not_null())
                .and(col("ttft_s").is_not_null()),
        )
        .sort(["start_s"], Default::default())
        .collect()?;
    let head = sorted
        .head(Some(first))
        .lazy()
        .select([col("ttft_s").mean()])
        .collect()?;
    let tail = sorted
        .slice(first as i64, sorted.height().saturating_sub(first))
        .lazy()
        .select([col("ttft_s").median()])
        .collect()?;
    let get =
        |df: &DataFrame| -> PolarsResult<Option<f64>> { Ok(df.column("ttft_s")?.f64()?.get(0)) };
    Ok((get(&head)?, get(&tail)?))
}

/// No warm-up: the first requests' TTFT far above the rest (cold caches, CUDA graphs being
/// captured, a connection pool filling).
pub fn warmup(p: &PeerPoint) -> Check {
    const C: &str = "warmup";
    if let Some(w) = p.warmup_requests.filter(|w| *w > 0) {
        return check(
            C,
            "workload",
            Verdict::Pass,
            format!("{w} warm-up requests were left out of the measurement"),
            json!({"warmup_requests": w}),
        );
    }
    let with_start = p
        .requests
        .iter()
        .filter(|r| r.ok && r.start_s.is_some())
        .count();
    let first = p.concurrency.map_or(8, |c| c.max(1.0) as usize);
    if with_start < 2 * first {
        return missing(
            C,
            "workload",
            &[("per-request send times (at least two waves)", false)],
        );
    }
    let (head, rest) = match first_and_rest(p, first) {
        Ok((Some(h), Some(r))) => (h, r),
        _ => return missing(C, "workload", &[("per-request TTFT", false)]),
    };
    let ratio = head / rest;
    let numbers = json!({"first_requests": first, "first_ttft_mean_s": head, "rest_ttft_median_s": rest, "ratio": ratio});
    if ratio > 2.0 {
        check(
            C,
            "workload",
            Verdict::Warn,
            format!(
                "the first {first} requests' TTFT averages {:.1} ms against a median of {:.1} ms for the rest ({ratio:.1}×): no warm-up, so cold-start costs (CUDA graphs, caches, connections) are in the means; run a warm-up and leave it out",
                head * 1e3,
                rest * 1e3
            ),
            numbers,
        )
    } else {
        check(
            C,
            "workload",
            Verdict::Pass,
            format!(
                "the first {first} requests' TTFT ({:.1} ms) is close to the rest's median ({:.1} ms)",
                head * 1e3,
                rest * 1e3
            ),
            numbers,
        )
    }
}
