//! The one integration-test binary (one binary, so polars links once). Each module drives the
//! real `ceiling` binary or its library end to end.

mod cli;
mod html_render;
mod store_crash;
