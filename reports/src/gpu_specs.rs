//! Datasheet figures of common GPUs, keyed by the name NVML reports, for the roofline.
//!
//! Every figure is a vendor's peak: HBM (or GDDR) bandwidth, **dense** tensor FLOPS (datasheets
//! print the 2:4-sparsity figure first; we halve it), and memory as printed (decimal GB). Real
//! kernels reach perhaps 80–90 % of the bandwidth, so a measured step near `t_min` is as good as
//! it gets. Each row says where its figures come from; [`GpuSpecOverride`] replaces any of them
//! (the CLI's `--hbm-bw-gbs`, `--peak-tflops`). This module reads no devices.

use serde::Serialize;

/// One GPU's peak figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSpec {
    /// Our name for the part, e.g. `H100 SXM`.
    pub name: String,
    pub hbm_bandwidth_bytes_per_s: f64,
    /// Dense bf16 tensor FLOPS with fp32 accumulation.
    pub bf16_dense_flops: f64,
    /// Dense fp8 tensor FLOPS; None where the part has no fp8 tensor cores.
    pub fp8_dense_flops: Option<f64>,
    pub memory_bytes: u64,
    /// Where the figures come from.
    pub source: String,
}

/// Field-by-field replacements for a [`GpuSpec`], or the whole of one for a GPU not in the
/// table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuSpecOverride {
    pub hbm_bandwidth_bytes_per_s: Option<f64>,
    pub bf16_dense_flops: Option<f64>,
    pub fp8_dense_flops: Option<f64>,
    pub memory_bytes: Option<u64>,
}

impl GpuSpecOverride {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl GpuSpec {
    /// This spec with the given fields replaced; `source` says which.
    pub fn with_overrides(mut self, o: &GpuSpecOverride) -> Self {
        let mut changed = Vec::new();
        if let Some(v) = o.hbm_bandwidth_bytes_per_s {
            self.hbm_bandwidth_bytes_per_s = v;
            changed.push("bandwidth");
        }
        if let Some(v) = o.bf16_dense_flops {
            self.bf16_dense_flops = v;
            changed.push("bf16 FLOPS");
        }
        if let Some(v) = o.fp8_dense_flops {
            self.fp8_dense_flops = Some(v);
            changed.push("fp8 FLOPS");
        }
        if let Some(v) = o.memory_bytes {
            self.memory_bytes = v;
            changed.push("memory");
        }
        if !changed.is_empty() {
            self.source = format!("{}; overridden: {}", self.source, changed.join(", "));
        }
        self
    }

    /// A spec built only from overrides, for a GPU the table lacks; None unless bandwidth and
    /// bf16 FLOPS are both given.
    pub fn from_overrides(name: &str, o: &GpuSpecOverride) -> Option<Self> {
        Some(GpuSpec {
            name: name.to_string(),
            hbm_bandwidth_bytes_per_s: o.hbm_bandwidth_bytes_per_s?,
            bf16_dense_flops: o.bf16_dense_flops?,
            fp8_dense_flops: o.fp8_dense_flops,
            memory_bytes: o.memory_bytes.unwrap_or(0),
            source: "given on the command line".into(),
        })
    }
}

/// A row of the table: the tokens an NVML name must contain, and the figures in the units
/// datasheets print (TB/s, TFLOPS, GB).
#[derive(Debug, Clone, Copy)]
pub struct GpuRow {
    pub name: &'static str,
    /// Lower-case tokens that must all appear in the normalized NVML name.
    pub tokens: &'static [&'static str],
    pub bandwidth_tb_s: f64,
    pub bf16_dense_tflops: f64,
    pub fp8_dense_tflops: Option<f64>,
    pub memory_gb: f64,
    pub source: &'static str,
}

impl GpuRow {
    pub fn spec(&self) -> GpuSpec {
        GpuSpec {
            name: self.name.to_string(),
            hbm_bandwidth_bytes_per_s: self.bandwidth_tb_s * 1e12,
            bf16_dense_flops: self.bf16_dense_tflops * 1e12,
            fp8_dense_flops: self.fp8_dense_tflops.map(|t| t * 1e12),
            memory_bytes: (self.memory_gb * 1e9) as u64,
            source: self.source.to_string(),
        }
    }
}

const fn row(
    name: &'static str,
    tokens: &'static [&'static str],
    bandwidth_tb_s: f64,
    bf16_dense_tflops: f64,
    fp8_dense_tflops: Option<f64>,
    memory_gb: f64,
    source: &'static str,
) -> GpuRow {
    GpuRow {
        name,
        tokens,
        bandwidth_tb_s,
        bf16_dense_tflops,
        fp8_dense_tflops,
        memory_gb,
        source,
    }
}

