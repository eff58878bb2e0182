//! The recording's schema and its migrations, keyed by `PRAGMA user_version`. A migration only
//! ever adds: a database written by an older `ceiling` opens in a newer one with every recorded
//! run intact.

use rusqlite::Connection;

use super::StoreError;

/// Each entry takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V_GPU_VIEW,
    V_RESULTS,
    V_HISTORY,
    V_RATES,
    V_MODEL_REVISION,
    V_ROLES,
    V_PROMPT_TEXT,
    V_SERIES,
    V_CHUNK_ARRAYS,
    V_TICK_BATCHES,
];

/// v2: whether a scrape was taken at a boundary the probe asked for (NULL in runs recorded
/// before: unknown).
///
/// Also the limits the engine told about itself (JSON, NULL when it told none).
///
/// And each request's response id as the engine named it.
pub(crate) const V2: &str = "ALTER TABLE scrapes ADD COLUMN boundary INTEGER;
ALTER TABLE runs ADD COLUMN engine_limits TEXT;
ALTER TABLE requests ADD COLUMN response_id TEXT;";

/// v3 (the GPU view): a GPU sample's MIG instance (`GPU_I_ID`; NULL for a whole-GPU reading)
/// and the DCGM profiling ratios (0–1; NULL where the source has none, as NVML never does).
const V_GPU_VIEW: &str = "ALTER TABLE gpu_samples ADD COLUMN mig_instance INTEGER;
ALTER TABLE gpu_samples ADD COLUMN gr_engine_active REAL;
ALTER TABLE gpu_samples ADD COLUMN sm_active REAL;
ALTER TABLE gpu_samples ADD COLUMN sm_occupancy REAL;
ALTER TABLE gpu_samples ADD COLUMN dram_active REAL;
ALTER TABLE gpu_samples ADD COLUMN tensor_active REAL;";
/// v4: benchmark results imported from other tools (`ceiling import`): one `results` row per
/// benchmark point, figures in seconds under our convention (TPOT = (E2E − TTFT)/(n − 1) per
/// request; ITL = chunk gaps pooled), the tool's own figures as JSON in `tool_figures`, the
/// deployment the user stated (`gpu`, `tp`, `dp`, the model's `config.json` text); the file's
/// sha256 makes a re-import a no-op. `result_requests` holds the file's per-request data
/// (`itl_s`: the request's chunk gaps as a JSON list), where it has any.
const V_RESULTS: &str = "CREATE TABLE results (
    id                   INTEGER PRIMARY KEY,
    imported_at          TEXT NOT NULL,
    file_path            TEXT NOT NULL,
    file_sha256          TEXT NOT NULL,
    point_idx            INTEGER NOT NULL,
    tool                 TEXT NOT NULL,
    tool_version         TEXT,
    label                TEXT,
    model                TEXT,
    endpoint             TEXT,
    mode                 TEXT NOT NULL,
    concurrency          REAL,
    request_rate         REAL,
    burstiness           REAL,
    dataset              TEXT,
    input_len_requested  REAL,
    output_len_requested REAL,
    input_len_mean       REAL,
    output_len_mean      REAL,
    ignore_eos           INTEGER,
    warmup_requests      INTEGER,
    completed            INTEGER,
    failed               INTEGER,
    duration_s           REAL,
    req_per_s            REAL,
    output_tok_per_s     REAL,
    total_tok_per_s      REAL,
    ttft_mean_s REAL, ttft_p50_s REAL, ttft_p90_s REAL, ttft_p95_s REAL, ttft_p99_s REAL, ttft_std_s REAL,
    tpot_mean_s REAL, tpot_p50_s REAL, tpot_p90_s REAL, tpot_p95_s REAL, tpot_p99_s REAL, tpot_std_s REAL,
    itl_mean_s REAL, itl_p50_s REAL, itl_p90_s REAL, itl_p95_s REAL, itl_p99_s REAL, itl_std_s REAL,
    e2e_mean_s REAL, e2e_p50_s REAL, e2e_p90_s REAL, e2e_p95_s REAL, e2e_p99_s REAL, e2e_std_s REAL,
    tool_figures         TEXT NOT NULL,
    gpu                  TEXT,
    tp                   INTEGER,
    dp                   INTEGER,
    model_config         TEXT,
    note                 TEXT,
    UNIQUE (file_sha256, point_idx)
);
CREATE TABLE result_requests (
    result_id      INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
    idx            INTEGER NOT NULL,
    start_s        REAL,
    ttft_s         REAL,
    e2e_s          REAL,
    input_tokens   REAL,
    output_tokens  REAL,
    ok             INTEGER NOT NULL,
    error          TEXT,
    itl_s          TEXT,
    PRIMARY KEY (result_id, idx)
) WITHOUT ROWID;";

