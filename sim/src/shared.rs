//! The state the HTTP handlers share: the configuration the server runs with, each rank's link
//! (its queue and its live stats), fault counters, the DCGM window and the first-token log. It
//! reads snapshots; the scheduler writes the stats and the handlers do the serving.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use crate::dcgm::DcgmWindow;
use crate::faults::{FaultCounters, Faults};
use crate::flavor::SimFlavor;
use crate::profile::Profile;
use crate::role::SimRole;
use crate::scheduler::Msg;
use crate::stats::{RankStats, lock};
use crate::truth::{self, FrontendLag, Setting, Truth};

/// State shared by the HTTP handlers.
pub(crate) struct Shared {
    pub flavor: SimFlavor,
    pub role: SimRole,
    /// The port the server listens on (a prefill server names it in its answers).
    pub port: u16,
    pub profile: Arc<Profile>,
    pub dp: u32,
    pub time_scale: f64,
    pub faults: Faults,
    pub fault_counters: FaultCounters,
    pub ranks: Vec<RankLink>,
    pub next_rank: AtomicUsize,
    pub dcgm: DcgmWindow,
    pub created_unix_s: u64,
    /// Per streamed response, the server's side of its TTFT (`GET /sim/requests`).
    pub first_tokens: Mutex<Vec<FirstToken>>,
    /// Per streamed response that ran to its end: its id and the seconds from its arrival to
    /// the write of each chunk that carried tokens (`GET /sim/requests`'s `writes_s`), the
    /// server's side of each inter-token gap; at most [`WRITES_KEPT`] instants in all.
    pub writes: Mutex<WriteLog>,
    /// Each streamed chunk's lag behind its step (`/sim/truth`'s `frontend_lag`).
    pub frontend_lag: Mutex<FrontendLag>,
}

/// A streamed response's first token, as the server wrote it.
#[derive(Clone)]
pub(crate) struct FirstToken {
    pub id: String,
    /// Seconds from the request's arrival at its handler to the write of its first token.
    pub ttft_s: f64,
    /// Seconds from the kernel's receipt of the request's last byte to its handler; `None`
    /// where the kernel gave no stamp.
    pub socket_wait_s: Option<f64>,
}

/// The most responses `/sim/requests` keeps (the oldest are dropped beyond it).
pub(crate) const FIRST_TOKENS_KEPT: usize = 1 << 20;

/// The most chunk write instants `/sim/requests` keeps (16 MiB); responses beyond are not kept.
pub(crate) const WRITES_KEPT: usize = 1 << 21;

/// The write instants of whole responses, in the order they ended.
#[derive(Default)]
pub(crate) struct WriteLog {
    pub responses: Vec<(String, Vec<f64>)>,
    pub instants: usize,
}

impl WriteLog {
    /// Keeps one response's instants whole if they fit under [`WRITES_KEPT`], else none of them.
    pub fn keep(&mut self, id: String, writes: Vec<f64>) {
        if self.instants + writes.len() <= WRITES_KEPT {
            self.instants += writes.len();
            self.responses.push((id, writes));
        }
    }
}

/// The server's link to one rank.
pub(crate) struct RankLink {
    pub tx: flume::Sender<Msg>,
    pub stats: Arc<Mutex<RankStats>>,
}

impl Shared {
    /// Copies of every rank's stats; `reset_window` zeroes llama.cpp's per-scrape window.
    pub fn snapshot(&self, reset_window: bool) -> Vec<RankStats> {
        self.ranks
            .iter()
            .map(|r| {
                let mut st = lock(&r.stats);
                let copy = st.clone();
                if reset_window {
                    st.lc_win_prompt_tokens = 0;
                    st.lc_win_prompt_s = 0.0;
                    st.lc_win_decode_steps = 0;
                    st.lc_win_decode_s = 0.0;
                }
                copy
            })
            .collect()
    }

    /// The ground truth as of now.
    pub fn truth(&self) -> Truth {
        let setting = Setting {
            flavor: self.flavor,
            dp: self.dp,
            time_scale: self.time_scale,
            profile: &self.profile,
            faults: &self.faults,
            faults_injected: self.fault_counters.snapshot(),
            frontend_lag: self
                .frontend_lag
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default(),
        };
        truth::build(setting, &self.snapshot(false))
    }
}
