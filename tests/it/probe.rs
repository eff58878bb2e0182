//! `ceiling probe` as a child process against the simulated engine on 127.0.0.1: exact lengths,
//! at most bs in flight, the engine's counters against the client's tokens, TPOT and the fitted
//! step time against the simulator's truth, the ceiling, faults recorded by kind, Ctrl-C, and
//! runs set up to be wrong raising the right findings while a clean run raises no warning.
#![expect(
    clippy::unwrap_used,
    reason = "integration tests: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

use ceiling::sim::{Faults, Profile, SimFlavor, SimHandle};
use ceiling::store::Store;
use ceiling_reports::{Outcome, RequestRecord};
use serde_json::Value;

use crate::cli::ceiling;

mod disk;
mod equivalence;
mod interrupts;
mod kill;
mod setups;
mod spec;

/// The tiny profile with only a per-step and a per-sequence cost, so the fit has an exact truth:
/// t_fwd = 4 ms + 0.15 ms × bs.
fn linear() -> Profile {
    Profile {
        k_ctx_s: 0.0,
        k_prefill_s: 0.000_000_5,
        eos_probability: 0.0,
        ..crate::sim::tiny()
    }
}

async fn sim(profile: Profile, faults: Faults) -> SimHandle {
    let mut cfg = ceiling::sim::SimConfig::new(profile);
    cfg.flavor = SimFlavor::Vllm;
    cfg.faults = faults;
    ceiling::sim::start(cfg).await.unwrap()
}

