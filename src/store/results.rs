//! Imported benchmark results (`results`, `result_requests`; schema v3): written one file per
//! transaction, so a file is either wholly in the store or not at all; a file whose sha256 is
//! already there is not written again.

use rusqlite::params;
use rusqlite::types::Value;
use serde::Serialize;

use ceiling_reports::peer::{LoadMode, PeerPoint, PeerRequest, Stats, Tool};

use super::{Store, StoreError};

/// What the user said about the deployment behind a result (none of it is in the tools'
/// files).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Deployment {
    pub gpu: Option<String>,
    pub tp: Option<u32>,
    pub dp: Option<u32>,
    /// The model's `config.json` text.
    #[serde(skip)]
    pub model_config: Option<String>,
    pub note: Option<String>,
}

/// One stored result with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct StoredResult {
    pub id: i64,
    pub imported_at: String,
    pub file_path: String,
    pub file_sha256: String,
    pub point: PeerPoint,
    pub deployment: Deployment,
}

/// What importing one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// New rows, by id.
    Imported(Vec<i64>),
    /// The same content was imported before: its rows.
    AlreadyImported(Vec<i64>),
}

const METRICS: [&str; 4] = ["ttft", "tpot", "itl", "e2e"];
const FIGURES: [&str; 6] = ["mean", "p50", "p90", "p95", "p99", "std"];

const SCALARS: [&str; 27] = [
    "imported_at",
    "file_path",
    "file_sha256",
    "point_idx",
    "tool",
    "tool_version",
    "label",
    "model",
    "endpoint",
    "mode",
    "concurrency",
    "request_rate",
    "burstiness",
    "dataset",
    "input_len_requested",
    "output_len_requested",
    "input_len_mean",
    "output_len_mean",
    "ignore_eos",
    "warmup_requests",
    "completed",
    "failed",
    "duration_s",
    "req_per_s",
    "output_tok_per_s",
    "total_tok_per_s",
    "tool_figures",
];
const DEPLOYMENT: [&str; 5] = ["gpu", "tp", "dp", "model_config", "note"];

fn stat_columns() -> impl Iterator<Item = String> {
    METRICS
        .into_iter()
        .flat_map(|m| FIGURES.into_iter().map(move |f| format!("{m}_{f}_s")))
}

fn all_columns() -> Vec<String> {
    SCALARS
        .iter()
        .map(|s| s.to_string())
        .chain(stat_columns())
        .chain(DEPLOYMENT.iter().map(|s| s.to_string()))
        .collect()
}

fn opt<T: Into<Value>>(x: Option<T>) -> Value {
    x.map_or(Value::Null, Into::into)
}

fn count(x: Option<u64>) -> Value {
    opt(x.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))
}

fn stats_values(s: &Stats) -> [Value; 6] {
    [s.mean_s, s.p50_s, s.p90_s, s.p95_s, s.p99_s, s.std_s].map(opt)
}

fn json_text<T: Serialize>(column: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Json { column, source })
}

impl Store {
    /// The result ids already stored from a file with this sha256.
    pub fn results_with_sha(&self, sha256: &str) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM results WHERE file_sha256 = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map(params![sha256], |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(ids)
    }

