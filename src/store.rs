//! The recording store: one SQLite file (WAL mode) holding every run, its steps, requests,
//! chunks, client ticks, GPU samples, scrapes, engine samples and findings.
//!
//! Runs are created and closed here on the caller's connection; everything recorded during a run
//! goes through the [`writer`] thread. Reads for listing and analysis live in [`read`].

mod arrays;
pub mod frames;
pub mod history;
pub mod liveness;
pub mod read;
mod read_only;
pub mod results;
pub mod roles;
pub mod schema;
mod series;
pub mod writer;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use ceiling_collectors::GpuInfo;

pub use writer::{Record, Writer, WriterOptions};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: not a ceiling database ({source}); pass --db with a file ceiling wrote, or a new path"
    )]
    NotADatabase {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path}: cannot open the database for writing ({source}); recording needs it writable: make the file and its directory writable, or pass --db with a writable path"
    )]
    NotWritable {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "{path} cannot be written and has schema version {found}, older than this ceiling's ({known}), which would migrate it: copy it somewhere writable and pass --db with the copy"
    )]
    ReadOnlyOldSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error(
        "the database has schema version {found}, newer than this ceiling knows ({known}); use a newer ceiling"
    )]
    NewerSchema { found: u32, known: u32 },
    #[error("no run {0} in the database; `ceiling runs` lists them")]
    NoSuchRun(i64),
    #[error("the database has no runs yet; record one with `ceiling probe`")]
    NoRuns,
    #[error("no imported result {0} in the database; `ceiling results` lists them")]
    NoSuchResult(i64),
    #[error("the recording writer stopped: {0}")]
    WriterGone(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("building the recording's frames failed (a bug; please report it): {0}")]
    Frames(String),
    #[error("stored JSON in column {column} is malformed: {source}")]
    Json {
        column: &'static str,
        source: serde_json::Error,
    },
    #[error("stored column {column} is malformed: {what}")]
    Column { column: &'static str, what: String },
}

/// The state of a run in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Complete,
    Interrupted,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "running" => Some(RunStatus::Running),
            "complete" => Some(RunStatus::Complete),
            "interrupted" => Some(RunStatus::Interrupted),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }
}

/// What a run records about itself when it starts: enough to reproduce it and to key the
/// nightly history on. The command line is stored with secrets removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunManifest {
    pub started_at: String,
    pub tool_version: String,
    pub git_sha: Option<String>,
    pub host: Option<String>,
    pub command_line: String,
    pub engine_kind: Option<String>,
    pub engine_version: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// `--model-revision`, else what the engine's model list says of the weights.
    #[serde(default)]
    pub model_revision: Option<String>,
    pub probe_config: serde_json::Value,
    pub gpu_inventory: Vec<GpuInfo>,
    /// What the engine said of its own limits before the run (llama.cpp's `/props`).
    #[serde(default)]
    pub engine_limits: Option<EngineLimits>,
}

/// Limits an engine reports about itself, which the analysis uses where no flag gives them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineLimits {
    /// Where they came from, e.g. `llama.cpp /props`.
    pub source: String,
    /// Sequences served at once (llama.cpp slots, `-np`).
    pub max_seqs: Option<u32>,
    /// Prompt + output tokens one sequence can hold (llama.cpp's per-slot context).
    pub context_per_seq: Option<u32>,
    /// KV cache capacity in tokens over all sequences.
    pub kv_capacity_tokens: Option<u64>,
}

impl RunManifest {
    /// A manifest stamped now, with this build's version, git SHA and host name.
    pub fn new(command_line: String, probe_config: serde_json::Value) -> Self {
        RunManifest {
            started_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            git_sha: option_env!("CEILING_GIT_SHA").map(str::to_string),
            host: host_name(),
            command_line,
            engine_kind: None,
            engine_version: None,
            base_url: None,
            model: None,
            model_revision: None,
            probe_config,
            gpu_inventory: Vec::new(),
            engine_limits: None,
        }
    }

