//! The plain description of a chart ([`ChartSpec`]): finished numbers with their labels and
//! units, and which marks, bands and reference lines go over them. Nothing here draws or
//! decides how anything looks.

/// How a series is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeriesStyle {
    /// A solid line through the points, in the order given.
    #[default]
    Line,
    /// Dots only (measurements without an implied trend).
    Points,
    /// A solid line with a dot on every point.
    LineAndPoints,
    /// A dashed line (fits and model predictions, e.g. the fitted step time or the roofline).
    Dashed,
}

/// One named series of `(x, y)` points, shown in the legend under `name`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: SeriesStyle,
}

/// A horizontal reference line across the plot, e.g. the SLA, listed in the legend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefLine {
    pub label: String,
    pub y: f64,
}

/// A labelled point drawn over the data, e.g. the ceiling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marker {
    pub label: String,
    pub x: f64,
    pub y: f64,
}

/// A shaded x range with a label at its top, e.g. one probe step on a time axis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Band {
    pub label: String,
    pub x_from: f64,
    pub x_to: f64,
}

/// Which corner of the plot holds the legend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LegendPosition {
    #[default]
    UpperLeft,
    UpperRight,
    LowerLeft,
    LowerRight,
}

/// Everything one chart shows. Labels carry their units, e.g. `"batch size (sequences)"`,
/// `"throughput (output tok/s)"`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Horizontal reference lines (the SLA, the roofline limit).
    pub hlines: Vec<RefLine>,
    /// Labelled points (the ceiling).
    pub markers: Vec<Marker>,
    /// Shaded x ranges, drawn under the series (the steps of a run on a time axis).
    pub shaded: Vec<Band>,
    /// Logarithmic x axis (batch sizes 1, 2, 4, … 256); points with x ≤ 0 are then skipped.
    pub log_x: bool,
    /// Start the y axis at zero (throughput, step time) rather than near the smallest value
    /// (clocks, temperatures).
    pub y_from_zero: bool,
    pub legend: LegendPosition,
}
