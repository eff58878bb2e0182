//! `ceiling __write-load` (hidden): records synthetic requests as fast as the writer takes them
//! and prints `committed N` after each commit. The crash-safety test kills it with SIGKILL and
//! checks that the database is intact and holds every committed record.
//!
//! `ceiling __synth-run` (hidden): records a synthetic wave sweep of about N chunk rows, the
//! input of the analysis benchmark (`scripts/bench_analysis.sh`).

use std::io::Write;
use std::path::Path;

use ceiling_reports::recording::Pattern;
use ceiling_reports::synthetic::{WaveSpec, wave_recording};
use ceiling_reports::{ChunkArrival, ChunkKind, Outcome, RequestRecord, StepRecord};

use crate::Exit;
use crate::cli::{SynthRunArgs, WriteLoadArgs};
use crate::store::{Record, RunManifest, RunStatus, Store, Writer, WriterOptions};

pub async fn run(db: &Path, args: WriteLoadArgs) -> anyhow::Result<Exit> {
    let store = Store::open(db)?;
    let run_id = store.create_run(&RunManifest::new(
        "ceiling __write-load".into(),
        serde_json::json!({"write_load": true}),
    ))?;
    let opts = WriterOptions {
        on_commit: Some(Box::new(|n| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "committed {n}");
            let _ = out.flush();
        })),
        ..WriterOptions::default()
    };
    let (writer, thread) = Writer::spawn(db, run_id, opts)?;
    writer
        .send(Record::Step(StepRecord {
            rate_rps: None,
            burstiness: None,
            idx: 0,
            batch_size: 1,
            input_len: 16,
            output_len: 16,
            pattern: Pattern::Wave,
            start_t_s: 0.0,
            end_t_s: None,
        }))
        .await?;
    let mut i = 0u64;
    while args.requests == 0 || i < args.requests {
        let t = i as f64 * 1e-3;
        let chunks = (0..16)
            .map(|k| ChunkArrival {
                t_s: t + k as f64 * 1e-4,
                tokens: Some(1),
                kind: ChunkKind::Answer,
            })
            .collect();
        writer
            .send(Record::Request(Box::new(RequestRecord {
                scheduled_t_s: None,
                response_id: None,
                step_idx: 0,
                worker: 0,
                wave: None,
                warmup: false,
                sent_t_s: t,
                headers_t_s: Some(t),
                first_token_t_s: Some(t),
                first_answer_t_s: Some(t),
                done_t_s: Some(t + 2e-3),
                prompt_tokens_requested: 16,
                completion_tokens_requested: 16,
                prompt_tokens_reported: Some(16),
                completion_tokens_reported: Some(16),
                cached_tokens_reported: None,
                prompt_from_text: false,
                outcome: Outcome::Ok,
                http_status: Some(200),
                error: None,
                chunks,
            })))
            .await?;
        i += 1;
    }
    drop(writer);
    thread.join()?;
    store.finish_run(run_id, RunStatus::Complete, None)?;
    Ok(Exit::Success)
}

/// Records a wave sweep at bs 32, 64, 128 and 256 with 1,024 output tokens per request (one
/// chunk each), as many waves as make about `args.chunks` chunk rows, with its GPU samples.
pub async fn synth_run(db: &Path, args: &SynthRunArgs) -> anyhow::Result<Exit> {
    const OUT: u32 = 1024;
    let bss = [32u32, 64, 128, 256];
    let per_step = args.chunks as f64 / bss.len() as f64;
    let specs: Vec<WaveSpec> = bss
        .iter()
        .map(|&bs| WaveSpec {
            batch_size: bs,
            output_len: OUT,
            waves: ((per_step / f64::from(bs * OUT)).round() as u32).max(2) - 1,
            warmup_waves: 1,
            step_time_s: 0.008 + 0.0001 * f64::from(bs),
            ..WaveSpec::default()
        })
        .collect();
    let rec = wave_recording(&specs);
    let store = Store::open(db)?;
    let mut manifest = RunManifest::new(
        "ceiling __synth-run".into(),
        serde_json::json!({ "synthetic_chunks": args.chunks, "dp": 1 }),
    );
    manifest.engine_kind = Some("vllm".into());
    let run_id = store.create_run(&manifest)?;
    let (writer, thread) = Writer::spawn(db, run_id, WriterOptions::default())?;
    let chunks: usize = rec.requests.iter().map(|r| r.chunks.len()).sum();
    for s in &rec.steps {
        writer.send(Record::Step(s.clone())).await?;
        if let Some(end_t_s) = s.end_t_s {
            writer
                .send(Record::StepEnd {
                    idx: s.idx,
                    end_t_s,
                })
                .await?;
        }
    }
    for r in rec.requests {
        writer.send(Record::Request(Box::new(r))).await?;
    }
    for t in rec.ticks {
        writer.send(Record::Tick(t)).await?;
    }
    for g in rec.gpu {
        writer.send(Record::Gpu(g)).await?;
    }
    drop(writer);
    thread.join()?;
    store.finish_run(run_id, RunStatus::Complete, None)?;
    println!("run {run_id}: {chunks} chunk rows");
    Ok(Exit::Success)
}