    /// A stable hash of the probe configuration: runs with equal hashes are comparable. The
    /// prompt seed (fresh per run unless pinned), output switches and the layout's version
    /// (`ProbeSettings`) do not change what is measured, so they are left out.
    pub fn probe_config_hash(&self) -> String {
        let mut config = self.probe_config.clone();
        if let Some(o) = config.as_object_mut() {
            for key in ["seed", "json", "version"] {
                o.remove(key);
            }
        }
        let canonical = config.to_string();
        let digest = Sha256::digest(canonical.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// The node's name for the history: `$CEILING_HOST` when set (a container whose host name
/// changes, a simulated fleet in tests), else the system's host name.
fn host_name() -> Option<String> {
    std::env::var("CEILING_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| gethostname::gethostname().into_string().ok())
}

/// An open recording.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The locks of the runs this store created and has not closed ([`liveness`]).
    held: std::sync::Mutex<Vec<liveness::RunLock>>,
    /// The `file:` URI it was opened with to read only ([`Store::open_to_read`]), which a second
    /// reading connection must use too.
    read_uri: Option<String>,
}

/// [`schema::prepare`], again while another process holds the file: SQLite answers `BUSY`
/// without waiting on the busy timeout where waiting could deadlock (two connections making a
/// new file WAL at once: two probes started together on one `--db`), so this retries for up to
/// 10 s.
fn prepare_when_free(conn: &mut Connection) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match schema::prepare(conn) {
            Err(StoreError::Sqlite(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let not_db = |source: rusqlite::Error| {
            use rusqlite::ErrorCode as C;
            match source.sqlite_error_code() {
                Some(C::CannotOpen | C::ReadOnly | C::PermissionDenied) if path.exists() => {
                    StoreError::NotWritable {
                        path: path.to_path_buf(),
                        source,
                    }
                }
                _ => StoreError::NotADatabase {
                    path: path.to_path_buf(),
                    source,
                },
            }
        };
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(not_db)?;
        match prepare_when_free(&mut conn) {
            Ok(()) => {}
            Err(StoreError::Sqlite(e)) => return Err(not_db(e)),
            Err(e) => return Err(e),
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            held: std::sync::Mutex::new(Vec::new()),
            read_uri: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Inserts a run in state `running`, holding its lock until [`Store::finish_run`], and
    /// returns its id. Runs left `running` by a process that is gone are marked `interrupted`
    /// first ([`liveness`]).
    pub fn create_run(&self, m: &RunManifest) -> Result<i64, StoreError> {
        let gpu_model = m.gpu_inventory.first().and_then(|g| g.name.clone());
        let driver = m.gpu_inventory.first().and_then(|g| g.driver.clone());
        let inventory =
            serde_json::to_string(&m.gpu_inventory).map_err(|source| StoreError::Json {
                column: "gpu_inventory",
                source,
            })?;
        let limits = m
            .engine_limits
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|source| StoreError::Json {
                column: "engine_limits",
                source,
            })?;
        // IMMEDIATE: another process creating a run is either committed with its lock held
        // or not yet visible, never seen between the two.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        liveness::abandoned_to_interrupted(&tx, &self.path)?;
        tx.execute(
            "INSERT INTO runs (started_at, tool_version, git_sha, host, command_line, engine_kind,
                engine_version, base_url, model, probe_config, probe_config_hash, gpu_inventory,
                gpu_model, gpu_count, driver_version, engine_limits, model_revision, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, 'running')",
            params![
                m.started_at,
                m.tool_version,
                m.git_sha,
                m.host,
                m.command_line,
                m.engine_kind,
                m.engine_version,
                m.base_url,
                m.model,
                m.probe_config.to_string(),
                m.probe_config_hash(),
                inventory,
                gpu_model,
                m.gpu_inventory.len() as i64,
                driver,
                limits,
                m.model_revision,
            ],
        )?;
        let id = tx.last_insert_rowid();
        if let Some(lock) = liveness::hold(&self.path, id) {
            self.held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(lock);
        }
        tx.commit()?;
        Ok(id)
    }

    /// Records what became known about the engine after the run started (from `/v1/models`
    /// or the first scrape). `None` leaves a field as it was.
    pub fn set_run_engine(
        &self,
        run_id: i64,
        kind: Option<&str>,
        version: Option<&str>,
        model: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET engine_kind = COALESCE(?2, engine_kind),
                engine_version = COALESCE(?3, engine_version), model = COALESCE(?4, model)
             WHERE id = ?1",
            params![run_id, kind, version, model],
        )?;
        Ok(())
    }

    /// Records the GPU inventory once the sampler has read it. During a probe run the
    /// inventory goes through the writer instead ([`Record::RunGpus`]), so one connection writes.
    pub fn set_run_gpus(&self, run_id: i64, gpus: &[GpuInfo]) -> Result<(), StoreError> {
        update_run_gpus(&self.conn, run_id, gpus)
    }

    /// Closes a run with its final status.
    pub fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let ended = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let n = self.conn.execute(
            "UPDATE runs SET status = ?2, ended_at = ?3, error = ?4 WHERE id = ?1",
            params![run_id, status.as_str(), ended, error],
        )?;
        if n == 0 {
            return Err(StoreError::NoSuchRun(run_id));
        }
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = held.iter().position(|l| l.run_id() == run_id) {
            held.swap_remove(i).release();
        }
        Ok(())
    }
}

/// The GPU inventory and the columns the history keys on, for run `run_id`.
pub(crate) fn update_run_gpus(
    conn: &Connection,
    run_id: i64,
    gpus: &[GpuInfo],
) -> Result<(), StoreError> {
    let inventory = serde_json::to_string(gpus).map_err(|source| StoreError::Json {
        column: "gpu_inventory",
        source,
    })?;
    conn.execute(
        "UPDATE runs SET gpu_inventory = ?2, gpu_model = ?3, gpu_count = ?4, driver_version = ?5
         WHERE id = ?1",
        params![
            run_id,
            inventory,
            gpus.first().and_then(|g| g.name.clone()),
            gpus.len() as i64,
            gpus.first().and_then(|g| g.driver.clone()),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests;