/// v5: what the history keeps of an analysed run (docs/NIGHTLY.md): `run_results`, one row per
/// analysed run (the fit, the ceilings, the findings' counts, the constraints it was analysed
/// under), and `step_results`, one row per step (the three step times and the chosen one, the
/// latency percentiles, throughput, the engine's view, the GPU window means and the union of
/// throttle reasons). Written, replacing any earlier rows, each time a run is analysed; a run
/// recorded before has none until it is analysed again (`ceiling regress` does that on demand).
const V_HISTORY: &str = "CREATE TABLE run_results (
    run_id                 INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    analysed_at            TEXT NOT NULL,
    tool_version           TEXT NOT NULL,
    fit_a_s                REAL,
    fit_b_s_per_seq        REAL,
    fit_c_s_per_seq_token  REAL,
    fit_residual_std_s     REAL,
    ceiling_tok_s          REAL,
    ceiling_bs_per_rank    INTEGER,
    ceilings               TEXT NOT NULL,
    kv_capacity_tokens     REAL,
    max_num_seqs           INTEGER,
    findings_info          INTEGER NOT NULL,
    findings_warn          INTEGER NOT NULL,
    findings_error         INTEGER NOT NULL
);
CREATE TABLE step_results (
    run_id                     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_idx                   INTEGER NOT NULL,
    batch_size                 INTEGER NOT NULL,
    input_len                  INTEGER NOT NULL,
    output_len                 INTEGER NOT NULL,
    t_fwd_s                    REAL,
    t_fwd_client_s             REAL,
    t_fwd_engine_s             REAL,
    t_fwd_identity_s           REAL,
    own_rel_sigma              REAL,
    tpot_p50_s                 REAL,
    tpot_p99_s                 REAL,
    ttft_p50_s                 REAL,
    ttft_p99_s                 REAL,
    itl_p50_s                  REAL,
    itl_p99_s                  REAL,
    throughput_tok_s           REAL,
    running_mean               REAL,
    kv_usage_max_frac          REAL,
    kv_capacity_tokens         REAL,
    preemptions                REAL,
    gpu_util_mean_pct          REAL,
    sm_clock_mean_mhz          REAL,
    mem_clock_mean_mhz         REAL,
    power_mean_w               REAL,
    temp_mean_c                REAL,
    throttle_reasons           TEXT,
    energy_per_output_token_j  REAL,
    PRIMARY KEY (run_id, step_idx)
);";

/// v6 (open-loop rate steps): a rate step's asked arrival rate in requests/s (`+inf` for all
/// at once) and its burstiness (gamma shape), NULL for the fixed-batch patterns; and each
/// request's scheduled send instant (NULL outside the open loop), so the client's lateness
/// against its schedule is `sent_t_s - scheduled_t_s`.
const V_RATES: &str = "ALTER TABLE steps ADD COLUMN rate_rps REAL;
ALTER TABLE steps ADD COLUMN burstiness REAL;
ALTER TABLE requests ADD COLUMN scheduled_t_s REAL;";

/// v7: the model's revision as `--model-revision` gave it or the engine's model list told
/// (NULL where neither said), so `regress` names a new revision beside a regression.
const V_MODEL_REVISION: &str = "ALTER TABLE runs ADD COLUMN model_revision TEXT;";

