//! `ceiling sim-router`: start the proxy in front of simulated prefill and decode servers,
//! print where it listens, serve until SIGINT or SIGTERM, then stop it.

use ceiling_sim::RouterConfig;

use crate::Exit;
use crate::cli::SimRouterArgs;
use crate::commands::sim::{Signals, print_listening};
use crate::exit::Failure;

/// Builds the router's configuration from the flags.
pub fn config(args: SimRouterArgs) -> anyhow::Result<RouterConfig> {
    if args.prefill.is_empty() || args.decode.is_empty() {
        return Err(Failure::Usage(
            "sim-router needs at least one --prefill URL and one --decode URL".into(),
        )
        .into());
    }
    Ok(RouterConfig {
        prefill: args.prefill,
        decode: args.decode,
        handoff_s: args.handoff.as_secs_f64(),
        host: args.host,
        port: args.port,
    })
}

pub async fn run(args: SimRouterArgs) -> anyhow::Result<Exit> {
    let cfg = config(args)?;
    // Handlers first: a signal that arrives right after the address is printed still counts.
    let signals = Signals::install()?;
    let handle = ceiling_sim::start_router(cfg).await?;
    print_listening(&handle.base_url())?;
    signals.wait().await;
    handle.shutdown().await;
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(extra: &[&str]) -> anyhow::Result<RouterConfig> {
        let argv = ["ceiling", "sim-router"].iter().chain(extra);
        match Cli::try_parse_from(argv)?.command {
            Command::SimRouter(args) => config(args),
            other => panic!("not `sim-router`: {other:?}"),
        }
    }

    #[test]
    fn router_flags_repeat_and_the_handoff_parses_as_a_duration() {
        let cfg = parse(&[
            "--prefill",
            "http://a:1",
            "--prefill",
            "http://b:2",
            "--decode",
            "http://c:3",
            "--handoff",
            "5ms",
        ])
        .unwrap();
        assert_eq!(cfg.prefill, ["http://a:1", "http://b:2"]);
        assert_eq!(cfg.decode, ["http://c:3"]);
        assert!((cfg.handoff_s - 0.005).abs() < 1e-12);
        let default = parse(&["--prefill", "http://a:1", "--decode", "http://c:3"]).unwrap();
        assert!((default.handoff_s - 0.002).abs() < 1e-12);
    }

    #[test]
    fn a_router_without_both_sides_is_a_usage_error() {
        let err = parse(&["--prefill", "http://a:1"]).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Failure>().map(ToString::to_string),
            Some("sim-router needs at least one --prefill URL and one --decode URL".into())
        );
    }
}
