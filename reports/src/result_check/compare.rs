//! `ceiling compare A B --change KIND`: each figure's change from A to B with its noise, and
//! what the change may and may not move: MTP, EP or a decode-only change must not move TTFT
//! beyond noise; a KV-cache / prefix change moves TTFT, not TPOT; PD disaggregation improves
//! TPOT and may worsen TTFT; a TP change is checked for head divisibility on both sides
//! ([`tp_rules`]). A length mismatch between A and B is refused by [`lengths_differ`].

use serde::Serialize;
use serde_json::json;

use super::{Check, Verdict, check};
use crate::model::ModelShape;
use crate::peer::{PeerPoint, Stats};

/// What changed between A and B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Decode,
    Prefill,
    KvCache,
    Mtp,
    Ep,
    Pd,
    Tp,
    Quantization,
    Hardware,
    EngineVersion,
}

/// One figure of A and B: the relative change and the noise it is held against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    pub metric: &'static str,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// `B / A − 1`.
    pub change: Option<f64>,
    /// Two standard errors of the difference, relative to A (`2 √(σA²/nA + σB²/nB) / A`); the
    /// default tolerance when a side has no spread.
    pub noise: f64,
}

/// Relative noise assumed when a side's spread or count is unknown.
pub const DEFAULT_NOISE: f64 = 0.05;

/// The reason A and B cannot be compared, when their mean lengths differ by more than 10 %.
pub fn lengths_differ(a: &PeerPoint, b: &PeerPoint) -> Option<String> {
    let pairs = [
        ("input", a.input_len_mean, b.input_len_mean),
        ("output", a.output_len_mean, b.output_len_mean),
    ];
    pairs.iter().find_map(|(what, x, y)| match (x, y) {
        (Some(x), Some(y)) if (y / x - 1.0).abs() > 0.10 => Some(format!(
            "A's mean {what} length is {x:.0} tokens and B's {y:.0}: every latency moves with the lengths, so the change cannot be read; rerun both with the same lengths (ignore_eos, fixed input)"
        )),
        _ => None,
    })
}

fn delta(metric: &'static str, a: &Stats, b: &Stats, na: Option<u64>, nb: Option<u64>) -> Delta {
    let (x, y) = (a.mean_s, b.mean_s);
    let se = |s: &Stats, n: Option<u64>| match (s.std_s, n) {
        (Some(sd), Some(n)) if n > 1 => Some(sd * sd / n as f64),
        _ => None,
    };
    let noise = match (se(a, na), se(b, nb), x) {
        (Some(va), Some(vb), Some(x)) if x > 0.0 => (2.0 * (va + vb).sqrt() / x).max(0.01),
        _ => DEFAULT_NOISE,
    };
    Delta {
        metric,
        a: x,
        b: y,
        change: x.zip(y).filter(|(x, _)| *x > 0.0).map(|(x, y)| y / x - 1.0),
        noise,
    }
}

fn scalar(metric: &'static str, a: Option<f64>, b: Option<f64>) -> Delta {
    Delta {
        metric,
        a,
        b,
        change: a.zip(b).filter(|(x, _)| *x > 0.0).map(|(x, y)| y / x - 1.0),
        noise: DEFAULT_NOISE,
    }
}

/// Every compared figure.
pub fn deltas(a: &PeerPoint, b: &PeerPoint) -> Vec<Delta> {
    vec![
        delta("ttft", &a.ttft, &b.ttft, a.completed, b.completed),
        delta("tpot", &a.tpot, &b.tpot, a.completed, b.completed),
        delta("itl", &a.itl, &b.itl, None, None),
        delta("e2e", &a.e2e, &b.e2e, a.completed, b.completed),
        scalar("output_tok_per_s", a.output_tok_per_s, b.output_tok_per_s),
        scalar("req_per_s", a.req_per_s, b.req_per_s),
    ]
}

fn moved(d: &Delta) -> Option<f64> {
    d.change.filter(|c| c.abs() > d.noise)
}

