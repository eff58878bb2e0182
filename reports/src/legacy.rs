//! The analysis as hand-written loops over per-request records, as it was before the polars
//! pipeline. Kept only as the oracle the equivalence tests (the crate's and `tests/it`'s)
//! compare the pipeline with, figure by figure; nothing in production calls it.

pub mod step_time;
pub mod summary;
pub mod window;

pub use step_time::time_steps;
pub use summary::summarize_steps;

use serde::Serialize;
use serde_json::Value;

/// Every figure of `a` and `b` (serialized) that differs: numbers beyond `rel_tol` relative,
/// anything else not equal (`None` only equals `None`). Each entry names the figure's path.
pub fn differences(a: &impl Serialize, b: &impl Serialize, rel_tol: f64) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return vec!["a value does not serialize".into()];
    };
    let mut out = Vec::new();
    diff("", &a, &b, rel_tol, &mut out);
    out
}

fn diff(path: &str, a: &Value, b: &Value, tol: f64, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let scale = x.abs().max(y.abs());
            // NaN on either side never counts as close. Below a picosecond is rounding noise
            // (the spread of equal values: 0 to the first, 4e-16 to the other).
            let close = (x - y).abs() <= tol * scale || (x - y).abs() <= 1e-12;
            if x != y && !close {
                out.push(format!("{path}: {x} vs {y}"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), x, y, tol, out);
            }
        }
        (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
            for (k, xv) in x {
                match y.get(k) {
                    Some(yv) => diff(&format!("{path}.{k}"), xv, yv, tol, out),
                    None => out.push(format!("{path}.{k}: missing on one side")),
                }
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} vs {b}")),
    }
}

#[cfg(test)]
mod tests;
