//! `ceiling roofline`: the decode roofline of a model on a GPU, from its `config.json` and the
//! datasheet table, without any run. Also the loaders other commands share: the model config
//! and the GPU spec with its overrides.

use std::path::Path;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::json;

use ceiling_reports::gpu_specs::{self, GpuSpec, GpuSpecOverride};
use ceiling_reports::model::{KvDtype, ModelShape, WeightDtype};
use ceiling_reports::roofline::{Roofline, RooflinePoint};

use crate::Exit;
use crate::cli::{KvDtypeArg, RooflineArgs, WeightDtypeArg};
use crate::exit::Failure;

/// Reads and parses a model `config.json`; any problem is a usage error naming the file.
pub fn load_model_shape(path: &Path) -> anyhow::Result<ModelShape> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read model config {}: {e}", path.display())))?;
    ModelShape::from_config_json(&text)
        .map_err(|e| Failure::Usage(format!("model config {}: {e}", path.display())).into())
}

/// The datasheet spec for `name` with the given overrides, or a usage error that lists what is
/// known and how to describe an unknown GPU.
pub fn resolve_gpu(name: &str, o: &GpuSpecOverride) -> anyhow::Result<GpuSpec> {
    if let Some(spec) = gpu_specs::lookup(name) {
        return Ok(spec.with_overrides(o));
    }
    if let Some(spec) = GpuSpec::from_overrides(name, o) {
        return Ok(spec);
    }
    let known: Vec<&str> = gpu_specs::GPU_TABLE.iter().map(|r| r.name).collect();
    Err(Failure::Usage(format!(
        "GPU {name:?} is not in the datasheet table ({}); give --hbm-bw-gbs and --peak-tflops \
         to describe it",
        known.join(", ")
    ))
    .into())
}

pub fn weight_dtype(arg: WeightDtypeArg) -> WeightDtype {
    match arg {
        WeightDtypeArg::Fp32 => WeightDtype::Fp32,
        WeightDtypeArg::Bf16 => WeightDtype::Bf16,
        WeightDtypeArg::Fp16 => WeightDtype::Fp16,
        WeightDtypeArg::Fp8 => WeightDtype::Fp8,
        WeightDtypeArg::Int8 => WeightDtype::Int8,
        WeightDtypeArg::Int4 => WeightDtype::Int4,
        WeightDtypeArg::Mxfp4 => WeightDtype::Mxfp4,
        WeightDtypeArg::Nvfp4 => WeightDtype::Nvfp4,
    }
}

pub fn kv_dtype(arg: KvDtypeArg) -> KvDtype {
    match arg {
        KvDtypeArg::Fp32 => KvDtype::Fp32,
        KvDtypeArg::Bf16 => KvDtype::Bf16,
        KvDtypeArg::Fp16 => KvDtype::Fp16,
        KvDtypeArg::Fp8 => KvDtype::Fp8,
    }
}

fn positive(flag: &str, v: Option<f64>) -> anyhow::Result<Option<f64>> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(Failure::Usage(format!("{flag} must be a positive number, got {x}")).into())
        }
        v => Ok(v),
    }
}

pub fn run(args: RooflineArgs) -> anyhow::Result<Exit> {
    let shape = load_model_shape(&args.model.model_config)?;
    let peak = positive("--peak-tflops", args.peak_tflops)?.map(|t| t * 1e12);
    let overrides = GpuSpecOverride {
        hbm_bandwidth_bytes_per_s: positive("--hbm-bw-gbs", args.hbm_bw_gbs)?.map(|g| g * 1e9),
        bf16_dense_flops: peak,
        fp8_dense_flops: peak,
        memory_bytes: None,
    };
    let gpu = resolve_gpu(&args.gpu, &overrides)?;
    let roofline = Roofline::new(
        &shape,
        &gpu,
        args.tp,
        args.weight_dtype.map(weight_dtype),
        kv_dtype(args.kv_dtype),
    );
    let points: Vec<RooflinePoint> = args
        .bs
        .iter()
        .map(|&bs| roofline.at(bs, args.context))
        .collect();
    if args.output.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&shape, &roofline, args.context, &points))?
        );
    } else {
        print!("{}", render(&shape, &roofline, args.context, &points));
    }
    Ok(Exit::Success)
}

