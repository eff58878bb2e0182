use std::path::PathBuf;

use super::*;

pub(crate) fn fixture(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/expositions")
}

pub(crate) fn all_fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "prom") {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            let text = std::fs::read_to_string(&path).expect("read");
            out.push((name, text));
        }
    }
    out.sort();
    assert!(
        out.len() >= 19,
        "expected every capture, found {}",
        out.len()
    );
    out
}

fn value(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    e.samples
        .iter()
        .find(|s| &*s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
}

#[test]
fn every_capture_parses_and_only_elision_lines_fail() {
    for (name, text) in all_fixtures() {
        let e = parse(&text);
        assert!(!e.samples.is_empty(), "{name}: no samples");
        for err in &e.errors {
            let line = text.lines().nth(err.line - 1).expect("line exists");
            assert!(
                line.trim() == "..." || line.trim() == "[...]",
                "{name}: unexpected error {err} on {line:?}"
            );
        }
        let elisions = text
            .lines()
            .filter(|l| l.trim() == "..." || l.trim() == "[...]")
            .count();
        assert_eq!(
            e.errors.len(),
            elisions,
            "{name}: one error per elision line"
        );
        for s in &e.samples {
            assert!(
                s.labels.windows(2).all(|w| w[0].0 < w[1].0),
                "{name}: labels sorted"
            );
        }
    }
}

#[test]
fn sample_counts_match_the_non_comment_lines() {
    for (name, text) in all_fixtures() {
        let lines = text
            .lines()
            .filter(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#') && t != "..." && t != "[...]"
            })
            .count();
        assert_eq!(parse(&text).samples.len(), lines, "{name}");
    }
}

#[test]
fn colon_names_keep_their_help_and_type() {
    let e = parse(&fixture("llamacpp-local.prom"));
    let f = e
        .family_of("llamacpp:n_busy_slots_per_decode")
        .expect("family");
    assert_eq!(f.kind, MetricKind::Gauge);
    assert_eq!(
        f.help.as_deref(),
        Some("Average number of busy slots per llama_decode() call")
    );
    assert_eq!(value(&e, "llamacpp:requests_processing", &[]), Some(8.0));
    assert_eq!(
        value(&e, "llamacpp:prompt_seconds_total", &[]),
        Some(0.136614)
    );
    assert!(e.errors.is_empty());
}

#[test]
fn histogram_named_total_is_a_histogram_with_sum_first() {
    let e = parse(&fixture("vllm-v0-0.7.x-aibrix-runtime-docs.prom"));
    let f = e
        .family_of("vllm:iteration_tokens_total_bucket")
        .expect("family");
    assert_eq!(f.name, "vllm:iteration_tokens_total");
    assert_eq!(f.kind, MetricKind::Histogram);
    assert_eq!(
        value(&e, "vllm:iteration_tokens_total_sum", &[]),
        Some(1103.0)
    );
    assert_eq!(
        value(&e, "vllm:iteration_tokens_total_bucket", &[("le", "40.0")]),
        Some(998.0)
    );
    assert_eq!(
        value(&e, "vllm:lora_requests_info", &[]),
        Some(1.7382173358407154e9)
    );
}

#[test]
fn created_series_and_exponents() {
    let e = parse(&fixture("vllm-v1-0.10.0-prodstack617-b.prom"));
    assert_eq!(
        value(&e, "vllm:request_params_n_created", &[("engine", "0")]),
        Some(1.753795326935825e9)
    );
    assert_eq!(
        e.family_of("vllm:request_params_n_created").map(|f| f.kind),
        Some(MetricKind::Gauge)
    );
    assert_eq!(
        value(&e, "vllm:request_params_n_bucket", &[("le", "+Inf")]),
        Some(4.0)
    );
}

#[test]
fn spaces_after_commas_and_blank_sentinels() {
    let e = parse(&fixture("dcgm-exporter-readme-illustrative.prom"));
    assert_eq!(
        value(&e, "DCGM_FI_DEV_MEMORY_TEMP", &[("gpu", "0")]),
        Some(9_223_372_036_854_775_794.0)
    );
    assert_eq!(e.errors.len(), 2);
    assert_eq!(e.errors[0].line, 7);
    assert!(e.errors[0].message.contains("expected a metric name"));
}