    /// Stores one file's points and their requests in one transaction.
    pub fn import_result_file(
        &self,
        file_path: &str,
        sha256: &str,
        imported_at: &str,
        points: &[PeerPoint],
        dep: &Deployment,
    ) -> Result<ImportOutcome, StoreError> {
        let before = self.results_with_sha(sha256)?;
        if !before.is_empty() {
            return Ok(ImportOutcome::AlreadyImported(before));
        }
        let cols = all_columns();
        let sql = format!(
            "INSERT INTO results ({}) VALUES ({})",
            cols.join(", "),
            vec!["?"; cols.len()].join(", ")
        );
        let tx = self.conn.unchecked_transaction()?;
        let mut ids = Vec::new();
        for (i, p) in points.iter().enumerate() {
            let mut values: Vec<Value> = vec![
                imported_at.to_string().into(),
                file_path.to_string().into(),
                sha256.to_string().into(),
                (i as i64).into(),
                p.tool.as_str().to_string().into(),
                opt(p.tool_version.clone()),
                opt(p.label.clone()),
                opt(p.model.clone()),
                opt(p.endpoint.clone()),
                p.mode.as_str().to_string().into(),
                opt(p.concurrency),
                opt(p.request_rate),
                opt(p.burstiness),
                opt(p.dataset.clone()),
                opt(p.input_len_requested),
                opt(p.output_len_requested),
                opt(p.input_len_mean),
                opt(p.output_len_mean),
                opt(p.ignore_eos.map(i64::from)),
                count(p.warmup_requests),
                count(p.completed),
                count(p.failed),
                opt(p.duration_s),
                opt(p.req_per_s),
                opt(p.output_tok_per_s),
                opt(p.total_tok_per_s),
                json_text("tool_figures", &p.tool_figures)?.into(),
            ];
            for s in [&p.ttft, &p.tpot, &p.itl, &p.e2e] {
                values.extend(stats_values(s));
            }
            values.extend([
                opt(dep.gpu.clone()),
                opt(dep.tp.map(i64::from)),
                opt(dep.dp.map(i64::from)),
                opt(dep.model_config.clone()),
                opt(dep.note.clone()),
            ]);
            tx.execute(&sql, rusqlite::params_from_iter(values))?;
            let id = tx.last_insert_rowid();
            insert_requests(&tx, id, &p.requests)?;
            ids.push(id);
        }
        tx.commit()?;
        Ok(ImportOutcome::Imported(ids))
    }

    /// Every stored result, oldest first, without their requests.
    pub fn list_results(&self) -> Result<Vec<StoredResult>, StoreError> {
        let ids: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT id FROM results ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        ids.into_iter()
            .map(|id| self.load_result(id, false))
            .collect()
    }

