//! `ceiling __write-load` (hidden): records synthetic requests as fast as the writer takes them
//! and prints `committed N` after each commit. The crash-safety test kills it with SIGKILL and
//! checks that the database is intact and holds every committed record.

use std::io::Write;
use std::path::Path;

use ceiling_reports::recording::Pattern;
use ceiling_reports::{ChunkArrival, ChunkKind, Outcome, RequestRecord, StepRecord};

use crate::Exit;
use crate::cli::WriteLoadArgs;
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