#[test]
fn special_values_escapes_timestamps_crlf_and_eof() {
    let text = "# HELP a_b A \\\\ help\\nline\r\n# TYPE a_b gauge\r\n\
        a_b{z=\"1\",a=\"q\\\"uo\\\\te\\nx\"} NaN 1700000000000\r\n\
        a_b{a=\"2\"} +Inf\r\na_b{a=\"3\"} -Inf\r\na_b{a=\"4\",} 1.5e-3\r\n\
        a_b 7\r\n# EOF\r\n";
    let e = parse(text);
    assert!(e.errors.is_empty(), "{:?}", e.errors);
    assert_eq!(e.samples.len(), 5);
    assert!(e.samples[0].value.is_nan());
    assert_eq!(
        e.samples[0].labels,
        [
            ("a".into(), "q\"uo\\te\nx".into()),
            ("z".into(), "1".into())
        ]
        .into()
    );
    assert_eq!(e.samples[1].value, f64::INFINITY);
    assert_eq!(e.samples[2].value, f64::NEG_INFINITY);
    assert_eq!(e.samples[3].value, 0.0015);
    assert!(e.samples[4].labels.is_empty());
    assert_eq!(e.families[0].help.as_deref(), Some("A \\ help\nline"));
}

#[test]
fn no_trailing_newline_and_untyped_without_metadata() {
    let e = parse("foo 1\nbar:baz{x=\"y\"} 2");
    assert!(e.errors.is_empty());
    assert_eq!(e.samples.len(), 2);
    assert_eq!(&*e.samples[1].name, "bar:baz");
    assert!(e.family_of("foo").is_none());
}

#[test]
fn bad_lines_are_located_and_the_rest_parses() {
    let text = "ok 1\n{x=\"1\"} 2\nbad{x=1} 3\nbad{x=\"1\" 4\nnoval\nv abc\nv 1 2 3\n\
        # TYPE t bogus\nv{a=\"1\",a=\"2\"} 1\nlast 9\n# EOF\nafter 1\n";
    let e = parse(text);
    let lines: Vec<usize> = e.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9, 12]);
    assert_eq!(e.samples.len(), 2);
    assert!(
        e.errors[1].message.contains("expected `\"`"),
        "{}",
        e.errors[1]
    );
    assert!(
        e.errors[3].message.contains("expected a value"),
        "{}",
        e.errors[3]
    );
    assert!(
        e.errors[4].message.contains("expected a number"),
        "{}",
        e.errors[4]
    );
    assert!(e.errors[8].message.contains("after `# EOF`"));
}

#[test]
fn json_quoted_llamacpp_body_is_unwrapped() {
    let body = serde_json::to_string(
        "# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 3\n",
    )
    .expect("json");
    let e = parse(&body);
    assert!(e.errors.is_empty());
    assert_eq!(value(&e, "llamacpp:requests_processing", &[]), Some(3.0));
}

#[test]
fn label_values_keep_unicode() {
    let e = parse("m{name=\"模型\u{e9}\"} 1\n");
    assert_eq!(e.samples[0].label("name"), Some("模型\u{e9}"));
}

/// xorshift64*: enough randomness to garble inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn garbled_captures_never_panic() {
    let alphabet: &[u8] = b"{}\"\\=, \t\n\r#:_aZ09.e+-EOFNaInf\xc3\xa9\xff";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, text) in all_fixtures() {
        for _ in 0..150 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..1 + rng.below(12) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len());
                match rng.below(4) {
                    0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                    _ => bytes.truncate(at),
                }
            }
            let garbled = String::from_utf8_lossy(&bytes);
            let e = parse(&garbled);
            let n_lines = garbled.split('\n').count();
            assert!(
                e.errors
                    .iter()
                    .all(|err| err.line >= 1 && err.line <= n_lines)
            );
        }
    }
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}

