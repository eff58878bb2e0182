//! A scrape's samples stored against the run's series dictionary (schema v10): series that come,
//! go, change places or change their labels' order read back exactly, in exposition order, with
//! one dictionary row per distinct series; samples recorded before v10 still read.

use super::*;
use crate::store::roles::MetricSource;
use ceiling_reports::pd::Role;

fn sample(name: &str, labels: &[(&str, &str)], value: f64) -> MetricSample {
    MetricSample {
        name: name.into(),
        labels: labels.iter().map(|&(k, v)| (k.into(), v.into())).collect(),
        value,
    }
}

fn scrape(seq: u64, samples: Vec<MetricSample>) -> ScrapeRecord {
    ScrapeRecord {
        seq,
        t_s: seq as f64,
        duration_s: Some(0.001),
        http_status: Some(200),
        error: None,
        samples,
        boundary: false,
    }
}

/// (name, labels as `k=v` joined, value) of each sample of each scrape.
fn flat(scrapes: &[ScrapeRecord]) -> Vec<Vec<(String, String, f64)>> {
    scrapes
        .iter()
        .map(|s| {
            s.samples
                .iter()
                .map(|m| {
                    let labels: Vec<String> =
                        m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    (m.name.to_string(), labels.join(","), m.value)
                })
                .collect()
        })
        .collect()
}

