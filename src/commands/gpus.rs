//! `ceiling gpus`: which GPU source works on this machine, the GPUs it sees, and one reading of
//! each. A source that does not work is reported with the reason and what to use instead; that
//! is an answer, not a failure.

use std::time::Duration;

use ceiling_collectors::gpu::dcgm::DcgmSource;
use ceiling_collectors::gpu::nvml::NvmlSource;
use ceiling_collectors::gpu::{GpuSource, SourceSpec};
use ceiling_collectors::{GpuInfo, GpuSample};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

use crate::Exit;
use crate::cli::GpusArgs;
use crate::exit::Failure;

#[derive(Debug, Serialize)]
pub struct GpusReport {
    pub source: String,
    pub works: bool,
    pub error: Option<String>,
    pub gpus: Vec<GpuInfo>,
    pub sample: Vec<GpuSample>,
}

pub async fn run(args: GpusArgs) -> anyhow::Result<Exit> {
    let spec = SourceSpec::parse(&args.gpu_source).map_err(|e| Failure::Usage(e.to_string()))?;
    let source: Result<Box<dyn GpuSource>, String> = match &spec {
        SourceSpec::Nvml => tokio::task::spawn_blocking(NvmlSource::init)
            .await?
            .map(|s| Box::new(s) as Box<dyn GpuSource>)
            .map_err(|e| e.to_string()),
        SourceSpec::Dcgm(url) => Ok(Box::new(DcgmSource::new(
            super::http_client()?,
            url,
            Duration::from_secs(5),
            tokio::runtime::Handle::current(),
        ))),
    };
    let report = match source {
        Err(error) => GpusReport {
            source: args.gpu_source.clone(),
            works: false,
            error: Some(error),
            gpus: Vec::new(),
            sample: Vec::new(),
        },
        // The sources block (NVML calls, DCGM's block_on): read them off the runtime.
        Ok(mut source) => {
            tokio::task::spawn_blocking(move || {
                let name = source.name().to_string();
                match source.inventory() {
                    Ok(gpus) => GpusReport {
                        source: name,
                        works: true,
                        error: None,
                        sample: source.sample(0.0),
                        gpus,
                    },
                    Err(e) => GpusReport {
                        source: name,
                        works: false,
                        error: Some(e.to_string()),
                        gpus: Vec::new(),
                        sample: Vec::new(),
                    },
                }
            })
            .await?
        }
    };
    if args.output.json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        super::emit(&render(&report));
    }
    Ok(Exit::Success)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

pub fn render(r: &GpusReport) -> String {
    if !r.works {
        return format!(
            "{}: does not work here: {}\n\
             A probe run on this machine records no GPU data (a warning, not a failure). \
             Alternatives: --gpu-source dcgm:http://HOST:9400/metrics where a DCGM exporter runs, \
             or log `nvidia-smi --query-gpu=timestamp,index,name,utilization.gpu,utilization.memory,\
             memory.used,memory.total,power.draw,clocks.sm,clocks.mem,temperature.gpu,\
             clocks_event_reasons.active --format=csv -lms 100` during the run and load it with \
             `ceiling import-gpu FILE --run ID`.\n",
            r.source,
            r.error.as_deref().unwrap_or("unknown error")
        );
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header([
        "gpu",
        "name",
        "uuid",
        "driver",
        "memory",
        "power limit",
        "max SM",
        "util",
        "power",
        "SM clock",
        "temp",
    ]);
    for g in &r.gpus {
        let s = r.sample.iter().find(|s| s.gpu_index == g.index);
        table.add_row([
            g.index.to_string(),
            opt(g.name.clone()),
            opt(g.uuid.clone()),
            opt(g.driver.clone()),
            opt(g
                .mem_total_bytes
                .map(|b| format!("{:.1} GiB", b as f64 / 1024f64.powi(3)))),
            opt(g.power_limit_w.map(|w| format!("{w:.0} W"))),
            opt(g.max_sm_clock_mhz.map(|m| format!("{m} MHz"))),
            opt(s.and_then(|s| s.util_gpu_pct).map(|u| format!("{u:.0} %"))),
            opt(s.and_then(|s| s.power_w).map(|w| format!("{w:.0} W"))),
            opt(s.and_then(|s| s.sm_clock_mhz).map(|m| format!("{m} MHz"))),
            opt(s.and_then(|s| s.temp_c).map(|t| format!("{t:.0} °C"))),
        ]);
    }
    format!(
        "{}: works, {} GPU(s)\n{table}\n{}",
        r.source,
        r.gpus.len(),
        mig_note(r)
    )
}

/// What a MIG GPU means for the run's figures, by source.
fn mig_note(r: &GpusReport) -> String {
    let mig: Vec<String> = r
        .gpus
        .iter()
        .filter(|g| g.mig == Some(true))
        .map(|g| g.index.to_string())
        .collect();
    if mig.is_empty() {
        return String::new();
    }
    let which = mig.join(", ");
    if r.source == "nvml" {
        format!(
            "MIG is on for GPU {which}: NVML lists whole GPUs only, not their MIG instances, and \
             the whole GPU's power is charged to the run (a co-tenant's instance included). Use \
             --gpu-source dcgm:URL for per-instance activity.\n"
        )
    } else {
        format!(
            "MIG is on for GPU {which}: power, energy, clocks and temperature are read once per \
             GPU (whole-GPU values, co-tenants included); framebuffer and profiling activity per \
             instance. DCGM_FI_DEV_GPU_UTIL is not exported for MIG: utilisation stays empty.\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(source: &str, mig: Option<bool>) -> GpusReport {
        GpusReport {
            source: source.into(),
            works: true,
            error: None,
            gpus: vec![GpuInfo {
                index: 0,
                mig,
                ..GpuInfo::default()
            }],
            sample: Vec::new(),
        }
    }

    #[test]
    fn nvml_on_a_mig_gpu_says_instances_are_not_listed() {
        let text = render(&report("nvml", Some(true)));
        assert!(
            text.contains("MIG is on for GPU 0: NVML lists whole GPUs only"),
            "{text}"
        );
        assert!(text.contains("whole GPU's power is charged to the run"));
        let text = render(&report("dcgm:http://h:9400/metrics", Some(true)));
        assert!(text.contains("read once per GPU"), "{text}");
    }

    #[test]
    fn no_mig_note_without_mig() {
        for mig in [None, Some(false)] {
            assert!(!render(&report("nvml", mig)).contains("MIG"));
        }
    }
}
