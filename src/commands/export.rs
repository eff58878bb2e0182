//! `ceiling export --format parquet --out DIR [--since DATE]`: the node's whole history (every
//! analysed run × step with the run's key and results; runs without kept results analysed
//! first) as Parquet under `DIR/host=H/date=YYYY-MM-DD/`, for a fleet's object store and any
//! engine that reads Parquet; with `--raw RAW`, each run's requests and chunks too.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use ceiling_reports::history::{HistoryStep, frame, parquet};

use crate::Exit;
use crate::cli::ExportArgs;
use crate::exit::Failure;
use crate::store::Store;
use crate::store::history::HistoryFilter;

use super::regress::history_matching;

pub fn run(db: &Path, args: ExportArgs) -> anyhow::Result<Exit> {
    if let Some(d) = &args.since
        && !is_date(d)
    {
        return Err(
            Failure::Usage(format!("--since {d:?} is not a date; write YYYY-MM-DD")).into(),
        );
    }
    let store = Store::open_to_read(db)?;
    let rows = history_matching(&store, &HistoryFilter::default())?;
    let steps = frame::steps_frame(&rows).context("building the history frame (a bug)")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let files = parquet::write_partitioned(steps, &args.out, args.since.as_deref())
        .with_context(|| format!("writing Parquet under {}", args.out.display()))?;
    eprintln!(
        "wrote {} Parquet files under {}",
        files.len(),
        args.out.display()
    );
    for f in files {
        println!("{}", f.display());
    }
    if let Some(raw) = &args.raw {
        for f in write_raw(&store, &rows, raw, args.since.as_deref())? {
            println!("{}", f.display());
        }
    }
    Ok(Exit::Success)
}

/// Each exported run's requests and chunks under `raw`, partitioned as the history is.
fn write_raw(
    store: &Store,
    rows: &[HistoryStep],
    raw: &Path,
    since: Option<&str>,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let runs: BTreeMap<i64, (String, String)> = rows
        .iter()
        .map(|r| {
            let date = r.key.started_at.get(..10).unwrap_or_default().to_string();
            let host = r.key.host.clone().unwrap_or_else(|| "unknown".into());
            (r.key.run_id, (host, date))
        })
        .filter(|(_, (_, date))| since.is_none_or(|s| date.as_str() >= s))
        .collect();
    let mut written = Vec::new();
    for (id, (host, date)) in runs {
        let rec = store.load_recording(id)?;
        for (table, frame) in [("requests", rec.requests), ("chunks", rec.chunks)] {
            let path = parquet::write_raw(frame, raw, table, &host, &date, id)
                .with_context(|| format!("writing run {id}'s {table} under {}", raw.display()))?;
            written.push(path);
        }
    }
    eprintln!(
        "wrote the requests and chunks of {} runs under {}",
        written.len() / 2,
        raw.display()
    );
    Ok(written)
}

/// `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}
