//! The run's telemetry: the engine `/metrics` scraper and the GPU sampler, started for the whole
//! run and stopped at its end, feeding the store's writer. Lost telemetry is a warning and NULL
//! data, unless `--require-metrics` / `--require-gpu`.
//!
//! The scraper is a tokio task (`run_scraper`); the GPU sampler is an OS thread
//! (`spawn_gpu_sampler`, NVML calls block, and the DCGM source does its GET with `block_on` from
//! that thread). Each forwards its records to the writer through a bounded channel and a small
//! task; nothing is computed here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ceiling_collectors::gpu::dcgm::DcgmSource;
use ceiling_collectors::gpu::nvml::NvmlSource;
use ceiling_collectors::gpu::{GpuError, GpuSource, SourceSpec, select, spawn_gpu_sampler};
use ceiling_collectors::prometheus::{ScrapeNow, Scraper, boundary_timeout, run_scraper};
use ceiling_collectors::{GpuInfo, GpuSample, ScrapeRecord};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ProbeConfig, RoleEndpoint};
use crate::exit::Failure;
use crate::probe::EngineInfo;
use crate::probe::boundary::Boundary;
use crate::store::roles::{MetricSource, public_url};
use crate::store::{Record, Writer};

/// The telemetry tasks of one run.
pub struct Telemetry {
    gpus: Option<Vec<GpuInfo>>,
    cancel: CancellationToken,
    /// The engine's scraper first (where it has one), then one per role endpoint.
    scrapers: Vec<ScrapeTask>,
    boundary: Boundary,
    gpu_stop: Arc<AtomicBool>,
    sampler: Option<(std::thread::JoinHandle<()>, JoinHandle<()>)>,
}

/// One endpoint's scraper: its task, the task forwarding its records to the writer, and its
/// failures (counted for the warning at the end).
struct ScrapeTask {
    task: JoinHandle<()>,
    forward: JoinHandle<()>,
    failures: Arc<AtomicU64>,
    /// What the warnings call it (no credentials).
    name: String,
}

/// A scrape gets about its interval to answer, within 200 ms to 5 s.
fn scrape_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_millis(200), Duration::from_secs(5))
}

impl Telemetry {
    /// Starts what `cfg` asks for. Fails only when `--require-metrics` / `--require-gpu` is
    /// given and that source does not work, or `--gpus` names a GPU the source does not see.
    pub async fn start(
        cfg: &ProbeConfig,
        info: &EngineInfo,
        http: &reqwest::Client,
        t0: Instant,
        writer: Writer,
    ) -> anyhow::Result<Telemetry> {
        let mut t = Telemetry {
            gpus: None,
            cancel: CancellationToken::new(),
            scrapers: Vec::new(),
            boundary: Boundary::default(),
            gpu_stop: Arc::new(AtomicBool::new(false)),
            sampler: None,
        };
        if let Some(url) = &cfg.metrics_url {
            t.start_scraper(cfg, info, http, url, t0, writer.clone())
                .await?;
        }
        for (source, ep) in (0u32..).zip(&cfg.metrics_roles) {
            if let Err(e) = t
                .start_role_scraper(cfg, http, source, ep, t0, writer.clone())
                .await
            {
                t.stop().await;
                return Err(e);
            }
        }
        if let Some(spec) = &cfg.gpu_source
            && let Err(e) = t.start_gpu(cfg, http, spec, t0, writer).await
        {
            // The scraper holds a writer: stop it, or the caller's wait for the writer hangs.
            t.stop().await;
            return Err(e);
        }
        Ok(t)
    }

