//! GPU sources behind one trait, and the sampler thread that reads one at fixed instants.
//!
//! Sources: [`nvml::NvmlSource`] (the driver's library, read directly), [`dcgm::DcgmSource`]
//! (a DCGM exporter's `/metrics`, `--gpu-source dcgm:URL`) and [`smi`] (an `nvidia-smi
//! --query-gpu ... --format=csv` log, imported after the fact). Every reading that could not
//! be taken is `None` (NULL in the store), never 0. Sources convert raw values to
//! [`GpuSample`] units in pure functions, tested on recorded values.
//!
//! Sampling runs on its own OS thread, never on the async runtime: NVML calls block, and the
//! DCGM source does its HTTP GET with `Handle::block_on` from that thread. Nothing here prints;
//! the caller turns a [`GpuError`] into one warning.

pub mod dcgm;
pub mod nvml;
pub mod select;
pub mod smi;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::{GpuInfo, GpuSample};

pub use select::{CountedBy, GpuProcesses, GpuSelection};

/// Why a GPU source cannot be used or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    #[error("NVML cannot be initialised ({0}): no NVIDIA driver or libnvidia-ml on this machine")]
    NvmlInit(String),
    #[error("NVML found no GPU")]
    NoGpu,
    #[error("NVML, gpu {index}: {message}")]
    Nvml { index: u32, message: String },
    #[error("DCGM exporter at {url}: {message}")]
    Dcgm { url: String, message: String },
    #[error("unknown GPU source {0:?}: expected `nvml` or `dcgm:URL`")]
    UnknownSource(String),
    #[error("nvidia-smi log, line {line}: {message}")]
    SmiCsv { line: usize, message: String },
}

/// A place GPU readings come from.
pub trait GpuSource: Send {
    /// `nvml`, `dcgm:URL`, ...
    fn name(&self) -> &str;
    /// The GPUs this source sees, with what is known of each.
    fn inventory(&mut self) -> Result<Vec<GpuInfo>, GpuError>;
    /// One reading of every GPU, stamped `t_s` (seconds from the run's start, taken just
    /// before the read). A field that could not be read is `None`; a GPU that could not be read
    /// at all yields a sample with every field `None`.
    fn sample(&mut self, t_s: f64) -> Vec<GpuSample>;
    /// The compute processes running on each GPU, where the source can tell (NVML); `None`
    /// where it cannot (a DCGM exporter).
    fn compute_processes(&mut self) -> Option<Vec<GpuProcesses>> {
        None
    }
}

/// What `--gpu-source` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Nvml,
    Dcgm(String),
}

impl SourceSpec {
    pub fn parse(s: &str) -> Result<SourceSpec, GpuError> {
        if s == "nvml" {
            Ok(SourceSpec::Nvml)
        } else if let Some(url) = s.strip_prefix("dcgm:")
            && !url.is_empty()
        {
            Ok(SourceSpec::Dcgm(url.to_string()))
        } else {
            Err(GpuError::UnknownSource(s.to_string()))
        }
    }
}

/// Reads `source` every `interval` on a thread of its own until `stop` is set or the receiver
/// is gone. Deadlines are absolute (`start + k × interval`), so the loop does not drift; a read
/// that overruns skips the deadlines it missed instead of bunching reads. Each sample is stamped
/// with the instant its read began, not the deadline.
pub fn spawn_gpu_sampler(
    mut source: Box<dyn GpuSource>,
    interval: Duration,
    t0: Instant,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<GpuSample>,
) -> JoinHandle<()> {
    let interval = interval.max(Duration::from_millis(1));
    let spawn = std::thread::Builder::new()
        .name("ceiling-gpu".into())
        .spawn(move || {
            let start = Instant::now();
            let mut k: u32 = 0;
            loop {
                let deadline = start + interval * k;
                if !sleep_until(deadline, &stop) {
                    return;
                }
                let t_s = Instant::now().saturating_duration_since(t0).as_secs_f64();
                for sample in source.sample(t_s) {
                    if tx.blocking_send(sample).is_err() {
                        return;
                    }
                }
                let behind = Instant::now().saturating_duration_since(start);
                let next = (behind.as_nanos() / interval.as_nanos()) as u32 + 1;
                k = next.max(k + 1);
            }
        });
    match spawn {
        Ok(handle) => handle,
        // Thread creation only fails when the process is out of resources; return a finished
        // thread so the caller's join still works (the samples are simply missing).
        Err(_) => std::thread::spawn(|| {}),
    }
}

