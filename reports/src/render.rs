//! Rendering: charts (SVG and PNG, through plotters with an embedded font), the self-contained
//! HTML report and the Markdown report.
//!
//! This module owns presentation only. It takes plain, already-computed figures — a
//! [`chart::ChartSpec`] per chart, a [`ReportDoc`] per report — and turns them into bytes. It
//! must not compute metrics (that is the analysis' job), read files, or touch the network: the
//! caller maps the analysis into these types and decides where the bytes go.

pub mod chart;
mod font;
pub mod html;
pub mod markdown;
#[cfg(test)]
mod sample;

pub use chart::{
    Band, ChartSpec, LegendPosition, Marker, RefLine, Series, SeriesStyle, histogram_spec,
    render_png, render_svg,
};
pub use html::html_page;
pub use markdown::markdown;

use crate::finding::Severity;

/// What can go wrong while rendering. Bad data (NaN, empty series) is not an error: it is drawn
/// as a gap or as a "no data" chart.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("chart {width}x{height} is too small to draw (need at least {min}x{min} pixels)")]
    TooSmall { width: u32, height: u32, min: u32 },
    #[error("the embedded chart font could not be loaded")]
    Font,
    #[error("drawing chart {title:?} failed: {message}")]
    Draw { title: String, message: String },
    #[error("encoding chart {title:?} as png failed")]
    Png {
        title: String,
        #[source]
        source: png::EncodingError,
    },
}

/// Everything a rendered report shows, already formatted as text. The HTML and Markdown
/// renderers lay it out in this order: verdict, findings, step table, the ceiling by length
/// (when there is one), charts, environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportDoc {
    /// Page title, e.g. `ceiling report — run 12 (vllm, Qwen3-8B, 1× H100)`.
    pub title: String,
    /// Headline figures, label then value with its unit, e.g.
    /// `("Ceiling", "4,210 tok/s at bs 64 (TPOT ≤ 50 ms)")`.
    pub verdict: Vec<(String, String)>,
    /// Trust: the findings, most severe first (the renderers keep the given order).
    pub findings: Vec<DocFinding>,
    /// The per-step table, already formatted (units in the headers).
    pub step_table: Table,
    /// A line under the step table: the GPUs recorded but not counted (`--gpus`, or not
    /// running the engine), each with its means, so a busy neighbour shows without its power
    /// charged to the run's tokens.
    pub steps_note: Option<String>,
    /// The ceiling per length pair (with its length bucket); no rows for a run of one pair,
    /// and then the renderers leave its section out.
    pub length_table: Table,
    /// The open loop's rate steps; no rows for a run without them, and then the renderers
    /// leave its section out.
    pub rate_table: Table,
    /// Each side of a prefill/decode disaggregated deployment per step; no rows for a run
    /// without role endpoints, and then the renderers leave its section out.
    pub pd_table: Table,
    /// Charts, in the order shown.
    pub charts: Vec<DocChart>,
    /// The run's environment: engine, model, GPUs, driver, probe config, tool version.
    pub environment: Vec<(String, String)>,
    /// The headings that differ between the run's report and the nightly one.
    pub labels: DocLabels,
}

/// The headings and the empty-list line of the sections whose content differs between a
/// run's report (the default) and the nightly report.
#[derive(Debug, Clone, PartialEq)]
pub struct DocLabels {
    /// The findings' heading, under the verdict.
    pub trust: String,
    /// Shown when there is no finding.
    pub no_findings: String,
    /// The main table's heading.
    pub steps: String,
}

impl Default for DocLabels {
    fn default() -> Self {
        DocLabels {
            trust: "Trust".into(),
            no_findings: "No findings: every check passed.".into(),
            steps: "Steps".into(),
        }
    }
}

/// One finding as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocFinding {
    pub severity: Severity,
    /// The stable finding code, e.g. `engine_batch_mismatch`.
    pub code: String,
    /// One line that says what happened and what to change.
    pub message: String,
}

/// A table of preformatted cells. Rows shorter than the header are padded with empty cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One chart of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct DocChart {
    /// Shown under the chart (HTML) or as the image's alt text and caption (Markdown).
    pub caption: String,
    /// Where the chart's SVG file lives relative to the report, e.g. `charts/throughput.svg`;
    /// the Markdown report links it, the HTML report inlines [`DocChart::svg`] instead.
    pub file: String,
    /// The chart as an SVG document, from [`render_svg`]. Trusted: inlined as is in HTML.
    pub svg: String,
}