    async fn start_scraper(
        &mut self,
        cfg: &ProbeConfig,
        info: &EngineInfo,
        http: &reqwest::Client,
        url: &str,
        t0: Instant,
        writer: Writer,
    ) -> anyhow::Result<()> {
        let scraper = Scraper::new(http.clone(), url, scrape_timeout(cfg.scrape_interval));
        if let Some(err) = &info.metrics_error {
            if cfg.require_metrics {
                return Err(Failure::Unreachable(format!(
                    "--require-metrics: the engine's metrics cannot be read: {err}"
                ))
                .into());
            }
            eprintln!(
                "warning: the engine's metrics cannot be read ({err}); scraping anyway, but the \
                 engine-side step time, queue and KV checks may have no data. Pass \
                 --metrics-url (or enable metrics: SGLang --enable-metrics, llama.cpp --metrics), \
                 or --scrape-interval 0s to turn scraping off"
            );
        }
        self.spawn_scraper(cfg, scraper, t0, writer, public_url(url), |rec| {
            Record::Scrape(Box::new(rec))
        });
        Ok(())
    }

    /// Starts the scraper of a prefill or decode server: its row in the recording first (the
    /// engine its metrics show, from one fetch), then its scrapes.
    async fn start_role_scraper(
        &mut self,
        cfg: &ProbeConfig,
        http: &reqwest::Client,
        source: u32,
        ep: &RoleEndpoint,
        t0: Instant,
        writer: Writer,
    ) -> anyhow::Result<()> {
        let name = format!("the {} server {}", ep.role.as_str(), public_url(&ep.url));
        let engine_kind = match crate::probe::fetch_text(http, &ep.url).await {
            Ok(text) => crate::probe::flavor_of(&text).map(str::to_string),
            Err(_) if cfg.require_metrics => {
                return Err(Failure::Unreachable(format!(
                    "--require-metrics: the metrics of {name} cannot be read"
                ))
                .into());
            }
            Err(_) => {
                eprintln!(
                    "warning: the metrics of {name} cannot be read; scraping anyway, but that \
                     side's queue and step time may have no data. Check its --metrics-url"
                );
                None
            }
        };
        let row = MetricSource {
            source,
            role: ep.role,
            url: public_url(&ep.url),
            engine_kind,
        };
        if writer.send(Record::MetricSource(row)).await.is_err() {
            return Ok(());
        }
        let scraper = Scraper::new(http.clone(), &ep.url, scrape_timeout(cfg.scrape_interval));
        self.spawn_scraper(cfg, scraper, t0, writer, name, move |rec| {
            Record::RoleScrape {
                source,
                scrape: Box::new(rec),
            }
        });
        Ok(())
    }

    /// Spawns `scraper` on the interval and a task forwarding its records, each wrapped by
    /// `record`, to the writer; the boundary asks it for a scrape between steps too.
    fn spawn_scraper(
        &mut self,
        cfg: &ProbeConfig,
        scraper: Scraper,
        t0: Instant,
        writer: Writer,
        name: String,
        record: impl Fn(ScrapeRecord) -> Record + Send + 'static,
    ) {
        let (tx, mut rx) = mpsc::channel::<ScrapeRecord>(64);
        let (now_tx, now_rx) = mpsc::channel::<ScrapeNow>(1);
        // A boundary may wait for a tick's scrape in flight, then its own.
        let tick = scrape_timeout(cfg.scrape_interval);
        self.boundary.add(now_tx, tick + boundary_timeout(tick));
        let task = tokio::spawn(run_scraper(
            scraper,
            cfg.scrape_interval,
            t0,
            self.cancel.clone(),
            tx,
            now_rx,
        ));
        let failures = Arc::new(AtomicU64::new(0));
        let counted = failures.clone();
        let label = name.clone();
        let forward = tokio::spawn(async move {
            while let Some(rec) = rx.recv().await {
                if let Some(err) = &rec.error
                    && counted.fetch_add(1, Ordering::Relaxed) == 0
                {
                    eprintln!(
                        "warning: scrape {} of {label} failed or was malformed: {err}; its \
                         samples are missing (further failures are counted at the end)",
                        rec.seq
                    );
                }
                if writer.send(record(rec)).await.is_err() {
                    return;
                }
            }
        });
        self.scrapers.push(ScrapeTask {
            task,
            forward,
            failures,
            name,
        });
    }

