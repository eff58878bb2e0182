//! The one integration-test binary (one binary, so polars links once). Each module drives the
//! real `ceiling` binary or its library end to end.

mod analyze;
mod cli;
mod collectors;
mod compare;
mod exit_codes;
mod gpu_view;
mod grid;
mod hostile;
mod html_render;
mod import;
mod leaks;
mod lengths;
mod llamacpp;
mod nightly;
mod probe;
mod rate;
mod report;
mod results_report;
mod roofline;
mod search;
mod sim;
mod store_crash;