/// `ceiling --db DB probe --url BASE ARGS…`, off the runtime so the simulator keeps serving.
pub(crate) async fn probe(db: &Path, base: &str, args: &[&str]) -> Output {
    let mut cmd = probe_command(db, base, args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// `ceiling --db DB probe --url BASE ARGS…`, to run or spawn.
fn probe_command(db: &Path, base: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = ceiling();
    cmd.arg("--db")
        .arg(db)
        .args(["probe", "--url", base])
        .args(args);
    cmd
}

pub(crate) async fn analyze_json(db: &Path, args: &[&str]) -> Value {
    let mut cmd = ceiling();
    cmd.arg("--db")
        .arg(db)
        .args(["analyze", "latest", "--json"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("p.db")
}

fn requests(db: &Path) -> Vec<RequestRecord> {
    let store = Store::open(db).unwrap();
    let id = store.latest_run().unwrap();
    store.load_requests(id).unwrap()
}

/// The most requests of one step in flight at once, from the recorded send and done instants.
fn max_in_flight(reqs: &[&RequestRecord]) -> usize {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for r in reqs {
        events.push((r.sent_t_s, 1));
        events.push((r.done_t_s.unwrap(), -1));
    }
    // At equal instants a finish comes before a send.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        max = max.max(now);
    }
    max as usize
}

fn codes(v: &Value, severities: &[&str]) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| severities.contains(&f["severity"].as_str().unwrap()))
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn generation_counter_delta(db: &Path) -> f64 {
    let store = Store::open(db).unwrap();
    let id = store.latest_run().unwrap();
    let scrapes = store.load_scrapes(id).unwrap();
    let total = |i: usize| -> f64 {
        scrapes[i]
            .samples
            .iter()
            .filter(|s| &*s.name == "vllm:generation_tokens_total")
            .map(|s| s.value)
            .sum()
    };
    total(scrapes.len() - 1) - total(0)
}

const SWEEP: &str = "1,2,4,8,16,32,64";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_sweep_is_exact_and_recovers_the_simulators_step_time_fit_and_ceiling() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = probe(
        &db,
        &h.base_url(),
        &[
            "--batch-sizes",
            SWEEP,
            "--input-len",
            "64",
            "--output-len",
            "48",
            "--waves",
            "2",
            "--scrape-interval",
            "50ms",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // The probe's own summary: a block per step, then the analysis.
    assert!(
        stdout.contains("step 6 · bs 64 · 64 in / 48 out · wave: 128 ok, 0 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("fit: t_fwd ="), "{stdout}");
    let truth = h.truth();

    let reqs = requests(&db);
    assert_eq!(
        reqs.len(),
        3 * (1 + 2 + 4 + 8 + 16 + 32 + 64),
        "1 warm-up + 2 waves"
    );
    for r in &reqs {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.prompt_tokens_reported, Some(64));
        assert_eq!(r.completion_tokens_reported, Some(48));
        assert!(r.first_token_t_s.unwrap() <= r.done_t_s.unwrap());
    }
    for bs in [1usize, 2, 4, 8, 16, 32, 64] {
        let step: Vec<&RequestRecord> = reqs
            .iter()
            .filter(|r| r.step_idx as usize == bs.trailing_zeros() as usize)
            .collect();
        assert_eq!(max_in_flight(&step), bs, "bs {bs}");
    }
    // Every response is named, and the simulator logged when it wrote each one's first token:
    // the client, which sent before the server's kernel received and read after the server
    // wrote, never sees a shorter TTFT than the server.
    let served: Vec<Value> = crate::sim::client()
        .get(format!("{}/sim/requests", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The server's TTFT from the kernel's receipt of the request (`socket_wait_s` before its
    // handler, logged for every request on Linux), which the client's still bounds.
    let server_ttft: std::collections::HashMap<&str, f64> = served
        .iter()
        .map(|r| {
            let wait = r["socket_wait_s"].as_f64().unwrap();
            assert!((0.0..1.0).contains(&wait), "{r}");
            (
                r["id"].as_str().unwrap(),
                r["ttft_s"].as_f64().unwrap() + wait,
            )
        })
        .collect();
    assert_eq!(server_ttft.len(), reqs.len());
    for r in &reqs {
        let id = r.response_id.as_deref().unwrap();
        let server = server_ttft[id];
        let client = r.first_token_t_s.unwrap() - r.sent_t_s;
        assert!(
            client >= server,
            "{id}: client TTFT {client} < server {server}"
        );
    }
    // The same for every chunk that carried text: the server logged the write of each
    // (`writes_s`), and the client's instant of each, from its send, is never earlier than the
    // server's write from the request's arrival; the two count the same chunks.
    let writes: std::collections::HashMap<&str, Vec<f64>> = served
        .iter()
        .map(|r| {
            let w = r["writes_s"].as_array().unwrap();
            let w = w.iter().map(|t| t.as_f64().unwrap()).collect();
            (r["id"].as_str().unwrap(), w)
        })
        .collect();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut chunks: std::collections::HashMap<String, Vec<f64>> = Default::default();
    let mut q = conn
        .prepare(
            "SELECT r.response_id, c.t_s - r.sent_t_s FROM requests r \
             JOIN chunk_rows c ON c.request_id = r.id ORDER BY r.id, c.seq",
        )
        .unwrap();
    for row in q
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, f64>(1)?))
        })
        .unwrap()
    {
        let (id, t) = row.unwrap();
        chunks.entry(id).or_default().push(t);
    }
    assert_eq!(chunks.len(), reqs.len());
    for (id, client) in &chunks {
        let server = &writes[id.as_str()];
        assert_eq!(client.len(), server.len(), "{id}");
        assert_eq!(client.len(), 48, "{id}: one token a chunk");
        for (c, s) in client.iter().zip(server) {
            assert!(
                c >= s,
                "{id}: a chunk at {c} s from the send, written {s} s from arrival"
            );
        }
    }
    let client_tokens: u64 = reqs
        .iter()
        .map(|r| u64::from(r.completion_tokens_reported.unwrap()))
        .sum();
    assert_eq!(generation_counter_delta(&db), client_tokens as f64);
    assert_eq!(truth.totals.generation_tokens, client_tokens);

    // SLA 100 tok/s per sequence: t_fwd ≤ 10 ms, so bs 40 (4 + 0.15 × 40 = 10 ms), 4,000 tok/s.
    let v = analyze_json(&db, &["--sla-otps", "100"]).await;
    for (i, s) in v["steps"].as_array().unwrap().iter().enumerate() {
        let bs = s["batch_size"].as_u64().unwrap() as u32;
        let step = truth
            .decode_steps
            .iter()
            .find(|t| t.batch_size == bs)
            .unwrap();
        // 3 %: the truth's mean holds every step at this batch (the warm-up wave's too), and
        // on the 2-core machine a debug build's 4–14 ms steps drift by 2.2 % between the
        // two now and then (bs 16: TPOT 6.37 ms against 6.51, twice in a day of full runs).
        let tpot = s["tpot_s"]["mean"].as_f64().unwrap();
        assert!(
            (tpot / step.mean_s - 1.0).abs() < 0.03,
            "bs {bs}: TPOT {tpot} vs truth {}",
            step.mean_s
        );
        let t = &v["timings"][i];
        let client = t["t_fwd_client_s"].as_f64().unwrap();
        assert!(
            (client / step.mean_s - 1.0).abs() < 0.03,
            "bs {bs}: client {client} vs truth {}",
            step.mean_s
        );
        let d = t["client_engine_rel_diff"]
            .as_f64()
            .unwrap_or_else(|| panic!("bs {bs}: {t}"));
        assert!(d.abs() < 0.02, "bs {bs}: client vs engine {d}");
    }
    let fit = &v["fit"];
    let (a, b) = (
        fit["a_s"].as_f64().unwrap(),
        fit["b_s_per_seq"].as_f64().unwrap(),
    );
    assert!((a / 0.004 - 1.0).abs() < 0.05, "a = {a}");
    assert!((b / 0.000_15 - 1.0).abs() < 0.05, "b = {b}");
    let c = &v["ceilings"][0];
    assert_eq!(c["limited_by"], "sla");
    assert!(c["extrapolated"] == false);
    let tput = c["throughput_tok_s"].as_f64().unwrap();
    assert!((tput / 4000.0 - 1.0).abs() < 0.05, "ceiling {tput} tok/s");
    // A clean run: no warning about the engine, the setup or the recording. The client's own
    // lateness measures this shared 2-core host (other tests run beside this one), not the run.
    let warnings: Vec<String> = codes(&v, &["warn", "error"])
        .into_iter()
        .filter(|c| c != "client_lateness")
        .collect();
    assert_eq!(warnings, Vec::<String>::new(), "a clean run");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_recorded_by_kind_and_the_run_completes() {
    let _serial = crate::sim::serial().await;
    let faults = Faults {
        http_500: 0.1,
        drop: 0.1,
        stall: 0.05,
        stall_ms: 300,
        ..Faults::default()
    };
    let h = sim(linear(), faults).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let out = probe(
        &db,
        &h.base_url(),
        &[
            "--batch-sizes",
            "8,16",
            "--input-len",
            "32",
            "--output-len",
            "32",
            "--waves",
            "3",
            "--request-timeout",
            "20s",
            "--json",
        ],
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "complete");
    let injected = h.truth().faults_injected;
    assert!(injected.http_500 > 0 && injected.drop > 0, "{injected:?}");
    let reqs = requests(&db);
    let count = |o: Outcome| reqs.iter().filter(|r| r.outcome == o).count() as u64;
    assert_eq!(count(Outcome::HttpError), injected.http_500);
    assert!(
        reqs.iter()
            .filter(|r| r.outcome == Outcome::HttpError)
            .all(|r| r.http_status == Some(500))
    );
    assert_eq!(count(Outcome::StreamCut), injected.drop);
    assert_eq!(
        v["requests_failed"].as_u64().unwrap(),
        injected.http_500 + injected.drop
    );
    let a = &v["analysis"];
    let by_kind: u64 = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["failures_by_outcome"]["http_error"].as_u64().unwrap_or(0))
        .sum();
    assert!(by_kind > 0 || count(Outcome::HttpError) == 0);
    assert!(
        codes(a, &["warn", "error"]).contains(&"request_failures".to_string()),
        "{a}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_keeps_exactly_bs_in_flight_and_times_the_step() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    let args = [
        "--pattern",
        "closed-loop",
        "--batch-sizes",
        "8",
        "--input-len",
        "32",
        "--output-len",
        "32",
        "--warmup",
        "300ms",
        "--duration",
        "2s",
        "--scrape-interval",
        "100ms",
    ];
    let out = probe(&db, &h.base_url(), &args).await;
    assert!(out.status.success(), "{out:?}");
    // GPU sampling is on (NVML by default): without a GPU, one warning and no failure; with
    // one, GPU rows. The engine's metrics are recorded either way.
    let store = Store::open(&db).unwrap();
    let id = store.latest_run().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let gpu_warnings = stderr.matches("warning: no GPU data").count();
    let gpu_rows = store.load_gpu_samples(id).unwrap().len();
    assert!(
        (gpu_warnings == 1 && gpu_rows == 0) || (gpu_warnings == 0 && gpu_rows > 0),
        "{stderr}"
    );
    assert!(store.load_scrapes(id).unwrap().len() > 10);
    let reqs = requests(&db);
    let all: Vec<&RequestRecord> = reqs.iter().collect();
    assert_eq!(max_in_flight(&all), 8);
    assert!(reqs.len() > 30, "{} requests in 2.3 s", reqs.len());
    let mut workers: Vec<u32> = reqs.iter().map(|r| r.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    assert_eq!(workers, (0..8).collect::<Vec<u32>>(), "exactly 8 workers");
    for r in &reqs {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert_eq!(r.completion_tokens_reported, Some(32));
    }
    let v = analyze_json(&db, &[]).await;
    let truth = h.truth();
    let t = &v["timings"][0];
    // Closed loop: while a finished request's worker sends its next one, 7 sequences run
    // (5.05 ms) and the newcomer's prefill rides in a mixed step; otherwise 8 run (5.2 ms). The
    // client's median chunk gap is one of those decode steps.
    let profile = linear();
    let nominal = |bs: u32| profile.step_s(bs, 0, 0);
    let at_8 = truth
        .decode_steps
        .iter()
        .find(|s| s.batch_size == 8)
        .map_or(nominal(8), |s| s.mean_s.max(nominal(8)));
    let (lo, hi) = (nominal(7) * 0.97, at_8 * 1.05);
    let client = t["t_fwd_client_s"].as_f64().unwrap();
    assert!(
        client > lo && client < hi,
        "client {client} vs {lo} (7 running, nominal) … {hi} (8 running, as executed)"
    );
    let running = t["engine"]["running_mean"].as_f64().unwrap();
    assert!(
        running > 7.0 && running <= 8.0,
        "engine running mean {running}"
    );
    assert!(t["window_s"].as_f64().unwrap() > 1.5, "{t}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_between_waves_give_the_engine_step_time_without_periodic_scrapes() {
    let _serial = crate::sim::serial().await;
    let h = sim(linear(), Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(&dir);
    // One periodic scrape at the start, then only those the probe takes between waves and steps.
    let args = [
        "--batch-sizes",
        "1,8",
        "--input-len",
        "32",
        "--output-len",
        "48",
        "--waves",
        "2",
        "--scrape-interval",
        "60s",
    ];
    assert!(probe(&db, &h.base_url(), &args).await.status.success());
    let store = Store::open(&db).unwrap();
    // Per step: one before it, one before each of its 3 waves, and one after the last step.
    let scrapes = store.load_scrapes(1).unwrap().len();
    assert!((8..=10).contains(&scrapes), "{scrapes} scrapes");
    let v = analyze_json(&db, &[]).await;
    for t in v["timings"].as_array().unwrap() {
        assert_eq!(t["t_fwd_engine_over_waves"], true, "{t}");
        let d = t["client_engine_rel_diff"].as_f64().unwrap();
        assert!(
            d.abs() < 0.02,
            "bs {}: client vs engine {d}",
            t["batch_size"]
        );
    }
    h.shutdown().await;
}
