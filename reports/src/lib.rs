//! `ceiling-reports`: pure functions from a recording to figures, findings and rendered output.
//!
//! The metric definitions live here, once, with their formulas ([`metrics`]). This crate has
//! no tokio, no network and no SQLite: the binary loads a run from the store into a
//! [`Recording`] (polars frames plus the run's manifest) and calls [`analysis::analyze`], the
//! entry point.

pub mod analysis;
pub mod ceiling;
pub mod engine;
pub mod finding;
pub mod findings;
pub mod fit;
pub mod frames;
pub mod gpu_specs;
pub mod gpus_apart;
pub mod history;
pub mod latency_table;
#[doc(hidden)]
pub mod legacy;
pub mod metrics;
pub mod model;
pub mod pd;
pub mod peer;
pub mod rate;
pub mod recording;
pub mod render;
pub mod report;
pub mod result_check;
pub mod roofline;
pub mod step_time;
pub mod summary;
pub mod synthetic;
pub mod terminal;
pub mod tp;
pub mod window;

pub use analysis::{Analysis, AnalysisError, AnalysisOptions, analyze};
pub use finding::{Finding, Severity};
pub use latency_table::render_latency;
pub use recording::{
    ChunkArrival, ChunkKind, LatenessTick, Outcome, Recording, RequestRecord, StepRecord,
};
pub use summary::{StepSummary, summarize_steps};
pub use terminal::render_terminal;
