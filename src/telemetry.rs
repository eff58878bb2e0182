//! The run's telemetry: the engine `/metrics` scraper and the GPU sampler, started for the whole
//! run and stopped at its end, feeding the store's writer. Lost telemetry is a warning and NULL
//! data, unless `--require-metrics` / `--require-gpu`.

use std::time::Instant;

use ceiling_collectors::GpuInfo;

use crate::config::ProbeConfig;
use crate::probe::EngineInfo;
use crate::store::Writer;

/// The telemetry tasks of one run.
pub struct Telemetry {
    gpus: Option<Vec<GpuInfo>>,
}

impl Telemetry {
    /// Starts what `cfg` asks for. Until the collectors land this records nothing.
    pub async fn start(
        _cfg: &ProbeConfig,
        _info: &EngineInfo,
        _http: &reqwest::Client,
        _t0: Instant,
        _writer: Writer,
    ) -> anyhow::Result<Telemetry> {
        Ok(Telemetry { gpus: None })
    }

    /// The GPU inventory, once the sampler has read it.
    pub fn gpu_inventory(&self) -> Option<&[GpuInfo]> {
        self.gpus.as_deref()
    }

    /// Stops every task and waits until their last records are sent.
    pub async fn stop(self) {}
}
