//! `ceiling-reports`: pure functions from a recording to figures, findings and rendered output.
//!
//! The metric definitions live here, once, with their formulas. This crate has
//! no tokio, no network and no SQLite: the binary loads rows from the store into the types of
//! [`recording`] and calls these functions.

pub mod finding;
pub mod recording;
pub mod render;

pub use finding::{Finding, Severity};
pub use recording::{ChunkArrival, ChunkKind, LatenessTick, Outcome, RequestRecord, StepRecord};
