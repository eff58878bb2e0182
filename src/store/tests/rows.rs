//! A request's chunks on its row (none, one, many, with and without token counts and
//! reasoning) and the lateness ticks a batch to a row, read back whole and in order, through
//! the records, the analysis's columns and the views; and both as older runs kept them.

use super::*;

#[test]
fn chunks_and_ticks_read_back_whole_and_in_order() {
    // Around the 32 rows of one statement: none, fewer, exactly, more, and several groups.
    let counts = [0u32, 1, 31, 32, 33, 64, 70];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunks.db");
    let store = Store::open(&path).unwrap();
    let run = store.create_run(&manifest()).unwrap();
    let (w, thread) = Writer::spawn(&path, run, WriterOptions::default()).unwrap();
    w.send_blocking(Record::Step(StepRecord {
        rate_rps: None,
        burstiness: None,
        idx: 0,
        batch_size: 1,
        input_len: 8,
        output_len: 70,
        pattern: Pattern::ClosedLoop,
        start_t_s: 0.0,
        end_t_s: None,
    }))
    .unwrap();
    let sent: Vec<RequestRecord> = counts
        .iter()
        .map(|&n| {
            let mut r = request();
            r.chunks = (0..n)
                .map(|k| ChunkArrival {
                    t_s: 1.0 + f64::from(n) + f64::from(k) / 7.0,
                    tokens: (k % 5 != 3).then_some(k % 3 + 1),
                    kind: if k % 4 == 0 {
                        ChunkKind::Reasoning
                    } else {
                        ChunkKind::Answer
                    },
                })
                .collect();
            r
        })
        .collect();
    for r in &sent {
        w.send_blocking(Record::Request(Box::new(r.clone())))
            .unwrap();
    }
    // The ticker's batches: one tick, 32, and 37 across two steps (a row each step's run).
    let ticks: Vec<LatenessTick> = (0..70)
        .map(|i| LatenessTick {
            step_idx: u32::from(i >= 50),
            t_s: 1.0 + f64::from(i) * 0.005,
            late_s: f64::from(i % 7) * 1e-4,
        })
        .collect();
    for batch in [&ticks[..1], &ticks[1..33], &ticks[33..]] {
        w.send_blocking(Record::Ticks(batch.to_vec())).unwrap();
    }
    drop(w);
    thread.join().unwrap();
    assert_eq!(store.load_requests(run).unwrap(), sent);
    assert_eq!(store.load_ticks(run).unwrap(), ticks);
    // For SQL, the view gives a row a chunk, in order, with its tokens and kind.
    let conn = store.conn();
    let mut stmt = conn
        .prepare(
            "SELECT request_id, seq, t_s, tokens, kind FROM chunk_rows ORDER BY request_id, seq",
        )
        .unwrap();
    let rows: Vec<(i64, i64, f64, Option<u32>, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<(i64, f64, Option<u32>, String)> = sent
        .iter()
        .flat_map(|r| r.chunks.iter().enumerate())
        .map(|(k, c)| (k as i64, c.t_s, c.tokens, c.kind.as_str().to_string()))
        .collect();
    let got: Vec<_> = rows
        .iter()
        .map(|(_, k, t, n, kind)| (*k, *t, *n, kind.clone()))
        .collect();
    assert_eq!(got, want);
    let tick_rows: Vec<(u32, f64, f64)> = conn
        .prepare("SELECT step_idx, t_s, late_s FROM client_tick_rows ORDER BY t_s")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want_ticks: Vec<_> = ticks
        .iter()
        .map(|t| (t.step_idx, t.t_s, t.late_s))
        .collect();
    assert_eq!(tick_rows, want_ticks);
    let batches: i64 = conn
        .query_row("SELECT COUNT(*) FROM tick_batches", [], |r| r.get(0))
        .unwrap();
    assert_eq!(batches, 4, "1, 32, 17 of step 0 and 20 of step 1");
    // The analysis's columns: every chunk, each with its request's row.
    let rec = store.load_recording(run).unwrap();
    assert_eq!(rec.chunks.height(), want.len());
}

#[test]
fn chunks_and_ticks_recorded_as_rows_before_v11_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v10.db");
    let store = Store::open(&path).unwrap();
    let run = store.create_run(&manifest()).unwrap();
    // Rows as a v10 `ceiling` wrote them: the request without chunk arrays, a row a chunk.
    store
        .conn()
        .execute_batch(&format!(
            "INSERT INTO steps (run_id, idx, batch_size, input_len, output_len, pattern, start_t_s)
                 VALUES ({run}, 0, 1, 8, 3, 'closed_loop', 0.0);
             INSERT INTO requests (id, run_id, step_idx, worker, warmup, sent_t_s, done_t_s,
                 prompt_tokens_requested, completion_tokens_requested, outcome)
                 VALUES (7, {run}, 0, 0, 0, 0.5, 0.9, 8, 3, 'ok');
             INSERT INTO chunks (request_id, seq, t_s, tokens, kind)
                 VALUES (7, 0, 0.6, NULL, 'reasoning'), (7, 1, 0.7, 2, 'answer'),
                        (7, 2, 0.8, NULL, 'answer');
             INSERT INTO client_ticks (run_id, step_idx, t_s, late_s)
                 VALUES ({run}, 0, 0.505, 0.001), ({run}, 0, 0.510, 0.0);"
        ))
        .unwrap();
    let back = store.load_requests(run).unwrap();
    let chunks: Vec<_> = back[0]
        .chunks
        .iter()
        .map(|c| (c.t_s, c.tokens, c.kind))
        .collect();
    assert_eq!(
        chunks,
        [
            (0.6, None, ChunkKind::Reasoning),
            (0.7, Some(2), ChunkKind::Answer),
            (0.8, None, ChunkKind::Answer)
        ]
    );
    assert_eq!(store.load_recording(run).unwrap().chunks.height(), 3);
    let in_view: i64 = store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM chunk_rows WHERE request_id = 7",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_view, 3);
    let ticks: Vec<_> = store
        .load_ticks(run)
        .unwrap()
        .iter()
        .map(|t| (t.t_s, t.late_s))
        .collect();
    assert_eq!(ticks, [(0.505, 0.001), (0.510, 0.0)]);
    let in_view: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM client_tick_rows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(in_view, 2);
}

#[test]
fn a_damaged_tick_batch_is_an_error_that_names_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("ticks.db")).unwrap();
    let run = store.create_run(&manifest()).unwrap();
    for (t_s, late_s, column) in [
        ("[0.5,x]", "[0,0]", "tick_batches.t_s"),
        ("[0.5,0.6]", "[0]", "tick_batches.late_s"),
        ("[0.5]", "{}", "tick_batches.late_s"),
    ] {
        store
            .conn()
            .execute_batch(&format!(
                "DELETE FROM tick_batches;
                 INSERT INTO tick_batches (run_id, step_idx, t_s, late_s)
                     VALUES ({run}, 0, '{t_s}', '{late_s}');"
            ))
            .unwrap();
        match store.load_ticks(run) {
            Err(StoreError::Column { column: c, .. }) => assert_eq!(c, column, "{t_s} {late_s}"),
            other => panic!("{t_s} {late_s}: {other:?}"),
        }
    }
}
