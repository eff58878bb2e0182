//! `ceiling sim`: start the simulated engine, print where it listens, serve until SIGINT or
//! SIGTERM, then stop it cleanly.

use std::io::Write;

use ceiling_sim::{Faults, Profile, SimConfig, SimFlavor};

use crate::Exit;
use crate::cli::{SimArgs, SimFlavorArg};
use crate::exit::Failure;

/// Builds the simulator's configuration from the flags.
pub fn config(args: SimArgs) -> anyhow::Result<SimConfig> {
    let profile = match &args.profile_file {
        Some(path) => {
            // `{:#}` through anyhow prints the cause too: "invalid profile F: t0_s must be …".
            Profile::from_toml_file(path)
                .map_err(|e| Failure::Usage(format!("{:#}", anyhow::Error::new(e))))?
        }
        None => Profile::builtin(&args.profile).ok_or_else(|| {
            Failure::Usage(format!(
                "unknown profile {:?}; built-in profiles: {}; or pass --profile-file F.toml",
                args.profile,
                Profile::builtin_names().join(", ")
            ))
        })?,
    };
    let (stall, stall_ms) = match &args.faults.fault_stall {
        Some(text) => {
            Faults::parse_stall(text).map_err(|e| Failure::Usage(format!("--fault-stall: {e}")))?
        }
        None => (0.0, 0),
    };
    if args.dp == 0 {
        return Err(Failure::Usage("--dp must be at least 1".into()).into());
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return Err(Failure::Usage("--time-scale must be a positive number".into()).into());
    }
    Ok(SimConfig {
        flavor: sim_flavor(args.flavor),
        profile,
        dp: args.dp,
        time_scale: args.time_scale,
        faults: Faults {
            http_500: args.faults.fault_http_500,
            http_429: args.faults.fault_http_429,
            drop: args.faults.fault_drop,
            stall,
            stall_ms,
            bad_metrics: args.faults.fault_bad_metrics,
        },
        host: args.host,
        port: args.port,
    })
}

fn sim_flavor(arg: SimFlavorArg) -> SimFlavor {
    match arg {
        SimFlavorArg::Vllm => SimFlavor::Vllm,
        SimFlavorArg::Sglang => SimFlavor::Sglang,
        SimFlavorArg::Llamacpp => SimFlavor::Llamacpp,
    }
}

pub async fn run(args: SimArgs) -> anyhow::Result<Exit> {
    let cfg = config(args)?;
    // Handlers first: a signal that arrives right after the address is printed still counts.
    let signals = Signals::install()?;
    let handle = ceiling_sim::start(cfg).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", handle.base_url())?;
        out.flush()?;
    }
    signals.wait().await;
    handle.shutdown().await;
    Ok(Exit::Success)
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
