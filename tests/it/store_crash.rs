//! Crash safety: a writer killed with SIGKILL mid-write leaves an intact database that holds
//! every batch it reported committed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn sigkill_mid_write_keeps_every_committed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut child = super::cli::ceiling()
        .arg("--db")
        .arg(&db)
        .arg("__write-load")
        // A bound, so a writer that never commits fails the test instead of filling the disk.
        .args(["--requests", "2000000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = 0u64;
    let mut commits = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        committed = line.strip_prefix("committed ").unwrap().parse().unwrap();
        commits += 1;
        if commits == 4 {
            break;
        }
    }
    // std's kill sends SIGKILL on Unix: no destructor, no final commit.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(committed > 0);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let requests: i64 = conn
        .query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    let chunks: i64 = conn
        .query_row("SELECT COUNT(*) FROM chunk_rows", [], |r| r.get(0))
        .unwrap();
    let status: String = conn
        .query_row("SELECT status FROM runs", [], |r| r.get(0))
        .unwrap();
    // `committed` counts the step record too.
    assert!(requests + 1 >= committed as i64, "{requests} < {committed}");
    assert_eq!(
        chunks,
        requests * 16,
        "a request and its chunks commit together"
    );
    assert_eq!(status, "running", "a killed run stays visibly unfinished");
}
