//! A request's chunks on its row (none, one, many, with and without token counts and
//! reasoning) and the lateness ticks around the 32 rows of one `INSERT`, read back whole and in
//! order, through the records, the analysis's columns and the `chunk_rows` view.

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
    // The ticker's batches, around the same boundary.
    let ticks: Vec<LatenessTick> = (0..70)
        .map(|i| LatenessTick {
            step_idx: 0,
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
    // The analysis's columns: every chunk, each with its request's row.
    let rec = store.load_recording(run).unwrap();
    assert_eq!(rec.chunks.height(), want.len());
}

#[test]
fn chunks_recorded_as_rows_before_v11_still_read() {
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
                        (7, 2, 0.8, NULL, 'answer');"
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
}
