//! What the history keeps of an analysed run (`run_results`, `step_results`; schema v5), and a
//! history read back: the runs that share a run's history key, each step with its key and
//! results ([`HistoryStep`]). The key that makes runs comparable is host, GPU model and count,
//! engine kind, model and probe-config hash; driver, engine version and GPU UUIDs are kept per
//! run so that a change of them shows in the attribution rather than starting a new history.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params};

use ceiling_collectors::GpuInfo;
use ceiling_reports::history::{HistoryStep, RunKey, RunResult, StepResult};

use super::{Store, StoreError};

/// Which runs a history holds; `None` matches any value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    pub host: Option<String>,
    pub gpu_model: Option<String>,
    pub gpu_count: Option<u32>,
    pub engine_kind: Option<String>,
    pub model: Option<String>,
    pub probe_config_hash: Option<String>,
}

const STEP_COLUMNS: &str = "step_idx, batch_size, input_len, output_len, t_fwd_s,
    t_fwd_client_s, t_fwd_engine_s, t_fwd_identity_s, own_rel_sigma, tpot_p50_s, tpot_p99_s,
    ttft_p50_s, ttft_p99_s, itl_p50_s, itl_p99_s, throughput_tok_s, running_mean,
    kv_usage_max_frac, kv_capacity_tokens, preemptions, gpu_util_mean_pct, sm_clock_mean_mhz,
    mem_clock_mean_mhz, power_mean_w, temp_mean_c, throttle_reasons, energy_per_output_token_j";

