//! A DCGM-exporter-style `/dcgm` endpoint: one simulated GPU per DP rank, whose series follow
//! that rank's busy fraction (time spent in steps) since the previous scrape. Labels in the
//! exporter's template order plus `simulated="true"`; ints printed `%d`, doubles `%f`. These are
//! stand-in readings for dry runs, not a model of a GPU; the profile's [`GpuCondition`] plants
//! a lower clock, a power cap, thermal throttling, another driver or board.
//!
//! What a collector must cope with, on demand ([`SimGpu`]): an energy counter
//! (`DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`, mJ) that the exporter refreshes only every N
//! seconds (its `--collect-interval`, 30 s by default), and a MIG layout in which every series
//! carries `GPU_I_PROFILE` / `GPU_I_ID`, the device-level fields are repeated once per instance
//! with the whole GPU's value, the framebuffer and profiling fields are per instance (the
//! engine's rank on instance 0, the others idle) and `DCGM_FI_DEV_GPU_UTIL` is absent.

use std::sync::Mutex;
use std::time::Instant;

use crate::profile::GpuCondition;

/// How the simulated DCGM exporter behaves.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SimGpu {
    /// Seconds between refreshes of the exported energy counter; 0 refreshes it on every
    /// scrape.
    pub energy_every_s: f64,
    /// MIG instances per simulated GPU; 0 is MIG off.
    pub mig_instances: u32,
}

/// What a scrape shows of one GPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GpuReading {
    /// Busy fraction since the previous scrape.
    pub busy: f64,
    /// The exported energy counter, mJ.
    pub energy_mj: f64,
}

struct State {
    last: Instant,
    busy_s: Vec<f64>,
    /// True energy per GPU since start, mJ.
    energy_mj: Vec<f64>,
    /// What the counter last exported, and when it was refreshed.
    exported_mj: Vec<f64>,
    refreshed: Instant,
}

/// Busy seconds and energy per rank at the previous scrape.
pub(crate) struct DcgmWindow {
    cfg: SimGpu,
    state: Mutex<State>,
}

/// Idle and busy power of the simulated GPU, W.
const IDLE_W: f64 = 110.0;
const BUSY_W: f64 = 540.0;
/// An arbitrary counter origin (energy since the driver loaded), mJ.
const ENERGY_ORIGIN_MJ: f64 = 3_187_449_263.0;

/// Power drawn at busy fraction `busy`, clamped at the power limit.
fn power_w(busy: f64, g: &GpuCondition) -> f64 {
    (IDLE_W + BUSY_W * busy).min(g.power_limit_w)
}

/// NVML clock-event reasons: software power cap, software thermal slowdown.
const SW_POWER_CAP: u64 = 0x4;
const SW_THERMAL_SLOWDOWN: u64 = 0x20;

/// The clock-event reasons at busy fraction `busy` under `g`: the power cap while the draw is
/// clamped, thermal slowdown while busy and hot.
fn event_reasons(busy: f64, g: &GpuCondition) -> u64 {
    let mut reasons = 0;
    if IDLE_W + BUSY_W * busy > g.power_limit_w {
        reasons |= SW_POWER_CAP;
    }
    if g.thermal_throttle && busy > 0.0 {
        reasons |= SW_THERMAL_SLOWDOWN;
    }
    reasons
}

impl DcgmWindow {
    pub fn new(ranks: usize, cfg: SimGpu) -> Self {
        let now = Instant::now();
        DcgmWindow {
            cfg,
            state: Mutex::new(State {
                last: now,
                busy_s: vec![0.0; ranks],
                energy_mj: vec![ENERGY_ORIGIN_MJ; ranks],
                exported_mj: vec![ENERGY_ORIGIN_MJ; ranks],
                refreshed: now,
            }),
        }
    }

