//! GPU arguments: which GPUs a probe counts (`--gpus`) and how the simulator's DCGM exporter
//! behaves (`ceiling sim --dcgm-*`).

use std::time::Duration;

use clap::Args;

use crate::exit::Failure;

/// Which GPUs the run counts.
#[derive(Debug, Args)]
pub struct GpuSelectArgs {
    /// The GPUs whose power and readings count for the engine: NVML indices (`0,1`), UUIDs
    /// (`GPU-…,GPU-…`) or PCI bus ids. Default: the GPUs running the engine's processes
    /// (NVML), else all. Every GPU is recorded; the others are shown apart.
    #[arg(long, value_name = "0,1|UUID,...")]
    pub gpus: Option<String>,
}

/// The simulated DCGM exporter at the simulator's `/dcgm`.
#[derive(Debug, Args)]
pub struct SimGpuArgs {
    /// Refresh `/dcgm`'s energy counter only this often, as a DCGM exporter does every
    /// `--collect-interval` (30s by default there); 0s refreshes it on every scrape.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub dcgm_energy_every: Duration,
    /// Serve `/dcgm` in MIG layout with this many instances per GPU (0: MIG off).
    #[arg(long, default_value_t = 0)]
    pub dcgm_mig: u32,
}

impl SimGpuArgs {
    pub fn config(&self) -> Result<ceiling_sim::SimGpu, Failure> {
        if self.dcgm_mig > 7 {
            return Err(Failure::Usage(format!(
                "--dcgm-mig {}: a GPU has at most 7 MIG instances",
                self.dcgm_mig
            )));
        }
        Ok(ceiling_sim::SimGpu {
            energy_every_s: self.dcgm_energy_every.as_secs_f64(),
            mig_instances: self.dcgm_mig,
        })
    }
}
