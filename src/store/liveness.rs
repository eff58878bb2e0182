//! Whether a run marked `running` is still being recorded. The process recording a run holds an
//! exclusive lock on `DB.run-ID.lock` beside the database; the kernel drops it when the process
//! dies, SIGKILL included. A `running` run whose lock can be taken (or whose lock file is gone)
//! was abandoned: [`abandoned_to_interrupted`] marks it `interrupted` when the next run starts,
//! and everything it recorded stays. A run recorded by a ceiling older than this lock, still
//! running while a new run starts, would be marked too (its own close then sets its status).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::StoreError;

/// The lock of one run, held while it records. Dropping it releases the lock; [`RunLock::release`]
/// also removes the file.
#[derive(Debug)]
pub struct RunLock {
    run_id: i64,
    path: PathBuf,
    _file: File,
}

impl RunLock {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Releases the lock and removes its file (the run is closed).
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn lock_path(db: &Path, run_id: i64) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(format!(".run-{run_id}.lock"));
    PathBuf::from(name)
}

/// Takes the lock of `run_id`; `None` where the file cannot be made (a read-only directory):
/// the run records all the same, and is only not told apart from an abandoned one.
pub fn hold(db: &Path, run_id: i64) -> Option<RunLock> {
    let path = lock_path(db, run_id);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?;
    file.try_lock().ok()?;
    Some(RunLock {
        run_id,
        path,
        _file: file,
    })
}

/// Whether the process that recorded `run_id` is gone.
fn is_abandoned(db: &Path, run_id: i64) -> bool {
    let path = lock_path(db, run_id);
    let Ok(file) = OpenOptions::new().write(true).open(&path) else {
        return !path.exists();
    };
    match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => false,
        Err(TryLockError::Error(_)) => false,
    }
}

/// Marks every abandoned `running` run `interrupted`; returns their ids. Call inside the
/// transaction that inserts the next run, so that a run being created elsewhere is either
/// not yet visible or already locked.
pub fn abandoned_to_interrupted(conn: &Connection, db: &Path) -> Result<Vec<i64>, StoreError> {
    let running: Vec<i64> = conn
        .prepare("SELECT id FROM runs WHERE status = 'running'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut marked = Vec::new();
    for id in running.into_iter().filter(|&id| is_abandoned(db, id)) {
        conn.execute(
            "UPDATE runs SET status = 'interrupted', error = ?2 WHERE id = ?1 AND status = 'running'",
            params![
                id,
                "the process recording this run ended without closing it (killed, or the machine stopped); found when the next run started"
            ],
        )?;
        let _ = std::fs::remove_file(lock_path(db, id));
        marked.push(id);
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use crate::store::{RunManifest, RunStatus, Store};

    fn status(store: &Store, id: i64) -> RunStatus {
        store
            .list_runs()
            .expect("runs")
            .into_iter()
            .find(|r| r.id == id)
            .expect("run")
            .status
    }

    #[test]
    fn a_run_whose_process_is_gone_is_interrupted_at_the_next_start_and_a_live_one_is_not() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("l.db");
        let m = RunManifest::new("c".into(), serde_json::json!({}));
        let live = Store::open(&db).expect("open");
        let held = live.create_run(&m).expect("run");
        let gone = {
            let s = Store::open(&db).expect("open");
            s.create_run(&m).expect("run")
            // Dropped without finish_run: its lock goes as a killed process's would.
        };
        let next = Store::open(&db).expect("open");
        let third = next.create_run(&m).expect("run");
        assert_eq!(status(&next, held), RunStatus::Running);
        assert_eq!(status(&next, gone), RunStatus::Interrupted);
        assert_eq!(status(&next, third), RunStatus::Running);
        live.finish_run(held, RunStatus::Complete, None)
            .expect("finish");
        assert!(!dir.path().join(format!("l.db.run-{held}.lock")).exists());
        assert!(!dir.path().join(format!("l.db.run-{gone}.lock")).exists());
    }
}
