//! Run-wide rules: what only the run as a whole shows (today, a ceiling beyond the batch sizes
//! measured).

use serde_json::json;

use super::{Check, Rule, RunView, Subject, Tolerances};
use crate::finding::{Finding, Severity};

pub(super) const CEILING_EXTRAPOLATED: Rule = Rule {
    code: "ceiling_extrapolated",
    severities: &[Severity::Info],
    what: "a ceiling lies beyond the largest batch size measured, so it rests on the fit alone",
    check: Check::Run(ceiling_extrapolated),
};

/// One finding per extrapolated ceiling (one ceiling per pair of lengths).
fn ceiling_extrapolated(v: &RunView<'_>, _tol: &Tolerances) -> Vec<Finding> {
    v.ceilings
        .iter()
        .filter(|c| c.extrapolated)
        .map(|c| {
            v.finding(
                &CEILING_EXTRAPOLATED,
                Severity::Info,
                format!(
                    "the ceiling at {}/{} tokens is at bs {} per rank, beyond the largest measured ({}); add bs {} to --batch-sizes to measure it",
                    c.input_len, c.output_len, c.bs_per_rank, c.max_measured_bs_per_rank, c.bs_per_rank
                ),
                json!({"bs_per_rank": c.bs_per_rank, "max_measured_bs_per_rank": c.max_measured_bs_per_rank, "limited_by": c.limited_by}),
            )
        })
        .collect()
}
