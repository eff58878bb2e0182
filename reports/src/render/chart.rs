//! Charts: one plain description ([`ChartSpec`]) drawn by plotters to SVG ([`render_svg`]) or
//! PNG ([`render_png`]).
//!
//! The spec holds finished numbers with their labels; this file decides only how they look
//! (colours, line styles, text sizes, ranges, ticks, legend). Bad data never panics: NaN and
//! infinite points (and non-positive x on a log axis) are skipped, and a chart with nothing left
//! to draw says "no data".

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::RenderError;
use super::font::{FAMILY, ensure_registered};

/// Smallest width and height, in pixels, a chart can be drawn at.
pub const MIN_SIDE_PX: u32 = 160;

/// A good default size for report charts, in pixels (width, height).
pub const DEFAULT_SIZE: (u32, u32) = (900, 500);

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

/// Draws `spec` as an SVG document of `width` × `height` pixels. Text is emitted as SVG
/// `<text>` in the "sans-serif" family; its layout is measured with the embedded font.
pub fn render_svg(spec: &ChartSpec, width: u32, height: u32) -> Result<String, RenderError> {
    check_size(width, height)?;
    ensure_registered()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw(&root, spec).map_err(|message| draw_error(spec, message))?;
        root.present()
            .map_err(|e| draw_error(spec, e.to_string()))?;
    }
    Ok(svg)
}

/// Draws `spec` as a PNG image of `width` × `height` pixels (8-bit RGB), encoded in memory.
pub fn render_png(spec: &ChartSpec, width: u32, height: u32) -> Result<Vec<u8>, RenderError> {
    check_size(width, height)?;
    ensure_registered()?;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(&root, spec).map_err(|message| draw_error(spec, message))?;
        root.present()
            .map_err(|e| draw_error(spec, e.to_string()))?;
    }
    let mut out = Vec::new();
    let png_error = |source| RenderError::Png {
        title: spec.title.clone(),
        source,
    };
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&rgb).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

fn check_size(width: u32, height: u32) -> Result<(), RenderError> {
    if width < MIN_SIDE_PX || height < MIN_SIDE_PX {
        return Err(RenderError::TooSmall {
            width,
            height,
            min: MIN_SIDE_PX,
        });
    }
    Ok(())
}

fn draw_error(spec: &ChartSpec, message: String) -> RenderError {
    RenderError::Draw {
        title: spec.title.clone(),
        message,
    }
}

/// Colour-blind-safe palette (Okabe–Ito, without its yellow, which is unreadable on white).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
];
const REF_LINE: RGBColor = RGBColor(200, 30, 30);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);
const GRID_BOLD: RGBColor = RGBColor(214, 214, 214);
const BANDS: [RGBColor; 2] = [RGBColor(225, 232, 245), RGBColor(240, 240, 240)];

const TITLE_PX: u32 = 22;
const AXIS_DESC_PX: u32 = 16;
const TICK_PX: u32 = 13;
const LEGEND_PX: u32 = 14;
const NOTE_PX: u32 = 13;

/// The spec's data with every point that cannot be drawn removed.
struct ChartData {
    series: Vec<(Series, Vec<(f64, f64)>)>,
    hlines: Vec<RefLine>,
    markers: Vec<Marker>,
    bands: Vec<Band>,
}

