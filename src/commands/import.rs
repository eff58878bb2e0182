//! `ceiling import`: other benchmark tools' result files into the store. Every file is read and
//! checked before anything is written, so a bad file (truncated, empty, binary, another tool's
//! with `--tool` forced) leaves the store as it was; each file is then written in its own
//! transaction, and a file whose sha256 is already stored is not written again.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde_json::json;
use sha2::{Digest, Sha256};

use ceiling_reports::peer::{self, PeerPoint, PeerRequest, Tool};

use crate::Exit;
use crate::cli::{DeploymentArgs, ImportArgs, ToolArg};
use crate::exit::Failure;
use crate::store::Store;
use crate::store::results::{Deployment, ImportOutcome};

/// One file read and normalised, not yet stored.
pub struct ReadFile {
    pub path: PathBuf,
    pub sha256: String,
    pub points: Vec<PeerPoint>,
}

pub fn tool(arg: ToolArg) -> Option<Tool> {
    match arg {
        ToolArg::Auto => None,
        ToolArg::Vllm => Some(Tool::Vllm),
        ToolArg::Sglang => Some(Tool::Sglang),
        ToolArg::Guidellm => Some(Tool::Guidellm),
        ToolArg::Aiperf => Some(Tool::Aiperf),
        ToolArg::GenaiPerf => Some(Tool::GenaiPerf),
        ToolArg::Evalscope => Some(Tool::Evalscope),
        ToolArg::Llmperf => Some(Tool::Llmperf),
        ToolArg::Locust => Some(Tool::Locust),
        ToolArg::Gpustack => Some(Tool::Gpustack),
        ToolArg::InferenceBenchmarker => Some(Tool::InferenceBenchmarker),
    }
}

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

fn usage(path: &Path, msg: impl std::fmt::Display) -> anyhow::Error {
    Failure::Usage(format!("{}: {msg}", path.display())).into()
}

/// Reads one result file (and the side files its tool writes beside it).
pub fn read_file(path: &Path, forced: Option<Tool>) -> anyhow::Result<ReadFile> {
    let bytes = std::fs::read(path).map_err(|e| usage(path, format!("cannot read: {e}")))?;
    if bytes.starts_with(SQLITE_MAGIC) {
        // EvalScope's benchmark_data.db: its summary beside it is the result.
        let summary = path.with_file_name("benchmark_summary.json");
        if !summary.is_file() {
            return Err(usage(
                path,
                "a SQLite file without benchmark_summary.json beside it; expected EvalScope's \
                 benchmark_data.db in its run directory",
            ));
        }
        return read_file(&summary, forced);
    }
    let sha256 = format!("{:x}", Sha256::digest(&bytes));
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) if !bytes[..bytes.len().min(8192)].contains(&0) => t,
        _ => {
            return Err(usage(
                path,
                "a binary file; expected a JSON, JSON Lines or CSV result of vLLM, SGLang, \
                 guidellm, AIPerf, GenAI-Perf, EvalScope or llmperf",
            ));
        }
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let siblings = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut points =
        peer::parse(text, &file_name, forced, &siblings).map_err(|e| usage(path, e))?;
    for p in points.iter_mut().filter(|p| p.tool == Tool::Evalscope) {
        let db = dir.join("benchmark_data.db");
        if db.is_file() {
            p.requests = evalscope_requests(&db)?;
            p.complete_from_requests()
                .map_err(|e| usage(&db, format!("per-request table: {e}")))?;
        }
    }
    if points.is_empty() {
        return Err(usage(path, "no benchmark in the file"));
    }
    Ok(ReadFile {
        path: path.to_path_buf(),
        sha256,
        points,
    })
}

