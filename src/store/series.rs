//! A scrape's samples in the recording (schema v10): each distinct (name, labels) of a run is a
//! row of `metric_series`, named once; a scrape's row (`scrapes`, or `role_scrapes` for a
//! prefill or decode endpoint) carries its samples as two JSON arrays, their series ids in the
//! order the engine exposed them and their values. The writer's side assigns the ids
//! ([`SeriesIds`]) and writes the arrays; the reader's side turns them back into
//! [`MetricSample`]s, and still reads the samples of runs recorded before v10, one row each in
//! `engine_samples` / `role_samples`.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, Transaction, params};

use ceiling_collectors::{Labels, MetricSample, ScrapeRecord};

use super::StoreError;

/// The writer's dictionary of a run's series. Every scrape of an engine repeats the one before it
/// in the same order, so a sample is first matched by position against the same source's last
/// scrape (two string comparisons); only a sample that differs there builds its labels' text and
/// looks it up.
pub(super) struct SeriesIds {
    ids: HashMap<(Arc<str>, String), i64>,
    /// The most series [`SeriesIds::ids`] remembers: past it, it forgets them all and starts
    /// again, so an engine whose label values change every scrape cannot grow the writer's
    /// memory without end. A series seen again gets a second id; what reads back is the same.
    cap: usize,
    /// The next id; read from the table on first use, so a second writer of the same run
    /// continues after the first's ids.
    next: Option<i64>,
    /// Per source (`None`: the engine), its last scrape's samples and their ids.
    last: HashMap<Option<u32>, (Vec<MetricSample>, Vec<i64>)>,
}

/// [`SeriesIds`]' default cap: a whole scrape at the scraper's line limit
/// (`MAX_SCRAPE_LINES`), ~40 MB of names and labels at the worst.
const MAX_REMEMBERED_SERIES: usize = 200_000;

impl Default for SeriesIds {
    fn default() -> Self {
        SeriesIds::with_cap(MAX_REMEMBERED_SERIES)
    }
}

impl SeriesIds {
    /// How many series it remembers now.
    #[cfg(test)]
    pub(super) fn remembered(&self) -> usize {
        self.ids.len()
    }

    pub(super) fn with_cap(cap: usize) -> Self {
        SeriesIds {
            ids: HashMap::new(),
            cap,
            next: None,
            last: HashMap::new(),
        }
    }

    /// The series id of each of `samples`, inserting the series not seen before.
    fn ids_of(
        &mut self,
        tx: &Transaction<'_>,
        run_id: i64,
        source: Option<u32>,
        samples: &[MetricSample],
    ) -> Result<Vec<i64>, StoreError> {
        let SeriesIds {
            ids,
            cap,
            next,
            last,
        } = self;
        let mut next_id = match *next {
            Some(n) => n,
            None => tx.query_row(
                "SELECT COALESCE(MAX(id) + 1, 0) FROM metric_series WHERE run_id = ?1",
                params![run_id],
                |r| r.get(0),
            )?,
        };
        let (prev, prev_ids) = last
            .get(&source)
            .map(|(s, i)| (s.as_slice(), i.as_slice()))
            .unwrap_or_default();
        let mut out = Vec::with_capacity(samples.len());
        for (i, m) in samples.iter().enumerate() {
            if let Some(p) = prev.get(i)
                && p.name == m.name
                && p.labels == m.labels
            {
                out.push(prev_ids[i]);
                continue;
            }
            let key = (m.name.clone(), labels_json(&m.labels));
            let id = match ids.get(&key) {
                Some(&id) => id,
                None => {
                    if ids.len() >= *cap {
                        ids.clear();
                    }
                    let id = next_id;
                    next_id += 1;
                    tx.prepare_cached(
                        "INSERT INTO metric_series (run_id, id, name, labels)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![run_id, id, key.0, key.1])?;
                    ids.insert(key, id);
                    id
                }
            };
            out.push(id);
        }
        *next = Some(next_id);
        Ok(out)
    }
}

/// A scrape and its samples: the engine's (`source` `None`) into `scrapes`, a prefill or decode
/// endpoint's into `role_scrapes` under its source.
pub(super) fn insert_scrape(
    tx: &Transaction<'_>,
    run_id: i64,
    series: &mut SeriesIds,
    source: Option<u32>,
    mut s: ScrapeRecord,
) -> Result<(), StoreError> {
    let sql = match source {
        None => {
            "INSERT INTO scrapes (run_id, seq, t_s, duration_s, http_status, error, boundary,
                 sample_series, sample_values)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        }
        Some(_) => {
            "INSERT INTO role_scrapes (run_id, seq, t_s, duration_s, http_status, error,
                 boundary, sample_series, sample_values, source)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        }
    };
    let ids = series.ids_of(tx, run_id, source, &s.samples)?;
    let (ids_text, values_text) = (ids_json(&ids), values_json(&s.samples));
    let seq = s.seq as i64;
    let mut row: Vec<&dyn rusqlite::ToSql> = vec![
        &run_id,
        &seq,
        &s.t_s,
        &s.duration_s,
        &s.http_status,
        &s.error,
        &s.boundary,
        &ids_text,
        &values_text,
    ];
    row.extend(source.as_ref().map(|x| x as &dyn rusqlite::ToSql));
    tx.prepare_cached(sql)?.execute(row.as_slice())?;
    // A failed scrape has no samples: the next one is matched against the last that had.
    if !s.samples.is_empty() {
        series
            .last
            .insert(source, (std::mem::take(&mut s.samples), ids));
    }
    Ok(())
}

