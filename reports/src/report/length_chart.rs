//! The ceiling over lengths as a chart: each length pair's ceiling against the sequence's whole
//! length (`input_len + output_len`), one line per output length, over shaded bands that name the
//! length buckets ([`crate::ceiling::length_bucket`]) the points fall in. Also the split of a
//! per-step line into one line per length pair (`lines`), so the batch-size charts of a run
//! over several lengths do not join steps of different lengths. Only selection and layout happen
//! here; every figure is the analysis'.

use std::collections::BTreeMap;

use super::charts::ReportChart;
use super::length_table;
use crate::analysis::Analysis;
use crate::ceiling::{length_bucket, length_bucket_edges};
use crate::render::{Band, ChartSpec, Series, SeriesStyle};

/// The run's distinct length pairs in step order, when there are several; empty for one.
pub(super) fn several_pairs(a: &Analysis) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for t in &a.timings {
        if !pairs.contains(&(t.input_len, t.output_len)) {
            pairs.push((t.input_len, t.output_len));
        }
    }
    if pairs.len() < 2 {
        pairs.clear();
    }
    pairs
}

/// A per-step quantity against the batch size: one series named `name` for a run of one length
/// pair, else one per pair, named `name in/out`. `y(i)` reads step `i` of the timings.
pub(super) fn lines(
    a: &Analysis,
    name: &str,
    style: SeriesStyle,
    y: impl Fn(usize) -> Option<f64>,
) -> Vec<Series> {
    let line = |name: String, keep: &dyn Fn(usize) -> bool| {
        let mut points: Vec<(f64, f64)> = (0..a.timings.len())
            .filter(|&i| keep(i))
            .filter_map(|i| y(i).map(|v| (f64::from(a.timings[i].batch_size), v)))
            .collect();
        points.sort_by(|p, q| p.0.total_cmp(&q.0));
        Series {
            name,
            points,
            style,
        }
    };
    let pairs = several_pairs(a);
    if pairs.is_empty() {
        return vec![line(name.to_string(), &|_| true)];
    }
    pairs
        .into_iter()
        .map(|(i, o)| {
            let t = &a.timings;
            line(format!("{name} {i}/{o}"), &|k| {
                (t[k].input_len, t[k].output_len) == (i, o)
            })
        })
        .collect()
}

/// The bucket bands clipped to `[lo, hi]`, one per bucket the span touches.
fn bucket_bands(lo: u32, hi: u32) -> Vec<Band> {
    let mut bands = Vec::new();
    let mut from = u64::from(lo);
    while from <= u64::from(hi) {
        let tokens = u32::try_from(from).unwrap_or(u32::MAX);
        let (_, edge) = length_bucket_edges(tokens);
        bands.push(Band {
            label: length_bucket(tokens),
            x_from: from as f64,
            x_to: (edge - 1).min(u64::from(hi)) as f64,
        });
        from = edge;
    }
    bands
}

/// The chart, or `None` when the run measured one length pair.
pub fn ceiling_vs_length(a: &Analysis) -> Option<ReportChart> {
    let rows = length_table::rows(a);
    let lo = rows.iter().map(|c| c.seq_len_tokens).min()?;
    let hi = rows.iter().map(|c| c.seq_len_tokens).max()?;
    let mut by_output: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for c in &rows {
        by_output
            .entry(c.output_len)
            .or_default()
            .push((f64::from(c.seq_len_tokens), c.throughput_tok_s));
    }
    let series = by_output
        .into_iter()
        .map(|(out, points)| Series {
            name: format!("output {out} tok"),
            points,
            style: SeriesStyle::LineAndPoints,
        })
        .collect();
    Some(ReportChart {
        name: "ceiling_vs_length".into(),
        caption: "The ceiling per length pair (output throughput at the largest feasible batch \
                  size) against the sequence's length, input + output, one line per output \
                  length; the shaded bands are the length buckets."
            .into(),
        spec: ChartSpec {
            title: "Ceiling vs sequence length".into(),
            x_label: "sequence length, input + output (tokens)".into(),
            y_label: "ceiling (output tok/s)".into(),
            series,
            shaded: bucket_bands(lo, hi),
            log_x: true,
            y_from_zero: true,
            legend: crate::render::LegendPosition::UpperRight,
            ..ChartSpec::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_the_span_one_per_bucket() {
        let b = bucket_bands(160, 9216);
        let got: Vec<(&str, f64, f64)> = b
            .iter()
            .map(|b| (b.label.as_str(), b.x_from, b.x_to))
            .collect();
        assert_eq!(got, [("0-4k", 160.0, 4095.0), ("4k-16k", 4096.0, 9216.0)]);
        let one = bucket_bands(300, 300);
        assert_eq!(one.len(), 1);
        assert_eq!((one[0].x_from, one[0].x_to), (300.0, 300.0));
        let wide = bucket_bands(1000, 70_000);
        let labels: Vec<&str> = wide.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["0-4k", "4k-16k", "16k-32k", "32k-64k", "64k-128k"]);
        assert_eq!(wide[4].x_from, 65_536.0);
    }
}
