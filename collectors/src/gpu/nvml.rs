//! NVML through nvml-wrapper: one [`NvmlReading`] of raw driver values per GPU per tick, turned
//! into a [`GpuSample`] by the pure [`sample_from_reading`] (tested with recorded values).
//!
//! Units from NVML: power in mW, energy in mJ since the driver loaded, memory in bytes, clocks
//! in MHz, PCIe throughput in KB/s (1 KB = 1024 bytes, per the NVML header) averaged over a
//! 20 ms window that NVML measures inside the call. Because each PCIe read blocks for ~20 ms,
//! PCIe is off unless [`NvmlSource::with_pcie`] turns it on: at the default 100 ms interval it
//! would dominate the sampling thread on a multi-GPU node.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::{Clock, PcieUtilCounter, TemperatureSensor};

use crate::{GpuInfo, GpuSample};

use super::{GpuError, GpuProcesses, GpuSource};

/// The raw values of one GPU read, as NVML returns them; `None` where the call failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NvmlReading {
    pub util_gpu_pct: Option<u32>,
    pub util_mem_pct: Option<u32>,
    pub mem_used_bytes: Option<u64>,
    pub mem_total_bytes: Option<u64>,
    pub power_mw: Option<u32>,
    pub energy_mj: Option<u64>,
    pub sm_clock_mhz: Option<u32>,
    pub mem_clock_mhz: Option<u32>,
    pub temp_c: Option<u32>,
    pub clock_event_reasons: Option<u64>,
    pub pcie_tx_kb_s: Option<u32>,
    pub pcie_rx_kb_s: Option<u32>,
}

/// Converts one raw read to the stored units.
pub fn sample_from_reading(gpu_index: u32, t_s: f64, r: &NvmlReading) -> GpuSample {
    GpuSample {
        gpu_index,
        t_s,
        util_gpu_pct: r.util_gpu_pct.map(f64::from),
        util_mem_pct: r.util_mem_pct.map(f64::from),
        mem_used_bytes: r.mem_used_bytes,
        mem_total_bytes: r.mem_total_bytes,
        power_w: r.power_mw.map(|mw| f64::from(mw) / 1000.0),
        energy_j: r.energy_mj.map(|mj| mj as f64 / 1000.0),
        sm_clock_mhz: r.sm_clock_mhz,
        mem_clock_mhz: r.mem_clock_mhz,
        temp_c: r.temp_c.map(f64::from),
        throttle_reasons: r.clock_event_reasons,
        pcie_tx_bytes_s: r.pcie_tx_kb_s.map(|kb| f64::from(kb) * 1024.0),
        pcie_rx_bytes_s: r.pcie_rx_kb_s.map(|kb| f64::from(kb) * 1024.0),
        ..GpuSample::default()
    }
}

/// The NVML source: every GPU the driver lists.
pub struct NvmlSource {
    nvml: Nvml,
    count: u32,
    pcie: bool,
}

impl NvmlSource {
    /// Loads the NVML library and counts the GPUs. Fails with [`GpuError::NvmlInit`] where
    /// there is no driver (the library cannot be loaded) and [`GpuError::NoGpu`] where it lists
    /// none.
    pub fn init() -> Result<NvmlSource, GpuError> {
        let nvml = Nvml::init().map_err(|e| GpuError::NvmlInit(e.to_string()))?;
        let count = nvml
            .device_count()
            .map_err(|e| GpuError::NvmlInit(e.to_string()))?;
        if count == 0 {
            return Err(GpuError::NoGpu);
        }
        Ok(NvmlSource {
            nvml,
            count,
            pcie: false,
        })
    }

    /// Also read PCIe TX/RX throughput (about 20 ms per direction per GPU per read).
    pub fn with_pcie(mut self, on: bool) -> NvmlSource {
        self.pcie = on;
        self
    }

    pub fn gpu_count(&self) -> u32 {
        self.count
    }

    /// Reads the raw values of GPU `index`; fields whose call failed are `None`.
    pub fn read(&self, index: u32) -> NvmlReading {
        let Ok(d) = self.nvml.device_by_index(index) else {
            return NvmlReading::default();
        };
        let util = d.utilization_rates().ok();
        let mem = d.memory_info().ok();
        NvmlReading {
            util_gpu_pct: util.as_ref().map(|u| u.gpu),
            util_mem_pct: util.as_ref().map(|u| u.memory),
            mem_used_bytes: mem.as_ref().map(|m| m.used),
            mem_total_bytes: mem.as_ref().map(|m| m.total),
            power_mw: d.power_usage().ok(),
            energy_mj: d.total_energy_consumption().ok(),
            sm_clock_mhz: d.clock_info(Clock::SM).ok(),
            mem_clock_mhz: d.clock_info(Clock::Memory).ok(),
            temp_c: d.temperature(TemperatureSensor::Gpu).ok(),
            clock_event_reasons: d.current_throttle_reasons().ok().map(|r| r.bits()),
            pcie_tx_kb_s: if self.pcie {
                d.pcie_throughput(PcieUtilCounter::Send).ok()
            } else {
                None
            },
            pcie_rx_kb_s: if self.pcie {
                d.pcie_throughput(PcieUtilCounter::Receive).ok()
            } else {
                None
            },
        }
    }
}