/// v8: the prefill and decode servers of a disaggregated deployment (`--metrics-url
/// ROLE=URL`): `metric_sources` names each endpoint (its role, its URL without credentials,
/// the engine its metrics show), and `role_scrapes` / `role_samples` hold its scrapes in the
/// columns of `scrapes` / `engine_samples`. The engine's own scrapes stay where they were.
const V_ROLES: &str = "CREATE TABLE metric_sources (
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    source       INTEGER NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('prefill', 'decode')),
    url          TEXT NOT NULL,
    engine_kind  TEXT,
    PRIMARY KEY (run_id, source)
);
CREATE TABLE role_scrapes (
    run_id       INTEGER NOT NULL,
    source       INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    t_s          REAL NOT NULL,
    duration_s   REAL,
    http_status  INTEGER,
    error        TEXT,
    boundary     INTEGER,
    PRIMARY KEY (run_id, source, seq),
    FOREIGN KEY (run_id, source) REFERENCES metric_sources (run_id, source) ON DELETE CASCADE
);
CREATE TABLE role_samples (
    run_id      INTEGER NOT NULL,
    source      INTEGER NOT NULL,
    scrape_seq  INTEGER NOT NULL,
    t_s         REAL NOT NULL,
    name        TEXT NOT NULL,
    labels      TEXT NOT NULL,
    value       REAL,
    FOREIGN KEY (run_id, source, scrape_seq)
        REFERENCES role_scrapes (run_id, source, seq) ON DELETE CASCADE
);
CREATE INDEX role_samples_run ON role_samples (run_id, source, t_s);";

/// v9: whether a request's prompt was a dataset's text (`--dataset-prompts text`), its asked
/// length then a count of that text; NULL in runs recorded before (their prompts were exact).
const V_PROMPT_TEXT: &str = "ALTER TABLE requests ADD COLUMN prompt_from_text INTEGER;";

/// v10: a scrape's samples on the scrape's own row, against a per-run dictionary of series,
/// where `engine_samples` / `role_samples` held each sample as a row of its name, labels (JSON
/// text) and instant under a text index: every scrape repeats the same few hundred series, so
/// that cost ~5.7 M instructions a scrape to write and read back, a quarter of a probe's
/// instructions per token at 8 streams (docs/PERFORMANCE.md, "Where the instructions go"). `metric_series` names each
/// distinct (name, labels) of a run once, the engine's and its role endpoints' alike; a scrape's
/// `sample_series` is the JSON array of its samples' series ids in the order the engine exposed
/// them, and `sample_values` the JSON array of their values (numbers; `"NaN"`, `"+Inf"`,
/// `"-Inf"` for those). Runs recorded before keep their samples in the old tables, which are still
/// read. The views `engine_sample_rows` / `role_sample_rows` give both as one row per sample (NaN
/// as NULL), for SQL.
const V_SERIES: &str = "CREATE TABLE metric_series (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    id      INTEGER NOT NULL,
    name    TEXT NOT NULL,
    labels  TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
) WITHOUT ROWID;
ALTER TABLE scrapes ADD COLUMN sample_series TEXT;
ALTER TABLE scrapes ADD COLUMN sample_values TEXT;
ALTER TABLE role_scrapes ADD COLUMN sample_series TEXT;
ALTER TABLE role_scrapes ADD COLUMN sample_values TEXT;
CREATE VIEW engine_sample_rows AS
SELECT sc.run_id, sc.seq AS scrape_seq, sc.t_s, v.key AS pos, se.name, se.labels,
    CASE v.type WHEN 'text' THEN CASE v.value WHEN '+Inf' THEN 9e999 WHEN '-Inf' THEN -9e999 END
        ELSE v.value END AS value
FROM scrapes sc, json_each(sc.sample_values) v
JOIN metric_series se
    ON se.run_id = sc.run_id AND se.id = json_extract(sc.sample_series, '$[' || v.key || ']')
UNION ALL
SELECT run_id, scrape_seq, t_s, NULL, name, labels, value FROM engine_samples;
CREATE VIEW role_sample_rows AS
SELECT sc.run_id, sc.source, sc.seq AS scrape_seq, sc.t_s, v.key AS pos, se.name, se.labels,
    CASE v.type WHEN 'text' THEN CASE v.value WHEN '+Inf' THEN 9e999 WHEN '-Inf' THEN -9e999 END
        ELSE v.value END AS value
