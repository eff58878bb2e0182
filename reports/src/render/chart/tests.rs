use super::*;

/// The text a chart shows, in document order: title, tick labels, axis labels, legend, notes.
/// Snapshotting this rather than the SVG bytes keeps the tests about content, not geometry.
pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
    let mut texts = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find("<text") {
        let after = &rest[open..];
        let Some(start) = after.find('>') else { break };
        let Some(end) = after.find("</text>") else {
            break;
        };
        texts.push(after[start + 1..end].trim().to_string());
        rest = &after[end + "</text>".len()..];
    }
    texts
}

fn throughput_spec() -> ChartSpec {
    let bs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
    ChartSpec {
        title: "Throughput vs batch size".into(),
        x_label: "batch size (sequences)".into(),
        y_label: "throughput (output tok/s)".into(),
        series: vec![
            Series {
                name: "measured".into(),
                points: bs
                    .iter()
                    .map(|&b| (b, b * 60.0 / (1.0 + b / 40.0)))
                    .collect(),
                style: SeriesStyle::LineAndPoints,
            },
            Series {
                name: "fit: t_fwd = 12 ms + 0.3 ms × bs".into(),
                points: bs.iter().map(|&b| (b, b / (0.012 + 0.0003 * b))).collect(),
                style: SeriesStyle::Dashed,
            },
        ],
        hlines: vec![RefLine {
            label: "roofline limit".into(),
            y: 2600.0,
        }],
        markers: vec![Marker {
            label: "ceiling 2,370 tok/s at bs 64".into(),
            x: 64.0,
            y: 2370.0,
        }],
        shaded: vec![],
        log_x: true,
        y_from_zero: true,
        legend: LegendPosition::UpperLeft,
    }
}

#[test]
fn svg_shows_title_axis_labels_legend_and_marker() {
    let svg = render_svg(&throughput_spec(), 900, 500).expect("renders");
    assert!(
        svg.starts_with("<svg"),
        "an SVG document: {}",
        &svg[..60.min(svg.len())]
    );
    insta::assert_debug_snapshot!(svg_texts(&svg));
}

#[test]
fn svg_escapes_markup_in_labels() {
    let mut spec = throughput_spec();
    spec.series[0].name = "a <b> & \"c\"".into();
    let svg = render_svg(&spec, 600, 400).expect("renders");
    assert!(svg.contains("a &lt;b&gt; &amp;"), "escaped");
    assert!(!svg.contains("<b>"));
}

#[test]
fn empty_chart_says_no_data() {
    let spec = ChartSpec {
        title: "GPU power".into(),
        x_label: "time (s)".into(),
        y_label: "power (W)".into(),
        series: vec![Series {
            name: "GPU 0".into(),
            points: vec![],
            style: SeriesStyle::Line,
        }],
        ..ChartSpec::default()
    };
    let svg = render_svg(&spec, 600, 300).expect("renders");
    let texts = svg_texts(&svg);
    assert!(texts.contains(&"no data".to_string()), "{texts:?}");
    assert!(texts.contains(&"GPU power".to_string()), "{texts:?}");
    assert!(render_png(&spec, 600, 300).is_ok());
    assert!(render_svg(&ChartSpec::default(), 300, 200).is_ok());
}

#[test]
fn non_finite_points_are_skipped_not_drawn() {
    let spec = ChartSpec {
        title: "TPOT".into(),
        x_label: "batch size (sequences)".into(),
        y_label: "TPOT (ms)".into(),
        series: vec![Series {
            name: "p50".into(),
            points: vec![
                (1.0, 10.0),
                (2.0, f64::NAN),
                (f64::INFINITY, 3.0),
                (4.0, 12.0),
                (0.0, 9.0),
            ],
            style: SeriesStyle::LineAndPoints,
        }],
        hlines: vec![RefLine {
            label: "SLA".into(),
            y: f64::NAN,
        }],
        log_x: true,
        ..ChartSpec::default()
    };
    let svg = render_svg(&spec, 600, 400).expect("renders");
    assert!(
        !svg.contains("NaN") && !svg.contains("inf"),
        "no non-finite coordinates"
    );
    assert!(!svg_texts(&svg).contains(&"no data".to_string()));

    let all_bad = ChartSpec {
        series: vec![Series {
            name: "p50".into(),
            points: vec![(f64::NAN, 1.0)],
            ..Series::default()
        }],
        ..spec
    };
    let svg = render_svg(&all_bad, 600, 400).expect("renders");
    assert!(svg_texts(&svg).contains(&"no data".to_string()));
}

