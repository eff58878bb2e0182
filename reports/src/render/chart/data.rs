//! What of a [`ChartSpec`] can be drawn, and the axis ranges around it: points that cannot be
//! drawn (NaN, infinite, non-positive x on a log axis) are dropped here, so drawing never sees
//! them. Nothing here draws.

use std::ops::Range;

use super::{Band, ChartSpec, Marker, RefLine, Series};

/// The spec's data with every point that cannot be drawn removed.
pub(super) struct ChartData {
    pub(super) series: Vec<(Series, Vec<(f64, f64)>)>,
    pub(super) hlines: Vec<RefLine>,
    pub(super) markers: Vec<Marker>,
    pub(super) bands: Vec<Band>,
}

impl ChartData {
    pub(super) fn of(spec: &ChartSpec) -> Self {
        let x_ok = |x: f64| x.is_finite() && (!spec.log_x || x > 0.0);
        let series = spec
            .series
            .iter()
            .map(|s| {
                let points = s
                    .points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| x_ok(x) && y.is_finite())
                    .collect();
                (s.clone(), points)
            })
            .collect();
        ChartData {
            series,
            hlines: spec
                .hlines
                .iter()
                .filter(|h| h.y.is_finite())
                .cloned()
                .collect(),
            markers: spec
                .markers
                .iter()
                .filter(|m| x_ok(m.x) && m.y.is_finite())
                .cloned()
                .collect(),
            bands: spec
                .shaded
                .iter()
                .filter(|b| x_ok(b.x_from) && x_ok(b.x_to) && b.x_to >= b.x_from)
                .cloned()
                .collect(),
        }
    }

    /// The x and y extents of what will be drawn, or `None` when there is nothing to draw.
    pub(super) fn extents(&self) -> Option<((f64, f64), (f64, f64))> {
        let data = self.series.iter().flat_map(|(_, p)| p.iter().copied());
        let marks = self.markers.iter().map(|m| (m.x, m.y));
        let points: Vec<(f64, f64)> = data.chain(marks).collect();
        let band_xs = self.bands.iter().flat_map(|b| [b.x_from, b.x_to]);
        let x = bounds(points.iter().map(|p| p.0).chain(band_xs))?;
        let y = bounds(
            points
                .iter()
                .map(|p| p.1)
                .chain(self.hlines.iter().map(|h| h.y)),
        )?;
        Some((x, y))
    }
}

pub(super) fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

pub(super) fn x_range(lo: f64, hi: f64, log: bool) -> Range<f64> {
    if log {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo / 2.0, hi * 2.0)
        };
        let pad = (hi / lo).powf(0.04);
        lo / pad..hi * pad
    } else {
        if hi <= lo {
            let half = (0.1 * lo.abs()).max(1e-9);
            return lo - half..hi + half;
        }
        let span = hi - lo;
        lo - 0.04 * span..hi + 0.04 * span
    }
}

pub(super) fn y_range(lo: f64, hi: f64, from_zero: bool) -> Range<f64> {
    let (lo, hi) = if from_zero {
        (lo.min(0.0), hi.max(0.0))
    } else {
        (lo, hi)
    };
    // One value (or a flat line): a tenth of it either side, so it sits mid-plot.
    let span = if hi > lo {
        hi - lo
    } else {
        (0.1 * lo.abs()).max(1e-9)
    };
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - span, hi + span)
    };
    // Headroom at the top keeps the legend off the highest points.
    let bottom = if from_zero && lo >= 0.0 {
        0.0
    } else {
        lo - 0.05 * span
    };
    bottom..hi + 0.18 * span
}
