//! Distribution charts (ITL per step): sample sets binned on shared edges and drawn as
//! share-per-bin outlines, so sets of different sizes compare.

use super::{ChartSpec, LegendPosition, Series, SeriesStyle, bounds};

/// A distribution chart: each named sample set becomes a step outline of the share of its
/// values per bin (so sets of different sizes compare), over `bins` bins shared by all sets,
/// spaced evenly or, with `log_x`, geometrically. For ITL distributions per step. Non-finite
/// values (and non-positive ones with `log_x`) are dropped; the y label is `share (%)`, which
/// the caller may replace.
pub fn histogram_spec(
    title: &str,
    x_label: &str,
    samples: &[(String, Vec<f64>)],
    bins: usize,
    log_x: bool,
) -> ChartSpec {
    let keep = |v: &f64| v.is_finite() && (!log_x || *v > 0.0);
    let all = samples
        .iter()
        .flat_map(|(_, vs)| vs.iter().copied().filter(keep));
    let edges = bounds(all).map(|(lo, hi)| bin_edges(lo, hi, bins.max(1), log_x));
    let series = samples
        .iter()
        .map(|(name, values)| {
            let points = match &edges {
                Some(edges) => staircase(edges, values.iter().copied().filter(keep)),
                None => Vec::new(),
            };
            Series {
                name: name.clone(),
                points,
                style: SeriesStyle::Line,
            }
        })
        .collect();
    ChartSpec {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: "share (%)".to_string(),
        series,
        log_x,
        y_from_zero: true,
        legend: LegendPosition::UpperRight,
        ..ChartSpec::default()
    }
}

fn bin_edges(lo: f64, hi: f64, bins: usize, log_x: bool) -> Vec<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else if log_x {
        (lo / 1.5, hi * 1.5)
    } else {
        (lo - 0.5 * lo.abs().max(1e-9), hi + 0.5 * hi.abs().max(1e-9))
    };
    (0..=bins)
        .map(|i| {
            let f = i as f64 / bins as f64;
            if log_x {
                lo * (hi / lo).powf(f)
            } else {
                lo + (hi - lo) * f
            }
        })
        .collect()
}

/// The outline of a histogram: from the baseline up each bin's share and back down at the end.
fn staircase(edges: &[f64], values: impl Iterator<Item = f64>) -> Vec<(f64, f64)> {
    let bins = edges.len() - 1;
    let mut counts = vec![0usize; bins];
    let mut n = 0usize;
    for v in values {
        // The last edge belongs to the last bin.
        let i = edges[1..].iter().position(|e| v < *e).unwrap_or(bins - 1);
        counts[i] += 1;
        n += 1;
    }
    if n == 0 {
        return Vec::new();
    }
    let mut points = vec![(edges[0], 0.0)];
    for (i, count) in counts.iter().enumerate() {
        let share = 100.0 * *count as f64 / n as f64;
        points.push((edges[i], share));
        points.push((edges[i + 1], share));
    }
    points.push((edges[bins], 0.0));
    points
}
