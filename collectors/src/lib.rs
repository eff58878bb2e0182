//! `ceiling-collectors`: the sources of data that `ceiling` records while a probe runs — the
//! engine's Prometheus `/metrics` (parser, scraper, engine adapters) and the GPUs (NVML, DCGM
//! exporter, nvidia-smi logs).
//!
//! This crate only reads and converts. It never prints, never touches SQLite and knows nothing
//! about the command line; the binary wires its sources into a run and records what they yield.

pub mod engines;
pub mod gpu;
pub mod prometheus;
pub mod sample;

pub use engines::{Flavor, Signals};
pub use sample::{GpuInfo, GpuSample, Labels, MetricSample, ScrapeRecord};
