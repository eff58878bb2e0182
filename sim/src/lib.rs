//! The simulated engine (`ceiling sim`): an OpenAI-compatible server in front of `dp`
//! continuous-batching schedulers whose step time follows a known cost model, exposing the
//! chosen engine's real `/metrics` and the ground truth at `/sim/truth`. It owns the server's
//! lifecycle; timing lives in `scheduler`, HTTP shapes in `http`, metric text in `exposition`.
//!
//! Prefill/decode disaggregation, as vLLM's NIXL connector does it: a server plays a
//! [`SimRole`] (a prefill server answers `kv_transfer_params.do_remote_decode` requests with
//! where the KV is; a decode server takes `do_remote_prefill` requests without computing their
//! prompt), and [`start_router`] runs the proxy in front of such a pair (`router`).

mod dcgm;
mod error;
mod exposition;
mod faults;
mod flavor;
mod http;
mod profile;
mod received;
mod role;
mod router;
mod scheduler;
mod server;
mod shared;
mod stats;
mod truth;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread::JoinHandle;

pub use dcgm::SimGpu;
pub use error::SimError;
pub use faults::{Faults, FaultsInjected, parse_probability};
pub use flavor::SimFlavor;
pub use profile::{GpuCondition, Profile, SpecConfig};
pub use role::SimRole;
pub use router::{RouterConfig, RouterHandle, start_router};
pub use truth::{FaultsConfigTruth, FrontendLag, RankTruth, StepTruth, Totals, Truth};

use faults::FaultCounters;
use scheduler::{Msg, RankHandle};
use shared::{RankLink, Shared};

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub flavor: SimFlavor,
    /// Unified, or one side of a prefill/decode pair (see [`start_router`]).
    pub role: SimRole,
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
    /// vLLM flavor, unified role, one rank, real time, no faults, 127.0.0.1 on a free port.
    pub fn new(profile: Profile) -> Self {
        SimConfig {
            flavor: SimFlavor::Vllm,
            role: SimRole::Unified,
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
    shared: Arc<Shared>,
    server: server::Server,
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
    // Bound before the state is built: a prefill server names its port in its answers.
    let bound = server::bind(cfg.host, cfg.port)?;
    let shared = Arc::new(Shared {
        flavor: cfg.flavor,
        role: cfg.role,
        port: bound.addr.port(),
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
        writes: std::sync::Mutex::default(),
        frontend_lag: std::sync::Mutex::default(),
    });
    let server = server::serve(bound, http::router(Arc::clone(&shared)), "sim")?;
    Ok(SimHandle {
        shared,
        server,
        threads,
    })
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// `http://HOST:PORT`, with a loopback host when bound to an unspecified address.
    pub fn base_url(&self) -> String {
        self.server.base_url()
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
        self.server.shutdown().await;
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
        self.server.abort();
    }
}