/// What the change may not move, as checks.
pub fn rules(change: Change, deltas: &[Delta]) -> Vec<Check> {
    let get = |m: &str| deltas.iter().find(|d| d.metric == m);
    let pct = |c: f64| format!("{:+.1} %", c * 100.0);
    let must_hold = |code: &'static str, metric: &str, why: &str| -> Check {
        match get(metric) {
            Some(d) if d.change.is_none() => check(
                code,
                "compare",
                Verdict::CannotTell,
                format!("A or B has no {metric}"),
                json!(d),
            ),
            Some(d) => match moved(d) {
                Some(c) => check(
                    code,
                    "compare",
                    Verdict::Fail,
                    format!(
                        "{metric} moved {} (noise ±{:.1} %): {why}",
                        pct(c),
                        d.noise * 100.0
                    ),
                    json!(d),
                ),
                None => check(
                    code,
                    "compare",
                    Verdict::Pass,
                    format!(
                        "{metric} within noise ({} of ±{:.1} %)",
                        pct(d.change.unwrap_or(0.0)),
                        d.noise * 100.0
                    ),
                    json!(d),
                ),
            },
            None => check(
                code,
                "compare",
                Verdict::CannotTell,
                format!("no {metric}"),
                serde_json::Value::Null,
            ),
        }
    };
    match change {
        Change::Mtp | Change::Ep | Change::Decode => vec![must_hold(
            "ttft_unmoved",
            "ttft",
            "a decode-only change (MTP, EP, a decode kernel) cannot move TTFT; A and B differ in something else (prefix cache, queueing, lengths, load)",
        )],
        Change::KvCache | Change::Prefill => vec![must_hold(
            "tpot_unmoved",
            "tpot",
            "a KV-cache, prefix or prefill change moves TTFT, not TPOT; A and B differ in something else (batch, lengths, MTP)",
        )],
        Change::Pd => match get("tpot").and_then(|d| d.change.map(|c| (c, d.noise))) {
            Some((c, noise)) if c > noise => vec![check(
                "pd_tpot",
                "compare",
                Verdict::Fail,
                format!(
                    "TPOT worsened {} with PD disaggregation (noise ±{:.1} %): decode instances should run without prefill interference; check the decode side's batch and the KV transfer",
                    pct(c),
                    noise * 100.0
                ),
                json!(get("tpot")),
            )],
            Some((c, _)) => vec![check(
                "pd_tpot",
                "compare",
                Verdict::Pass,
                format!(
                    "TPOT {} with PD disaggregation (TTFT may rise: the KV transfer)",
                    pct(c)
                ),
                json!(get("tpot")),
            )],
            None => vec![check(
                "pd_tpot",
                "compare",
                Verdict::CannotTell,
                "A or B has no TPOT".into(),
                serde_json::Value::Null,
            )],
        },
        Change::Tp | Change::Quantization | Change::Hardware | Change::EngineVersion => Vec::new(),
    }
}

/// `--change tp`: each side's TP size against the model's heads (what vLLM and SGLang refuse,
/// [`crate::tp::check_tp`]), and that A and B differ in TP at all. Cannot tell without the
/// model's config or a side's size.
pub fn tp_rules(shape: Option<&ModelShape>, tp_a: Option<u32>, tp_b: Option<u32>) -> Vec<Check> {
    let missing = |what: &str| {
        check(
            "tp_divides",
            "compare",
            Verdict::CannotTell,
            format!(
                "no {what}: give --model-config and --tp-a / --tp-b (or import the results with --model-config and --tp)"
            ),
            serde_json::Value::Null,
        )
    };
    let (Some(shape), Some(a), Some(b)) = (shape, tp_a, tp_b) else {
        let what = if shape.is_none() {
            "model config"
        } else {
            "TP size for both sides"
        };
        return vec![missing(what)];
    };
    let mut out: Vec<Check> = crate::tp::check_tp(shape, &[a, b], None, None)
        .into_iter()
        .zip(["A", "B"])
        .map(|(v, side)| {
            let (verdict, what) = if v.ok {
                (Verdict::Pass, v.notes.join("; "))
            } else {
                (
                    Verdict::Fail,
                    format!(
                        "{}: an engine refuses this size, so the run behind the figures was not TP {}",
                        v.problems.join("; "),
                        v.tp
                    ),
                )
            };
            check(
                "tp_divides",
                "compare",
                verdict,
                format!("{side} at TP {}: {what}", v.tp),
                json!(v),
            )
        })
        .collect();
    if a == b {
        out.push(check(
            "tp_changed",
            "compare",
            Verdict::Warn,
            format!("A and B both run TP {a}: nothing in TP changed; give each side's size (--tp-a, --tp-b)"),
            json!({"tp_a": a, "tp_b": b}),
        ));
    }
    out
}