    /// One stored result; with `requests`, its per-request rows too.
    pub fn load_result(&self, id: i64, requests: bool) -> Result<StoredResult, StoreError> {
        let cols = all_columns();
        let sql = format!("SELECT {} FROM results WHERE id = ?1", cols.join(", "));
        let mut stored = self
            .conn
            .query_row(&sql, params![id], |r| row_to_result(id, r))
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => StoreError::NoSuchResult(id),
                e => e.into(),
            })?;
        let figures: String = self.conn.query_row(
            "SELECT tool_figures FROM results WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        stored.point.tool_figures =
            serde_json::from_str(&figures).map_err(|source| StoreError::Json {
                column: "tool_figures",
                source,
            })?;
        if requests {
            stored.point.requests = self.load_result_requests(id)?;
        }
        Ok(stored)
    }

    fn load_result_requests(&self, id: i64) -> Result<Vec<PeerRequest>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT start_s, ttft_s, e2e_s, input_tokens, output_tokens, ok, error, itl_s
             FROM result_requests WHERE result_id = ?1 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![id], |r| {
            Ok((
                PeerRequest {
                    start_s: r.get(0)?,
                    ttft_s: r.get(1)?,
                    e2e_s: r.get(2)?,
                    input_tokens: r.get(3)?,
                    output_tokens: r.get(4)?,
                    ok: r.get(5)?,
                    error: r.get(6)?,
                    itl_s: Vec::new(),
                },
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        rows.map(|row| {
            let (mut req, gaps) = row?;
            if let Some(g) = gaps {
                req.itl_s = serde_json::from_str(&g).map_err(|source| StoreError::Json {
                    column: "itl_s",
                    source,
                })?;
            }
            Ok(req)
        })
        .collect()
    }
}

fn insert_requests(
    tx: &rusqlite::Transaction,
    id: i64,
    reqs: &[PeerRequest],
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare(
        "INSERT INTO result_requests (result_id, idx, start_s, ttft_s, e2e_s, input_tokens,
             output_tokens, ok, error, itl_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (i, r) in reqs.iter().enumerate() {
        let gaps = if r.itl_s.is_empty() {
            None
        } else {
            Some(json_text("itl_s", &r.itl_s)?)
        };
        stmt.execute(params![
            id,
            i as i64,
            r.start_s,
            r.ttft_s,
            r.e2e_s,
            r.input_tokens,
            r.output_tokens,
            r.ok,
            r.error,
            gaps
        ])?;
    }
    Ok(())
}

fn row_to_result(id: i64, r: &rusqlite::Row) -> rusqlite::Result<StoredResult> {
    let tool: String = r.get("tool")?;
    let tool = Tool::parse(&tool).ok_or_else(|| {
        rusqlite::Error::InvalidColumnType(0, format!("tool {tool:?}"), rusqlite::types::Type::Text)
    })?;
    let stats = |m: &str| -> rusqlite::Result<Stats> {
        let g = |f: &str| r.get::<_, Option<f64>>(format!("{m}_{f}_s").as_str());
        Ok(Stats {
            mean_s: g("mean")?,
            p50_s: g("p50")?,
            p90_s: g("p90")?,
            p95_s: g("p95")?,
            p99_s: g("p99")?,
            std_s: g("std")?,
        })
    };
    let count = |c: &str| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(c)?.map(|x| x.max(0) as u64))
    };
    let mut p = PeerPoint::new(tool);
    p.tool_version = r.get("tool_version")?;
    p.label = r.get("label")?;
    p.model = r.get("model")?;
    p.endpoint = r.get("endpoint")?;
    p.mode = LoadMode::parse(&r.get::<_, String>("mode")?);
    p.concurrency = r.get("concurrency")?;
    p.request_rate = r.get("request_rate")?;
    p.burstiness = r.get("burstiness")?;
    p.dataset = r.get("dataset")?;
    p.input_len_requested = r.get("input_len_requested")?;
    p.output_len_requested = r.get("output_len_requested")?;
    p.input_len_mean = r.get("input_len_mean")?;
    p.output_len_mean = r.get("output_len_mean")?;
    p.ignore_eos = r.get("ignore_eos")?;
    p.warmup_requests = count("warmup_requests")?;
    p.completed = count("completed")?;
    p.failed = count("failed")?;
    p.duration_s = r.get("duration_s")?;
    p.req_per_s = r.get("req_per_s")?;
    p.output_tok_per_s = r.get("output_tok_per_s")?;
    p.total_tok_per_s = r.get("total_tok_per_s")?;
    p.ttft = stats("ttft")?;
    p.tpot = stats("tpot")?;
    p.itl = stats("itl")?;
    p.e2e = stats("e2e")?;
    Ok(StoredResult {
        id,
        imported_at: r.get("imported_at")?,
        file_path: r.get("file_path")?,
        file_sha256: r.get("file_sha256")?,
        point: p,
        deployment: Deployment {
            gpu: r.get("gpu")?,
            tp: r.get("tp")?,
            dp: r.get("dp")?,
            model_config: r.get("model_config")?,
            note: r.get("note")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> PeerPoint {
        let mut p = PeerPoint::new(Tool::Sglang);
        p.completed = Some(3);
        p.ttft.mean_s = Some(0.05);
        p.tpot.p99_s = Some(0.011);
        p.tool_figures = serde_json::json!({"mean_tpot_ms": 10.0});
        p.requests = vec![PeerRequest {
            ttft_s: Some(0.05),
            e2e_s: Some(0.1),
            output_tokens: Some(6.0),
            ok: true,
            itl_s: vec![0.01; 5],
            ..PeerRequest::default()
        }];
        p
    }

    #[test]
    fn a_v2_database_migrates_and_a_file_round_trips_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v2.db");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(super::super::schema::V1).expect("v1");
        conn.execute_batch(
            "ALTER TABLE scrapes ADD COLUMN boundary INTEGER;
             ALTER TABLE runs ADD COLUMN engine_limits TEXT;
             ALTER TABLE requests ADD COLUMN response_id TEXT;",
        )
        .expect("v2");
        conn.pragma_update(None, "user_version", 2)
            .expect("version");
        drop(conn);
        let store = Store::open(&path).expect("migrates");
        let dep = Deployment {
            gpu: Some("H100".into()),
            tp: Some(2),
            ..Deployment::default()
        };
        let first = store
            .import_result_file("f.jsonl", "abc", "now", &[point()], &dep)
            .expect("import");
        assert_eq!(first, ImportOutcome::Imported(vec![1]));
        let again = store
            .import_result_file("f.jsonl", "abc", "now", &[point()], &dep)
            .expect("import");
        assert_eq!(again, ImportOutcome::AlreadyImported(vec![1]));
        let back = store.load_result(1, true).expect("load");
        assert_eq!(back.point, point());
        assert_eq!(back.deployment, dep);
        assert!(matches!(
            store.load_result(2, false),
            Err(StoreError::NoSuchResult(2))
        ));
    }
}
