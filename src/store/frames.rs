//! A run read back for the analysis, column by column: each table with one query, its rows
//! appended to column vectors, and the polars frames built from those
//! ([`Recording::from_columns`]). No per-request or per-chunk struct on the way; the scrapes go
//! through the engine adapters into canonical samples here, once.

use std::ops::Range;

use rusqlite::{Connection, OptionalExtension, params};

use ceiling_collectors::{GpuInfo, GpuSample};
use ceiling_reports::engine;
use ceiling_reports::recording::{ChunkColumns, RecordingParts, RequestColumns, RunInfo};
use ceiling_reports::{Outcome, Recording};

use super::arrays::StoredChunks;
use super::{Store, StoreError};

/// The counted GPUs' samples and the others', by the run's inventory: a GPU marked
/// `counted: false` is apart; one unmarked (runs from before the choice, GPUs an import added)
/// counts.
fn split_counted(
    samples: Vec<GpuSample>,
    inventory: &str,
) -> Result<(Vec<GpuSample>, Vec<GpuSample>), StoreError> {
    let inv: Vec<GpuInfo> = serde_json::from_str(inventory).map_err(|source| StoreError::Json {
        column: "gpu_inventory",
        source,
    })?;
    let apart: Vec<u32> = inv
        .iter()
        .filter(|g| g.counted == Some(false))
        .map(|g| g.index)
        .collect();
    Ok(samples
        .into_iter()
        .partition(|s| !apart.contains(&s.gpu_index)))
}