/// Series ids as a JSON array.
fn ids_json(ids: &[i64]) -> String {
    let mut out = String::with_capacity(ids.len() * 4 + 2);
    out.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(itoa::Buffer::new().format(*id));
    }
    out.push(']');
    out
}

/// Values as a JSON array: a finite value as the shortest number that reads back to it
/// exactly, the others as the exposition format spells them.
fn values_json(samples: &[MetricSample]) -> String {
    let mut out = String::with_capacity(samples.len() * 8 + 2);
    out.push('[');
    for (i, m) in samples.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let v = m.value;
        if v.is_nan() {
            out.push_str("\"NaN\"");
        } else if v.is_infinite() {
            out.push_str(if v > 0.0 { "\"+Inf\"" } else { "\"-Inf\"" });
        } else {
            // The shortest JSON number (`1.0`, `1e-7`, `-0.0`) that parses back to the same
            // bits.
            out.push_str(ryu::Buffer::new().format_finite(v));
        }
    }
    out.push(']');
    out
}

/// The elements of a JSON array the store wrote: numbers, `null` and the strings of
/// [`values_json`], so a comma never sits inside one (also a request's chunk arrays).
pub(super) fn elements<'t>(
    column: &'static str,
    text: &'t str,
) -> Result<Vec<&'t str>, StoreError> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| StoreError::Column {
            column,
            what: format!("not a JSON array: {}", clip(text)),
        })?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(inner.split(',').map(str::trim).collect())
}

fn parse_ids(text: &str) -> Result<Vec<i64>, StoreError> {
    elements("sample_series", text)?
        .into_iter()
        .map(|e| {
            e.parse().map_err(|_| StoreError::Column {
                column: "sample_series",
                what: format!("{} is not a series id", clip(e)),
            })
        })
        .collect()
}

fn parse_values(text: &str) -> Result<Vec<f64>, StoreError> {
    elements("sample_values", text)?
        .into_iter()
        .map(|e| match e {
            "\"NaN\"" => Ok(f64::NAN),
            "\"+Inf\"" => Ok(f64::INFINITY),
            "\"-Inf\"" => Ok(f64::NEG_INFINITY),
            // Rust's float parser rounds correctly: the written number reads back exactly.
            e => e.parse().map_err(|_| StoreError::Column {
                column: "sample_values",
                what: format!("{} is not a value", clip(e)),
            }),
        })
        .collect()
}

fn clip(s: &str) -> String {
    crate::printable::clip(s, 60)
}

/// A scrape's samples as stored from v10: the two arrays of its row.
pub(super) struct StoredSamples {
    pub series: String,
    pub values: String,
}

/// Adds each scrape's samples to `scrapes`: from their rows (`stored[i]` of `scrapes[i]`) in a
/// run recorded from v10 on, else from the rows `legacy` selects from `engine_samples` /
/// `role_samples` (scrape seq, name, labels, value; bound to `params`). A run is written in one
/// layout, so it is read in one.
pub(super) fn push_samples(
    conn: &Connection,
    run_id: i64,
    stored: Vec<Option<StoredSamples>>,
    legacy: &str,
    params: &[&dyn rusqlite::ToSql],
    scrapes: &mut [ScrapeRecord],
) -> Result<(), StoreError> {
    if stored.iter().any(Option::is_some) {
        push_stored(conn, run_id, stored, scrapes)
    } else {
        push_legacy(conn, legacy, params, scrapes)
    }
}

