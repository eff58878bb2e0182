//! Reads from the recording: the run list, one run's manifest, and every recorded table of a run
//! loaded back into the types the probe wrote, for analysis and for `ceiling runs`.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use ceiling_collectors::{GpuInfo, GpuSample, ScrapeRecord};
use ceiling_reports::recording::Pattern;
use ceiling_reports::{
    ChunkArrival, ChunkKind, Finding, LatenessTick, Outcome, RequestRecord, Severity, StepRecord,
};

use super::arrays::{StoredChunks, parse_numbers};
use super::series::{StoredSamples, push_samples};
use super::{RunManifest, RunStatus, Store, StoreError};

/// One line of `ceiling runs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub started_at: String,
    pub engine_kind: Option<String>,
    pub model: Option<String>,
    pub steps: i64,
    pub requests: i64,
    pub status: RunStatus,
}

/// A run's manifest with how it ended: the body of `ceiling runs show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub id: i64,
    #[serde(flatten)]
    pub manifest: RunManifest,
    pub probe_config_hash: String,
    pub status: RunStatus,
    pub ended_at: Option<String>,
    pub error: Option<String>,
    pub steps: Vec<StepRecord>,
}

/// A run's requests in id order, the columns in the order [`request_row`] and the frames'
/// loader read them.
pub(super) const REQUESTS_SQL: &str = "SELECT id, step_idx, worker, wave, warmup, sent_t_s,
    headers_t_s, first_token_t_s, first_answer_t_s, done_t_s, prompt_tokens_requested,
    completion_tokens_requested, prompt_tokens_reported, completion_tokens_reported,
    cached_tokens_reported, outcome, http_status, error, response_id, scheduled_t_s,
    prompt_from_text, chunk_t_s, chunk_tokens, chunk_kinds
    FROM requests WHERE run_id = ?1 ORDER BY id";

/// The chunks of a request recorded before v11, as rows (`chunks`), of a run's requests.
const LEGACY_CHUNKS_SQL: &str = "SELECT c.request_id, c.t_s, c.tokens, c.kind FROM chunks c
    JOIN requests q ON q.id = c.request_id WHERE q.run_id = ?1
    ORDER BY c.request_id, c.seq";

fn json_col<T: serde::de::DeserializeOwned>(
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { column, source })
}

fn status_col(text: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(text).ok_or_else(|| StoreError::Json {
        column: "status",
        source: serde::de::Error::custom(format!("unknown status {text:?}")),
    })
}

