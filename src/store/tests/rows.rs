//! The writer's many rows a statement: chunks and lateness ticks around the 32 rows of one
//! `INSERT` read back whole and in order.

use super::*;

#[test]
fn chunks_and_ticks_written_many_rows_a_statement_read_back_whole_and_in_order() {
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
    let rows: i64 = store
        .conn()
        .query_row("SELECT COUNT(*) FROM chunks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, counts.iter().map(|&n| i64::from(n)).sum::<i64>());
}