/// Writes samples back in the text format, escaping label values.
fn render(samples: &[MetricSample]) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&s.name);
        if !s.labels.is_empty() {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect();
            out.push_str(&format!("{{{}}}", labels.join(",")));
        }
        let v = if s.value.is_nan() {
            "NaN".to_string()
        } else if s.value == f64::INFINITY {
            "+Inf".to_string()
        } else if s.value == f64::NEG_INFINITY {
            "-Inf".to_string()
        } else {
            format!("{:e}", s.value)
        };
        out.push_str(&format!(" {v}\r\n"));
    }
    out
}

#[test]
fn samples_survive_a_round_trip_through_the_text_format() {
    let tricky = parse("m{a=\"x\\\\y\\\"z\\nw\",b=\"é\"} NaN\nm -Inf\n").samples;
    assert_eq!(tricky[0].label("a"), Some("x\\y\"z\nw"));
    for (name, text) in all_fixtures() {
        let first = parse(&text).samples;
        let second = parse(&render(&first));
        assert!(second.errors.is_empty(), "{name}: {:?}", second.errors);
        assert_eq!(second.samples.len(), first.len(), "{name}");
        for (a, b) in first.iter().zip(&second.samples) {
            assert_eq!((&a.name, &a.labels), (&b.name, &b.labels), "{name}");
            assert!(
                a.value == b.value || (a.value.is_nan() && b.value.is_nan()),
                "{name}"
            );
        }
    }
    let again = parse(&render(&tricky)).samples;
    assert_eq!(again[0].labels, tricky[0].labels);
    assert!(again[0].value.is_nan());
}

/// Two readings of samples are the same: names, labels and values (NaN equal to NaN).
fn assert_same_samples(a: &[MetricSample], b: &[MetricSample], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.name, &x.labels), (&y.name, &y.labels), "{what}");
        assert_eq!(x.value.to_bits(), y.value.to_bits(), "{what}: {}", x.name);
    }
}

#[test]
fn a_scrape_that_repeats_the_last_shares_its_names_and_labels() {
    for (name, text) in all_fixtures() {
        let first = parse(&text);
        let second = parse_after(&text, &first.samples);
        assert_same_samples(&second.samples, &first.samples, &name);
        assert_eq!(second.errors, first.errors, "{name}");
        for (a, b) in first.samples.iter().zip(&second.samples) {
            assert!(Arc::ptr_eq(&a.name, &b.name), "{name}: {}", a.name);
            assert!(Arc::ptr_eq(&a.labels, &b.labels), "{name}: {}", a.name);
        }
    }
}

#[test]
fn a_series_that_moved_or_changed_since_the_last_scrape_is_read_as_exposed() {
    let last = "a{x=\"1\"} 1\nb{le=\"0.5\",model=\"m\"} 2\nb{le=\"+Inf\",model=\"m\"} 3\nc 4\n";
    let prev = parse(last).samples;
    for body in [
        // A label's value changed.
        "a{x=\"2\"} 1\nb{le=\"0.5\",model=\"m\"} 2\nb{le=\"+Inf\",model=\"m\"} 3\nc 4\n",
        // A label added, one dropped, a name changed.
        "a{x=\"1\",y=\"\"} 1\nb{le=\"0.5\"} 2\nb2{le=\"+Inf\",model=\"m\"} 3\nc 4\n",
        // A series inserted at the top: every other one moved down a place.
        "z 0\na{x=\"1\"} 1\nb{le=\"0.5\",model=\"m\"} 2\nb{le=\"+Inf\",model=\"m\"} 3\nc 4\n",
        // Labels in another order, an escape, fewer samples.
        "a{x=\"1\\\"\"} 1\nb{model=\"m\",le=\"+Inf\"} 3\n",
    ] {
        let fresh = parse(body);
        assert!(fresh.errors.is_empty(), "{body}: {:?}", fresh.errors);
        assert_same_samples(&parse_after(body, &prev).samples, &fresh.samples, body);
    }
    // Labels given in another order are the same series, and share the last scrape's.
    let reordered = parse_after("a{x=\"1\"} 1\nb{model=\"m\",le=\"0.5\"} 2\n", &prev);
    assert!(Arc::ptr_eq(&reordered.samples[1].labels, &prev[1].labels));
}
