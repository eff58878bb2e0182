//! The one writer of a run's recording: a thread that owns its own SQLite connection, takes
//! [`Record`]s from a bounded channel and commits them in batches at least every
//! `commit_interval` (250 ms by default). A process killed mid-run loses at most the batch in
//! flight; the file stays intact (WAL).
//!
//! Producers only send: async ones with [`Writer::send`], sampler threads with
//! [`Writer::send_blocking`]. Nothing here computes a figure.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};

use ceiling_collectors::{GpuSample, ScrapeRecord};
use ceiling_reports::{Finding, LatenessTick, RequestRecord, StepRecord};

use super::arrays::{StoredChunks, number_array};
use super::series::{SeriesIds, insert_scrape};
use super::{StoreError, schema};

/// Everything a run records while it runs.
#[derive(Debug)]
pub enum Record {
    Step(StepRecord),
    StepEnd {
        idx: u32,
        end_t_s: f64,
    },
    Request(Box<RequestRecord>),
    Tick(LatenessTick),
    /// Several ticks in one record: one wake-up of the writer's thread for all of them.
    Ticks(Vec<LatenessTick>),
    Gpu(GpuSample),
    Scrape(Box<ScrapeRecord>),
    /// A prefill or decode endpoint of a disaggregated deployment, before its scrapes.
    MetricSource(super::roles::MetricSource),
    /// A scrape of role endpoint `source`.
    RoleScrape {
        source: u32,
        scrape: Box<ScrapeRecord>,
    },
    Finding(Finding),
    /// The run's GPU inventory, once the sampler has read it.
    RunGpus(Vec<ceiling_collectors::GpuInfo>),
    /// Commits what came before and answers once it is on disk.
    Flush(flume::Sender<()>),
}

/// Called after each commit with the number of records committed so far.
pub type CommitHook = Box<dyn Fn(u64) + Send>;

pub struct WriterOptions {
    pub commit_interval: Duration,
    pub channel_capacity: usize,
    pub on_commit: Option<CommitHook>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            commit_interval: Duration::from_millis(250),
            channel_capacity: 65_536,
            on_commit: None,
        }
    }
}

/// The sending side of a run's writer. Cloning gives another sender; the thread commits its last
/// batch and ends when every sender is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: flume::Sender<Record>,
}

/// The writer thread; join it with [`WriterThread::join`] to learn how it ended.
pub struct WriterThread {
    handle: JoinHandle<Result<u64, StoreError>>,
}

impl Writer {
    /// Opens its own connection to `path` and starts the thread recording into run `run_id`.
    pub fn spawn(
        path: &Path,
        run_id: i64,
        opts: WriterOptions,
    ) -> Result<(Writer, WriterThread), StoreError> {
        let mut conn = Connection::open(path)?;
        schema::prepare(&mut conn)?;
        let (tx, rx) = flume::bounded(opts.channel_capacity);
        let handle = std::thread::Builder::new()
            .name("ceiling-writer".into())
            .spawn(move || write_loop(conn, run_id, rx, opts))
            .map_err(|e| StoreError::WriterGone(e.to_string()))?;
        Ok((Writer { tx }, WriterThread { handle }))
    }

    /// Sends a record, waiting (asynchronously) while the channel is full.
    pub async fn send(&self, rec: Record) -> Result<(), StoreError> {
        self.tx
            .send_async(rec)
            .await
            .map_err(|_| StoreError::WriterGone("channel closed".into()))
    }

    /// Sends a record from a plain thread, blocking while the channel is full.
    pub fn send_blocking(&self, rec: Record) -> Result<(), StoreError> {
        self.tx
            .send(rec)
            .map_err(|_| StoreError::WriterGone("channel closed".into()))
    }

    /// Waits until everything sent before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (ack_tx, ack_rx) = flume::bounded(1);
        self.send(Record::Flush(ack_tx)).await?;
        ack_rx
            .recv_async()
            .await
            .map_err(|_| StoreError::WriterGone("no flush acknowledgement".into()))
    }
}

impl WriterThread {
    /// Waits for the thread to commit its last batch; returns the number of records written.
    pub fn join(self) -> Result<u64, StoreError> {
        self.handle
            .join()
            .map_err(|_| StoreError::WriterGone("writer thread panicked".into()))?
    }
}

fn write_loop(
    mut conn: Connection,
    run_id: i64,
    rx: flume::Receiver<Record>,
    opts: WriterOptions,
) -> Result<u64, StoreError> {
    let mut written = 0u64;
    let mut series = SeriesIds::default();
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + opts.commit_interval;
        // IMMEDIATE: the write lock is taken (waiting on the busy timeout) when the batch starts,
        // never by upgrading a read, which SQLite may refuse at once to avoid a deadlock.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(rec) = next.take() {
            match rec {
                Record::Flush(ack) => {
                    acks.push(ack);
                    break;
                }
                rec => {
                    insert(&tx, run_id, &mut series, rec)?;
                    written += 1;
                }
            }
            // recv_deadline returns at once while records are queued, so a producer that
            // never lets the channel drain would otherwise hold the batch open forever.
            if Instant::now() >= deadline {
                break;
            }
            next = rx.recv_deadline(deadline).ok();
        }
        tx.commit()?;
        for ack in acks {
            // The flusher may have given up waiting; nothing to do then.
            let _ = ack.send(());
        }
        if let Some(hook) = &opts.on_commit {
            hook(written);
        }
    }
    Ok(written)
}