/// The model's figures as the JSON outputs show them.
pub fn model_json(shape: &ModelShape, r: &Roofline) -> serde_json::Value {
    json!({
        "model_type": shape.model_type,
        "architecture": shape.architecture,
        "family": shape.family,
        "layers": shape.layers,
        "hidden": shape.hidden,
        "heads": shape.heads,
        "kv_heads": shape.kv_heads,
        "head_dim": shape.head_dim,
        "mla": shape.is_mla(),
        "moe": shape.moe,
        "params_total": r.params.total(),
        "params_active": r.params.active(),
        "params_active_matmul": r.params.active_matmul(),
        "params_mtp": r.params.mtp,
        "weight_bytes": r.weights.total(),
        "weight_dtype": r.weights.linear_dtype,
        "expert_weight_dtype": r.weights.expert_dtype,
        "kv_dtype": r.kv_dtype,
        "kv_bytes_per_token": shape.kv_bytes_per_token(r.kv_dtype),
        "notes": shape.notes,
    })
}

fn to_json(
    shape: &ModelShape,
    r: &Roofline,
    context: u32,
    points: &[RooflinePoint],
) -> serde_json::Value {
    json!({
        "model": model_json(shape, r),
        "gpu": r.gpu,
        "tp": r.tp,
        "context": context,
        "compute_dtype": r.compute_dtype,
        "peak_flops": r.peak_flops,
        "kv_share_per_gpu": r.kv_share,
        "points": points,
    })
}

fn gb(bytes: f64) -> String {
    format!("{:.2}", bytes / 1e9)
}

fn billions(n: u64) -> String {
    format!("{:.2} B", n as f64 / 1e9)
}

fn render(shape: &ModelShape, r: &Roofline, context: u32, points: &[RooflinePoint]) -> String {
    let mut out = String::new();
    let arch = shape.architecture.as_deref().unwrap_or("?");
    let w = &r.weights;
    let dtypes = if w.expert_dtype != w.linear_dtype && shape.moe.is_some() {
        format!("{}, experts {}", w.linear_dtype, w.expert_dtype)
    } else {
        w.linear_dtype.to_string()
    };
    out.push_str(&format!(
        "model    {arch} ({}): {} params, {} active per token; weights {} GB ({dtypes}); \
         KV {:.1} KiB per token ({})\n",
        shape.model_type,
        billions(r.params.total()),
        billions(r.params.active()),
        gb(w.total()),
        shape.kv_bytes_per_token(r.kv_dtype) / 1024.0,
        r.kv_dtype,
    ));
    let g = &r.gpu;
    let fp8 = g
        .fp8_dense_flops
        .map_or("no fp8".to_string(), |f| format!("{:.1} fp8", f / 1e12));
    out.push_str(&format!(
        "gpu      {}: {:.0} GB/s, {:.1} bf16 / {fp8} dense TFLOPS, {:.0} GB ({})\n",
        g.name,
        g.hbm_bandwidth_bytes_per_s / 1e9,
        g.bf16_dense_flops / 1e12,
        g.memory_bytes as f64 / 1e9,
        g.source,
    ));
    out.push_str(&format!(
        "step     tp {}, {context} tokens of context per sequence, FLOPs at the {} peak \
         ({:.1} TFLOPS); figures per GPU\n",
        r.tp,
        r.compute_dtype.as_str(),
        r.peak_flops / 1e12
    ));
    let moe = shape.moe.is_some();
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["bs", "weights GB", "KV GB", "moved GB", "GFLOP"];
    if moe {
        header.push("experts/layer");
    }
    header.extend(["t_mem ms", "t_comp ms", "t_min ms", "bound", "max tok/s"]);
    table.set_header(header);
    for p in points {
        let mut row = vec![
            p.bs.to_string(),
            gb(p.weight_bytes_per_gpu),
            gb(p.kv_bytes_per_gpu),
            gb(p.bytes_moved_per_gpu),
            format!("{:.1}", p.flops_per_gpu / 1e9),
        ];
        if moe {
            row.push(
                p.experts_touched_per_layer
                    .map_or("-".into(), |e| format!("{e:.1}")),
            );
        }
        row.extend([
            format!("{:.3}", p.t_memory_s * 1e3),
            format!("{:.3}", p.t_compute_s * 1e3),
            format!("{:.3}", p.t_min_s * 1e3),
            p.bound.as_str().to_string(),
            format!("{:.0}", p.max_output_tokens_per_s),
        ]);
        table.add_row(row);
    }
    out.push_str(&format!("{table}\n"));
    let weights_per_gpu = w.total() / f64::from(r.tp);
    if g.memory_bytes > 0 && weights_per_gpu > g.memory_bytes as f64 {
        out.push_str(&format!(
            "warning: the weights alone need {} GB per GPU and the GPU has {:.0} GB; raise --tp \
             or use a smaller --weight-dtype\n",
            gb(weights_per_gpu),
            g.memory_bytes as f64 / 1e9
        ));
    }
    for note in &shape.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(
        "max tok/s = bs / t_min for one replica; t_min leaves out TP communication, launch gaps \
         and the sampler (docs/ROOFLINE.md)\n",
    );
    out
}
