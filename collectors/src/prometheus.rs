//! The Prometheus text exposition format (0.0.4, plus the OpenMetrics `# EOF` marker), parsed
//! into families and samples with names and labels exactly as exposed, and the async scraper
//! that fetches it ([`scrape`]).
//!
//! Written here rather than taken from a crate: `prometheus-parse` drops every name with a
//! colon (all `vllm:`, `sglang:`, `llamacpp:` metrics) and the correct alternatives are LGPL or
//! stale (see `docs/ENGINE-METRICS.md` section 0 for the quirks handled). The parser never
//! panics and never gives up on a whole body: a bad line becomes a located [`ParseError`] and
//! the other lines still parse. It does not infer a type from a suffix (`vllm:iteration_tokens_
//! total` is a histogram) and does not compute anything.

mod cursor;
pub mod scrape;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::MetricSample;
use cursor::Cursor;

pub use scrape::{
    MAX_SCRAPE_BYTES, MAX_SCRAPE_LINES, MIN_BOUNDARY_TIMEOUT, ScrapeNow, Scraper, boundary_timeout,
    run_scraper,
};

/// The type a `# TYPE` line declares; `Untyped` when there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
    /// OpenMetrics types, accepted so that an OpenMetrics body does not produce errors.
    Info,
    Stateset,
    GaugeHistogram,
}

impl MetricKind {
    fn parse(s: &str) -> Option<MetricKind> {
        Some(match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "histogram" => MetricKind::Histogram,
            "summary" => MetricKind::Summary,
            "untyped" | "unknown" => MetricKind::Untyped,
            "info" => MetricKind::Info,
            "stateset" => MetricKind::Stateset,
            "gaugehistogram" => MetricKind::GaugeHistogram,
            _ => return None,
        })
    }
}

/// A metric family as declared by `# HELP` / `# TYPE` lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Family {
    pub name: String,
    pub kind: MetricKind,
    pub help: Option<String>,
}

/// A line that could not be parsed: its 1-based number and what was expected there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Everything one exposition body yielded, in body order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Exposition {
    pub families: Vec<Family>,
    pub samples: Vec<MetricSample>,
    pub errors: Vec<ParseError>,
}

impl Exposition {
    /// The declared family a sample name belongs to: the name itself, or for histograms and
    /// summaries the name without `_bucket` / `_sum` / `_count` / `_created`. `None` when no
    /// `# TYPE` or `# HELP` line declared it.
    pub fn family_of(&self, sample_name: &str) -> Option<&Family> {
        let by_name = |n: &str| self.families.iter().find(|f| f.name == n);
        if let Some(f) = by_name(sample_name) {
            return Some(f);
        }
        for suffix in ["_bucket", "_sum", "_count", "_created", "_total", "_info"] {
            if let Some(base) = sample_name.strip_suffix(suffix)
                && let Some(f) = by_name(base)
            {
                return Some(f);
            }
        }
        None
    }
}

/// The family name of a sample name when no `# TYPE` line is at hand: strips the histogram and
/// summary suffixes (`_bucket`, `_sum`, `_count`, `_created`). Counter names keep `_total`.
pub fn base_name(sample_name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count", "_created"] {
        if let Some(base) = sample_name.strip_suffix(suffix) {
            return base;
        }
    }
    sample_name
}

/// Parses a whole exposition body. Never fails: what parses is returned with the errors.
pub fn parse(text: &str) -> Exposition {
    parse_after(text, &[])
}

/// [`parse`], for a body that likely repeats `prev`, the samples of the same endpoint's
/// previous scrape: a sample whose name and labels are those of the sample at its position in
/// `prev` shares them (reference counts) instead of copying them. An engine exposes the same
/// series in the same order on every scrape, so a scrape allocates only its list and what moved.
pub fn parse_after(text: &str, prev: &[MetricSample]) -> Exposition {
    // llama.cpp builds around b7010-b7100 served the body JSON-escaped inside quotes
    // (ggml-org/llama.cpp#17384): undo that first.
    let trimmed = text.trim();
    if trimmed.len() >= 2
        && trimmed.starts_with('"')
        && trimmed.ends_with('"')
        && let Ok(inner) = serde_json::from_str::<String>(trimmed)
    {
        return parse_lines(&inner, prev);
    }
    parse_lines(text, prev)
}

fn parse_lines(text: &str, prev: &[MetricSample]) -> Exposition {
    let mut out = Exposition::default();
    let mut families: BTreeMap<String, usize> = BTreeMap::new();
    let mut eof_at: Option<usize> = None;
    let mut labels = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(at) = eof_at {
            out.errors.push(ParseError {
                line: line_no,
                message: format!("content after `# EOF` on line {at}"),
            });
            continue;
        }
        let result = if let Some(rest) = line.trim_start().strip_prefix('#') {
            parse_comment(rest, &mut out.families, &mut families).map(|eof| {
                if eof {
                    eof_at = Some(line_no);
                }
            })
        } else {
            let like = prev.get(out.samples.len());
            parse_sample(line, like, &mut labels).map(|s| out.samples.push(s))
        };
        if let Err(message) = result {
            out.errors.push(ParseError {
                line: line_no,
                message,
            });
        }
    }
    out
}