impl Store {
    /// Replaces run `run_id`'s kept results with these.
    pub fn replace_results(
        &self,
        run_id: i64,
        run: &RunResult,
        steps: &[StepResult],
    ) -> Result<(), StoreError> {
        let ceilings = serde_json::to_string(&run.ceilings).map_err(|source| StoreError::Json {
            column: "ceilings",
            source,
        })?;
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        tx.execute(
            "DELETE FROM step_results WHERE run_id = ?1",
            params![run_id],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO run_results (run_id, analysed_at, tool_version, fit_a_s,
                fit_b_s_per_seq, fit_c_s_per_seq_token, fit_residual_std_s, ceiling_tok_s,
                ceiling_bs_per_rank, ceilings, kv_capacity_tokens, max_num_seqs, findings_info,
                findings_warn, findings_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            params![
                run_id,
                now,
                env!("CARGO_PKG_VERSION"),
                run.fit_a_s,
                run.fit_b_s_per_seq,
                run.fit_c_s_per_seq_token,
                run.fit_residual_std_s,
                run.ceiling_tok_s,
                run.ceiling_bs_per_rank,
                ceilings,
                run.kv_capacity_tokens,
                run.max_num_seqs,
                run.findings_info,
                run.findings_warn,
                run.findings_error,
            ],
        )?;
        {
            let mut stmt = tx.prepare(&format!(
                "INSERT INTO step_results (run_id, {STEP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5,
                 ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
                 ?22, ?23, ?24, ?25, ?26, ?27, ?28)"
            ))?;
            for s in steps {
                stmt.execute(params![
                    run_id,
                    s.step_idx,
                    s.batch_size,
                    s.input_len,
                    s.output_len,
                    s.t_fwd_s,
                    s.t_fwd_client_s,
                    s.t_fwd_engine_s,
                    s.t_fwd_identity_s,
                    s.own_rel_sigma,
                    s.tpot_p50_s,
                    s.tpot_p99_s,
                    s.ttft_p50_s,
                    s.ttft_p99_s,
                    s.itl_p50_s,
                    s.itl_p99_s,
                    s.throughput_tok_s,
                    s.running_mean,
                    s.kv_usage_max_frac,
                    s.kv_capacity_tokens,
                    s.preemptions,
                    s.gpu_util_mean_pct,
                    s.sm_clock_mean_mhz,
                    s.mem_clock_mean_mhz,
                    s.power_mean_w,
                    s.temp_mean_c,
                    s.throttle_reasons,
                    s.energy_per_output_token_j,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether run `run_id` has kept results.
    pub fn has_results(&self, run_id: i64) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM run_results WHERE run_id = ?1)",
            params![run_id],
            |r| r.get(0),
        )?)
    }

    /// The history filter of run `run_id`: its host, GPUs, engine kind, model and probe hash.
    pub fn history_filter(&self, run_id: i64) -> Result<HistoryFilter, StoreError> {
        self.conn
            .query_row(
                "SELECT host, gpu_model, gpu_count, engine_kind, model, probe_config_hash
                 FROM runs WHERE id = ?1",
                params![run_id],
                |r| {
                    Ok(HistoryFilter {
                        host: r.get(0)?,
                        gpu_model: r.get(1)?,
                        gpu_count: r.get(2)?,
                        engine_kind: r.get(3)?,
                        model: r.get(4)?,
                        probe_config_hash: r.get(5)?,
                    })
                },
            )
            .optional()?
            .ok_or(StoreError::NoSuchRun(run_id))
    }

    /// The finished runs matching `f` that have no kept results yet (analysed before v3, or
    /// never), oldest first.
    pub fn runs_without_results(&self, f: &HistoryFilter) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "SELECT r.id FROM runs r WHERE r.status = 'complete' AND {}
               AND NOT EXISTS (SELECT 1 FROM run_results x WHERE x.run_id = r.id)
             ORDER BY r.started_at, r.id",
            FILTER_SQL
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(filter_params(f), |r| r.get::<_, i64>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every analysed step of the runs matching `f`, in start order.
    pub fn history(&self, f: &HistoryFilter) -> Result<Vec<HistoryStep>, StoreError> {
        let sql = format!(
            "SELECT r.id, r.started_at, r.host, r.gpu_model, r.gpu_count, r.gpu_inventory,
                r.driver_version, r.engine_kind, r.engine_version, r.model, r.probe_config_hash,
                r.status, r.model_revision, x.fit_a_s, x.fit_b_s_per_seq, x.fit_c_s_per_seq_token,
                x.fit_residual_std_s, x.ceiling_tok_s, x.ceiling_bs_per_rank, x.ceilings,
                x.kv_capacity_tokens, x.max_num_seqs, x.findings_info, x.findings_warn,
                x.findings_error, {}
             FROM runs r JOIN run_results x ON x.run_id = r.id
                JOIN step_results s ON s.run_id = r.id
             WHERE {} ORDER BY r.started_at, r.id, s.step_idx",
            STEP_COLUMNS
                .split(',')
                .map(|c| format!("s.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", "),
            FILTER_SQL
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(filter_params(f))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(history_row(r)?);
        }
        Ok(out)
    }
}

/// `r.` columns against `?1..?6`, a NULL parameter matching anything.
const FILTER_SQL: &str = "(?1 IS NULL OR r.host = ?1) AND (?2 IS NULL OR r.gpu_model = ?2)
    AND (?3 IS NULL OR r.gpu_count = ?3) AND (?4 IS NULL OR r.engine_kind = ?4)
    AND (?5 IS NULL OR r.model = ?5) AND (?6 IS NULL OR r.probe_config_hash = ?6)";

fn filter_params(f: &HistoryFilter) -> rusqlite::ParamsFromIter<Vec<Value>> {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    rusqlite::params_from_iter(vec![
        text(&f.host),
        text(&f.gpu_model),
        f.gpu_count
            .map_or(Value::Null, |n| Value::Integer(i64::from(n))),
        text(&f.engine_kind),
        text(&f.model),
        text(&f.probe_config_hash),
    ])
}

fn history_row(r: &Row<'_>) -> Result<HistoryStep, StoreError> {
    let inventory: String = r.get(5)?;
    let gpus: Vec<GpuInfo> =
        serde_json::from_str(&inventory).map_err(|source| StoreError::Json {
            column: "gpu_inventory",
            source,
        })?;
    let uuids: Vec<String> = gpus.iter().filter_map(|g| g.uuid.clone()).collect();
    let ceilings: String = r.get(19)?;
    let key = RunKey {
        run_id: r.get(0)?,
        started_at: r.get(1)?,
        host: r.get(2)?,
        gpu_model: r.get(3)?,
        gpu_count: r.get(4)?,
        gpu_uuids: (!uuids.is_empty()).then(|| uuids.join(",")),
        driver_version: r.get(6)?,
        engine_kind: r.get(7)?,
        engine_version: r.get(8)?,
        model: r.get(9)?,
        probe_config_hash: r.get(10)?,
        power_limit_w: gpus.iter().filter_map(|g| g.power_limit_w).reduce(f64::min),
        status: r.get(11)?,
        model_revision: r.get(12)?,
        other_gpu_processes: other_processes(&gpus),
        gpu_compute_processes: counted(&gpus)
            .map(|g| g.compute_pids.as_ref().map(|p| p.len() as u32))
            .sum(),
    };
    let run = RunResult {
        fit_a_s: r.get(13)?,
        fit_b_s_per_seq: r.get(14)?,
        fit_c_s_per_seq_token: r.get(15)?,
        fit_residual_std_s: r.get(16)?,
        ceiling_tok_s: r.get(17)?,
        ceiling_bs_per_rank: r.get(18)?,
        ceilings: serde_json::from_str(&ceilings).map_err(|source| StoreError::Json {
            column: "ceilings",
            source,
        })?,
        kv_capacity_tokens: r.get(20)?,
        max_num_seqs: r.get(21)?,
        findings_info: r.get(22)?,
        findings_warn: r.get(23)?,
        findings_error: r.get(24)?,
    };
    let o = 25;
    let step = StepResult {
        step_idx: r.get(o)?,
        batch_size: r.get(o + 1)?,
        input_len: r.get(o + 2)?,
        output_len: r.get(o + 3)?,
        t_fwd_s: r.get(o + 4)?,
        t_fwd_client_s: r.get(o + 5)?,
        t_fwd_engine_s: r.get(o + 6)?,
        t_fwd_identity_s: r.get(o + 7)?,
        own_rel_sigma: r.get(o + 8)?,
        tpot_p50_s: r.get(o + 9)?,
        tpot_p99_s: r.get(o + 10)?,
        ttft_p50_s: r.get(o + 11)?,
        ttft_p99_s: r.get(o + 12)?,
        itl_p50_s: r.get(o + 13)?,
        itl_p99_s: r.get(o + 14)?,
        throughput_tok_s: r.get(o + 15)?,
        running_mean: r.get(o + 16)?,
        kv_usage_max_frac: r.get(o + 17)?,
        kv_capacity_tokens: r.get(o + 18)?,
        preemptions: r.get(o + 19)?,
        gpu_util_mean_pct: r.get(o + 20)?,
        sm_clock_mean_mhz: r.get(o + 21)?,
        mem_clock_mean_mhz: r.get(o + 22)?,
        power_mean_w: r.get(o + 23)?,
        temp_mean_c: r.get(o + 24)?,
        throttle_reasons: r.get(o + 25)?,
        energy_per_output_token_j: r.get(o + 26)?,
    };
    Ok(HistoryStep { key, run, step })
}

/// The GPUs the run counts (all, in runs recorded before the choice).
fn counted(gpus: &[GpuInfo]) -> impl Iterator<Item = &GpuInfo> {
    gpus.iter().filter(|g| g.counted != Some(false))
}

/// `pid on GPU n` for each compute process beside the engine's on a counted GPU; `None` where
/// any counted GPU could not tell them apart, or the run has no GPU.
fn other_processes(gpus: &[GpuInfo]) -> Option<String> {
    let per_gpu: Option<Vec<String>> = counted(gpus)
        .map(|g| {
            g.other_pids.as_ref().map(|pids| {
                pids.iter()
                    .map(|p| format!("{p} on GPU {}", g.index))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
        .collect();
    let per_gpu = per_gpu.filter(|v| !v.is_empty())?;
    Some(
        per_gpu
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
    )
}