/// A label set's stored JSON text as pairs, sorted by key.
fn parse_labels(text: &str) -> Result<Labels, StoreError> {
    let map: std::collections::BTreeMap<Arc<str>, Arc<str>> =
        serde_json::from_str(text).map_err(|source| StoreError::Json {
            column: "labels",
            source,
        })?;
    Ok(map.into_iter().collect())
}

fn push_stored(
    conn: &Connection,
    run_id: i64,
    stored: Vec<Option<StoredSamples>>,
    scrapes: &mut [ScrapeRecord],
) -> Result<(), StoreError> {
    // Each scrape's sample shares its series' name and labels (reference counts, not copies).
    let mut series: HashMap<i64, (Arc<str>, Labels)> = HashMap::new();
    let mut stmt =
        conn.prepare_cached("SELECT id, name, labels FROM metric_series WHERE run_id = ?1")?;
    let mut rows = stmt.query(params![run_id])?;
    while let Some(r) = rows.next()? {
        let labels = parse_labels(r.get_ref(2)?.as_str().unwrap_or_default())?;
        series.insert(r.get(0)?, (r.get::<_, String>(1)?.into(), labels));
    }
    for (scrape, stored) in scrapes.iter_mut().zip(stored) {
        let Some(stored) = stored else { continue };
        let (ids, values) = (parse_ids(&stored.series)?, parse_values(&stored.values)?);
        if ids.len() != values.len() {
            return Err(StoreError::Column {
                column: "sample_values",
                what: format!(
                    "scrape {} has {} series and {} values",
                    scrape.seq,
                    ids.len(),
                    values.len()
                ),
            });
        }
        scrape.samples.reserve(ids.len());
        for (id, value) in ids.into_iter().zip(values) {
            let (name, labels) = series.get(&id).ok_or_else(|| StoreError::Column {
                column: "sample_series",
                what: format!(
                    "scrape {} names series {id}, which the run lacks",
                    scrape.seq
                ),
            })?;
            scrape.samples.push(MetricSample {
                name: name.clone(),
                labels: labels.clone(),
                value,
            });
        }
    }
    Ok(())
}

/// A NaN value of a legacy row was stored as NULL and comes back NaN.
fn push_legacy(
    conn: &Connection,
    legacy: &str,
    params: &[&dyn rusqlite::ToSql],
    scrapes: &mut [ScrapeRecord],
) -> Result<(), StoreError> {
    let index: HashMap<u64, usize> = scrapes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.seq, i))
        .collect();
    // Every scrape repeats the same few hundred label sets: each is parsed once.
    let mut parsed: HashMap<String, Labels> = HashMap::new();
    let mut stmt = conn.prepare(legacy)?;
    let mut rows = stmt.query(params)?;
    while let Some(r) = rows.next()? {
        let Some(&i) = index.get(&(r.get::<_, i64>(0)? as u64)) else {
            continue;
        };
        // Not text: "" fails to parse and says which column.
        let text = r.get_ref(2)?.as_str().unwrap_or_default();
        let labels = match parsed.get(text) {
            Some(l) => l.clone(),
            None => {
                let l = parse_labels(text)?;
                parsed.insert(text.to_string(), l.clone());
                l
            }
        };
        scrapes[i].samples.push(MetricSample {
            name: r.get::<_, String>(1)?.into(),
            labels,
            value: r.get::<_, Option<f64>>(3)?.unwrap_or(f64::NAN),
        });
    }
    Ok(())
}

/// Labels as a JSON object with sorted keys, so equal label sets store equal text; of labels
/// with the same key the last is kept. The same text `serde_json` writes for a `BTreeMap` of
/// them, without building the map.
pub(super) fn labels_json<K: AsRef<str>, V: AsRef<str>>(labels: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    // Stable: of equal keys the last given stays last, and is the one kept below.
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let len = sorted
        .iter()
        .map(|(k, v)| k.len() + v.len() + 6)
        .sum::<usize>();
    let mut out = String::with_capacity(len + 2);
    out.push('{');
    for (i, (k, v)) in sorted.iter().copied().enumerate() {
        if sorted.get(i + 1).is_some_and(|next| next.0 == k) {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        push_json_str(&mut out, k);
        out.push(':');
        push_json_str(&mut out, v);
    }
    out.push('}');
    out
}

/// `s` as a JSON string: as it is between quotes when nothing in it needs an escape.
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Serializing a string cannot fail.
        out.push_str(&serde_json::Value::from(s).to_string());
    }
}