/// A `#` line. Returns whether it was `# EOF`.
fn parse_comment(
    rest: &str,
    families: &mut Vec<Family>,
    index: &mut BTreeMap<String, usize>,
) -> Result<bool, String> {
    let rest = rest.trim_start_matches([' ', '\t']);
    let (keyword, after) = split_word(rest);
    match keyword {
        "EOF" if after.trim().is_empty() => Ok(true),
        "HELP" | "TYPE" => {
            let after = after.trim_start_matches([' ', '\t']);
            let mut cur = Cursor::new(after);
            let name = cur.metric_name().ok_or_else(|| {
                format!(
                    "expected a metric name after `# {keyword}`, found {}",
                    cur.found()
                )
            })?;
            let tail = cur.rest();
            if !tail.is_empty() && !tail.starts_with([' ', '\t']) {
                return Err(format!(
                    "expected a space after the metric name `{name}`, found {}",
                    cur.found()
                ));
            }
            let tail = tail.trim_start_matches([' ', '\t']);
            let slot = match index.get(name) {
                Some(&slot) => slot,
                None => {
                    let slot = families.len();
                    families.push(Family {
                        name: name.to_string(),
                        kind: MetricKind::Untyped,
                        help: None,
                    });
                    index.insert(name.to_string(), slot);
                    slot
                }
            };
            let Some(family) = families.get_mut(slot) else {
                return Err("internal: family index out of range".into());
            };
            if keyword == "HELP" {
                family.help = Some(unescape_help(tail));
            } else {
                let word = tail.trim_end();
                family.kind = MetricKind::parse(word).ok_or_else(|| {
                    format!(
                        "expected a type (counter, gauge, histogram, summary, untyped) for `{name}`, found `{word}`"
                    )
                })?;
            }
            Ok(false)
        }
        // Any other comment is free text.
        _ => Ok(false),
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A label as read from a line: its name, and its value unescaped (borrowed where it holds no
/// escape).
type LabelText<'a> = (&'a str, Cow<'a, str>);

/// A sample line: `name{labels} value [timestamp]`. `like`: the previous scrape's sample at the
/// same position, whose name and labels this one shares where they are the same; `labels`: a
/// buffer for the line's labels, kept across lines.
fn parse_sample<'a>(
    line: &'a str,
    like: Option<&MetricSample>,
    labels: &mut Vec<LabelText<'a>>,
) -> Result<MetricSample, String> {
    let mut cur = Cursor::new(line.trim_start_matches([' ', '\t']));
    let name = cur
        .metric_name()
        .ok_or_else(|| format!("expected a metric name, found {}", cur.found()))?;
    cur.skip_blanks();
    labels.clear();
    if cur.eat(b'{') {
        parse_labels(&mut cur, labels)?;
        cur.skip_blanks();
    }
    let value_text = cur.word();
    if value_text.is_empty() {
        return Err(format!(
            "expected a value after `{name}`, found {}",
            cur.found()
        ));
    }
    let value = parse_value(value_text)
        .ok_or_else(|| format!("expected a number for `{name}`, found `{value_text}`"))?;
    cur.skip_blanks();
    let ts = cur.word();
    if !ts.is_empty() && parse_value(ts).is_none_or(|t| !t.is_finite()) {
        return Err(format!(
            "expected a timestamp or the end of the line after the value of `{name}`, found `{ts}`"
        ));
    }
    cur.skip_blanks();
    if !cur.rest().is_empty() {
        return Err(format!(
            "expected the end of the line after the sample `{name}`, found {}",
            cur.found()
        ));
    }
    // Unstable is enough (and sorts in place): `parse_labels` refuses a label name given twice.
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let name = match like {
        Some(p) if *p.name == *name => p.name.clone(),
        _ => Arc::from(name),
    };
    let same_labels = |p: &MetricSample| {
        p.labels.len() == labels.len()
            && p.labels
                .iter()
                .zip(labels.iter())
                .all(|((pk, pv), (k, v))| **pk == **k && **pv == **v)
    };
    let labels = match like {
        Some(p) if same_labels(p) => p.labels.clone(),
        _ => labels
            .iter()
            .map(|(k, v)| (Arc::from(*k), Arc::from(v.as_ref())))
            .collect(),
    };
    Ok(MetricSample {
        name,
        labels,
        value,
    })
}

/// The labels after `{`, through the closing `}`, into `labels`.
fn parse_labels<'a>(cur: &mut Cursor<'a>, labels: &mut Vec<LabelText<'a>>) -> Result<(), String> {
    loop {
        cur.skip_blanks();
        if cur.eat(b'}') {
            return Ok(());
        }
        let key = cur
            .label_name()
            .ok_or_else(|| format!("expected a label name or `}}`, found {}", cur.found()))?;
        cur.skip_blanks();
        if !cur.eat(b'=') {
            return Err(format!(
                "expected `=` after the label name `{key}`, found {}",
                cur.found()
            ));
        }
        cur.skip_blanks();
        if !cur.eat(b'"') {
            return Err(format!(
                "expected `\"` to open the value of label `{key}`, found {}",
                cur.found()
            ));
        }
        let value = cur
            .quoted()
            .ok_or_else(|| format!("the value of label `{key}` is not closed by `\"`"))?;
        if labels.iter().any(|(k, _)| *k == key) {
            return Err(format!("label `{key}` appears twice"));
        }
        labels.push((key, value));
        cur.skip_blanks();
        if cur.eat(b',') {
            continue;
        }
        if cur.eat(b'}') {
            return Ok(());
        }
        return Err(format!(
            "expected `,` or `}}` after a label value, found {}",
            cur.found()
        ));
    }
}

/// A sample value: a float in Go/Python notation, `NaN`, `+Inf`, `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => return Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => return Some(f64::INFINITY),
        "-Inf" | "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also accepts "infinity" and similar; the format does not.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
        || s.contains('_')
    {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod mutation_tests;
#[cfg(test)]
pub(crate) mod tests;