/// The table, most specific first: the first row whose tokens all appear wins.
#[rustfmt::skip]
pub const GPU_TABLE: &[GpuRow] = &[
    row("GH200 144GB HBM3e", &["gh200", "hbm3e"], 4.9, 989.5, Some(1979.0), 144.0,
        "NVIDIA GH200 Grace Hopper Superchip datasheet (HBM3e variant); FLOPS as H100 SXM"),
    row("GH200 96GB", &["gh200"], 4.0, 989.5, Some(1979.0), 96.0,
        "NVIDIA GH200 Grace Hopper Superchip datasheet (480GB LPDDR5X + 96GB HBM3); FLOPS as H100 SXM"),
    row("H100 PCIe", &["h100", "pcie"], 2.0, 756.5, Some(1513.0), 80.0,
        "NVIDIA H100 datasheet, PCIe column (1,513 / 3,026 TFLOPS with sparsity, halved)"),
    row("H100 NVL", &["h100", "nvl"], 3.9, 835.5, Some(1670.5), 94.0,
        "NVIDIA H100 datasheet, NVL column (1,671 / 3,341 TFLOPS with sparsity, halved)"),
    row("H100 SXM", &["h100"], 3.35, 989.5, Some(1979.0), 80.0,
        "NVIDIA H100 datasheet, SXM column (1,979 / 3,958 TFLOPS with sparsity, halved)"),
    row("H200 NVL", &["h200", "nvl"], 4.8, 835.5, Some(1670.5), 141.0,
        "NVIDIA H200 datasheet, NVL column (with sparsity, halved)"),
    row("H200 SXM", &["h200"], 4.8, 989.5, Some(1979.0), 141.0,
        "NVIDIA H200 datasheet, SXM column (1,979 / 3,958 TFLOPS with sparsity, halved)"),
    row("H20", &["h20"], 4.0, 148.0, Some(296.0), 96.0,
        "NVIDIA H20 product brief (dense figures)"),
    row("A100 PCIe 80GB", &["a100", "pcie", "80gb"], 1.935, 312.0, None, 80.0,
        "NVIDIA A100 datasheet, 80GB PCIe column (dense)"),
    row("A100 PCIe 40GB", &["a100", "pcie"], 1.555, 312.0, None, 40.0,
        "NVIDIA A100 datasheet, 40GB PCIe column (dense)"),
    row("A100 SXM 80GB", &["a100", "80gb"], 2.039, 312.0, None, 80.0,
        "NVIDIA A100 datasheet, 80GB SXM column (dense)"),
    row("A100 SXM 40GB", &["a100"], 1.555, 312.0, None, 40.0,
        "NVIDIA A100 datasheet, 40GB SXM column (dense)"),
    row("L40S", &["l40s"], 0.864, 362.05, Some(733.0), 48.0,
        "NVIDIA L40S datasheet (733 / 1,466 TFLOPS with sparsity, halved)"),
    row("L40", &["l40"], 0.864, 181.05, Some(362.0), 48.0,
        "NVIDIA L40 datasheet (362 / 724 TFLOPS with sparsity, halved)"),
    row("L4", &["l4"], 0.3, 121.0, Some(242.5), 24.0,
        "NVIDIA L4 datasheet (242 / 485 TFLOPS with sparsity, halved)"),
    row("A10G", &["a10g"], 0.6, 70.0, None, 24.0,
        "no NVIDIA datasheet; AWS G5 figures as compiled by Baseten (A10 vs A10G); override if you know better"),
    row("A10", &["a10"], 0.6, 125.0, None, 24.0,
        "NVIDIA A10 datasheet (125 / 250 TFLOPS with sparsity)"),
    row("RTX 6000 Ada", &["rtx", "6000", "ada"], 0.96, 364.25, Some(728.5), 48.0,
        "NVIDIA RTX 6000 Ada datasheet (1,457 fp8 TFLOPS with sparsity; bf16 half of fp8)"),
    row("RTX 4090", &["4090"], 1.008, 165.2, Some(330.3), 24.0,
        "NVIDIA Ada whitepaper, GeForce RTX 4090: dense with fp32 accumulation (twice that with fp16 accumulation)"),
    row("B200", &["b200"], 8.0, 2250.0, Some(4500.0), 180.0,
        "NVIDIA HGX B200 (1,000 W) figures: 4.5 / 9 PFLOPS fp8 dense / sparse; DGX B200: 1,440 GB and 64 TB/s over 8 GPUs"),
    row("MI300X", &["mi300x"], 5.3, 1307.4, Some(2614.9), 192.0,
        "AMD Instinct MI300X datasheet (dense)"),
    row("MI325X", &["mi325x"], 6.0, 1307.4, Some(2614.9), 256.0,
        "AMD Instinct MI325X datasheet (dense)"),
];

