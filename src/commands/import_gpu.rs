//! `ceiling import-gpu FILE --run ID`: an nvidia-smi CSV log into a recorded run's GPU
//! samples, for runs whose GPUs were not sampled by `ceiling` itself. Times are aligned to the
//! run's `started_at`; rows from before the run started or after it ended are left out and
//! counted, with a warning that suggests the `--utc-offset` a local-time log needs.

use std::path::Path;

use ceiling_collectors::gpu::smi::parse_nvidia_smi_csv;

use crate::Exit;
use crate::cli::ImportGpuArgs;
use crate::exit::Failure;
use crate::store::{Record, Store, Writer, WriterOptions};

/// `+02:00`, `-05:30`, `+2`, `0` → seconds east of UTC.
pub fn parse_utc_offset(s: &str) -> Option<f64> {
    let s = s.trim();
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<f64>().ok()?, m.parse::<f64>().ok()?),
        None => (rest.parse::<f64>().ok()?, 0.0),
    };
    if !(0.0..=14.0).contains(&h) || !(0.0..60.0).contains(&m) {
        return None;
    }
    Some(sign * (h * 3600.0 + m * 60.0))
}

/// Rows this long after the run's recorded end still count (the logger's last tick).
const END_SLACK_S: f64 = 5.0;

/// The whole-hour (or half-hour) offset a log starting `lead_s` after the run's start in naive
/// UTC would need, where it is at least half an hour off: `+02:00`, `-05:30`.
fn offset_hint(lead_s: f64) -> Option<String> {
    let half_hours = (lead_s / 1800.0).round();
    if half_hours == 0.0 || half_hours.abs() > 28.0 {
        return None;
    }
    let minutes = (half_hours.abs() * 30.0) as u32;
    let sign = if half_hours > 0.0 { '+' } else { '-' };
    Some(format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60))
}

/// The run's start (its text and Unix seconds) and length, from the store.
struct RunSpan {
    started_at: String,
    started_unix: f64,
    /// `None` for a run still open (interrupted, or recording now): nothing is after it.
    duration_s: Option<f64>,
    gpu_count: i64,
}