impl Store {
    /// Run `run_id` as the analysis reads it. The manifest's DP is left for the caller, who
    /// reads the probe configuration.
    pub fn load_recording(&self, run_id: i64) -> Result<Recording, StoreError> {
        let (engine_kind, model, inventory) = self
            .conn
            .query_row(
                "SELECT engine_kind, model, gpu_inventory FROM runs WHERE id = ?1",
                params![run_id],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?
            .ok_or(StoreError::NoSuchRun(run_id))?;
        let (gpu, gpu_other) = split_counted(self.load_gpu_samples(run_id)?, &inventory)?;
        let (requests, ids, stored) = self.request_columns(run_id)?;
        let chunks = match stored {
            Some(chunks) => chunks,
            None => self.chunk_columns(run_id, &ids, &requests)?,
        };
        let scrapes = self.load_scrapes(run_id)?;
        let samples = engine::engine_samples(&scrapes, engine::flavor(engine_kind.as_deref()));
        let roles = self.load_roles(run_id)?;
        let mut rec = Recording::from_columns(RecordingParts {
            info: RunInfo {
                run_id: Some(run_id),
                engine_kind,
                model,
                dp: None,
            },
            steps: self.load_steps(run_id)?,
            requests,
            chunks,
            ticks: self.load_ticks(run_id)?,
            engine: samples,
            scrapes: scrapes.len(),
            gpu,
            gpu_other,
        })
        .map_err(|e| StoreError::Frames(e.to_string()))?;
        rec.roles = roles;
        Ok(rec)
    }

    /// The run's requests in id order, as columns, with their ids; and their chunks, read
    /// from the requests' own rows, unless the run was recorded before v11 (`None`: its
    /// chunks are rows of `chunks`). A run is written in one layout.
    fn request_columns(
        &self,
        run_id: i64,
    ) -> Result<(RequestColumns, Vec<i64>, Option<ChunkColumns>), StoreError> {
        let mut stmt = self.conn.prepare(super::read::REQUESTS_SQL)?;
        let mut rows = stmt.query(params![run_id])?;
        let mut c = RequestColumns::default();
        let mut ids = Vec::new();
        let mut chunks = ChunkColumns::default();
        let mut legacy = false;
        while let Some(r) = rows.next()? {
            let step_idx: u32 = r.get(1)?;
            let row = ids.len() as u32;
            let stored = StoredChunks::decode_row(r, 21, |t, n, reasoning| {
                chunks.push(row, step_idx, t, n, reasoning);
            })?;
            legacy |= !stored;
            ids.push(r.get(0)?);
            c.step_idx.push(step_idx);
            c.worker.push(r.get(2)?);
            c.wave.push(r.get(3)?);
            c.warmup.push(r.get(4)?);
            c.sent_t_s.push(r.get(5)?);
            c.headers_t_s.push(r.get(6)?);
            c.first_token_t_s.push(r.get(7)?);
            c.first_answer_t_s.push(r.get(8)?);
            c.done_t_s.push(r.get(9)?);
            c.prompt_tokens_requested.push(r.get(10)?);
            c.completion_tokens_requested.push(r.get(11)?);
            c.prompt_tokens_reported.push(r.get(12)?);
            c.completion_tokens_reported.push(r.get(13)?);
            c.cached_tokens_reported.push(r.get(14)?);
            let outcome = r.get_ref(15)?.as_str().unwrap_or_default();
            // As `load_requests` reads it: an outcome this version does not know is malformed.
            c.outcome.push(
                Outcome::parse(outcome)
                    .unwrap_or(Outcome::MalformedSse)
                    .as_str(),
            );
            c.http_status.push(r.get(16)?);
            c.error.push(r.get(17)?);
            c.response_id.push(r.get(18)?);
            c.scheduled_t_s.push(r.get(19)?);
            c.prompt_from_text
                .push(r.get::<_, Option<bool>>(20)?.unwrap_or(false));
        }
        Ok((c, ids, (!legacy).then_some(chunks)))
    }

    /// The chunks of a run recorded before v11 (rows of `chunks`) in request then arrival
    /// order, as columns. `ids` are the requests' ids
    /// in row order (ascending) and `requests` their columns. The rows are read in two halves
    /// at once, the second on a read-only connection of its own (SQLite's stepping through the
    /// rows is most of the load's time, and one connection runs on one core); the halves split
    /// the requests where their completion tokens (about a chunk each) reach half the run's.
    fn chunk_columns(
        &self,
        run_id: i64,
        ids: &[i64],
        requests: &RequestColumns,
    ) -> Result<ChunkColumns, StoreError> {
        let expected: Vec<usize> = requests
            .completion_tokens_requested
            .iter()
            .zip(&requests.completion_tokens_reported)
            .map(|(&asked, &got)| asked.max(got.unwrap_or(0)) as usize)
            .collect();
        let total: usize = expected.iter().sum();
        let mut split = 0;
        let mut below = 0;
        while split < ids.len() && below < total / 2 {
            below += expected[split];
            split += 1;
        }
        let part = ChunkPart {
            run_id,
            ids,
            step_idx: &requests.step_idx,
        };
        let first_rows = below + below / 8;
        let second = (split > 0 && split < ids.len())
            .then(|| self.reader().ok())
            .flatten();
        let Some(conn) = second else {
            return part.read(&self.conn, 0..ids.len(), total + total / 8);
        };
        std::thread::scope(|s| {
            let rest = total - below;
            let handle = s.spawn(move || part.read(&conn, split..ids.len(), rest + rest / 8));
            let mut first = part.read(&self.conn, 0..split, first_rows)?;
            match handle.join() {
                Ok(second) => first.append(second?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            Ok(first)
        })
    }
}

/// What reading one run's chunks needs, for any range of its request rows.
#[derive(Clone, Copy)]
struct ChunkPart<'a> {
    run_id: i64,
    /// The run's request ids, ascending, in row order.
    ids: &'a [i64],
    /// Each request row's step.
    step_idx: &'a [u32],
}

impl ChunkPart<'_> {
    /// The chunks of request rows `rows`, with room for `capacity` rows.
    fn read(
        &self,
        conn: &Connection,
        rows: Range<usize>,
        capacity: usize,
    ) -> Result<ChunkColumns, StoreError> {
        let (Some(&first), Some(&last)) = (
            self.ids.get(rows.start),
            rows.end.checked_sub(1).and_then(|i| self.ids.get(i)),
        ) else {
            return Ok(ChunkColumns::default());
        };
        // The requests are walked in id order (their rowid range, the run's filter applied to
        // each, never through the `(run_id, step_idx)` index) and each one's chunks by the
        // primary key, so the rows come out in the asked order without SQLite sorting every
        // chunk row in a temporary B-tree (most of the load's time before).
        let mut stmt = conn.prepare(
            "SELECT c.request_id, c.t_s, c.tokens, c.kind FROM requests q
             CROSS JOIN chunks c ON c.request_id = q.id
             WHERE q.id BETWEEN ?2 AND ?3 AND +q.run_id = ?1
             ORDER BY q.id, c.seq",
        )?;
        let mut rows_out = stmt.query(params![self.run_id, first, last])?;
        let mut c = ChunkColumns::with_capacity(capacity);
        let mut row = rows.start;
        while let Some(r) = rows_out.next()? {
            let id: i64 = r.get(0)?;
            while row < rows.end && self.ids[row] < id {
                row += 1;
            }
            if self.ids.get(row) != Some(&id) {
                // A chunk whose request row is missing (cannot happen under the foreign key).
                continue;
            }
            c.push(
                row as u32,
                self.step_idx[row],
                r.get(1)?,
                r.get(2)?,
                r.get_ref(3)?.as_bytes().is_ok_and(|k| k == b"reasoning"),
            );
        }
        Ok(c)
    }
}