/// `NVIDIA A100-SXM4-80GB` → `["a100", "sxm4", "80gb"]`: lower case, split on anything not
/// alphanumeric, vendor words dropped.
fn tokens(name: &str) -> Vec<String> {
    name.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty() && !matches!(*t, "nvidia" | "geforce" | "amd" | "instinct"))
        .map(str::to_string)
        .collect()
}

/// The table row for an NVML (or rocm-smi) name, matched loosely: `NVIDIA H100 80GB HBM3` is
/// the H100 SXM, `NVIDIA H100 PCIe` the PCIe card; our own row names match too.
pub fn lookup_row(name: &str) -> Option<&'static GpuRow> {
    let have = tokens(name);
    GPU_TABLE
        .iter()
        .find(|row| row.tokens.iter().all(|t| have.iter().any(|h| h == t)))
}

/// The datasheet spec for an NVML name; None for a GPU not in the table.
pub fn lookup(name: &str) -> Option<GpuSpec> {
    lookup_row(name).map(GpuRow::spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(nvml: &str) -> Option<&'static str> {
        lookup_row(nvml).map(|r| r.name)
    }

    #[test]
    fn nvml_names_match_their_rows() {
        let cases = [
            ("NVIDIA H100 80GB HBM3", "H100 SXM"),
            ("NVIDIA H100 PCIe", "H100 PCIe"),
            ("NVIDIA H100 NVL", "H100 NVL"),
            ("NVIDIA H200", "H200 SXM"),
            ("NVIDIA H200 NVL", "H200 NVL"),
            ("NVIDIA GH200 480GB", "GH200 96GB"),
            ("NVIDIA GH200 144G HBM3e", "GH200 144GB HBM3e"),
            ("NVIDIA H20", "H20"),
            ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"),
            ("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB"),
            ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"),
            ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB"),
            ("NVIDIA L40S", "L40S"),
            ("NVIDIA L40", "L40"),
            ("NVIDIA L4", "L4"),
            ("NVIDIA A10G", "A10G"),
            ("NVIDIA A10", "A10"),
            ("NVIDIA RTX 6000 Ada Generation", "RTX 6000 Ada"),
            ("NVIDIA GeForce RTX 4090", "RTX 4090"),
            ("NVIDIA B200", "B200"),
            ("AMD Instinct MI300X", "MI300X"),
            ("h100", "H100 SXM"),
        ];
        for (nvml, want) in cases {
            assert_eq!(name_of(nvml), Some(want), "{nvml}");
        }
        assert_eq!(name_of("NVIDIA RTX A6000"), None);
        assert_eq!(name_of("Tesla T4"), None);
    }

    #[test]
    fn every_row_is_reachable_by_its_own_name() {
        for row in GPU_TABLE {
            assert_eq!(name_of(row.name), Some(row.name));
        }
    }

    #[test]
    fn h100_sxm_figures_and_overrides() {
        let h100 = lookup("NVIDIA H100 80GB HBM3").unwrap();
        assert_eq!(h100.hbm_bandwidth_bytes_per_s, 3.35e12);
        assert_eq!(h100.bf16_dense_flops, 989.5e12);
        assert_eq!(h100.fp8_dense_flops, Some(1979e12));
        assert_eq!(h100.memory_bytes, 80_000_000_000);
        assert_eq!(
            lookup("NVIDIA A100-SXM4-80GB").unwrap().fp8_dense_flops,
            None
        );

        let o = GpuSpecOverride {
            hbm_bandwidth_bytes_per_s: Some(3.0e12),
            ..Default::default()
        };
        let s = h100.clone().with_overrides(&o);
        assert_eq!(s.hbm_bandwidth_bytes_per_s, 3.0e12);
        assert_eq!(s.bf16_dense_flops, h100.bf16_dense_flops);
        assert!(s.source.ends_with("overridden: bandwidth"), "{}", s.source);
        assert_eq!(GpuSpec::from_overrides("X", &o), None);
    }
}