/// EvalScope's `result` table: one row per request, times in seconds, the chunk gaps as a JSON
/// list (`inter_token_latencies`; `chunk_times` in older versions is not read).
fn evalscope_requests(db: &Path) -> anyhow::Result<Vec<PeerRequest>> {
    let bad = |e: rusqlite::Error| usage(db, format!("expected EvalScope's `result` table: {e}"));
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(bad)?;
    let mut stmt = conn
        .prepare(
            "SELECT start_time, first_chunk_latency, latency, prompt_tokens, completion_tokens,
                    success, inter_token_latencies FROM result ORDER BY start_time",
        )
        .map_err(bad)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<f64>>(0)?,
                r.get::<_, Option<f64>>(1)?,
                r.get::<_, Option<f64>>(2)?,
                r.get::<_, Option<f64>>(3)?,
                r.get::<_, Option<f64>>(4)?,
                r.get::<_, Option<bool>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let first = rows
        .iter()
        .filter_map(|r| r.0)
        .fold(f64::INFINITY, f64::min);
    rows.into_iter()
        .enumerate()
        .map(|(i, (start, ttft, e2e, input, output, ok, gaps))| {
            let itl_s = match gaps {
                Some(g) => serde_json::from_str::<Vec<f64>>(&g).map_err(|e| {
                    usage(
                        db,
                        format!(
                            "row {}: inter_token_latencies: expected a list of numbers: {e}",
                            i + 1
                        ),
                    )
                })?,
                None => Vec::new(),
            };
            let ok = ok.unwrap_or(false);
            Ok(PeerRequest {
                start_s: start.map(|s| s - first),
                ttft_s: ttft,
                e2e_s: e2e,
                input_tokens: input,
                output_tokens: output,
                ok,
                error: (!ok).then(|| "failed".to_string()),
                itl_s,
            })
        })
        .collect()
}

/// The deployment flags checked (the model config parsed, the GPU known) and read.
pub fn deployment(args: &DeploymentArgs, note: Option<String>) -> anyhow::Result<Deployment> {
    let model_config = match &args.model_config {
        Some(path) => {
            super::roofline::load_model_shape(path)?;
            Some(std::fs::read_to_string(path)?)
        }
        None => None,
    };
    if let Some(gpu) = &args.gpu {
        super::roofline::resolve_gpu(gpu, &Default::default())?;
    }
    Ok(Deployment {
        gpu: args.gpu.clone(),
        tp: args.tp,
        dp: args.dp,
        model_config,
        note,
    })
}

pub fn run(db: &Path, args: ImportArgs) -> anyhow::Result<Exit> {
    let dep = deployment(&args.deployment, args.note.clone())?;
    let forced = tool(args.tool);
    // Every file read before any is written: a bad one leaves the store unchanged.
    let files = args
        .files
        .iter()
        .map(|f| read_file(f, forced))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let store = Store::open(db)?;
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let mut out = Vec::new();
    for f in &files {
        let path = f.path.display().to_string();
        let outcome = store.import_result_file(&path, &f.sha256, &now, &f.points, &dep)?;
        let (ids, new) = match outcome {
            ImportOutcome::Imported(ids) => (ids, true),
            ImportOutcome::AlreadyImported(ids) => (ids, false),
        };
        out.push(json!({
            "file": path,
            "tool": f.points[0].tool.as_str(),
            "tool_version": f.points[0].tool_version,
            "sha256": f.sha256,
            "result_ids": ids,
            "imported": new,
            "requests": f.points.iter().map(|p| p.requests.len()).sum::<usize>(),
        }));
    }
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut text = String::new();
        for o in &out {
            let ids: Vec<String> = o["result_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.to_string())
                .collect();
            if o["imported"] == true {
                text.push_str(&format!(
                    "{}: {} → result {} ({} requests)\n",
                    o["file"].as_str().unwrap_or_default(),
                    o["tool"].as_str().unwrap_or_default(),
                    ids.join(", "),
                    o["requests"],
                ));
            } else {
                text.push_str(&format!(
                    "{}: already imported as result {} (same sha256); nothing written\n",
                    o["file"].as_str().unwrap_or_default(),
                    ids.join(", "),
                ));
            }
        }
        super::emit(&text);
    }
    Ok(Exit::Success)
}
