//! The GPUs recorded but not counted (`--gpus`, or not running the engine's processes): shown
//! apart, one line each over the whole run, so a busy neighbour is visible without its power
//! being charged to the engine's tokens.

use polars::prelude::*;
use serde::Serialize;

use ceiling_collectors::GpuSample;

/// One GPU the run recorded but did not count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuApart {
    pub gpu: u32,
    pub samples: u32,
    pub util_mean_pct: Option<f64>,
    pub power_mean_w: Option<f64>,
}

/// Per GPU of `samples` (the uncounted GPUs' readings), its reading count and means, by GPU.
pub fn gpus_apart(samples: &[GpuSample]) -> PolarsResult<Vec<GpuApart>> {
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let df = df!(
        "gpu" => samples.iter().map(|g| g.gpu_index).collect::<Vec<_>>(),
        "util" => samples.iter().map(|g| g.util_gpu_pct).collect::<Vec<_>>(),
        "power" => samples.iter().map(|g| g.power_w).collect::<Vec<_>>(),
    )?
    .lazy()
    .group_by([col("gpu")])
    .agg([
        len().cast(DataType::UInt32).alias("samples"),
        col("util").mean(),
        col("power").mean(),
    ])
    .sort(["gpu"], SortMultipleOptions::default())
    .collect()?;
    let (gpu, n) = (df.column("gpu")?.u32()?, df.column("samples")?.u32()?);
    let (util, power) = (df.column("util")?.f64()?, df.column("power")?.f64()?);
    Ok((0..df.height())
        .filter_map(|i| {
            Some(GpuApart {
                gpu: gpu.get(i)?,
                samples: n.get(i)?,
                util_mean_pct: util.get(i),
                power_mean_w: power.get(i),
            })
        })
        .collect())
}

/// The line the reports print for the GPUs apart; `None` when every GPU counted.
pub fn apart_line(apart: &[GpuApart]) -> Option<String> {
    let one = |g: &GpuApart| {
        let fig = |v: Option<f64>, unit: &str| v.map_or("-".into(), |v| format!("{v:.0} {unit}"));
        format!(
            "{} (util {}, power {})",
            g.gpu,
            fig(g.util_mean_pct, "%"),
            fig(g.power_mean_w, "W")
        )
    };
    (!apart.is_empty()).then(|| {
        format!(
            "GPUs recorded but not counted (not the engine's, or left out by --gpus): {}",
            apart.iter().map(one).collect::<Vec<_>>().join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apart_line_names_each_gpu_and_is_absent_when_all_count() {
        let line = apart_line(&[GpuApart {
            gpu: 5,
            samples: 2,
            util_mean_pct: Some(70.0),
            power_mean_w: None,
        }]);
        assert_eq!(
            line.as_deref(),
            Some(
                "GPUs recorded but not counted (not the engine's, or left out by --gpus): 5 (util 70 %, power -)"
            )
        );
        assert_eq!(apart_line(&[]), None);
    }

    #[test]
    fn one_line_per_uncounted_gpu_with_its_means() {
        let s = |gpu, util, power| GpuSample {
            gpu_index: gpu,
            util_gpu_pct: util,
            power_w: power,
            ..GpuSample::default()
        };
        let got = gpus_apart(&[
            s(5, Some(80.0), Some(300.0)),
            s(2, Some(0.0), None),
            s(5, Some(60.0), Some(200.0)),
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                GpuApart {
                    gpu: 2,
                    samples: 1,
                    util_mean_pct: Some(0.0),
                    power_mean_w: None
                },
                GpuApart {
                    gpu: 5,
                    samples: 2,
                    util_mean_pct: Some(70.0),
                    power_mean_w: Some(250.0)
                },
            ]
        );
        assert!(gpus_apart(&[]).unwrap().is_empty());
    }
}
