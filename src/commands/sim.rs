//! `ceiling sim`: start the simulated engine (unified, prefill or decode role), print where it
//! listens, serve until SIGINT or SIGTERM, then stop it cleanly.

use std::io::Write;

use ceiling_sim::{Faults, Profile, SimConfig, SimFlavor, SimRole};

use crate::Exit;
use crate::cli::{SimArgs, SimFlavorArg, SimNightArgs, SimRoleArg};
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
    let profile = plant_night(profile, &args.night)?;
    Ok(SimConfig {
        flavor: sim_flavor(args.flavor),
        role: match args.role {
            SimRoleArg::Unified => SimRole::Unified,
            SimRoleArg::Prefill => SimRole::Prefill,
            SimRoleArg::Decode => SimRole::Decode,
        },
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
        gpu: args.gpu.config()?,
        host: args.host,
        port: args.port,
    })
}

/// The profile with the planted night's flags applied (each overrides the profile's value).
fn plant_night(mut p: Profile, n: &SimNightArgs) -> anyhow::Result<Profile> {
    if let Some(s) = n.step_scale {
        p.step_scale = s;
    }
    let g = &mut p.gpu;
    g.sm_clock_mhz = n.sm_clock.unwrap_or(g.sm_clock_mhz);
    g.mem_clock_mhz = n.mem_clock.unwrap_or(g.mem_clock_mhz);
    g.power_limit_w = n.power_limit.unwrap_or(g.power_limit_w);
    g.thermal_throttle |= n.thermal_throttle;
    if let Some(d) = &n.driver_version {
        g.driver_version.clone_from(d);
    }
    g.board_serial = n.board_serial.unwrap_or(g.board_serial);
    if n.model_revision.is_some() {
        p.model_revision.clone_from(&n.model_revision);
    }
    p.validate()
        .map_err(|e| Failure::Usage(format!("the planted night: {e}")))?;
    Ok(p)
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
    print_listening(&handle.base_url())?;
    signals.wait().await;
    handle.shutdown().await;
    Ok(Exit::Success)
}

/// Prints where a server listens (the line scripts and tests wait for), flushed at once.
pub(super) fn print_listening(base_url: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {base_url}")?;
    out.flush()?;
    Ok(())
}

/// SIGINT and SIGTERM, installed before the server starts.
pub(super) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    pub(super) async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn sim_args(extra: &[&str]) -> SimArgs {
        let argv = ["ceiling", "sim"].iter().chain(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Sim(args) => args,
            other => panic!("not `sim`: {other:?}"),
        }
    }

    #[test]
    fn flavor_flag_maps_onto_the_simulators_flavor() {
        assert_eq!(config(sim_args(&[])).unwrap().flavor, SimFlavor::Vllm);
        for (flag, flavor) in [
            ("vllm", SimFlavor::Vllm),
            ("sglang", SimFlavor::Sglang),
            ("llamacpp", SimFlavor::Llamacpp),
        ] {
            let cfg = config(sim_args(&["--flavor", flag])).unwrap();
            assert_eq!(cfg.flavor, flavor);
            assert_eq!(cfg.flavor.as_str(), flag);
        }
        let argv = ["ceiling", "sim", "--flavor", "trtllm"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn role_flag_maps_onto_the_simulators_role() {
        assert_eq!(config(sim_args(&[])).unwrap().role, SimRole::Unified);
        for (flag, role) in [("prefill", SimRole::Prefill), ("decode", SimRole::Decode)] {
            let cfg = config(sim_args(&["--role", flag])).unwrap();
            assert_eq!((cfg.role, cfg.role.as_str()), (role, flag));
        }
        assert!(Cli::try_parse_from(["ceiling", "sim", "--role", "both"]).is_err());
    }

    #[test]
    fn fault_flags_reach_the_simulator_and_bad_values_are_usage_errors() {
        let args = sim_args(&["--fault-http-500", "0.25", "--fault-stall", "0.5:300"]);
        let faults = config(args).unwrap().faults;
        assert_eq!(
            (faults.http_500, faults.stall, faults.stall_ms),
            (0.25, 0.5, 300)
        );
        let err = Cli::try_parse_from(["ceiling", "sim", "--fault-drop", "1.5"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("1.5 is not a probability in [0, 1]"),
            "{err}"
        );
        let err = config(sim_args(&["--fault-stall", "0.5"])).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Failure>()
                .map(ToString::to_string)
                .as_deref(),
            Some("--fault-stall: expected P:MS, e.g. 0.1:500, got \"0.5\"")
        );
    }

    #[test]
    fn invalid_profile_file_is_a_usage_error_that_names_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let mut profile = Profile::builtin("tiny").unwrap();
        profile.t0_s = 0.0;
        std::fs::write(&path, toml::to_string(&profile).unwrap()).unwrap();
        let file = path.to_str().unwrap();
        let err = config(sim_args(&["--profile-file", file])).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Failure>().map(ToString::to_string),
            Some(format!("invalid profile {file}: t0_s must be positive"))
        );
    }

    #[test]
    fn planted_night_flags_reach_the_profile_and_bad_ones_are_usage_errors() {
        let cfg = config(sim_args(&[
            "--step-scale",
            "1.08",
            "--sm-clock",
            "1820",
            "--power-limit",
            "450",
            "--thermal-throttle",
            "--driver-version",
            "560.28",
        ]))
        .unwrap();
        assert_eq!(cfg.profile.step_scale, 1.08);
        assert_eq!(cfg.profile.gpu.sm_clock_mhz, 1820);
        assert_eq!(cfg.profile.gpu.power_limit_w, 450.0);
        assert!(cfg.profile.gpu.thermal_throttle);
        assert_eq!(cfg.profile.gpu.driver_version, "560.28");
        let tiny = Profile::builtin("tiny").unwrap();
        assert_eq!(
            cfg.profile.step_s(8, 0, 0),
            1.08 * tiny.step_s(8, 0, 0),
            "the step time scales"
        );
        let plain = config(sim_args(&[])).unwrap();
        assert_eq!(plain.profile, tiny, "no flag, no change");
        let err = config(sim_args(&["--step-scale", "0"])).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Failure>().map(ToString::to_string),
            Some("the planted night: step_scale must be a positive number".into())
        );
    }
}
