//! The raw sample types every source yields and the store records: one GPU reading, one scraped
//! metric sample, one scrape. A value that could not be read is `None` (stored as NULL), never 0.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One reading of one GPU, stamped with the instant it was taken (seconds from the run's start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub gpu_index: u32,
    pub t_s: f64,
    pub util_gpu_pct: Option<f64>,
    pub util_mem_pct: Option<f64>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub power_w: Option<f64>,
    /// Total energy counter since the driver loaded, in joules.
    pub energy_j: Option<f64>,
    pub sm_clock_mhz: Option<u32>,
    pub mem_clock_mhz: Option<u32>,
    pub temp_c: Option<f64>,
    /// NVML clock-event (throttle) reason bit mask.
    pub throttle_reasons: Option<u64>,
    pub pcie_tx_bytes_s: Option<f64>,
    pub pcie_rx_bytes_s: Option<f64>,
    /// The MIG GPU instance (DCGM's `GPU_I_ID`) a per-instance reading belongs to; `None` for a
    /// reading of the whole GPU. A MIG instance's reading carries only per-instance fields
    /// (framebuffer, profiling ratios); the whole GPU's fields are on its `None` reading.
    #[serde(default)]
    pub mig_instance: Option<u32>,
    /// DCGM profiling ratios (0–1) over the exporter's last sampling interval:
    /// `DCGM_FI_PROF_GR_ENGINE_ACTIVE`, `_SM_ACTIVE`, `_SM_OCCUPANCY`, `_DRAM_ACTIVE`,
    /// `_PIPE_TENSOR_ACTIVE`.
    #[serde(default)]
    pub gr_engine_active: Option<f64>,
    #[serde(default)]
    pub sm_active: Option<f64>,
    #[serde(default)]
    pub sm_occupancy: Option<f64>,
    #[serde(default)]
    pub dram_active: Option<f64>,
    #[serde(default)]
    pub tensor_active: Option<f64>,
}

/// What is known of one GPU for the run's manifest and the nightly history's keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    pub index: u32,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub serial: Option<String>,
    pub driver: Option<String>,
    pub mem_total_bytes: Option<u64>,
    pub power_limit_w: Option<f64>,
    pub max_sm_clock_mhz: Option<u32>,
    pub max_mem_clock_mhz: Option<u32>,
    /// `00000000:18:00.0`, as NVML and the DCGM exporter's `pci_bus_id` label spell it.
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    /// Whether the run counts this GPU (`gpu::select`): its power is charged to the engine's
    /// tokens and its readings are in the step figures. `None` in runs recorded before the
    /// choice existed: every GPU counts.
    #[serde(default)]
    pub counted: Option<bool>,
    /// MIG mode is on (NVML's current mode; for a DCGM exporter, series with `GPU_I_ID`).
    #[serde(default)]
    pub mig: Option<bool>,
    /// The compute processes NVML listed on this GPU as the run started; `None` where the
    /// source cannot list them (a DCGM exporter, an nvidia-smi log).
    #[serde(default)]
    pub compute_pids: Option<Vec<u32>>,
    /// Of those, the ones outside the engine's process tree, where the engine is local and
    /// its tree was found ([`crate::gpu::select::local_listener_pids`]): another job sharing
    /// the GPU. `None` where the engine's processes could not be told apart.
    #[serde(default)]
    pub other_pids: Option<Vec<u32>>,
}

/// A sample's labels, `(name, value)` sorted by name so equal series compare equal. Shared: every
/// scrape of an engine repeats the series of the one before it, and a repeated series shares its
/// name and labels with the previous scrape's instead of copying them
/// ([`crate::prometheus::parse_after`]).
pub type Labels = Arc<[(Arc<str>, Arc<str>)]>;

/// One sample of a scraped exposition, with the name and labels exactly as exposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    pub name: Arc<str>,
    pub labels: Labels,
    pub value: f64,
}

impl MetricSample {
    /// The value of label `key`, if the sample has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }
}

/// One scrape of an engine's `/metrics`: when it started, how long it took, what came back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScrapeRecord {
    /// Sequence number of the scrape within the run, from 0.
    pub seq: u64,
    pub t_s: f64,
    pub duration_s: Option<f64>,
    pub http_status: Option<u16>,
    /// Why the scrape failed or was partly malformed; `None` for a clean scrape.
    pub error: Option<String>,
    pub samples: Vec<MetricSample>,
    /// Taken at a boundary the probe asked for (between steps or waves), not on the interval:
    /// such a scrape lands when the engine is idle, so time averages leave it out.
    #[serde(default)]
    pub boundary: bool,
}