fn run_span(store: &Store, run_id: i64) -> anyhow::Result<RunSpan> {
    let (started_at, ended_at, gpu_count): (String, Option<String>, i64) = store
        .conn()
        .query_row(
            "SELECT started_at, ended_at, gpu_count FROM runs WHERE id = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|_| crate::store::StoreError::NoSuchRun(run_id))?;
    // A start time ceiling cannot read is a corrupt recording: the input, not a bug (exit 2).
    let started = humantime::parse_rfc3339_weak(&started_at).map_err(|e| {
        Failure::Usage(format!(
            "run {run_id} has an unreadable started_at {started_at:?}: {e}"
        ))
    })?;
    let started_unix = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let duration_s = ended_at
        .as_deref()
        .and_then(|e| humantime::parse_rfc3339_weak(e).ok())
        .and_then(|e| e.duration_since(started).ok())
        .map(|d| d.as_secs_f64());
    Ok(RunSpan {
        started_at,
        started_unix,
        duration_s,
        gpu_count,
    })
}

/// What the row loop did: samples written, rows left out on each side, the instants written.
#[derive(Default)]
struct Imported {
    samples: u64,
    before_start: u64,
    after_end: u64,
    first_t: Option<f64>,
    last_t: Option<f64>,
}

/// Writes the log's rows inside the run (shifted to its clock) as the run's GPU samples.
async fn write_rows(
    store: &Store,
    run_id: i64,
    span: &RunSpan,
    rows: Vec<ceiling_collectors::gpu::smi::SmiRow>,
    offset_s: f64,
) -> anyhow::Result<Imported> {
    let (writer, thread) = Writer::spawn(store.path(), run_id, WriterOptions::default())?;
    let mut done = Imported::default();
    for row in rows {
        let t_s = row.naive_unix_s - offset_s - span.started_unix;
        if t_s < 0.0 {
            done.before_start += 1;
            continue;
        }
        if span.duration_s.is_some_and(|d| t_s > d + END_SLACK_S) {
            done.after_end += 1;
            continue;
        }
        let mut sample = row.sample;
        sample.t_s = t_s;
        done.first_t = Some(done.first_t.map_or(t_s, |f| f.min(t_s)));
        done.last_t = Some(done.last_t.map_or(t_s, |l| l.max(t_s)));
        writer.send(Record::Gpu(sample)).await?;
        done.samples += 1;
    }
    drop(writer);
    thread.join()?;
    Ok(done)
}

pub async fn run(db: &Path, args: ImportGpuArgs) -> anyhow::Result<Exit> {
    let offset_s = parse_utc_offset(&args.utc_offset).ok_or_else(|| {
        Failure::Usage(format!(
            "--utc-offset {:?} is not an offset like +02:00 or -05:30",
            args.utc_offset
        ))
    })?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.file.display())))?;
    let log = parse_nvidia_smi_csv(&text)
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.file.display())))?;

    let store = Store::open(db)?;
    let run_id = super::resolve_run(&store, &args.run)?;
    let span = run_span(&store, run_id)?;
    let first_naive = log.rows.first().map(|r| r.naive_unix_s);
    let done = write_rows(&store, run_id, &span, log.rows, offset_s).await?;
    if span.gpu_count == 0 && !log.inventory.is_empty() {
        store.set_run_gpus(run_id, &log.inventory)?;
    }

    super::emit(&format!(
        "imported {} GPU samples of {} GPU(s) into run {run_id}{}\n",
        done.samples,
        log.inventory.len(),
        match (done.first_t, done.last_t) {
            (Some(f), Some(l)) => format!(" (t = {f:.3} s to {l:.3} s from the run's start)"),
            _ => String::new(),
        }
    ));
    let started_at = &span.started_at;
    if done.before_start + done.after_end > 0 {
        let hint = first_naive
            .and_then(|n| offset_hint(n - span.started_unix))
            .map_or(String::new(), |h| {
                format!(" (the log starts {h} from the run: try --utc-offset {h})")
            });
        eprintln!(
            "warning: {} row(s) before run {run_id} started ({started_at}) and {} after it ended were left out; if the log's clock is not UTC, pass --utc-offset{hint}",
            done.before_start, done.after_end
        );
    }
    if !log.errors.is_empty() {
        eprintln!(
            "warning: {} line(s) of {} could not be read and were left out; first: {}",
            log.errors.len(),
            args.file.display(),
            log.errors[0]
        );
    }
    if done.samples == 0 {
        return Err(Failure::Usage(format!(
            "no sample of {} falls within run {run_id} (started {started_at}); check --run and --utc-offset",
            args.file.display()
        ))
        .into());
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::{offset_hint, parse_utc_offset};

    #[test]
    fn a_log_hours_off_the_run_suggests_the_offset() {
        // A log written at UTC+2 read as UTC starts two hours after the run.
        assert_eq!(offset_hint(7200.0 + 12.0).as_deref(), Some("+02:00"));
        assert_eq!(offset_hint(-19_800.0).as_deref(), Some("-05:30"));
        // Within a quarter hour: the clock is right, no hint.
        assert_eq!(offset_hint(600.0), None);
    }

    #[test]
    fn utc_offsets() {
        assert_eq!(parse_utc_offset("+02:00"), Some(7200.0));
        assert_eq!(parse_utc_offset("-05:30"), Some(-19800.0));
        assert_eq!(parse_utc_offset("0"), Some(0.0));
        assert_eq!(parse_utc_offset("+2"), Some(7200.0));
        assert_eq!(parse_utc_offset("2h"), None);
        assert_eq!(parse_utc_offset(""), None);
    }
}