FROM role_scrapes sc, json_each(sc.sample_values) v
JOIN metric_series se
    ON se.run_id = sc.run_id AND se.id = json_extract(sc.sample_series, '$[' || v.key || ']')
UNION ALL
SELECT run_id, source, scrape_seq, t_s, NULL, name, labels, value FROM role_samples;";

/// v11: a request's chunks on the request's own row (`src/store/arrays.rs`), where each
/// chunk was a row of `chunks` keyed by (request, seq): ~5,000 instructions a streamed token to
/// write and ~2,000 to read back, a quarter of the probe's at 8 streams (docs/PERFORMANCE.md,
/// "Its own HTTP client, and a request's chunks on one row"). `chunk_t_s` is the JSON array of
/// the arrival instants, `chunk_tokens` that of the tokens each carried (`null` unknown; the
/// column NULL when all are), `chunk_kinds` a letter a chunk (`a` answer, `r` reasoning; NULL
/// when all are answers). Requests recorded before keep their rows in `chunks`, still read; the
/// view `chunk_rows` gives both as one row a chunk, for SQL.
const V_CHUNK_ARRAYS: &str = "ALTER TABLE requests ADD COLUMN chunk_t_s TEXT;
ALTER TABLE requests ADD COLUMN chunk_tokens TEXT;
ALTER TABLE requests ADD COLUMN chunk_kinds TEXT;
CREATE VIEW chunk_rows AS
SELECT q.id AS request_id, t.key AS seq, t.value AS t_s,
    json_extract(q.chunk_tokens, '$[' || t.key || ']') AS tokens,
    CASE substr(q.chunk_kinds, t.key + 1, 1) WHEN 'r' THEN 'reasoning' ELSE 'answer' END AS kind
FROM requests q, json_each(q.chunk_t_s) t
UNION ALL
SELECT request_id, seq, t_s, tokens, kind FROM chunks;";

/// v12: the lateness ticker's ticks a batch to a row (`src/store/arrays.rs`): the ticker hands
/// the writer 50 at a time (one step's), each was a row of `client_ticks`, 200 rows a second
/// whatever the load (~3,800 instructions a row written; at 8 streams 8 % of a token's).
/// `t_s` and `late_s` are JSON arrays, the tick's due instant and how late it woke. Runs
/// recorded before keep their rows, still read; the view `client_tick_rows` gives both.
const V_TICK_BATCHES: &str = "CREATE TABLE tick_batches (
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_idx  INTEGER NOT NULL,
    t_s       TEXT NOT NULL,
    late_s    TEXT NOT NULL
);
CREATE INDEX tick_batches_run ON tick_batches (run_id);
CREATE VIEW client_tick_rows AS
SELECT b.run_id, b.step_idx, t.value AS t_s,
    json_extract(b.late_s, '$[' || t.key || ']') AS late_s
FROM tick_batches b, json_each(b.t_s) t
UNION ALL
SELECT run_id, step_idx, t_s, late_s FROM client_ticks;";

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

pub(crate) const V1: &str = r#"
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    started_at        TEXT NOT NULL,
    ended_at          TEXT,
    tool_version      TEXT NOT NULL,
    git_sha           TEXT,
    host              TEXT,
    command_line      TEXT NOT NULL,
    engine_kind       TEXT,
    engine_version    TEXT,
    base_url          TEXT,
    model             TEXT,
    probe_config      TEXT NOT NULL,
    probe_config_hash TEXT NOT NULL,
    gpu_inventory     TEXT NOT NULL DEFAULT '[]',
    gpu_model         TEXT,
    gpu_count         INTEGER NOT NULL DEFAULT 0,
    driver_version    TEXT,
    status            TEXT NOT NULL CHECK (status IN ('running', 'complete', 'interrupted', 'failed')),
    error             TEXT
);
CREATE INDEX runs_history ON runs (host, gpu_model, model, engine_version, probe_config_hash);

