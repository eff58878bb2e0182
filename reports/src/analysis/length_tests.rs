//! A run over several length pairs, end to end on a synthetic recording whose step time has a
//! known context term: the fit recovers `c`, each pair gets its own ceiling at its own context,
//! with its bucket, and the report, terminal and `result.json` carry them.

use super::*;
use crate::fit::ContextTerm;
use crate::report::{length_table, report_charts, result_json, verdict};
use crate::synthetic::{SyntheticRun, WaveSpec, wave_recording};

const A: f64 = 0.008;
const B: f64 = 0.0002;
const C: f64 = 6e-8;
const INPUTS: [u32; 3] = [128, 1024, 8192];
const OUTPUTS: [u32; 2] = [32, 96];
const BSS: [u32; 3] = [1, 8, 64];

fn true_step_s(bs: f64, input_len: u32, output_len: u32) -> f64 {
    A + B * bs + C * bs * fit::decode_context(input_len, output_len)
}

/// Two waves at each batch size of [`BSS`] for each length pair, at the true step time.
fn specs(pairs: &[(u32, u32)]) -> Vec<WaveSpec> {
    let mut specs = Vec::new();
    for &(input_len, output_len) in pairs {
        for bs in BSS {
            specs.push(WaveSpec {
                batch_size: bs,
                input_len,
                output_len,
                waves: 2,
                step_time_s: true_step_s(f64::from(bs), input_len, output_len),
                kv_capacity_tokens: 10_000_000.0,
                ..WaveSpec::default()
            });
        }
    }
    specs
}

fn lengths_run() -> SyntheticRun {
    let pairs: Vec<(u32, u32)> = INPUTS
        .iter()
        .flat_map(|&i| OUTPUTS.iter().map(move |&o| (i, o)))
        .collect();
    wave_recording(&specs(&pairs))
}

fn analysis() -> (Analysis, Recording) {
    let data = lengths_run().recording_with(crate::recording::RunInfo {
        run_id: Some(3),
        engine_kind: Some("vllm".into()),
        model: Some("m".into()),
        dp: None,
    });
    (analyze(&data, &AnalysisOptions::default()).unwrap(), data)
}

#[test]
fn several_lengths_fit_the_context_term_and_give_a_ceiling_per_pair() {
    let (a, _) = analysis();
    let f = a.fit.as_ref().unwrap();
    assert_eq!(
        (f.context_term, f.points, f.dof),
        (ContextTerm::Fitted, 18, 15)
    );
    let c = f.c_s_per_seq_token.unwrap();
    assert!((c / C - 1.0).abs() < 0.01, "c = {c}");
    assert!((f.a_s / A - 1.0).abs() < 0.02, "a = {}", f.a_s);
    assert!(
        (f.b_s_per_seq / B - 1.0).abs() < 0.02,
        "b = {}",
        f.b_s_per_seq
    );
    let [lo, hi] = f.c_ci95_s_per_seq_token.unwrap();
    assert!(lo <= c && c <= hi && hi - lo < 0.02 * C, "{lo} {hi}");

    assert_eq!(a.ceilings.len(), 6);
    // Every pair has three steps: the headline is the last of them, the longest.
    let head = a.headline().unwrap();
    assert_eq!((head.input_len, head.output_len), (8192, 96));
    for ceiling in &a.ceilings {
        let ctx = fit::decode_context(ceiling.input_len, ceiling.output_len);
        // The default SLA of 20 tok/s: t_fwd ≤ 50 ms, so bs ≤ (50 ms − a) / (b + c × ctx).
        let bs_true = ((0.05 - A) / (B + C * ctx)).floor();
        let tput_true = bs_true / true_step_s(bs_true, ceiling.input_len, ceiling.output_len);
        assert_eq!(ceiling.limited_by, "sla", "{ceiling:?}");
        assert!(
            (f64::from(ceiling.bs_per_rank) - bs_true).abs() <= 1.0,
            "{}/{}: bs {} vs {bs_true}",
            ceiling.input_len,
            ceiling.output_len,
            ceiling.bs_per_rank
        );
        assert!(
            (ceiling.throughput_tok_s / tput_true - 1.0).abs() < 0.02,
            "{}/{}: {} vs {tput_true}",
            ceiling.input_len,
            ceiling.output_len,
            ceiling.throughput_tok_s
        );
        let [tlo, thi] = ceiling.throughput_ci95_tok_s.unwrap();
        assert!(tlo <= ceiling.throughput_tok_s && ceiling.throughput_tok_s <= thi);
        assert_eq!(
            ceiling.seq_len_tokens,
            ceiling.input_len + ceiling.output_len
        );
    }
    let at = |i: u32, o: u32| {
        a.ceilings
            .iter()
            .find(|c| (c.input_len, c.output_len) == (i, o))
            .unwrap()
    };
    assert_eq!(at(128, 32).length_bucket, "0-4k");
    assert_eq!(at(8192, 96).length_bucket, "4k-16k");
    // Longer contexts read more KV per step: a lower ceiling at a smaller batch.
    assert!(at(8192, 96).throughput_tok_s < 0.5 * at(128, 32).throughput_tok_s);
    assert!(at(8192, 96).bs_per_rank < at(128, 32).bs_per_rank);
}

