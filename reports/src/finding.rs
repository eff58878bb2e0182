//! A finding: a place where the views disagree or the run cannot be trusted. It has a stable
//! code, a severity, a one-line message that says what to change, and the numbers behind it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    /// Marks the step or run untrustworthy.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Severity::Info),
            "warn" => Some(Severity::Warn),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The step it concerns, or `None` for the whole run.
    pub step_idx: Option<u32>,
    /// Stable code, e.g. `engine_batch_mismatch`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub evidence: serde_json::Value,
}