impl ChartData {
    fn of(spec: &ChartSpec) -> Self {
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
    fn extents(&self) -> Option<((f64, f64), (f64, f64))> {
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

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

fn x_range(lo: f64, hi: f64, log: bool) -> Range<f64> {
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

fn y_range(lo: f64, hi: f64, from_zero: bool) -> Range<f64> {
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

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &ChartSpec) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let data = ChartData::of(spec);
    let Some(((x_lo, x_hi), (y_lo, y_hi))) = data.extents() else {
        return draw_no_data(root, spec);
    };
    let y = y_range(y_lo, y_hi, spec.y_from_zero);
    if spec.log_x {
        let x = x_range(x_lo, x_hi, true);
        // Base 2: batch sizes are powers of two, and plotters' base-10 ticks repeat each decade.
        draw_on(root, spec, &data, x.log_scale().base(2.0), y)
    } else {
        draw_on(root, spec, &data, x_range(x_lo, x_hi, false), y)
    }
}

fn draw_no_data<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let area = root
        .margin(14, 14, 14, 14)
        .titled(&spec.title, (FAMILY, TITLE_PX))
        .map_err(err)?;
    let (w, h) = area.dim_in_pixel();
    let centre = Pos::new(HPos::Center, VPos::Center);
    let big = TextStyle::from((FAMILY, TITLE_PX).into_font())
        .pos(centre)
        .color(&RGBColor(110, 110, 110));
    let small = TextStyle::from((FAMILY, NOTE_PX).into_font())
        .pos(centre)
        .color(&RGBColor(110, 110, 110));
    let (cx, cy) = (w as i32 / 2, h as i32 / 2);
    area.draw(&Text::new("no data", (cx, cy - 12), big))
        .map_err(err)?;
    let axes = format!("{} vs {}", spec.y_label, spec.x_label);
    area.draw(&Text::new(axes, (cx, cy + 16), small))
        .map_err(err)?;
    Ok(())
}

fn draw_on<DB, X>(
    root: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
    data: &ChartData,
    x: X,
    y: Range<f64>,
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(&spec.title, (FAMILY, TITLE_PX))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y.clone())
        .map_err(err)?;

    chart
        .configure_mesh()
        .x_desc(spec.x_label.as_str())
        .y_desc(spec.y_label.as_str())
        .axis_desc_style((FAMILY, AXIS_DESC_PX))
        .label_style((FAMILY, TICK_PX))
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .draw()
        .map_err(err)?;

    let band_label = TextStyle::from((FAMILY, NOTE_PX).into_font()).color(&RGBColor(70, 70, 70));
    for (i, band) in data.bands.iter().enumerate() {
        let fill = BANDS[i % BANDS.len()].filled();
        chart
            .draw_series([Rectangle::new(
                [(band.x_from, y.start), (band.x_to, y.end)],
                fill,
            )])
            .map_err(err)?;
        chart
            .draw_series([EmptyElement::at((band.x_from, y.end))
                + Text::new(band.label.clone(), (3, 3), band_label.clone())])
            .map_err(err)?;
    }

    let mut labelled = 0;
    for (i, (series, points)) in data.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let line = colour.stroke_width(2);
        let name = series.name.clone();
        let anno = match series.style {
            SeriesStyle::Line => chart
                .draw_series(LineSeries::new(points.iter().copied(), line))
                .map_err(err)?
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], line)),
            SeriesStyle::Dashed => chart
                .draw_series(DashedLineSeries::new(points.iter().copied(), 9, 6, line))
                .map_err(err)?
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (8, 0)], line)
                        + PathElement::new(vec![(14, 0), (22, 0)], line)
                }),
            SeriesStyle::Points => chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))
                .map_err(err)?
                .legend(move |(x, y)| Circle::new((x + 11, y), 4, colour.filled())),
            SeriesStyle::LineAndPoints => {
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled())))
                    .map_err(err)?;
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), line))
                    .map_err(err)?
                    .legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (22, 0)], line)
                            + Circle::new((11, 0), 4, colour.filled())
                    })
            }
        };
        anno.label(name);
        labelled += 1;
    }

    let (x_from, x_to) = {
        let r = chart.x_range();
        (r.start, r.end)
    };
    let ref_line = REF_LINE.stroke_width(2);
    for h in &data.hlines {
        chart
            .draw_series(DashedLineSeries::new(
                [(x_from, h.y), (x_to, h.y)],
                6,
                4,
                ref_line,
            ))
            .map_err(err)?
            .label(h.label.clone())
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (6, 0)], ref_line)
                    + PathElement::new(vec![(10, 0), (16, 0)], ref_line)
                    + PathElement::new(vec![(20, 0), (22, 0)], ref_line)
            });
        labelled += 1;
    }

    let marker_text = TextStyle::from((FAMILY, LEGEND_PX).into_font()).color(&BLACK);
    let (plot_x, _) = chart.plotting_area().get_pixel_range();
    let mid_px = (plot_x.start + plot_x.end) / 2;
    for m in &data.markers {
        // Label on the side with room, so a marker at the right edge keeps its text inside.
        let (text_at, anchor) = if chart.backend_coord(&(m.x, m.y)).0 > mid_px {
            ((-12, -20), Pos::new(HPos::Right, VPos::Top))
        } else {
            ((12, -20), Pos::new(HPos::Left, VPos::Top))
        };
        chart
            .draw_series([EmptyElement::at((m.x, m.y))
                + Circle::new((0, 0), 8, BLACK.stroke_width(2))
                + Circle::new((0, 0), 2, BLACK.filled())
                + Text::new(m.label.clone(), text_at, marker_text.clone().pos(anchor))])
            .map_err(err)?;
    }

    if labelled > 0 {
        chart
            .configure_series_labels()
            .position(match spec.legend {
                LegendPosition::UpperLeft => SeriesLabelPosition::UpperLeft,
                LegendPosition::UpperRight => SeriesLabelPosition::UpperRight,
                LegendPosition::LowerLeft => SeriesLabelPosition::LowerLeft,
                LegendPosition::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .margin(10)
            .legend_area_size(30)
            .label_font((FAMILY, LEGEND_PX))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(170, 170, 170))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// A tick label: short, no trailing zeros, thousands as `k`, tiny values in scientific notation.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 0.01 {
        trim(format!("{v:.3}"))
    } else {
        format!("{v:.1e}")
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

mod histogram;

pub use histogram::histogram_spec;

#[cfg(test)]
mod tests;
