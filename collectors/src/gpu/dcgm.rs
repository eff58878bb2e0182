//! The DCGM exporter as a GPU source (`--gpu-source dcgm:URL`): its `/metrics` parsed with the
//! crate's Prometheus parser and converted by the pure [`samples_from_exposition`].
//!
//! Field names and units (`docs/ENGINE-METRICS.md` section 4): `DCGM_FI_DEV_GPU_UTIL` and
//! `DCGM_FI_DEV_MEM_COPY_UTIL` in %, `DCGM_FI_DEV_FB_USED` / `_FREE` / `_RESERVED` in **MiB**,
//! `DCGM_FI_DEV_POWER_USAGE` in W, `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` in **mJ**,
//! `DCGM_FI_DEV_SM_CLOCK` / `_MEM_CLOCK` in MHz, `DCGM_FI_DEV_GPU_TEMP` in °C,
//! `DCGM_FI_DEV_CLOCK_THROTTLE_REASONS` / `DCGM_FI_DEV_CLOCKS_EVENT_REASONS` as the NVML bit
//! mask, `DCGM_FI_PROF_PCIE_TX_BYTES` / `_RX_BYTES` in bytes/s. GPUs are keyed by the `gpu`
//! label; series of MIG instances (`GPU_I_ID`) are per instance, not per GPU, and are left out.
//! Old exporters' "blank" sentinels (int64 ≥ 0x7ffffffffffffff0, fp64 ≥ 2^47) are no value.
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

fn gpu_index(s: &MetricSample) -> Option<u32> {
    if s.label("GPU_I_ID").is_some() {
        return None;
    }
    s.label("gpu")?.parse().ok()
}

/// Every per-GPU value of one exposition, by GPU index and field name.
fn by_gpu(samples: &[MetricSample]) -> BTreeMap<u32, BTreeMap<&str, f64>> {
    let mut out: BTreeMap<u32, BTreeMap<&str, f64>> = BTreeMap::new();
    for s in samples {
        if !s.name.starts_with("DCGM_FI_") || is_blank(s.value) {
            continue;
        }
        if let Some(i) = gpu_index(s) {
            out.entry(i)
                .or_default()
                .entry(s.name.as_str())
                .or_insert(s.value);
        }
    }
    out
}

/// One sample per GPU found in a DCGM exporter exposition, stamped `t_s`.
pub fn samples_from_exposition(samples: &[MetricSample], t_s: f64) -> Vec<GpuSample> {
    by_gpu(samples)
        .into_iter()
        .map(|(gpu_index, f)| {
            let get = |name: &str| f.get(name).copied();
            let mib = |name: &str| get(name).map(|v| (v * MIB) as u64);
            let total = match (
                get("DCGM_FI_DEV_FB_USED"),
                get("DCGM_FI_DEV_FB_FREE"),
                get("DCGM_FI_DEV_FB_RESERVED"),
            ) {
                (Some(u), Some(fr), r) => Some(((u + fr + r.unwrap_or(0.0)) * MIB) as u64),
                _ => None,
            };
            GpuSample {
                gpu_index,
                t_s,
                util_gpu_pct: get("DCGM_FI_DEV_GPU_UTIL"),
                util_mem_pct: get("DCGM_FI_DEV_MEM_COPY_UTIL"),
                mem_used_bytes: mib("DCGM_FI_DEV_FB_USED"),
                mem_total_bytes: total,
                power_w: get("DCGM_FI_DEV_POWER_USAGE"),
                energy_j: get("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION").map(|mj| mj / 1000.0),
                sm_clock_mhz: get("DCGM_FI_DEV_SM_CLOCK").map(|v| v as u32),
                mem_clock_mhz: get("DCGM_FI_DEV_MEM_CLOCK").map(|v| v as u32),
                temp_c: get("DCGM_FI_DEV_GPU_TEMP"),
                throttle_reasons: get("DCGM_FI_DEV_CLOCKS_EVENT_REASONS")
                    .or_else(|| get("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"))
                    .map(|v| v as u64),
                pcie_tx_bytes_s: get("DCGM_FI_PROF_PCIE_TX_BYTES"),
                pcie_rx_bytes_s: get("DCGM_FI_PROF_PCIE_RX_BYTES"),
            }
        })
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
        info.driver = info
            .driver
            .take()
            .or_else(|| label("DCGM_FI_DRIVER_VERSION"));
        if s.name == "DCGM_FI_DEV_POWER_MGMT_LIMIT" && !is_blank(s.value) {
            info.power_limit_w = Some(s.value);
        }
    }
    let by_gpu = by_gpu(samples);
    for (i, info) in &mut out {
        if let Some(f) = by_gpu.get(i)
            && let (Some(u), Some(fr)) =
                (f.get("DCGM_FI_DEV_FB_USED"), f.get("DCGM_FI_DEV_FB_FREE"))
        {
            let r = f.get("DCGM_FI_DEV_FB_RESERVED").copied().unwrap_or(0.0);
            info.mem_total_bytes = Some(((u + fr + r) * MIB) as u64);
        }
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
    fn mig_instance_series_are_not_gpu_readings() {
        let s = from("dcgm-exporter-a100-mig-dra166.prom");
        assert!(samples_from_exposition(&s, 0.0).is_empty());
        assert_eq!(
            inventory_from_exposition(&s)[0].name.as_deref(),
            Some("NVIDIA A100 80GB PCIe")
        );
    }

    #[test]
    fn blank_sentinel_is_no_value() {
        let s = from("dcgm-exporter-readme-illustrative.prom");
        let g = samples_from_exposition(&s, 0.0);
        assert_eq!(g[0].sm_clock_mhz, Some(139));
        // DCGM_FI_DEV_MEMORY_TEMP 9223372036854775794 is DCGM's int64 blank.
        assert!(!by_gpu(&s)[&0].contains_key("DCGM_FI_DEV_MEMORY_TEMP"));
        assert!(by_gpu(&s)[&0].contains_key("DCGM_FI_DEV_MEM_CLOCK"));
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