impl GpuSource for NvmlSource {
    fn name(&self) -> &str {
        "nvml"
    }

    fn inventory(&mut self) -> Result<Vec<GpuInfo>, GpuError> {
        let driver = self.nvml.sys_driver_version().ok();
        (0..self.count)
            .map(|index| {
                let d = self
                    .nvml
                    .device_by_index(index)
                    .map_err(|e| GpuError::Nvml {
                        index,
                        message: e.to_string(),
                    })?;
                Ok(GpuInfo {
                    index,
                    name: d.name().ok(),
                    uuid: d.uuid().ok(),
                    serial: d.serial().ok(),
                    driver: driver.clone(),
                    mem_total_bytes: d.memory_info().ok().map(|m| m.total),
                    power_limit_w: d
                        .enforced_power_limit()
                        .ok()
                        .map(|mw| f64::from(mw) / 1000.0),
                    max_sm_clock_mhz: d.max_clock_info(Clock::SM).ok(),
                    max_mem_clock_mhz: d.max_clock_info(Clock::Memory).ok(),
                    pci_bus_id: d.pci_info().ok().map(|p| p.bus_id),
                    counted: None,
                    mig: d.mig_mode().ok().map(|m| m.current == 1),
                    // Read with the processes, once the engine's tree is known.
                    compute_pids: None,
                    other_pids: None,
                })
            })
            .collect()
    }

    fn sample(&mut self, t_s: f64) -> Vec<GpuSample> {
        (0..self.count)
            .map(|i| sample_from_reading(i, t_s, &self.read(i)))
            .collect()
    }

    fn compute_processes(&mut self) -> Option<Vec<GpuProcesses>> {
        // A GPU whose list cannot be read makes the whole answer unknown, not "no process".
        (0..self.count)
            .map(|index| {
                let d = self.nvml.device_by_index(index).ok()?;
                let procs = d.running_compute_processes().ok()?;
                Some(GpuProcesses {
                    gpu_index: index,
                    pids: procs.iter().map(|p| p.pid).collect(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw values in the ranges an H100 SXM reports under decode load (80 GiB board, 700 W
    /// cap, 1980 MHz SM, 2619 MHz HBM3, SW power cap bit set). Illustrative, not a capture: the
    /// machine this was written on has no GPU.
    fn h100_reading() -> NvmlReading {
        NvmlReading {
            util_gpu_pct: Some(100),
            util_mem_pct: Some(63),
            mem_used_bytes: Some(83_965_345_792),
            mem_total_bytes: Some(85_520_809_984),
            power_mw: Some(612_340),
            energy_mj: Some(3_187_449_263),
            sm_clock_mhz: Some(1980),
            mem_clock_mhz: Some(2619),
            temp_c: Some(61),
            clock_event_reasons: Some(0x4),
            pcie_tx_kb_s: Some(12_500),
            pcie_rx_kb_s: None,
        }
    }

    #[test]
    fn converts_units() {
        let s = sample_from_reading(3, 1.25, &h100_reading());
        assert_eq!(s.gpu_index, 3);
        assert_eq!(s.t_s, 1.25);
        assert_eq!(s.util_gpu_pct, Some(100.0));
        assert_eq!(s.util_mem_pct, Some(63.0));
        assert_eq!(s.mem_used_bytes, Some(83_965_345_792));
        assert_eq!(s.power_w, Some(612.34));
        assert_eq!(s.energy_j, Some(3_187_449.263));
        assert_eq!(s.sm_clock_mhz, Some(1980));
        assert_eq!(s.temp_c, Some(61.0));
        // 0x4 = SW power cap.
        assert_eq!(s.throttle_reasons, Some(4));
        assert_eq!(s.pcie_tx_bytes_s, Some(12_800_000.0));
        assert_eq!(s.pcie_rx_bytes_s, None);
    }

    #[test]
    fn failed_reads_stay_missing_never_zero() {
        let s = sample_from_reading(0, 0.0, &NvmlReading::default());
        assert_eq!(
            s,
            GpuSample {
                gpu_index: 0,
                t_s: 0.0,
                ..GpuSample::default()
            }
        );
    }

    #[test]
    fn init_without_a_driver_is_a_clear_error() {
        // On a machine with a GPU this succeeds; on one without, the error names the cause.
        match NvmlSource::init() {
            Ok(src) => assert!(src.gpu_count() > 0),
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("NVML"), "{msg}");
            }
        }
    }
}