/// Sleeps until `deadline` in short slices so that `stop` is seen promptly. Returns false when
/// stopped.
fn sleep_until(deadline: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source that counts its reads and takes `cost` per read.
    struct Fake {
        reads: u32,
        cost: Duration,
    }

    impl GpuSource for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn inventory(&mut self) -> Result<Vec<GpuInfo>, GpuError> {
            Ok(vec![GpuInfo::default()])
        }
        fn sample(&mut self, t_s: f64) -> Vec<GpuSample> {
            self.reads += 1;
            std::thread::sleep(self.cost);
            vec![GpuSample {
                gpu_index: 0,
                t_s,
                util_gpu_pct: Some(f64::from(self.reads)),
                ..GpuSample::default()
            }]
        }
    }

    #[test]
    fn sampler_stamps_increasing_times_and_stops() {
        let (tx, mut rx) = mpsc::channel(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let t0 = Instant::now();
        let h = spawn_gpu_sampler(
            Box::new(Fake {
                reads: 0,
                cost: Duration::ZERO,
            }),
            Duration::from_millis(5),
            t0,
            stop.clone(),
            tx,
        );
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(rx.blocking_recv().expect("sample"));
        }
        stop.store(true, Ordering::Relaxed);
        h.join().expect("join");
        assert!(got.windows(2).all(|w| w[1].t_s > w[0].t_s));
        assert_eq!(got[0].util_gpu_pct, Some(1.0));
    }

    #[test]
    fn sampler_ends_when_the_receiver_is_dropped() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let h = spawn_gpu_sampler(
            Box::new(Fake {
                reads: 0,
                cost: Duration::ZERO,
            }),
            Duration::from_millis(1),
            Instant::now(),
            Arc::new(AtomicBool::new(false)),
            tx,
        );
        h.join().expect("join");
    }

    #[test]
    fn slow_reads_skip_missed_deadlines() {
        let (tx, mut rx) = mpsc::channel(1024);
        let stop = Arc::new(AtomicBool::new(false));
        let h = spawn_gpu_sampler(
            Box::new(Fake {
                reads: 0,
                cost: Duration::from_millis(25),
            }),
            Duration::from_millis(10),
            Instant::now(),
            stop.clone(),
            tx,
        );
        let a = rx.blocking_recv().expect("sample");
        let b = rx.blocking_recv().expect("sample");
        stop.store(true, Ordering::Relaxed);
        h.join().expect("join");
        // Reads are at least one read's cost apart: missed ticks were not replayed at once.
        assert!(b.t_s - a.t_s >= 0.025, "{} {}", a.t_s, b.t_s);
    }

    /// A node of four GPUs whose source lists compute processes, as NVML does.
    struct FakeNode;

    impl GpuSource for FakeNode {
        fn name(&self) -> &str {
            "fake-node"
        }
        fn inventory(&mut self) -> Result<Vec<GpuInfo>, GpuError> {
            Ok((0..4)
                .map(|index| GpuInfo {
                    index,
                    uuid: Some(format!("GPU-{index}")),
                    ..GpuInfo::default()
                })
                .collect())
        }
        fn sample(&mut self, _t_s: f64) -> Vec<GpuSample> {
            Vec::new()
        }
        fn compute_processes(&mut self) -> Option<Vec<GpuProcesses>> {
            // A TP 2 engine (pids 10, 11) on GPUs 1 and 2; another user's job on GPU 3.
            Some(vec![
                GpuProcesses {
                    gpu_index: 1,
                    pids: vec![10],
                },
                GpuProcesses {
                    gpu_index: 2,
                    pids: vec![11],
                },
                GpuProcesses {
                    gpu_index: 3,
                    pids: vec![99],
                },
            ])
        }
    }

    #[test]
    fn the_engine_gpus_of_a_source_that_lists_processes_count() {
        let mut src = FakeNode;
        let inv = src.inventory().expect("inventory");
        let procs = src.compute_processes();
        let engine = [9, 10, 11].into();
        let (gpus, by) =
            select::counted(&inv, None, procs.as_deref(), Some(&engine)).expect("counted");
        assert_eq!((gpus, by), (vec![1, 2], CountedBy::EngineProcesses));
        let sel = GpuSelection::parse("GPU-3").expect("parse");
        let (gpus, by) =
            select::counted(&inv, Some(&sel), procs.as_deref(), Some(&engine)).expect("counted");
        assert_eq!((gpus, by), (vec![3], CountedBy::Selection));
        // The default trait method: a source that cannot list processes counts every GPU.
        let mut plain = Fake {
            reads: 0,
            cost: Duration::ZERO,
        };
        assert_eq!(plain.compute_processes(), None);
    }

    #[test]
    fn source_specs() {
        assert_eq!(SourceSpec::parse("nvml").ok(), Some(SourceSpec::Nvml));
        assert_eq!(
            SourceSpec::parse("dcgm:http://h:9400/metrics").ok(),
            Some(SourceSpec::Dcgm("http://h:9400/metrics".into()))
        );
        assert!(SourceSpec::parse("dcgm:").is_err());
        assert!(SourceSpec::parse("rocm").is_err());
    }
}
