//! Charts: one plain description ([`ChartSpec`]) drawn by plotters to SVG ([`render_svg`]) or
//! PNG ([`render_png`]).
//!
//! The spec (`chart/spec.rs`) holds finished numbers with their labels; `chart/data.rs` keeps
//! what of it can be drawn and sets the axis ranges; this file decides only how they look
//! (colours, line styles, text sizes, ticks, legend). Bad data never panics: NaN and infinite
//! points (and non-positive x on a log axis) are skipped, and a chart with nothing left to draw
//! says "no data".

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::RenderError;
use super::font::{FAMILY, ensure_registered};
use data::{ChartData, bounds, x_range, y_range};
pub use spec::{Band, ChartSpec, LegendPosition, Marker, RefLine, Series, SeriesStyle};

/// Smallest width and height, in pixels, a chart can be drawn at.
pub const MIN_SIDE_PX: u32 = 160;

/// A good default size for report charts, in pixels (width, height).
pub const DEFAULT_SIZE: (u32, u32) = (900, 500);

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

/// The chart's plot: x in whatever coordinate `XC` the axis uses (linear or log), y linear.
type Plot<'a, DB, XC> = ChartContext<'a, DB, Cartesian2d<XC, RangedCoordf64>>;

/// A drawing error as the text [`RenderError::Draw`] carries.
fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Draws the chart in layers, bottom to top: axes and grid, bands, series, reference lines,
/// markers, then the legend (only when something is labelled).
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
    let mut chart = draw_axes(root, spec, x, y.clone())?;
    draw_bands(&mut chart, &data.bands, &y)?;
    let mut labelled = draw_series(&mut chart, &data.series)?;
    labelled += draw_hlines(&mut chart, &data.hlines)?;
    draw_markers(&mut chart, &data.markers)?;
    if labelled > 0 {
        draw_legend(&mut chart, spec.legend)?;
    }
    Ok(())
}

/// The title, the axes with their descriptions and tick labels, and the grid.
fn draw_axes<'a, DB, X>(
    root: &'a DrawingArea<DB, Shift>,
    spec: &ChartSpec,
    x: X,
    y: Range<f64>,
) -> Result<Plot<'a, DB, X::CoordDescType>, String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(&spec.title, (FAMILY, TITLE_PX))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(x, y)
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
    Ok(chart)
}

/// Shaded x ranges over the full height `y`, alternating colours, each labelled at its top left.
fn draw_bands<'a, DB, XC>(
    chart: &mut Plot<'a, DB, XC>,
    bands: &[Band],
    y: &Range<f64>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    XC: Ranged<ValueType = f64>,
{
    let band_label = TextStyle::from((FAMILY, NOTE_PX).into_font()).color(&RGBColor(70, 70, 70));
    for (i, band) in bands.iter().enumerate() {
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
    Ok(())
}

/// The data series in palette order, each with its legend entry; returns how many were labelled.
fn draw_series<'a, DB, XC>(
    chart: &mut Plot<'a, DB, XC>,
    series: &[(Series, Vec<(f64, f64)>)],
) -> Result<usize, String>
where
    DB: DrawingBackend + 'a,
    XC: Ranged<ValueType = f64>,
{
    let mut labelled = 0;
    for (i, (series, points)) in series.iter().enumerate() {
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
    Ok(labelled)
}

/// Dashed horizontal reference lines across the whole x range, each in the legend; returns how
/// many were labelled.
fn draw_hlines<'a, DB, XC>(
    chart: &mut Plot<'a, DB, XC>,
    hlines: &[RefLine],
) -> Result<usize, String>
where
    DB: DrawingBackend + 'a,
    XC: Ranged<ValueType = f64>,
{
    let (x_from, x_to) = {
        let r = chart.x_range();
        (r.start, r.end)
    };
    let ref_line = REF_LINE.stroke_width(2);
    let mut labelled = 0;
    for h in hlines {
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
    Ok(labelled)
}

/// Ringed points with their labels, drawn over everything else.
fn draw_markers<'a, DB, XC>(chart: &mut Plot<'a, DB, XC>, markers: &[Marker]) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    XC: Ranged<ValueType = f64>,
{
    let marker_text = TextStyle::from((FAMILY, LEGEND_PX).into_font()).color(&BLACK);
    let (plot_x, _) = chart.plotting_area().get_pixel_range();
    let mid_px = (plot_x.start + plot_x.end) / 2;
    for m in markers {
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
    Ok(())
}

/// The legend box in the spec's corner.
fn draw_legend<'a, DB, XC>(
    chart: &mut Plot<'a, DB, XC>,
    position: LegendPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    XC: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(match position {
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

mod data;
mod histogram;
mod spec;

pub use histogram::histogram_spec;

#[cfg(test)]
mod tests;
