//! The simulated engine (`ceiling sim`): an OpenAI-compatible server in front of `dp`
//! continuous-batching schedulers whose step time follows a known cost model, exposing the
//! chosen engine's real `/metrics` and the ground truth at `/sim/truth`. It owns the server's
//! lifecycle; timing lives in `scheduler`, HTTP shapes in `http`, metric text in `exposition`.

mod dcgm;
mod error;
mod exposition;
mod faults;
mod flavor;
mod http;
mod profile;
mod scheduler;
mod shared;
mod stats;
mod truth;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread::JoinHandle;

use tokio_util::sync::CancellationToken;

pub use dcgm::SimGpu;
pub use error::SimError;
pub use faults::{Faults, FaultsInjected, parse_probability};
pub use flavor::SimFlavor;
pub use profile::{GpuCondition, Profile, SpecConfig};
pub use truth::{FaultsConfigTruth, FrontendLag, RankTruth, StepTruth, Totals, Truth};

use faults::FaultCounters;
use scheduler::{Msg, RankHandle};
use shared::{RankLink, Shared};

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: SimFlavor,
    pub profile: Profile,
    /// Independent schedulers behind one server (`engine` / `dp_rank` labels).
    pub dp: u32,
    /// Run this many times faster than the profile's real time (every duration ÷ this).
    pub time_scale: f64,
    pub faults: Faults,
    /// How the simulated DCGM exporter at `/dcgm` behaves (energy refresh, MIG layout).
    pub gpu: SimGpu,
    pub host: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
}

impl SimConfig {
    /// vLLM flavor, one rank, real time, no faults, 127.0.0.1 on a free port.
    pub fn new(profile: Profile) -> Self {
        SimConfig {
            flavor: SimFlavor::Vllm,
            profile,
            dp: 1,
            time_scale: 1.0,
            faults: Faults::default(),
            gpu: SimGpu::default(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
        }
    }
}

/// A running simulator. Dropping it stops the schedulers and the server without waiting.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts the simulator: binds, spawns one scheduler thread per rank and the HTTP server (on a
/// runtime of its own, two worker threads).
pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
    cfg.profile.validate()?;
    cfg.faults.validate()?;
    if cfg.dp < 1 {
        return Err(SimError::NoRanks);
    }
    if !(cfg.time_scale.is_finite() && cfg.time_scale > 0.0) {
        return Err(SimError::TimeScale);
    }
    let profile = Arc::new(cfg.profile);
    let mut ranks = Vec::new();
    let mut threads = Vec::new();
    for r in 0..cfg.dp {
        let RankHandle { tx, stats, thread } = scheduler::spawn_rank(
            r,
            Arc::clone(&profile),
            cfg.time_scale,
            scheduler::Observe::of(cfg.flavor, cfg.dp),
        )
        .map_err(SimError::SchedulerThread)?;
        ranks.push(RankLink { tx, stats });
        threads.extend(thread);
    }
    let created_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let shared = Arc::new(Shared {
        flavor: cfg.flavor,
        profile,
        dp: cfg.dp,
        time_scale: cfg.time_scale,
        faults: cfg.faults,
        fault_counters: FaultCounters::default(),
        ranks,
        next_rank: AtomicUsize::new(0),
        dcgm: dcgm::DcgmWindow::new(cfg.dp as usize, cfg.gpu),
        created_unix_s,
        first_tokens: std::sync::Mutex::new(Vec::new()),
        frontend_lag: std::sync::Mutex::default(),
    });
    let listener =
        std::net::TcpListener::bind((cfg.host, cfg.port)).map_err(|source| SimError::Bind {
            host: cfg.host,
            port: cfg.port,
            source,
        })?;
    listener.set_nonblocking(true).map_err(SimError::Listener)?;
    let addr = listener.local_addr().map_err(SimError::Listener)?;
    // The server gets its own runtime, as a real engine is its own process: clients in the
    // same process (tests, `ceiling demo`) then do not delay its streams, nor it theirs.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sim-http")
        .enable_all()
        .build()
        .map_err(SimError::Runtime)?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(SimError::Listener)?
    };
    let cancel = CancellationToken::new();
    let app = http::router(Arc::clone(&shared));
    let stop = cancel.clone().cancelled_owned();
    // Each token goes out as its own small write: without TCP_NODELAY, Nagle's algorithm holds
    // a chunk back until the previous one is acknowledged, adding delayed-ACK latency to ITL.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = runtime.spawn(async move {
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            eprintln!("warning: simulated engine server stopped: {err}");
        }
    });
    Ok(SimHandle {
        addr,
        shared,
        cancel,
        server: Some(server),
        runtime: Some(runtime),
        threads,
    })
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, with a loopback host when bound to an unspecified address.
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The same document as `GET /sim/truth`.
    pub fn truth(&self) -> Truth {
        self.shared.truth()
    }

    /// Stops the schedulers (open streams end without `[DONE]`), then the server.
    pub async fn shutdown(mut self) {
        self.stop_ranks();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        self.cancel.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    fn stop_ranks(&self) {
        for r in &self.shared.ranks {
            let _ = r.tx.send(Msg::Stop);
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop_ranks();
        self.cancel.cancel();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
