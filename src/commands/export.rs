//! `ceiling export --format parquet --out DIR [--since DATE]`: the node's whole history (every
//! analysed run × step with the run's key and results; runs without kept results analysed
//! first) as Parquet under `DIR/host=H/date=YYYY-MM-DD/`, for a fleet's object store and any
//! engine that reads Parquet.

use std::path::Path;

use anyhow::Context;

use ceiling_reports::history::{frame, parquet};

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
    let store = Store::open(db)?;
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
    Ok(Exit::Success)
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