    /// Each rank's GPU since the previous call, from cumulative busy seconds.
    pub fn readings(&self, busy_s: &[f64], g: &GpuCondition) -> Vec<GpuReading> {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let wall = now.duration_since(st.last).as_secs_f64();
        let busy: Vec<f64> = busy_s
            .iter()
            .zip(&st.busy_s)
            .map(|(b, prev)| {
                if wall > 0.0 {
                    ((b - prev) / wall).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        for (e, b) in st.energy_mj.iter_mut().zip(&busy) {
            *e += power_w(*b, g) * wall * 1000.0;
        }
        if now.duration_since(st.refreshed).as_secs_f64() >= self.cfg.energy_every_s {
            st.exported_mj = st.energy_mj.clone();
            st.refreshed = now;
        }
        st.last = now;
        st.busy_s = busy_s.to_vec();
        busy.iter()
            .zip(&st.exported_mj)
            .map(|(b, e)| GpuReading {
                busy: *b,
                energy_mj: *e,
            })
            .collect()
    }

    pub fn config(&self) -> SimGpu {
        self.cfg
    }
}

const FB_TOTAL_MIB: f64 = 81_559.0;

/// One field: name, help, printed as an int, per MIG instance, value from (busy, energy, share
/// of the GPU's framebuffer).
struct Field {
    name: &'static str,
    help: &'static str,
    int: bool,
    per_instance: bool,
    value: fn(&GpuReading, f64, &GpuCondition) -> f64,
}

const fn field(
    name: &'static str,
    help: &'static str,
    int: bool,
    per_instance: bool,
    value: fn(&GpuReading, f64, &GpuCondition) -> f64,
) -> Field {
    Field {
        name,
        help,
        int,
        per_instance,
        value,
    }
}

const FIELDS: &[Field] = &[
    field(
        "DCGM_FI_DEV_SM_CLOCK",
        "SM clock frequency (in MHz).",
        true,
        false,
        |_, _, g| f64::from(g.sm_clock_mhz),
    ),
    field(
        "DCGM_FI_DEV_MEM_CLOCK",
        "Memory clock frequency (in MHz).",
        true,
        false,
        |_, _, g| f64::from(g.mem_clock_mhz),
    ),
    field(
        "DCGM_FI_DEV_GPU_TEMP",
        "GPU temperature (in C).",
        true,
        false,
        |r, _, g| {
            let hot = g.thermal_throttle && r.busy > 0.0;
            35.0 + 35.0 * r.busy + if hot { 25.0 } else { 0.0 }
        },
    ),
    field(
        "DCGM_FI_DEV_POWER_USAGE",
        "Power draw (in W).",
        false,
        false,
        |r, _, g| power_w(r.busy, g),
    ),
    field(
        "DCGM_FI_DEV_POWER_MGMT_LIMIT",
        "Power management limit (in W).",
        false,
        false,
        |_, _, g| g.power_limit_w,
    ),
    field(
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
        "Current clock event reasons (bitmask).",
        true,
        false,
        |r, _, g| event_reasons(r.busy, g) as f64,
    ),
    field(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "Total energy consumption since boot (in mJ).",
        true,
        false,
        |r, _, _| r.energy_mj,
    ),
    field(
        "DCGM_FI_DEV_GPU_UTIL",
        "GPU utilization (in %).",
        true,
        false,
        |r, _, _| 100.0 * r.busy,
    ),
    field(
        "DCGM_FI_DEV_FB_FREE",
        "Framebuffer memory free (in MiB).",
        true,
        true,
        |_, s, _| FB_TOTAL_MIB * 0.1 * s,
    ),
    field(
        "DCGM_FI_DEV_FB_USED",
        "Framebuffer memory used (in MiB).",
        true,
        true,
        |_, s, _| FB_TOTAL_MIB * 0.9 * s,
    ),
    field(
        "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        "Ratio of time the graphics engine is active.",
        false,
        true,
        |r, _, _| r.busy,
    ),
    field(
        "DCGM_FI_PROF_SM_ACTIVE",
        "The ratio of cycles an SM has at least 1 warp assigned.",
        false,
        true,
        |r, _, _| 0.9 * r.busy,
    ),
    field(
        "DCGM_FI_PROF_SM_OCCUPANCY",
        "The ratio of number of warps resident on an SM.",
        false,
        true,
        |r, _, _| 0.3 * r.busy,
    ),
    field(
        "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "Ratio of cycles the tensor (HMMA) pipe is active.",
        false,
        true,
        |r, _, _| 0.1 * r.busy,
    ),
    field(
        "DCGM_FI_PROF_DRAM_ACTIVE",
        "Ratio of cycles the device memory interface is active sending or receiving data.",
        false,
        true,
        |r, _, _| 0.85 * r.busy,
    ),
];

/// The labels of GPU `gpu` (and MIG instance `instance`) in the exporter's template order.
fn labels(gpu: usize, instance: Option<(u32, u32)>, g: &GpuCondition) -> String {
    let mig = instance.map_or(String::new(), |(id, of)| {
        format!(
            "GPU_I_PROFILE=\"{}g.{}gb\",GPU_I_ID=\"{id}\",",
            7 / of.max(1),
            80 / of.max(1)
        )
    });
    format!(
        "gpu=\"{gpu}\",UUID=\"GPU-{:08x}-0000-0000-0000-{gpu:012x}\",pci_bus_id=\"00000000:{:02X}:00.0\",device=\"nvidia{gpu}\",modelName=\"NVIDIA H100 80GB HBM3\",{mig}Hostname=\"ceiling-sim\",DCGM_FI_DRIVER_VERSION=\"{}\",simulated=\"true\"",
        g.board_serial,
        gpu + 0x18,
        g.driver_version,
    )
}

/// One series of a field: its MIG instance (id, of how many), what it reads, its framebuffer
/// share.
type Series = (Option<(u32, u32)>, GpuReading, f64);

/// The exposition for the given readings (one GPU each).
pub(crate) fn render(gpus: &[GpuReading], cfg: SimGpu, g: &GpuCondition) -> String {
    let mig = cfg.mig_instances;
    let mut out = String::new();
    for f in FIELDS {
        // MIG GPUs have no DCGM_FI_DEV_GPU_UTIL (dcgm-exporter issues 216, 430).
        if mig > 0 && f.name == "DCGM_FI_DEV_GPU_UTIL" {
            continue;
        }
        out.push_str(&format!(
            "# HELP {} {}\n# TYPE {} {}\n",
            f.name,
            f.help,
            f.name,
            if f.name.contains("ENERGY") {
                "counter"
            } else {
                "gauge"
            }
        ));
        for (gpu, r) in gpus.iter().enumerate() {
            let series: Vec<Series> = if mig == 0 {
                vec![(None, *r, 1.0)]
            } else {
                // The engine runs on instance 0; per-instance fields of the others are idle.
                (0..mig)
                    .map(|i| {
                        let mine = i == 0 || !f.per_instance;
                        let reading = GpuReading {
                            busy: if mine { r.busy } else { 0.0 },
                            ..*r
                        };
                        (Some((i + 1, mig)), reading, 1.0 / f64::from(mig))
                    })
                    .collect()
            };
            for (instance, reading, share) in series {
                let v = (f.value)(&reading, share, g);
                let v = if f.int {
                    format!("{}", v.round() as i64)
                } else {
                    format!("{v:.6}")
                };
                out.push_str(&format!("{}{{{}}} {v}\n", f.name, labels(gpu, instance, g)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(busy: f64) -> GpuReading {
        GpuReading {
            busy,
            energy_mj: 1_000.0,
        }
    }

    fn lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .collect()
    }

    #[test]
    fn a_mig_layout_repeats_device_fields_per_instance_and_drops_gpu_util() {
        let cfg = SimGpu {
            mig_instances: 3,
            ..SimGpu::default()
        };
        let text = render(&[reading(0.5)], cfg, &GpuCondition::default());
        let power = lines(&text, "DCGM_FI_DEV_POWER_USAGE");
        assert_eq!(power.len(), 3);
        assert!(
            power.iter().all(|l| l.ends_with(" 380.000000")),
            "{power:?}"
        );
        assert!(power[2].contains("GPU_I_ID=\"3\""));
        assert!(lines(&text, "DCGM_FI_DEV_GPU_UTIL").is_empty());
        let gr = lines(&text, "DCGM_FI_PROF_GR_ENGINE_ACTIVE");
        assert!(gr[0].ends_with(" 0.500000") && gr[1].ends_with(" 0.000000"));
        // The framebuffer split over the instances.
        assert!(lines(&text, "DCGM_FI_DEV_FB_USED")[0].ends_with(" 24468"));
    }

    #[test]
    fn without_mig_one_series_per_gpu_with_profiling_fields() {
        let text = render(
            &[reading(1.0), reading(0.0)],
            SimGpu::default(),
            &GpuCondition::default(),
        );
        assert_eq!(lines(&text, "DCGM_FI_DEV_GPU_UTIL").len(), 2);
        assert!(lines(&text, "DCGM_FI_PROF_DRAM_ACTIVE")[0].ends_with(" 0.850000"));
        assert!(lines(&text, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE")[0].ends_with(" 0.100000"));
        assert!(lines(&text, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")[1].ends_with(" 1000"));
        assert!(!text.contains("GPU_I_ID"));
        assert!(text.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter"));
    }

    #[test]
    fn the_energy_counter_holds_between_refreshes() {
        let w = DcgmWindow::new(
            1,
            SimGpu {
                energy_every_s: 3600.0,
                ..SimGpu::default()
            },
        );
        let a = w.readings(&[0.0], &GpuCondition::default())[0].energy_mj;
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = w.readings(&[0.0], &GpuCondition::default())[0].energy_mj;
        assert_eq!(a, b, "not refreshed within the hour");
        let w = DcgmWindow::new(1, SimGpu::default());
        w.readings(&[0.0], &GpuCondition::default());
        std::thread::sleep(std::time::Duration::from_millis(20));
        // ≥ 20 ms at 110 W idle: ≥ 2200 mJ more.
        let c = w.readings(&[0.0], &GpuCondition::default())[0].energy_mj;
        assert!(c - ENERGY_ORIGIN_MJ >= 2_200.0, "{c}");
    }

    fn value(text: &str, name: &str) -> f64 {
        let line = lines(text, name).first().copied().unwrap_or_default();
        line.rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn a_nominal_gpu_shows_no_event_reasons_and_a_planted_cap_and_heat_do() {
        let render1 = |b: f64, g: &GpuCondition| render(&[reading(b)], SimGpu::default(), g);
        let ok = render1(1.0, &GpuCondition::default());
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
        let hot = render1(1.0, &bad);
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
        let idle = render1(0.0, &bad);
        assert_eq!(value(&idle, "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"), 0.0);
    }
}