#[test]
fn single_point_and_bands_render() {
    let spec = ChartSpec {
        title: "SM clock".into(),
        x_label: "time (s)".into(),
        y_label: "SM clock (MHz)".into(),
        series: vec![Series {
            name: "GPU 0".into(),
            points: vec![(5.0, 1980.0)],
            style: SeriesStyle::Points,
        }],
        shaded: vec![
            Band {
                label: "bs 8".into(),
                x_from: 0.0,
                x_to: 4.0,
            },
            Band {
                label: "bs 16".into(),
                x_from: 4.0,
                x_to: 9.0,
            },
        ],
        ..ChartSpec::default()
    };
    let texts = svg_texts(&render_svg(&spec, 600, 400).expect("renders"));
    for want in ["bs 8", "bs 16", "GPU 0", "SM clock (MHz)", "time (s)"] {
        assert!(texts.contains(&want.to_string()), "{want} in {texts:?}");
    }
}

#[test]
fn png_has_requested_size_and_is_not_blank() {
    let bytes = render_png(&throughput_spec(), 640, 360).expect("renders");
    let decoder = png::Decoder::new(bytes.as_slice());
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!((info.width, info.height), (640, 360));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels = &buf[..info.buffer_size()];
    let not_white = pixels.chunks(3).filter(|p| p != &[255, 255, 255]).count();
    let total = (640 * 360) as usize;
    // Lines, text and the legend: some ink, but mostly white page.
    assert!(
        not_white > total / 100,
        "too little ink: {not_white} of {total}"
    );
    assert!(
        not_white < total / 2,
        "too much ink: {not_white} of {total}"
    );
}

#[test]
fn png_text_is_drawn_with_the_embedded_font() {
    // The same chart with and without a long title differs by the title's ink.
    let mut spec = throughput_spec();
    let ink = |spec: &ChartSpec| {
        let bytes = render_png(spec, 640, 360).expect("renders");
        let mut reader = png::Decoder::new(bytes.as_slice())
            .read_info()
            .expect("png header");
        let mut buf = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut buf).expect("png frame");
        buf.chunks(3).filter(|p| p[0] < 128).count()
    };
    let with_title = ink(&spec);
    spec.title = String::new();
    assert!(
        with_title > ink(&spec) + 100,
        "the title's glyphs add dark pixels"
    );
}

#[test]
fn too_small_is_an_error() {
    let err = render_svg(&throughput_spec(), 100, 500).expect_err("too small");
    assert!(
        matches!(err, RenderError::TooSmall { width: 100, .. }),
        "{err}"
    );
}

#[test]
fn histogram_shares_sum_to_100_and_share_bins() {
    let spec = histogram_spec(
        "ITL distribution",
        "inter-token latency (ms)",
        &[
            ("bs 8".into(), vec![10.0, 11.0, 11.5, 12.0, 30.0, f64::NAN]),
            ("bs 64".into(), vec![20.0, 21.0, 22.0, 23.0]),
            ("bs 128".into(), vec![]),
        ],
        10,
        false,
    );
    assert_eq!(spec.series.len(), 3);
    let outline = &spec.series[0].points;
    // Baseline, two corners per bin, baseline.
    assert_eq!(outline.len(), 2 * 10 + 2);
    let total: f64 = outline[1..outline.len() - 1]
        .iter()
        .step_by(2)
        .map(|p| p.1)
        .sum();
    assert!((total - 100.0).abs() < 1e-9, "{total}");
    assert_eq!(outline.first().map(|p| p.0), Some(10.0));
    assert_eq!(outline.last().map(|p| p.0), Some(30.0));
    assert!(spec.series[2].points.is_empty());
    let svg = render_svg(&spec, 700, 400).expect("renders");
    assert!(svg_texts(&svg).contains(&"bs 64".to_string()));
}

#[test]
fn histogram_of_nothing_renders_no_data() {
    let spec = histogram_spec(
        "ITL",
        "ITL (ms)",
        &[("bs 1".into(), vec![f64::NAN])],
        20,
        true,
    );
    let svg = render_svg(&spec, 600, 300).expect("renders");
    assert!(svg_texts(&svg).contains(&"no data".to_string()));
}

#[test]
fn tick_labels_are_short() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (2.5, "2.5"),
        (0.125, "0.125"),
        (0.0012, "1.2e-3"),
        (250.0, "250"),
        (4210.0, "4210"),
        (12_500.0, "12.5k"),
        (2_000_000.0, "2M"),
        (-30.0, "-30"),
    ];
    for (v, want) in cases {
        assert_eq!(tick(v), want, "{v}");
    }
}