CREATE TABLE steps (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    batch_size  INTEGER NOT NULL,
    input_len   INTEGER NOT NULL,
    output_len  INTEGER NOT NULL,
    pattern     TEXT NOT NULL,
    start_t_s   REAL NOT NULL,
    end_t_s     REAL,
    PRIMARY KEY (run_id, idx)
);

CREATE TABLE requests (
    id                           INTEGER PRIMARY KEY,
    run_id                       INTEGER NOT NULL,
    step_idx                     INTEGER NOT NULL,
    worker                       INTEGER NOT NULL,
    wave                         INTEGER,
    warmup                       INTEGER NOT NULL,
    sent_t_s                     REAL NOT NULL,
    headers_t_s                  REAL,
    first_token_t_s              REAL,
    first_answer_t_s             REAL,
    done_t_s                     REAL,
    prompt_tokens_requested      INTEGER NOT NULL,
    completion_tokens_requested  INTEGER NOT NULL,
    prompt_tokens_reported       INTEGER,
    completion_tokens_reported   INTEGER,
    cached_tokens_reported       INTEGER,
    outcome                      TEXT NOT NULL,
    http_status                  INTEGER,
    error                        TEXT,
    FOREIGN KEY (run_id, step_idx) REFERENCES steps (run_id, idx) ON DELETE CASCADE
);
CREATE INDEX requests_step ON requests (run_id, step_idx);

CREATE TABLE chunks (
    request_id  INTEGER NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    t_s         REAL NOT NULL,
    tokens      INTEGER,
    kind        TEXT NOT NULL CHECK (kind IN ('reasoning', 'answer')),
    PRIMARY KEY (request_id, seq)
) WITHOUT ROWID;

CREATE TABLE client_ticks (
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_idx  INTEGER NOT NULL,
    t_s       REAL NOT NULL,
    late_s    REAL NOT NULL
);
CREATE INDEX client_ticks_step ON client_ticks (run_id, step_idx);

CREATE TABLE gpu_samples (
    run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    gpu_index        INTEGER NOT NULL,
    t_s              REAL NOT NULL,
    util_gpu_pct     REAL,
    util_mem_pct     REAL,
    mem_used_bytes   INTEGER,
    mem_total_bytes  INTEGER,
    power_w          REAL,
    energy_j         REAL,
    sm_clock_mhz     INTEGER,
    mem_clock_mhz    INTEGER,
    temp_c           REAL,
    throttle_reasons INTEGER,
    pcie_tx_bytes_s  REAL,
    pcie_rx_bytes_s  REAL
);
CREATE INDEX gpu_samples_run ON gpu_samples (run_id, gpu_index, t_s);

CREATE TABLE scrapes (
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    t_s          REAL NOT NULL,
    duration_s   REAL,
    http_status  INTEGER,
    error        TEXT,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE engine_samples (
    run_id      INTEGER NOT NULL,
    scrape_seq  INTEGER NOT NULL,
    t_s         REAL NOT NULL,
    name        TEXT NOT NULL,
    labels      TEXT NOT NULL,
    value       REAL,
    FOREIGN KEY (run_id, scrape_seq) REFERENCES scrapes (run_id, seq) ON DELETE CASCADE
);
CREATE INDEX engine_samples_run ON engine_samples (run_id, name, t_s);

CREATE TABLE findings (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step_idx   INTEGER,
    code       TEXT NOT NULL,
    severity   TEXT NOT NULL CHECK (severity IN ('info', 'warn', 'error')),
    message    TEXT NOT NULL,
    evidence   TEXT NOT NULL
);
CREATE INDEX findings_run ON findings (run_id);
"#;

/// Sets the connection's pragmas and brings its schema to [`CURRENT_VERSION`].
pub fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    // The busy timeout first: switching to WAL takes a lock, and another connection of the
    // same run (the writer thread, a second `ceiling`) may hold one for a moment.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "normal")?;
    conn.pragma_update(None, "foreign_keys", "on")?;
    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > CURRENT_VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            known: CURRENT_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process opening the same new database may have applied it while this one
        // waited for the write lock.
        let now: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now > i as u32 {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