#[test]
fn the_report_shows_the_ceiling_over_lengths_as_a_table_and_a_chart() {
    let (a, data) = analysis();
    let (headers, rows) = length_table::rendered(&a, "–").unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(headers[0], "length bucket");
    let firsts: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[2].as_str()))
        .collect();
    assert_eq!(
        firsts,
        [
            ("0-4k", "128", "32"),
            ("0-4k", "128", "96"),
            ("0-4k", "1024", "32"),
            ("0-4k", "1024", "96"),
            ("4k-16k", "8192", "32"),
            ("4k-16k", "8192", "96"),
        ]
    );
    let long = a
        .ceilings
        .iter()
        .find(|c| (c.input_len, c.output_len) == (8192, 96))
        .unwrap();
    assert_eq!(rows[5][4], format!("{:.0}", long.throughput_tok_s));

    let charts = report_charts(&a, &data);
    assert_eq!(charts[0].name, "ceiling_vs_length");
    let spec = &charts[0].spec;
    assert_eq!(spec.series.len(), 2, "one line per output length");
    assert_eq!(spec.series[1].points.len(), 3);
    assert_eq!(spec.series[1].points[2], (8288.0, long.throughput_tok_s));
    let bands: Vec<&str> = spec.shaded.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(bands, ["0-4k", "4k-16k"]);

    // The batch-size charts draw one line per length pair, never one through all of them.
    let step = charts.iter().find(|c| c.name == "step_time_vs_bs").unwrap();
    let named = |prefix: &str| {
        step.spec
            .series
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .collect::<Vec<_>>()
    };
    let client = named("client (chunk gaps) ");
    assert_eq!(client.len(), 6);
    assert!(client.iter().all(|s| s.points.len() == 3));
    let fits = named("fit a + b·bs + c·bs·ctx ");
    assert_eq!(fits.len(), 6);
    let long_fit = fits.iter().find(|s| s.name.ends_with(" 8192/96")).unwrap();
    let (bs, t_ms) = *long_fit.points.last().unwrap();
    assert!(
        (t_ms / (true_step_s(bs, 8192, 96) * 1e3) - 1.0).abs() < 0.01,
        "{t_ms} ms"
    );
    let tput = charts
        .iter()
        .find(|c| c.name == "throughput_vs_bs")
        .unwrap();
    assert_eq!(
        tput.spec.series.len(),
        1 + 6 + 1,
        "window points, a line per pair, the fit"
    );

    let v = verdict(&a);
    let fit_line = &v.iter().find(|(l, _)| l == "Step-time fit").unwrap().1;
    assert!(fit_line.contains("+ 60.00 ns (95 % CI"), "{fit_line}");
    let lengths = &v
        .iter()
        .find(|(l, _)| l == "Ceiling over lengths")
        .unwrap()
        .1;
    assert!(lengths.starts_with("6 length pairs, from "), "{lengths}");
    assert!(lengths.contains("at 8192/96 tokens (4k-16k"), "{lengths}");

    let text = crate::render_terminal(&a);
    assert!(text.contains("ceiling by length"), "{text}");
    assert!(text.contains("× bs × context"), "{text}");
    let doc = crate::report::report_doc(&a, &[], Vec::new());
    let md = crate::render::markdown(&doc);
    assert!(md.contains("## Ceiling by length"), "{md}");
    assert!(md.contains("| 4k-16k | 8192 | 96 |"), "{md}");

    let j = result_json(&a, &data, serde_json::json!({"id": 3}));
    assert_eq!(j["analysis"]["fit"]["context_term"], "fitted");
    assert_eq!(j["analysis"]["ceilings"].as_array().map(Vec::len), Some(6));
    assert_eq!(j["analysis"]["ceilings"][0]["length_bucket"], "0-4k");
    assert_eq!(crate::report::schema_check::drift(&j), Vec::<String>::new());
}

#[test]
fn one_length_pair_has_no_table_no_chart_and_no_context_term() {
    let data = wave_recording(&specs(&[(1024, 96)])).recording();
    let a = analyze(&data, &AnalysisOptions::default()).unwrap();
    let f = a.fit.as_ref().unwrap();
    assert_eq!(
        (f.context_term, f.c_s_per_seq_token),
        (ContextTerm::OneContext, None)
    );
    // The one context folds into b: b + c × ctx.
    let b_eff = B + C * fit::decode_context(1024, 96);
    assert!((f.b_s_per_seq / b_eff - 1.0).abs() < 0.02, "{f:?}");
    assert_eq!(length_table::rendered(&a, "-"), None);
    assert!(
        report_charts(&a, &data)
            .iter()
            .all(|c| c.name != "ceiling_vs_length")
    );
    assert!(!verdict(&a).iter().any(|(l, _)| l == "Ceiling over lengths"));
    assert!(!crate::render_terminal(&a).contains("context term"));
}