fn rows(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A fresh database holding one run.
fn new_run(name: &str) -> (tempfile::TempDir, std::path::PathBuf, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let store = Store::open(&path).unwrap();
    let run = store.create_run(&manifest()).unwrap();
    (dir, path, store, run)
}

/// Sends `records` through a writer of `run` and waits until they are committed.
fn write(path: &std::path::Path, run: i64, records: Vec<Record>) {
    let (w, thread) = Writer::spawn(path, run, WriterOptions::default()).unwrap();
    for r in records {
        w.send_blocking(r).unwrap();
    }
    drop(w);
    thread.join().unwrap();
}

#[test]
fn series_that_come_go_and_move_read_back_in_exposition_order_named_once() {
    let (_dir, path, store, run) = new_run("series.db");
    let engine = [
        vec![
            sample("a", &[("x", "1")], 1.0),
            sample("b", &[], 2.0),
            sample("c", &[("k", "v"), ("j", "w")], 3.0),
        ],
        // A new series in the middle; c's labels in another order (the same series).
        vec![
            sample("a", &[("x", "1")], 4.0),
            sample("d", &[], 5.0),
            sample("b", &[], 6.0),
            sample("c", &[("j", "w"), ("k", "v")], 7.0),
        ],
        // Places swapped, d and c gone, a value that is no number, a new label value.
        vec![
            sample("b", &[], f64::NAN),
            sample("a", &[("x", "1")], 8.0),
            sample("a", &[("x", "2")], 9.0),
        ],
    ];
    let mut records: Vec<Record> = engine
        .into_iter()
        .enumerate()
        .map(|(seq, samples)| Record::Scrape(Box::new(scrape(seq as u64, samples))))
        .collect();
    records.push(Record::MetricSource(MetricSource {
        source: 0,
        role: Role::Decode,
        url: "http://127.0.0.1:9000/metrics".into(),
        engine_kind: Some("vllm".into()),
    }));
    // A role endpoint numbers its scrapes from 0 too, and shares the run's dictionary.
    let role = vec![sample("a", &[("x", "1")], 10.0), sample("e", &[], 11.0)];
    records.push(Record::RoleScrape {
        source: 0,
        scrape: Box::new(scrape(0, role)),
    });
    write(&path, run, records);

    let back = flat(&store.load_scrapes(run).unwrap());
    let want = |name: &str, labels: &str, v: f64| (name.to_string(), labels.to_string(), v);
    assert_eq!(
        back[0],
        [
            want("a", "x=1", 1.0),
            want("b", "", 2.0),
            want("c", "j=w,k=v", 3.0)
        ]
    );
    assert_eq!(
        back[1],
        [
            want("a", "x=1", 4.0),
            want("d", "", 5.0),
            want("b", "", 6.0),
            want("c", "j=w,k=v", 7.0)
        ]
    );
    assert_eq!(back[2][0].0, "b");
    assert!(
        back[2][0].2.is_nan(),
        "NaN is stored NULL and read back NaN"
    );
    assert_eq!(back[2][1..], [want("a", "x=1", 8.0), want("a", "x=2", 9.0)]);
    // a{x=1}, b, c, d, a{x=2}, e: six series for 12 samples, none of them a row of their own.
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM metric_series"), 6);
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM engine_samples"), 0);
    // The views give SQL one row per sample, NaN as NULL.
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM engine_sample_rows"), 10);
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM role_sample_rows"), 2);
    let (name, labels, value): (String, String, Option<f64>) = store
        .conn()
        .query_row(
            "SELECT name, labels, value FROM engine_sample_rows WHERE scrape_seq = 1 AND pos = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (name.as_str(), labels.as_str(), value),
        ("c", r#"{"j":"w","k":"v"}"#, Some(7.0))
    );
    assert_eq!(
        rows(
            &store,
            "SELECT COUNT(*) FROM engine_sample_rows WHERE value IS NULL"
        ),
        1
    );
    let roles = store.load_roles(run).unwrap();
    assert_eq!(roles[0].scrapes, 1);
}

#[test]
fn a_second_writer_of_the_run_continues_after_the_first_ids() {
    let (_dir, path, store, run) = new_run("twice.db");
    for (seq, name) in [(0, "a"), (1, "b")] {
        let samples = vec![sample(name, &[], seq as f64)];
        write(
            &path,
            run,
            vec![Record::Scrape(Box::new(scrape(seq, samples)))],
        );
    }
    let back = flat(&store.load_scrapes(run).unwrap());
    assert_eq!((back[0][0].0.as_str(), back[1][0].0.as_str()), ("a", "b"));
    assert_eq!(
        rows(&store, "SELECT COUNT(DISTINCT id) FROM metric_series"),
        2
    );
}

#[test]
fn samples_recorded_before_the_dictionary_still_read() {
    let (_dir, _path, store, run) = new_run("v9.db");
    // Rows as a v9 `ceiling` wrote them: name, labels' JSON and instant on every sample.
    store
        .conn()
        .execute_batch(&format!(
            "INSERT INTO scrapes (run_id, seq, t_s, duration_s, http_status, error, boundary)
                 VALUES ({run}, 0, 1.5, 0.01, 200, NULL, 1);
             INSERT INTO engine_samples (run_id, scrape_seq, t_s, name, labels, value)
                 VALUES ({run}, 0, 1.5, 'vllm:num_requests_running', '{{\"engine\":\"0\"}}', 8),
                        ({run}, 0, 1.5, 'vllm:num_requests_waiting', '{{}}', NULL);
             INSERT INTO metric_sources (run_id, source, role, url, engine_kind)
                 VALUES ({run}, 0, 'prefill', 'http://127.0.0.1:9000/metrics', 'vllm');
             INSERT INTO role_scrapes (run_id, source, seq, t_s, duration_s, http_status, error, boundary)
                 VALUES ({run}, 0, 0, 1.5, 0.01, 200, NULL, 0);
             INSERT INTO role_samples (run_id, source, scrape_seq, t_s, name, labels, value)
                 VALUES ({run}, 0, 0, 1.5, 'vllm:num_requests_waiting', '{{\"model_name\":\"m\"}}', 3);"
        ))
        .unwrap();
    let back = flat(&store.load_scrapes(run).unwrap());
    assert_eq!(
        back[0][0],
        ("vllm:num_requests_running".into(), "engine=0".into(), 8.0)
    );
    assert!(back[0][1].2.is_nan());
    let roles = store.load_roles(run).unwrap();
    let waiting: Vec<Option<f64>> = roles[0].samples.iter().map(|s| s.signals.waiting).collect();
    assert_eq!(waiting, [Some(3.0)]);
    // The views show the old rows too.
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM engine_sample_rows"), 2);
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM role_sample_rows"), 1);
}

#[test]
fn every_value_reads_back_to_its_bits_and_infinities_stay_infinite() {
    let values = [
        0.0,
        -0.0,
        1.0,
        0.1,
        1.0 / 3.0,
        123_456_789.123_456_78,
        1e-300,
        5e-324,
        f64::MAX,
        -f64::MIN_POSITIVE,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let samples: Vec<MetricSample> = values.iter().map(|&v| sample("g", &[], v)).collect();
    let (_dir, path, store, run) = new_run("values.db");
    // The second a failed scrape: no samples, an empty array.
    let records = [scrape(0, samples), scrape(1, Vec::new())];
    write(
        &path,
        run,
        records.map(|s| Record::Scrape(Box::new(s))).into(),
    );
    let back = store.load_scrapes(run).unwrap();
    let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let got: Vec<f64> = back[0].samples.iter().map(|m| m.value).collect();
    assert_eq!(bits(&got), bits(&values));
    assert!(back[1].samples.is_empty());
    // SQL sees the infinities as SQLite's.
    assert_eq!(
        rows(
            &store,
            "SELECT COUNT(*) FROM engine_sample_rows WHERE value > 1e308"
        ),
        2
    );
}

#[test]
fn damaged_sample_arrays_are_a_clear_error_naming_the_column() {
    let (_dir, path, store, run) = new_run("damaged.db");
    let samples = vec![sample("a", &[], 1.0), sample("b", &[], 2.0)];
    write(
        &path,
        run,
        vec![Record::Scrape(Box::new(scrape(0, samples)))],
    );
    for (column, text, says) in [
        ("sample_values", "[1.0", "not a JSON array"),
        ("sample_values", "[1.0,x]", "x is not a value"),
        ("sample_values", "[1.0]", "has 2 series and 1 values"),
        (
            "sample_series",
            "[0,7]",
            "names series 7, which the run lacks",
        ),
        ("sample_series", "[0,-]", "- is not a series id"),
    ] {
        let clean = store
            .conn()
            .query_row(&format!("SELECT {column} FROM scrapes"), [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap();
        store
            .conn()
            .execute(&format!("UPDATE scrapes SET {column} = ?1"), [text])
            .unwrap();
        let err = store.load_scrapes(run).unwrap_err();
        assert!(matches!(err, StoreError::Column { .. }), "{err}");
        assert!(err.to_string().contains(column), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        store
            .conn()
            .execute(&format!("UPDATE scrapes SET {column} = ?1"), [clean])
            .unwrap();
    }
    assert_eq!(store.load_scrapes(run).unwrap()[0].samples.len(), 2);
}

#[test]
fn an_engine_whose_series_never_repeat_keeps_the_writers_memory_bounded() {
    let (_dir, path, store, run) = new_run("churn.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let mut ids = crate::store::series::SeriesIds::with_cap(4);
    // Ten scrapes of three series each, every label value new: 30 series, never more than 4
    // remembered; then the first scrape's series again, forgotten long ago: new ids.
    let scrapes: Vec<ScrapeRecord> = (0..11u64)
        .map(|seq| {
            let n = if seq == 10 { 0 } else { seq };
            let samples = (0..3)
                .map(|i| sample("m", &[("id", &format!("{n}-{i}"))], (seq * 3 + i) as f64))
                .collect();
            scrape(seq, samples)
        })
        .collect();
    for s in scrapes.clone() {
        let tx = conn.transaction().unwrap();
        crate::store::series::insert_scrape(&tx, run, &mut ids, None, s).unwrap();
        tx.commit().unwrap();
        assert!(ids.remembered() <= 4);
    }
    assert_eq!(rows(&store, "SELECT COUNT(*) FROM metric_series"), 33);
    let back = store.load_scrapes(run).unwrap();
    assert_eq!(back, scrapes);
}
