//! The DCGM exporter as a GPU source (`--gpu-source dcgm:URL`): its `/metrics` parsed with the
//! crate's Prometheus parser and converted by the pure [`samples_from_exposition`].
//!
//! Field names and units (`docs/ENGINE-METRICS.md` section 4): `DCGM_FI_DEV_GPU_UTIL` and
//! `DCGM_FI_DEV_MEM_COPY_UTIL` in %, `DCGM_FI_DEV_FB_USED` / `_FREE` / `_RESERVED` / `_TOTAL` in
//! **MiB**, `DCGM_FI_DEV_POWER_USAGE` in W, `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` in **mJ**,
//! `DCGM_FI_DEV_SM_CLOCK` / `_MEM_CLOCK` in MHz, `DCGM_FI_DEV_GPU_TEMP` in °C,
//! `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS` / `DCGM_FI_DEV_CLOCKS_EVENT_REASONS` as the NVML bit
//! mask, `DCGM_FI_PROF_PCIE_TX_BYTES` / `_RX_BYTES` in bytes/s, the other `DCGM_FI_PROF_*` as
//! ratios 0–1. DCGM 4.6's renamed fields are read beside the old names:
//! `DCGM_FI_DEV_GPU_UTIL_RATIO` (0–1, stored as %), `DCGM_FI_DEV_BOARD_POWER_WATTS`,
//! `DCGM_FI_DEV_GPU_TEMP_CELSIUS`. The total framebuffer is `FB_TOTAL` where `FB_RESERVED` is
//! not exported, else `USED + FREE + RESERVED`.
//!
//! GPUs are keyed by the `gpu` label. In MIG mode every series carries `GPU_I_ID`, and the
//! exporter repeats each device-level field (power, energy, clocks, temperature) once per
//! instance, each with the whole GPU's value read at a slightly different instant (dcgm-exporter
//! issue 317): those are taken **once per GPU**, from the lowest instance id, never summed.
//! Framebuffer and profiling fields are per instance and become one reading per instance
//! ([`GpuSample::mig_instance`]). Old exporters' "blank" sentinels (int64 ≥ 0x7ffffffffffffff0,
//! fp64 ≥ 2^47) are no value.
//!
//! The exporter refreshes every `--collect-interval` (30 s by default): sampling it faster
//! repeats values. The HTTP GET runs with `Handle::block_on` on the sampler's own thread, so the
//! source must not be read from inside the async runtime (use `spawn_blocking`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::prometheus::{Scraper, parse};
use crate::{GpuInfo, GpuSample, MetricSample};

use super::{GpuError, GpuSource};

const MIB: f64 = 1024.0 * 1024.0;

/// DCGM's int64 blank values start at 0x7ffffffffffffff0; its fp64 blanks at 2^47.
fn is_blank(v: f64) -> bool {
    !v.is_finite() || v >= 140_737_488_355_328.0
}

/// Fields a MIG instance has of its own: its framebuffer and the profiling counters.
fn per_instance(name: &str) -> bool {
    name.starts_with("DCGM_FI_PROF_") || name.starts_with("DCGM_FI_DEV_FB_")
}

/// A reading's key: the GPU, and the MIG instance for a per-instance field.
type Key = (u32, Option<u32>);

/// Every value of one exposition by reading (GPU, MIG instance) and field name. A device-level
/// field repeated per MIG instance is kept once, from the lowest instance id (a series without
/// `GPU_I_ID` comes first).
fn readings(samples: &[MetricSample]) -> BTreeMap<Key, BTreeMap<&str, f64>> {
    let mut out: BTreeMap<Key, BTreeMap<&str, (Option<u32>, f64)>> = BTreeMap::new();
    for s in samples {
        if !s.name.starts_with("DCGM_FI_") || is_blank(s.value) {
            continue;
        }
        let Some(gpu) = s.label("gpu").and_then(|g| g.parse().ok()) else {
            continue;
        };
        let instance: Option<u32> = s.label("GPU_I_ID").and_then(|i| i.parse().ok());
        let key = (gpu, instance.filter(|_| per_instance(&s.name)));
        let slot = out.entry(key).or_default().entry(&*s.name);
        slot.and_modify(|kept| {
            if instance < kept.0 {
                *kept = (instance, s.value);
            }
        })
        .or_insert((instance, s.value));
    }
    out.into_iter()
        .map(|(k, f)| (k, f.into_iter().map(|(n, (_, v))| (n, v)).collect()))
        .collect()
}