impl Store {
    /// Every run, newest first.
    pub fn list_runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT r.id, r.started_at, r.engine_kind, r.model, r.status,
                (SELECT COUNT(*) FROM steps s WHERE s.run_id = r.id),
                (SELECT COUNT(*) FROM requests q WHERE q.run_id = r.id)
             FROM runs r ORDER BY r.id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, started_at, engine_kind, model, status, steps, requests) = row?;
            out.push(RunSummary {
                id,
                started_at,
                engine_kind,
                model,
                steps,
                requests,
                status: status_col(&status)?,
            });
        }
        Ok(out)
    }

    /// The id of the newest run.
    pub fn latest_run(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("SELECT MAX(id) FROM runs", [], |r| {
                r.get::<_, Option<i64>>(0)
            })?
            .ok_or(StoreError::NoRuns)
    }

    /// A run's manifest, status and steps.
    pub fn run_detail(&self, run_id: i64) -> Result<RunDetail, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT started_at, tool_version, git_sha, host, command_line, engine_kind,
                    engine_version, base_url, model, probe_config, probe_config_hash,
                    gpu_inventory, status, ended_at, error, engine_limits, model_revision
                 FROM runs WHERE id = ?1",
                params![run_id],
                |r| {
                    Ok((
                        RunManifest {
                            started_at: r.get(0)?,
                            tool_version: r.get(1)?,
                            git_sha: r.get(2)?,
                            host: r.get(3)?,
                            command_line: r.get(4)?,
                            engine_kind: r.get(5)?,
                            engine_version: r.get(6)?,
                            base_url: r.get(7)?,
                            model: r.get(8)?,
                            model_revision: r.get(16)?,
                            probe_config: serde_json::Value::Null,
                            gpu_inventory: Vec::new(),
                            engine_limits: None,
                        },
                        r.get::<_, String>(9)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, String>(11)?,
                        r.get::<_, String>(12)?,
                        r.get::<_, Option<String>>(13)?,
                        r.get::<_, Option<String>>(14)?,
                        r.get::<_, Option<String>>(15)?,
                    ))
                },
            )
            .optional()?
            .ok_or(StoreError::NoSuchRun(run_id))?;
        let (mut manifest, config, hash, inventory, status, ended_at, error, limits) = row;
        manifest.probe_config = json_col("probe_config", &config)?;
        manifest.gpu_inventory = json_col::<Vec<GpuInfo>>("gpu_inventory", &inventory)?;
        manifest.engine_limits = limits
            .as_deref()
            .map(|l| json_col("engine_limits", l))
            .transpose()?;
        Ok(RunDetail {
            id: run_id,
            manifest,
            probe_config_hash: hash,
            status: status_col(&status)?,
            ended_at,
            error,
            steps: self.load_steps(run_id)?,
        })
    }

    pub fn load_steps(&self, run_id: i64) -> Result<Vec<StepRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT idx, batch_size, input_len, output_len, pattern, start_t_s, end_t_s,
                rate_rps, burstiness
             FROM steps WHERE run_id = ?1 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            let pattern: String = r.get(4)?;
            Ok(StepRecord {
                idx: r.get(0)?,
                batch_size: r.get(1)?,
                input_len: r.get(2)?,
                output_len: r.get(3)?,
                pattern: Pattern::parse(&pattern).unwrap_or(Pattern::Wave),
                start_t_s: r.get(5)?,
                end_t_s: r.get(6)?,
                rate_rps: r.get(7)?,
                burstiness: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every request of a run with its chunks, in the order they were recorded.
    pub fn load_requests(&self, run_id: i64) -> Result<Vec<RequestRecord>, StoreError> {
        let mut stmt = self.conn.prepare(REQUESTS_SQL)?;
        let mut rows = stmt.query(params![run_id])?;
        let mut out = Vec::new();
        // Requests recorded before v11 (no chunk arrays): their chunks are rows, read after.
        let mut legacy = HashMap::new();
        while let Some(r) = rows.next()? {
            let (id, mut req) = request_row(r)?;
            let stored = StoredChunks::decode_row(r, 21, |t_s, tokens, reasoning| {
                req.chunks.push(ChunkArrival {
                    t_s,
                    tokens,
                    kind: if reasoning {
                        ChunkKind::Reasoning
                    } else {
                        ChunkKind::Answer
                    },
                });
            })?;
            if !stored {
                legacy.insert(id, out.len());
            }
            out.push(req);
        }
        if !legacy.is_empty() {
            let mut stmt = self.conn.prepare(LEGACY_CHUNKS_SQL)?;
            let mut rows = stmt.query(params![run_id])?;
            while let Some(r) = rows.next()? {
                let Some(&i) = legacy.get(&r.get::<_, i64>(0)?) else {
                    continue;
                };
                let kind: String = r.get(3)?;
                out[i].chunks.push(ChunkArrival {
                    t_s: r.get(1)?,
                    tokens: r.get(2)?,
                    kind: ChunkKind::parse(&kind).unwrap_or(ChunkKind::Answer),
                });
            }
        }
        Ok(out)
    }

    /// The client's lateness ticks in the order they were taken: from the ticker's batches
    /// (v12), then any a run recorded before keeps as rows.
    pub fn load_ticks(&self, run_id: i64) -> Result<Vec<LatenessTick>, StoreError> {
        let mut out = Vec::new();
        let mut stmt = self.conn.prepare(
            "SELECT step_idx, t_s, late_s FROM tick_batches WHERE run_id = ?1 ORDER BY rowid",
        )?;
        let mut rows = stmt.query(params![run_id])?;
        while let Some(r) = rows.next()? {
            let step_idx: u32 = r.get(0)?;
            let t_s = parse_numbers(
                "tick_batches.t_s",
                r.get_ref(1)?.as_str().unwrap_or_default(),
            )?;
            let late_s = parse_numbers(
                "tick_batches.late_s",
                r.get_ref(2)?.as_str().unwrap_or_default(),
            )?;
            if late_s.len() != t_s.len() {
                return Err(StoreError::Column {
                    column: "tick_batches.late_s",
                    what: format!("{} entries for {} ticks", late_s.len(), t_s.len()),
                });
            }
            out.extend(
                t_s.into_iter()
                    .zip(late_s)
                    .map(|(t_s, late_s)| LatenessTick {
                        step_idx,
                        t_s,
                        late_s,
                    }),
            );
        }
        let mut stmt = self.conn.prepare(
            "SELECT step_idx, t_s, late_s FROM client_ticks WHERE run_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok(LatenessTick {
                step_idx: r.get(0)?,
                t_s: r.get(1)?,
                late_s: r.get(2)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    pub fn load_gpu_samples(&self, run_id: i64) -> Result<Vec<GpuSample>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT gpu_index, t_s, util_gpu_pct, util_mem_pct, mem_used_bytes, mem_total_bytes,
                power_w, energy_j, sm_clock_mhz, mem_clock_mhz, temp_c, throttle_reasons,
                pcie_tx_bytes_s, pcie_rx_bytes_s, mig_instance, gr_engine_active, sm_active,
                sm_occupancy, dram_active, tensor_active
             FROM gpu_samples WHERE run_id = ?1 ORDER BY gpu_index, t_s",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok(GpuSample {
                gpu_index: r.get(0)?,
                t_s: r.get(1)?,
                util_gpu_pct: r.get(2)?,
                util_mem_pct: r.get(3)?,
                mem_used_bytes: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                mem_total_bytes: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                power_w: r.get(6)?,
                energy_j: r.get(7)?,
                sm_clock_mhz: r.get(8)?,
                mem_clock_mhz: r.get(9)?,
                temp_c: r.get(10)?,
                throttle_reasons: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
                pcie_tx_bytes_s: r.get(12)?,
                pcie_rx_bytes_s: r.get(13)?,
                mig_instance: r.get(14)?,
                gr_engine_active: r.get(15)?,
                sm_active: r.get(16)?,
                sm_occupancy: r.get(17)?,
                dram_active: r.get(18)?,
                tensor_active: r.get(19)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every scrape of a run with its samples.
    pub fn load_scrapes(&self, run_id: i64) -> Result<Vec<ScrapeRecord>, StoreError> {
        self.scrapes_where(
            "SELECT seq, t_s, duration_s, http_status, error, boundary, sample_series,
                 sample_values
             FROM scrapes WHERE run_id = ?1 ORDER BY seq",
            "SELECT scrape_seq, name, labels, value FROM engine_samples
             WHERE run_id = ?1 ORDER BY rowid",
            run_id,
            params![run_id],
        )
    }

    /// The scrapes the first query selects (in the columns of `scrapes`), with their samples:
    /// those on their rows (schema v10) and those the `legacy` query selects from the per-sample
    /// table of runs recorded before (in its columns). Both are bound to the same `params`, of
    /// which the first is `run_id`.
    pub(super) fn scrapes_where(
        &self,
        scrapes_sql: &str,
        legacy: &str,
        run_id: i64,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ScrapeRecord>, StoreError> {
        let mut stmt = self.conn.prepare(scrapes_sql)?;
        let rows = stmt.query_map(params, |r| {
            let stored = match (r.get(6)?, r.get(7)?) {
                (Some(series), Some(values)) => Some(StoredSamples { series, values }),
                _ => None,
            };
            let scrape = ScrapeRecord {
                seq: r.get::<_, i64>(0)? as u64,
                t_s: r.get(1)?,
                duration_s: r.get(2)?,
                http_status: r.get(3)?,
                error: r.get(4)?,
                samples: Vec::new(),
                boundary: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
            };
            Ok((scrape, stored))
        })?;
        let (mut scrapes, stored): (Vec<ScrapeRecord>, Vec<Option<StoredSamples>>) =
            rows.collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
        push_samples(&self.conn, run_id, stored, legacy, params, &mut scrapes)?;
        Ok(scrapes)
    }

    pub fn load_findings(&self, run_id: i64) -> Result<Vec<Finding>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT step_idx, code, severity, message, evidence FROM findings
             WHERE run_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok((
                r.get::<_, Option<u32>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (step_idx, code, severity, message, evidence) = row?;
            out.push(Finding {
                step_idx,
                code,
                severity: Severity::parse(&severity).unwrap_or(Severity::Error),
                message,
                evidence: json_col("evidence", &evidence)?,
            });
        }
        Ok(out)
    }

    /// Replaces a run's findings with a freshly computed set (analysis is reproducible).
    pub fn replace_findings(&self, run_id: i64, findings: &[Finding]) -> Result<(), StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        tx.execute("DELETE FROM findings WHERE run_id = ?1", params![run_id])?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO findings (run_id, step_idx, code, severity, message, evidence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for f in findings {
                stmt.execute(params![
                    run_id,
                    f.step_idx,
                    f.code,
                    f.severity.as_str(),
                    f.message,
                    f.evidence.to_string()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

fn request_row(r: &Row<'_>) -> rusqlite::Result<(i64, RequestRecord)> {
    let outcome: String = r.get(15)?;
    Ok((
        r.get(0)?,
        RequestRecord {
            response_id: r.get(18)?,
            scheduled_t_s: r.get(19)?,
            step_idx: r.get(1)?,
            worker: r.get(2)?,
            wave: r.get(3)?,
            warmup: r.get(4)?,
            sent_t_s: r.get(5)?,
            headers_t_s: r.get(6)?,
            first_token_t_s: r.get(7)?,
            first_answer_t_s: r.get(8)?,
            done_t_s: r.get(9)?,
            prompt_tokens_requested: r.get(10)?,
            completion_tokens_requested: r.get(11)?,
            prompt_tokens_reported: r.get(12)?,
            completion_tokens_reported: r.get(13)?,
            cached_tokens_reported: r.get(14)?,
            // NULL in runs recorded before the flag: their prompts were exact.
            prompt_from_text: r.get::<_, Option<bool>>(20)?.unwrap_or(false),
            outcome: Outcome::parse(&outcome).unwrap_or(Outcome::MalformedSse),
            http_status: r.get(16)?,
            error: r.get(17)?,
            chunks: Vec::new(),
        },
    ))
}