fn insert(
    tx: &Transaction<'_>,
    run_id: i64,
    series: &mut SeriesIds,
    rec: Record,
) -> Result<(), StoreError> {
    match rec {
        Record::Step(s) => {
            tx.prepare_cached(
                "INSERT INTO steps (run_id, idx, batch_size, input_len, output_len, pattern,
                    start_t_s, end_t_s, rate_rps, burstiness)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                run_id,
                s.idx,
                s.batch_size,
                s.input_len,
                s.output_len,
                s.pattern.as_str(),
                s.start_t_s,
                s.end_t_s,
                s.rate_rps,
                s.burstiness
            ])?;
        }
        Record::RunGpus(gpus) => super::update_run_gpus(tx, run_id, &gpus)?,
        Record::StepEnd { idx, end_t_s } => {
            tx.prepare_cached("UPDATE steps SET end_t_s = ?3 WHERE run_id = ?1 AND idx = ?2")?
                .execute(params![run_id, idx, end_t_s])?;
        }
        Record::Request(r) => insert_request(tx, run_id, &r)?,
        Record::Tick(t) => insert_ticks(tx, run_id, &[t])?,
        Record::Ticks(ts) => insert_ticks(tx, run_id, &ts)?,
        Record::Gpu(g) => insert_gpu(tx, run_id, &g)?,
        Record::Scrape(s) => insert_scrape(tx, run_id, series, None, *s)?,
        Record::MetricSource(m) => super::roles::insert_source(tx, run_id, &m)?,
        Record::RoleScrape { source, scrape } => {
            insert_scrape(tx, run_id, series, Some(source), *scrape)?;
        }
        Record::Finding(f) => {
            tx.prepare_cached(
                "INSERT INTO findings (run_id, step_idx, code, severity, message, evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                run_id,
                f.step_idx,
                f.code,
                f.severity.as_str(),
                f.message,
                f.evidence.to_string()
            ])?;
        }
        Record::Flush(_) => {}
    }
    Ok(())
}

/// The ticks as a row a step's run of them (a batch from the ticker is one step's).
fn insert_ticks(
    tx: &Transaction<'_>,
    run_id: i64,
    ticks: &[LatenessTick],
) -> Result<(), StoreError> {
    for batch in ticks.chunk_by(|a, b| a.step_idx == b.step_idx) {
        tx.prepare_cached(
            "INSERT INTO tick_batches (run_id, step_idx, t_s, late_s) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            run_id,
            batch[0].step_idx,
            number_array(batch.iter().map(|t| t.t_s)),
            number_array(batch.iter().map(|t| t.late_s)),
        ])?;
    }
    Ok(())
}

fn insert_request(tx: &Transaction<'_>, run_id: i64, r: &RequestRecord) -> Result<(), StoreError> {
    let chunks = StoredChunks::encode(&r.chunks);
    tx.prepare_cached(
        "INSERT INTO requests (run_id, step_idx, worker, wave, warmup, sent_t_s, headers_t_s,
            first_token_t_s, first_answer_t_s, done_t_s, prompt_tokens_requested,
            completion_tokens_requested, prompt_tokens_reported, completion_tokens_reported,
            cached_tokens_reported, outcome, http_status, error, response_id, scheduled_t_s,
            prompt_from_text, chunk_t_s, chunk_tokens, chunk_kinds)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24)",
    )?
    .execute(params![
        run_id,
        r.step_idx,
        r.worker,
        r.wave,
        r.warmup,
        r.sent_t_s,
        r.headers_t_s,
        r.first_token_t_s,
        r.first_answer_t_s,
        r.done_t_s,
        r.prompt_tokens_requested,
        r.completion_tokens_requested,
        r.prompt_tokens_reported,
        r.completion_tokens_reported,
        r.cached_tokens_reported,
        r.outcome.as_str(),
        r.http_status,
        r.error,
        r.response_id,
        r.scheduled_t_s,
        r.prompt_from_text,
        chunks.t_s,
        chunks.tokens,
        chunks.kinds
    ])?;
    Ok(())
}

fn insert_gpu(tx: &Transaction<'_>, run_id: i64, g: &GpuSample) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO gpu_samples (run_id, gpu_index, t_s, util_gpu_pct, util_mem_pct,
            mem_used_bytes, mem_total_bytes, power_w, energy_j, sm_clock_mhz, mem_clock_mhz,
            temp_c, throttle_reasons, pcie_tx_bytes_s, pcie_rx_bytes_s, mig_instance,
            gr_engine_active, sm_active, sm_occupancy, dram_active, tensor_active)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21)",
    )?
    .execute(params![
        run_id,
        g.gpu_index,
        g.t_s,
        g.util_gpu_pct,
        g.util_mem_pct,
        g.mem_used_bytes.map(|v| v as i64),
        g.mem_total_bytes.map(|v| v as i64),
        g.power_w,
        g.energy_j,
        g.sm_clock_mhz,
        g.mem_clock_mhz,
        g.temp_c,
        g.throttle_reasons.map(|v| v as i64),
        g.pcie_tx_bytes_s,
        g.pcie_rx_bytes_s,
        g.mig_instance,
        g.gr_engine_active,
        g.sm_active,
        g.sm_occupancy,
        g.dram_active,
        g.tensor_active
    ])?;
    Ok(())
}
