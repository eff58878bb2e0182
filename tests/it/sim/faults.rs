//! Fault flags: each produces its fault at roughly its rate, and the truth counts what it
//! injected; and the `ceiling sim` process exits 0 on SIGTERM.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use ceiling_sim::{self as sim, Faults, SimConfig, SimHandle};

use super::{client, get_text, serial, stream, tiny, unique_completion};

async fn start_with_faults(faults: Faults) -> SimHandle {
    let mut cfg = SimConfig::new(tiny());
    cfg.time_scale = 2.0;
    cfg.faults = faults;
    sim::start(cfg).await.unwrap()
}

/// True when `k` of `n` is a plausible draw at rate `p` (within 4 standard deviations).
fn plausible(k: usize, n: usize, p: f64) -> bool {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (k as f64 - mean).abs() <= 4.0 * sd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_flag_produces_its_fault_at_roughly_its_rate() {
    let _serial = serial().await;
    const N: usize = 120;
    const CONCURRENT: usize = 12;
    let c = client();
    let cases = [(
        "stall",
        Faults {
            stall: 0.3,
            stall_ms: 200,
            ..Faults::default()
        },
    )];
    for (kind, faults) in cases {
        let h = start_with_faults(faults).await;
        let url = format!("{}/v1/completions", h.base_url());
        let mut hits = 0;
        // A few at a time, so the client keeps up and a stall shows as one long gap.
        let mut results = Vec::new();
        for wave in 0..N / CONCURRENT {
            let tasks: Vec<_> = (0..CONCURRENT)
                .map(|i| {
                    let (c, url) = (c.clone(), url.clone());
                    let seed = (wave * CONCURRENT + i) as u32;
                    tokio::spawn(
                        async move { stream(&c, &url, unique_completion(seed, 16, 12)).await },
                    )
                })
                .collect();
            for t in tasks {
                results.push(t.await.unwrap());
            }
        }
        let token_chunks: usize = results.iter().map(|s| s.token_arrivals().len()).sum();
        for s in results {
            // From the send, so a stall before the first token counts too.
            let times: Vec<Instant> = s.sent.into_iter().chain(s.token_arrivals()).collect();
            let max_gap = times
                .windows(2)
                .map(|w| w[1] - w[0])
                .max()
                .unwrap_or_default();
            let hit = match kind {
                "500" => s.status == 500,
                "429" => s.status == 429,
                "drop" => s.status == 200 && !s.done && s.error.is_some(),
                _ => max_gap >= Duration::from_millis(150),
            };
            if hit {
                hits += 1;
            } else if s.status == 200 {
                assert!(s.done, "{kind}: an unfaulted stream must complete: {s:?}");
            }
        }
        let injected = h.truth().faults_injected;
        assert!(
            plausible(hits, N, 0.3),
            "{kind}: {hits} of {N}; injected {injected:?}"
        );
        let counted = match kind {
            "500" => injected.http_500,
            "429" => injected.http_429,
            "drop" => injected.drop,
            _ => injected.stall,
        };
        assert_eq!(counted as usize, hits, "{kind}");
        // A stall holds its chunk back in the front-end: the truth's front-end lag holds it,
        // one reading per token chunk written.
        let lag = h.truth().frontend_lag;
        assert_eq!(lag.chunks as usize, token_chunks, "{lag:?}");
        assert!(lag.max_s >= 0.2 && lag.mean_s < lag.max_s, "{lag:?}");
        h.shutdown().await;
    }
    let h = start_with_faults(Faults {
        bad_metrics: 0.3,
        ..Faults::default()
    })
    .await;
    let mut bad = 0;
    for _ in 0..N {
        let text = get_text(&c, &format!("{}/metrics", h.base_url())).await;
        let ok = text.lines().filter(|l| !l.starts_with('#')).all(|l| {
            l.rsplit_once(' ').is_some_and(|(s, v)| {
                v.parse::<f64>().is_ok() && s.matches('{').count() == s.matches('}').count()
            })
        });
        bad += usize::from(!ok);
    }
    assert!(plausible(bad, N, 0.3), "bad metrics: {bad} of {N}");
    assert_eq!(h.truth().faults_injected.bad_metrics as usize, bad);
    h.shutdown().await;
}

#[test]
fn ceiling_sim_prints_its_address_and_exits_zero_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ceiling"))
        .args(["sim", "--flavor", "sglang", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(port > 0);
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_without_done_and_returns_promptly() {
    let _serial = serial().await;
    let h = super::start(ceiling_sim::SimFlavor::Vllm, tiny(), 1, 1.0).await;
    let c = client();
    let url = format!("{}/v1/completions", h.base_url());
    let open = tokio::spawn(async move { stream(&c, &url, unique_completion(1, 16, 3000)).await });
    while h.truth().totals.generation_tokens < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    h.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let s = open.await.unwrap();
    assert!(!s.done, "a cut stream has no [DONE]");
    assert!(s.error.is_some());
    assert!(s.tokens().0 < 3000);
}
