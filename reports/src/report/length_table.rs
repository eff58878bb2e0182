//! The ceiling over lengths, built once: one row per `(input_len, output_len)` pair the run
//! measured, from the analysis' per-length [`Ceiling`]s, in the order of the sequence's whole
//! length. The terminal ([`crate::terminal`]), HTML and Markdown ([`super::length_table()`])
//! render the same rows; only how a missing figure looks is theirs. A run of one length pair has
//! no such table: its one ceiling is the verdict.

use crate::analysis::Analysis;
use crate::ceiling::Ceiling;

/// The headers, units included, in the order [`rendered`] fills them.
pub const HEADERS: [&str; 11] = [
    "length bucket",
    "in tok",
    "out tok",
    "bs/rank",
    "ceiling tok/s",
    "95 % CI tok/s",
    "t_fwd ms",
    "tok/s/seq",
    "QPS max",
    "limited by",
    "from",
];

/// The ceilings the table shows, shortest sequence first; empty with fewer than two pairs.
pub fn rows(a: &Analysis) -> Vec<&Ceiling> {
    if a.ceilings.len() < 2 {
        return Vec::new();
    }
    let mut c: Vec<&Ceiling> = a.ceilings.iter().collect();
    c.sort_by_key(|c| (c.seq_len_tokens, c.input_len));
    c
}

/// Where the ceiling's step time came from: a measured step, the fit inside the measured batch
/// sizes, or the fit beyond them.
fn source(c: &Ceiling) -> &'static str {
    match (c.measured, c.extrapolated) {
        (true, _) => "measured",
        (false, false) => "fit",
        (false, true) => "fit, extrapolated",
    }
}

/// Headers and formatted rows; `missing` stands for a figure that could not be computed. `None`
/// when the run measured one length pair.
pub fn rendered(a: &Analysis, missing: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let rows = rows(a);
    if rows.is_empty() {
        return None;
    }
    let body = rows
        .into_iter()
        .map(|c| {
            vec![
                c.length_bucket.clone(),
                c.input_len.to_string(),
                c.output_len.to_string(),
                c.bs_per_rank.to_string(),
                format!("{:.0}", c.throughput_tok_s),
                c.throughput_ci95_tok_s
                    .map_or(missing.to_string(), |[lo, hi]| format!("{lo:.0}–{hi:.0}")),
                format!("{:.2}", c.t_fwd_s * 1e3),
                format!("{:.1}", c.otps_per_seq),
                c.qps_max.map_or(missing.to_string(), |q| format!("{q:.2}")),
                c.limited_by.clone(),
                source(c).to_string(),
            ]
        })
        .collect();
    Some((HEADERS.iter().map(|h| (*h).to_string()).collect(), body))
}