/// The total framebuffer in MiB: `FB_TOTAL` where `FB_RESERVED` is absent, else
/// `USED + FREE + RESERVED`.
fn fb_total_mib(f: &BTreeMap<&str, f64>) -> Option<f64> {
    let get = |name: &str| f.get(name).copied();
    match (
        get("DCGM_FI_DEV_FB_USED"),
        get("DCGM_FI_DEV_FB_FREE"),
        get("DCGM_FI_DEV_FB_RESERVED"),
    ) {
        (Some(u), Some(fr), Some(r)) => Some(u + fr + r),
        (u, fr, None) => get("DCGM_FI_DEV_FB_TOTAL").or(u.zip(fr).map(|(u, fr)| u + fr)),
        _ => get("DCGM_FI_DEV_FB_TOTAL"),
    }
}

/// One reading of a GPU (or of one of its MIG instances) from its fields.
fn sample_from_fields(
    (gpu_index, mig_instance): Key,
    f: &BTreeMap<&str, f64>,
    t_s: f64,
) -> GpuSample {
    let get = |name: &str| f.get(name).copied();
    let either = |old: &str, new: &str| get(old).or_else(|| get(new));
    let mib = |v: f64| (v * MIB) as u64;
    GpuSample {
        gpu_index,
        t_s,
        util_gpu_pct: get("DCGM_FI_DEV_GPU_UTIL")
            .or_else(|| get("DCGM_FI_DEV_GPU_UTIL_RATIO").map(|r| r * 100.0)),
        util_mem_pct: get("DCGM_FI_DEV_MEM_COPY_UTIL"),
        mem_used_bytes: get("DCGM_FI_DEV_FB_USED").map(mib),
        mem_total_bytes: fb_total_mib(f).map(mib),
        power_w: either("DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_BOARD_POWER_WATTS"),
        energy_j: get("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION").map(|mj| mj / 1000.0),
        sm_clock_mhz: get("DCGM_FI_DEV_SM_CLOCK").map(|v| v as u32),
        mem_clock_mhz: get("DCGM_FI_DEV_MEM_CLOCK").map(|v| v as u32),
        temp_c: either("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_TEMP_CELSIUS"),
        throttle_reasons: either(
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
        )
        .map(|v| v as u64),
        pcie_tx_bytes_s: get("DCGM_FI_PROF_PCIE_TX_BYTES"),
        pcie_rx_bytes_s: get("DCGM_FI_PROF_PCIE_RX_BYTES"),
        mig_instance,
        gr_engine_active: get("DCGM_FI_PROF_GR_ENGINE_ACTIVE"),
        sm_active: get("DCGM_FI_PROF_SM_ACTIVE"),
        sm_occupancy: get("DCGM_FI_PROF_SM_OCCUPANCY"),
        dram_active: get("DCGM_FI_PROF_DRAM_ACTIVE"),
        tensor_active: get("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"),
    }
}

/// The readings of a DCGM exporter exposition, stamped `t_s`: one per GPU with a device-level
/// field, and in MIG mode one per instance with a per-instance field.
pub fn samples_from_exposition(samples: &[MetricSample], t_s: f64) -> Vec<GpuSample> {
    readings(samples)
        .iter()
        .map(|(key, f)| sample_from_fields(*key, f, t_s))
        .collect()
}

