//! A DCGM-exporter-style `/dcgm` endpoint: one simulated GPU per DP rank, whose series follow
//! that rank's busy fraction (time spent in steps) since the previous scrape. Labels in the
//! exporter's template order plus `simulated="true"`; ints printed `%d`, doubles `%f`. These are
//! stand-in readings for dry runs, not a model of a GPU; the profile's [`GpuCondition`] plants
//! a lower clock, a power cap, thermal throttling, another driver or board.

use std::sync::Mutex;
use std::time::Instant;

use crate::profile::GpuCondition;

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

/// Power drawn at busy fraction `b` before the limit clamps it.
fn power_draw_w(b: f64) -> f64 {
    110.0 + 540.0 * b
}

/// NVML clock-event reasons: software power cap, software thermal slowdown.
const SW_POWER_CAP: u64 = 0x4;
const SW_THERMAL_SLOWDOWN: u64 = 0x20;

/// One GPU's readings at busy fraction `b` under condition `g`, in the order of [`FIELDS`].
fn readings(b: f64, g: &GpuCondition) -> [f64; 11] {
    let draw = power_draw_w(b);
    let capped = draw > g.power_limit_w;
    let hot = g.thermal_throttle && b > 0.0;
    let mut reasons = 0;
    if capped {
        reasons |= SW_POWER_CAP;
    }
    if hot {
        reasons |= SW_THERMAL_SLOWDOWN;
    }
    [
        f64::from(g.sm_clock_mhz),
        f64::from(g.mem_clock_mhz),
        35.0 + 35.0 * b + if hot { 25.0 } else { 0.0 },
        draw.min(g.power_limit_w),
        g.power_limit_w,
        reasons as f64,
        100.0 * b,
        FB_TOTAL_MIB * 0.1,
        FB_TOTAL_MIB * 0.9,
        b,
        0.85 * b,
    ]
}

/// Name, help, printed as an integer.
const FIELDS: [(&str, &str, bool); 11] = [
    ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", true),
    (
        "DCGM_FI_DEV_MEM_CLOCK",
        "Memory clock frequency (in MHz).",
        true,
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", true),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", false),
    (
        "DCGM_FI_DEV_POWER_MGMT_LIMIT",
        "Power management limit (in W).",
        false,
    ),
    (
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
        "Current clock event reasons (bitmask).",
        true,
    ),
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", true),
    (
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        true,
    ),
    (
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        true,
    ),
    (
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "Ratio of time the graphics engine is active.",
        false,
    ),
    (
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        false,
    ),
];

/// The exposition for the given busy fractions (one GPU each) under condition `g`.
pub(crate) fn render(busy: &[f64], g: &GpuCondition) -> String {
    let values: Vec<[f64; 11]> = busy.iter().map(|b| readings(*b, g)).collect();
    let mut out = String::new();
    for (f, (name, help, int)) in FIELDS.iter().enumerate() {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (gpu, v) in values.iter().enumerate() {
            let v = v[f];
            let v = if *int {
                format!("{}", v.round() as i64)
            } else {
                format!("{v:.6}")
            };
            out.push_str(&format!(
                "{name}{{gpu=\"{gpu}\",UUID=\"GPU-{:08x}-0000-0000-0000-{gpu:012x}\",pci_bus_id=\"00000000:{:02X}:00.0\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"ceiling-sim\",DCGM_FI_DRIVER_VERSION=\"{}\",simulated=\"true\"}} {v}\n",
                g.board_serial,
                gpu + 0x18,
                g.driver_version,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, name: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{")))
            .unwrap_or_default();
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn a_nominal_gpu_shows_no_event_reasons_and_a_planted_cap_and_heat_do() {
        let ok = render(&[1.0], &GpuCondition::default());
        assert_eq!(value(&ok, "DCGM_FI_DEV_SM_CLOCK"), 1980.0);
        assert_eq!(value(&ok, "DCGM_FI_DEV_POWER_USAGE"), 650.0);
        assert_eq!(value(&ok, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"), 0.0);
        assert!(ok.contains("DCGM_FI_DRIVER_VERSION=\"535.183.01\""));
        let bad = GpuCondition {
            sm_clock_mhz: 1820,
            power_limit_w: 500.0,
            thermal_throttle: true,
            driver_version: "560.28".into(),
            board_serial: 7,
            ..GpuCondition::default()
        };
        let hot = render(&[1.0], &bad);
        assert_eq!(value(&hot, "DCGM_FI_DEV_SM_CLOCK"), 1820.0);
        assert_eq!(value(&hot, "DCGM_FI_DEV_POWER_USAGE"), 500.0);
        assert_eq!(value(&hot, "DCGM_FI_DEV_POWER_MGMT_LIMIT"), 500.0);
        assert_eq!(
            value(&hot, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"),
            36.0,
            "0x4 | 0x20"
        );
        assert_eq!(value(&hot, "DCGM_FI_DEV_GPU_TEMP"), 95.0);
        assert!(hot.contains("UUID=\"GPU-00000007-"));
        // Idle under the same cap: no reason.
        let idle = render(&[0.0], &bad);
        assert_eq!(value(&idle, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"), 0.0);
    }
}
