//! The prefill and decode endpoints of a disaggregated deployment in the recording: each
//! endpoint's row in `metric_sources`, its scrapes in `role_scrapes` / `role_samples` (the
//! columns of `scrapes` / `engine_samples`), and the endpoints read back through the engine
//! adapters for the analysis.

use rusqlite::{Transaction, params};

use ceiling_reports::engine;
use ceiling_reports::pd::{Role, RoleEngine};

use super::{Store, StoreError};

/// One role endpoint of a run, as recorded when the run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSource {
    pub source: u32,
    pub role: Role,
    /// Without credentials or query ([`public_url`]).
    pub url: String,
    /// The engine its metrics show (`vllm`, `sglang`, `llamacpp`), where they show one.
    pub engine_kind: Option<String>,
}

/// `url` without its user, password, query and fragment: what may be written to the recording,
/// a report or a log.
pub fn public_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(an unparsable URL)".into(),
    }
}

pub(super) fn insert_source(
    tx: &Transaction<'_>,
    run_id: i64,
    s: &MetricSource,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO metric_sources (run_id, source, role, url, engine_kind)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        run_id,
        s.source,
        s.role.as_str(),
        s.url,
        s.engine_kind
    ])?;
    Ok(())
}

impl Store {
    /// The run's role endpoints in source order.
    pub fn load_metric_sources(&self, run_id: i64) -> Result<Vec<MetricSource>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT source, role, url, engine_kind FROM metric_sources
             WHERE run_id = ?1 ORDER BY source",
        )?;
        let rows = stmt.query_map(params![run_id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (source, role, url, engine_kind) = row?;
            // The table's CHECK admits only the two roles.
            let role =
                Role::parse(&role).ok_or_else(|| StoreError::Frames(format!("role {role:?}")))?;
            out.push(MetricSource {
                source,
                role,
                url,
                engine_kind,
            });
        }
        Ok(out)
    }

    /// Each role endpoint with its scrapes reduced through the adapter of the engine it showed.
    pub fn load_roles(&self, run_id: i64) -> Result<Vec<RoleEngine>, StoreError> {
        let mut out = Vec::new();
        for src in self.load_metric_sources(run_id)? {
            let scrapes = self.scrapes_where(
                "SELECT seq, t_s, duration_s, http_status, error, boundary, sample_series,
                     sample_values
                 FROM role_scrapes WHERE run_id = ?1 AND source = ?2 ORDER BY seq",
                "SELECT scrape_seq, name, labels, value FROM role_samples
                 WHERE run_id = ?1 AND source = ?2 ORDER BY rowid",
                run_id,
                params![run_id, src.source],
            )?;
            out.push(RoleEngine {
                source: src.source,
                role: src.role,
                url: src.url,
                samples: engine::engine_samples(
                    &scrapes,
                    engine::flavor(src.engine_kind.as_deref()),
                ),
                scrapes: scrapes.len(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use ceiling_collectors::{MetricSample, ScrapeRecord};

    use super::*;
    use crate::store::{Record, RunManifest, Writer, WriterOptions};

    #[test]
    fn a_public_url_keeps_no_credentials() {
        assert_eq!(
            public_url("http://user:s3cret@10.0.0.1:8000/metrics?token=abc#x"),
            "http://10.0.0.1:8000/metrics"
        );
        assert_eq!(public_url("not a url"), "(an unparsable URL)");
    }

    #[test]
    fn each_side_reads_back_with_its_own_scrapes_through_its_engines_adapter() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pd.db");
        let store = Store::open(&db).unwrap();
        let run = store
            .create_run(&RunManifest::new("c".into(), serde_json::json!({})))
            .unwrap();
        let (w, thread) = Writer::spawn(&db, run, WriterOptions::default()).unwrap();
        let scrape = |seq, waiting: f64| ScrapeRecord {
            seq,
            t_s: seq as f64,
            duration_s: Some(0.001),
            http_status: Some(200),
            error: None,
            samples: vec![MetricSample {
                name: "vllm:num_requests_waiting".into(),
                labels: [("model_name".into(), "m".into())].into(),
                value: waiting,
            }],
            boundary: false,
        };
        for (source, role) in [(0, Role::Prefill), (1, Role::Decode)] {
            w.send_blocking(Record::MetricSource(MetricSource {
                source,
                role,
                url: format!("http://127.0.0.1:{}/metrics", 9000 + source),
                engine_kind: Some("vllm".into()),
            }))
            .unwrap();
            // Both sides number their scrapes from 0.
            for seq in 0..3 {
                w.send_blocking(Record::RoleScrape {
                    source,
                    scrape: Box::new(scrape(seq, f64::from(source * 10) + seq as f64)),
                })
                .unwrap();
            }
        }
        drop(w);
        thread.join().unwrap();
        let roles = store.load_roles(run).unwrap();
        assert_eq!(roles.len(), 2);
        assert_eq!(
            (roles[0].role, roles[1].role),
            (Role::Prefill, Role::Decode)
        );
        assert_eq!(roles[1].url, "http://127.0.0.1:9001/metrics");
        assert_eq!(roles[1].scrapes, 3);
        let waiting: Vec<Option<f64>> =
            roles[1].samples.iter().map(|s| s.signals.waiting).collect();
        assert_eq!(waiting, [Some(10.0), Some(11.0), Some(12.0)]);
        // The engine's own scrapes are untouched.
        assert!(store.load_scrapes(run).unwrap().is_empty());
        // And the analysis gets them with the recording.
        assert_eq!(store.load_recording(run).unwrap().roles, roles);
    }
}