/// The GPUs of a DCGM exposition, from its labels (`modelName`, `UUID`,
/// `DCGM_FI_DRIVER_VERSION`) and `DCGM_FI_DEV_POWER_MGMT_LIMIT`.
pub fn inventory_from_exposition(samples: &[MetricSample]) -> Vec<GpuInfo> {
    let mut out: BTreeMap<u32, GpuInfo> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name.starts_with("DCGM_")) {
        let Some(index) = s.label("gpu").and_then(|g| g.parse().ok()) else {
            continue;
        };
        let info = out.entry(index).or_insert_with(|| GpuInfo {
            index,
            ..GpuInfo::default()
        });
        let label = |k: &str| s.label(k).map(str::to_string);
        info.name = info.name.take().or_else(|| label("modelName"));
        info.uuid = info.uuid.take().or_else(|| label("UUID"));
        info.pci_bus_id = info.pci_bus_id.take().or_else(|| label("pci_bus_id"));
        if s.label("GPU_I_ID").is_some() {
            info.mig = Some(true);
        }
        info.driver = info
            .driver
            .take()
            .or_else(|| label("DCGM_FI_DRIVER_VERSION"));
        if &*s.name == "DCGM_FI_DEV_POWER_MGMT_LIMIT" && !is_blank(s.value) {
            info.power_limit_w = Some(s.value);
        }
    }
    // The whole GPU's framebuffer; a MIG GPU exports only its instances', so it stays unknown.
    let readings = readings(samples);
    for (i, info) in &mut out {
        info.mem_total_bytes = readings
            .get(&(*i, None))
            .and_then(fb_total_mib)
            .map(|v| (v * MIB) as u64);
    }
    out.into_values().collect()
}

/// A DCGM exporter read over HTTP from the sampler thread.
pub struct DcgmSource {
    name: String,
    scraper: Scraper,
    runtime: tokio::runtime::Handle,
}

impl DcgmSource {
    /// `url` is the exporter's metrics URL (e.g. `http://host:9400/metrics`); `runtime` runs
    /// the requests, from the calling (non-runtime) thread.
    pub fn new(
        client: reqwest::Client,
        url: &str,
        timeout: Duration,
        runtime: tokio::runtime::Handle,
    ) -> DcgmSource {
        DcgmSource {
            name: format!("dcgm:{url}"),
            scraper: Scraper::new(client, url, timeout),
            runtime,
        }
    }

    fn fetch(&self) -> Result<Vec<MetricSample>, GpuError> {
        let (_, text) = self
            .runtime
            .block_on(self.scraper.fetch())
            .map_err(|(_, message)| GpuError::Dcgm {
                url: self.scraper.url().to_string(),
                message,
            })?;
        Ok(parse(&text).samples)
    }
}