    async fn start_gpu(
        &mut self,
        cfg: &ProbeConfig,
        http: &reqwest::Client,
        spec: &str,
        t0: Instant,
        writer: Writer,
    ) -> anyhow::Result<()> {
        let opened = open_source(spec, http).await;
        // Inventory blocks (NVML calls, DCGM's block_on): off the runtime.
        let opened = match opened {
            Ok(mut source) => tokio::task::spawn_blocking(move || {
                let inv = source.inventory()?;
                let procs = source.compute_processes();
                Ok((source, inv, procs))
            })
            .await
            .map_err(|e| GpuError::NvmlInit(e.to_string()))
            .and_then(|r| r),
            Err(e) => Err(e),
        };
        let (source, inventory, procs) = match opened {
            Ok(x) => x,
            Err(e) if cfg.require_gpu => {
                return Err(Failure::Usage(format!("--require-gpu: {e}")).into());
            }
            Err(e) => {
                eprintln!(
                    "warning: no GPU data for this run: {e}. The GPU columns stay empty, so \
                     clock, power and throttling findings cannot be made. Use --gpu-source \
                     dcgm:URL where a DCGM exporter runs, import an nvidia-smi log afterwards \
                     with `ceiling import-gpu`, or pass --gpu-interval 0s to turn GPU sampling off"
                );
                return Ok(());
            }
        };
        let engine_pids = local_port(&cfg.url).map(select::local_listener_pids);
        let (counted, _) = select::counted(
            &inventory,
            cfg.gpus.as_ref(),
            procs.as_deref(),
            engine_pids.as_ref(),
        )
        .map_err(Failure::Usage)?;
        let inventory = select::with_processes(inventory, procs.as_deref(), engine_pids.as_ref())
            .into_iter()
            .map(|g| GpuInfo {
                counted: Some(counted.contains(&g.index)),
                ..g
            })
            .collect();
        self.gpus = Some(inventory);
        let (tx, mut rx) = mpsc::channel::<GpuSample>(4096);
        let thread = spawn_gpu_sampler(source, cfg.gpu_interval, t0, self.gpu_stop.clone(), tx);
        let forward = tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                if writer.send(Record::Gpu(s)).await.is_err() {
                    return;
                }
            }
        });
        self.sampler = Some((thread, forward));
        Ok(())
    }

    /// The handle that takes a scrape at a step's boundary.
    pub fn boundary(&self) -> Boundary {
        self.boundary.clone()
    }

    /// The GPU inventory, once the sampler has read it.
    pub fn gpu_inventory(&self) -> Option<&[GpuInfo]> {
        self.gpus.as_deref()
    }

    /// Stops every task and waits until their last records are sent.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        self.gpu_stop.store(true, Ordering::Relaxed);
        for s in &mut self.scrapers {
            let _ = (&mut s.task).await;
            let _ = (&mut s.forward).await;
        }
        if let Some((thread, forward)) = self.sampler {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            let _ = forward.await;
        }
        for s in &self.scrapers {
            let failed = s.failures.load(Ordering::Relaxed);
            if failed > 0 {
                eprintln!(
                    "warning: {failed} scrape(s) of {} failed or were malformed during the run",
                    s.name
                );
            }
        }
    }
}

/// The port of an engine URL on this machine (`127.0.0.1`, `localhost`, `::1`); `None` for a
/// remote engine, whose processes NVML here cannot see.
fn local_port(url: &str) -> Option<u16> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?.trim_matches(['[', ']']);
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    local.then(|| u.port_or_known_default()).flatten()
}

async fn open_source(spec: &str, http: &reqwest::Client) -> Result<Box<dyn GpuSource>, GpuError> {
    match SourceSpec::parse(spec)? {
        SourceSpec::Nvml => tokio::task::spawn_blocking(NvmlSource::init)
            .await
            .map_err(|e| GpuError::NvmlInit(e.to_string()))?
            .map(|s| Box::new(s) as Box<dyn GpuSource>),
        SourceSpec::Dcgm(url) => Ok(Box::new(DcgmSource::new(
            http.clone(),
            &url,
            Duration::from_secs(5),
            tokio::runtime::Handle::current(),
        ))),
    }
}
