//! The Prometheus text format as the imitated engines write it: number formatting (Python's
//! `repr` for prometheus_client, C++ `ostream` for llama.cpp), label escaping and sorting,
//! histogram series, and the merge of per-rank histograms. Knows no metric names.

use crate::stats::{Histogram, RankStats};

/// Reads one value from a rank's snapshot.
pub(super) type Getter = fn(&RankStats) -> f64;

pub(super) type Labels = Vec<(&'static str, String)>;

/// Formats a float as prometheus_client does (Python `repr`, Go-style exponent above 1e6).
pub(crate) fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:?}");
    if let Some(pos) = s.find('e') {
        let (mantissa, exp) = s.split_at(pos);
        let exp = &exp[1..];
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ("-", d),
            None => ("+", exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    match s.find('.') {
        Some(dot) if v > 0.0 && dot > 6 => {
            let digits: String = s.chars().filter(|c| *c != '.').collect();
            let mut mantissa = format!("{}.{}", &digits[..1], &digits[1..]);
            while mantissa.ends_with('0') || mantissa.ends_with('.') {
                mantissa.pop();
            }
            format!("{mantissa}e+0{}", dot - 1)
        }
        _ => s,
    }
}

/// Formats a number as a C++ `ostream` does by default (6 significant digits, `%g`-like).
pub(crate) fn cpp_g6(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_nan() { "nan".into() } else { "0".into() };
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-5..6).contains(&exp) {
        let m = trim_fraction(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (5 - exp).max(0) as usize;
    trim_fraction(&format!("{v:.decimals$}"))
}

fn trim_fraction(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A text exposition being written.
pub(crate) struct Expo {
    out: String,
    fmt: fn(f64) -> String,
}

impl Expo {
    pub fn new(fmt: fn(f64) -> String) -> Self {
        Expo {
            out: String::with_capacity(16 * 1024),
            fmt,
        }
    }

    pub fn header(&mut self, name: &str, help: &str, kind: &str) {
        self.out
            .push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    }

    pub fn sample(&mut self, name: &str, labels: &Labels, v: f64) {
        let mut sorted = labels.clone();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        self.out.push_str(name);
        if !sorted.is_empty() {
            let inner: Vec<String> = sorted
                .iter()
                .map(|(k, val)| format!("{k}=\"{}\"", escape(val)))
                .collect();
            self.out.push('{');
            self.out.push_str(&inner.join(","));
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(&(self.fmt)(v));
        self.out.push('\n');
    }

    /// `_bucket` series (with `le` among the labels), then `_count` and `_sum`.
    pub fn histogram(&mut self, name: &str, labels: &Labels, h: &Histogram) {
        let cumulative = h.cumulative();
        for (i, c) in cumulative.iter().enumerate() {
            let le = h.bounds.get(i).map_or("+Inf".to_string(), |b| py_float(*b));
            let mut l = labels.clone();
            l.push(("le", le));
            self.sample(&format!("{name}_bucket"), &l, *c as f64);
        }
        self.sample(&format!("{name}_count"), labels, h.count as f64);
        self.sample(&format!("{name}_sum"), labels, h.sum);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Sums histograms of the same buckets (per-rank → one series).
pub(crate) fn merged(hs: impl Iterator<Item = Histogram>) -> Option<Histogram> {
    hs.reduce(|mut acc, h| {
        for (a, b) in acc.counts.iter_mut().zip(&h.counts) {
            *a += b;
        }
        acc.sum += h.sum;
        acc.count += h.count;
        acc
    })
}
