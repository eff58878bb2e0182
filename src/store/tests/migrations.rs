//! Migrations: an empty file, a newer schema refused, v1 and v2 recordings brought to the
//! current version with what they hold still read.

use super::*;

fn user_version(store: &Store) -> u32 {
    store
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn migration_from_an_empty_file_reaches_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(user_version(&store), schema::CURRENT_VERSION);
    assert!(store.list_runs().unwrap().is_empty());
    // Opening again is a no-op migration.
    drop(store);
    Store::open(&path).unwrap();
}

#[test]
fn a_newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::NewerSchema { found: 99, .. }));
    assert!(err.to_string().contains("use a newer ceiling"));
}

#[test]
fn a_v1_recording_migrates_and_its_scrapes_read_as_interval_scrapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(schema::V1).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    // A scrape without its run row: only the scrapes table matters here.
    conn.pragma_update(None, "foreign_keys", "off").unwrap();
    conn.execute(
        "INSERT INTO scrapes (run_id, seq, t_s, duration_s, http_status, error) \
         VALUES (1, 0, 0.5, 0.01, 200, NULL)",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(user_version(&store), schema::CURRENT_VERSION);
    let scrapes = store.load_scrapes(1).unwrap();
    assert_eq!(scrapes.len(), 1);
    assert!(!scrapes[0].boundary);
}

#[test]
fn a_v2_recording_migrates_with_its_steps_and_requests_outside_the_open_loop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(schema::V1).unwrap();
    conn.execute_batch(schema::V2).unwrap();
    conn.pragma_update(None, "user_version", 2).unwrap();
    conn.pragma_update(None, "foreign_keys", "off").unwrap();
    conn.execute(
        "INSERT INTO steps (run_id, idx, batch_size, input_len, output_len, pattern, start_t_s)
         VALUES (7, 0, 8, 128, 64, 'wave', 0.5)",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let steps = store.load_steps(7).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!((steps[0].pattern, steps[0].batch_size), (Pattern::Wave, 8));
    assert_eq!((steps[0].rate_rps, steps[0].burstiness), (None, None));
    // A rate step (inf: all at once) and a scheduled request written after it read back.
    let run = store.create_run(&manifest()).unwrap();
    let (w, thread) = Writer::spawn(&path, run, WriterOptions::default()).unwrap();
    w.send_blocking(Record::Step(StepRecord {
        rate_rps: Some(f64::INFINITY),
        burstiness: Some(0.5),
        idx: 0,
        batch_size: 0,
        input_len: 512,
        output_len: 4,
        pattern: Pattern::Rate,
        start_t_s: 0.5,
        end_t_s: None,
    }))
    .unwrap();
    w.send_blocking(Record::Request(Box::new(RequestRecord {
        scheduled_t_s: Some(0.75),
        ..request()
    })))
    .unwrap();
    drop(w);
    thread.join().unwrap();
    let steps = store.load_steps(run).unwrap();
    assert_eq!(steps[0].pattern, Pattern::Rate);
    assert_eq!(steps[0].rate_rps, Some(f64::INFINITY));
    assert_eq!(steps[0].burstiness, Some(0.5));
    let reqs = store.load_requests(run).unwrap();
    assert_eq!(reqs[0].scheduled_t_s, Some(0.75));
    let rec = store.load_recording(run).unwrap();
    let col = rec.requests.column("scheduled_t_s").unwrap().f64().unwrap();
    assert_eq!(col.get(0), Some(0.75));
}