impl GpuSource for DcgmSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn inventory(&mut self) -> Result<Vec<GpuInfo>, GpuError> {
        let inv = inventory_from_exposition(&self.fetch()?);
        if inv.is_empty() {
            return Err(GpuError::Dcgm {
                url: self.scraper.url().to_string(),
                message: "no DCGM_FI_* series with a `gpu` label".into(),
            });
        }
        Ok(inv)
    }

    fn sample(&mut self, t_s: f64) -> Vec<GpuSample> {
        // A failed fetch yields no rows for this tick: the GPUs are unknown, not zero.
        self.fetch()
            .map(|s| samples_from_exposition(&s, t_s))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::tests::fixture;

    fn from(name: &str) -> Vec<MetricSample> {
        parse(&fixture(name)).samples
    }

    #[test]
    fn h100_capture_clocks_and_inventory() {
        let s = from("dcgm-exporter-3.3.8-3.6.0-h100-digitalocean.prom");
        let g = samples_from_exposition(&s, 2.0);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].gpu_index, 0);
        assert_eq!(g[0].t_s, 2.0);
        assert_eq!(g[0].sm_clock_mhz, Some(345));
        assert_eq!(g[0].mem_clock_mhz, Some(2619));
        assert_eq!(g[0].power_w, None);
        let inv = inventory_from_exposition(&s);
        assert_eq!(inv[0].name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(inv[0].driver.as_deref(), Some("535.183.01"));
        assert_eq!(
            inv[0].uuid.as_deref(),
            Some("GPU-927d7444-b45a-7c49-8402-5e686e46a026")
        );
    }

    #[test]
    fn v100_capture_four_gpus_power_limit_and_util() {
        let s = from("dcgm-exporter-3.x-v100-issue250.prom");
        let inv = inventory_from_exposition(&s);
        assert_eq!(inv.len(), 4);
        assert_eq!(inv[2].power_limit_w, Some(300.0));
        assert_eq!(inv[3].name.as_deref(), Some("Tesla V100-SXM2-32GB"));
        let g = samples_from_exposition(&s, 0.0);
        assert_eq!(
            g.iter()
                .find(|g| g.gpu_index == 0)
                .and_then(|g| g.util_gpu_pct),
            Some(0.0)
        );
    }

    #[test]
    fn mig_gr_engine_only_gives_one_reading_per_instance() {
        // Three 1g.10gb instances of one A100, only GR_ENGINE_ACTIVE exported.
        let s = from("dcgm-exporter-a100-mig-dra166.prom");
        let g = samples_from_exposition(&s, 0.0);
        let got: Vec<(u32, Option<u32>, Option<f64>)> = g
            .iter()
            .map(|g| (g.gpu_index, g.mig_instance, g.gr_engine_active))
            .collect();
        assert_eq!(
            got,
            [
                (0, Some(8), Some(0.029399)),
                (0, Some(9), Some(0.033893)),
                (0, Some(10), Some(0.0))
            ]
        );
        assert!(g.iter().all(|g| g.power_w.is_none()));
        assert_eq!(
            inventory_from_exposition(&s)[0].name.as_deref(),
            Some("NVIDIA A100 80GB PCIe")
        );
    }

    #[test]
    fn mig_device_fields_are_taken_once_per_gpu_never_summed() {
        // A30s in MIG mode: power, energy and clocks repeated on each of four instances.
        let s = from("dcgm-exporter-a30-mig-issue317.prom");
        let g = samples_from_exposition(&s, 1.0);
        let whole: Vec<&GpuSample> = g.iter().filter(|g| g.mig_instance.is_none()).collect();
        assert_eq!(whole.len(), 2, "one whole-GPU reading per gpu");
        // Lowest instance id (3): 52.636 W, not 4 × 52.7 W.
        assert_eq!(whole[0].power_w, Some(52.636));
        assert_eq!(whole[0].energy_j, Some(126_272_101.025));
        assert_eq!(whole[0].mem_clock_mhz, Some(1215));
        assert_eq!(whole[0].mem_used_bytes, None, "framebuffer is per instance");
        assert_eq!((whole[1].gpu_index, whole[1].power_w), (1, Some(56.121)));
        // FB_FREE (6012 MiB per 1g.6gb instance) makes one reading per instance; FREE alone is
        // neither a use nor a total, and the device-level fields are not repeated there.
        let inst: Vec<(u32, Option<u32>)> = g
            .iter()
            .filter(|g| g.mig_instance.is_some())
            .map(|g| (g.gpu_index, g.mig_instance))
            .collect();
        assert_eq!(
            inst,
            [
                (0, Some(3)),
                (0, Some(4)),
                (0, Some(5)),
                (0, Some(6)),
                (1, Some(3)),
                (1, Some(4))
            ]
        );
        assert!(
            g.iter()
                .filter(|g| g.mig_instance.is_some())
                .all(|g| g.power_w.is_none() && g.mem_total_bytes.is_none())
        );
        // The whole GPU's memory is not known from its instances'.
        let inv = inventory_from_exposition(&s);
        assert_eq!((inv[0].mem_total_bytes, inv[0].mig), (None, Some(true)));
    }

    #[test]
    fn dcgm_4_6_names_and_fb_total() {
        let e = parse(
            "DCGM_FI_DEV_GPU_UTIL_RATIO{gpu=\"0\"} 0.42\n\
             DCGM_FI_DEV_BOARD_POWER_WATTS{gpu=\"0\"} 301.5\n\
             DCGM_FI_DEV_GPU_TEMP_CELSIUS{gpu=\"0\"} 61\n\
             DCGM_FI_DEV_FB_USED{gpu=\"0\"} 1000\n\
             DCGM_FI_DEV_FB_FREE{gpu=\"0\"} 2000\n\
             DCGM_FI_DEV_FB_TOTAL{gpu=\"0\"} 3500\n\
             DCGM_FI_DEV_GPU_UTIL{gpu=\"1\"} 40\n\
             DCGM_FI_DEV_GPU_UTIL_RATIO{gpu=\"1\"} 0.9\n\
             DCGM_FI_DEV_FB_USED{gpu=\"1\"} 1000\n\
             DCGM_FI_DEV_FB_FREE{gpu=\"1\"} 2000\n\
             DCGM_FI_DEV_FB_RESERVED{gpu=\"1\"} 400\n\
             DCGM_FI_DEV_FB_TOTAL{gpu=\"1\"} 3500\n",
        );
        let g = samples_from_exposition(&e.samples, 0.0);
        assert_eq!(g[0].util_gpu_pct, Some(42.0));
        assert_eq!(g[0].power_w, Some(301.5));
        assert_eq!(g[0].temp_c, Some(61.0));
        assert_eq!(g[0].mem_total_bytes, Some(3500 * 1024 * 1024), "FB_TOTAL");
        // The old name wins where both are exported; RESERVED present → USED + FREE + RESERVED.
        assert_eq!(g[1].util_gpu_pct, Some(40.0));
        assert_eq!(g[1].mem_total_bytes, Some(3400 * 1024 * 1024));
    }

    #[test]
    fn profiling_ratios_of_a_whole_gpu() {
        let e = parse(
            "DCGM_FI_PROF_SM_ACTIVE{gpu=\"0\"} 0.93\n\
             DCGM_FI_PROF_SM_OCCUPANCY{gpu=\"0\"} 0.31\n\
             DCGM_FI_PROF_DRAM_ACTIVE{gpu=\"0\"} 0.82\n\
             DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{gpu=\"0\"} 0.12\n\
             DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu=\"0\"} 0.97\n",
        );
        let g = samples_from_exposition(&e.samples, 0.0);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].mig_instance, None);
        assert_eq!(
            (
                g[0].sm_active,
                g[0].sm_occupancy,
                g[0].dram_active,
                g[0].tensor_active,
                g[0].gr_engine_active
            ),
            (Some(0.93), Some(0.31), Some(0.82), Some(0.12), Some(0.97))
        );
    }

    #[test]
    fn blank_sentinel_is_no_value() {
        let s = from("dcgm-exporter-readme-illustrative.prom");
        let g = samples_from_exposition(&s, 0.0);
        assert_eq!(g[0].sm_clock_mhz, Some(139));
        // DCGM_FI_DEV_MEMORY_TEMP 9223372036854775794 is DCGM's int64 blank.
        assert!(!readings(&s)[&(0, None)].contains_key("DCGM_FI_DEV_MEMORY_TEMP"));
        assert!(readings(&s)[&(0, None)].contains_key("DCGM_FI_DEV_MEM_CLOCK"));
    }

    #[test]
    fn units_mib_and_millijoules() {
        let e = parse(
            "DCGM_FI_DEV_FB_USED{gpu=\"1\",UUID=\"u\"} 1024\n\
             DCGM_FI_DEV_FB_FREE{gpu=\"1\",UUID=\"u\"} 80000\n\
             DCGM_FI_DEV_FB_RESERVED{gpu=\"1\",UUID=\"u\"} 512\n\
             DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"1\",UUID=\"u\",pod=\"p\"} 123456789\n\
             DCGM_FI_DEV_POWER_USAGE{gpu=\"1\",UUID=\"u\"} 312.5\n\
             DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"u\"} 55\n\
             DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu=\"1\",UUID=\"u\"} 4\n\
             DCGM_FI_PROF_PCIE_TX_BYTES{gpu=\"1\",UUID=\"u\"} 1e6\n",
        );
        let g = samples_from_exposition(&e.samples, 0.0);
        assert_eq!(g[0].gpu_index, 1);
        assert_eq!(g[0].mem_used_bytes, Some(1024 * 1024 * 1024));
        assert_eq!(g[0].mem_total_bytes, Some(81_536 * 1024 * 1024));
        assert_eq!(g[0].energy_j, Some(123_456.789));
        assert_eq!(g[0].power_w, Some(312.5));
        assert_eq!(g[0].temp_c, Some(55.0));
        assert_eq!(g[0].throttle_reasons, Some(4));
        assert_eq!(g[0].pcie_tx_bytes_s, Some(1e6));
        assert_eq!(g[0].util_gpu_pct, None);
    }
}
