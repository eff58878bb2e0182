//! A DCGM-exporter-style `/dcgm` endpoint: one simulated GPU per DP rank, whose series follow
//! that rank's busy fraction (time spent in steps) since the previous scrape. Labels in the
//! exporter's template order plus `simulated="true"`; ints printed `%d`, doubles `%f`. These are
//! stand-in readings for dry runs, not a model of a GPU.

use std::sync::Mutex;
use std::time::Instant;

/// Busy seconds per rank at the previous scrape.
pub(crate) struct DcgmWindow {
    last: Mutex<(Instant, Vec<f64>)>,
}

impl DcgmWindow {
    pub fn new(ranks: usize) -> Self {
        DcgmWindow {
            last: Mutex::new((Instant::now(), vec![0.0; ranks])),
        }
    }

    /// Busy fraction per rank since the previous call, from cumulative busy seconds.
    pub fn busy_fractions(&self, busy_s: &[f64]) -> Vec<f64> {
        let mut last = match self.last.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let wall = now.duration_since(last.0).as_secs_f64();
        let out = busy_s
            .iter()
            .zip(&last.1)
            .map(|(b, prev)| {
                if wall > 0.0 {
                    ((b - prev) / wall).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        *last = (now, busy_s.to_vec());
        out
    }
}

const FB_TOTAL_MIB: f64 = 81_559.0;

/// The exposition for the given busy fractions (one GPU each).
pub(crate) fn render(busy: &[f64]) -> String {
    type Field = (&'static str, &'static str, bool, fn(f64) -> f64);
    let fields: &[Field] = &[
        (
            "DCGM_FI_DEV_SM_CLOCK",
            "SM clock frequency (in MHz).",
            true,
            |_| 1980.0,
        ),
        (
            "DCGM_FI_DEV_MEM_CLOCK",
            "Memory clock frequency (in MHz).",
            true,
            |_| 2619.0,
        ),
        (
            "DCGM_FI_DEV_GPU_TEMP",
            "GPU temperature (in C).",
            true,
            |b| 35.0 + 35.0 * b,
        ),
        (
            "DCGM_FI_DEV_POWER_USAGE",
            "Power draw (in W).",
            false,
            |b| 110.0 + 540.0 * b,
        ),
        (
            "DCGM_FI_DEV_GPU_UTIL",
            "GPU utilization (in %).",
            true,
            |b| 100.0 * b,
        ),
        (
            "DCGM_FI_DEV_FB_FREE",
            "Framebuffer memory free (in MiB).",
            true,
            |_| FB_TOTAL_MIB * 0.1,
        ),
        (
            "DCGM_FI_DEV_FB_USED",
            "Framebuffer memory used (in MiB).",
            true,
            |_| FB_TOTAL_MIB * 0.9,
        ),
        (
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            "Ratio of time the graphics engine is active.",
            false,
            |b| b,
        ),
        (
            "DCGM_FI_PROF_DRAM_ACTIVE",
            "Ratio of cycles the device memory interface is active sending or receiving data.",
            false,
            |b| 0.85 * b,
        ),
    ];
    let mut out = String::new();
    for (name, help, int, value) in fields {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (gpu, b) in busy.iter().enumerate() {
            let v = value(*b);
            let v = if *int {
                format!("{}", v.round() as i64)
            } else {
                format!("{v:.6}")
            };
            out.push_str(&format!(
                "{name}{{gpu=\"{gpu}\",UUID=\"GPU-00000000-0000-0000-0000-{gpu:012x}\",pci_bus_id=\"00000000:{:02X}:00.0\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"ceiling-sim\",DCGM_FI_DRIVER_VERSION=\"535.183.01\",simulated=\"true\"}} {v}\n",
                gpu + 0x18
            ));
        }
    }
    out
}
